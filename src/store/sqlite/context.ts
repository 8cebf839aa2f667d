/**
 * What the SQLite store's parts share: the connection, the clock, the audit writer (called inside
 * the caller's transaction, so a change and its audit entry commit together) and the change
 * notifier that follows commits of this and other processes.
 */
import type Database from 'better-sqlite3';
import type { AuditEntry } from '../types.js';
import { StoreError } from '../errors.js';

/** Shared state of one open SQLite store. */
export interface SqliteContext {
  db: Database.Database;
  now: () => number;
  /** Appends an audit entry in the current transaction (if any). */
  audit(entry: Omit<AuditEntry, 'id' | 'at'>): AuditEntry;
  /** Throws `closed` after the store was closed. */
  assertOpen(): void;
  /** Tells the notifier that this connection committed (so it dispatches at once). */
  committed(): void;
}

/** Builds the audit writer on `db`. */
export function auditWriter(db: Database.Database, now: () => number): SqliteContext['audit'] {
  const insert = db.prepare<[number, string, string, string, number | null, string | null], { id: number }>(
    'INSERT INTO audit_log (at, actor, action, target, revision, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
  );
  return (entry) => {
    const at = now();
    const row = insert.get(at, entry.actor, entry.action, entry.target, entry.revision ?? null, entry.detail ? JSON.stringify(entry.detail) : null);
    if (!row) throw new StoreError('invalid', 'audit entry was not written');
    return { id: row.id, at: new Date(at), ...entry };
  };
}
