/**
 * The delta ADS server (`DeltaAggregatedResources`) over a real @grpc/grpc-js server and client
 * on 127.0.0.1 and the real snapshot cache, speaking raw DeltaDiscoveryRequests
 * (test/helpers/delta-client.ts). Each case is one rule of the "Incremental xDS" section of
 * Envoy's xDS protocol document, as a client sees it on the wire.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import { testCluster, testEndpoints, testListener, testRoute } from '../../../test/helpers/ads-client.js';
import { DeltaAdsTestClient } from '../../../test/helpers/delta-client.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../../observability/metrics.js';
import { createSnapshotCache, resourcesByType, versionedResource, type NodeSnapshot, type SnapshotCache } from '../cache/index.js';
import { encodeAny, TypeUrl } from '../protos/loader.js';
import type { VersionedResource, XdsNode } from '../types.js';
import { createAdsServer, type AdsServer, type AdsServerOptions } from './ads-server.js';
import type { DeltaDiscoveryResponseMessage } from './delta-messages.js';

const NODE: XdsNode = {
  id: 'sidecar~198.18.0.2~a-1.default~default.svc.cluster.local',
  cluster: 'a.default',
  metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'a' },
};
const { Cluster: CDS, ClusterLoadAssignment: EDS, Listener: LDS, RouteConfiguration: RDS } = TypeUrl;

interface Harness {
  ads: AdsServer;
  metrics: ControlPlaneMetrics;
  client(node?: Partial<XdsNode> & { id: string }): DeltaAdsTestClient;
}

async function startAds(t: TestContext, opts: Partial<AdsServerOptions> & { cache: AdsServerOptions['cache'] }): Promise<Harness> {
  const metrics = createControlPlaneMetrics();
  const ads = createAdsServer({ logger: silentLogger(), metrics, ...opts });
  const server = new grpc.Server();
  server.addService(ads.service.definition, ads.service.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const clients: DeltaAdsTestClient[] = [];
  t.after(() => {
    for (const c of clients) c.close();
    server.forceShutdown();
  });
  return {
    ads,
    metrics,
    client(node = NODE) {
      const c = DeltaAdsTestClient.connect({ address: `127.0.0.1:${port}`, node });
      clients.push(c);
      return c;
    },
  };
}

function snapshot(resources: VersionedResource[]): NodeSnapshot {
  const byType = resourcesByType(resources);
  return { resources: byType, references: new Map([[EDS, new Set(byType.get(CDS)?.keys() ?? [])], [RDS, new Set(byType.get(RDS)?.keys() ?? [])]]) };
}

function mesh(clusters: string[] = ['a'], opts: { listeners?: string[]; clusterTag?: string; addresses?: string[] } = {}): NodeSnapshot {
  return snapshot([
    ...clusters.map((c) => testCluster(c, opts.clusterTag)),
    ...clusters.map((c) => testEndpoints(c, opts.addresses)),
    ...(opts.listeners ?? ['l1']).map((l, i) => testListener(l, 15001 + i)),
    testRoute('r', clusters[0] ?? 'a'),
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

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

function summary(responses: DeltaDiscoveryResponseMessage[]): string[] {
  return responses.map((r) => `${r.typeUrl.split('.').pop() ?? ''} +[${r.resources.map((x) => x.name).join(',')}] -[${r.removedResources.join(',')}]`);
}

void describe('ADS server (delta)', () => {
  void it('a legacy wildcard CDS request gets every cluster with per-resource versions and a nonce, then nothing more after the ACK', async (t) => {
    const acks: string[] = [];
    const h = await startAds(t, { cache: realCache(mesh(['a', 'b'])), onAck: (_n, typeUrl) => acks.push(typeUrl) });
    const ads = h.client();
    ads.subscribe(CDS);
    const cds = await ads.next(CDS);
    assert.notEqual(cds.nonce, '');
    assert.deepEqual(ads.names(cds), ['a', 'b']);
    assert.deepEqual(cds.removedResources, []);
    assert.equal(cds.resources[0]?.version, testCluster('a').version, 'the version is the content hash of the resource');
    assert.match(cds.systemVersionInfo, /^[0-9a-f]{16}$/);
    assert.equal(ads.decode(cds)[0]?.value['type'], 'EDS');
    ads.ack(cds);
    assert.deepEqual(await ads.settle(), []);
    assert.deepEqual(acks, [CDS]);
    assert.equal(await metricValue(h.metrics.xdsConnections, { kind: 'delta' }), 1);
    const info = h.ads.streams()[0];
    assert.equal(info?.kind, 'delta');
    const cdsInfo = info?.types.find((x) => x.typeUrl === CDS);
    assert.equal(cdsInfo?.wildcard, true);
    assert.ok(cdsInfo?.lastSentVersion);
    assert.equal(cdsInfo?.ackedVersion, cdsInfo?.lastSentVersion, 'synced: the last response sent was ACKed');
  });

  void it('sends only what changed: a changed resource alone, and a deleted one in removed_resources', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(CDS, ['*']);
    ads.ack(await ads.next(CDS));
    assert.deepEqual(await ads.settle(), []);
    cache.setSnapshot(NODE.id, mesh(['a', 'b'], { clusterTag: 'v2' }));
    const changed = await ads.next(CDS);
    assert.deepEqual(ads.names(changed), ['a', 'b']);
    ads.ack(changed);
    cache.setSnapshot(NODE.id, snapshot([testCluster('a', 'v2'), testEndpoints('a'), testListener('l1'), testRoute('r', 'a')]));
    const removal = await ads.next(CDS);
    assert.deepEqual(ads.names(removal), [], 'a did not change');
    assert.deepEqual(removal.removedResources, ['b']);
    ads.ack(removal);
    cache.setSnapshot(NODE.id, snapshot([testCluster('a', 'v2'), testCluster('c'), testEndpoints('a'), testEndpoints('c'), testListener('l1'), testRoute('r', 'a')]));
    const added = await ads.next(CDS);
    assert.deepEqual(ads.names(added), ['c']);
    assert.deepEqual(added.removedResources, []);
  });

  void it('named subscriptions: a name that does not exist is reported in removed_resources, and sent when it appears', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(EDS, ['a', 'missing']);
    const eds = await ads.next(EDS);
    assert.deepEqual(ads.names(eds), ['a']);
    assert.deepEqual(eds.removedResources, ['missing']);
    ads.ack(eds);
    assert.deepEqual(await ads.settle(), [], 'the absence is reported once');
    cache.setSnapshot(NODE.id, mesh(['a', 'missing']));
    const later = await ads.next(EDS);
    assert.deepEqual(ads.names(later), ['missing'], "only the newly existing name; a's endpoints did not change");
  });

  void it('a name subscribed again is resent although the client holds its version', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh(['a'])) });
    const ads = h.client();
    ads.subscribe(EDS, ['a']);
    ads.ack(await ads.next(EDS));
    assert.deepEqual(await ads.settle(), []);
    ads.subscribe(EDS, ['a']);
    const again = await ads.next(EDS);
    assert.deepEqual(ads.names(again), ['a']);
  });

  void it('unsubscribing a name sends nothing and stops its updates', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(EDS, ['a', 'b']);
    ads.ack(await ads.next(EDS));
    ads.unsubscribe(EDS, ['b', 'never-subscribed']);
    assert.deepEqual(await ads.settle(), [], 'no response to a pure unsubscription (phantom names ignored)');
    cache.setSnapshot(NODE.id, mesh(['a', 'b'], { addresses: ['127.0.0.7'] }));
    const update = await ads.next(EDS);
    assert.deepEqual(ads.names(update), ['a'], 'b is no longer subscribed');
    assert.deepEqual(h.ads.streams()[0]?.types.find((x) => x.typeUrl === EDS)?.resourceNames, ['a']);
  });

  void it('wildcard: "*" subscribes to everything, unsubscribing "*" ends it; unsubscribing a name under the wildcard is answered', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(CDS, ['*', 'a']);
    const all = await ads.next(CDS);
    assert.deepEqual(ads.names(all), ['a', 'b']);
    ads.ack(all);
    ads.unsubscribe(CDS, ['a']);
    const answer = await ads.next(CDS);
    assert.deepEqual(ads.names(answer), ['a'], 'the wildcard still covers a, so the server says so');
    ads.ack(answer);
    ads.unsubscribe(CDS, ['*']);
    assert.deepEqual(await ads.settle(), []);
    cache.setSnapshot(NODE.id, mesh(['a', 'b'], { clusterTag: 'v2' }));
    assert.deepEqual(await ads.settle(), [], 'no wildcard and no names: nothing is pushed');
    assert.equal(h.ads.streams()[0]?.types.find((x) => x.typeUrl === CDS)?.wildcard, false);
  });

  void it('subscribing and unsubscribing "*" in one first request (ztunnel on-demand) subscribes to nothing but is answered', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh(['a'])) });
    const ads = h.client();
    ads.subscribe(CDS, ['*'], { unsubscribe: ['*'] });
    const empty = await ads.next(CDS);
    assert.deepEqual(ads.names(empty), []);
    assert.deepEqual(empty.removedResources, []);
    ads.ack(empty);
    ads.subscribe(CDS, ['b-not-there', 'a']);
    const named = await ads.next(CDS);
    assert.deepEqual(ads.names(named), ['a']);
    assert.deepEqual(named.removedResources, ['b-not-there']);
  });

  void it("a type's first request is answered even when there is nothing of that type", async (t) => {
    const h = await startAds(t, { cache: realCache(mesh(['a'])) });
    const ads = h.client();
    ads.subscribe(TypeUrl.Address);
    const empty = await ads.next(TypeUrl.Address);
    assert.deepEqual(empty.resources, []);
    assert.deepEqual(empty.removedResources, []);
    assert.notEqual(empty.nonce, '');
  });

  void it('reconnect with initial_resource_versions: only what differs is sent, and held names that are gone are removed', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const first = h.client();
    first.subscribe(CDS);
    first.ack(await first.next(CDS));
    const held = first.holds(CDS);
    assert.deepEqual(Object.keys(held), ['a', 'b']);
    first.close();
    // While away: b changes, a stays, c appears; the client also remembers a cluster z long gone.
    cache.setSnapshot(NODE.id, snapshot([testCluster('a'), testCluster('b', 'v2'), testCluster('c'), testEndpoints('a'), testEndpoints('b'), testEndpoints('c'), testListener('l1'), testRoute('r', 'a')]));
    const second = h.client();
    second.subscribe(CDS, [], { initialResourceVersions: { ...held, z: 'deadbeefdeadbeef' } });
    const resync = await second.next(CDS);
    assert.deepEqual(second.names(resync), ['b', 'c']);
    assert.deepEqual(resync.removedResources, ['z']);
    second.ack(resync);
    assert.deepEqual(await second.settle(), []);
    // Holding everything already: the first response is empty but still sent.
    const third = h.client();
    third.subscribe(CDS, [], { initialResourceVersions: second.holds(CDS) });
    assert.deepEqual(Object.keys(second.holds(CDS)).sort(), ['b', 'c'], 'the second client only saw what it was sent');
    const nothing = await third.next(CDS);
    assert.deepEqual(third.names(nothing), ['a'], 'a was not declared by the third client');
  });

  void it('reconnect with named subscriptions: names declared in initial_resource_versions are not resent unless changed', async (t) => {
    const cache = realCache(mesh(['a', 'b']));
    const h = await startAds(t, { cache });
    const first = h.client();
    first.subscribe(EDS, ['a', 'b']);
    first.ack(await first.next(EDS));
    first.close();
    cache.setSnapshot(NODE.id, snapshot([testCluster('a'), testCluster('b'), testEndpoints('a'), testEndpoints('b', ['127.0.0.5']), testListener('l1'), testRoute('r', 'a')]));
    const second = h.client();
    second.subscribe(EDS, ['a', 'b', 'c'], { initialResourceVersions: first.holds(EDS) });
    const resync = await second.next(EDS);
    assert.deepEqual(second.names(resync), ['b'], 'a is unchanged; b changed');
    assert.deepEqual(resync.removedResources, ['c'], 'c was not declared and does not exist');
  });

  void it('subscription changes are honoured even with a stale or unknown nonce', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh(['a', 'b'])) });
    const ads = h.client();
    ads.subscribe(EDS, ['a']);
    const first = await ads.next(EDS);
    ads.ack(first);
    ads.subscribe(EDS, ['b'], { responseNonce: 'not-a-nonce-of-this-stream' });
    const b = await ads.next(EDS);
    assert.deepEqual(ads.names(b), ['b']);
    ads.subscribe(EDS, ['missing'], { responseNonce: first.nonce });
    const missing = await ads.next(EDS);
    assert.deepEqual(missing.removedResources, ['missing']);
  });

  void it('NACK: logged with type, nonce and error, counted, onNack called, never resent; the next version is sent', async (t) => {
    const cache = realCache(mesh(['a']));
    const { logger, lines } = captureLogger();
    const nacks: Array<{ typeUrl: string; message: string; nonce: string }> = [];
    const h = await startAds(t, { cache, logger, onNack: (_n, typeUrl, nack) => nacks.push({ typeUrl, message: nack.message, nonce: nack.nonce }) });
    const ads = h.client();
    ads.subscribe(CDS);
    const cds = await ads.next(CDS);
    ads.nack(cds, 'cluster a: bad connect_timeout');
    assert.deepEqual(await ads.settle(), [], 'a NACK does not cause a resend');
    assert.deepEqual(nacks, [{ typeUrl: CDS, message: 'cluster a: bad connect_timeout', nonce: cds.nonce }]);
    assert.equal(await metricValue(h.metrics.xdsRejects, { type: 'cds' }), 1);
    const warn = lines.find((l) => l['msg'] === 'xDS NACK: the proxy rejected the configuration');
    assert.equal(warn?.['error'], 'cluster a: bad connect_timeout');
    assert.equal(warn?.['nonce'], cds.nonce);
    const info = h.ads.streams()[0]?.types.find((x) => x.typeUrl === CDS);
    assert.notEqual(info?.ackedVersion, info?.lastSentVersion, 'a rejected type is not synced');
    assert.equal(info?.lastNack?.message, 'cluster a: bad connect_timeout');
    cache.setSnapshot(NODE.id, mesh(['a'], { clusterTag: 'fixed' }));
    const fixed = await ads.next(CDS);
    assert.deepEqual(ads.names(fixed), ['a']);
    ads.ack(fixed);
    await ads.settle();
    const after = h.ads.streams()[0]?.types.find((x) => x.typeUrl === CDS);
    assert.equal(after?.ackedVersion, after?.lastSentVersion);
  });

  void it('make-before-break: an updated cluster is followed by its endpoints, and LDS waits for the CDS ACK', async (t) => {
    const cache = realCache(mesh(['a']));
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(CDS);
    ads.ack(await ads.next(CDS));
    ads.subscribe(EDS, ['a']);
    ads.ack(await ads.next(EDS));
    ads.subscribe(LDS);
    ads.ack(await ads.next(LDS));
    assert.deepEqual(await ads.settle(), []);
    cache.setSnapshot(NODE.id, mesh(['a'], { clusterTag: 'v2', listeners: ['l1', 'l2'] }));
    const cds = await ads.next(CDS);
    const pushed = await ads.settle();
    assert.deepEqual(summary(pushed), ['ClusterLoadAssignment +[a] -[]'], 'unchanged endpoints follow the cluster; the listener waits');
    ads.ack(cds);
    const lds = await ads.next(LDS);
    assert.deepEqual(ads.names(lds), ['l2']);
  });

  void it('aliases: a subscription may name an alias; the resource comes with its name and aliases', async (t) => {
    const address = versionedResource('uid-1', encodeAny(TypeUrl.Cluster, { name: 'uid-1' }));
    address.aliases = ['net/198.18.0.9'];
    const cache = realCache({ resources: resourcesByType([address]) });
    const h = await startAds(t, { cache });
    const ads = h.client();
    ads.subscribe(CDS, ['net/198.18.0.9', 'net/198.18.0.10']);
    const r = await ads.next(CDS);
    assert.deepEqual(ads.names(r), ['uid-1']);
    assert.deepEqual(r.resources[0]?.aliases, ['net/198.18.0.9']);
    assert.deepEqual(r.removedResources, ['net/198.18.0.10']);
  });

  void it('refuses a stream without node or a request without type_url with INVALID_ARGUMENT', async (t) => {
    const h = await startAds(t, { cache: realCache(mesh()) });
    const noNode = h.client();
    noNode.send({ typeUrl: CDS, node: undefined });
    assert.equal((await noNode.ended()).code, grpc.status.INVALID_ARGUMENT);
    const noType = h.client();
    noType.send({});
    const status = await noType.ended();
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /type_url is required/);
  });

  void it('the authorize hook applies to delta streams, and onStreamOpen runs before the first answer', async (t) => {
    const cache = realCache();
    const opened: string[] = [];
    const h = await startAds(t, {
      cache,
      authorize: (node) => Promise.resolve(node.id.startsWith('evil') ? { ok: false as const, code: grpc.status.PERMISSION_DENIED, message: 'no' } : { ok: true as const }),
      onStreamOpen: (node, info) => {
        opened.push(`${node.id} ${info.kind}`);
        cache.setSnapshot(node.id, mesh(['a']));
      },
    });
    const evil = h.client({ id: 'evil~1' });
    evil.subscribe(CDS);
    assert.equal((await evil.ended()).code, grpc.status.PERMISSION_DENIED);
    const ads = h.client();
    ads.subscribe(CDS);
    assert.deepEqual(ads.names(await ads.next(CDS)), ['a']);
    assert.deepEqual(opened, [`${NODE.id} delta`]);
  });

  void it('a cache without delta support ends delta streams with UNIMPLEMENTED', async (t) => {
    const cache = realCache(mesh());
    const h = await startAds(t, { cache: { createWatch: cache.createWatch.bind(cache) } });
    const ads = h.client();
    ads.subscribe(CDS);
    assert.equal((await ads.ended()).code, grpc.status.UNIMPLEMENTED);
  });
});
