/**
 * The SotW ADS server over a real @grpc/grpc-js server and client on 127.0.0.1, speaking raw
 * DiscoveryRequests (test/helpers/ads-client.ts). Most cases run through the real snapshot
 * cache; the ones about the server's own ordering and hooks use a fake cache that answers
 * exactly when the test says.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import { AdsTestClient, testCluster, testEndpoints, testListener, testRoute } from '../../../test/helpers/ads-client.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../../observability/metrics.js';
import { createSnapshotCache, resourcesByType, type NodeSnapshot, type SnapshotCache } from '../cache/index.js';
import { TypeUrl } from '../protos/loader.js';
import type { ConfigWatcher, VersionedResource, WatchRequest, WatchResponse, XdsNode } from '../types.js';
import { createAdsServer, type AdsServer, type AdsServerOptions } from './ads-server.js';
import type { DiscoveryResponseMessage } from './messages.js';

const NODE: XdsNode = {
  id: 'sidecar~198.18.0.2~a-1.default~default.svc.cluster.local',
  cluster: 'a.default',
  metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'a' },
};
const { Cluster: CDS, ClusterLoadAssignment: EDS, Listener: LDS, RouteConfiguration: RDS } = TypeUrl;

interface Harness {
  address: string;
  ads: AdsServer;
  metrics: ControlPlaneMetrics;
  client(node?: Partial<XdsNode> & { id: string }): AdsTestClient;
}

/** Starts a grpc-js server with the ADS service on an ephemeral port; cleaned up after the test. */
async function startAds(t: TestContext, opts: Partial<AdsServerOptions> & { cache: ConfigWatcher }): Promise<Harness> {
  const metrics = createControlPlaneMetrics();
  const ads = createAdsServer({ logger: silentLogger(), metrics, ...opts });
  const server = new grpc.Server();
  server.addService(ads.service.definition, ads.service.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const clients: AdsTestClient[] = [];
  t.after(() => {
    for (const c of clients) c.close();
    server.forceShutdown();
  });
  const address = `127.0.0.1:${port}`;
  return {
    address,
    ads,
    metrics,
    client(node = NODE) {
      const c = AdsTestClient.connect({ address, node });
      clients.push(c);
      return c;
    },
  };
}

function snapshot(resources: VersionedResource[]): NodeSnapshot {
  const byType = resourcesByType(resources);
  const eds = [...(byType.get(CDS)?.keys() ?? [])];
  const rds = [...(byType.get(RDS)?.keys() ?? [])];
  return { resources: byType, references: new Map([[EDS, new Set(eds)], [RDS, new Set(rds)]]) };
}

/** Clusters a (and more), their endpoints, listener l1 and route r to the first cluster. */
function mesh(clusters: string[] = ['a'], opts: { listeners?: string[]; routeTo?: string; clusterTag?: string; addresses?: string[] } = {}): NodeSnapshot {
  return snapshot([
    ...clusters.map((c) => testCluster(c, opts.clusterTag)),
    ...clusters.map((c) => testEndpoints(c, opts.addresses)),
    ...(opts.listeners ?? ['l1']).map((l, i) => testListener(l, 15001 + i)),
    testRoute('r', opts.routeTo ?? (clusters[0] as string)),
  ]);
}

function realCache(initial?: NodeSnapshot): SnapshotCache {
  const cache = createSnapshotCache({ logger: silentLogger() });
  if (initial) cache.setSnapshot(NODE.id, initial);
  return cache;
}

async function metricValue(metric: Counter<'type'> | Gauge<'kind'>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k as never] === val)).reduce((sum, v) => sum + v.value, 0);
}

function types(responses: DiscoveryResponseMessage[]): string[] {
  return responses.map((r) => r.typeUrl);
}

/** A logger that keeps every line, to assert what was logged. */
function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

/**
 * Brings a client to the steady state of a connected Envoy: CDS, EDS for every cluster, LDS and
 * RDS subscribed and acknowledged. Returns the last response of each type.
 */
async function steadyState(ads: AdsTestClient, clusters: string[] = ['a']): Promise<Map<string, DiscoveryResponseMessage>> {
  const last = new Map<string, DiscoveryResponseMessage>();
  ads.subscribe(CDS);
  last.set(CDS, await ads.next(CDS));
  ads.subscribe(EDS, clusters);
  last.set(EDS, await ads.next(EDS));
  ads.ack(last.get(CDS) as DiscoveryResponseMessage);
  ads.ack(last.get(EDS) as DiscoveryResponseMessage);
  ads.subscribe(LDS);
  last.set(LDS, await ads.next(LDS));
  ads.ack(last.get(LDS) as DiscoveryResponseMessage);
  ads.subscribe(RDS, ['r']);
  last.set(RDS, await ads.next(RDS));
  ads.ack(last.get(RDS) as DiscoveryResponseMessage);
  assert.deepEqual(await ads.settle(), [], 'steady state: nothing more to send');
  return last;
}

/** A cache stand-in whose watches the test answers by hand. */
class FakeCache implements ConfigWatcher {
  readonly watches: Array<{ nodeId: string; request: WatchRequest; respond: (r: WatchResponse) => void; open: boolean }> = [];
  /** Called on each createWatch (to check what happened before it). */
  onCreate: ((request: WatchRequest) => void) | undefined;

  createWatch(nodeId: string, request: WatchRequest, respond: (r: WatchResponse) => void): () => void {
    this.onCreate?.(request);
    const w = { nodeId, request: { ...request, resourceNames: [...request.resourceNames] }, respond, open: true };
    this.watches.push(w);
    return () => {
      w.open = false;
    };
  }

  openWatch(typeUrl: string): { request: WatchRequest; respond: (r: WatchResponse) => void; open: boolean } | undefined {
    return this.watches.filter((w) => w.open && w.request.typeUrl === typeUrl).at(-1);
  }

  /** Answers the open watch of `typeUrl` with `resources` at `version`. */
  answer(typeUrl: string, version: string, resources: VersionedResource[]): void {
    const w = this.openWatch(typeUrl);
    assert.ok(w, `no open watch for ${typeUrl}`);
    w.open = false;
    w.respond({ typeUrl, versionInfo: version, resources: resources.map((r) => r.resource), names: resources.map((r) => r.name) });
  }

  async waitForWatch(typeUrl: string): Promise<{ request: WatchRequest }> {
    for (let i = 0; i < 500; i++) {
      const w = this.openWatch(typeUrl);
      if (w) return w;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no watch for ${typeUrl} was opened`);
  }
}

void describe('ADS server (state of the world)', () => {
  void it('answers the first request with a version and a nonce, and sends nothing more after the ACK', async (t) => {
    const acks: Array<[string, string, string]> = [];
    const h = await startAds(t, { cache: realCache(mesh(['a', 'b'])), onAck: (node, typeUrl, version) => acks.push([node.id, typeUrl, version]) });
    const ads = h.client();
    ads.subscribe(CDS);
    const cds = await ads.next(CDS);
    assert.notEqual(cds.nonce, '');
    assert.match(cds.versionInfo, /^[0-9a-f]{16}$/);
    assert.deepEqual(ads.names(cds), ['a', 'b']);
    assert.equal(ads.decode(cds)[0]?.['type'], 'EDS');
    ads.ack(cds);
    assert.deepEqual(await ads.settle(), []);
    assert.deepEqual(acks[0], [NODE.id, CDS, cds.versionInfo]);
    assert.equal(await metricValue(h.metrics.xdsAcks, { type: 'cds' }), 1);
    assert.equal(await metricValue(h.metrics.xdsPushes, { type: 'cds' }), 1);
    assert.equal(await metricValue(h.metrics.xdsConnections, { kind: 'sotw' }), 1);
    assert.equal(h.ads.streams()[0]?.types.find((x) => x.typeUrl === CDS)?.ackedVersion, cds.versionInfo);
  });

  void it('pushes a changed snapshot as a new response with a new version and a new nonce', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(LDS);
    const first = await ads.next(LDS);
    ads.ack(first);
    assert.deepEqual(await ads.settle(), []);
    cache.setSnapshot(NODE.id, mesh(['a'], { listeners: ['l1', 'l2'] }));
    const second = await ads.next(LDS);
    assert.notEqual(second.versionInfo, first.versionInfo);
    assert.notEqual(second.nonce, first.nonce);
    assert.deepEqual(ads.names(second), ['l1', 'l2']);
  });

  void it('NACK: warns with type, error and nonce, counts it, calls onNack, and does not resend that version', async (t) => {
    const cache = realCache(mesh(['a']));
    const { logger, lines } = captureLogger();
    const nacks: Array<{ typeUrl: string; rejectedVersion: string; message: string }> = [];
    const h = await startAds(t, { cache, logger, onNack: (_node, typeUrl, nack) => nacks.push({ typeUrl, ...nack }) });
    const ads = h.client();
    ads.subscribe(LDS);
    const good = await ads.next(LDS);
    ads.ack(good);
    cache.setSnapshot(NODE.id, mesh(['a'], { listeners: ['l1', 'bad'] }));
    const bad = await ads.next(LDS);
    ads.nack(bad, 'Error adding/updating listener(s) bad: invalid address');
    assert.deepEqual(await ads.settle(), [], 'the rejected version is not sent again');
    // A duplicate request after the NACK does not bring it back either.
    ads.send({ typeUrl: LDS, versionInfo: good.versionInfo, responseNonce: bad.nonce, resourceNames: [] });
    assert.deepEqual(await ads.settle(), []);

    assert.equal(await metricValue(h.metrics.xdsRejects, { type: 'lds' }), 1);
    assert.deepEqual(nacks, [{ typeUrl: LDS, nonce: bad.nonce, rejectedVersion: bad.versionInfo, versionInfo: good.versionInfo, code: grpc.status.INTERNAL, message: 'Error adding/updating listener(s) bad: invalid address' }]);
    const warning = lines.find((l) => l['level'] === 40 && String(l['msg']).includes('NACK'));
    assert.ok(warning, 'a warning was logged');
    assert.equal(warning['type'], LDS);
    assert.equal(warning['nonce'], bad.nonce);
    assert.equal(warning['error'], 'Error adding/updating listener(s) bad: invalid address');
    assert.equal(warning['node'], NODE.id);

    cache.setSnapshot(NODE.id, mesh(['a'], { listeners: ['l1', 'fixed'] }));
    const fixed = await ads.next(LDS);
    assert.deepEqual(ads.names(fixed), ['fixed', 'l1'], 'a new version is pushed after the NACK');
  });

  void it('ignores a request with a stale nonce and takes the new names from the next ACK', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(EDS, ['a']);
    const first = await ads.next(EDS);
    ads.ack(first);
    cache.setSnapshot(NODE.id, mesh(['a', 'b'], { addresses: ['127.0.0.7'] }));
    const second = await ads.next(EDS);
    // A request still answering the first response: stale, so not answered.
    ads.send({ typeUrl: EDS, versionInfo: first.versionInfo, responseNonce: first.nonce, resourceNames: ['a', 'b'] });
    assert.deepEqual(await ads.settle(), []);
    ads.ack(second, ['a', 'b']);
    const third = await ads.next(EDS);
    assert.deepEqual(ads.names(third), ['a', 'b']);
  });

  void it('wildcard CDS: every response carries the full set of clusters', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(CDS);
    const first = await ads.next(CDS);
    assert.deepEqual(ads.names(first), ['a', 'b']);
    ads.ack(first);
    cache.setSnapshot(NODE.id, mesh(['a', 'b', 'c']));
    const second = await ads.next(CDS);
    assert.deepEqual(ads.names(second), ['a', 'b', 'c'], 'unchanged clusters are sent again: a missing one would be deleted');
    ads.ack(second);
    cache.setSnapshot(NODE.id, mesh(['b', 'c']));
    assert.deepEqual(ads.names(await ads.next(CDS)), ['b', 'c'], 'a removed cluster is absent');
  });

  void it('named EDS: only the requested names, and a change to other names pushes nothing', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(EDS, ['b']);
    const eds = await ads.next(EDS);
    assert.deepEqual(ads.names(eds), ['b']);
    ads.ack(eds);
    cache.setSnapshot(NODE.id, snapshot([testCluster('a'), testCluster('b'), testEndpoints('a', ['127.0.0.9']), testEndpoints('b'), testListener('l1'), testRoute('r', 'a')]));
    assert.deepEqual(await ads.settle(), []);
  });

  void it('answers a change of resource names even when no resource changed', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh(['a', 'b'])) });
    const ads = h.client();
    ads.subscribe(EDS, ['a']);
    const first = await ads.next(EDS);
    ads.ack(first);
    assert.deepEqual(await ads.settle(), []);
    ads.subscribe(EDS, ['a', 'b']);
    const second = await ads.next(EDS);
    assert.deepEqual(ads.names(second), ['a', 'b']);
    assert.notEqual(second.nonce, first.nonce);
    ads.ack(second);
    ads.subscribe(EDS, []);
    assert.deepEqual(await ads.settle(), [], 'unsubscribing from every name needs no answer');
  });

  void it('LDS with explicit names (as gRPC clients do) gets only those listeners', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh(['a'], { listeners: ['l1', 'l2'] })) });
    const ads = h.client();
    ads.subscribe(LDS, ['l2']);
    assert.deepEqual(ads.names(await ads.next(LDS)), ['l2']);
    ads.subscribe(LDS, ['*']);
    assert.deepEqual(ads.names(await ads.next(LDS)), ['l1', 'l2']);
  });

  void it('pushes make-before-break: CDS, then EDS for new clusters unasked, then LDS and RDS once CDS is answered', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    const before = await steadyState(ads, ['a']);
    const seen = ads.received.length;

    // New cluster b with endpoints, a new listener, and the route moved to b.
    cache.setSnapshot(NODE.id, mesh(['a', 'b'], { listeners: ['l1', 'l2'], routeTo: 'b' }));
    const cds = await ads.next(CDS);
    assert.deepEqual(ads.names(cds), ['a', 'b']);
    const eds = await ads.next(EDS);
    assert.deepEqual(ads.names(eds), ['a', 'b'], "b's endpoints follow the clusters before the proxy asked for them");
    assert.deepEqual(await ads.settle(), [], 'LDS and RDS wait until the proxy answered CDS');

    // What Envoy does next: ask for b with the EDS nonce it has processed (now stale), ACK CDS, ACK EDS.
    ads.send({ typeUrl: EDS, versionInfo: before.get(EDS)?.versionInfo ?? '', responseNonce: before.get(EDS)?.nonce ?? '', resourceNames: ['a', 'b'] });
    ads.ack(cds);
    const lds = await ads.next(LDS);
    const rds = await ads.next(RDS);
    assert.deepEqual(ads.names(lds), ['l1', 'l2']);
    assert.deepEqual(ads.decode(rds)[0]?.['virtualHosts'], [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }] }]);
    ads.ack(eds, ['a', 'b']);
    ads.ack(lds);
    ads.ack(rds);
    assert.deepEqual(await ads.settle(), [], 'everything the proxy has is current');
    assert.deepEqual(types(ads.received.slice(seen)).filter((x) => x !== 'type.googleapis.com/skiff.test.Probe'), [CDS, EDS, LDS, RDS]);
  });

  void it('follows an updated cluster with its endpoints even when they did not change (cluster warming)', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    const before = await steadyState(ads, ['a']);
    cache.setSnapshot(NODE.id, mesh(['a'], { clusterTag: 'longer-timeout' }));
    const cds = await ads.next(CDS);
    const eds = await ads.next(EDS);
    assert.notEqual(cds.versionInfo, before.get(CDS)?.versionInfo);
    assert.equal(eds.versionInfo, before.get(EDS)?.versionInfo, 'same endpoints');
    assert.notEqual(eds.nonce, before.get(EDS)?.nonce, 'sent again so the updated cluster finishes warming');
    ads.ack(cds);
    ads.ack(eds);
    assert.deepEqual(await ads.settle(), []);
  });

  void it('holds RDS while a CDS response is unanswered, and sends the latest routes afterwards', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    await steadyState(ads, ['a']);
    cache.setSnapshot(NODE.id, mesh(['a', 'b']));
    const cds = await ads.next(CDS);
    const eds = await ads.next(EDS);
    // The route moves to b while the proxy has not answered the clusters yet, then moves again.
    cache.setSnapshot(NODE.id, mesh(['a', 'b'], { routeTo: 'b' }));
    assert.deepEqual(await ads.settle(), []);
    cache.setSnapshot(NODE.id, snapshot([testCluster('a'), testCluster('b'), testEndpoints('a'), testEndpoints('b'), testListener('l1'), testRoute('r', 'a'), testRoute('unused', 'b')]));
    cache.setSnapshot(NODE.id, mesh(['a', 'b'], { routeTo: 'b', listeners: ['l1'] }));
    ads.ack(cds);
    ads.ack(eds, ['a', 'b']);
    const rds = await ads.next(RDS);
    assert.deepEqual(ads.decode(rds)[0]?.['virtualHosts'], [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }] }]);
    ads.ack(rds);
    assert.deepEqual(await ads.settle(), [], 'one RDS push with the latest routes, no outdated one');
  });

  void it('sends in CDS, EDS, LDS, RDS order whatever order the cache answers in (fake cache)', async (t) => {
    const cache = new FakeCache();
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(RDS, ['r']);
    ads.subscribe(LDS);
    ads.subscribe(EDS, ['a']);
    ads.subscribe(CDS);
    for (const typeUrl of [RDS, LDS, EDS, CDS]) await cache.waitForWatch(typeUrl);
    cache.answer(RDS, 'r1', [testRoute('r', 'a')]);
    cache.answer(LDS, 'l1', [testListener('l1')]);
    cache.answer(EDS, 'e1', [testEndpoints('a')]);
    cache.answer(CDS, 'c1', [testCluster('a')]);
    const cds = await ads.next();
    assert.equal(cds.typeUrl, CDS);
    // Behind CDS the server asks the cache for EDS afresh, even if unchanged (warming).
    const edsWatch = await cache.waitForWatch(EDS);
    assert.equal(edsWatch.request.versionInfo, '');
    assert.deepEqual(edsWatch.request.resourceNames, ['a']);
    cache.answer(EDS, 'e1', [testEndpoints('a')]);
    assert.equal((await ads.next()).typeUrl, EDS);
    assert.deepEqual(types(ads.received), [CDS, EDS], 'LDS and RDS wait for the CDS answer');
    ads.ack(cds);
    // Held answers are asked for again once released (the snapshot may have moved on).
    await cache.waitForWatch(RDS);
    await cache.waitForWatch(LDS);
    cache.answer(RDS, 'r1', [testRoute('r', 'a')]);
    cache.answer(LDS, 'l1', [testListener('l1')]);
    assert.equal((await ads.next()).typeUrl, LDS);
    assert.equal((await ads.next()).typeUrl, RDS);
  });

  void it('refuses an inconsistent snapshot: nothing is pushed and the previous config is still served', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    const before = await steadyState(ads, ['a']);
    const broken = snapshot([testCluster('a'), testCluster('b'), testEndpoints('a'), testListener('l1'), testRoute('r', 'b')]);
    assert.throws(() => cache.setSnapshot(NODE.id, broken), /ClusterLoadAssignment "b" is referenced but missing/);
    assert.deepEqual(await ads.settle(), []);
    const again = h.client({ id: NODE.id });
    again.subscribe(CDS);
    assert.equal((await again.next(CDS)).versionInfo, before.get(CDS)?.versionInfo, 'a new stream gets the previous clusters');
  });

  void it('pushes nothing for a snapshot equal to the current one', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    await steadyState(ads, ['a']);
    const pushes = await metricValue(h.metrics.xdsPushes);
    assert.equal(cache.setSnapshot(NODE.id, mesh(['a'])), false);
    assert.deepEqual(await ads.settle(), []);
    assert.equal(await metricValue(h.metrics.xdsPushes), pushes + 1, 'only the settle probe was answered');
  });

  void it('a proxy reconnecting with the version it holds gets no push (content-hash versions)', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const first = h.client();
    first.subscribe(CDS);
    const cds = await first.next(CDS);
    first.close();
    const second = h.client();
    second.send({ typeUrl: CDS, versionInfo: cds.versionInfo, responseNonce: '', resourceNames: [] });
    assert.deepEqual(await second.settle(), []);
  });

  void it('authorize: a refusal ends the stream with its code and message, before any watch or open hook', async (t) => {
    const cache = new FakeCache();
    const opened: string[] = [];
    const seen: XdsNode[] = [];
    const h = await startAds(t, {
      cache,
      authorize: async (node) => {
        seen.push(node);
        return { ok: false, code: grpc.status.PERMISSION_DENIED, message: 'node claims namespace default but its certificate is for ns/other' };
      },
      onStreamOpen: (node) => void opened.push(node.id),
    });
    const ads = h.client();
    ads.subscribe(CDS);
    const status = await ads.ended();
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.equal(status.details, 'node claims namespace default but its certificate is for ns/other');
    assert.deepEqual(seen[0]?.metadata, NODE.metadata, 'authorize sees the decoded node');
    assert.deepEqual(opened, []);
    assert.equal(cache.watches.length, 0);
    assert.equal(await metricValue(h.metrics.xdsConnections), 0);
  });

  void it('refuses a stream whose first request has no node (INVALID_ARGUMENT)', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh()) });
    const ads = h.client();
    ads.send({ typeUrl: CDS, node: undefined });
    const status = await ads.ended();
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /first DiscoveryRequest .* must carry node/);
  });

  void it('refuses bytes that are not a DiscoveryRequest (INVALID_ARGUMENT)', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh()) });
    const client = new grpc.Client(h.address, grpc.credentials.createInsecure());
    t.after(() => client.close());
    const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => b);
    call.on('error', () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    assert.equal((await status).code, grpc.status.INVALID_ARGUMENT);
  });

  void it('awaits onStreamOpen before opening the first watch, so the snapshot can be computed there', async (t) => {
    const cache = realCache();
    const order: string[] = [];
    const h = await startAds(t, {
      cache: {
        createWatch: (nodeId, request, respond) => {
          order.push(`watch ${request.typeUrl.split('.').pop() ?? ''}`);
          return cache.createWatch(nodeId, request, respond);
        },
      },
      onStreamOpen: async (node) => {
        await new Promise((r) => setTimeout(r, 20));
        cache.setSnapshot(node.id, mesh(['a']));
        order.push('snapshot');
      },
    });
    const ads = h.client();
    ads.subscribe(CDS);
    ads.subscribe(LDS);
    assert.deepEqual(ads.names(await ads.next(CDS)), ['a']);
    assert.deepEqual(order.slice(0, 3), ['snapshot', 'watch Cluster', 'watch Listener']);
  });

  void it('after a NACK the watch waits for a version other than the rejected one (fake cache)', async (t) => {
    const cache = new FakeCache();
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(LDS);
    await cache.waitForWatch(LDS);
    cache.answer(LDS, 'v1', [testListener('l1')]);
    const v1 = await ads.next(LDS);
    ads.nack(v1, 'bad listener');
    const w = await cache.waitForWatch(LDS);
    assert.equal(w.request.versionInfo, 'v1', 'the cache answers only when its version is not the rejected one');
  });

  void it('closeStreams ends matching streams with UNAVAILABLE and releases their watches; onStreamClose runs', async (t) => {
    const cache = realCache(mesh(['a']));
    cache.setSnapshot('other', mesh(['a']));
    const closed: string[] = [];
    const h = await startAds(t, { cache, onStreamClose: (node) => void closed.push(node.id) });
    const revoked = h.client();
    const kept = h.client({ id: 'other' });
    for (const c of [revoked, kept]) {
      c.subscribe(CDS);
      c.ack(await c.next(CDS));
      assert.deepEqual(await c.settle(), []);
    }
    assert.equal(await metricValue(h.metrics.xdsConnections), 2);
    assert.equal(h.ads.closeStreams((s) => s.node?.metadata['SERVICE_ACCOUNT'] === 'a', 'identity revoked'), 1);
    const status = await revoked.ended();
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.equal(status.details, 'identity revoked');
    assert.equal(cache.watchCount(NODE.id), 0);
    assert.equal(cache.watchCount('other'), 1, 'the other stream keeps its CDS watch');
    assert.deepEqual(h.ads.streams().map((s) => s.node?.id), ['other']);
    assert.equal(await metricValue(h.metrics.xdsConnections), 1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(closed, [NODE.id]);
  });

  void it('a client that cancels releases its watches and the connection gauge', async (t) => {
    const cache = realCache(mesh(['a']));
    const closed: string[] = [];
    const h = await startAds(t, { cache, onStreamClose: (node) => void closed.push(node.id) });
    const ads = h.client();
    ads.subscribe(CDS);
    ads.ack(await ads.next(CDS));
    assert.deepEqual(await ads.settle(), []);
    ads.close();
    for (let i = 0; i < 200 && h.ads.streams().length > 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(h.ads.streams(), []);
    assert.equal(cache.watchCount(), 0);
    assert.equal(await metricValue(h.metrics.xdsConnections), 0);
    assert.deepEqual(closed, [NODE.id]);
  });
});
