/**
 * The snapshot cache (DESIGN.md §1, after go-control-plane's `SnapshotCache`): per node id, the
 * current resources of every type URL with their content versions. It knows nothing about
 * streams or nonces; the xDS server reaches it only through {@link ConfigWatcher.createWatch}.
 *
 * A snapshot is checked before it is published (every referenced EDS/RDS name exists); setting
 * a snapshot whose resources all have the same versions as the current one fires nothing.
 * Resources are held encoded and shared, so every stream that is sent a resource sends the same
 * bytes. Per-resource versions let delta watches ({@link DeltaConfigWatcher}) compute what a
 * stream must add or remove: resources whose version differs from what the client holds, held
 * names that are gone, and names just subscribed (answered even when unchanged, or reported as
 * removed when they do not exist). Delta subscriptions may name a resource by one of its aliases.
 */
import type { Logger } from '../../observability/logger.js';
import {
  DEPENDENT_TYPE_URL,
  PUSH_ORDER,
  WILDCARD_TYPE_URLS,
  type ConfigWatcher,
  type DeltaConfigWatcher,
  type DeltaWatchRequest,
  type DeltaWatchResponse,
  type ResourcesByType,
  type VersionedResource,
  type WatchRequest,
  type WatchResponse,
} from '../types.js';
import type { EncodedAny } from '../protos/loader.js';
import { SnapshotInconsistentError, type SnapshotProblem } from './errors.js';
import { resourceSetVersion } from './version.js';

/** Everything one node is served: resources by type URL, plus the names other resources need. */
export interface NodeSnapshot {
  resources: ResourcesByType;
  /**
   * Names that must exist, by type URL: the EDS names (`ClusterLoadAssignment`) the clusters
   * need and the RDS names (`RouteConfiguration`) the listeners need. Checked by `setSnapshot`,
   * and handed to the server with full CDS/LDS answers (`WatchResponse.requires`) so that it
   * can send the endpoints of new clusters right behind them.
   */
  references?: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Options for {@link createSnapshotCache}. */
export interface SnapshotCacheOptions {
  logger: Logger;
}

/** The snapshot cache: the producer's side (`setSnapshot`) and the server's side (`createWatch`). */
export interface SnapshotCache extends ConfigWatcher, DeltaConfigWatcher {
  /**
   * Publishes `snapshot` for `nodeId` after the consistency check and answers every parked watch
   * of the node whose version changed. Returns `false` (and fires nothing) when every resource
   * has the same version as in the current snapshot, `true` when the snapshot was published.
   * Throws {@link SnapshotInconsistentError} (the current snapshot stays) when a referenced name is
   * missing or a resource is filed under a type URL or name that is not its own.
   */
  setSnapshot(nodeId: string, snapshot: NodeSnapshot): boolean;
  /**
   * Opens a one-shot watch (see {@link ConfigWatcher}). Answers synchronously when the node has a
   * snapshot whose version for the request differs from `request.versionInfo`; otherwise parks the
   * watch until `setSnapshot` changes that version. A node without a snapshot parks every watch.
   */
  createWatch(nodeId: string, request: WatchRequest, respond: (response: WatchResponse) => void): () => void;
  /**
   * Opens a one-shot delta watch (see {@link DeltaConfigWatcher}). Answers synchronously when the
   * node has a snapshot and something is to be added, changed or removed for the stream (or
   * `request.alwaysRespond`); otherwise parks the watch until `setSnapshot` makes a difference. A
   * node without a snapshot parks every watch. Throws a `TypeError` without a type URL.
   */
  createDeltaWatch(nodeId: string, request: DeltaWatchRequest, respond: (response: DeltaWatchResponse) => void): () => void;
  /** Forgets the node's snapshot (watches still open stay parked until a new snapshot is set). */
  clearNode(nodeId: string): void;
  /** Node ids that have a snapshot, sorted. */
  nodeIds(): string[];
  /** The node's current snapshot, for debug views. */
  getSnapshot(nodeId: string): NodeSnapshot | undefined;
  /** Parked watches, of one node or of all nodes (debug views and tests). */
  watchCount(nodeId?: string): number;
}

interface SotwWatch {
  kind: 'sotw';
  request: WatchRequest;
  respond: (response: WatchResponse) => void;
}

interface DeltaWatch {
  kind: 'delta';
  request: DeltaWatchRequest;
  respond: (response: DeltaWatchResponse) => void;
}

type Watch = SotwWatch | DeltaWatch;

interface NodeState {
  snapshot: NodeSnapshot | undefined;
  watches: Set<Watch>;
}

/** A type's resources sorted by name, with the version of the whole set. */
interface SortedSet {
  sorted: readonly VersionedResource[];
  version: string;
  /** The encoded resources and their names, in order (one array per set, shared by the answers). */
  anys: readonly EncodedAny[];
  names: readonly string[];
}

function sortedSet(sorted: readonly VersionedResource[]): SortedSet {
  return { sorted, version: resourceSetVersion(sorted), anys: sorted.map((r) => r.resource), names: sorted.map((r) => r.name) };
}

const EMPTY: ReadonlyMap<string, VersionedResource> = new Map();
const NO_ALIASES: ReadonlyMap<string, VersionedResource> = new Map();

function byName(a: VersionedResource, b: VersionedResource): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function pushRank(typeUrl: string): number {
  const i = PUSH_ORDER.indexOf(typeUrl);
  return i < 0 ? PUSH_ORDER.length : i;
}

/** Whether `request` asks for every resource of its type (a wildcard type, no names or `*`). */
export function isWildcardRequest(request: WatchRequest): boolean {
  return WILDCARD_TYPE_URLS.has(request.typeUrl) && (request.resourceNames.length === 0 || request.resourceNames.includes('*'));
}

/** Checks a snapshot before publishing; returns every problem found. */
function checkSnapshot(snapshot: NodeSnapshot): SnapshotProblem[] {
  const problems: SnapshotProblem[] = [];
  for (const [typeUrl, resources] of snapshot.resources) {
    for (const [name, r] of resources) {
      if (r.name !== name) problems.push({ typeUrl, name, reason: `is filed under a different name than its own ("${r.name}")` });
      if (r.resource.typeUrl !== typeUrl) problems.push({ typeUrl, name, reason: `has type ${r.resource.typeUrl}` });
    }
  }
  for (const [typeUrl, names] of snapshot.references ?? []) {
    const present = snapshot.resources.get(typeUrl);
    for (const name of names) {
      if (!present?.has(name)) problems.push({ typeUrl, name, reason: 'is referenced but missing' });
    }
  }
  return problems;
}

/** Whether two resource sets have the same names and versions for every type (missing = empty). */
function sameVersions(a: ResourcesByType, b: ResourcesByType): boolean {
  const types = new Set([...a.keys(), ...b.keys()]);
  for (const typeUrl of types) {
    const x = a.get(typeUrl) ?? EMPTY;
    const y = b.get(typeUrl) ?? EMPTY;
    if (x === y) continue;
    if (x.size !== y.size) return false;
    for (const [name, r] of x) {
      if (y.get(name)?.version !== r.version) return false;
    }
  }
  return true;
}

/**
 * Creates an empty snapshot cache. Nothing is shared between caches; each control plane instance
 * owns one.
 */
export function createSnapshotCache(opts: SnapshotCacheOptions): SnapshotCache {
  const log = opts.logger;
  const nodes = new Map<string, NodeState>();
  // Sorted full sets per type map; a type map shared between nodes is sorted and hashed once.
  const sortedSets = new WeakMap<ReadonlyMap<string, VersionedResource>, SortedSet>();

  function fullSet(resources: ReadonlyMap<string, VersionedResource>): SortedSet {
    let set = sortedSets.get(resources);
    if (!set) {
      const sorted = [...resources.values()].sort(byName);
      set = sortedSet(sorted);
      sortedSets.set(resources, set);
    }
    return set;
  }

  // Named subsets per type map (EDS and RDS requests), by the sorted names: proxies that share a
  // type map and ask for the same names share the answer.
  const namedSets = new WeakMap<ReadonlyMap<string, VersionedResource>, Map<string, SortedSet>>();
  function namedSet(resources: ReadonlyMap<string, VersionedResource>, requested: readonly string[]): SortedSet {
    const names = [...new Set(requested)].sort();
    // Unambiguous whatever a name contains (names come from the client).
    const key = JSON.stringify(names);
    let byNames = namedSets.get(resources);
    const have = byNames?.get(key);
    if (have) return have;
    const found: VersionedResource[] = [];
    for (const name of names) {
      const r = resources.get(name);
      if (r) found.push(r);
    }
    const set = sortedSet(found);
    if (!byNames) {
      byNames = new Map();
      namedSets.set(resources, byNames);
    }
    // Bounded: a map asked for many different name lists keeps the last 64.
    if (byNames.size >= 64) byNames.delete(byNames.keys().next().value as string);
    byNames.set(key, set);
    return set;
  }

  // Alias → resource per type map (delta subscriptions may name an alias), built once per map.
  const aliasIndexes = new WeakMap<ReadonlyMap<string, VersionedResource>, ReadonlyMap<string, VersionedResource>>();
  function aliasIndex(resources: ReadonlyMap<string, VersionedResource>): ReadonlyMap<string, VersionedResource> {
    let index = aliasIndexes.get(resources);
    if (!index) {
      let built: Map<string, VersionedResource> | undefined;
      for (const r of resources.values()) {
        for (const alias of r.aliases ?? []) {
          built ??= new Map();
          // A name always wins over an alias; the first resource (in map order) keeps an alias.
          if (!resources.has(alias) && !built.has(alias)) built.set(alias, r);
        }
      }
      index = built ?? NO_ALIASES;
      aliasIndexes.set(resources, index);
    }
    return index;
  }

  /**
   * The delta answer to `request` from `snapshot`, or undefined when there is nothing to say
   * (and `alwaysRespond` is off). See {@link DeltaWatchRequest} for the rules.
   */
  function deltaAnswer(snapshot: NodeSnapshot, request: DeltaWatchRequest): DeltaWatchResponse | undefined {
    const resources = snapshot.resources.get(request.typeUrl) ?? EMPTY;
    const aliases = aliasIndex(resources);
    const resolve = (name: string): VersionedResource | undefined => resources.get(name) ?? aliases.get(name);
    const send = new Map<string, VersionedResource>();
    const removed = new Set<string>();
    const changed = (r: VersionedResource): boolean => request.known.get(r.name) !== r.version;
    if (request.wildcard) {
      for (const r of resources.values()) if (changed(r)) send.set(r.name, r);
    }
    for (const name of request.subscribed) {
      const r = resolve(name);
      if (r && changed(r)) send.set(r.name, r);
    }
    for (const name of request.forced) {
      const r = resolve(name);
      if (r) send.set(r.name, r);
      else removed.add(name);
    }
    for (const name of request.known.keys()) if (!resources.has(name)) removed.add(name);
    if (send.size === 0 && removed.size === 0 && !request.alwaysRespond) return undefined;
    return {
      typeUrl: request.typeUrl,
      resources: [...send.values()].sort(byName),
      removed: [...removed].sort(),
      systemVersionInfo: fullSet(resources).version,
    };
  }

  /** The answer to `request` from `snapshot`: the full set (wildcard) or the named subset. */
  function answer(snapshot: NodeSnapshot, request: WatchRequest): WatchResponse {
    const resources = snapshot.resources.get(request.typeUrl) ?? EMPTY;
    let set: SortedSet;
    let requires: ReadonlyMap<string, readonly string[]> | undefined;
    if (isWildcardRequest(request)) {
      set = fullSet(resources);
      // The references describe the whole set, so they are given with full answers only.
      const dependent = DEPENDENT_TYPE_URL.get(request.typeUrl);
      const needed = dependent === undefined ? undefined : snapshot.references?.get(dependent);
      if (dependent !== undefined && needed !== undefined) requires = new Map([[dependent, [...needed].sort()]]);
    } else {
      set = namedSet(resources, request.resourceNames);
    }
    const response: WatchResponse = { typeUrl: request.typeUrl, versionInfo: set.version, resources: set.anys, names: set.names };
    if (requires) response.requires = requires;
    return response;
  }

  function stateOf(nodeId: string): NodeState {
    let state = nodes.get(nodeId);
    if (!state) {
      state = { snapshot: undefined, watches: new Set() };
      nodes.set(nodeId, state);
    }
    return state;
  }

  function dropIfEmpty(nodeId: string, state: NodeState): void {
    if (!state.snapshot && state.watches.size === 0 && nodes.get(nodeId) === state) nodes.delete(nodeId);
  }

  function deliver(nodeId: string, typeUrl: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      log.error({ err, nodeId, typeUrl }, 'xDS watch callback failed');
    }
  }

  function park(nodeId: string, state: NodeState, watch: Watch): () => void {
    state.watches.add(watch);
    return () => {
      if (state.watches.delete(watch)) dropIfEmpty(nodeId, state);
    };
  }

  return {
    setSnapshot(nodeId, snapshot) {
      const problems = checkSnapshot(snapshot);
      if (problems.length > 0) throw new SnapshotInconsistentError(nodeId, problems);
      const state = stateOf(nodeId);
      if (state.snapshot && sameVersions(state.snapshot.resources, snapshot.resources)) {
        log.debug({ nodeId }, 'snapshot unchanged; nothing to push');
        return false;
      }
      state.snapshot = snapshot;
      const due: Array<() => void> = [];
      const ranks: number[] = [];
      for (const watch of state.watches) {
        if (watch.kind === 'sotw') {
          const response = answer(snapshot, watch.request);
          if (response.versionInfo === watch.request.versionInfo) continue;
          due.push(() => deliver(nodeId, watch.request.typeUrl, () => watch.respond(response)));
        } else {
          // alwaysRespond is only still set on a watch parked before the node had a snapshot.
          const response = deltaAnswer(snapshot, watch.request);
          if (!response) continue;
          due.push(() => deliver(nodeId, watch.request.typeUrl, () => watch.respond(response)));
        }
        ranks.push(pushRank(watch.request.typeUrl));
        state.watches.delete(watch);
      }
      const order = due.map((_, i) => i).sort((a, b) => (ranks[a] as number) - (ranks[b] as number));
      log.debug({ nodeId, types: snapshot.resources.size, watchesAnswered: due.length }, 'snapshot published');
      for (const i of order) (due[i] as () => void)();
      return true;
    },

    createWatch(nodeId, request, respond) {
      if (typeof request.typeUrl !== 'string' || request.typeUrl === '') throw new TypeError('createWatch: typeUrl is required');
      const watch: SotwWatch = { kind: 'sotw', request: { typeUrl: request.typeUrl, resourceNames: [...request.resourceNames], versionInfo: request.versionInfo }, respond };
      const state = stateOf(nodeId);
      if (state.snapshot) {
        const response = answer(state.snapshot, watch.request);
        if (response.versionInfo !== watch.request.versionInfo) {
          dropIfEmpty(nodeId, state);
          respond(response);
          return () => {};
        }
      }
      return park(nodeId, state, watch);
    },
    createDeltaWatch(nodeId, request, respond) {
      if (typeof request.typeUrl !== 'string' || request.typeUrl === '') throw new TypeError('createDeltaWatch: typeUrl is required');
      // The stream keeps mutating its own state: the watch holds a copy.
      const copy: DeltaWatchRequest = {
        typeUrl: request.typeUrl,
        wildcard: request.wildcard,
        subscribed: [...request.subscribed],
        known: new Map(request.known),
        forced: [...request.forced],
        alwaysRespond: request.alwaysRespond,
      };
      const state = stateOf(nodeId);
      if (state.snapshot) {
        const response = deltaAnswer(state.snapshot, copy);
        if (response) {
          dropIfEmpty(nodeId, state);
          respond(response);
          return () => {};
        }
      }
      return park(nodeId, state, { kind: 'delta', request: copy, respond });
    },

    clearNode(nodeId) {
      const state = nodes.get(nodeId);
      if (!state) return;
      state.snapshot = undefined;
      dropIfEmpty(nodeId, state);
    },

    nodeIds() {
      return [...nodes].filter(([, s]) => s.snapshot !== undefined).map(([id]) => id).sort();
    },

    getSnapshot(nodeId) {
      return nodes.get(nodeId)?.snapshot;
    },

    watchCount(nodeId) {
      if (nodeId !== undefined) return nodes.get(nodeId)?.watches.size ?? 0;
      let n = 0;
      for (const s of nodes.values()) n += s.watches.size;
      return n;
    },
  };
}
