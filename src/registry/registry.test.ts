import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import type { MeshResource, PeerAuthentication, ServiceEntry, Sidecar, WorkloadEntry } from '../resources/types.js';
import { endpointPort, endpointsOfService } from './endpoints.js';
import { createRegistry, type Registry } from './registry.js';
import { selectWorkloads, servicesForWorkload } from './select.js';
import type { ChangeEvent, MeshSnapshot } from './types.js';

function we(name: string, address: string, labels: Record<string, string>, ns = 'demo'): WorkloadEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name, namespace: ns },
    spec: { address, labels, serviceAccount: name.split('-')[0] ?? 'default', ports: { http: 18080 } },
    origin: { source: 'file', file: 'mesh.yaml', line: 1 },
  };
}

function se(name: string, host: string, selector: Record<string, string>, ns = 'demo'): ServiceEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: ns },
    spec: {
      hosts: [host],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [
        { name: 'http', number: 80, protocol: 'HTTP' },
        { name: 'grpc', number: 90, protocol: 'GRPC', targetPort: 9090 },
      ],
      workloadSelector: { labels: selector },
    },
  };
}

const sidecar: Sidecar = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Sidecar',
  metadata: { name: 'api', namespace: 'demo' },
  spec: { ingress: [{ port: { number: 80 }, defaultEndpoint: '127.0.0.1:8080' }] },
};
const meshWide: PeerAuthentication = {
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name: 'default', namespace: 'skiff-system' },
  spec: { mtls: { mode: 'STRICT' } },
};

void describe('registry debounce', () => {
  let registry: Registry;
  let published: Array<{ snapshot: MeshSnapshot; event: ChangeEvent }>;

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    registry = createRegistry({ logger: silentLogger(), quietMs: 100, maxWaitMs: 1000 });
    published = [];
    registry.subscribe((snapshot, event) => published.push({ snapshot, event }));
  });
  afterEach(() => {
    registry.close();
    mock.timers.reset();
  });

  void it('publishes a burst of 100 updates as one snapshot, after the quiet period', () => {
    for (let i = 0; i < 100; i++) {
      registry.setSource('file', [we('api-1', `10.0.0.${i + 1}`, { app: 'api' })]);
      mock.timers.tick(5);
    }
    assert.equal(published.length, 0, 'nothing before the quiet period');
    mock.timers.tick(100);
    assert.equal(published.length, 1);
    const { snapshot, event } = published[0]!;
    assert.equal(snapshot.version, 1);
    assert.equal(registry.current(), snapshot);
    assert.equal(snapshot.workloadEntries[0]?.spec.address, '10.0.0.100');
    assert.deepEqual({ from: event.from, to: event.to, keys: [...event.changedKeys], kinds: [...event.changedKinds] }, {
      from: 0,
      to: 1,
      keys: ['WorkloadEntry/demo/api-1'],
      kinds: ['WorkloadEntry'],
    });
  });

  void it('publishes at most maxWaitMs after the first change even if changes never pause', () => {
    for (let i = 0; i < 30; i++) {
      registry.setSource('file', [we('api-1', `10.0.1.${i + 1}`, { app: 'api' })]);
      mock.timers.tick(50);
    }
    // 1.5 s of changes every 50 ms: the 1 s cap forced one publish in between.
    assert.equal(published.length, 1);
    mock.timers.tick(100);
    assert.equal(published.length, 2);
    assert.equal(registry.current().workloadEntries[0]?.spec.address, '10.0.1.30');
  });

  void it('when the source that owned a key drops it and another source has equal content, the key changes owner (origin.source)', () => {
    const fromFile = we('api-1', '10.0.0.1', { app: 'api' });
    const fromApi: WorkloadEntry = { ...we('api-1', '10.0.0.1', { app: 'api' }), origin: { source: 'api' } };
    registry.setSource('file', [fromFile]);
    registry.setSource('api', [fromApi]);
    registry.flush();
    assert.equal(registry.current().byKey.get('WorkloadEntry/demo/api-1')?.origin?.source, 'file');
    registry.setSource('file', []);
    registry.flush();
    assert.equal(published.length, 2);
    assert.deepEqual([...(published[1]?.event.changedKeys ?? [])], ['WorkloadEntry/demo/api-1']);
    assert.equal(registry.current().byKey.get('WorkloadEntry/demo/api-1')?.origin?.source, 'api', 'the API now owns it (it may change it)');
    registry.setSource('file', [fromFile]);
    registry.flush();
    assert.equal(registry.current().byKey.get('WorkloadEntry/demo/api-1')?.origin?.source, 'file', 'the first source wins again');
  });

  void it('fires nothing when content equal to the published one is set again', () => {
    registry.setSource('file', [we('api-1', '10.0.0.1', { app: 'api' }), se('api', 'api.demo.svc', { app: 'api' })]);
    registry.flush();
    assert.equal(published.length, 1);
    // New objects, another origin, another order: equal content.
    const again = [se('api', 'api.demo.svc', { app: 'api' }), { ...we('api-1', '10.0.0.1', { app: 'api' }), origin: { source: 'file' as const, file: 'other.yaml', line: 9 } }];
    registry.setSource('file', again);
    mock.timers.tick(2000);
    registry.flush();
    assert.equal(published.length, 1);
    // A change reverted within one burst publishes nothing either.
    registry.setSource('file', [we('api-1', '10.0.0.2', { app: 'api' })]);
    registry.setSource('file', again);
    mock.timers.tick(2000);
    assert.equal(published.length, 1);
    assert.equal(registry.current().version, 1);
  });

  void it('flush publishes pending changes at once and close cancels them', () => {
    registry.setSource('file', [meshWide]);
    registry.flush();
    assert.equal(published.length, 1);
    registry.setSource('file', []);
    registry.close();
    mock.timers.tick(2000);
    assert.equal(published.length, 1);
    assert.equal(registry.current().peerAuthentications.length, 1);
  });
});

void describe('registry snapshots', () => {
  const resources: MeshResource[] = [
    we('api-1', '10.0.0.1', { app: 'api', version: 'v1' }),
    we('api-2', '10.0.0.2', { app: 'api', version: 'v2' }),
    we('web-1', '10.0.0.3', { app: 'web' }),
    we('api-9', '10.0.0.1', { app: 'api' }, 'prod'),
    se('api', 'api.demo.svc.cluster.local', { app: 'api' }),
    se('api-v2', 'api-v2.demo.svc.cluster.local', { version: 'v2' }),
    { ...se('ext', 'ext.example.com', {}), spec: { hosts: ['ext.example.com'], resolution: 'STATIC', ports: [{ name: 'http', number: 80 }], endpoints: [{ address: '192.0.2.1', ports: { http: 8080 } }] } },
    sidecar,
    meshWide,
  ];

  function build(): MeshSnapshot {
    const registry = createRegistry({ logger: silentLogger() });
    registry.setSource('file', resources);
    registry.flush();
    const snap = registry.current();
    registry.close();
    return snap;
  }

  void it('indexes services, workloads and policies', () => {
    const s = build();
    assert.equal(s.version, 1);
    assert.equal(s.resources.length, resources.length);
    assert.deepEqual(s.workloadEntries.map((w) => `${w.metadata.namespace}/${w.metadata.name}`), ['demo/api-1', 'demo/api-2', 'demo/web-1', 'prod/api-9']);
    assert.equal(s.servicesByHost.get('api.demo.svc.cluster.local')?.metadata.name, 'api');
    assert.equal(s.workloadsByName.get('prod/api-9')?.spec.address, '10.0.0.1');
    assert.deepEqual(s.workloadsByAddress.get('10.0.0.1')?.map((w) => w.metadata.name), ['api-1', 'api-9']);
    assert.deepEqual(s.workloadsByService.get('demo/api')?.map((w) => w.metadata.name), ['api-1', 'api-2']);
    assert.deepEqual(s.workloadsByService.get('demo/api-v2')?.map((w) => w.metadata.name), ['api-2']);
    assert.deepEqual(s.servicesByWorkload.get('demo/api-2')?.map((x) => x.metadata.name), ['api', 'api-v2']);
    assert.equal(s.byKey.get('Sidecar/demo/api'), s.sidecars[0]);
    assert.deepEqual(s.sidecarsByNamespace.get('demo')?.map((x) => x.metadata.name), ['api']);
    assert.deepEqual(s.peerAuthenticationsByNamespace.get('skiff-system')?.map((x) => x.spec.mtls?.mode), ['STRICT']);
  });

  void it('selects workloads by labels within a namespace, and services of a workload', () => {
    const s = build();
    assert.deepEqual(selectWorkloads(s, 'demo', { app: 'api' }).map((w) => w.metadata.name), ['api-1', 'api-2']);
    assert.deepEqual(selectWorkloads(s, 'demo', {}).map((w) => w.metadata.name), ['api-1', 'api-2', 'web-1']);
    assert.deepEqual(selectWorkloads(s, 'nowhere', { app: 'api' }), []);
    const web = s.workloadsByName.get('demo/web-1')!;
    assert.deepEqual(servicesForWorkload(s, web), []);
    assert.deepEqual(servicesForWorkload(s, s.workloadsByName.get('demo/api-1')!).map((x) => x.metadata.name), ['api']);
  });

  void it('lists the endpoints of a service: selected WorkloadEntries and inline endpoints', () => {
    const s = build();
    const api = s.servicesByHost.get('api.demo.svc.cluster.local')!;
    const eps = endpointsOfService(s, api);
    assert.deepEqual(eps.map((e) => [e.address, e.serviceAccount, e.workloadEntry?.metadata.name]), [['10.0.0.1', 'api', 'api-1'], ['10.0.0.2', 'api', 'api-2']]);
    const [http, grpc] = api.spec.ports!;
    assert.equal(endpointPort(eps[0]!, http!), 18080, 'the WorkloadEntry names the http port');
    assert.equal(endpointPort(eps[0]!, grpc!), 9090, 'else targetPort');
    const ext = s.servicesByHost.get('ext.example.com')!;
    assert.deepEqual(endpointsOfService(s, ext).map((e) => [e.address, e.namespace, e.serviceAccount, e.workloadEntry]), [['192.0.2.1', 'demo', 'default', undefined]]);
  });

  void it('is immutable and leaves the caller\'s objects alone', () => {
    const s = build();
    assert.ok(Object.isFrozen(s));
    assert.ok(Object.isFrozen(s.resources));
    assert.ok(Object.isFrozen(s.workloadEntries[0]?.spec.labels));
    assert.throws(() => (s.servicesByHost as Map<string, ServiceEntry>).set('x', s.serviceEntries[0]!), /immutable/);
    assert.throws(() => {
      (s.workloadEntries[0]!.spec as { address?: string }).address = '1.2.3.4';
    }, TypeError);
    assert.ok(!Object.isFrozen(resources[0]), 'the source keeps mutable objects');
  });

  void it('keeps unchanged resources identical between versions and reports changed and removed keys', () => {
    const registry = createRegistry({ logger: silentLogger() });
    const events: ChangeEvent[] = [];
    registry.subscribe((_s, e) => events.push(e));
    registry.setSource('file', [we('a-1', '10.0.0.1', { app: 'a' }), we('b-1', '10.0.0.2', { app: 'b' }), meshWide]);
    registry.flush();
    const v1 = registry.current();
    registry.setSource('file', [we('a-1', '10.0.0.1', { app: 'a' }), we('b-1', '10.0.0.9', { app: 'b' })]);
    registry.flush();
    const v2 = registry.current();
    registry.close();
    assert.equal(v2.version, 2);
    assert.equal(v2.workloadsByName.get('demo/a-1'), v1.workloadsByName.get('demo/a-1'));
    assert.notEqual(v2.workloadsByName.get('demo/b-1'), v1.workloadsByName.get('demo/b-1'));
    assert.deepEqual([...events[1]!.changedKeys].sort(), ['PeerAuthentication/skiff-system/default', 'WorkloadEntry/demo/b-1']);
    assert.deepEqual([...events[1]!.changedKinds].sort(), ['PeerAuthentication', 'WorkloadEntry']);
  });

  void it('merges sources: on a key conflict the first source wins until it lets go', () => {
    const registry = createRegistry({ logger: silentLogger() });
    registry.setSource('file', [we('vm-1', '10.0.0.1', { app: 'a' })]);
    registry.setSource('consul', [we('vm-1', '10.0.0.2', { app: 'a' }), we('vm-2', '10.0.0.3', { app: 'a' })]);
    registry.flush();
    assert.deepEqual(registry.current().workloadEntries.map((w) => w.spec.address), ['10.0.0.1', '10.0.0.3']);
    registry.setSource('file', []);
    registry.flush();
    assert.deepEqual(registry.current().workloadEntries.map((w) => w.spec.address), ['10.0.0.2', '10.0.0.3']);
    registry.close();
  });

  void it('keeps notifying other subscribers when one throws, and stops after unsubscribe', () => {
    const registry = createRegistry({ logger: silentLogger() });
    const seen: number[] = [];
    registry.subscribe(() => {
      throw new Error('boom');
    });
    const off = registry.subscribe((s) => seen.push(s.version));
    registry.setSource('file', [meshWide]);
    registry.flush();
    off();
    registry.setSource('file', []);
    registry.flush();
    assert.deepEqual(seen, [1]);
    assert.equal(registry.current().version, 2);
    registry.close();
  });
});
