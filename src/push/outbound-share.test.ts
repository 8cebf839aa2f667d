import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../registry/index.js';
import { formatIssue, parseResources } from '../resources/parse.js';
import type { MeshResource } from '../resources/types.js';
import { buildProxyIR } from './build.js';
import { parseProxyNode } from './node.js';
import { outboundLabelKeys } from './outbound-share.js';

// Two namespaces; a DestinationRule with failoverPriority on `version` and a workloadSelector on
// `tier`; a VirtualService routing by `sourceLabels` on `role`; a Sidecar egress in `other`.
const MESH = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: demo}
spec:
  hosts: [b.demo.svc.cluster.local]
  resolution: STATIC
  ports: [{name: http, number: 9080, protocol: HTTP}]
  workloadSelector: {labels: {app: b}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: c, namespace: other}
spec:
  hosts: [c.other.svc.cluster.local]
  resolution: STATIC
  ports: [{name: http, number: 9090, protocol: HTTP}]
  workloadSelector: {labels: {app: c}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b-1, namespace: demo}
spec: {address: 198.18.1.1, serviceAccount: b, labels: {app: b, version: v1}, locality: eu/a/1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b-2, namespace: demo}
spec: {address: 198.18.1.2, serviceAccount: b, labels: {app: b, version: v2}, locality: us/b/1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: c-1, namespace: other}
spec: {address: 198.18.2.1, serviceAccount: c, labels: {app: c, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: c-2, namespace: other}
spec: {address: 198.18.2.2, serviceAccount: c, labels: {app: c, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: demo}
spec:
  host: b.demo.svc.cluster.local
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s}
    loadBalancer:
      localityLbSetting: {enabled: true, failoverPriority: [version]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b-tier, namespace: demo}
spec:
  host: b.demo.svc.cluster.local
  workloadSelector: {matchLabels: {tier: gold}}
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: c, namespace: other}
spec:
  host: c.other.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: c, namespace: other}
spec:
  hosts: [c.other.svc.cluster.local]
  http:
    - match: [{sourceLabels: {role: canary}}]
      route: [{destination: {host: c.other.svc.cluster.local, subset: v2}}]
    - route: [{destination: {host: c.other.svc.cluster.local, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: other}
spec:
  egress: [{hosts: ["./*", "demo/b.demo.svc.cluster.local"]}]
`;

function resources(): MeshResource[] {
  const parsed = parseResources(MESH, 'mesh.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  return parsed.resources;
}

/** Proxies that differ in what the outbound part reads (and in what it does not). */
const PROXIES: Array<{ id: string; ns: string; labels: Record<string, string>; locality?: string; ip?: string; sa?: string }> = [
  { id: 'p1', ns: 'demo', labels: { app: 'a', version: 'v1' } },
  { id: 'p2', ns: 'demo', labels: { app: 'other-app', version: 'v1', misc: 'x' } }, // same as p1 where it matters
  { id: 'p3', ns: 'demo', labels: { app: 'a', version: 'v2' } }, // failoverPriority label differs
  { id: 'p4', ns: 'demo', labels: { app: 'a', version: 'v1', tier: 'gold' } }, // DestinationRule workloadSelector
  { id: 'p5', ns: 'demo', labels: { app: 'a', version: 'v1', role: 'canary' } }, // VirtualService sourceLabels
  { id: 'p6', ns: 'demo', labels: {} }, // no labels: Istio skips failoverPriority ranks
  { id: 'p7', ns: 'demo', labels: { app: 'a', version: 'v1' }, locality: 'us/b/1' },
  { id: 'p8', ns: 'other', labels: { app: 'x' } }, // Sidecar egress
  { id: 'p9', ns: 'other', labels: { app: 'y', role: 'canary' } },
  { id: 'p10', ns: 'other', labels: { app: 'z' } },
  // Workload b-1 itself: its application endpoint 127.0.0.1:9080 takes the outbound listener's address.
  { id: 'b-1', ns: 'demo', labels: { app: 'b', version: 'v1' }, ip: '198.18.1.1', sa: 'b', locality: 'eu/a/1' },
  { id: 'p12', ns: 'demo', labels: { app: 'a', version: 'v1' }, locality: 'eu/a/1' },
];

function identity(p: (typeof PROXIES)[number], i: number) {
  const ip = p.ip ?? `198.18.9.${i + 1}`;
  const [region, zone, subZone] = (p.locality ?? '').split('/');
  return parseProxyNode(
    {
      id: `sidecar~${ip}~${p.id}.${p.ns}~${p.ns}.svc.cluster.local`,
      metadata: { NAMESPACE: p.ns, SERVICE_ACCOUNT: p.sa ?? 'sa', LABELS: p.labels },
      ...(p.locality ? { locality: { region, zone, subZone } } : {}),
    },
    'cluster.local',
  );
}

void test('the label keys the outbound side reads: DestinationRule selectors and failoverPriority, VirtualService sourceLabels', () => {
  assert.deepEqual([...outboundLabelKeys(buildSnapshot(1, resources()))].sort(), ['role', 'tier', 'version']);
});

void test('a shared outbound part gives every proxy the IR it would get built alone', () => {
  const shared = buildSnapshot(1, resources());
  const irs = PROXIES.map((p, i) => {
    const id = identity(p, i);
    // The same proxy built from a snapshot no other proxy used: nothing shared.
    const alone = buildProxyIR(buildSnapshot(1, resources()), id);
    const withSharing = buildProxyIR(shared, id);
    assert.deepEqual(withSharing, alone, `proxy ${p.id}`);
    return withSharing;
  });
  const cluster = (i: number, name: string) => irs[i]!.clusters.find((c) => c.name === name);
  const b = 'outbound|9080||b.demo.svc.cluster.local';
  const la = (i: number) => irs[i]!.loadAssignments.find((l) => l.clusterName === b);
  assert.equal(cluster(1, b), cluster(0, b), 'p1 and p2 differ only in labels no rule reads: one shared cluster object');
  assert.equal(la(1), la(0));
  assert.notEqual(la(2), la(0), 'a different failoverPriority label value is built on its own');
  assert.notDeepEqual(la(2), la(0), 'and its endpoint priorities differ');
  assert.notEqual(cluster(3, b), cluster(0, b), 'a workloadSelector DestinationRule applies to p4 alone');
  const tier = cluster(3, b);
  assert.ok(tier?.direction === 'outbound' && tier.trafficPolicy?.source === 'DestinationRule/demo/b-tier', JSON.stringify(tier));
  assert.notEqual(la(6), la(0), 'another locality is built on its own');
  // VirtualService sourceLabels: the canary proxy routes to subset v2, the others to v1.
  const route = (i: number) => JSON.stringify(irs[i]!.outbound.find((l) => l.port === 9090));
  const listener = (i: number) => irs[i]!.outbound.find((l) => l.port === 9090);
  assert.match(route(7), /outbound\|9090\|v1\|/, 'p8 routes to v1');
  assert.match(route(8), /outbound\|9090\|v2\|/, 'p9 (role: canary) routes to v2');
  assert.notEqual(listener(8), listener(7));
  assert.equal(listener(9), listener(7), 'p8 and p10 share their listener (no role label)');
  const own = irs[10]!;
  assert.ok(own.inbound.some((l) => l.port === 9080), 'b-1 has its inbound listener');
  assert.equal(own.outbound.find((l) => l.address === '127.0.0.1' && l.port === 9080), undefined, "b-1's outbound 127.0.0.1:9080 yields to its application");
  assert.ok(irs[11]!.outbound.some((l) => l.address === '127.0.0.1' && l.port === 9080), 'p12 (same namespace, labels and locality) has it');
});

void test('an egress bind on the proxy’s own address is built per proxy, and collisions with the inbound side still apply', () => {
  const yaml = `${MESH}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: bound, namespace: third}
spec:
  egress: [{bind: 0.0.0.0, port: {number: 9080, protocol: HTTP, name: http}, hosts: ["demo/*"]}]
  ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: 127.0.0.1:8080}]
`;
  const parsed = parseResources(yaml, 'mesh.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  const shared = buildSnapshot(1, parsed.resources);
  for (const i of [0, 1]) {
    const id = parseProxyNode({ id: `sidecar~198.18.8.${i + 1}~t${i}.third~third.svc.cluster.local`, metadata: { NAMESPACE: 'third', SERVICE_ACCOUNT: 'sa' } }, 'cluster.local');
    const ir = buildProxyIR(shared, id);
    assert.deepEqual(ir, buildProxyIR(buildSnapshot(1, parsed.resources), id));
    assert.ok(
      ir.warnings.some((w) => w.includes('outbound 0.0.0.0:9080 skipped, the address is taken by inbound listener')),
      `the egress listener yields to the inbound one on ${id.ip}: ${ir.warnings.join('\n')}`,
    );
  }
});
