/**
 * The ADS server and the snapshot cache against a real Envoy 1.40: Envoy connects over ADS,
 * ACKs every type, serves traffic from the pushed config, and moves a route to a brand-new
 * cluster without a single failed request (make-before-break: CDS, then that cluster's EDS,
 * then RDS only after the proxy answered CDS), and keeps serving through an updated cluster
 * (Envoy warms it on its ClusterLoadAssignment). Everything runs twice: over SotW ADS
 * (`api_type: GRPC`) and over delta ADS (`api_type: DELTA_GRPC`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { findEnvoy } from '../../../agents/envoy-path.js';
import { freePort, ProcessGroup } from '../../../test/helpers/processes.js';
import { silentLogger } from '../../observability/logger.js';
import { createControlPlaneMetrics } from '../../observability/metrics.js';
import { createSnapshotCache, resourcesByType, versionedResource, type NodeSnapshot } from '../cache/index.js';
import { encodeAny, TypeUrl } from '../protos/loader.js';
import type { VersionedResource } from '../types.js';
import { createAdsServer } from './ads-server.js';

const NODE_ID = 'sidecar~127.0.0.1~envoy-1.default~default.svc.cluster.local';
const ROUTES = 'routes';

function cluster(name: string, connectTimeoutSeconds = 1): VersionedResource {
  return versionedResource(
    name,
    encodeAny(TypeUrl.Cluster, { name, type: 'EDS', connectTimeout: { seconds: connectTimeoutSeconds, nanos: 0 }, edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } } }),
  );
}

function endpoints(name: string, port: number): VersionedResource {
  return versionedResource(
    name,
    encodeAny(TypeUrl.ClusterLoadAssignment, {
      clusterName: name,
      endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }],
    }),
  );
}

function listener(port: number): VersionedResource {
  return versionedResource(
    'http',
    encodeAny(TypeUrl.Listener, {
      name: 'http',
      address: { socketAddress: { address: '127.0.0.1', portValue: port } },
      filterChains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typedConfig: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                statPrefix: 'http',
                rds: { routeConfigName: ROUTES, configSource: { ads: {}, resourceApiVersion: 'V3' } },
                httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
              },
            },
          ],
        },
      ],
    }),
  );
}

function routes(toCluster: string): VersionedResource {
  return versionedResource(
    ROUTES,
    encodeAny(TypeUrl.RouteConfiguration, {
      name: ROUTES,
      virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: toCluster } }] }],
    }),
  );
}

function snapshot(resources: VersionedResource[], clusters: string[]): NodeSnapshot {
  return {
    resources: resourcesByType(resources),
    references: new Map([
      [TypeUrl.ClusterLoadAssignment, new Set(clusters)],
      [TypeUrl.RouteConfiguration, new Set([ROUTES])],
    ]),
  };
}

/** A tiny app answering every request with its name. */
async function startApp(name: string): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((_req, res) => res.end(name));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

async function get(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

const envoy = findEnvoy();
const envoyMissing = envoy !== 'envoy' && !fs.existsSync(envoy);

for (const apiType of ['GRPC', 'DELTA_GRPC'] as const) describeWithEnvoy(apiType);

function describeWithEnvoy(apiType: 'GRPC' | 'DELTA_GRPC'): void {
  void describe(`ADS with a real Envoy (api_type ${apiType})`, { skip: envoyMissing && `Envoy binary ${envoy} not found (run npm run setup)` }, () => {
    const group = new ProcessGroup();
    const server = new grpc.Server();
    const metrics = createControlPlaneMetrics();
    const cache = createSnapshotCache({ logger: silentLogger() });
    const ads = createAdsServer({ cache, logger: silentLogger(), metrics });
    const apps: http.Server[] = [];
    let dir = '';
    let appA = 0;
    let appB = 0;
    let listenerPort = 0;

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ads-envoy-'));
      const a = await startApp('a');
      const b = await startApp('b');
      apps.push(a.server, b.server);
      appA = a.port;
      appB = b.port;
      listenerPort = await freePort();
      server.addService(ads.service.definition, ads.service.implementation);
      const adsPort = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      cache.setSnapshot(NODE_ID, snapshot([cluster('app-a'), endpoints('app-a', appA), listener(listenerPort), routes('app-a')], ['app-a']));
      const bootstrap = {
        node: { id: NODE_ID, cluster: 'envoy.default', metadata: { NAMESPACE: 'default' } },
        admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
        dynamic_resources: {
          ads_config: {
            api_type: apiType,
            transport_api_version: 'V3',
            set_node_on_first_message_only: true,
            grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }],
          },
          cds_config: { ads: {}, resource_api_version: 'V3' },
          lds_config: { ads: {}, resource_api_version: 'V3' },
        },
        static_resources: {
          clusters: [
            {
              name: 'xds',
              type: 'STATIC',
              connect_timeout: '1s',
              typed_extension_protocol_options: {
                'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
                  '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
                  explicit_http_config: { http2_protocol_options: {} },
                },
              },
              load_assignment: {
                cluster_name: 'xds',
                endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: adsPort } } } }] }],
              },
            },
          ],
        },
      };
      const config = path.join(dir, 'bootstrap.json');
      fs.writeFileSync(config, JSON.stringify(bootstrap));
      const child = spawn(envoy, ['-c', config, '--use-dynamic-base-id', '--concurrency', '1', '--log-level', 'warn', '--admin-address-path', path.join(dir, 'admin-address')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      group.add('envoy', child);
    });

    after(async () => {
      await group.stopAll();
      server.forceShutdown();
      for (const app of apps) app.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = await probe().catch(() => undefined);
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${group.dump()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    function allAcked(): boolean {
      const types = ads.streams()[0]?.types ?? [];
      return types.length === 4 && types.every((t) => t.lastSentVersion !== undefined && t.ackedVersion === t.lastSentVersion);
    }

    it('Envoy ACKs CDS, EDS, LDS and RDS and serves traffic from them', async () => {
      await until('traffic through Envoy to app a', async () => {
        const res = await get(listenerPort);
        return res.status === 200 && res.body === 'a' ? res : undefined;
      });
      await until('every type acknowledged', async () => (allAcked() ? true : undefined));
      const rejects = await metrics.xdsRejects.get();
      assert.equal(rejects.values.reduce((sum, v) => sum + v.value, 0), 0, 'no NACK');
      assert.deepEqual(ads.streams()[0]?.types.map((t) => t.typeUrl).sort(), [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration].sort());
    });

    it('moves the route to a new cluster with no failed request in between', async () => {
      const statuses: number[] = [];
      const bodies = new Set<string>();
      let stop = false;
      const load = (async () => {
        while (!stop) {
          const res = await get(listenerPort);
          statuses.push(res.status);
          bodies.add(res.body);
        }
      })();
      await until('some requests before the change', async () => (statuses.length >= 5 ? true : undefined));
      cache.setSnapshot(
        NODE_ID,
        snapshot([cluster('app-a'), cluster('app-b'), endpoints('app-a', appA), endpoints('app-b', appB), listener(listenerPort), routes('app-b')], ['app-a', 'app-b']),
      );
      await until('traffic reaching app b', async () => (bodies.has('b') ? true : undefined));
      const seen = statuses.length;
      await until('more requests after the change', async () => (statuses.length >= seen + 5 ? true : undefined));
      stop = true;
      await load;
      assert.deepEqual(
        statuses.filter((s) => s !== 200),
        [],
        `every request succeeded while the new cluster was added (${statuses.length} requests)`,
      );
      await until('every type acknowledged', async () => (allAcked() ? true : undefined));
      const rejects = await metrics.xdsRejects.get();
      assert.equal(rejects.values.reduce((sum, v) => sum + v.value, 0), 0, 'no NACK');
    });

    it('keeps serving through an update of the cluster in use (warmed by its endpoints)', async () => {
      const statuses: number[] = [];
      let stop = false;
      const load = (async () => {
        while (!stop) statuses.push((await get(listenerPort).catch(() => ({ status: 0 }))).status);
      })();
      await until('some requests before the change', async () => (statuses.length >= 5 ? true : undefined));
      const before = (await envoyStat('cluster_manager.cds.update_success')) ?? 0;
      cache.setSnapshot(
        NODE_ID,
        snapshot([cluster('app-a'), cluster('app-b', 2), endpoints('app-a', appA), endpoints('app-b', appB), listener(listenerPort), routes('app-b')], ['app-a', 'app-b']),
      );
      await until('the updated cluster warmed and active', async () => {
        const updated = await envoyStat('cluster_manager.cds.update_success');
        const warming = await envoyStat('cluster_manager.warming_clusters');
        return updated !== undefined && updated > before && warming === 0 ? true : undefined;
      });
      const seen = statuses.length;
      await until('more requests after the change', async () => (statuses.length >= seen + 5 ? true : undefined));
      stop = true;
      await load;
      assert.deepEqual(statuses.filter((s) => s !== 200), [], `every request succeeded while the cluster was updated (${statuses.length} requests)`);
      await until('every type acknowledged', async () => (allAcked() ? true : undefined));
      assert.equal(ads.streams()[0]?.kind, apiType === 'GRPC' ? 'sotw' : 'delta');
    });

    /** A counter or gauge from Envoy's admin `/stats` (the admin port is read from its log). */
    async function envoyStat(name: string): Promise<number | undefined> {
      const port = adminPort();
      if (port === undefined) return undefined;
      const res = await fetch(`http://127.0.0.1:${port}/stats?filter=^${name.replace(/\./g, '\\.')}$`, { signal: AbortSignal.timeout(2000) });
      const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)`, 'm').exec(await res.text());
      return m ? Number(m[1]) : undefined;
    }

    function adminPort(): number | undefined {
      try {
        const text = fs.readFileSync(path.join(dir, 'admin-address'), 'utf8').trim();
        const port = Number(text.slice(text.lastIndexOf(':') + 1));
        return Number.isInteger(port) && port > 0 ? port : undefined;
      } catch {
        return undefined;
      }
    }
  });
}
