/**
 * `skiff serve`: composes the stages of DESIGN.md §1 into a running control plane.
 *
 *   file source → registry → (per connected proxy) push → translate/envoy → snapshot cache → ADS
 *   CA (CreateCertificate) and ADS share the TLS gRPC port (15012); /metrics, /healthz, /readyz
 *   and /debug/* are on the monitoring port (15014).
 *   store (SQLite in the data dir) → store source → registry; the HTTP API (8080) writes the
 *   store and issues/revokes tokens; a revocation closes the xDS streams of the certificates
 *   descending from the token.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { serve, type ServerType } from '@hono/node-server';
import { CertificateAuthority } from '../../ca/index.js';
import { meshServerCredentials } from '../../ca/credentials.js';
import { createCaService, revokedTokenOf, verifiedPeerFromCall } from '../../ca/service.js';
import { controlPlaneSpiffeId } from '../../identity/spiffe.js';
import { TokenAuthority } from '../../identity/tokens.js';
import { createMonitoringApp } from '../../api/monitoring.js';
import { startControlPlaneApi } from '../../api/control-plane-api.js';
import { followRevokedCertificates, importFileTokenState, openStore } from '../../store/index.js';
import { createStoreSource } from '../../sources/store/index.js';
import { createConsulSource, type ConsulSourceConfig } from '../../sources/consul/index.js';
import type { Logger } from '../../observability/logger.js';
import type { MeshSnapshot } from '../../registry/types.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../../observability/metrics.js';
import { proxyIdentityFromNode } from '../../push/node.js';
import { createRegistry, type Registry } from '../../registry/index.js';
import { createFileSource } from '../../sources/file/index.js';
import { createJwksFetcher } from '../../sources/jwks/index.js';
import { DEFAULT_MESH_CONFIG, loadMeshConfig, type MeshConfig } from '../../resources/mesh-config.js';
import { formatIssue } from '../../resources/parse.js';
import { createSnapshotCache } from '../../xds/cache/index.js';
import { createAdsServer } from '../../xds/server/index.js';
import { ProxyPusher } from './proxies.js';
import { syncStatus } from './syncz.js';
import { startRegistration } from './registration.js';
import { addSessionTokenService } from './session.js';
import { isZtunnelNode, ZtunnelClients } from './ztunnel.js';

/** Options of {@link startControlPlane}; every port may be 0 (ephemeral). */
export interface ControlPlaneOptions {
  configDir: string;
  dataDir: string;
  /** Istio `cacerts` directory to plug in instead of a generated root. */
  caDir?: string;
  trustDomain: string;
  listenAddress: string;
  grpcPort: number;
  monitoringPort: number;
  /** Extra DNS names and IPs for the serving certificate (besides localhost/127.0.0.1/hostname). */
  dnsNames: string[];
  ipAddresses: string[];
  /** Further accepted bootstrap-token audiences (besides `skiff-ca`). */
  tokenAudiences: string[];
  /** `<namespace>/<serviceAccount>` of node proxies allowed to impersonate (Istio's CA_TRUSTED_NODE_ACCOUNTS). */
  caTrustedNodeAccounts?: string[];
  /** HTTP API port (8080 by default in the CLI; 0 = ephemeral). */
  apiPort: number;
  /** Serve the API over HTTPS with the serving certificate, accepting client SVIDs. */
  apiTls?: boolean;
  /** Istio MeshConfig YAML (rootNamespace, trustDomainAliases, extensionProviders). */
  meshConfigFile?: string;
  /** How long an auto-registered WorkloadEntry outlives its agent's stream, in ms (default 10 000). */
  registrationGracePeriodMs?: number;
  /** Follow this Consul catalog (issue 5); absent: no Consul source. */
  consul?: ConsulSourceConfig;
  logger: Logger;
}

/** A running control plane. */
export interface ControlPlane {
  grpcPort: number;
  monitoringPort: number;
  apiPort: number;
  trustBundlePem: string;
  metrics: ControlPlaneMetrics;
  registry: Registry;
  /**
   * Reloads the config directory now, as a file change would (what `skiff serve` does on
   * SIGHUP): all or nothing, so a rejected reload leaves the last accepted configuration serving.
   * Logs one line with the outcome: `outcome: "accepted"`, or `outcome: "rejected"` with `issues`,
   * each `file:line path: message` as the file source gives it. Resolves true when the
   * configuration was accepted; never rejects; after `stop()` it loads nothing.
   */
  reloadFiles(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Starts every component; rejects (after cleaning up) if the config or the CA cannot load. */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const { logger } = opts;
  const metrics = createControlPlaneMetrics();
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });

  const ca = await CertificateAuthority.loadOrCreate({ dataDir: opts.dataDir, caDir: opts.caDir, trustDomain: opts.trustDomain, logger: logger.child({ component: 'ca' }) });
  const trustBundlePem = ca.trustBundlePem();
  // Agents and operators read the bundle from here (public data).
  fs.writeFileSync(path.join(opts.dataDir, 'trust-bundle.pem'), trustBundlePem, { mode: 0o644 });
  const store = openStore({ dataDir: opts.dataDir, logger: logger.child({ component: 'store' }) });
  await importFileTokenState(opts.dataDir, store.tokens, logger.child({ component: 'store' }));
  const tokens = await TokenAuthority.open({ dataDir: opts.dataDir, trustDomain: opts.trustDomain, audiences: opts.tokenAudiences, logger: logger.child({ component: 'tokens' }), state: store.tokens });

  const meshConfig = await readMeshConfig(opts.meshConfigFile, logger);
  const registry = createRegistry({ logger: logger.child({ component: 'registry' }) });
  const fileSource = createFileSource({
    dir: opts.configDir,
    logger: logger.child({ component: 'file-source' }),
    metrics,
    onUpdate: (resources) => registry.setSource('file', resources),
  });
  await fileSource.start();
  const storeSource = createStoreSource({
    resources: store.resources,
    logger: logger.child({ component: 'store-source' }),
    onUpdate: (resources) => registry.setSource('api', resources),
    // Each later write passes only what it changed: its cost does not grow with the store.
    onChanges: (changes) => registry.updateSource('api', changes),
  });
  await storeSource.start();
  // The Consul catalog (issue 5): waits at most 5 s for the first answers; an unreachable Consul is
  // a stale source (see /readyz), never a failed start.
  const consulSource = opts.consul
    ? createConsulSource({ config: opts.consul, logger: logger.child({ component: 'consul-source' }), metrics, onUpdate: (resources) => registry.setSource('consul', resources) })
    : undefined;
  await consulSource?.start();
  registry.flush();

  // RequestAuthentication jwksUri: the control plane fetches the keys and ships them inline.
  const jwks = createJwksFetcher({ logger: logger.child({ component: 'jwks' }) });
  const jwksMap = (): ReadonlyMap<string, string> => {
    const m = new Map<string, string>();
    for (const uri of jwksUris(registry.current())) {
      const keys = jwks.get(uri);
      if (keys !== undefined) m.set(uri, keys);
    }
    return m;
  };
  jwks.track(jwksUris(registry.current()));
  const cache = createSnapshotCache({ logger: logger.child({ component: 'cache' }) });
  const pusher = new ProxyPusher({
    cache,
    current: () => registry.current(),
    extras: () => ({ meshConfig, jwks: jwksMap() }),
    logger: logger.child({ component: 'push' }),
    metrics,
  });
  // ztunnels (delta ADS, bearer tokens) get the whole mesh, translated once per snapshot.
  const ztunnels = new ZtunnelClients({
    cache,
    current: () => registry.current(),
    tokens,
    trustBundlePem,
    intermediatesPem: ca.intermediatesPemBundle(),
    trustDomain: opts.trustDomain,
    translateOptions: () => ({ trustDomain: opts.trustDomain, rootNamespace: meshConfig.rootNamespace }),
    logger: logger.child({ component: 'ztunnel' }),
  });
  const unsubscribe = registry.subscribe((snapshot) => {
    ztunnels.pushAll(snapshot);
    jwks.track(jwksUris(snapshot));
    pusher.pushAll(snapshot);
  });
  const unsubscribeJwks = jwks.onChange(() => pusher.pushAll(registry.current(), true));

  const cpSpiffeId = controlPlaneSpiffeId(opts.trustDomain);
  // Client certificate serial per connection (grpc-js peer address), to close the xDS streams of
  // certificates whose bootstrap token gets revoked.
  const peerSerials = new Map<string, string>();
  const ads = createAdsServer({
    cache,
    logger: logger.child({ component: 'ads' }),
    metrics,
    authorize: async (node, call) => {
      if (isZtunnelNode(node)) return ztunnels.authorize(node, call);
      const verified = verifiedPeerFromCall(call, trustBundlePem, ca.intermediatesPemBundle());
      if (!verified) return { ok: false, code: grpc.status.UNAUTHENTICATED, message: 'xDS requires a client certificate (the workload SVID)' };
      const peer = verified.spiffeId;
      let identity;
      try {
        identity = proxyIdentityFromNode(node, opts.trustDomain);
      } catch (err) {
        return { ok: false, code: grpc.status.INVALID_ARGUMENT, message: `node: ${(err as Error).message}` };
      }
      if (identity.spiffeId !== peer) {
        logger.warn({ node: node.id, claimed: identity.spiffeId, peer }, 'xDS stream refused: node metadata claims another identity');
        return { ok: false, code: grpc.status.PERMISSION_DENIED, message: `node claims ${identity.spiffeId} but the client certificate is ${peer}` };
      }
      const revoked = await revokedTokenOf(store.certificates, tokens, verified.serial);
      if (revoked !== undefined) {
        return { ok: false, code: grpc.status.PERMISSION_DENIED, message: `the client certificate was issued with bootstrap token ${revoked}, which was revoked` };
      }
      peerSerials.set(call.getPeer(), verified.serial);
      return { ok: true };
    },
    onStreamOpen: async (node, stream) => (isZtunnelNode(node) ? ztunnels.connect(node, stream.peer) : pusher.connect(proxyIdentityFromNode(node, opts.trustDomain), node.metadata)),
    onStreamClose: (node, stream) => {
      if (isZtunnelNode(node)) return ztunnels.disconnect(node.id, stream.peer);
      if (!ads.streams().some((s) => s.id !== stream.id && s.peer === stream.peer)) peerSerials.delete(stream.peer);
      pusher.disconnect(node.id);
    },
  });
  const caService = createCaService({
    ca,
    tokens,
    trustBundlePem,
    logger: logger.child({ component: 'ca' }),
    metrics,
    certificates: store.certificates,
    trustedNodeAccounts: opts.caTrustedNodeAccounts ?? [],
  });
  // WorkloadGroup auto-registration and health reports (agents' SVIDs authenticate them).
  const registration = startRegistration({
    registry,
    trustDomain: opts.trustDomain,
    gracePeriodMs: opts.registrationGracePeriodMs,
    trustBundlePem,
    intermediatesPem: ca.intermediatesPemBundle(),
    revokedTokenOf: (serial) => revokedTokenOf(store.certificates, tokens, serial),
    logger: logger.child({ component: 'registration' }),
  });
  const stopFollowingRevocations = followRevokedCertificates(store, logger, (serials, jtis) => {
    const ztunnelStreams = ztunnels.openedWithTokens(jtis);
    const closed = ads.closeStreams((s) => serials.has(peerSerials.get(s.peer) ?? '') || ztunnelStreams(s), 'the bootstrap token of this certificate was revoked');
    logger.info({ jtis, certificates: serials.size, closedStreams: closed }, 'bootstrap token revoked');
  });

  const serving = await ca.issueServingCert({
    spiffeId: cpSpiffeId,
    dnsNames: unique(['localhost', os.hostname(), ...opts.dnsNames]),
    ipAddresses: unique(['127.0.0.1', ...(opts.listenAddress !== '0.0.0.0' && opts.listenAddress !== '::' ? [opts.listenAddress] : []), ...opts.ipAddresses]),
    ttlSeconds: 90 * 24 * 3600,
  });
  const api = await startControlPlaneApi({
    store,
    registry,
    tokens,
    logger: logger.child({ component: 'api' }),
    dataDir: opts.dataDir,
    hostname: opts.listenAddress,
    port: opts.apiPort,
    ...(opts.apiTls
      ? { tls: { certChainPem: serving.certChainPem, keyPem: serving.keyPem, trustBundlePem, intermediatesPem: ca.intermediatesPemBundle(), trustDomain: opts.trustDomain } }
      : {}),
  });
  const grpcServer = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_permit_without_calls': 1 });
  grpcServer.addService(ads.service.definition, ads.service.implementation);
  grpcServer.addService(caService.definition, caService.implementation);
  grpcServer.addService(registration.service.definition, registration.service.implementation);
  await addSessionTokenService(grpcServer, { dataDir: opts.dataDir, trustDomain: opts.trustDomain, trustBundlePem, intermediatesPem: ca.intermediatesPemBundle(), certificates: store.certificates, tokens, logger: logger.child({ component: 'session-tokens' }) });
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync(
      `${hostPort(opts.listenAddress, opts.grpcPort)}`,
      meshServerCredentials({ certChainPem: serving.certChainPem, keyPem: serving.keyPem, trustBundlePem }),
      (err, port) => (err ? reject(new Error(`gRPC (xDS and CA, --grpc-port): cannot listen on ${hostPort(opts.listenAddress, opts.grpcPort)}: ${err.message}`)) : resolve(port)),
    );
  });

  let grpcListening = true;
  const monitoringApp = createMonitoringApp({
    metrics: metrics.registry,
    readiness: [
      { name: 'config', check: () => ({ ok: registry.current().version > 0 || fileSource.lastError() === undefined, detail: fileSource.lastError() }) },
      { name: 'grpc', check: () => ({ ok: grpcListening }) },
      ...(consulSource ? [{ name: 'consul', check: () => consulSource.readiness() }] : []),
    ],
    debug: {
      ...(consulSource ? { consul: () => consulSource.status() } : {}),
      registrations: () => registration.list(),
      proxies: () => [...pusher.list(), ...ztunnels.list()],
      syncz: () => syncStatus(registry.current().version, [...pusher.list(), ...ztunnels.list()], ads.streams()),
      registry: () => {
        const s = registry.current();
        return { version: s.version, resources: s.resources.map((r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`) };
      },
    },
  });
  const monitoringServer: ServerType = serve({ fetch: monitoringApp.fetch, port: opts.monitoringPort, hostname: opts.listenAddress });
  const monitoringPort = await new Promise<number>((resolve, reject) => {
    monitoringServer.once('error', (err: Error) => reject(new Error(`monitoring (--monitoring-port): cannot listen on ${hostPort(opts.listenAddress, opts.monitoringPort)}: ${err.message}`)));
    const ready = () => {
      const addr = monitoringServer.address();
      resolve(typeof addr === 'object' && addr ? addr.port : opts.monitoringPort);
    };
    if (monitoringServer.listening) ready();
    else monitoringServer.once('listening', ready);
  });

  logger.info({ grpcPort, monitoringPort, apiPort: api.port, listen: opts.listenAddress, configDir: opts.configDir, trustDomain: opts.trustDomain, spiffeId: cpSpiffeId }, 'control plane listening');

  return {
    grpcPort,
    monitoringPort,
    apiPort: api.port,
    trustBundlePem,
    metrics,
    registry,
    reloadFiles: async () => {
      const accepted = await fileSource.reload();
      const issues = fileSource.lastError()?.split('\n') ?? [];
      if (accepted) logger.info({ configDir: opts.configDir, outcome: 'accepted' }, 'config files reloaded');
      else logger.error({ configDir: opts.configDir, outcome: 'rejected', issues }, 'config files reload rejected; the previous configuration keeps serving');
      return accepted;
    },
    stop: async () => {
      grpcListening = false;
      unsubscribe();
      unsubscribeJwks();
      pusher.stop();
      jwks.stop();
      stopFollowingRevocations();
      await api.close();
      storeSource.stop();
      await consulSource?.stop();
      await fileSource.stop();
      registration.stop();
      registry.close();
      // Proxies keep their last config and reconnect (to this or another replica): end their
      // streams now rather than waiting for them, then give in-flight CA calls a moment.
      ads.closeStreams(() => true, 'control plane shutting down');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        grpcServer.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      grpcServer.forceShutdown();
      const closed = new Promise<void>((resolve) => monitoringServer.close(() => resolve()));
      if ('closeAllConnections' in monitoringServer) monitoringServer.closeAllConnections();
      await closed;
      await store.close();
    },
  };
}

/** Every `jwksUri` of every RequestAuthentication rule in the snapshot. */
function jwksUris(snapshot: MeshSnapshot): string[] {
  const uris = new Set<string>();
  for (const ra of snapshot.requestAuthentications) for (const rule of ra.spec.jwtRules ?? []) if (rule.jwksUri) uris.add(rule.jwksUri);
  return [...uris];
}

/** Loads `--mesh-config`; an invalid file stops the start with every problem listed. */
async function readMeshConfig(file: string | undefined, logger: Logger): Promise<MeshConfig> {
  if (!file) return DEFAULT_MESH_CONFIG;
  const result = await loadMeshConfig(file);
  for (const w of result.warnings) logger.warn(formatIssue(w));
  if (result.errors.length > 0) throw new Error(`mesh config rejected:\n${result.errors.map(formatIssue).join('\n')}`);
  return result.config;
}

function unique(values: string[]): string[] {
  return [...new Set(values.filter((v) => v.length > 0))];
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
