/**
 * The API as the control plane runs it: makes the first admin token on a fresh store (written to
 * `<dataDir>/admin-token`, mode 0600, and announced once), builds the app and serves it on
 * `hostname:port`, over HTTPS with the control plane's serving certificate when `tls` is given
 * (clients may then also authenticate with their SVID).
 */
import type { TokenAuthority } from '../identity/tokens.js';
import type { Logger } from '../observability/logger.js';
import type { MeshSnapshot } from '../registry/types.js';
import type { Store } from '../store/types.js';
import { ensureInitialAdminToken } from './admin-tokens.js';
import { createApiApp } from './app.js';
import type { ApiDeps } from './deps.js';
import { startApiServer, type ApiServer } from './server.js';

/** Options of {@link startControlPlaneApi}. */
export interface ControlPlaneApiOptions {
  store: Store;
  registry: { current(): MeshSnapshot };
  tokens: TokenAuthority;
  logger: Logger;
  dataDir: string;
  hostname: string;
  /** 0 = ephemeral. */
  port: number;
  /** Serve HTTPS with this serving certificate and accept client SVIDs of this trust domain. */
  tls?: { certChainPem: string; keyPem: string; trustBundlePem: string; intermediatesPem?: string; trustDomain: string };
  maxBodyBytes?: number;
  health?: ApiDeps['health'];
  /** Shows the first admin token once; default: a note on stderr. */
  announceAdminToken?: (token: string, file: string) => void;
}

function announceOnStderr(token: string, file: string): void {
  process.stderr.write(
    `\nskiff: created the first admin token for the HTTP API (shown once; also in ${file}, mode 0600):\n\n  ${token}\n\n` +
      `Use it with: skiff get workloads --server <url> --token-file ${file}\n\n`,
  );
}

/** Starts the API; rejects if its port cannot be bound. */
export async function startControlPlaneApi(opts: ControlPlaneApiOptions): Promise<ApiServer> {
  const created = await ensureInitialAdminToken(opts.store.adminTokens, opts.dataDir, opts.announceAdminToken ?? announceOnStderr);
  if (created) opts.logger.info({ file: created }, 'created the first admin token');
  const app = createApiApp({
    store: opts.store,
    registry: opts.registry,
    tokens: opts.tokens,
    logger: opts.logger,
    ...(opts.tls
      ? { mtls: { trustBundlePem: opts.tls.trustBundlePem, trustDomain: opts.tls.trustDomain, ...(opts.tls.intermediatesPem ? { intermediatesPem: opts.tls.intermediatesPem } : {}) } }
      : {}),
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    ...(opts.health ? { health: opts.health } : {}),
  });
  return startApiServer({
    fetch: app.fetch,
    hostname: opts.hostname,
    port: opts.port,
    logger: opts.logger,
    ...(opts.tls ? { tls: { certChainPem: opts.tls.certChainPem, keyPem: opts.tls.keyPem, caPem: opts.tls.trustBundlePem } } : {}),
  });
}
