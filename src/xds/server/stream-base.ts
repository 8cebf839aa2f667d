/**
 * What a state-of-the-world and a delta ADS stream share: the stream's life (first request with
 * the node, authorization, the owner's open/close hooks, strictly ordered handling of requests,
 * release of watches), ACK/NACK bookkeeping and the debug view. The protocol rules of each
 * variant live in `sotw-stream.ts` and `delta-stream.ts`.
 */
import { randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from '../../observability/logger.js';
import type { ControlPlaneMetrics } from '../../observability/metrics.js';
import { TypeUrl, typeNameOf } from '../protos/loader.js';
import { PUSH_ORDER, type XdsNode } from '../types.js';

/** What the client said when it rejected a response (a NACK). */
export interface NackInfo {
  /** Nonce of the rejected response. */
  nonce: string;
  /** Version of the rejected response (for delta: the stream's version of the type after it). */
  rejectedVersion: string;
  /** The version the client keeps using (`version_info` of a SotW NACK; `''` for delta). */
  versionInfo: string;
  /** `error_detail.code` (a google.rpc.Code) and `error_detail.message`. */
  code: number;
  message: string;
}

/** Debug view of one type on one stream. */
export interface StreamTypeInfo {
  typeUrl: string;
  /** The names the client subscribes to (empty with `wildcard`: everything). */
  resourceNames: string[];
  wildcard: boolean;
  /**
   * Version of the latest response sent, and its nonce. For delta streams the version is a hash
   * over the (name, version) pairs the client holds after that response.
   */
  lastSentVersion?: string;
  lastNonce?: string;
  /** Version of the latest ACKed response. */
  ackedVersion?: string;
  /** Latest NACK, if the client rejected something on this stream. */
  lastNack?: NackInfo;
  /** A response is waiting to be sent (make-before-break ordering). */
  pending: boolean;
}

/** Debug view of one ADS stream. */
export interface StreamInfo {
  /** Unique within one server instance (shared by SotW and delta streams). */
  id: number;
  /** `sotw` (StreamAggregatedResources) or `delta` (DeltaAggregatedResources). */
  kind: 'sotw' | 'delta';
  /** The peer address as grpc-js reports it. */
  peer: string;
  /** The node from the first request (set before authorization completes). */
  node: XdsNode | undefined;
  /** True once `authorize` accepted the stream. */
  authorized: boolean;
  /** When the stream was opened, milliseconds since the epoch. */
  openedAt: number;
  types: StreamTypeInfo[];
}

/** The answer of an `authorize` hook. */
export type AuthorizeResult = { ok: true } | { ok: false; code: Status; message: string };

/** Callbacks the server's owner passes in (all optional). */
export interface StreamHooks<Call> {
  /** Decides whether the node may use the stream; called once, on the first request. */
  authorize?: (node: XdsNode, call: Call) => Promise<AuthorizeResult>;
  /** Awaited after authorization and before the first watch opens (compute the snapshot here). */
  onStreamOpen?: (node: XdsNode, stream: StreamInfo) => void | Promise<void>;
  /** Called once per stream that was opened, after it closed. */
  onStreamClose?: (node: XdsNode, stream: StreamInfo) => void | Promise<void>;
  onAck?: (node: XdsNode, typeUrl: string, versionInfo: string) => void;
  onNack?: (node: XdsNode, typeUrl: string, nack: NackInfo) => void;
}

/** Where a stream writes: responses, and the final status. */
export interface StreamSink<Response> {
  send(response: Response): void;
  /** Ends the RPC with `code` (OK ends it cleanly). Called at most once. */
  close(code: Status, message: string): void;
}

/** The metrics a stream updates. */
export type StreamMetrics = Pick<ControlPlaneMetrics, 'xdsPushes' | 'xdsAcks' | 'xdsRejects' | 'xdsConnections'>;

/** What the server's deserializer yields: a request, or why the bytes are not one. */
export type Incoming<Request> = { ok: true; request: Request } | { ok: false; error: string };

/** Everything a stream needs. */
export interface StreamOptions<Call, Response> {
  id: number;
  peer: string;
  call: Call;
  logger: Logger;
  metrics: StreamMetrics;
  hooks: StreamHooks<Call>;
  sink: StreamSink<Response>;
  /** Called once when the stream has closed, whatever the reason. */
  onClosed: (stream: { id: number }) => void;
}

const SHORT_TYPE_LABELS: ReadonlyMap<string, string> = new Map([
  [TypeUrl.Listener, 'lds'],
  [TypeUrl.RouteConfiguration, 'rds'],
  [TypeUrl.Cluster, 'cds'],
  [TypeUrl.ClusterLoadAssignment, 'eds'],
  [TypeUrl.Secret, 'sds'],
]);

/**
 * The `type` label of the xDS metrics: `lds`, `rds`, `cds`, `eds`, `sds` (as Istio's pilot
 * metrics), otherwise the message name of the type URL (`istio.workload.Address`).
 */
export function typeLabel(typeUrl: string): string {
  return SHORT_TYPE_LABELS.get(typeUrl) ?? typeNameOf(typeUrl);
}

/** Longest NACK message put in a log line. */
const MAX_LOGGED_ERROR = 2000;

/**
 * The life of one ADS stream. Subclasses implement {@link handle} (one request, after the node
 * was authorized), {@link releaseWatches} and {@link typeInfos}.
 */
export abstract class AdsStreamBase<Call, Request extends { node: XdsNode | undefined }, Response> {
  readonly id: number;
  readonly peer: string;
  readonly openedAt = Date.now();
  protected node: XdsNode | undefined;
  protected authorized = false;
  protected closed = false;
  /** Set when `onStreamOpen` has been called; settles when it finished. */
  private opening: Promise<void> | undefined;
  private readonly queue: Incoming<Request>[] = [];
  private draining = false;
  private nonceCounter = 0;
  private readonly noncePrefix = randomBytes(4).toString('hex');
  protected readonly log: Logger;

  constructor(
    protected readonly opts: StreamOptions<Call, Response>,
    /** `sotw` or `delta`: the `kind` label of `xdsConnections` and of {@link StreamInfo}. */
    protected readonly kind: 'sotw' | 'delta',
    /** The message name in errors, e.g. `DiscoveryRequest`. */
    private readonly requestName: string,
  ) {
    this.id = opts.id;
    this.peer = opts.peer;
    this.log = opts.logger.child({ stream: opts.id, xds: kind });
  }

  /** Whether the stream has ended. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues a request from the client; requests are handled strictly in arrival order. */
  receive(incoming: Incoming<Request>): void {
    if (this.closed) return;
    this.queue.push(incoming);
    if (!this.draining) void this.drain();
  }

  /** Ends the stream with `code` and `message` (sent to the client) and releases its watches. */
  fail(code: Status, message: string): void {
    if (this.closed) return;
    this.release();
    this.opts.sink.close(code, message);
  }

  /** The client went away (cancel, half-close or transport error): release everything. */
  shutdown(): void {
    if (this.closed) return;
    this.release();
  }

  /** A snapshot of the stream's state for debug views and `closeStreams` predicates. */
  info(): StreamInfo {
    return { id: this.id, kind: this.kind, peer: this.peer, node: this.node, authorized: this.authorized, openedAt: this.openedAt, types: this.typeInfos() };
  }

  /** Handles one request of an authorized stream (the node is set). */
  protected abstract handle(request: Request): void;
  /** Cancels every watch and drops pending responses (the stream is closing). */
  protected abstract releaseWatches(): void;
  /** Debug view of every type on the stream. */
  protected abstract typeInfos(): StreamTypeInfo[];

  /** Sends every pending response, in make-before-break order ({@link byPushOrder}). */
  protected abstract flush(): void;

  private flushScheduled = false;

  /**
   * Runs {@link flush} once at the end of the current microtask burst: answers produced by one
   * snapshot arrive one by one, and are sent together, in order. A failure ends the stream.
   */
  protected scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      try {
        this.flush();
      } catch (err) {
        this.log.error({ err }, 'sending xDS responses failed');
        this.fail(Status.INTERNAL, 'internal error in the xDS server');
      }
    });
  }

  /** A nonce unique on this stream (and, with its random prefix, across streams). */
  protected nextNonce(): string {
    return `${this.noncePrefix}-${++this.nonceCounter}`;
  }

  /** Counts an ACK and calls the `onAck` hook. */
  protected ackReceived(typeUrl: string, version: string, nonce: string): void {
    this.opts.metrics.xdsAcks.inc({ type: typeLabel(typeUrl) });
    this.log.debug({ type: typeLabel(typeUrl), version, nonce }, 'xDS ACK');
    try {
      this.opts.hooks.onAck?.(this.node as XdsNode, typeUrl, version);
    } catch (err) {
      this.log.error({ err }, 'onAck hook failed');
    }
  }

  /** Logs (warning) and counts a NACK and calls the `onNack` hook. */
  protected nackReceived(typeUrl: string, nack: NackInfo): void {
    this.opts.metrics.xdsRejects.inc({ type: typeLabel(typeUrl) });
    const node = this.node as XdsNode;
    this.log.warn(
      {
        node: node.id,
        type: typeUrl,
        nonce: nack.nonce,
        rejectedVersion: nack.rejectedVersion,
        clientVersion: nack.versionInfo || undefined,
        code: nack.code,
        error: nack.message.length > MAX_LOGGED_ERROR ? `${nack.message.slice(0, MAX_LOGGED_ERROR)}...` : nack.message,
      },
      'xDS NACK: the proxy rejected the configuration',
    );
    try {
      this.opts.hooks.onNack?.(node, typeUrl, nack);
    } catch (err) {
      this.log.error({ err }, 'onNack hook failed');
    }
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const incoming = this.queue.shift() as Incoming<Request>;
        if (!incoming.ok) {
          this.log.warn({ peer: this.peer, error: incoming.error }, `malformed ${this.requestName}; closing the stream`);
          this.fail(Status.INVALID_ARGUMENT, `malformed ${this.requestName}: ${incoming.error}`);
          return;
        }
        const request = incoming.request;
        if (!this.node) {
          await this.start(request);
          if (this.closed) return;
        } else if (request.node && request.node.id !== '' && request.node.id !== this.node.id) {
          this.fail(Status.INVALID_ARGUMENT, `node id changed on the stream from "${this.node.id}" to "${request.node.id}"`);
          return;
        }
        this.handle(request);
      }
    } catch (err) {
      this.log.error({ err }, 'xDS stream failed');
      this.fail(Status.INTERNAL, 'internal error in the xDS server');
    } finally {
      this.draining = false;
    }
  }

  /** First request: check the node, authorize, let the owner prepare the node's snapshot. */
  private async start(request: Request): Promise<void> {
    const node = request.node;
    if (!node || node.id === '') {
      this.log.warn({ peer: this.peer }, `first ${this.requestName} without node id; refusing the stream`);
      this.fail(Status.INVALID_ARGUMENT, `the first ${this.requestName} on a stream must carry node with a non-empty id`);
      return;
    }
    this.node = node;
    const { authorize, onStreamOpen } = this.opts.hooks;
    if (authorize) {
      let verdict: AuthorizeResult;
      try {
        verdict = await authorize(node, this.opts.call);
      } catch (err) {
        this.log.error({ err, node: node.id, peer: this.peer }, 'xDS authorization failed with an error');
        this.fail(Status.UNAVAILABLE, 'authorization could not be completed');
        return;
      }
      if (this.closed) return;
      if (!verdict.ok) {
        this.log.warn({ node: node.id, peer: this.peer, code: verdict.code, reason: verdict.message }, 'xDS stream refused');
        this.fail(verdict.code, verdict.message);
        return;
      }
    }
    if (this.closed) return;
    this.authorized = true;
    this.opts.metrics.xdsConnections.inc({ kind: this.kind });
    this.log.info({ node: node.id, peer: this.peer, userAgent: node.userAgentName, userAgentVersion: node.userAgentVersion }, 'xDS stream opened');
    if (onStreamOpen) {
      const info = this.info();
      this.opening = Promise.resolve()
        .then(() => onStreamOpen(node, info))
        .then(
          () => undefined,
          (err: unknown) => {
            this.log.error({ err, node: node.id }, 'preparing the configuration of a new xDS stream failed');
            this.fail(Status.UNAVAILABLE, 'the control plane could not prepare configuration for this node');
          },
        );
      await this.opening;
    } else {
      this.opening = Promise.resolve();
    }
  }

  private release(): void {
    this.closed = true;
    this.queue.length = 0;
    this.releaseWatches();
    if (this.authorized) this.opts.metrics.xdsConnections.dec({ kind: this.kind });
    this.log.info({ node: this.node?.id, peer: this.peer }, 'xDS stream closed');
    const node = this.node;
    const onStreamClose = this.opts.hooks.onStreamClose;
    if (node && this.opening && onStreamClose) {
      const info = this.info();
      void this.opening
        .then(() => onStreamClose(node, info))
        .catch((err: unknown) => this.log.error({ err }, 'onStreamClose hook failed'));
    }
    this.opts.onClosed(this);
  }
}

/**
 * The per-type states of a stream in make-before-break order: CDS, EDS, LDS, RDS (`PUSH_ORDER`),
 * then any other type in subscription order.
 */
export function byPushOrder<T extends { typeUrl: string }>(types: ReadonlyMap<string, T>): T[] {
  const ordered: T[] = [];
  for (const typeUrl of PUSH_ORDER) {
    const st = types.get(typeUrl);
    if (st) ordered.push(st);
  }
  for (const st of types.values()) if (!PUSH_ORDER.includes(st.typeUrl)) ordered.push(st);
  return ordered;
}
