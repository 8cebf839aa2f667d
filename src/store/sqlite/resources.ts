/**
 * {@link ResourceStore} on SQLite: the `resources` table holds the current objects, every
 * committed change appends to `resource_events` (compacted to the last `eventRetention`
 * revisions) for watches, and `meta.revision` is the store-wide revision counter.
 */
import { resourceKey, type MeshKind, type MeshResource } from '../../resources/types.js';
import { canonicalJson } from '../canonical.js';
import { StoreError } from '../errors.js';
import { matchesLabelSelector } from '../label-selector.js';
import type {
  EventsResult,
  ListQuery,
  ListResult,
  ResourceEvent,
  ResourceStore,
  ResourceWrite,
  StoredResourceSource,
  WriteOutcome,
  WriteResult,
} from '../types.js';
import type { SqliteContext } from './context.js';

interface ResourceRow {
  kind: string;
  namespace: string;
  name: string;
  source: string;
  revision: number;
  object: string;
}

interface EventRow {
  revision: number;
  seq: number;
  type: ResourceEvent['type'];
  source: string;
  object: string;
}

/** The object as stored: no `origin`, no `resourceVersion`. */
function storedForm(resource: MeshResource, creationTimestamp: string): MeshResource {
  const { origin: _origin, ...rest } = resource;
  const { resourceVersion: _rv, ...metadata } = rest.metadata;
  return { ...rest, metadata: { ...metadata, creationTimestamp } };
}

/** The object as callers see it: `resourceVersion` and `origin` filled in. */
function fromRow(object: string, revision: number, source: string): MeshResource {
  const r = JSON.parse(object) as MeshResource;
  r.metadata.resourceVersion = String(revision);
  r.origin = { source: source as StoredResourceSource };
  return r;
}

function encodeContinue(row: { kind: string; namespace: string; name: string }): string {
  return Buffer.from(JSON.stringify([row.kind, row.namespace, row.name])).toString('base64url');
}

function decodeContinue(token: string): [string, string, string] {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 3 && v.every((s) => typeof s === 'string')) return v as [string, string, string];
  } catch {
    // fall through
  }
  throw new StoreError('invalid', 'continue token is malformed (pass the "continue" of the previous page unchanged)');
}

/** Options of {@link SqliteResourceStore}. */
export interface SqliteResourceStoreOptions {
  /** Revisions of events kept for watches (default 10,000). */
  eventRetention: number;
}

/** The SQLite resource store; see the module comment. */
export class SqliteResourceStore implements ResourceStore {
  private readonly listeners = new Set<(events: readonly ResourceEvent[]) => void>();
  private notified: number;
  private readonly stmt;

  constructor(
    private readonly ctx: SqliteContext,
    private readonly opts: SqliteResourceStoreOptions,
  ) {
    const db = ctx.db;
    this.stmt = {
      meta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE key = ?'),
      get: db.prepare<[string, string, string], ResourceRow>('SELECT * FROM resources WHERE kind = ? AND namespace = ? AND name = ?'),
      upsert: db.prepare<[string, string, string, string, number, string]>(
        'INSERT INTO resources (kind, namespace, name, source, revision, object) VALUES (?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (kind, namespace, name) DO UPDATE SET source = excluded.source, revision = excluded.revision, object = excluded.object',
      ),
      delete: db.prepare<[string, string, string]>('DELETE FROM resources WHERE kind = ? AND namespace = ? AND name = ?'),
      event: db.prepare<[number, number, string, string, string]>('INSERT INTO resource_events (revision, seq, type, source, object) VALUES (?, ?, ?, ?, ?)'),
      compact: db.prepare<[number]>('DELETE FROM resource_events WHERE revision <= ?'),
      eventsAfter: db.prepare<[number], EventRow>('SELECT * FROM resource_events WHERE revision > ? ORDER BY revision, seq'),
    };
    this.notified = this.readMeta('revision');
  }

  private readMeta(key: string): number {
    return this.stmt.meta.get(key)?.value ?? 0;
  }

  async get(kind: MeshKind, namespace: string, name: string): Promise<MeshResource | undefined> {
    this.ctx.assertOpen();
    const row = this.stmt.get.get(kind, namespace, name);
    return row ? fromRow(row.object, row.revision, row.source) : undefined;
  }

  async list(query: ListQuery = {}): Promise<ListResult> {
    this.ctx.assertOpen();
    if (query.limit !== undefined && (!Number.isInteger(query.limit) || query.limit < 1)) {
      throw new StoreError('invalid', `limit must be a positive integer, got ${query.limit}`);
    }
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.kind !== undefined) {
      where.push('kind = ?');
      params.push(query.kind);
    }
    if (query.namespaces !== undefined) {
      if (query.namespaces.length === 0) return { items: [], revision: this.readMeta('revision') };
      where.push(`namespace IN (${query.namespaces.map(() => '?').join(', ')})`);
      params.push(...query.namespaces);
    }
    if (query.continue !== undefined) {
      const [k, ns, n] = decodeContinue(query.continue);
      where.push('(kind, namespace, name) > (?, ?, ?)');
      params.push(k, ns, n);
    }
    const sql = `SELECT * FROM resources ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY kind, namespace, name`;
    // One read transaction: the page and the revision come from the same snapshot.
    const read = this.ctx.db.transaction((): ListResult => {
      const revision = this.readMeta('revision');
      const items: MeshResource[] = [];
      let last: ResourceRow | undefined;
      let more = false;
      for (const row of this.ctx.db.prepare<(string | number)[], ResourceRow>(sql).iterate(...params)) {
        const object = fromRow(row.object, row.revision, row.source);
        if (query.labelSelector && !matchesLabelSelector(query.labelSelector, object.metadata.labels)) continue;
        if (query.limit !== undefined && items.length >= query.limit) {
          more = true;
          break;
        }
        items.push(object);
        last = row;
      }
      const result: ListResult = { items, revision };
      if (more && last) result.continue = encodeContinue(last);
      return result;
    });
    return read.deferred();
  }

  async write(writes: readonly ResourceWrite[], actor: string): Promise<WriteResult> {
    this.ctx.assertOpen();
    const keys = new Set<string>();
    for (const w of writes) {
      const key = w.op === 'put' ? resourceKey(w.resource) : `${w.kind}/${w.namespace}/${w.name}`;
      if (keys.has(key)) throw new StoreError('invalid', `${key} is written twice in one transaction`);
      keys.add(key);
    }
    const tx = this.ctx.db.transaction((): WriteResult => {
      const base = this.readMeta('revision');
      const revision = base + 1;
      const outcomes: WriteOutcome[] = [];
      let seq = 0;
      const now = new Date(this.ctx.now()).toISOString();
      for (const w of writes) {
        if (w.op === 'put') {
          const { kind, metadata } = w.resource;
          const target = `${kind}/${metadata.namespace}/${metadata.name}`;
          const row = this.stmt.get.get(kind, metadata.namespace, metadata.name);
          checkExpected(target, row, w.expectedVersion);
          const source = w.source ?? 'api';
          const created = row ? (JSON.parse(row.object) as MeshResource).metadata.creationTimestamp : undefined;
          const stored = storedForm(w.resource, created ?? w.resource.metadata.creationTimestamp ?? now);
          const text = canonicalJson(stored);
          if (row && row.object === text && row.source === source) {
            outcomes.push({ kind, namespace: metadata.namespace, name: metadata.name, action: 'unchanged', resourceVersion: String(row.revision), object: fromRow(row.object, row.revision, row.source) });
            continue;
          }
          this.stmt.upsert.run(kind, metadata.namespace, metadata.name, source, revision, text);
          const object = fromRow(text, revision, source);
          this.stmt.event.run(revision, seq++, row ? 'MODIFIED' : 'ADDED', source, canonicalJson(object));
          this.ctx.audit({ actor, action: row ? 'resource.update' : 'resource.create', target, revision, detail: { source } });
          outcomes.push({ kind, namespace: metadata.namespace, name: metadata.name, action: row ? 'updated' : 'created', resourceVersion: String(revision), object });
        } else {
          const target = `${w.kind}/${w.namespace}/${w.name}`;
          const row = this.stmt.get.get(w.kind, w.namespace, w.name);
          if (!row) throw new StoreError('not-found', `${target} not found`);
          checkExpected(target, row, w.expectedVersion);
          this.stmt.delete.run(w.kind, w.namespace, w.name);
          const object = fromRow(row.object, revision, row.source);
          this.stmt.event.run(revision, seq++, 'DELETED', row.source, canonicalJson(object));
          this.ctx.audit({ actor, action: 'resource.delete', target, revision, detail: { source: row.source, previousVersion: String(row.revision) } });
          outcomes.push({ kind: w.kind, namespace: w.namespace, name: w.name, action: 'deleted', resourceVersion: String(revision), object });
        }
      }
      if (seq === 0) return { revision: base, outcomes };
      this.stmt.setMeta.run(revision, 'revision');
      const compactTo = revision - this.opts.eventRetention;
      if (compactTo > this.readMeta('compacted_revision')) {
        this.stmt.compact.run(compactTo);
        this.stmt.setMeta.run(compactTo, 'compacted_revision');
      }
      return { revision, outcomes };
    });
    // IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading a read lock.
    const result = tx.immediate();
    if (result.outcomes.some((o) => o.action !== 'unchanged')) this.ctx.committed();
    return result;
  }

  async eventsSince(revision: number): Promise<EventsResult> {
    this.ctx.assertOpen();
    const read = this.ctx.db.transaction((): EventsResult => {
      const compacted = this.readMeta('compacted_revision');
      if (revision < compacted) {
        throw new StoreError('gone', `events at or before revision ${compacted} were compacted; list again and watch from the list's resourceVersion`);
      }
      return { events: this.stmt.eventsAfter.all(revision).map(toEvent), revision: this.readMeta('revision') };
    });
    return read.deferred();
  }

  async revision(): Promise<number> {
    this.ctx.assertOpen();
    return this.readMeta('revision');
  }

  subscribe(listener: (events: readonly ResourceEvent[]) => void): () => void {
    if (this.listeners.size === 0) this.notified = Math.max(this.notified, this.readMeta('revision'));
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** True while someone listens (the notifier polls for other processes' commits only then). */
  hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  /** Delivers committed events not yet delivered, one batch per revision. */
  dispatch(): void {
    if (this.listeners.size === 0) {
      this.notified = this.readMeta('revision');
      return;
    }
    const rows = this.stmt.eventsAfter.all(this.notified);
    if (rows.length === 0) return;
    const batches = new Map<number, ResourceEvent[]>();
    for (const row of rows) {
      const list = batches.get(row.revision) ?? [];
      list.push(toEvent(row));
      batches.set(row.revision, list);
    }
    for (const [revision, events] of batches) {
      this.notified = revision;
      for (const listener of [...this.listeners]) listener(events);
    }
  }
}

function toEvent(row: EventRow): ResourceEvent {
  const object = JSON.parse(row.object) as MeshResource;
  object.origin = { source: row.source as StoredResourceSource };
  return { type: row.type, revision: row.revision, object };
}

function checkExpected(target: string, row: ResourceRow | undefined, expected: string | undefined): void {
  if (expected === undefined) return;
  if (!row) throw new StoreError('conflict', `${target} does not exist, but resourceVersion ${expected} was expected`);
  if (String(row.revision) !== expected) {
    throw new StoreError('conflict', `${target} was modified: resourceVersion is ${row.revision}, the write expected ${expected}; get it again and retry`);
  }
}
