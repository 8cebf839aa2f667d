import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProxyNode, ProxyNodeError } from './node.js';

const ID = 'sidecar~198.18.0.1~a.demo~demo.svc.cluster.local';

void test('an Istio node id with metadata yields the proxy identity and SPIFFE ID', () => {
  const p = parseProxyNode(
    { id: ID, metadata: { NAMESPACE: 'demo', SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a', LABELS: { app: 'a', version: 'v1' }, CLUSTER_ID: 'vm' } },
    'cluster.local',
  );
  assert.deepEqual(p, {
    nodeId: ID,
    ip: '198.18.0.1',
    namespace: 'demo',
    serviceAccount: 'a',
    workloadName: 'a',
    labels: { app: 'a', version: 'v1' },
    trustDomain: 'cluster.local',
    spiffeId: 'spiffe://cluster.local/ns/demo/sa/a',
  });
});

void test('without metadata the namespace comes from the id and the service account is "default"', () => {
  const p = parseProxyNode({ id: 'sidecar~fd00::1~vm.prod~prod.svc.cluster.local' }, 'example.org');
  assert.equal(p.ip, 'fd00::1');
  assert.equal(p.namespace, 'prod');
  assert.equal(p.serviceAccount, 'default');
  assert.equal(p.workloadName, undefined);
  assert.equal(p.spiffeId, 'spiffe://example.org/ns/prod/sa/default');
});

void test('LABELS given as a JSON string is accepted', () => {
  const p = parseProxyNode({ id: ID, metadata: { LABELS: '{"app":"a"}' } }, 'cluster.local');
  assert.deepEqual(p.labels, { app: 'a' });
});

void test('bad node ids and metadata are refused with a clear error', () => {
  const cases: Array<[Parameters<typeof parseProxyNode>[0], RegExp]> = [
    [{ id: 'sidecar~198.18.0.1~a.demo' }, /expected sidecar~<ip>~/],
    [{ id: 'router~198.18.0.1~a.demo~demo.svc.cluster.local' }, /proxy type "router" is not supported/],
    [{ id: 'sidecar~not-an-ip~a.demo~demo.svc.cluster.local' }, /"not-an-ip" is not an IP address/],
    [{ id: ID, metadata: { NAMESPACE: 'other' } }, /names namespace "demo" but metadata NAMESPACE is "other"/],
    [{ id: ID, metadata: { SERVICE_ACCOUNT: 7 } }, /SERVICE_ACCOUNT must be a string/],
    [{ id: ID, metadata: { LABELS: { app: 1 } } }, /LABELS\.app must be a string/],
    [{ id: ID, metadata: { LABELS: '{nope' } }, /LABELS is a string but not JSON/],
  ];
  for (const [node, message] of cases) {
    assert.throws(() => parseProxyNode(node, 'cluster.local'), (err: unknown) => err instanceof ProxyNodeError && message.test(err.message), node.id);
  }
});

void test('node.locality becomes the proxy locality (used for locality-aware load balancing); an empty one is ignored', () => {
  const p = parseProxyNode({ id: ID, locality: { region: 'eu', zone: 'eu-a', subZone: '' } }, 'cluster.local');
  assert.deepEqual(p.locality, { region: 'eu', zone: 'eu-a', subZone: '' });
  assert.equal(parseProxyNode({ id: ID, locality: { region: '', zone: '' } }, 'cluster.local').locality, undefined);
});
