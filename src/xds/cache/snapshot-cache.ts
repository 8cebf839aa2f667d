/**
 * The snapshot cache (DESIGN.md §1, after go-control-plane's `SnapshotCache`): per node id, the
 * current resources of every type URL with their content versions. It knows nothing about
 * streams or nonces; the xDS server reaches it only through {@link ConfigWatcher.createWatch}.
 *
 * A snapshot is checked before it is published (every referenced EDS/RDS name exists); setting
 * a snapshot whose resources all have the same versions as the current one fires nothing.
 * Resources are held encoded and shared, so every stream that is sent a resource sends the same
 * bytes. Per-resource versions are kept so that delta xDS can later compute what to add or remove.
 */
import type { Logger } from '../../observability/logger.js';
import { DEPENDENT_TYPE_URL, PUSH_ORDER, WILDCARD_TYPE_URLS, type ConfigWatcher, type ResourcesByType, type VersionedResource, type WatchRequest, type WatchResponse } from '../types.js';
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
export interface SnapshotCache extends ConfigWatcher {
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
  /** Forgets the node's snapshot (watches still open stay parked until a new snapshot is set). */
  clearNode(nodeId: string): void;
  /** Node ids that have a snapshot, sorted. */
  nodeIds(): string[];
  /** The node's current snapshot, for debug views. */
  getSnapshot(nodeId: string): NodeSnapshot | undefined;
  /** Parked watches, of one node or of all nodes (debug views and tests). */
  watchCount(nodeId?: string): number;
}

interface Watch {
  request: WatchRequest;
  respond: (response: WatchResponse) => void;
}

interface NodeState {
  snapshot: NodeSnapshot | undefined;
  watches: Set<Watch>;
}

/** A type's resources sorted by name, with the version of the whole set. */
interface SortedSet {
  sorted: readonly VersionedResource[];
  version: string;
}

const EMPTY: ReadonlyMap<string, VersionedResource> = new Map();

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
      set = { sorted, version: resourceSetVersion(sorted) };
      sortedSets.set(resources, set);
    }
    return set;
  }

  /** The answer to `request` from `snapshot`: the full set (wildcard) or the named subset. */
  function answer(snapshot: NodeSnapshot, request: WatchRequest): WatchResponse {
    const resources = snapshot.resources.get(request.typeUrl) ?? EMPTY;
    let picked: readonly VersionedResource[];
    let versionInfo: string;
    let requires: ReadonlyMap<string, readonly string[]> | undefined;
    if (isWildcardRequest(request)) {
      ({ sorted: picked, version: versionInfo } = fullSet(resources));
      // The references describe the whole set, so they are given with full answers only.
      const dependent = DEPENDENT_TYPE_URL.get(request.typeUrl);
      const needed = dependent === undefined ? undefined : snapshot.references?.get(dependent);
      if (dependent !== undefined && needed !== undefined) requires = new Map([[dependent, [...needed].sort()]]);
    } else {
      const names = [...new Set(request.resourceNames)].sort();
      const found: VersionedResource[] = [];
      for (const name of names) {
        const r = resources.get(name);
        if (r) found.push(r);
      }
      picked = found;
      versionInfo = resourceSetVersion(found);
    }
    const response: WatchResponse = { typeUrl: request.typeUrl, versionInfo, resources: picked.map((r) => r.resource), names: picked.map((r) => r.name) };
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

  function deliver(nodeId: string, watch: Watch, response: WatchResponse): void {
    try {
      watch.respond(response);
    } catch (err) {
      log.error({ err, nodeId, typeUrl: response.typeUrl }, 'xDS watch callback failed');
    }
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
      const due: Array<[Watch, WatchResponse]> = [];
      for (const watch of state.watches) {
        const response = answer(snapshot, watch.request);
        if (response.versionInfo !== watch.request.versionInfo) due.push([watch, response]);
      }
      due.sort(([a], [b]) => pushRank(a.request.typeUrl) - pushRank(b.request.typeUrl));
      for (const [watch] of due) state.watches.delete(watch);
      log.debug({ nodeId, types: snapshot.resources.size, watchesAnswered: due.length }, 'snapshot published');
      for (const [watch, response] of due) deliver(nodeId, watch, response);
      return true;
    },

    createWatch(nodeId, request, respond) {
      if (typeof request.typeUrl !== 'string' || request.typeUrl === '') throw new TypeError('createWatch: typeUrl is required');
      const watch: Watch = { request: { typeUrl: request.typeUrl, resourceNames: [...request.resourceNames], versionInfo: request.versionInfo }, respond };
      const state = stateOf(nodeId);
      if (state.snapshot) {
        const response = answer(state.snapshot, watch.request);
        if (response.versionInfo !== watch.request.versionInfo) {
          dropIfEmpty(nodeId, state);
          respond(response);
          return () => {};
        }
      }
      state.watches.add(watch);
      return () => {
        if (state.watches.delete(watch)) dropIfEmpty(nodeId, state);
      };
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
