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
 */
import type { Logger } from '../observability/logger.js';
import { resourceKey, type MeshResource } from '../resources/types.js';
import { sameResource } from '../resources/equal.js';
import { buildSnapshot } from './snapshot.js';
import { applyStatusOverlays, sameOverlay, type StatusOverlay } from './status-overlay.js';
import type { ChangeEvent, MeshSnapshot } from './types.js';

/** Options for {@link createRegistry}. */
export interface RegistryOptions {
  logger: Logger;
  /** Quiet period after the last change before publishing, in ms (default 100). */
  quietMs?: number;
  /** Longest wait after the first unpublished change, in ms (default 1000). */
  maxWaitMs?: number;
}

/** Receives each published snapshot with what changed from the previous one. */
export type SnapshotListener = (snapshot: MeshSnapshot, event: ChangeEvent) => void;

/** The merged, versioned view of all sources. */
export interface Registry {
  /** Replaces everything `sourceName` contributes (publishing is debounced). */
  setSource(sourceName: string, resources: readonly MeshResource[]): void;
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

/** Same keys and equal content (ignoring `origin` and order). */
function sameResourceSet(a: readonly MeshResource[], b: readonly MeshResource[]): boolean {
  if (a.length !== b.length) return false;
  const byKey = new Map(a.map((r) => [resourceKey(r), r]));
  if (byKey.size !== a.length) return false;
  for (const r of b) {
    const other = byKey.get(resourceKey(r));
    if (!other || !sameResource(other, r)) return false;
    byKey.delete(resourceKey(r));
  }
  return byKey.size === 0;
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

/** Creates a registry; its first snapshot (version 0) is empty. */
export function createRegistry(opts: RegistryOptions): Registry {
  const { logger } = opts;
  const quietMs = opts.quietMs ?? 100;
  const maxWaitMs = opts.maxWaitMs ?? 1000;

  const sources = new Map<string, readonly MeshResource[]>();
  const overlays = new Map<string, StatusOverlay>();
  const listeners = new Set<SnapshotListener>();
  let snapshot = buildSnapshot(0, []);
  /**
   * The snapshot's copy of each resource object a source handed in: a source that hands in the
   * same object again (an unchanged file, an unchanged API resource) is not compared field by field.
   */
  const copyOf = new WeakMap<MeshResource, MeshResource>();
  let timer: NodeJS.Timeout | undefined;
  let pendingSince: number | undefined;
  let closed = false;

  function merge(): Map<string, MeshResource> {
    const merged = new Map<string, MeshResource>();
    const owner = new Map<string, string>();
    for (const [source, resources] of sources) {
      for (const r of resources) {
        const key = keyOf(r);
        const first = owner.get(key);
        if (first !== undefined) {
          // `resource`, not `key`: the logger redacts fields named `key` (secrets guard).
          logger.warn({ resource: key, kept: first, ignored: source }, `conflict: ${key} is defined by source ${first} and source ${source}; keeping ${first}`);
          continue;
        }
        owner.set(key, source);
        merged.set(key, r);
      }
    }
    return applyStatusOverlays(merged, overlays.values());
  }

  function publish(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    pendingSince = undefined;
    const merged = merge();
    const previous = snapshot.byKey;
    const changedKeys = new Set<string>();
    const changedKinds = new Set<string>();
    const next: MeshResource[] = [];
    for (const [key, r] of merged) {
      const old = previous.get(key);
      if (old && copyOf.get(r) === old) {
        next.push(old);
        continue;
      }
      if (old && sameResource(old, r)) {
        next.push(old);
        copyOf.set(r, old);
        continue;
      }
      changedKeys.add(key);
      changedKinds.add(r.kind);
      const copy = structuredClone(r);
      next.push(copy);
      copyOf.set(r, copy);
    }
    for (const [key, old] of previous) {
      if (!merged.has(key)) {
        changedKeys.add(key);
        changedKinds.add(old.kind);
      }
    }
    if (changedKeys.size === 0) return;
    const from = snapshot.version;
    snapshot = buildSnapshot(from + 1, next);
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
      if (previous && sameResourceSet(previous, resources)) return;
      sources.set(sourceName, [...resources]);
      schedule();
    },
    setStatusOverlay(sourceName, overlay) {
      if (closed) return;
      const previous = overlays.get(sourceName);
      if (overlay.size === 0 ? previous === undefined : sameOverlay(previous, overlay)) return;
      if (overlay.size === 0) overlays.delete(sourceName);
      else overlays.set(sourceName, new Map(overlay));
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
