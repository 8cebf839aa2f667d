/**
 * One delta (incremental) ADS stream: the xDS protocol state machine of
 * `DeltaAggregatedResources`, free of gRPC plumbing. It follows the "Incremental xDS" section of
 * Envoy's xDS protocol document (docs/root/api-docs/xds_protocol.rst):
 *
 * - Subscriptions per type: `resource_names_subscribe` adds names (or aliases), `*` the wildcard;
 *   `resource_names_unsubscribe` drops them (phantom names are ignored). A type's first request
 *   with both lists empty is the legacy wildcard. Several subscribe/unsubscribe names in one
 *   request are applied subscribe first (ztunnel subscribes and unsubscribes `*` together to
 *   "subscribe to nothing" in on-demand mode).
 * - The stream remembers what the client holds (name → version): `initial_resource_versions` of
 *   a type's first request (after a reconnect) and every resource it sent. Only resources whose
 *   version differs are sent; held resources that are gone go in `removed_resources`.
 * - A newly subscribed name is answered even if the client holds its version ("the server must
 *   still provide those resources"; except names declared in `initial_resource_versions` on a
 *   type's first request, which is how a reconnecting client avoids resends), and one that does
 *   not exist is reported in
 *   `removed_resources`. Unsubscribing a name while the wildcard stays is answered with the
 *   resource or its removal ("one exception"). A type's first request is always answered, even
 *   with nothing (ztunnel is not ready until it has one response per type).
 * - Every response has a nonce. A request carrying a nonce of this stream's outstanding
 *   responses is their ACK, or their NACK with `error_detail`; a NACK is logged and counted but
 *   never triggers a resend (the stream already counts the rejected versions as sent, so only a
 *   new version is sent later). Subscription changes are honoured whatever the nonce ("the server
 *   must honor changes to the subscription state even if the nonce is stale").
 * - Responses are not held back for ACKs, except that, as in SotW, pushes go out in the order
 *   CDS, EDS, LDS, RDS, and LDS/RDS wait while a CDS response is unanswered; a CDS response is
 *   followed at once by the endpoints of its clusters (Envoy warms an updated cluster only on a
 *   ClusterLoadAssignment).
 *
 * The per-type version in the debug view ({@link StreamTypeInfo.lastSentVersion}) is a hash over
 * the (name, version) pairs the client holds after a response, kept incrementally.
 */
import { createHash } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { TypeUrl } from '../protos/loader.js';
import { type DeltaConfigWatcher, type DeltaWatchResponse } from '../types.js';
import type { DeltaDiscoveryRequestMessage, DeltaDiscoveryResponseMessage } from './delta-messages.js';
import { AdsStreamBase, typeLabel, type NackInfo, type StreamOptions, type StreamTypeInfo, byPushOrder } from './stream-base.js';

/** Everything a {@link DeltaStream} needs. */
export interface DeltaStreamOptions<Call> extends StreamOptions<Call, DeltaDiscoveryResponseMessage> {
  cache: DeltaConfigWatcher;
}

/** Types held back after a CDS response until the client has answered it. */
const GATED_BY_CDS: ReadonlySet<string> = new Set<string>([TypeUrl.Listener, TypeUrl.RouteConfiguration]);

/** Unanswered responses remembered per type (a client that never answers cannot grow the map). */
const MAX_OUTSTANDING = 64;

interface DeltaTypeState {
  typeUrl: string;
  wildcard: boolean;
  subscribed: Set<string>;
  /** Name → version the client holds (or was sent, even if it rejected it). */
  known: Map<string, string>;
  /** XOR of the 64-bit digests of every `known` (name, version) pair. */
  knownHash: bigint;
  /** Names to answer in the next response whatever the client holds. */
  forced: Set<string>;
  /** No response was sent for this type yet: the next one goes out even if empty. */
  firstAnswerDue: boolean;
  /** Nonce → version of responses not answered yet, oldest first. */
  outstanding: Map<string, string>;
  lastNonce: string | undefined;
  lastSentVersion: string | undefined;
  ackedVersion: string | undefined;
  lastNack: NackInfo | undefined;
  cancelWatch: (() => void) | undefined;
  /** Identifies the current watch; answers from older watches are dropped. */
  watchSeq: number;
  pending: DeltaWatchResponse | undefined;
  /** `pending` was held back by the CDS gate; refresh it from the cache before sending. */
  held: boolean;
}

function pairDigest(name: string, version: string): bigint {
  return createHash('sha256').update(`${name}\0${version}`).digest().readBigUInt64BE(0);
}

/** The protocol state of one delta ADS stream (see the module comment for the rules). */
export class DeltaStream<Call> extends AdsStreamBase<Call, DeltaDiscoveryRequestMessage, DeltaDiscoveryResponseMessage> {
  private readonly types = new Map<string, DeltaTypeState>();
  /** Nonce of the CDS response LDS and RDS wait behind, until the client answers it. */
  private cdsGate: string | undefined;
  private readonly cache: DeltaConfigWatcher;

  constructor(opts: DeltaStreamOptions<Call>) {
    super(opts, 'delta', 'DeltaDiscoveryRequest');
    this.cache = opts.cache;
  }

  protected typeInfos(): StreamTypeInfo[] {
    return [...this.types.values()].map((st) => {
      const t: StreamTypeInfo = { typeUrl: st.typeUrl, resourceNames: [...st.subscribed].sort(), wildcard: st.wildcard, pending: st.pending !== undefined };
      if (st.lastSentVersion !== undefined) t.lastSentVersion = st.lastSentVersion;
      if (st.lastNonce !== undefined) t.lastNonce = st.lastNonce;
      if (st.ackedVersion !== undefined) t.ackedVersion = st.ackedVersion;
      if (st.lastNack !== undefined) t.lastNack = st.lastNack;
      return t;
    });
  }

  protected handle(request: DeltaDiscoveryRequestMessage): void {
    const typeUrl = request.typeUrl;
    if (typeUrl === '') {
      this.fail(Status.INVALID_ARGUMENT, 'DeltaDiscoveryRequest.type_url is required on an aggregated (ADS) stream');
      return;
    }
    let st = this.types.get(typeUrl);
    const first = st === undefined;
    if (!st) {
      st = {
        typeUrl,
        wildcard: false,
        subscribed: new Set(),
        known: new Map(),
        knownHash: 0n,
        forced: new Set(),
        firstAnswerDue: true,
        outstanding: new Map(),
        lastNonce: undefined,
        lastSentVersion: undefined,
        ackedVersion: undefined,
        lastNack: undefined,
        cancelWatch: undefined,
        watchSeq: 0,
        pending: undefined,
        held: false,
      };
      this.types.set(typeUrl, st);
    }

    if (request.responseNonce !== '') this.answered(st, request);
    else if (request.errorDetail) this.log.warn({ type: typeLabel(typeUrl) }, 'DeltaDiscoveryRequest with error_detail but no response_nonce; ignored');

    let changed = first;
    if (first) {
      for (const [name, version] of Object.entries(request.initialResourceVersions)) this.setKnown(st, name, version);
      // Legacy wildcard: a first request that names nothing at all.
      if (request.resourceNamesSubscribe.length === 0 && request.resourceNamesUnsubscribe.length === 0) st.wildcard = true;
    } else if (Object.keys(request.initialResourceVersions).length > 0) {
      this.log.debug({ type: typeLabel(typeUrl) }, 'initial_resource_versions after the first request of a type; ignored');
    }
    for (const name of request.resourceNamesSubscribe) {
      changed = true;
      if (name === '*') {
        st.wildcard = true;
        continue;
      }
      st.subscribed.add(name);
      // On a reconnect the client declares what it holds: those are sent only if they differ.
      if (!(first && Object.hasOwn(request.initialResourceVersions, name))) st.forced.add(name);
    }
    for (const name of request.resourceNamesUnsubscribe) {
      changed = true;
      if (name === '*') {
        if (!st.wildcard) continue;
        st.wildcard = false;
        // Forget what only the wildcard brought; explicitly subscribed names stay.
        for (const held of [...st.known.keys()]) if (!st.subscribed.has(held)) this.deleteKnown(st, held);
        continue;
      }
      st.subscribed.delete(name);
      if (st.wildcard) {
        st.forced.add(name); // tell the client whether the wildcard still covers it
      } else {
        st.forced.delete(name);
        this.deleteKnown(st, name);
      }
    }
    if (!changed) return; // a plain ACK/NACK: the open watch stands
    this.dropWatch(st);
    this.openWatch(st);
  }

  /** The request answers a response (`response_nonce` set): an ACK or a NACK, or stale. */
  private answered(st: DeltaTypeState, request: DeltaDiscoveryRequestMessage): void {
    const nonce = request.responseNonce;
    const version = st.outstanding.get(nonce);
    if (version === undefined) {
      this.log.debug({ type: typeLabel(st.typeUrl), nonce, latest: st.lastNonce }, 'DeltaDiscoveryRequest with an unknown or already answered nonce');
      return;
    }
    // Answers arrive in order: this one also settles every older response of the type.
    for (const key of [...st.outstanding.keys()]) {
      st.outstanding.delete(key);
      if (key === nonce) break;
    }
    if (request.errorDetail) {
      const nack: NackInfo = { nonce, rejectedVersion: version, versionInfo: '', code: request.errorDetail.code, message: request.errorDetail.message };
      st.lastNack = nack;
      this.nackReceived(st.typeUrl, nack);
    } else {
      st.ackedVersion = version;
      this.ackReceived(st.typeUrl, version, nonce);
    }
    if (st.typeUrl === TypeUrl.Cluster && this.cdsGate === nonce) {
      this.cdsGate = undefined;
      this.scheduleFlush(); // release LDS/RDS held behind this CDS response
    }
  }

  private setKnown(st: DeltaTypeState, name: string, version: string): void {
    const old = st.known.get(name);
    if (old === version) return;
    if (old !== undefined) st.knownHash ^= pairDigest(name, old);
    st.known.set(name, version);
    st.knownHash ^= pairDigest(name, version);
  }

  private deleteKnown(st: DeltaTypeState, name: string): void {
    const old = st.known.get(name);
    if (old === undefined) return;
    st.knownHash ^= pairDigest(name, old);
    st.known.delete(name);
  }

  private dropWatch(st: DeltaTypeState): void {
    const cancel = st.cancelWatch;
    st.cancelWatch = undefined;
    st.watchSeq++;
    st.pending = undefined;
    st.held = false;
    cancel?.();
  }

  private openWatch(st: DeltaTypeState): void {
    const seq = ++st.watchSeq;
    const node = this.node as { id: string };
    const cancel = this.cache.createDeltaWatch(
      node.id,
      { typeUrl: st.typeUrl, wildcard: st.wildcard, subscribed: [...st.subscribed], known: st.known, forced: [...st.forced], alwaysRespond: st.firstAnswerDue },
      (response) => {
        if (this.closed || st.watchSeq !== seq) return;
        st.cancelWatch = undefined;
        st.watchSeq++; // a watch answers once
        st.pending = response;
        st.held = false;
        this.scheduleFlush();
      },
    );
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

  /** A held response may be outdated: ask the cache again with the current state. */
  private refresh(st: DeltaTypeState): DeltaWatchResponse | undefined {
    st.held = false;
    st.pending = undefined;
    this.openWatch(st);
    return st.pending; // set by openWatch when the cache answered at once
  }

  private send(st: DeltaTypeState, response: DeltaWatchResponse): void {
    const nonce = this.nextNonce();
    st.pending = undefined;
    for (const r of response.resources) this.setKnown(st, r.name, r.version);
    for (const name of response.removed) this.deleteKnown(st, name);
    st.forced.clear(); // the response was computed for every forced name
    st.firstAnswerDue = false;
    const version = st.knownHash.toString(16).padStart(16, '0');
    st.outstanding.set(nonce, version);
    if (st.outstanding.size > MAX_OUTSTANDING) st.outstanding.delete(st.outstanding.keys().next().value as string);
    st.lastNonce = nonce;
    st.lastSentVersion = version;
    this.opts.sink.send({
      systemVersionInfo: response.systemVersionInfo,
      resources: response.resources.map((r) => ({ name: r.name, version: r.version, ...(r.aliases ? { aliases: r.aliases } : {}), resource: r.resource })),
      typeUrl: st.typeUrl,
      removedResources: response.removed,
      nonce,
    });
    this.opts.metrics.xdsPushes.inc({ type: typeLabel(st.typeUrl) });
    this.log.debug({ type: typeLabel(st.typeUrl), version, nonce, resources: response.resources.length, removed: response.removed.length }, 'xDS delta response sent');
    if (st.typeUrl === TypeUrl.Cluster) {
      this.cdsGate = nonce;
      this.endpointsBehindClusters(response);
    }
    this.openWatch(st); // wait for the next difference
  }

  /**
   * Right after a CDS response, sends the ClusterLoadAssignments of the clusters it carried that
   * the client subscribes to, even if unchanged, so Envoy finishes warming updated clusters.
   */
  private endpointsBehindClusters(clusters: DeltaWatchResponse): void {
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment);
    if (!eds) return;
    const names = clusters.resources.map((r) => r.name).filter((n) => eds.subscribed.has(n));
    if (names.length === 0) return;
    for (const name of names) eds.forced.add(name);
    this.dropWatch(eds);
    this.openWatch(eds);
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
