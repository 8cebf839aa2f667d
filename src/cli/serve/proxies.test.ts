import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SHAPE, writeMesh, workloadInfo, type MeshShape } from '../../../bench/fanout/mesh.js';
import { silentLogger } from '../../observability/logger.js';
import { buildProxyIR } from '../../push/index.js';
import { parseProxyNode } from '../../push/node.js';
import { createRegistry } from '../../registry/index.js';
import type { MeshSnapshot } from '../../registry/types.js';
import { loadDirectory } from '../../sources/file/load.js';
import { translateEnvoy } from '../../translate/envoy/index.js';
import type { ResourcesByType } from '../../xds/types.js';
import { createControlPlaneMetrics } from '../../observability/metrics.js';
import { createSnapshotCache } from '../../xds/cache/index.js';
import { ProxyPusher, SharedTranslator, affects, dependenciesOf, registryChange } from './proxies.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A registry holding the mesh in `dir` (the file source's resources, published). */
async function registryOf(dir: string): Promise<{ registry: ReturnType<typeof createRegistry>; loaded: Awaited<ReturnType<typeof loadDirectory>> }> {
  const loaded = await loadDirectory(dir);
  assert.deepEqual(loaded.errors, []);
  const registry = createRegistry({ logger: silentLogger() });
  registry.setSource('file', loaded.resources);
  registry.flush();
  return { registry, loaded };
}

async function snapshotOf(dir: string): Promise<MeshSnapshot> {
  const { registry } = await registryOf(dir);
  const snapshot = registry.current();
  registry.close();
  return snapshot;
}

/** name → version per type URL. */
function versions(resources: ResourcesByType): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [typeUrl, byName] of resources) {
    if (byName.size === 0) continue;
    const pairs: [string, string][] = [...byName].map(([name, r]) => [name, r.version]);
    out[typeUrl] = Object.fromEntries(pairs.sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }
  return out;
}

function nodeOf(shape: MeshShape, i: number): { id: string; metadata: Record<string, unknown> } {
  const w = workloadInfo(shape, i);
  return {
    id: `sidecar~${w.address}~${w.name}.${w.namespace}~${w.namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: w.namespace, SERVICE_ACCOUNT: 'bench', WORKLOAD_NAME: w.name, LABELS: { app: `svc-${w.service}` } },
  };
}

describe('SharedTranslator (translation shared between proxies)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-shared-translation-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const scenario of ['default', 'sidecar'] as const) {
    it(`gives every proxy exactly what translateEnvoy gives it, sharing outbound resources (${scenario} egress)`, async () => {
      const shape: MeshShape = { ...DEFAULT_SHAPE, services: 40, namespaces: 4, scenario };
      const dir = path.join(tmp, scenario);
      writeMesh(dir, shape);
      const snapshot = await snapshotOf(dir);
      const translator = new SharedTranslator();
      const outs = [];
      for (const i of [0, 5, 40, 45, 120, 395]) {
        const ir = buildProxyIR(snapshot, parseProxyNode(nodeOf(shape, i), 'cluster.local'), {});
        const whole = translateEnvoy(ir);
        const shared = translator.translate(ir);
        assert.deepEqual(versions(shared.resources), versions(whole.resources), `proxy ${i}`);
        assert.deepEqual(
          [...shared.references].map(([t, names]) => [t, [...names].sort()]),
          [...whole.references].map(([t, names]) => [t, [...names].sort()]),
        );
        outs.push(shared);
      }
      const stats = translator.statistics();
      assert.equal(stats.whole, 0);
      assert.ok(stats.reused > 0, 'proxies with the same view reuse the outbound translation');
      // Two proxies of the same namespace (0 and 40 are both in ns-0) hold the same encoded CLA object.
      const cla = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
      const a = outs[0]?.resources.get(cla)?.get('outbound|8080||svc-0.ns-0.svc.cluster.local');
      const b = outs[2]?.resources.get(cla)?.get('outbound|8080||svc-0.ns-0.svc.cluster.local');
      assert.ok(a !== undefined && a === b);
    });
  }

  it('matches translateEnvoy on the quick-start mesh (mTLS, Sidecar ingress/egress)', async () => {
    const snapshot = await snapshotOf(path.join(REPO, 'examples', 'basic'));
    const translator = new SharedTranslator();
    for (const [ip, name, app] of [
      ['127.0.0.2', 'frontend-1', 'frontend'],
      ['127.0.0.3', 'backend-1', 'backend'],
    ] as const) {
      const identity = parseProxyNode({ id: `sidecar~${ip}~${name}.demo~demo.svc.cluster.local`, metadata: { SERVICE_ACCOUNT: app, WORKLOAD_NAME: name, LABELS: { app } } }, 'cluster.local');
      const ir = buildProxyIR(snapshot, identity, {});
      assert.deepEqual(versions(translator.translate(ir).resources), versions(translateEnvoy(ir).resources), name);
    }
  });

  it("re-translates a proxy's own part when it changes, and only the outbound part when only that changes", async () => {
    const shape: MeshShape = { ...DEFAULT_SHAPE, services: 20, namespaces: 2, scenario: 'sidecar' };
    const dir = path.join(tmp, 'own');
    writeMesh(dir, shape);
    const before = await snapshotOf(dir);
    const translator = new SharedTranslator();
    const identity = parseProxyNode(nodeOf(shape, 0), 'cluster.local');
    const first = translator.translate(buildProxyIR(before, identity, {}));
    const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
    const inbound = '10.1.0.0_9080';
    // A DENY policy for the proxy's workload changes its inbound listener only.
    fs.writeFileSync(
      path.join(dir, 'deny.yaml'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: ns-0}\nspec:\n  selector: {matchLabels: {app: svc-0}}\n  action: DENY\n  rules: [{}]\n',
    );
    const denied = await snapshotOf(dir);
    const ir = buildProxyIR(denied, identity, {});
    const second = translator.translate(ir);
    assert.deepEqual(versions(second.resources), versions(translateEnvoy(ir).resources));
    assert.notEqual(second.resources.get(LDS)?.get(inbound)?.version, first.resources.get(LDS)?.get(inbound)?.version, 'the new policy reaches the inbound listener');
    // Back to the first mesh: the own part is the first one again.
    fs.rmSync(path.join(dir, 'deny.yaml'));
    const third = translator.translate(buildProxyIR(before, identity, {}));
    assert.equal(third.resources.get(LDS)?.get(inbound)?.version, first.resources.get(LDS)?.get(inbound)?.version);
    assert.deepEqual(versions(third.resources), versions(first.resources));
  });

  it('drops an outbound translation when no proxy uses it any more', async () => {
    const shape: MeshShape = { ...DEFAULT_SHAPE, services: 20, namespaces: 2, scenario: 'sidecar' };
    const dir = path.join(tmp, 'evict');
    writeMesh(dir, shape);
    const snapshot = await snapshotOf(dir);
    const translator = new SharedTranslator();
    const ir0 = buildProxyIR(snapshot, parseProxyNode(nodeOf(shape, 0), 'cluster.local'), {});
    const ir10 = buildProxyIR(snapshot, parseProxyNode(nodeOf(shape, 10), 'cluster.local'), {});
    translator.translate(ir0);
    translator.translate(ir10);
    assert.equal(translator.statistics().entries, 2);
    translator.translate(ir0);
    assert.equal(translator.statistics().entries, 2, 'the same content for the same proxy is not counted twice');
    translator.release(ir10.proxy.nodeId);
    assert.equal(translator.statistics().entries, 1);
    translator.release(ir0.proxy.nodeId);
    assert.equal(translator.statistics().entries, 0);
  });
});

describe('which proxies a registry change affects', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-affected-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('an endpoint change recomputes the proxies that route to that service (and the workload itself), not the others; anything else recomputes all', async () => {
    const shape: MeshShape = { ...DEFAULT_SHAPE, services: 20, namespaces: 2, scenario: 'sidecar' };
    const dir = path.join(tmp, 'mesh');
    writeMesh(dir, shape);
    const { registry, loaded } = await registryOf(dir);
    const before = registry.current();
    const proxies = Array.from({ length: 40 }, (_, i) => parseProxyNode(nodeOf(shape, i), 'cluster.local'));
    const deps = proxies.map((p) => dependenciesOf(buildProxyIR(before, p, {})));
    const moved = loaded.resources.find((r) => r.kind === 'WorkloadEntry' && r.metadata.name === workloadInfo(shape, 25).name);
    assert.ok(moved && moved.kind === 'WorkloadEntry');
    registry.setSource('file', loaded.resources.map((r) => (r === moved ? { ...moved, spec: { ...moved.spec, address: '198.19.9.9' } } : r)));
    registry.flush();
    const after1 = registry.current();
    const change = registryChange(before, after1);
    assert.equal(change.all, false);
    const host = `svc-${workloadInfo(shape, 25).service}.${workloadInfo(shape, 25).namespace}.svc.cluster.local`;
    assert.ok(change.hosts.has(host), [...change.hosts].join(','));
    // Ground truth: a proxy's config changed iff its recomputed IR differs.
    let affected = 0;
    proxies.forEach((p, i) => {
      const changed = JSON.stringify(buildProxyIR(before, p, {})) !== JSON.stringify(buildProxyIR(after1, p, {}));
      const predicted = affects(change, p, deps[i]!);
      if (changed) assert.ok(predicted, `proxy ${i} changed but was not predicted`);
      if (predicted) affected += 1;
    });
    assert.ok(affected > 0 && affected < proxies.length, `affected ${affected} of ${proxies.length}`);
    // A ServiceEntry edit is not narrowed: every proxy is recomputed.
    const se = loaded.resources.find((r) => r.kind === 'ServiceEntry');
    assert.ok(se && se.kind === 'ServiceEntry');
    registry.setSource('file', loaded.resources.map((r) => (r === se ? { ...se, metadata: { ...se.metadata, labels: { touched: 'yes' } } } : r)));
    registry.flush();
    assert.equal(registryChange(after1, registry.current()).all, true);
    registry.close();
  });
});

describe('ProxyPusher push rounds', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-push-round-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a round in slices ends with every proxy on the newest snapshot, also when a snapshot arrives mid-round', async () => {
    const shape: MeshShape = { ...DEFAULT_SHAPE, services: 200, namespaces: 4, scenario: 'sidecar' };
    const dir = path.join(tmp, 'mesh');
    writeMesh(dir, shape);
    const { registry } = await registryOf(dir);
    const cache = createSnapshotCache({ logger: silentLogger() });
    const rounds: Array<{ recomputed: number; endpointsOnly: number }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void (line.includes('"proxies recomputed"') && rounds.push(JSON.parse(line) as { recomputed: number; endpointsOnly: number })) });
    // No round before the proxies connect (as when the registry published before the pusher
    // subscribed): the first change is diffed against what they were computed from.
    const pusher = new ProxyPusher({ cache, current: () => registry.current(), extras: () => ({}), logger, metrics: createControlPlaneMetrics() });
    const identities = Array.from({ length: 400 }, (_, i) => parseProxyNode(nodeOf(shape, i * 5), 'cluster.local'));
    for (const id of identities) pusher.connect(id);
    const settle = async (version: number): Promise<void> => {
      for (let i = 0; i < 1000 && (pusher.pushing() || pusher.list().some((p) => p.computedVersion !== version)); i++) await new Promise((r) => setImmediate(r));
    };
    const move = (name: string, address: string): void => {
      const current = registry.current().resources;
      registry.setSource('file', current.map((r) => (r.kind === 'WorkloadEntry' && r.metadata.name === name ? { ...r, spec: { ...r.spec, address } } : r)));
      registry.flush();
    };
    // svc-0's workload we-1 moves (every proxy sees svc-0), then, before the round ends,
    // svc-3's workload we-31 moves (only ns-3's proxies see it).
    move('we-1', '198.19.0.1');
    pusher.pushAll(registry.current());
    move('we-31', '198.19.0.2');
    pusher.pushAll(registry.current());
    const last = registry.current();
    await settle(last.version);
    const check = (snapshot: MeshSnapshot): void => {
      assert.ok(pusher.list().every((p) => p.computedVersion === snapshot.version), 'every proxy reaches the newest snapshot');
      for (const id of identities) {
        const expected = translateEnvoy(buildProxyIR(snapshot, id, {}));
        assert.deepEqual(versions(cache.getSnapshot(id.nodeId)?.resources ?? new Map()), versions(expected.resources), id.nodeId);
      }
    };
    check(last);
    assert.ok(rounds.length > 0 && rounds.every((r) => r.endpointsOnly > 0), `endpoint changes take the endpoints-only path: ${JSON.stringify(rounds)}`);
    // A proxy's own WorkloadEntry changes its port: its inbound side changes (not only endpoints).
    const current = registry.current().resources;
    registry.setSource('file', current.map((r) => (r.kind === 'WorkloadEntry' && r.metadata.name === 'we-5' ? { ...r, spec: { ...r.spec, ports: { http: 9181 } } } : r)));
    registry.flush();
    pusher.pushAll(registry.current());
    await settle(registry.current().version);
    check(registry.current());
    assert.ok(JSON.stringify(versions(cache.getSnapshot(identities[1]!.nodeId)?.resources ?? new Map())).includes('_9181'), 'we-5 has its inbound listener on the new port');
    pusher.stop();
    registry.close();
  });
});
