/** What the API's route modules need from the rest of the control plane. */
import type { TokenAuthority } from '../identity/tokens.js';
import type { Logger } from '../observability/logger.js';
import type { MeshSnapshot } from '../registry/types.js';
import type { WorkloadEntry } from '../resources/types.js';
import type { Store } from '../store/types.js';

/** Health of a workload as the merged views report it. */
export type WorkloadHealth = 'healthy' | 'unhealthy' | 'unknown';

/** Dependencies of `createApiApp`. */
export interface ApiDeps {
  store: Store;
  /** The merged registry snapshot (every source), for the views and conflict checks. */
  registry: { current(): MeshSnapshot };
  /** Issues and revokes bootstrap tokens (its state is `store.tokens`). */
  tokens: TokenAuthority;
  logger: Logger;
  /** Set when the API serves TLS: client SVIDs are verified against these and mapped to agents. */
  mtls?: { trustBundlePem: string; intermediatesPem?: string; trustDomain: string };
  /** Largest accepted request body, bytes (default 1 MiB); larger is 413. */
  maxBodyBytes?: number;
  /** Health of a workload (issue 4 §3 reports it); default: every workload is healthy. */
  health?: (workload: WorkloadEntry) => WorkloadHealth;
  /** Interval of SSE keep-alive comments, ms (default 15 s). */
  watchHeartbeatMs?: number;
  /** Milliseconds since the epoch (token status); for tests. */
  now?: () => number;
}
