/**
 * The control plane's side of `skiff.registration.v1.WorkloadRegistration/Connect`
 * (`src/xds/protos/skiff/registration.proto`) for @grpc/grpc-js, served on the mTLS gRPC port
 * next to ADS and the CA.
 *
 * Each stream is one agent: it is authenticated once, when it opens, by its client certificate
 * (the caller passes `authenticate`, which checks the SVID against the trust bundle); then its
 * reports are handed, in order, to {@link Registrations}. Statuses:
 * - UNAUTHENTICATED: no valid client SVID;
 * - PERMISSION_DENIED: the SVID names another workload than the group or entry (logged);
 * - NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS, FAILED_PRECONDITION: see `Registrations`;
 * - OK after a `leave` (the entry is removed at once) or when the agent half-closes.
 * A stream that ends any other way (cancelled, transport gone) starts the grace period.
 */
import * as grpc from '@grpc/grpc-js';
import { isIP } from 'node:net';
import type { Logger } from '../../observability/logger.js';
import {
  registrationServiceDefinition,
  type AgentReportMessage,
  type Decoded,
  type RegistrationStatusMessage,
} from '../../xds/protos/registration.js';
import { RegistrationError, type AgentConnection, type RegistrationErrorCode, type Registrations } from './registrations.js';

/** The server stream type of `Connect`. */
export type RegistrationCall = grpc.ServerDuplexStream<Decoded<AgentReportMessage>, RegistrationStatusMessage>;

/** Options of {@link createRegistrationService}. */
export interface RegistrationServiceOptions {
  registrations: Registrations;
  /**
   * The verified SPIFFE ID of the call's client certificate, or undefined when it sent none or
   * it is not a valid SVID of this mesh (then the stream ends UNAUTHENTICATED).
   */
  authenticate(call: RegistrationCall): Promise<string | undefined> | string | undefined;
  logger: Logger;
}

/** A grpc-js service: pass both to `server.addService(definition, implementation)`. */
export interface RegistrationService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /** Open streams (for debug views and tests). */
  streams(): number;
  /** Ends every open stream with UNAVAILABLE and `message` (shutdown); agents reconnect. */
  closeAll(message: string): void;
}

const STATUS: Record<RegistrationErrorCode, grpc.status> = {
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  'not-found': grpc.status.NOT_FOUND,
  'permission-denied': grpc.status.PERMISSION_DENIED,
  'already-exists': grpc.status.ALREADY_EXISTS,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
};

/** The IP of a grpc-js peer string (`1.2.3.4:5678`, `[::1]:5678`, `ipv4:...`), or undefined. */
export function peerIp(peer: string): string | undefined {
  const m = /^(?:ipv[46]:)?\[?([0-9a-fA-F:.]+?)\]?:\d+$/.exec(peer);
  const ip = m?.[1];
  if (!ip) return undefined;
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const out = v4mapped?.[1] ?? ip;
  return isIP(out) !== 0 ? out : undefined;
}

/** Builds the `WorkloadRegistration` service over `opts.registrations`. */
export function createRegistrationService(opts: RegistrationServiceOptions): RegistrationService {
  const { registrations, logger } = opts;
  let nextId = 0;
  const open = new Map<number, (code: grpc.status, message: string) => void>();

  function connect(call: RegistrationCall): void {
    const id = ++nextId;
    let finished = false;
    let conn: AgentConnection | undefined;
    const log = logger.child({ stream: id, peer: call.getPeer() });

    const fail = (code: grpc.status, message: string): void => {
      if (finished) return;
      finished = true;
      open.delete(id);
      if (conn) registrations.disconnect(conn);
      // grpc-js turns an 'error' event on a server stream into the call's final status.
      call.emit('error', Object.assign(new Error(message), { code, details: message }));
    };
    open.set(id, fail);
    const finishOk = (): void => {
      if (finished) return;
      finished = true;
      open.delete(id);
      call.end();
    };
    const gone = (): void => {
      if (conn && !finished) registrations.disconnect(conn);
      finished = true;
      open.delete(id);
    };

    // Authenticates once; never rejects (a failure ends the stream).
    const ready = (async (): Promise<AgentConnection | undefined> => {
      let spiffeId: string | undefined;
      try {
        spiffeId = await opts.authenticate(call);
      } catch (err) {
        log.error({ err }, 'registration stream authentication failed');
        fail(grpc.status.UNAVAILABLE, 'authentication could not be completed');
        return undefined;
      }
      if (spiffeId === undefined) {
        log.warn('registration stream refused: no valid client certificate');
        fail(grpc.status.UNAUTHENTICATED, 'registration requires a client certificate (the workload SVID)');
        return undefined;
      }
      return {
        id,
        spiffeId,
        peerAddress: peerIp(call.getPeer()),
        send: (status) => {
          if (!finished) call.write(status);
        },
        end: (code, message) => fail(STATUS[code], message),
      };
    })();
    let chain: Promise<unknown> = ready;

    const handle = (c: AgentConnection, incoming: Decoded<AgentReportMessage>): void => {
      if (finished) return;
      if (!incoming.ok) {
        fail(grpc.status.INVALID_ARGUMENT, `malformed AgentReport: ${incoming.error}`);
        return;
      }
      const report = incoming.message;
      try {
        if (report.register) {
          conn = c;
          const status = registrations.register(c, report.register);
          call.write(status);
        } else if (report.health) {
          registrations.reportHealth(c, report.health);
        } else if (report.leave) {
          registrations.leave(c, report.leave.reason ?? '');
          finishOk();
        } else {
          fail(grpc.status.INVALID_ARGUMENT, 'empty AgentReport: expected register, health or leave');
        }
      } catch (err) {
        if (err instanceof RegistrationError) {
          fail(STATUS[err.code], err.message);
          return;
        }
        log.error({ err }, 'registration stream failed');
        fail(grpc.status.INTERNAL, 'internal error in the registration service');
      }
    };

    call.on('data', (incoming: Decoded<AgentReportMessage>) => {
      chain = chain.then(() => ready).then((c) => {
        if (c) handle(c, incoming);
      });
    });
    call.on('end', () => {
      // The agent half-closed without `leave`: like a disconnect (grace period), then finish OK.
      chain = chain.then(() => {
        if (finished) return;
        gone();
        call.end();
      });
    });
    const onGone = (): void => {
      chain = chain.then(gone);
    };
    call.on('cancelled', onGone);
    call.on('error', onGone);
    call.once('close', () => {
      open.delete(id);
      onGone();
    });
  }

  return {
    definition: registrationServiceDefinition(),
    implementation: { Connect: connect },
    streams: () => open.size,
    closeAll: (message) => {
      for (const fail of [...open.values()]) fail(grpc.status.UNAVAILABLE, message);
    },
  };
}
