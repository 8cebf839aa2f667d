/**
 * The agent's side of `skiff.registration.v1.WorkloadRegistration/Connect`
 * (`src/xds/protos/skiff/registration.proto`): one long-lived stream to the control plane over
 * mTLS with the workload's SVID as client certificate. It registers the VM (into a WorkloadGroup,
 * or for an existing WorkloadEntry), receives the RegistrationStatus (the entry's name, labels
 * and the group's probe), sends health verdicts, and reconnects with exponential back-off and
 * jitter whenever the stream ends, re-sending the registration with the current verdict so the
 * workload's health does not reset. `leave()` sends `leave` and half-closes: the control plane
 * removes the workload at once instead of waiting for the grace period.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../src/observability/logger.js';
import {
  REGISTRATION_CONNECT_PATH,
  decodeRegistrationStatus,
  encodeAgentReport,
  type AgentReportMessage,
  type HealthReportMessage,
  type RegisterMessage,
  type RegistrationStatusMessage,
} from '../src/xds/protos/registration.js';
import { channelOptionsFor } from './ca-client.js';

/** A registration the control plane refused for good (another identity, no such group...). */
export class RegistrationRefusedError extends Error {
  constructor(
    message: string,
    readonly code: grpc.status,
  ) {
    super(message);
    this.name = 'RegistrationRefusedError';
  }
}

/** Statuses that retrying cannot fix while the agent starts (NOT_FOUND is retried: the group may appear). */
const REFUSED = new Set<grpc.status>([grpc.status.PERMISSION_DENIED, grpc.status.INVALID_ARGUMENT, grpc.status.ALREADY_EXISTS, grpc.status.FAILED_PRECONDITION, grpc.status.UNAUTHENTICATED, grpc.status.UNIMPLEMENTED]);

/** Options of {@link RegistrationClient}. */
export interface RegistrationClientOptions {
  /** Control plane `host:port` (the mTLS gRPC port). */
  address: string;
  /** Channel credentials with the current SVID as client certificate; called for every connection. */
  credentials: () => grpc.ChannelCredentials;
  /** What to register (without `health`: the client adds its current verdict). */
  register: Omit<RegisterMessage, 'health'>;
  logger: Logger;
  /** First reconnect delay (default 500 ms); doubles up to `retryMaxMs` (default 30 000 ms). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Random source in [0, 1) for jitter (tests). */
  random?: () => number;
}

type Stream = grpc.ClientDuplexStream<AgentReportMessage, RegistrationStatusMessage>;

/** The registration stream with reconnects; see the module comment. */
export class RegistrationClient {
  private client: grpc.Client | undefined;
  private stream: Stream | undefined;
  private health: HealthReportMessage | undefined;
  private stopped = false;
  private leaving = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private first: { resolve(s: RegistrationStatusMessage): void; reject(e: Error): void } | undefined;
  private current: RegistrationStatusMessage | undefined;
  private readonly listeners = new Set<(s: RegistrationStatusMessage) => void>();
  private readonly log: Logger;
  private attempt = 0;

  constructor(private readonly opts: RegistrationClientOptions) {
    this.delayMs = opts.retryInitialMs ?? 500;
    this.log = opts.logger.child({ component: 'registration' });
  }

  /**
   * Connects and registers; resolves with the first RegistrationStatus. Retries unavailable
   * control planes (and NOT_FOUND) with back-off until `signal` aborts; rejects with
   * {@link RegistrationRefusedError} when the control plane refuses the registration.
   */
  start(signal?: AbortSignal): Promise<RegistrationStatusMessage> {
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.stop();
        reject(new Error('registration aborted'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.first = {
        resolve: (s) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.connect();
    });
  }

  /** The last status received. */
  status(): RegistrationStatusMessage | undefined {
    return this.current;
  }

  /** Calls `listener` with every later status (the group's probe or labels changed). */
  onStatus(listener: (s: RegistrationStatusMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends a health verdict now (if connected) and after every reconnect. */
  report(health: HealthReportMessage): void {
    this.health = health;
    this.write({ health });
  }

  /**
   * Deregisters: sends `leave`, half-closes and waits (at most `timeoutMs`, default 3 s) for the
   * control plane to end the stream; then stops reconnecting.
   */
  async leave(reason: string, timeoutMs = 3000): Promise<void> {
    if (this.stopped) return;
    this.leaving = true;
    const stream = this.stream;
    if (stream && this.current) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        stream.once('status', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.write({ leave: { reason } });
        stream.end();
      });
      this.log.info({ reason }, 'deregistered from the control plane');
    }
    this.stop();
  }

  /**
   * Ends the stream without `leave` (the control plane keeps the workload for its grace period);
   * a pending {@link start} rejects.
   */
  stop(): void {
    this.stopped = true;
    const pending = this.first;
    this.first = undefined;
    pending?.reject(new Error('registration stopped'));
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stream?.cancel();
    this.stream = undefined;
    this.client?.close();
    this.client = undefined;
  }

  private write(report: AgentReportMessage): void {
    if (!this.stream || !this.current || this.leaving) return;
    this.stream.write(report);
  }

  private connect(): void {
    if (this.stopped) return;
    const attempt = ++this.attempt;
    let client: grpc.Client;
    try {
      client = new grpc.Client(this.opts.address, this.opts.credentials(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 10_000,
        ...channelOptionsFor(this.opts.address),
      });
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot build the registration channel');
      this.retry();
      return;
    }
    this.client = client;
    const stream: Stream = client.makeBidiStreamRequest(
      REGISTRATION_CONNECT_PATH,
      encodeAgentReport,
      (bytes: Buffer) => {
        const d = decodeRegistrationStatus(bytes);
        if (!d.ok) throw new Error(d.error);
        return d.message;
      },
    );
    this.stream = stream;
    let registered = false;
    stream.on('data', (status: RegistrationStatusMessage) => {
      if (attempt !== this.attempt) return;
      const firstOnStream = !registered;
      registered = true;
      this.current = status;
      this.delayMs = this.opts.retryInitialMs ?? 500;
      if (firstOnStream) {
        this.log.info({ entry: status.workloadEntry, probe: status.probe !== undefined }, 'registered with the control plane');
        if (this.health) stream.write({ health: this.health });
      }
      if (this.first) {
        const f = this.first;
        this.first = undefined;
        f.resolve(status);
        return;
      }
      for (const l of [...this.listeners]) l(status);
    });
    stream.on('error', () => undefined); // the final status arrives on 'status'
    stream.on('status', (s: grpc.StatusObject) => {
      if (attempt !== this.attempt) return;
      this.stream = undefined;
      client.close();
      if (this.client === client) this.client = undefined;
      if (this.stopped || this.leaving) return;
      if (this.first && REFUSED.has(s.code)) {
        const f = this.first;
        this.first = undefined;
        this.stopped = true;
        f.reject(new RegistrationRefusedError(`the control plane refused the registration: ${grpc.status[s.code] ?? s.code}: ${s.details}`, s.code));
        return;
      }
      const level = s.code === grpc.status.UNAVAILABLE || s.code === grpc.status.OK ? 'warn' : 'error';
      this.log[level]({ code: grpc.status[s.code] ?? s.code, details: s.details, retryInMs: this.delayMs }, 'registration stream ended: reconnecting');
      this.retry();
    });
    const register: RegisterMessage = { ...this.opts.register, ...(this.health ? { health: this.health } : {}) };
    stream.write({ register });
  }

  private retry(): void {
    if (this.stopped) return;
    const random = this.opts.random ?? Math.random;
    const wait = Math.round(this.delayMs * (0.8 + 0.4 * random()));
    this.delayMs = Math.min(this.delayMs * 2, this.opts.retryMaxMs ?? 30_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, wait);
  }
}
