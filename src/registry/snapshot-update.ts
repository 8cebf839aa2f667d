/**
 * Derives the next {@link MeshSnapshot} from the previous one and what changed, in time proportional
 * to the change rather than to the mesh: a WorkloadEntry joining a service of an 11,000-resource
 * mesh re-sorts, re-indexes and re-matches nothing else. The result holds exactly what
 * {@link buildSnapshot} makes from the same resources (the same lists in the same order, the same
 * map entries; `snapshot-update.test.ts` checks it against a full build): only the iteration
 * order of the lookup maps may differ, except `byKey`, which stays in key order.
 *
 * What is recomputed, per kind that changed:
 * - every key-ordered list (all resources and the per-kind ones): the changed entries are removed
 *   and inserted by binary search;
 * - WorkloadEntry indexes (by name, namespace, address): only the changed names, namespaces and
 *   addresses;
 * - selection (`workloadsByService`, `servicesByWorkload`): a changed ServiceEntry is matched
 *   against its namespace's workloads; a changed WorkloadEntry against its namespace's
 *   ServiceEntries; and the services of every workload either touched are listed again;
 * - the small indexes (services by host, routes and policies by host or namespace) are rebuilt
 *   from their kind's list when that kind, or for routes a ServiceEntry, changed.
 */
import { matchesSelector } from '../resources/selectors.js';
import type { MeshResource, ServiceEntry, WorkloadEntry } from '../resources/types.js';
import { comparePrecedence, resolveShortHost, routeTargetHosts } from '../resources/traffic-hosts.js';
import { freezeMap, KeyOrderedMap, LayeredMap } from './read-only-maps.js';
import {
  buildSnapshot,
  deepFreeze,
  groupBy,
  indexByHosts,
  keyOfFrozen,
  labelsOfWorkload,
  namespacedName,
  rememberSortedKeys,
  sortedKeysOf,
} from './snapshot.js';
import type { MeshSnapshot } from './types.js';

/** What changed from one snapshot to the next. */
export interface SnapshotChanges {
  /** Keys (`Kind/namespace/name`) whose resource is gone; keys the snapshot lacks are ignored. */
  removed: Iterable<string>;
  /**
   * Resources added or replacing the one of their key; at most one per key and none whose key is
   * also in `removed`. They are frozen in place (pass objects nothing else mutates).
   */
  upserted: Iterable<MeshResource>;
}

/** One changed key: the resource before (if any) and after (if any). */
interface Change {
  key: string;
  old: MeshResource | undefined;
  next: MeshResource | undefined;
}

/** First index in `keys` (sorted) whose key is not below `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in `list` (sorted by key) whose resource's key is not below `key`. */
function lowerBoundByKey(list: readonly MeshResource[], key: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOfFrozen(list[mid]!) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * `list` (sorted by key) without the resources of `drop` and with those of `add` (both by key),
 * still sorted by key; a new array.
 */
function updateSorted<R extends MeshResource>(list: readonly R[], drop: readonly MeshResource[], add: readonly R[]): R[] {
  const out = list.slice();
  for (const r of drop) {
    const key = keyOfFrozen(r);
    const i = lowerBoundByKey(out, key);
    if (i < out.length && keyOfFrozen(out[i]!) === key) out.splice(i, 1);
  }
  for (const r of add) out.splice(lowerBoundByKey(out, keyOfFrozen(r)), 0, r);
  return out;
}

/** Appends `value` to the list of `key` in `map`. */
function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Snapshot `version`: `previous` with `changes` applied (see the module comment). Throws a
 * TypeError when a key is upserted twice, or both upserted and removed.
 */
export function updateSnapshot(previous: MeshSnapshot, version: number, changes: SnapshotChanges): MeshSnapshot {
  const changed = new Map<string, Change>();
  for (const key of changes.removed) {
    const old = previous.byKey.get(key);
    if (old) changed.set(key, { key, old, next: undefined });
  }
  const upsertedKeys = new Set<string>();
  for (const r of changes.upserted) {
    deepFreeze(r);
    const key = keyOfFrozen(r);
    if (upsertedKeys.has(key)) throw new TypeError(`updateSnapshot: ${key} is upserted twice`);
    if (changed.has(key)) throw new TypeError(`updateSnapshot: ${key} is both removed and upserted`);
    upsertedKeys.add(key);
    const old = previous.byKey.get(key);
    if (old !== r) changed.set(key, { key, old, next: r });
  }
  const prevKeys = sortedKeysOf(previous);
  if (!prevKeys) {
    // Not a snapshot made here: build from scratch.
    const resources = previous.resources.filter((r) => !changed.has(keyOfFrozen(r)));
    for (const c of changed.values()) if (c.next) resources.push(c.next);
    return buildSnapshot(version, resources);
  }

  // Every resource, in key order.
  const keys = prevKeys.slice();
  const resources = previous.resources.slice();
  const byKind = new Map<string, { drop: MeshResource[]; add: MeshResource[] }>();
  const kindChanges = (kind: string): { drop: MeshResource[]; add: MeshResource[] } => {
    let k = byKind.get(kind);
    if (!k) {
      k = { drop: [], add: [] };
      byKind.set(kind, k);
    }
    return k;
  };
  for (const c of changed.values()) {
    const i = lowerBound(keys, c.key);
    const present = i < keys.length && keys[i] === c.key;
    if (c.next) {
      if (present) resources[i] = c.next;
      else {
        keys.splice(i, 0, c.key);
        resources.splice(i, 0, c.next);
      }
    } else if (present) {
      keys.splice(i, 1);
      resources.splice(i, 1);
    }
    if (c.old) kindChanges(c.old.kind).drop.push(c.old);
    if (c.next) kindChanges(c.next.kind).add.push(c.next);
  }
  // Lookups through an edited map (no copy of the mesh); iteration in key order through the arrays.
  const prevLookup = previous.byKey instanceof KeyOrderedMap ? (previous.byKey.lookup as ReadonlyMap<string, MeshResource>) : previous.byKey;
  const lookup = LayeredMap.edit(
    prevLookup,
    [...changed.values()].flatMap((c) => (c.next ? [[c.key, c.next] as const] : [])),
    [...changed.values()].flatMap((c) => (c.next ? [] : [c.key])),
  );
  const byKey = new KeyOrderedMap(lookup, keys, resources);

  const touched = (kind: string): boolean => byKind.has(kind);
  /** The per-kind list, key-ordered, with this update's changes of that kind. */
  const kindList = <R extends MeshResource>(list: readonly R[], kind: string): readonly R[] => {
    const k = byKind.get(kind);
    return k ? Object.freeze(updateSorted(list, k.drop, k.add as R[])) : list;
  };
  /** A precedence-ordered list with this update's changes of that kind, sorted again (the order is total). */
  const precedenceList = <R extends MeshResource & { metadata: { namespace: string; name: string; creationTimestamp?: string } }>(list: readonly R[], kind: string): readonly R[] => {
    const k = byKind.get(kind);
    if (!k) return list;
    const dropped = new Set(k.drop);
    const out = list.filter((r) => !dropped.has(r));
    out.push(...(k.add as R[]));
    out.sort(comparePrecedence);
    return Object.freeze(out);
  };

  const workloadEntries = kindList(previous.workloadEntries, 'WorkloadEntry');
  const serviceEntries = kindList(previous.serviceEntries, 'ServiceEntry');
  const sidecars = kindList(previous.sidecars, 'Sidecar');
  const peerAuthentications = kindList(previous.peerAuthentications, 'PeerAuthentication');
  const authorizationPolicies = kindList(previous.authorizationPolicies, 'AuthorizationPolicy');
  const requestAuthentications = kindList(previous.requestAuthentications, 'RequestAuthentication');
  const destinationRules = precedenceList(previous.destinationRules, 'DestinationRule');
  const virtualServices = precedenceList(previous.virtualServices, 'VirtualService');
  const httpRoutes = precedenceList(previous.httpRoutes, 'HTTPRoute');
  const grpcRoutes = precedenceList(previous.grpcRoutes, 'GRPCRoute');

  // WorkloadEntry indexes: only the changed names, namespaces and addresses.
  let { workloadsByName, workloadsByNamespace, workloadsByAddress } = previous;
  const weChanges = [...changed.values()].filter((c) => (c.old ?? c.next)?.kind === 'WorkloadEntry');
  if (weChanges.length > 0) {
    const nameSet: Array<readonly [string, WorkloadEntry]> = [];
    const nameRemoved: string[] = [];
    const nsDrop = new Map<string, WorkloadEntry[]>();
    const nsAdd = new Map<string, WorkloadEntry[]>();
    const addrDrop = new Map<string, WorkloadEntry[]>();
    const addrAdd = new Map<string, WorkloadEntry[]>();
    for (const c of weChanges) {
      const old = c.old as WorkloadEntry | undefined;
      const next = c.next as WorkloadEntry | undefined;
      if (next) nameSet.push([namespacedName(next), next]);
      else if (old) nameRemoved.push(namespacedName(old));
      if (old) {
        push(nsDrop, old.metadata.namespace, old);
        if (old.spec.address !== undefined) push(addrDrop, old.spec.address, old);
      }
      if (next) {
        push(nsAdd, next.metadata.namespace, next);
        if (next.spec.address !== undefined) push(addrAdd, next.spec.address, next);
      }
    }
    workloadsByName = LayeredMap.edit(workloadsByName, nameSet, nameRemoved);
    const regroup = (base: ReadonlyMap<string, readonly WorkloadEntry[]>, drop: Map<string, WorkloadEntry[]>, add: Map<string, WorkloadEntry[]>) => {
      const set: Array<readonly [string, readonly WorkloadEntry[]]> = [];
      const removed: string[] = [];
      for (const group of new Set([...drop.keys(), ...add.keys()])) {
        const list = updateSorted(base.get(group) ?? [], drop.get(group) ?? [], add.get(group) ?? []);
        if (list.length > 0) set.push([group, Object.freeze(list)]);
        else removed.push(group);
      }
      return LayeredMap.edit(base, set, removed);
    };
    workloadsByNamespace = regroup(workloadsByNamespace, nsDrop, nsAdd);
    workloadsByAddress = regroup(workloadsByAddress, addrDrop, addrAdd);
  }

  // Selection: which workloads each ServiceEntry's workloadSelector selects, and the reverse.
  let { workloadsByService, servicesByWorkload, servicesByHost } = previous;
  const seChanges = [...changed.values()].filter((c) => (c.old ?? c.next)?.kind === 'ServiceEntry');
  if (seChanges.length > 0 || weChanges.length > 0) {
    /** New entries (undefined: removed) of `workloadsByService` and `servicesByWorkload`. */
    const bySe = new Map<string, readonly WorkloadEntry[] | undefined>();
    const bySw = new Map<string, readonly ServiceEntry[] | undefined>();
    const selectionOf = (name: string): readonly WorkloadEntry[] => (bySe.has(name) ? (bySe.get(name) ?? []) : (workloadsByService.get(name) ?? []));
    // ServiceEntries with a workloadSelector by namespace, in key order (as a full build meets them).
    const selecting = new Map<string, ServiceEntry[]>();
    for (const se of serviceEntries) if (se.spec.workloadSelector !== undefined) push(selecting, se.metadata.namespace, se);
    /** Workloads (`namespace/name`) whose list of selecting services is listed again below. */
    const recheck = new Set<string>();
    /** ServiceEntries (`namespace/name`) whose selection was computed from scratch here. */
    const redone = new Set<string>();
    for (const c of seChanges) {
      const old = c.old as ServiceEntry | undefined;
      if (!old) continue;
      const name = namespacedName(old);
      for (const we of previous.workloadsByService.get(name) ?? []) recheck.add(namespacedName(we));
      bySe.set(name, undefined);
    }
    for (const c of seChanges) {
      const se = c.next as ServiceEntry | undefined;
      const selector = se?.spec.workloadSelector;
      if (!se || selector === undefined) continue;
      const name = namespacedName(se);
      const selected = (workloadsByNamespace.get(se.metadata.namespace) ?? []).filter((we) => matchesSelector(selector.labels, labelsOfWorkload(we)));
      bySe.set(name, Object.freeze(selected));
      redone.add(name);
      for (const we of selected) recheck.add(namespacedName(we));
    }
    // A changed WorkloadEntry leaves the services that selected it and joins those that select it now.
    const drops = new Map<string, WorkloadEntry[]>();
    const adds = new Map<string, WorkloadEntry[]>();
    for (const c of weChanges) {
      const old = c.old as WorkloadEntry | undefined;
      const next = c.next as WorkloadEntry | undefined;
      for (const [we, into] of [
        [old, drops],
        [next, adds],
      ] as const) {
        if (!we) continue;
        recheck.add(namespacedName(we));
        const labels = labelsOfWorkload(we);
        for (const se of selecting.get(we.metadata.namespace) ?? []) {
          const name = namespacedName(se);
          if (!redone.has(name) && matchesSelector(se.spec.workloadSelector?.labels, labels)) push(into, name, we);
        }
      }
    }
    for (const name of new Set([...drops.keys(), ...adds.keys()])) {
      bySe.set(name, Object.freeze(updateSorted(selectionOf(name), drops.get(name) ?? [], adds.get(name) ?? [])));
    }
    for (const name of recheck) {
      const we = workloadsByName.get(name);
      const services = we ? (selecting.get(we.metadata.namespace) ?? []).filter((se) => matchesSelector(se.spec.workloadSelector?.labels, labelsOfWorkload(we))) : [];
      bySw.set(name, services.length > 0 ? Object.freeze(services) : undefined);
    }
    const edit = <V>(base: ReadonlyMap<string, V>, entries: Map<string, V | undefined>): ReadonlyMap<string, V> =>
      LayeredMap.edit(
        base,
        [...entries].flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as const])),
        [...entries].flatMap(([k, v]) => (v === undefined ? [k] : [])),
      );
    workloadsByService = edit(workloadsByService, bySe);
    servicesByWorkload = edit(servicesByWorkload, bySw);
  }
  if (seChanges.length > 0) {
    const m = new Map<string, ServiceEntry>();
    for (const se of serviceEntries) for (const host of se.spec.hosts) if (!m.has(host)) m.set(host, se);
    servicesByHost = freezeMap(m);
  }

  // Small indexes, rebuilt from their kind's list when it changed.
  let { destinationRulesByHost, virtualServicesByHost, httpRoutesByHost, grpcRoutesByHost } = previous;
  if (touched('DestinationRule')) destinationRulesByHost = indexByHosts(destinationRules, (dr) => [resolveShortHost(dr.spec.host, dr.metadata.namespace)]);
  if (touched('VirtualService')) virtualServicesByHost = indexByHosts(virtualServices, (vs) => (vs.spec.hosts ?? []).map((h) => resolveShortHost(h, vs.metadata.namespace)));
  if (seChanges.length > 0 || touched('HTTPRoute') || touched('GRPCRoute')) {
    const serviceEntryByName = new Map(serviceEntries.map((se) => [namespacedName(se), se]));
    const lookupServiceEntry = (ns: string, name: string): ServiceEntry | undefined => serviceEntryByName.get(`${ns}/${name}`);
    if (seChanges.length > 0 || touched('HTTPRoute')) httpRoutesByHost = indexByHosts(httpRoutes, (r) => routeTargetHosts(r, lookupServiceEntry));
    if (seChanges.length > 0 || touched('GRPCRoute')) grpcRoutesByHost = indexByHosts(grpcRoutes, (r) => routeTargetHosts(r, lookupServiceEntry));
  }
  const byNamespace = <R extends MeshResource>(list: readonly R[], kind: string, prev: ReadonlyMap<string, readonly R[]>): ReadonlyMap<string, readonly R[]> =>
    touched(kind) ? groupBy(list, (r) => r.metadata.namespace) : prev;

  const snapshot: MeshSnapshot = Object.freeze({
    version,
    resources: changed.size === 0 ? previous.resources : Object.freeze(resources),
    workloadEntries,
    workloadGroups: kindList(previous.workloadGroups, 'WorkloadGroup'),
    serviceEntries,
    sidecars,
    peerAuthentications,
    authorizationPolicies,
    requestAuthentications,
    servicesByHost,
    workloadsByName,
    workloadsByAddress,
    destinationRules,
    virtualServices,
    httpRoutes,
    grpcRoutes,
    destinationRulesByHost,
    virtualServicesByHost,
    httpRoutesByHost,
    grpcRoutesByHost,
    byKey,
    workloadsByNamespace,
    workloadsByService,
    servicesByWorkload,
    sidecarsByNamespace: byNamespace(sidecars, 'Sidecar', previous.sidecarsByNamespace),
    peerAuthenticationsByNamespace: byNamespace(peerAuthentications, 'PeerAuthentication', previous.peerAuthenticationsByNamespace),
    authorizationPoliciesByNamespace: byNamespace(authorizationPolicies, 'AuthorizationPolicy', previous.authorizationPoliciesByNamespace),
    requestAuthenticationsByNamespace: byNamespace(requestAuthentications, 'RequestAuthentication', previous.requestAuthenticationsByNamespace),
  });
  rememberSortedKeys(snapshot, keys);
  return snapshot;
}
