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
import { status as Status } from '@grpc/grpc-js';
import { TypeUrl } from '../protos/loader.js';
import { WILDCARD_TYPE_URLS, type ConfigWatcher, type WatchResponse, type XdsNode } from '../types.js';
import type { DiscoveryRequestMessage, DiscoveryResponseMessage } from './messages.js';
import { AdsStreamBase, typeLabel, type NackInfo, type StreamOptions, type StreamSink as BaseSink, type StreamTypeInfo, byPushOrder } from './stream-base.js';

export { typeLabel, type AuthorizeResult, type NackInfo, type StreamHooks, type StreamInfo, type StreamMetrics, type StreamTypeInfo } from './stream-base.js';

/** Where a SotW stream writes: responses, and the final status. */
export type StreamSink = BaseSink<DiscoveryResponseMessage>;

/** Everything a {@link SotwStream} needs. */
export interface SotwStreamOptions<Call> extends StreamOptions<Call, DiscoveryResponseMessage> {
  cache: ConfigWatcher;
}

/** Types held back after a CDS response until the client has answered it. */
const GATED_BY_CDS: ReadonlySet<string> = new Set<string>([TypeUrl.Listener, TypeUrl.RouteConfiguration]);

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
export class SotwStream<Call> extends AdsStreamBase<Call, DiscoveryRequestMessage, DiscoveryResponseMessage> {
  private readonly types = new Map<string, TypeState>();
  /** Nonce of the CDS response LDS and RDS wait behind, until the client answers it. */
  private cdsGate: string | undefined;
  private readonly cache: ConfigWatcher;

  constructor(opts: SotwStreamOptions<Call>) {
    super(opts, 'sotw', 'DiscoveryRequest');
    this.cache = opts.cache;
  }

  protected typeInfos(): StreamTypeInfo[] {
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
    return types;
  }

  protected handle(request: DiscoveryRequestMessage): void {
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
    this.ackReceived(st.typeUrl, request.versionInfo, request.responseNonce);
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
    this.nackReceived(st.typeUrl, nack);
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
    const cancel = this.cache.createWatch(node.id, { typeUrl: st.typeUrl, resourceNames: names, versionInfo: version }, (response) => {
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



  protected flush(): void {
    for (const st of byPushOrder(this.types)) {
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
    const nonce = this.nextNonce();
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

  protected releaseWatches(): void {
    for (const st of this.types.values()) {
      const cancel = st.cancelWatch;
      st.cancelWatch = undefined;
      st.pending = undefined;
      cancel?.();
    }
  }
}
