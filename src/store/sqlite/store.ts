/**
 * The embedded store (DESIGN.md §9): SQLite through better-sqlite3 in one file, `<dataDir>/skiff.db`
 * (mode 0600), in WAL mode with `synchronous=FULL`: a write resolves only after its commit is
 * fsync'd, so an acknowledged write survives `kill -9` and power loss. Certificate ledger records,
 * written once per issued certificate, are group-committed (`group-commit.ts`): records made
 * together share one such durable transaction.
 *
 * Several processes on one host may open the file at once (the control plane and `skiff token
 * create` / `skiff admin-token create`): writes take the write lock up front (`BEGIN IMMEDIATE`)
 * and wait up to 5 s for it. Commits by other processes are noticed by polling
 * `PRAGMA data_version` (the SQLite analogue of PostgreSQL's LISTEN/NOTIFY; it changes only when
 * another connection commits), and delivered to subscribers like local ones.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../../observability/logger.js';
import { StoreError } from '../errors.js';
import type { Store } from '../types.js';
import { auditWriter, type SqliteContext } from './context.js';
import { SqliteResourceStore } from './resources.js';
import { MIGRATIONS } from './schema.js';
import { SqliteAdminTokenStore, SqliteAuditLog, SqliteCertificateLedger } from './small-tables.js';
import { SqliteTokenStore } from './tokens.js';

/** The store's file name in the data dir. */
export const STORE_FILE = 'skiff.db';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file (created with mode 0600, its directory 0700, if missing). */
  file: string;
  logger: Logger;
  /** Revisions of resource events kept for watches (default 10,000). */
  eventRetention?: number;
  /** How often to look for other processes' commits, ms (default 500). */
  pollIntervalMs?: number;
  /** Milliseconds since the epoch; for tests. */
  now?: () => number;
}

function migrate(db: Database.Database, logger: Logger, file: string): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(`${file}: schema version ${version} is newer than this Skiff understands (${MIGRATIONS.length}); upgrade Skiff`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      logger.info({ file, version: v + 1 }, 'store schema migrated');
    }
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

/**
 * Opens (creating and migrating if needed) the SQLite store. Throws if the file cannot be opened,
 * is not a Skiff store, or WAL mode cannot be enabled.
 */
export function openSqliteStore(opts: SqliteStoreOptions): Store {
  const { file, logger } = opts;
  const now = opts.now ?? Date.now;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'a', 0o600));
  const db = new Database(file, { timeout: 5000 });
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`${file}: cannot enable WAL mode (journal_mode is ${String(mode)})`);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db, logger, file);
  } catch (err) {
    db.close();
    throw err;
  }

  // The parts that deliver notifications; filled in once they exist (they need the context).
  const followers: { dispatch(): void; hasListeners(): boolean }[] = [];
  const dispatch = (): void => {
    for (const part of followers) {
      try {
        part.dispatch();
      } catch (err) {
        logger.error({ err }, 'store change listener failed');
      }
    }
  };
  const ctx: SqliteContext = {
    db,
    now,
    audit: auditWriter(db, now),
    assertOpen: () => {
      if (closed) throw new StoreError('closed', 'the store is closed');
    },
    committed: dispatch,
  };
  const resources = new SqliteResourceStore(ctx, { eventRetention: opts.eventRetention ?? 10_000 });
  const tokens = new SqliteTokenStore(ctx);
  followers.push(resources, tokens);

  let dataVersion = db.pragma('data_version', { simple: true }) as number;
  timer = setInterval(() => {
    if (closed || !followers.some((f) => f.hasListeners())) return;
    try {
      const v = db.pragma('data_version', { simple: true }) as number;
      if (v === dataVersion) return;
      dataVersion = v;
      dispatch();
    } catch (err) {
      logger.error({ err }, 'polling the store for changes failed');
    }
  }, opts.pollIntervalMs ?? 500);
  timer.unref();

  logger.debug({ file }, 'store opened');
  const certificates = new SqliteCertificateLedger(ctx);
  return {
    resources,
    tokens,
    adminTokens: new SqliteAdminTokenStore(ctx),
    certificates,
    audit: new SqliteAuditLog(ctx),
    location: file,
    close: async () => {
      if (closed) return;
      certificates.flush(); // certificate records still queued for a group commit
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      db.close();
    },
  };
}
