/**
 * Connected proxies and their pushes: for each node with an open ADS stream, compute its push
 * context (IR) from the current registry snapshot, translate it to Envoy resources and hand them
 * to the snapshot cache. On a registry change every connected proxy is recomputed; the cache
 * drops snapshots whose resource versions did not change, so unaffected proxies get no push.
 *
 * Translation is shared between proxies ({@link SharedTranslator}, issue 9: "encode each
 * distinct resource once and share the bytes among proxies that see it"). A proxy's IR splits into
 *
 *  - its own part: inbound listeners, inbound clusters, HBONE termination (they name its address);
 *  - the outbound part: outbound listeners and routes, outbound/external clusters and their
 *    ClusterLoadAssignments. Proxies that see the same services get the same outbound part, and
 *    the Envoy translation of it reads nothing of the proxy but its trust domain
 *    (`upstreamTransportSocket`'s SAN prefix) and the trust domain aliases.
 *
 * The outbound part is translated once per distinct content (keyed by its JSON) and the resulting
 * `VersionedResource`s (encoded bytes and content versions) are shared by every proxy with that
 * content; the own part is translated per proxy, and again only when it changed (a proxy keeps
 * the JSON of its last own part and that part's translation). Where the split could change the outcome it
 * is not used: endpoints tunnelled over HBONE (their CONNECT originate listeners read the whole
 * IR), or a resource name produced by both parts with different content.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../observability/logger.js';
import type { ControlPlaneMetrics } from '../../observability/metrics.js';
import type { MeshSnapshot } from '../../registry/types.js';
import type { MeshResource } from '../../resources/types.js';
import { sameResource } from '../../resources/equal.js';
import type { ClusterIR, ProxyIdentity, ProxyIR } from '../../ir/types.js';
import { validate } from '../../ir/validate.js';
import { buildProxyIR, egressPartFor, egressShareOf, type BuildExtras } from '../../push/index.js';
import { translateEnvoy, type EnvoyTranslation } from '../../translate/envoy/index.js';
import { isGrpcNode, translateGrpc } from '../../translate/grpc/index.js';
import type { SnapshotCache } from '../../xds/cache/index.js';
import type { VersionedResource } from '../../xds/types.js';

interface Entry {
  translation: EnvoyTranslation;
  /** How many proxies' current configuration uses the entry. */
  users: number;
}

/** Counters for tests and debug views. */
export interface SharedTranslationStats {
  /** Outbound parts translated (cache misses). */
  translated: number;
  /** Outbound parts reused (cache hits). */
  reused: number;
  /** Proxies translated whole (the split did not apply). */
  whole: number;
  /** Cached outbound parts. */
  entries: number;
}

/**
 * Content ids of IR objects: equal JSON (by its SHA-256) gets an equal id (ids are never reused), cached per object,
 * so shared objects (src/push/outbound-share.ts) are serialised once. `ids` forgets old contents
 * past a bound; an object seen again after that gets a new id, which costs a translation, never a
 * wrong answer.
 */
class ContentIds {
  private readonly byObject = new WeakMap<object, number>();
  private ids = new Map<string, number>();
  private next = 0;

  of(o: object): number {
    let id = this.byObject.get(o);
    if (id === undefined) {
      // A digest of the JSON, not the JSON: the table holds ~100 bytes per distinct content.
      const digest = createHash('sha256').update(JSON.stringify(o)).digest('base64');
      id = this.ids.get(digest);
      if (id === undefined) {
        if (this.ids.size >= 200_000) this.ids = new Map();
        id = this.next++;
        this.ids.set(digest, id);
      }
      this.byObject.set(o, id);
    }
    return id;
  }
}

/**
 * The content key of an outbound part (IR objects are not modified after the push context is
 * built, so an object's content id can be cached).
 */
function partKey(part: ProxyIR, ids: ContentIds): string {
  let key = `${JSON.stringify(part.proxy)}|${JSON.stringify(part.trustDomainAliases)}|`;
  for (const l of part.outbound) key += `${ids.of(l)},`;
  key += '|';
  for (const c of part.clusters) key += `${ids.of(c)},`;
  key += '|';
  for (const la of part.loadAssignments) key += `${ids.of(la)},`;
  return key;
}

function isInbound(c: ClusterIR): boolean {
  return c.direction === 'inbound';
}

const EMPTY: ReadonlyMap<string, VersionedResource> = new Map();

/** A proxy's merged map of one type and the two maps it was merged from. */
interface MergedType {
  shared: ReadonlyMap<string, VersionedResource>;
  own: ReadonlyMap<string, VersionedResource>;
  merged: ReadonlyMap<string, VersionedResource>;
}

/** Whether two type maps hold the same names and versions, remembered per pair of maps. */
const SAME_VERSIONS = new WeakMap<ReadonlyMap<string, VersionedResource>, WeakMap<ReadonlyMap<string, VersionedResource>, boolean>>();

function sameTypeVersions(a: ReadonlyMap<string, VersionedResource>, b: ReadonlyMap<string, VersionedResource>): boolean {
  let byB = SAME_VERSIONS.get(a);
  const known = byB?.get(b);
  if (known !== undefined) return known;
  let same = a.size === b.size;
  if (same) {
    for (const [name, r] of a) {
      if (b.get(name)?.version !== r.version) {
        same = false;
        break;
      }
    }
  }
  if (!byB) {
    byB = new WeakMap();
    SAME_VERSIONS.set(a, byB);
  }
  byB.set(b, same);
  return same;
}

function merge(a: ReadonlyMap<string, VersionedResource> | undefined, b: ReadonlyMap<string, VersionedResource> | undefined): Map<string, VersionedResource> | undefined {
  const out = new Map(a ?? []);
  for (const [name, r] of b ?? []) {
    const have = out.get(name);
    if (have && have.version !== r.version) return undefined;
    out.set(name, r);
  }
  return out;
}

/**
 * Translates proxies' IRs to Envoy resources, sharing the outbound part's translation between
 * proxies whose outbound part is equal. Entries are counted by the proxies (node ids) whose current
 * configuration uses them and dropped when none does ({@link release} when a proxy leaves).
 */
export class SharedTranslator {
  private readonly cache = new Map<string, Entry>();
  /** The cache key each proxy's current configuration uses, by node id. */
  private readonly keyOf = new Map<string, string>();
  /** Each proxy's merged type maps (outbound and own resources of one type), by type URL. */
  private readonly mergedOf = new Map<string, Map<string, MergedType>>();
  /** Each proxy's own part (its JSON) and its translation, reused while the own part is unchanged. */
  private readonly ownOf = new Map<string, { key: string; translation: EnvoyTranslation }>();
  private readonly stats = { translated: 0, reused: 0, whole: 0 };
  private readonly ids = new ContentIds();

  /** Forgets that proxy `nodeId` uses an outbound part (it disconnected); unused parts are dropped. */
  release(nodeId: string): void {
    this.ownOf.delete(nodeId);
    this.mergedOf.delete(nodeId);
    this.releaseOutbound(nodeId);
  }

  /** Forgets that proxy `nodeId` uses its outbound part; the part is dropped when no proxy does. */
  private releaseOutbound(nodeId: string): void {
    const key = this.keyOf.get(nodeId);
    if (key === undefined) return;
    this.keyOf.delete(nodeId);
    const entry = this.cache.get(key);
    if (entry && --entry.users <= 0) this.cache.delete(key);
  }

  /** Forgets everything (e.g. when the last proxy disconnected). */
  clear(): void {
    this.ownOf.clear();
    this.mergedOf.clear();
    this.cache.clear();
    this.keyOf.clear();
  }

  /** Counters (see {@link SharedTranslationStats}). */
  statistics(): SharedTranslationStats {
    return { ...this.stats, entries: this.cache.size };
  }

  /**
   * The Envoy translation of `ir`, equal to `translateEnvoy(ir)` (same names and content
   * versions); outbound resources are shared objects. Throws what `translateEnvoy` throws.
   */
  translate(ir: ProxyIR): EnvoyTranslation {
    const owner = ir.proxy.nodeId;
    if (hasHboneEndpoints(ir.loadAssignments)) {
      this.release(owner);
      this.stats.whole += 1;
      return translateEnvoy(ir);
    }
    const outboundPart = outboundPartOf(ir.proxy.trustDomain, ir.trustDomainAliases, ir.outbound, ir.clusters.filter((c) => !isInbound(c)), ir.loadAssignments);
    const ownPart: ProxyIR = { ...ir, outbound: [], clusters: ir.clusters.filter(isInbound), loadAssignments: [], warnings: [] };
    const shared = this.sharedTranslation(owner, outboundPart);
    // The own part is translated again only when it changed (the inbound side rarely does).
    const ownKey = JSON.stringify(ownPart);
    const before = this.ownOf.get(owner);
    const own = before?.key === ownKey ? before.translation : translateEnvoy(ownPart);
    this.ownOf.set(owner, { key: ownKey, translation: own });
    const out = this.combine(owner, shared, own);
    if (out) return out;
    this.stats.whole += 1;
    return translateEnvoy(ir);
  }

  /**
   * The translation of proxy `nodeId` with a new outbound part (`outboundPart`: its outbound
   * listeners, clusters and load assignments, as {@link translate} splits them) and the own part
   * translated last time, or undefined when there is no own part on record or the two parts
   * cannot be combined (then translate the whole IR with {@link translate}).
   */
  translateOutbound(nodeId: string, outboundPart: ProxyIR): EnvoyTranslation | undefined {
    const own = this.ownOf.get(nodeId)?.translation;
    if (!own || hasHboneEndpoints(outboundPart.loadAssignments)) return undefined;
    return this.combine(nodeId, this.sharedTranslation(nodeId, outboundPart), own);
  }

  /** The shared translation of `outboundPart`, counted as used by `owner`. */
  private sharedTranslation(owner: string, outboundPart: ProxyIR): EnvoyTranslation {
    const key = partKey(outboundPart, this.ids);
    let entry = this.cache.get(key);
    if (entry) this.stats.reused += 1;
    else {
      entry = { translation: translateEnvoy(outboundPart), users: 0 };
      this.cache.set(key, entry);
      this.stats.translated += 1;
    }
    if (this.keyOf.get(owner) !== key) {
      entry.users += 1;
      this.releaseOutbound(owner);
      this.keyOf.set(owner, key);
    }
    return entry.translation;
  }

  /** Merges the shared and the own translation of `owner`; undefined when a name clashes. */
  private combine(owner: string, shared: EnvoyTranslation, own: EnvoyTranslation): EnvoyTranslation | undefined {
    const resources = new Map<string, ReadonlyMap<string, VersionedResource>>();
    const last = this.mergedOf.get(owner);
    const mergedNow = new Map<string, MergedType>();
    for (const typeUrl of new Set([...shared.resources.keys(), ...own.resources.keys()])) {
      const s = shared.resources.get(typeUrl) ?? EMPTY;
      const o = own.resources.get(typeUrl) ?? EMPTY;
      // One side empty: its map as it is (shared by every proxy of the outbound part, so the
      // cache sorts and hashes it once).
      if (o.size === 0 || s.size === 0) {
        resources.set(typeUrl, o.size === 0 ? s : o);
        continue;
      }
      // Both: the map merged last time while neither side's names and versions changed.
      const before = last?.get(typeUrl);
      let merged: ReadonlyMap<string, VersionedResource> | undefined =
        before && before.own === o && (before.shared === s || sameTypeVersions(before.shared, s)) ? before.merged : undefined;
      merged ??= merge(s, o);
      if (!merged) {
        this.mergedOf.delete(owner);
        return undefined;
      }
      mergedNow.set(typeUrl, { shared: s, own: o, merged });
      resources.set(typeUrl, merged);
    }
    this.mergedOf.set(owner, mergedNow);
    const references = new Map<string, Set<string>>();
    for (const refs of [shared.references, own.references]) {
      for (const [typeUrl, names] of refs) {
        let set = references.get(typeUrl);
        if (!set) {
          set = new Set();
          references.set(typeUrl, set);
        }
        for (const n of names) set.add(n);
      }
    }
    const warnings = [...new Set([...shared.warnings, ...own.warnings])];
    return { resources, references, warnings };
  }
}

/** Whether any endpoint is tunnelled over HBONE (its CONNECT originate listeners read the whole IR). */
function hasHboneEndpoints(loadAssignments: ProxyIR['loadAssignments']): boolean {
  return loadAssignments.some((la) => la.endpoints.some((e) => e.hbone === true));
}

/**
 * The outbound part of a proxy's IR as {@link SharedTranslator} translates it: outbound
 * listeners, outbound and external clusters, load assignments, and of the proxy only its trust
 * domain (and the trust domain aliases).
 */
export function outboundPartOf(
  trustDomain: string,
  trustDomainAliases: readonly string[],
  outbound: readonly ProxyIR['outbound'][number][],
  clusters: readonly ProxyIR['clusters'][number][],
  loadAssignments: readonly ProxyIR['loadAssignments'][number][],
): ProxyIR {
  return {
    proxy: { nodeId: '', ip: '0.0.0.0', namespace: '', serviceAccount: '', labels: {}, trustDomain, spiffeId: '' },
    inbound: [],
    outbound: [...outbound],
    clusters: [...clusters],
    loadAssignments: [...loadAssignments],
    extAuthzProviders: [],
    trustDomainAliases: [...trustDomainAliases],
    warnings: [],
  };
}

/**
 * How long a push round computes before it yields to the event loop, in ms: responses computed so
 * far go out (and ACKs come in) while the remaining proxies wait, so the first proxies are not
 * held until the last one is computed.
 */
const SLICE_MS = 10;

/**
 * Tracks connected proxies (by node id, counting streams) and recomputes their snapshots. A push
 * round ({@link ProxyPusher.pushAll}) runs in slices of about {@link SLICE_MS} ms; a snapshot
 * published during a round joins it: the proxies still waiting are computed from the newest
 * snapshot, and those it affects are added.
 */
export class ProxyPusher {
  private readonly proxies = new Map<string, ConnectedProxy>();
  /** The snapshot of the last {@link pushAll}, to diff the next one against. */
  private last: MeshSnapshot | undefined;
  private readonly warned = new Set<string>();
  private readonly translator = new SharedTranslator();
  /**
   * Proxies to recompute in the running push round (see {@link runSlice}), each with whether it
   * needs a whole recomputation (true) or only its outbound part may have changed (false).
   */
  private readonly pending = new Map<string, boolean>();
  /** Egress parts that passed validate() as part of a whole IR (see {@link pushOutbound}). */
  private readonly validParts = new WeakSet<object>();
  private readonly round: { snapshot?: MeshSnapshot; scope: string; timer?: NodeJS.Immediate; started?: bigint; recomputed: number; endpointsOnly: number } = { scope: 'all', recomputed: 0, endpointsOnly: 0 };

  constructor(
    private readonly deps: {
      cache: SnapshotCache;
      current: () => MeshSnapshot;
      /** Mesh config and fetched JWKS, read at every push. */
      extras: () => BuildExtras;
      logger: Logger;
      metrics: ControlPlaneMetrics;
    },
  ) {}

  /**
   * A stream for `identity.nodeId` opened: compute and publish its snapshot. Node `metadata` with
   * `GENERATOR: grpc` (Istio's marker) selects the proxyless gRPC translator instead of Envoy's.
   */
  connect(identity: ProxyIdentity, metadata?: Readonly<Record<string, unknown>>): void {
    const entry = this.proxies.get(identity.nodeId);
    if (entry) entry.streams += 1;
    else this.proxies.set(identity.nodeId, { identity, streams: 1, computedVersion: -1, ...(isGrpcNode(metadata) ? { grpc: true } : {}) });
    const snapshot = this.deps.current();
    // The next round diffs against what this proxy was computed from (a registry that published
    // before the pusher was subscribed has given it no round yet).
    this.last ??= snapshot;
    this.push(identity, snapshot);
  }

  /** A stream closed; the node's snapshot is dropped with its last stream. */
  disconnect(nodeId: string): void {
    const entry = this.proxies.get(nodeId);
    if (!entry) return;
    entry.streams -= 1;
    if (entry.streams <= 0) {
      this.proxies.delete(nodeId);
      this.translator.release(nodeId);
      this.deps.cache.clearNode(nodeId);
      if (this.proxies.size === 0) this.translator.clear();
    }
  }

  /**
   * Recomputes the connected proxies a new registry snapshot can affect (DESIGN.md §1: "only
   * proxies whose slice intersects a change are recomputed"); with `force` (mesh config or JWKS
   * changed, not the registry) every proxy. See {@link registryChange} for what counts. The
   * first slice is computed before it returns, the rest in later event-loop turns.
   */
  pushAll(snapshot: MeshSnapshot, force = false): void {
    const change = force || !this.last ? undefined : registryChange(this.last, snapshot);
    this.last = snapshot;
    for (const [nodeId, p] of this.proxies) {
      // A proxy still waiting from the previous round is recomputed whatever this change is.
      const waiting = this.pending.get(nodeId);
      if (waiting === undefined && change && p.deps && !affects(change, p.identity, p.deps)) {
        p.computedVersion = snapshot.version;
        continue;
      }
      const whole = !change || change.all || !p.deps || affectsOwn(change, p.identity, p.deps);
      this.pending.set(nodeId, (waiting ?? false) || whole);
    }
    this.round.snapshot = snapshot;
    this.round.scope = change ? (change.all ? 'all' : 'workloads') : 'forced';
    if (this.round.timer === undefined && this.round.started === undefined) {
      this.round.started = process.hrtime.bigint();
      this.round.recomputed = 0;
      this.round.endpointsOnly = 0;
      this.runSlice();
    }
  }

  /** Whether a push round is in progress (proxies are waiting to be recomputed). */
  pushing(): boolean {
    return this.pending.size > 0;
  }

  /** Stops a push round in progress (the control plane is shutting down). */
  stop(): void {
    if (this.round.timer) clearImmediate(this.round.timer);
    this.round.timer = undefined;
    this.round.started = undefined;
    this.pending.clear();
  }

  /**
   * Recomputes pending proxies for about {@link SLICE_MS} ms, then yields to the event loop (the
   * responses just computed are written and ACKs read while the rest waits) and continues.
   */
  private runSlice(): void {
    this.round.timer = undefined;
    const snapshot = this.round.snapshot;
    if (!snapshot) return;
    const deadline = performance.now() + SLICE_MS;
    try {
      for (const [nodeId, whole] of this.pending) {
        this.pending.delete(nodeId);
        const p = this.proxies.get(nodeId);
        if (p) {
          this.round.recomputed += 1;
          if (!whole && this.pushOutbound(p, snapshot)) this.round.endpointsOnly += 1;
          else this.push(p.identity, snapshot);
        }
        if (performance.now() >= deadline) break;
      }
    } catch (err) {
      // push() and pushOutbound() catch their own errors; this is a last guard so that a round
      // never stops half-way (no later round would start).
      this.deps.logger.error({ err, snapshot: snapshot.version }, 'push round failed; continuing with the next proxies');
    }
    if (this.pending.size > 0) {
      this.round.timer = setImmediate(() => this.runSlice());
      return;
    }
    const started = this.round.started ?? process.hrtime.bigint();
    this.round.started = undefined;
    this.deps.logger.debug(
      { snapshot: snapshot.version, proxies: this.proxies.size, recomputed: this.round.recomputed, endpointsOnly: this.round.endpointsOnly, scope: this.round.scope },
      'proxies recomputed',
    );
    this.deps.metrics.pushSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  /**
   * Connected proxies, for `/debug/proxies` and `/debug/syncz`: `computedVersion` is the registry
   * snapshot version the proxy's current config was computed from (-1: none yet).
   */
  list(): { nodeId: string; spiffeId: string; streams: number; computedVersion: number }[] {
    return [...this.proxies.values()].map((p) => ({ nodeId: p.identity.nodeId, spiffeId: p.identity.spiffeId, streams: p.streams, computedVersion: p.computedVersion }));
  }

  /**
   * The endpoints-only path (a change made only of WorkloadEntries that are not the proxy's own):
   * the proxy keeps its own part and takes the outbound part built for its sharing key from
   * `snapshot` (src/push/outbound-share.ts) by the first proxy of that key recomputed in the
   * round. False when it does not apply (then the proxy is recomputed whole): a proxyless
   * client, an IR with more than the shared egress part, no part built for the key yet, HBONE
   * endpoints, or a name clash.
   */
  private pushOutbound(p: ConnectedProxy, snapshot: MeshSnapshot): boolean {
    if (p.grpc || p.shareKey === undefined || !p.deps) return false;
    const part = egressPartFor(snapshot, p.shareKey);
    // Only a part that passed validate() in the whole IR of the proxy that built it.
    if (!part || !this.validParts.has(part)) return false;
    const { identity } = p;
    try {
      const aliases = [...new Set(this.deps.extras().meshConfig?.trustDomainAliases ?? [])].filter((td) => td !== identity.trustDomain);
      const out = this.translator.translateOutbound(identity.nodeId, outboundPartOf(identity.trustDomain, aliases, part.sorted.outbound, part.sorted.clusters, part.sorted.loadAssignments));
      if (!out) return false;
      this.deps.cache.setSnapshot(identity.nodeId, { resources: out.resources, references: out.references });
      this.warn(identity.nodeId, [...part.warnings, ...out.warnings], snapshot.version);
    } catch {
      return false; // recomputed whole, which logs the error and keeps the last good config
    }
    const hosts = new Set<string>();
    for (const c of part.clusters) if (c.direction === 'outbound') hosts.add(c.host);
    p.computedVersion = snapshot.version;
    p.deps = { hosts, ...(p.deps.workload !== undefined ? { workload: p.deps.workload } : {}) };
    return true;
  }

  /** Logs each warning once per proxy. */
  private warn(nodeId: string, warnings: readonly string[], version: number): void {
    for (const w of warnings) {
      const key = `${nodeId}|${w}`;
      if (this.warned.has(key)) continue;
      this.warned.add(key);
      this.deps.logger.warn({ node: nodeId, snapshot: version }, w);
    }
  }

  private push(identity: ProxyIdentity, snapshot: MeshSnapshot): void {
    // Until this push succeeds the proxy's config is older than `snapshot`: without dependencies
    // it is recomputed on every change (never skipped as unaffected).
    const entry = this.proxies.get(identity.nodeId);
    if (entry) {
      delete entry.deps;
      delete entry.shareKey;
    }
    try {
      const ir = buildProxyIR(snapshot, identity, this.deps.extras());
      const errors = validate(ir);
      if (errors.length > 0) {
        this.deps.logger.error({ node: identity.nodeId, errors, snapshot: snapshot.version }, 'proxy config invalid; keeping the last good config');
        return;
      }
      const out = entry?.grpc ? translateGrpc(ir) : this.translator.translate(ir);
      this.warn(identity.nodeId, [...ir.warnings, ...out.warnings], snapshot.version);
      this.deps.cache.setSnapshot(identity.nodeId, { resources: out.resources, references: out.references });
      if (entry) {
        entry.computedVersion = snapshot.version;
        entry.deps = dependenciesOf(ir);
        // Later endpoint-only changes may take the endpoints-only path when the IR is its own
        // part plus exactly the shared egress part.
        const share = entry.grpc ? undefined : egressShareOf(ir);
        if (share) this.validParts.add(share.part);
        const outboundClusters = ir.clusters.length - ir.clusters.filter(isInbound).length;
        if (share && outboundClusters === share.part.clusters.length && ir.loadAssignments.length === share.part.loadAssignments.length) entry.shareKey = share.key;
      }
    } catch (err) {
      this.deps.logger.error({ node: identity.nodeId, err, snapshot: snapshot.version }, 'computing proxy config failed; keeping the last good config');
    }
  }
}

/** A proxy with at least one open ADS stream. */
interface ConnectedProxy {
  identity: ProxyIdentity;
  streams: number;
  /** The registry snapshot version its configuration was computed from (-1: none yet). */
  computedVersion: number;
  /** A proxyless gRPC client (translated by src/translate/grpc). */
  grpc?: boolean;
  deps?: ProxyDependencies;
  /** Its egress sharing key, when its IR is its own part plus exactly the shared egress part. */
  shareKey?: string;
}

/** What a proxy's configuration was computed from, beyond mesh-wide resources. */
export interface ProxyDependencies {
  /** Service hosts it has outbound clusters for (their endpoints are in its config). */
  hosts: ReadonlySet<string>;
  /** Its own WorkloadEntry (`ns/name`) when it had one. */
  workload?: string;
}

/** The dependencies of a computed IR. */
export function dependenciesOf(ir: ProxyIR): ProxyDependencies {
  const hosts = new Set<string>();
  for (const c of ir.clusters) if (c.direction === 'outbound') hosts.add(c.host);
  return { hosts, ...(ir.proxy.workloadName !== undefined ? { workload: `${ir.proxy.namespace}/${ir.proxy.workloadName}` } : {}) };
}

/**
 * What changed between two registry snapshots, in the terms proxies depend on. `all` when anything
 * but WorkloadEntries changed (a ServiceEntry, Sidecar, policy, route...: conservatively every
 * proxy); otherwise the changed WorkloadEntries (`ns/name`), their addresses, and the hosts of the
 * services that select them before or after the change.
 */
export interface RegistryChange {
  all: boolean;
  workloads: Set<string>;
  addresses: Set<string>;
  hosts: Set<string>;
}

/** Diffs two snapshots by resource key (unchanged objects compare by identity first, then by content). */
export function registryChange(prev: MeshSnapshot, next: MeshSnapshot): RegistryChange {
  const change: RegistryChange = { all: false, workloads: new Set(), addresses: new Set(), hosts: new Set() };
  const note = (r: MeshResource, snapshot: MeshSnapshot): void => {
    if (r.kind !== 'WorkloadEntry') {
      change.all = true;
      return;
    }
    const key = `${r.metadata.namespace}/${r.metadata.name}`;
    change.workloads.add(key);
    if (r.spec.address) change.addresses.add(r.spec.address);
    for (const se of snapshot.servicesByWorkload.get(key) ?? []) for (const h of se.spec.hosts) change.hosts.add(h);
  };
  for (const [key, r] of next.byKey) {
    const before = prev.byKey.get(key);
    if (before === r || (before && sameResource(before, r))) continue;
    note(r, next);
    if (before) note(before, prev);
    if (change.all) return change;
  }
  for (const [key, r] of prev.byKey) {
    if (next.byKey.has(key)) continue;
    note(r, prev);
    if (change.all) return change;
  }
  return change;
}

/**
 * True when `change` touches the proxy itself (its own WorkloadEntry, or a workload at its address),
 * not only the endpoints of services it routes to.
 */
export function affectsOwn(change: RegistryChange, identity: ProxyIdentity, deps: ProxyDependencies): boolean {
  if (change.addresses.has(identity.ip)) return true;
  if (deps.workload !== undefined && change.workloads.has(deps.workload)) return true;
  return identity.workloadName !== undefined && change.workloads.has(`${identity.namespace}/${identity.workloadName}`);
}

/** True when `change` can alter the configuration of the proxy `identity` computed with `deps`. */
export function affects(change: RegistryChange, identity: ProxyIdentity, deps: ProxyDependencies): boolean {
  if (change.all) return true;
  if (change.addresses.has(identity.ip)) return true;
  if (deps.workload !== undefined && change.workloads.has(deps.workload)) return true;
  if (identity.workloadName !== undefined && change.workloads.has(`${identity.namespace}/${identity.workloadName}`)) return true;
  for (const h of change.hosts) if (deps.hosts.has(h)) return true;
  return false;
}
