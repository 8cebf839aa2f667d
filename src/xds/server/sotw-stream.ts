/**
 * One state-of-the-world ADS stream: the xDS protocol state machine, free of gRPC plumbing
 * (the server hands it decoded requests and a sink for responses). It follows the Envoy xDS
 * protocol document (docs/root/api-docs/xds_protocol.rst):
 *
 * - Nonces are per stream and unique per response. A request whose `response_nonce` is not the
 *   latest nonce sent for its type is stale and ignored ("The management server should not send
 *   a DiscoveryResponse for any DiscoveryRequest that has a stale nonce"); a type's first request
 *   has an empty nonce.
 * - The first request answering a nonce is its ACK, or its NACK when `error_detail` is set. After
 *   a NACK the same version is not sent again; the next push waits for a new version.
 * - One response per type is outstanding at a time: the next watch opens when the client has
 *   answered the last response, so a type whose resources did not change gets no response
 *   (one exception: EDS right behind CDS, below).
 * - A change of `resource_names` is a new subscription and is answered even when unchanged
 *   ("the server must resend any newly requested resources"). LDS and CDS use the legacy
 *   wildcard rule: empty names mean `*` until the client first names resources; after that,
 *   and for other types, empty names unsubscribe.
 * - Make-before-break ("Eventual consistency considerations"): pending responses go out in the
 *   order CDS, EDS, LDS, RDS, and LDS and RDS are held while a CDS response is unanswered, so a
 *   route never names a cluster the proxy has not been sent yet.
 * - Endpoints right behind clusters: Envoy finishes warming a new or updated cluster only on a
 *   ClusterLoadAssignment response, even an unchanged one ("Resource warming"), and processes one
 *   stream in order. So each CDS response on a stream that uses EDS is followed at once by an EDS
 *   response for the client's EDS names plus the names the clusters need (`requires` from the
 *   cache), before the client has asked for the new names (but never a version the client
 *   rejected). Its own request for them, sent before it has seen that EDS response, carries an
 *   older nonce and is ignored as stale.
 */
import { randomBytes } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from '../../observability/logger.js';
import type { ControlPlaneMetrics } from '../../observability/metrics.js';
import { TypeUrl, typeNameOf } from '../protos/loader.js';
import { PUSH_ORDER, WILDCARD_TYPE_URLS, type ConfigWatcher, type WatchResponse, type XdsNode } from '../types.js';
import type { DiscoveryRequestMessage, DiscoveryResponseMessage, IncomingRequest } from './messages.js';

/** What the client said when it rejected a response (a NACK). */
export interface NackInfo {
  /** Nonce of the rejected response. */
  nonce: string;
  /** Version of the rejected response. */
  rejectedVersion: string;
  /** The version the client keeps using (`version_info` of the NACK). */
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
  /** Version of the latest response sent, and its nonce. */
  lastSentVersion?: string;
  lastNonce?: string;
  /** Version of the latest ACK. */
  ackedVersion?: string;
  /** Latest NACK, if the client rejected something on this stream. */
  lastNack?: NackInfo;
  /** A response is waiting to be sent (make-before-break ordering). */
  pending: boolean;
}

/** Debug view of one ADS stream. */
export interface StreamInfo {
  /** Unique within one server instance. */
  id: number;
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
export interface StreamSink {
  send(response: DiscoveryResponseMessage): void;
  /** Ends the RPC with `code` (OK ends it cleanly). Called at most once. */
  close(code: Status, message: string): void;
}

/** The metrics a stream updates. */
export type StreamMetrics = Pick<ControlPlaneMetrics, 'xdsPushes' | 'xdsAcks' | 'xdsRejects' | 'xdsConnections'>;

/** Everything a {@link SotwStream} needs. */
export interface SotwStreamOptions<Call> {
  id: number;
  peer: string;
  call: Call;
  cache: ConfigWatcher;
  logger: Logger;
  metrics: StreamMetrics;
  hooks: StreamHooks<Call>;
  sink: StreamSink;
  /** Called once when the stream has closed, whatever the reason. */
  onClosed: (stream: SotwStream<Call>) => void;
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

/** Types held back after a CDS response until the client has answered it. */
const GATED_BY_CDS: ReadonlySet<string> = new Set<string>([TypeUrl.Listener, TypeUrl.RouteConfiguration]);

/** Longest NACK message put in a log line. */
const MAX_LOGGED_ERROR = 2000;

interface TypeState {
  typeUrl: string;
  names: string[];
  /** The client has named resources of this type at least once (ends the legacy wildcard). */
  explicit: boolean;
  subscribed: boolean;
  lastNonce: string | undefined;
  /** The client has answered `lastNonce`. */
  replied: boolean;
  lastSentVersion: string | undefined;
  ackedVersion: string | undefined;
  lastNack: NackInfo | undefined;
  cancelWatch: (() => void) | undefined;
  /** Identifies the current watch; answers from older watches are dropped. */
  watchSeq: number;
  /** `versionInfo` and names of the current (or just answered) watch. */
  watchVersion: string;
  watchNames: string[];
  /** Names the latest response was computed for (all of them when `coveredAll`). */
  covered: ReadonlySet<string>;
  coveredAll: boolean;
  pending: WatchResponse | undefined;
  /** `pending` was held back by the CDS gate; refresh it from the cache before sending. */
  held: boolean;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size !== sb.size) return false;
  for (const name of sa) if (!sb.has(name)) return false;
  return true;
}

/** The protocol state of one SotW ADS stream (see the module comment for the rules). */
export class SotwStream<Call> {
  readonly id: number;
  readonly peer: string;
  readonly openedAt = Date.now();
  private node: XdsNode | undefined;
  private authorized = false;
  private closed = false;
  /** Set when `onStreamOpen` has been called; settles when it finished. */
  private opening: Promise<void> | undefined;
  private readonly types = new Map<string, TypeState>();
  private readonly queue: IncomingRequest[] = [];
  private draining = false;
  private flushScheduled = false;
  private nonceCounter = 0;
  private readonly noncePrefix = randomBytes(4).toString('hex');
  /** Nonce of the CDS response LDS and RDS wait behind, until the client answers it. */
  private cdsGate: string | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: SotwStreamOptions<Call>) {
    this.id = opts.id;
    this.peer = opts.peer;
    this.log = opts.logger.child({ stream: opts.id });
  }

  /** Whether the stream has ended. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues a request from the client; requests are handled strictly in arrival order. */
  receive(incoming: IncomingRequest): void {
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
    const types: StreamTypeInfo[] = [];
    for (const st of this.types.values()) {
      const t: StreamTypeInfo = {
        typeUrl: st.typeUrl,
        resourceNames: [...st.names],
        wildcard: WILDCARD_TYPE_URLS.has(st.typeUrl) && st.subscribed && (!st.explicit || st.names.includes('*')),
        pending: st.pending !== undefined,
      };
      if (st.lastSentVersion !== undefined) t.lastSentVersion = st.lastSentVersion;
      if (st.lastNonce !== undefined) t.lastNonce = st.lastNonce;
      if (st.ackedVersion !== undefined) t.ackedVersion = st.ackedVersion;
      if (st.lastNack !== undefined) t.lastNack = st.lastNack;
      types.push(t);
    }
    return { id: this.id, peer: this.peer, node: this.node, authorized: this.authorized, openedAt: this.openedAt, types };
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const incoming = this.queue.shift() as IncomingRequest;
        if (!incoming.ok) {
          this.log.warn({ peer: this.peer, error: incoming.error }, 'malformed DiscoveryRequest; closing the stream');
          this.fail(Status.INVALID_ARGUMENT, `malformed DiscoveryRequest: ${incoming.error}`);
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
  private async start(request: DiscoveryRequestMessage): Promise<void> {
    const node = request.node;
    if (!node || node.id === '') {
      this.log.warn({ peer: this.peer }, 'first DiscoveryRequest without node id; refusing the stream');
      this.fail(Status.INVALID_ARGUMENT, 'the first DiscoveryRequest on a stream must carry node with a non-empty id');
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
    this.opts.metrics.xdsConnections.inc({ kind: 'sotw' });
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

  private handle(request: DiscoveryRequestMessage): void {
    const typeUrl = request.typeUrl;
    if (typeUrl === '') {
      this.fail(Status.INVALID_ARGUMENT, 'DiscoveryRequest.type_url is required on an aggregated (ADS) stream');
      return;
    }
    const nonce = request.responseNonce;
    let st = this.types.get(typeUrl);
    if (nonce !== '' && nonce !== st?.lastNonce) {
      this.log.debug({ type: typeLabel(typeUrl), nonce, latest: st?.lastNonce }, 'stale DiscoveryRequest ignored');
      return;
    }
    const first = st === undefined || nonce === '';
    if (!st) {
      st = {
        typeUrl,
        names: [],
        explicit: false,
        subscribed: false,
        lastNonce: undefined,
        replied: true,
        lastSentVersion: undefined,
        ackedVersion: undefined,
        lastNack: undefined,
        cancelWatch: undefined,
        watchSeq: 0,
        watchVersion: '',
        watchNames: [],
        covered: new Set(),
        coveredAll: false,
        pending: undefined,
        held: false,
      };
      this.types.set(typeUrl, st);
    }

    let nack = false;
    if (nonce !== '' && !st.replied) {
      st.replied = true;
      if (request.errorDetail) {
        nack = true;
        this.onNack(st, request, nonce);
      } else {
        this.onAck(st, request);
      }
      if (typeUrl === TypeUrl.Cluster && this.cdsGate === nonce) {
        this.cdsGate = undefined;
        this.scheduleFlush(); // release LDS/RDS held behind this CDS response
      }
    }

    const names = request.resourceNames;
    if (names.length > 0) st.explicit = true;
    const subscribed = names.length > 0 || (WILDCARD_TYPE_URLS.has(typeUrl) && !st.explicit);
    const namesChanged = !sameNames(names, st.names);
    const wasSubscribed = st.subscribed;
    st.names = [...names];
    st.subscribed = subscribed;
    if (!subscribed) {
      this.dropWatch(st);
      return;
    }
    if (st.pending && !first && !namesChanged && wasSubscribed) return; // the pending answer stands

    let version: string;
    if (first) version = request.versionInfo; // the client says what it holds (maybe from an earlier stream)
    else if (nack) version = st.lastSentVersion ?? request.versionInfo; // never resend what was rejected
    else if (!wasSubscribed || !this.covers(st)) version = ''; // newly requested names: answer them
    else version = st.lastSentVersion ?? request.versionInfo;
    this.dropWatch(st);
    this.openWatch(st, version, st.names);
  }

  /** Whether the latest response already carried everything the current subscription asks for. */
  private covers(st: TypeState): boolean {
    if (st.coveredAll) return true;
    if (WILDCARD_TYPE_URLS.has(st.typeUrl) && (!st.explicit || st.names.includes('*'))) return false;
    return st.names.every((n) => st.covered.has(n));
  }

  private onAck(st: TypeState, request: DiscoveryRequestMessage): void {
    st.ackedVersion = request.versionInfo;
    this.opts.metrics.xdsAcks.inc({ type: typeLabel(st.typeUrl) });
    this.log.debug({ type: typeLabel(st.typeUrl), version: request.versionInfo, nonce: request.responseNonce }, 'xDS ACK');
    const node = this.node as XdsNode;
    try {
      this.opts.hooks.onAck?.(node, st.typeUrl, request.versionInfo);
    } catch (err) {
      this.log.error({ err }, 'onAck hook failed');
    }
  }

  private onNack(st: TypeState, request: DiscoveryRequestMessage, nonce: string): void {
    const detail = request.errorDetail ?? { code: 0, message: '' };
    const nack: NackInfo = {
      nonce,
      rejectedVersion: st.lastSentVersion ?? '',
      versionInfo: request.versionInfo,
      code: detail.code,
      message: detail.message,
    };
    st.lastNack = nack;
    this.opts.metrics.xdsRejects.inc({ type: typeLabel(st.typeUrl) });
    const node = this.node as XdsNode;
    this.log.warn(
      {
        node: node.id,
        type: st.typeUrl,
        nonce,
        rejectedVersion: nack.rejectedVersion,
        clientVersion: nack.versionInfo,
        code: nack.code,
        error: nack.message.length > MAX_LOGGED_ERROR ? `${nack.message.slice(0, MAX_LOGGED_ERROR)}...` : nack.message,
      },
      'xDS NACK: the proxy rejected the configuration',
    );
    try {
      this.opts.hooks.onNack?.(node, st.typeUrl, nack);
    } catch (err) {
      this.log.error({ err }, 'onNack hook failed');
    }
  }

  private dropWatch(st: TypeState): void {
    const cancel = st.cancelWatch;
    st.cancelWatch = undefined;
    st.watchSeq++;
    st.pending = undefined;
    st.held = false;
    cancel?.();
  }

  private openWatch(st: TypeState, version: string, names: string[]): void {
    const seq = ++st.watchSeq;
    st.watchVersion = version;
    st.watchNames = names;
    const node = this.node as XdsNode;
    const cancel = this.opts.cache.createWatch(node.id, { typeUrl: st.typeUrl, resourceNames: names, versionInfo: version }, (response) => {
      if (this.closed || st.watchSeq !== seq) return;
      st.cancelWatch = undefined;
      st.watchSeq++; // a watch answers once
      st.pending = response;
      st.held = false;
      this.scheduleFlush();
    });
    if (st.watchSeq === seq && !this.closed) st.cancelWatch = cancel;
    else if (this.closed) cancel();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    // Answers produced by one snapshot arrive one by one; send them together, in order.
    queueMicrotask(() => {
      try {
        this.flush();
      } catch (err) {
        this.log.error({ err }, 'sending xDS responses failed');
        this.fail(Status.INTERNAL, 'internal error in the xDS server');
      }
    });
  }

  private orderedTypes(): TypeState[] {
    const ordered: TypeState[] = [];
    for (const typeUrl of PUSH_ORDER) {
      const st = this.types.get(typeUrl);
      if (st) ordered.push(st);
    }
    for (const st of this.types.values()) if (!PUSH_ORDER.includes(st.typeUrl)) ordered.push(st);
    return ordered;
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const st of this.orderedTypes()) {
      if (this.closed) return;
      if (!st.pending) continue;
      if (GATED_BY_CDS.has(st.typeUrl) && this.cdsGate !== undefined) {
        st.held = true;
        continue;
      }
      const response = st.held ? this.refresh(st) : st.pending;
      if (response) this.send(st, response);
    }
  }

  /**
   * A response held behind a CDS response may be outdated by now: ask the cache again with the
   * same request. Returns the fresh answer, or undefined when the watch parked (nothing to send).
   */
  private refresh(st: TypeState): WatchResponse | undefined {
    st.held = false;
    st.pending = undefined;
    this.openWatch(st, st.watchVersion, st.watchNames);
    return st.pending; // set by openWatch when the cache answered at once
  }

  private send(st: TypeState, response: WatchResponse): void {
    const nonce = `${this.noncePrefix}-${++this.nonceCounter}`;
    st.pending = undefined;
    st.lastNonce = nonce;
    st.replied = false;
    st.lastSentVersion = response.versionInfo;
    st.coveredAll = WILDCARD_TYPE_URLS.has(st.typeUrl) && (st.watchNames.length === 0 || st.watchNames.includes('*'));
    st.covered = new Set(st.watchNames);
    this.opts.sink.send({ versionInfo: response.versionInfo, resources: response.resources, typeUrl: response.typeUrl, nonce });
    this.opts.metrics.xdsPushes.inc({ type: typeLabel(st.typeUrl) });
    this.log.debug({ type: typeLabel(st.typeUrl), version: response.versionInfo, nonce, resources: response.names.length }, 'xDS response sent');
    if (st.typeUrl === TypeUrl.Cluster) {
      this.cdsGate = nonce;
      this.endpointsBehindClusters(response);
    }
  }

  /**
   * Right after a CDS response, answers EDS for the client's EDS names plus those the clusters
   * need, even if unchanged: the flush loop sends it next, before any LDS or RDS.
   */
  private endpointsBehindClusters(clusters: WatchResponse): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds) return; // the client does not use EDS on this stream (yet): it will ask
    const names = new Set(eds.subscribed ? eds.names : []);
    for (const name of clusters.requires?.get(TypeUrl.ClusterLoadAssignment) ?? []) names.add(name);
    if (names.size === 0) return;
    // Answer even if unchanged (warming), unless the client rejected the latest EDS version.
    const rejected = eds.lastNack !== undefined && eds.lastNack.nonce === eds.lastNonce;
    this.dropWatch(eds);
    this.openWatch(eds, rejected ? (eds.lastSentVersion ?? '') : '', [...names].sort());
  }

  private release(): void {
    this.closed = true;
    this.queue.length = 0;
    for (const st of this.types.values()) {
      const cancel = st.cancelWatch;
      st.cancelWatch = undefined;
      st.pending = undefined;
      cancel?.();
    }
    if (this.authorized) this.opts.metrics.xdsConnections.dec({ kind: 'sotw' });
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
