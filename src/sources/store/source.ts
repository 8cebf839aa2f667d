/**
 * The store as a registry source (DESIGN.md §1): API-written resources (and, later,
 * auto-registered WorkloadEntries) flow into the registry like the files do. Each resource keeps
 * `origin.source` as the store recorded it (`api` or `auto-registration`), so the API's merged
 * views can say where it came from; nothing downstream looks at it.
 *
 * On `start()` the source subscribes to the store's change notifications, then lists everything
 * and delivers it; each later batch of changes (one committed transaction, in revision order) is
 * applied to its in-memory copy and either only what it changed (`onChanges`) or the full set
 * (`onUpdate`) is delivered again (the registry diffs and debounces). Events at or below the listed revision are skipped, so nothing is applied twice.
 * A PostgreSQL store delivers its notifications the same way (LISTEN/NOTIFY plus catch-up by
 * revision), so this source does not change.
 */
import type { Logger } from '../../observability/logger.js';
import { resourceKey, type MeshResource } from '../../resources/types.js';
import type { ResourceEvent, ResourceStore } from '../../store/types.js';

/** Options of {@link createStoreSource}. */
export interface StoreSourceOptions {
  resources: ResourceStore;
  logger: Logger;
  /**
   * Called with the full resource set after `start()`, and after every later change unless
   * `onChanges` is given.
   */
  onUpdate: (resources: MeshResource[]) => void;
  /**
   * Called after every change following `start()` with only what it changed (the objects put, the
   * keys `Kind/namespace/name` deleted), instead of `onUpdate` with the full set: a write costs
   * what it changed, not the size of the store (see `Registry.updateSource`).
   */
  onChanges?: (changes: StoreSourceChanges) => void;
}

/** What one batch of store changes did to the source's set. */
export interface StoreSourceChanges {
  upserted: MeshResource[];
  removed: string[];
}

/** A running store source. */
export interface StoreSource {
  /** Lists the store and delivers it; then follows changes. */
  start(): Promise<void>;
  /** Stops following changes. Idempotent. */
  stop(): void;
  /** The store revision of the last delivered set (0 before `start()`). */
  revision(): number;
}

/** Creates the store source; nothing happens until `start()`. */
export function createStoreSource(opts: StoreSourceOptions): StoreSource {
  const { resources: store, logger, onUpdate, onChanges } = opts;
  const current = new Map<string, MeshResource>();
  let revision = 0;
  let started = false;
  let pending: ResourceEvent[][] | undefined = [];
  let unsubscribe: (() => void) | undefined;

  /** Applies the events not applied yet; returns what they changed (undefined: nothing). */
  function apply(events: readonly ResourceEvent[]): StoreSourceChanges | undefined {
    const upserted = new Map<string, MeshResource>();
    const removed = new Set<string>();
    for (const e of events) {
      if (e.revision <= revision) continue;
      const key = resourceKey(e.object);
      if (e.type === 'DELETED') {
        current.delete(key);
        upserted.delete(key);
        removed.add(key);
      } else {
        current.set(key, e.object);
        removed.delete(key);
        upserted.set(key, e.object);
      }
    }
    const last = events[events.length - 1];
    if (last && last.revision > revision) revision = last.revision;
    return upserted.size + removed.size > 0 ? { upserted: [...upserted.values()], removed: [...removed] } : undefined;
  }

  function deliver(): void {
    onUpdate([...current.values()]);
  }

  return {
    async start() {
      if (started) return;
      started = true;
      unsubscribe = store.subscribe((events) => {
        if (pending) {
          pending.push([...events]);
          return;
        }
        const changes = apply(events);
        if (changes) {
          logger.debug({ revision, changes: events.length }, 'store changes applied');
          if (onChanges) onChanges(changes);
          else deliver();
        }
      });
      let cont: string | undefined;
      let listedAt: number | undefined;
      do {
        const page = await store.list({ limit: 1000, ...(cont !== undefined ? { continue: cont } : {}) });
        listedAt ??= page.revision;
        for (const r of page.items) current.set(resourceKey(r), r);
        cont = page.continue;
      } while (cont !== undefined);
      revision = listedAt ?? 0;
      // Changes committed while the (paged) list ran: replay them over the listed state.
      const catchUp = await store.eventsSince(revision);
      apply(catchUp.events);
      const queued = pending ?? [];
      pending = undefined;
      for (const batch of queued) apply(batch);
      logger.info({ resources: current.size, revision }, 'store source loaded');
      deliver();
    },
    stop() {
      unsubscribe?.();
      unsubscribe = undefined;
    },
    revision: () => revision,
  };
}
