/**
 * Builds an immutable {@link MeshSnapshot}: resources sorted by key (`Kind/namespace/name`), split
 * by kind, and indexed as `registry/types.ts` describes. Everything reachable from a snapshot is
 * frozen; the maps throw on `set`/`delete`/`clear`.
 */
import { matchesSelector, workloadLabels } from '../resources/selectors.js';
import {
  resourceKey,
  type AuthorizationPolicy,
  type MeshResource,
  type PeerAuthentication,
  type RequestAuthentication,
  type ServiceEntry,
  type Sidecar,
  type WorkloadEntry,
  type WorkloadGroup,
} from '../resources/types.js';
import { comparePrecedence, resolveShortHost, routeTargetHosts } from '../resources/traffic-hosts.js';
import type { DestinationRule, GRPCRoute, HTTPRoute, VirtualService } from '../resources/traffic-types.js';
import { freezeMap } from './read-only-maps.js';
import type { MeshSnapshot } from './types.js';

/** Freezes a plain-data value and everything inside it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** Groups values by a key (each list in `items` order); the lists are frozen. */
export function groupBy<T>(items: readonly T[], key: (t: T) => string): ReadonlyMap<string, readonly T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  for (const list of out.values()) Object.freeze(list);
  return freezeMap(out as Map<string, readonly T[]>);
}

/** `namespace/name` of a resource. */
export function namespacedName(r: { metadata: { namespace: string; name: string } }): string {
  return `${r.metadata.namespace}/${r.metadata.name}`;
}

export { comparePrecedence } from '../resources/traffic-hosts.js';

/** Indexes `items` (already in precedence order) under each of `hosts(item)`; the lists are frozen. */
export function indexByHosts<T>(items: readonly T[], hosts: (t: T) => readonly string[]): ReadonlyMap<string, readonly T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    for (const h of new Set(hosts(item))) {
      const list = out.get(h);
      if (list) list.push(item);
      else out.set(h, [item]);
    }
  }
  for (const list of out.values()) Object.freeze(list);
  return freezeMap(out as Map<string, readonly T[]>);
}

/** `resourceKey` of each resource object put in a snapshot (frozen there, so the key cannot change). */
const KEYS = new WeakMap<MeshResource, string>();

/** `resourceKey(r)`, remembered for frozen objects (those of a snapshot). */
export function keyOfFrozen(r: MeshResource): string {
  let key = KEYS.get(r);
  if (key === undefined) {
    key = resourceKey(r);
    if (Object.isFrozen(r)) KEYS.set(r, key);
  }
  return key;
}

/** Effective labels of each WorkloadEntry object (frozen, so unchanged from one snapshot to the next). */
const WORKLOAD_LABELS = new WeakMap<WorkloadEntry, Readonly<Record<string, string>>>();

/** `workloadLabels(we)`, frozen and remembered per WorkloadEntry object. */
export function labelsOfWorkload(we: WorkloadEntry): Readonly<Record<string, string>> {
  let labels = WORKLOAD_LABELS.get(we);
  if (!labels) {
    labels = Object.freeze(workloadLabels(we));
    WORKLOAD_LABELS.set(we, labels);
  }
  return labels;
}

/** The keys of each snapshot's `resources`, in the same (sorted) order; see {@link sortedKeysOf}. */
const SORTED_KEYS = new WeakMap<MeshSnapshot, readonly string[]>();

/**
 * The keys of `snapshot.resources` in their order, for snapshots made by {@link buildSnapshot} or
 * `updateSnapshot` (undefined for any other object).
 */
export function sortedKeysOf(snapshot: MeshSnapshot): readonly string[] | undefined {
  return SORTED_KEYS.get(snapshot);
}

/** Records the sorted keys of a snapshot made here (frozen). */
export function rememberSortedKeys(snapshot: MeshSnapshot, keys: string[]): void {
  SORTED_KEYS.set(snapshot, Object.freeze(keys));
}

/**
 * Builds snapshot `version` from `resources` (one per key; the caller resolves duplicates). The
 * resource objects are frozen in place: pass objects nothing else mutates.
 *
 * `servicesByHost` holds, for a host several ServiceEntries define, the first by key order.
 */
export function buildSnapshot(version: number, resources: readonly MeshResource[]): MeshSnapshot {
  // Sort by key with each key computed once (not once per comparison).
  const keyed = resources.map((r) => ({ key: keyOfFrozen(r), r }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const sorted = keyed.map((x) => x.r);
  // One pass: freeze and split by kind (in key order).
  const workloadEntries: WorkloadEntry[] = [];
  const workloadGroups: WorkloadGroup[] = [];
  const serviceEntries: ServiceEntry[] = [];
  const sidecars: Sidecar[] = [];
  const peerAuthentications: PeerAuthentication[] = [];
  const authorizationPolicies: AuthorizationPolicy[] = [];
  const requestAuthentications: RequestAuthentication[] = [];
  const destinationRules: DestinationRule[] = [];
  const virtualServices: VirtualService[] = [];
  const httpRoutes: HTTPRoute[] = [];
  const grpcRoutes: GRPCRoute[] = [];
  for (const r of sorted) {
    deepFreeze(r);
    switch (r.kind) {
      case 'WorkloadEntry':
        workloadEntries.push(r);
        break;
      case 'WorkloadGroup':
        workloadGroups.push(r);
        break;
      case 'ServiceEntry':
        serviceEntries.push(r);
        break;
      case 'Sidecar':
        sidecars.push(r);
        break;
      case 'PeerAuthentication':
        peerAuthentications.push(r);
        break;
      case 'AuthorizationPolicy':
        authorizationPolicies.push(r);
        break;
      case 'RequestAuthentication':
        requestAuthentications.push(r);
        break;
      case 'DestinationRule':
        destinationRules.push(r);
        break;
      case 'VirtualService':
        virtualServices.push(r);
        break;
      case 'HTTPRoute':
        httpRoutes.push(r);
        break;
      case 'GRPCRoute':
        grpcRoutes.push(r);
        break;
      default:
        break;
    }
  }
  destinationRules.sort(comparePrecedence);
  virtualServices.sort(comparePrecedence);
  httpRoutes.sort(comparePrecedence);
  grpcRoutes.sort(comparePrecedence);
  const serviceEntryByName = new Map(serviceEntries.map((se) => [namespacedName(se), se]));
  const lookupServiceEntry = (ns: string, name: string): ServiceEntry | undefined => serviceEntryByName.get(`${ns}/${name}`);

  const servicesByHost = new Map<string, ServiceEntry>();
  for (const se of serviceEntries) {
    for (const host of se.spec.hosts) if (!servicesByHost.has(host)) servicesByHost.set(host, se);
  }
  const workloadsByName = new Map<string, WorkloadEntry>(workloadEntries.map((we) => [namespacedName(we), we]));
  const workloadsByNamespace = groupBy(workloadEntries, (we) => we.metadata.namespace);

  // Selector matching through a `namespace → label=value → workloads` index: a selector is
  // checked only against the workloads carrying the rarest of its pairs (not every workload of
  // its namespace: 1,000 ServiceEntries × 1,000 workloads per namespace were 1M checks).
  const labelsOf = new Map<WorkloadEntry, Readonly<Record<string, string>>>(workloadEntries.map((we) => [we, labelsOfWorkload(we)]));
  const byLabel = new Map<string, WorkloadEntry[]>();
  for (const we of workloadEntries) {
    for (const [k, v] of Object.entries(labelsOf.get(we) ?? {})) {
      const key = `${we.metadata.namespace}\0${k}\0${v}`;
      const list = byLabel.get(key);
      if (list) list.push(we);
      else byLabel.set(key, [we]);
    }
  }
  const candidatesOf = (namespace: string, labels: Readonly<Record<string, string>> | undefined): readonly WorkloadEntry[] => {
    const all = workloadsByNamespace.get(namespace) ?? [];
    if (labels === undefined) return all;
    let best: readonly WorkloadEntry[] | undefined;
    for (const [k, v] of Object.entries(labels)) {
      const list = byLabel.get(`${namespace}\0${k}\0${v}`) ?? [];
      if (best === undefined || list.length < best.length) best = list;
    }
    return best ?? all;
  };

  const workloadsByService = new Map<string, WorkloadEntry[]>();
  const servicesByWorkload = new Map<string, ServiceEntry[]>();
  for (const se of serviceEntries) {
    const selector = se.spec.workloadSelector;
    if (selector === undefined) continue;
    const selected = candidatesOf(se.metadata.namespace, selector.labels).filter((we) => matchesSelector(selector.labels, labelsOf.get(we)));
    workloadsByService.set(namespacedName(se), selected);
    for (const we of selected) {
      const key = namespacedName(we);
      const list = servicesByWorkload.get(key);
      if (list) list.push(se);
      else servicesByWorkload.set(key, [se]);
    }
  }
  for (const list of workloadsByService.values()) Object.freeze(list);
  for (const list of servicesByWorkload.values()) Object.freeze(list);

  const snapshot: MeshSnapshot = Object.freeze({
    version,
    resources: Object.freeze(sorted),
    workloadEntries: Object.freeze(workloadEntries),
    workloadGroups: Object.freeze(workloadGroups),
    serviceEntries: Object.freeze(serviceEntries),
    sidecars: Object.freeze(sidecars),
    peerAuthentications: Object.freeze(peerAuthentications),
    authorizationPolicies: Object.freeze(authorizationPolicies),
    requestAuthentications: Object.freeze(requestAuthentications),
    servicesByHost: freezeMap(servicesByHost),
    workloadsByName: freezeMap(workloadsByName),
    workloadsByAddress: groupBy(
      workloadEntries.filter((we) => we.spec.address !== undefined),
      (we) => we.spec.address ?? '',
    ),
    destinationRules: Object.freeze(destinationRules),
    virtualServices: Object.freeze(virtualServices),
    httpRoutes: Object.freeze(httpRoutes),
    grpcRoutes: Object.freeze(grpcRoutes),
    destinationRulesByHost: indexByHosts(destinationRules, (dr) => [resolveShortHost(dr.spec.host, dr.metadata.namespace)]),
    virtualServicesByHost: indexByHosts(virtualServices, (vs) => (vs.spec.hosts ?? []).map((h) => resolveShortHost(h, vs.metadata.namespace))),
    httpRoutesByHost: indexByHosts(httpRoutes, (r) => routeTargetHosts(r, lookupServiceEntry)),
    grpcRoutesByHost: indexByHosts(grpcRoutes, (r) => routeTargetHosts(r, lookupServiceEntry)),
    byKey: freezeMap(new Map(keyed.map((x) => [x.key, x.r]))),
    workloadsByNamespace,
    workloadsByService: freezeMap(workloadsByService as Map<string, readonly WorkloadEntry[]>),
    servicesByWorkload: freezeMap(servicesByWorkload as Map<string, readonly ServiceEntry[]>),
    sidecarsByNamespace: groupBy(sidecars, (s) => s.metadata.namespace),
    peerAuthenticationsByNamespace: groupBy(peerAuthentications, (p) => p.metadata.namespace),
    authorizationPoliciesByNamespace: groupBy(authorizationPolicies, (p) => p.metadata.namespace),
    requestAuthenticationsByNamespace: groupBy(requestAuthentications, (p) => p.metadata.namespace),
  });
  rememberSortedKeys(snapshot, keyed.map((x) => x.key));
  return snapshot;
}
