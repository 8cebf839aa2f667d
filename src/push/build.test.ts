import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validate } from '../ir/validate.js';
import { buildSnapshot } from '../registry/index.js';
import { formatIssue, parseResources } from '../resources/parse.js';
import type { MeshSnapshot } from '../registry/types.js';
import { buildProxyIR } from './build.js';
import { parseProxyNode } from './node.js';

function mesh(yaml: string): MeshSnapshot {
  const parsed = parseResources(yaml, 'test.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  return buildSnapshot(1, parsed.resources);
}

const A_ID = 'sidecar~198.18.0.1~a.demo~demo.svc.cluster.local';
const BASE = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: demo}
spec: {address: 198.18.0.1, serviceAccount: a, labels: {app: a}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b, namespace: demo}
spec: {address: 198.18.0.2, serviceAccount: b, labels: {app: b}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: demo}
spec:
  hosts: [b.demo.svc.cluster.local]
  resolution: STATIC
  ports: [{name: http, number: 9080, targetPort: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: b}}
`;

void test('the own WorkloadEntry is found by address when the node names none', () => {
  const proxy = parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'a' } }, 'cluster.local');
  const ir = buildProxyIR(mesh(BASE), proxy);
  assert.equal(ir.proxy.workloadName, 'a');
  assert.deepEqual(ir.proxy.labels, { app: 'a' });
});

void test("a proxy of another service account is not served as the WorkloadEntry it claims: no inbound listener", () => {
  const proxy = parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'intruder', WORKLOAD_NAME: 'a' } }, 'cluster.local');
  const ir = buildProxyIR(mesh(BASE), proxy);
  assert.equal(ir.inbound.length, 0);
  assert.ok(
    ir.warnings.includes("WorkloadEntry/demo/a has serviceAccount a but the proxy's identity is spiffe://cluster.local/ns/demo/sa/intruder: not serving it as that workload"),
    ir.warnings.join('\n'),
  );
});

void test('outbound clusters carry the destination SPIFFE IDs, Istio SNI and the workload port endpoints', () => {
  const ir = buildProxyIR(mesh(BASE), parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local'));
  const cluster = ir.clusters.find((c) => c.name === 'outbound|9080||b.demo.svc.cluster.local');
  assert.ok(cluster && cluster.direction === 'outbound');
  assert.deepEqual(cluster.tls, { mode: 'ISTIO_MUTUAL', sni: 'outbound_.9080_._.b.demo.svc.cluster.local', subjectAltNames: ['spiffe://cluster.local/ns/demo/sa/b'] });
  assert.deepEqual(ir.loadAssignments, [
    {
      clusterName: 'outbound|9080||b.demo.svc.cluster.local',
      endpoints: [{ ip: '198.18.0.2', port: 8080, spiffeId: 'spiffe://cluster.local/ns/demo/sa/b', source: 'WorkloadEntry/demo/b' }],
    },
  ]);
  assert.deepEqual(validate(ir), []);
});

void test('an ingress defaultEndpoint of 0.0.0.0 means the workload address; one pointing at the listener itself is refused', () => {
  const snapshot = mesh(`${BASE}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a, namespace: demo}
spec:
  workloadSelector: {labels: {app: a}}
  ingress:
    - {port: {number: 8080, protocol: HTTP, name: http}, defaultEndpoint: "0.0.0.0:18080"}
    - {port: {number: 8081, protocol: TCP, name: tcp}, defaultEndpoint: "0.0.0.0:8081"}
  egress:
    - {hosts: ["~/*"]}
`);
  const ir = buildProxyIR(snapshot, parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local'));
  assert.deepEqual(
    ir.inbound.map((l) => l.name),
    ['198.18.0.1_8080'],
  );
  assert.deepEqual(
    ir.clusters.map((c) => (c.direction === 'inbound' ? c.endpoint : c.name)),
    [{ ip: '198.18.0.1', port: 18080 }],
  );
  assert.ok(ir.warnings.some((w) => w.includes('inbound 198.18.0.1:8081 skipped, its application endpoint 198.18.0.1:8081 is the listener itself')), ir.warnings.join('\n'));
  assert.deepEqual(validate(ir), []);
});

void test('an egress port that is the application endpoint is skipped with a warning, so the IR stays valid', () => {
  const snapshot = mesh(`${BASE}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: c, namespace: demo}
spec:
  hosts: [c.demo.svc.cluster.local]
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: b}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a, namespace: demo}
spec:
  ingress:
    - {port: {number: 8080, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:8080"}
  egress:
    - {port: {number: 8080, protocol: HTTP, name: http}, hosts: ["./*"]}
    - {port: {number: 7777, protocol: HTTP, name: http}, hosts: ["./*"]}
`);
  const ir = buildProxyIR(snapshot, parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local'));
  assert.deepEqual(ir.outbound, []);
  assert.deepEqual(ir.warnings, [
    'Sidecar/demo/a egress[0]: outbound 127.0.0.1:8080 skipped, the address is taken by the application endpoint of inbound|8080||',
    'Sidecar/demo/a egress[1]: no service matches port 7777: no listener on 127.0.0.1:7777',
  ]);
  assert.deepEqual(validate(ir), []);
});

void test('a Sidecar with ingress only gets the default egress, and says so', () => {
  const snapshot = mesh(`${BASE}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a, namespace: demo}
spec:
  ingress:
    - {port: {number: 8080, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:8080"}
`);
  const ir = buildProxyIR(snapshot, parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local'));
  assert.deepEqual(ir.outbound.map((l) => l.name), ['127.0.0.1_9080']);
  assert.deepEqual(ir.warnings, [
    'Sidecar/demo/a has no egress for workload demo/a: assumed outbound listeners on 127.0.0.1:<port> for every port (from 1024 up) of every mesh service (127.0.0.1:9080)',
  ]);
});

void test('the IR is plain, deterministic data', () => {
  const snapshot = mesh(BASE);
  const proxy = parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local');
  const one = buildProxyIR(snapshot, proxy);
  assert.deepEqual(JSON.parse(JSON.stringify(one)), one);
  assert.deepEqual(buildProxyIR(snapshot, proxy), one);
});

void test('a WorkloadEntry whose Healthy condition is False leaves the load assignment; True or unset stays', () => {
  const snap = mesh(BASE);
  const b = snap.workloadEntries.find((w) => w.metadata.name === 'b');
  assert.ok(b);
  const unhealthy = { ...b, status: { conditions: [{ type: 'Healthy', status: 'False' as const, reason: 'ProbeFailed' }] } };
  const withUnhealthy = buildSnapshot(snap.version + 1, [...snap.resources.filter((r) => r !== b), unhealthy]);
  const proxy = parseProxyNode({ id: A_ID, metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local');
  const la = buildProxyIR(withUnhealthy, proxy).loadAssignments.find((l) => l.clusterName === 'outbound|9080||b.demo.svc.cluster.local');
  assert.deepEqual(la?.endpoints, []);
  const healthy = { ...b, status: { conditions: [{ type: 'Healthy', status: 'True' as const }] } };
  const withHealthy = buildSnapshot(snap.version + 2, [...snap.resources.filter((r) => r !== b), healthy]);
  const la2 = buildProxyIR(withHealthy, proxy).loadAssignments.find((l) => l.clusterName === 'outbound|9080||b.demo.svc.cluster.local');
  assert.equal(la2?.endpoints.length, 1);
});
