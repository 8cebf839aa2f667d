/**
 * Codec and grpc-js method definitions for Skiff's registration protocol
 * (`skiff/registration.proto`, package `skiff.registration.v1`): the node agent's long-lived
 * `WorkloadRegistration/Connect` stream to the control plane. Shared by the control plane
 * (`src/sources/registration`) and the agent (`agents/registration.ts`), so both sides encode
 * the same shapes.
 *
 * Messages are plain objects in protobufjs form (camelCase). Encoding goes through
 * `encodeStrict`, so a misspelt key throws instead of vanishing. Decoding never throws: a message
 * that cannot be decoded becomes `{ok: false, error}` so the receiver can end the stream with a
 * clear status instead of grpc-js's generic one.
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import { encodeStrict, messageType } from './loader.js';

/** Full gRPC method path of the registration stream. */
export const REGISTRATION_CONNECT_PATH = '/skiff.registration.v1.WorkloadRegistration/Connect';

/** `HttpGetProbe`: Istio's HTTPHealthCheckConfig. */
export interface HttpGetProbeMessage {
  path?: string;
  port: number;
  host?: string;
  /** `HTTP` or `HTTPS`; empty means HTTP. */
  scheme?: string;
  httpHeaders?: { name: string; value?: string }[];
}

/** `TcpSocketProbe`: Istio's TCPHealthCheckConfig. */
export interface TcpSocketProbeMessage {
  host?: string;
  port: number;
}

/** `ExecProbe`: Istio's ExecHealthCheckConfig. */
export interface ExecProbeMessage {
  command: string[];
}

/**
 * `Probe`: a WorkloadGroup probe (Istio's ReadinessProbe). Zero or absent numbers mean the
 * default; exactly one of `httpGet`, `tcpSocket`, `exec` is set.
 */
export interface ProbeMessage {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: HttpGetProbeMessage;
  tcpSocket?: TcpSocketProbeMessage;
  exec?: ExecProbeMessage;
}

/** `HealthReport`: the agent's probe verdict. */
export interface HealthReportMessage {
  healthy: boolean;
  message?: string;
}

/** `Register`: exactly one of `workloadGroup` and `workloadEntry` (`<namespace>/<name>`). */
export interface RegisterMessage {
  workloadGroup?: string;
  workloadEntry?: string;
  /** Empty: the address the connection comes from. */
  address?: string;
  labels?: Record<string, string>;
  /** The agent's current verdict, if it has one (reconnects). */
  health?: HealthReportMessage;
}

/** `AgentReport`: exactly one of its fields is set. */
export interface AgentReportMessage {
  register?: RegisterMessage;
  health?: HealthReportMessage;
  leave?: { reason?: string };
}

/** `RegistrationStatus`: the control plane's answer to a registration. */
export interface RegistrationStatusMessage {
  /** `<namespace>/<name>` of the WorkloadEntry the agent reports for. */
  workloadEntry: string;
  /** The entry's name (the agent's WORKLOAD_NAME). */
  workloadName: string;
  labels?: Record<string, string>;
  /** The WorkloadGroup's probe; absent for none and for WorkloadEntry registrations. */
  probe?: ProbeMessage;
}

/** A decoded message, or why it could not be decoded. */
export type Decoded<T> = { ok: true; message: T } | { ok: false; error: string };

const REPORT = 'skiff.registration.v1.AgentReport';
const STATUS = 'skiff.registration.v1.RegistrationStatus';
const TO_OBJECT = { longs: Number, enums: String, defaults: false, arrays: true, objects: false } as const;

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes an `AgentReport`. Throws `UnknownFieldError` for a key the message does not define. */
export function encodeAgentReport(report: AgentReportMessage): Buffer {
  return toBuffer(encodeStrict(REPORT, report));
}

/** Decodes an `AgentReport`; never throws. */
export function decodeAgentReport(bytes: Uint8Array): Decoded<AgentReportMessage> {
  try {
    const type = messageType(REPORT);
    const message: AgentReportMessage = type.toObject(type.decode(bytes), TO_OBJECT);
    return { ok: true, message };
  } catch (err) {
    return { ok: false, error: `cannot decode AgentReport: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Encodes a `RegistrationStatus`. Throws `UnknownFieldError` for a key the message does not define. */
export function encodeRegistrationStatus(status: RegistrationStatusMessage): Buffer {
  return toBuffer(encodeStrict(STATUS, status));
}

/** Decodes a `RegistrationStatus`; never throws. */
export function decodeRegistrationStatus(bytes: Uint8Array): Decoded<RegistrationStatusMessage> {
  try {
    const type = messageType(STATUS);
    const message = type.toObject(type.decode(bytes), TO_OBJECT) as Partial<RegistrationStatusMessage>;
    return { ok: true, message: { ...message, workloadEntry: message.workloadEntry ?? '', workloadName: message.workloadName ?? '' } };
  } catch (err) {
    return { ok: false, error: `cannot decode RegistrationStatus: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/**
 * The grpc-js method definition of `Connect` for the server: reports come in decoded (or as a
 * decode error), statuses go out encoded.
 */
export function registrationServerMethod(): MethodDefinition<Decoded<AgentReportMessage>, RegistrationStatusMessage> {
  return {
    path: REGISTRATION_CONNECT_PATH,
    requestStream: true,
    responseStream: true,
    originalName: 'connect',
    requestSerialize: (req) => (req.ok ? encodeAgentReport(req.message) : Buffer.alloc(0)),
    requestDeserialize: decodeAgentReport,
    responseSerialize: encodeRegistrationStatus,
    responseDeserialize: (bytes) => {
      const d = decodeRegistrationStatus(bytes);
      if (!d.ok) throw new Error(d.error);
      return d.message;
    },
  };
}

/** The grpc-js service definition of `skiff.registration.v1.WorkloadRegistration`. */
export function registrationServiceDefinition(): { Connect: MethodDefinition<Decoded<AgentReportMessage>, RegistrationStatusMessage> } {
  return { Connect: registrationServerMethod() };
}
