/**
 * The registry (DESIGN.md §1): merges the resources of every source into one immutable, versioned
 * {@link MeshSnapshot} and tells subscribers what changed.
 *
 * - Sources are merged in the order they first called `setSource`; when two sources hold the same
 *   key (`Kind/namespace/name`) the earlier source wins and the conflict is logged.
 * - Changes are debounced: a snapshot is published `quietMs` after the last change, but no later
 *   than `maxWaitMs` after the first unpublished one, so a burst causes one push.
 * - Content equal to what is published (deep-equal, ignoring `origin`) publishes nothing.
 * - Status overlays (`setStatusOverlay`) put conditions on resources another source defines
 *   (agents' health reports on file or API WorkloadEntries); a changed condition is a change.
 *   Resources that did not change keep their object identity from one snapshot to the next.
 * - A publish costs what changed, not the size of the mesh: `setSource` notes which keys a source
 *   changed (by object identity, then content), and the publish merges and compares only those keys
 *   and derives the snapshot from the previous one (`snapshot-update.ts`). A key conflict is logged
 *   when the key changes.
 */
import type { Logger } from '../observability/logger.js';
import { resourceKey, type MeshResource } from '../resources/types.js';
import { sameResource } from '../resources/equal.js';
import { buildSnapshot } from './snapshot.js';
import { updateSnapshot } from './snapshot-update.js';
import { sameOverlay, withConditions, type StatusOverlay } from './status-overlay.js';
import type { ChangeEvent, MeshSnapshot } from './types.js';

/** Options for {@link createRegistry}. */
export interface RegistryOptions {
  logger: Logger;
  /** Quiet period after the last change before publishing, in ms (default 100). */
  quietMs?: number;
  /** Longest wait after the first unpublished change, in ms (default 1000). */
  maxWaitMs?: number;
}

/** A change to what one source contributes (see `Registry.updateSource`). */
export interface SourceChanges {
  upserted: readonly MeshResource[];
  removed: readonly string[];
}

/** Receives each published snapshot with what changed from the previous one. */
export type SnapshotListener = (snapshot: MeshSnapshot, event: ChangeEvent) => void;

/** The merged, versioned view of all sources. */
export interface Registry {
  /** Replaces everything `sourceName` contributes (publishing is debounced). */
  setSource(sourceName: string, resources: readonly MeshResource[]): void;
  /**
   * Changes part of what `sourceName` contributes, as `setSource` with the rest kept: the `removed`
   * keys (`Kind/namespace/name`) go, then each `upserted` resource replaces the one of its key.
   * Costs what changed, where `setSource` walks the source's whole set (publishing is debounced).
   */
  updateSource(sourceName: string, changes: SourceChanges): void;
  /**
   * Replaces the status overlay `sourceName` contributes (publishing is debounced): conditions
   * put on resources other sources define, by key `Kind/namespace/name`, each replacing the
   * resource's condition of the same type (see `status-overlay.ts`). Keys naming no resource
   * wait until one appears. An empty map removes the overlay.
   */
  setStatusOverlay(sourceName: string, overlay: StatusOverlay): void;
  /** The latest published snapshot (version 0, empty, before the first publish). */
  current(): MeshSnapshot;
  /** Calls `listener` after each publish; returns the function that unsubscribes it. */
  subscribe(listener: SnapshotListener): () => void;
  /** Publishes pending changes now (at startup, and in tests). */
  flush(): void;
  /** Cancels a pending publish and drops all subscribers; later calls to `setSource` are ignored. */
  close(): void;
}

/** `resourceKey` of each resource object a source handed in (sources hand in the same objects again). */
const KEYS = new WeakMap<MeshResource, string>();

function keyOf(r: MeshResource): string {
  let key = KEYS.get(r);
  if (key === undefined) {
    key = resourceKey(r);
    KEYS.set(r, key);
  }
  return key;
}

/** Changes up to this many (or an eighth of the mesh) update the snapshot incrementally. */
const FULL_BUILD_MIN_CHANGES = 256;

/** Creates a registry; its first snapshot (version 0) is empty. */
export function createRegistry(opts: RegistryOptions): Registry {
  const { logger } = opts;
  const quietMs = opts.quietMs ?? 100;
  const maxWaitMs = opts.maxWaitMs ?? 1000;

  /** Each source's resources by key (a source's first resource of a key wins), in the order sources first called `setSource`. */
  const sources = new Map<string, Map<string, MeshResource>>();
  const overlays = new Map<string, StatusOverlay>();
  const listeners = new Set<SnapshotListener>();
  let snapshot = buildSnapshot(0, []);
  /**
   * The snapshot's copy of each resource object a source handed in: a source that hands in the
   * same object again (an unchanged file, an unchanged API resource) is not compared field by field.
   */
  const copyOf = new WeakMap<MeshResource, MeshResource>();
  /** Keys whose merged resource may differ from the snapshot's: only these are merged and compared at the next publish. */
  const dirty = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let pendingSince: number | undefined;
  let closed = false;

  /** The merged resource of `key`: the first source's, with every status overlay applied; undefined when no source has it. */
  function mergedOf(key: string): MeshResource | undefined {
    let merged: MeshResource | undefined;
    let first: string | undefined;
    for (const [source, resources] of sources) {
      const r = resources.get(key);
      if (r === undefined) continue;
      if (first !== undefined) {
        // `resource`, not `key`: the logger redacts fields named `key` (secrets guard).
        logger.warn({ resource: key, kept: first, ignored: source }, `conflict: ${key} is defined by source ${first} and source ${source}; keeping ${first}`);
        continue;
      }
      first = source;
      merged = r;
    }
    if (merged === undefined) return undefined;
    for (const overlay of overlays.values()) {
      const conditions = overlay.get(key);
      if (conditions) merged = withConditions(merged, conditions);
    }
    return merged;
  }

  /**
   * Publishes the changes of the dirty keys. Work is proportional to the keys that changed since
   * the last publish (merge, compare, `updateSnapshot`), not to the mesh; a change touching more
   * than an eighth of the mesh builds the snapshot from scratch instead (the same result).
   */
  function publish(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    pendingSince = undefined;
    const previous = snapshot.byKey;
    const changedKeys = new Set<string>();
    const changedKinds = new Set<string>();
    const removed: string[] = [];
    const upserted: MeshResource[] = [];
    for (const key of dirty) {
      const r = mergedOf(key);
      const old = previous.get(key);
      if (r === undefined) {
        if (old) {
          removed.push(key);
          changedKeys.add(key);
          changedKinds.add(old.kind);
        }
        continue;
      }
      if (old && copyOf.get(r) === old) continue;
      // Equal content from another source (the source that defined the key first dropped it) is a
      // change: `origin.source` says who owns the key (the API refuses writes to keys other sources
      // own). Only a new file or line in the same source's origin is not.
      if (old && sameResource(old, r) && old.origin?.source === r.origin?.source) {
        copyOf.set(r, old);
        continue;
      }
      changedKeys.add(key);
      changedKinds.add(r.kind);
      const copy = structuredClone(r);
      upserted.push(copy);
      copyOf.set(r, copy);
    }
    dirty.clear();
    if (changedKeys.size === 0) return;
    const from = snapshot.version;
    if (changedKeys.size > Math.max(FULL_BUILD_MIN_CHANGES, snapshot.resources.length / 8)) {
      const next: MeshResource[] = [];
      for (const [key, r] of snapshot.byKey) if (!changedKeys.has(key)) next.push(r);
      next.push(...upserted);
      snapshot = buildSnapshot(from + 1, next);
    } else {
      snapshot = updateSnapshot(snapshot, from + 1, { removed, upserted });
    }
    const event: ChangeEvent = Object.freeze({ from, to: snapshot.version, changedKeys, changedKinds });
    logger.info({ version: snapshot.version, changed: changedKeys.size, resources: snapshot.resources.length }, 'registry snapshot published');
    for (const listener of [...listeners]) {
      try {
        listener(snapshot, event);
      } catch (err) {
        logger.error({ err, version: snapshot.version }, 'registry subscriber failed');
      }
    }
  }

  function schedule(): void {
    const now = Date.now();
    pendingSince ??= now;
    if (timer) clearTimeout(timer);
    const wait = Math.max(0, Math.min(quietMs, pendingSince + maxWaitMs - now));
    timer = setTimeout(publish, wait);
  }

  return {
    setSource(sourceName, resources) {
      if (closed) {
        logger.warn({ source: sourceName }, 'registry is closed: update ignored');
        return;
      }
      const previous = sources.get(sourceName);
      const next = new Map<string, MeshResource>();
      const changed: string[] = [];
      for (const r of resources) {
        const key = keyOf(r);
        if (next.has(key)) {
          logger.warn({ resource: key, kept: sourceName, ignored: sourceName }, `conflict: ${key} is defined by source ${sourceName} and source ${sourceName}; keeping ${sourceName}`);
          continue;
        }
        const old = previous?.get(key);
        // Equal content (ignoring `origin`) is no change: keep the object already merged.
        if (old !== undefined && old !== r && sameResource(old, r)) next.set(key, old);
        else next.set(key, r);
        if (old !== next.get(key)) changed.push(key);
      }
      if (previous) for (const key of previous.keys()) if (!next.has(key)) changed.push(key);
      sources.set(sourceName, next);
      if (changed.length === 0) return;
      for (const key of changed) dirty.add(key);
      schedule();
    },
    updateSource(sourceName, changes) {
      if (closed) {
        logger.warn({ source: sourceName }, 'registry is closed: update ignored');
        return;
      }
      let current = sources.get(sourceName);
      if (!current) {
        current = new Map();
        sources.set(sourceName, current);
      }
      const changed: string[] = [];
      for (const key of changes.removed) if (current.delete(key)) changed.push(key);
      for (const r of changes.upserted) {
        const key = keyOf(r);
        const old = current.get(key);
        // Equal content (ignoring `origin`) is no change, as in setSource.
        if (old === r || (old !== undefined && sameResource(old, r))) continue;
        current.set(key, r);
        changed.push(key);
      }
      if (changed.length === 0) return;
      for (const key of changed) dirty.add(key);
      schedule();
    },
    setStatusOverlay(sourceName, overlay) {
      if (closed) return;
      const previous = overlays.get(sourceName);
      if (overlay.size === 0 ? previous === undefined : sameOverlay(previous, overlay)) return;
      if (overlay.size === 0) overlays.delete(sourceName);
      else overlays.set(sourceName, new Map(overlay));
      for (const key of previous?.keys() ?? []) dirty.add(key);
      for (const key of overlay.keys()) dirty.add(key);
      schedule();
    },
    current: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    flush() {
      if (!closed && (timer !== undefined || pendingSince !== undefined)) publish();
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      pendingSince = undefined;
      listeners.clear();
    },
  };
}
