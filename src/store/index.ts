/**
 * The durable store (DESIGN.md §2, §9). Callers use the {@link Store} interface only and get one
 * from {@link openStore}; the embedded default is SQLite in the data dir. A PostgreSQL backend
 * (several replicas) plugs in here without touching callers.
 */
import path from 'node:path';
import type { Logger } from '../observability/logger.js';
import { openSqliteStore, STORE_FILE } from './sqlite/store.js';
import type { Store } from './types.js';

export type * from './types.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export { parseLabelSelector, matchesLabelSelector, formatLabelSelector, LabelSelectorError, type LabelRequirement } from './label-selector.js';
export { STORE_FILE } from './sqlite/store.js';
export { importFileTokenState } from './import-token-files.js';

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** The control plane's data dir; the SQLite file is `<dataDir>/skiff.db`. */
  dataDir: string;
  logger: Logger;
  /** How often to look for commits by other processes, ms (default 500). */
  pollIntervalMs?: number;
  /** Revisions of resource events kept for watches (default 10,000). */
  eventRetention?: number;
}

/** Opens the store of a data dir (SQLite, created on first use). */
export function openStore(opts: OpenStoreOptions): Store {
  return openSqliteStore({
    file: path.join(opts.dataDir, STORE_FILE),
    logger: opts.logger,
    ...(opts.pollIntervalMs !== undefined ? { pollIntervalMs: opts.pollIntervalMs } : {}),
    ...(opts.eventRetention !== undefined ? { eventRetention: opts.eventRetention } : {}),
  });
}
export { followRevokedCertificates } from './revocations.js';
