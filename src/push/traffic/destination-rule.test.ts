import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validate } from '../../ir/validate.js';
import type { OutboundClusterIR, ProxyIR } from '../../ir/types.js';
import { buildSnapshot } from '../../registry/index.js';
import type { MeshSnapshot } from '../../registry/types.js';
import { formatIssue, parseResources } from '../../resources/parse.js';
import type { DestinationRule, TrafficPolicy } from '../../resources/traffic-types.js';
import { buildProxyIR } from '../build.js';
import { parseProxyNode } from '../node.js';
import { clusterSettings, findDestinationRule, hostMatches, mergeTrafficPolicy } from './destination-rule.js';

function mesh(yaml: string): MeshSnapshot {
  const parsed = parseResources(yaml, 'test.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  return buildSnapshot(1, parsed.resources);
}

/** Workload `a` (namespace `ns`) calling service `b` of namespace `svc`, plus `extra` documents. */
function irFor(extra: string, ns = 'demo', svcNs = 'demo'): ProxyIR {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: ${ns}}
spec: {address: 198.18.0.1, serviceAccount: a, labels: {app: a}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b, namespace: ${svcNs}}
spec: {address: 198.18.0.2, serviceAccount: b, labels: {app: b, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: ${svcNs}}
spec:
  hosts: [b.example.com]
  resolution: STATIC
  ports: [{name: http, number: 9080, targetPort: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: b}}
${extra}`;
  const proxy = parseProxyNode({ id: `sidecar~198.18.0.1~a.${ns}~${ns}.svc.cluster.local`, metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local');
  const ir = buildProxyIR(mesh(yaml), proxy);
  assert.deepEqual(validate(ir), []);
  return ir;
}

function cluster(ir: ProxyIR, name = 'outbound|9080||b.example.com'): OutboundClusterIR {
  const c = ir.clusters.find((x) => x.name === name);
  assert.ok(c && c.direction === 'outbound', `cluster ${name} exists`);
  return c;
}

function dr(name: string, namespace: string, host: string, lb: string, extra = ''): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  host: ${JSON.stringify(host)}
  trafficPolicy: {loadBalancer: {simple: ${lb}}}
${extra}`;
}

void test("the proxy's namespace wins over the service's and the root namespace", () => {
  const ir = irFor(dr('root', 'skiff-system', 'b.example.com', 'RANDOM') + dr('svc', 'shop', 'b.example.com', 'ROUND_ROBIN') + dr('own', 'front', 'b.example.com', 'LEAST_REQUEST'), 'front', 'shop');
  assert.equal(cluster(ir).trafficPolicy?.simpleLb, 'LEAST_REQUEST');
  assert.equal(cluster(ir).trafficPolicy?.source, 'DestinationRule/front/own');
});

void test("the service's namespace comes next, then the root namespace", () => {
  const both = irFor(dr('root', 'skiff-system', 'b.example.com', 'RANDOM') + dr('svc', 'shop', 'b.example.com', 'ROUND_ROBIN'), 'front', 'shop');
  assert.equal(cluster(both).trafficPolicy?.simpleLb, 'ROUND_ROBIN');
  const rootOnly = irFor(dr('root', 'skiff-system', 'b.example.com', 'RANDOM'), 'front', 'shop');
  assert.equal(cluster(rootOnly).trafficPolicy?.simpleLb, 'RANDOM');
});

void test('exportTo "." hides a rule from other namespaces but not from its own', () => {
  const hidden = irFor(dr('svc', 'shop', 'b.example.com', 'RANDOM', '  exportTo: ["."]\n'), 'front', 'shop');
  assert.equal(cluster(hidden).trafficPolicy, undefined);
  const own = irFor(dr('svc', 'shop', 'b.example.com', 'RANDOM', '  exportTo: ["."]\n'), 'shop', 'shop');
  assert.equal(cluster(own).trafficPolicy?.simpleLb, 'RANDOM');
  const named = irFor(dr('svc', 'shop', 'b.example.com', 'RANDOM', '  exportTo: [front]\n'), 'front', 'shop');
  assert.equal(cluster(named).trafficPolicy?.simpleLb, 'RANDOM');
});

void test('an exact host beats a wildcard in the same namespace; a longer wildcard beats a shorter one', () => {
  const exact = irFor(dr('wild', 'demo', '*.example.com', 'RANDOM') + dr('exact', 'demo', 'b.example.com', 'LEAST_REQUEST'));
  assert.equal(cluster(exact).trafficPolicy?.simpleLb, 'LEAST_REQUEST');
  const wild = irFor(dr('all', 'demo', '*', 'RANDOM') + dr('wild', 'demo', '*.example.com', 'ROUND_ROBIN'));
  assert.equal(cluster(wild).trafficPolicy?.simpleLb, 'ROUND_ROBIN');
});

void test('a short host names the service in the rule namespace', () => {
  const ir = irFor(
    `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: c, namespace: demo}
spec:
  hosts: [c.demo.svc.cluster.local]
  resolution: STATIC
  ports: [{name: http, number: 9090, protocol: HTTP}]
  endpoints: [{address: 198.18.0.3}]
${dr('c', 'demo', 'c', 'RANDOM')}`,
  );
  assert.equal(cluster(ir, 'outbound|9090||c.demo.svc.cluster.local').trafficPolicy?.simpleLb, 'RANDOM');
});

void test('subset clusters hold the endpoints with the subset labels; a subset matching no endpoint is empty', () => {
  const ir = irFor(
    dr(
      'b',
      'demo',
      'b.example.com',
      'ROUND_ROBIN',
      `  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
`,
    ),
  );
  const la = (name: string): string[] => (ir.loadAssignments.find((l) => l.clusterName === name)?.endpoints ?? []).map((e) => e.ip);
  assert.deepEqual(la('outbound|9080|v1|b.example.com'), ['198.18.0.2']);
  assert.deepEqual(la('outbound|9080|v2|b.example.com'), []);
  assert.equal(cluster(ir, 'outbound|9080|v2|b.example.com').trafficPolicy?.simpleLb, 'RANDOM');
  assert.equal(cluster(ir, 'outbound|9080|v2|b.example.com').tls.sni, 'outbound_.9080_.v2_.b.example.com');
  assert.equal(cluster(ir, 'outbound|9080|v1|b.example.com').trafficPolicy?.simpleLb, 'ROUND_ROBIN');
});

void test('tls DISABLE / SIMPLE become clientTls; ISTIO_MUTUAL sni and subjectAltNames override the defaults', () => {
  const disabled = irFor(`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: demo}
spec:
  host: b.example.com
  trafficPolicy: {tls: {mode: DISABLE}}
`);
  assert.deepEqual(cluster(disabled).clientTls, { mode: 'DISABLE', subjectAltNames: [] });
  const mutual = irFor(`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: demo}
spec:
  host: b.example.com
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: custom.sni, subjectAltNames: ["spiffe://cluster.local/ns/demo/sa/x"]}}
`);
  assert.equal(cluster(mutual).clientTls, undefined);
  assert.equal(cluster(mutual).tls.sni, 'custom.sni');
  assert.deepEqual(cluster(mutual).tls.subjectAltNames, ['spiffe://cluster.local/ns/demo/sa/x']);
});

void test('the proxy locality comes from its WorkloadEntry', () => {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: demo}
spec: {address: 198.18.0.1, serviceAccount: a, locality: us-east/zone-a/rack1}
`;
  const proxy = parseProxyNode({ id: 'sidecar~198.18.0.1~a.demo~demo.svc.cluster.local', metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local');
  const ir = buildProxyIR(mesh(yaml), proxy);
  assert.deepEqual(ir.proxy.locality, { region: 'us-east', zone: 'zone-a', subZone: 'rack1' });
});

void test('outlier detection turns on default locality failover: the caller zone first', () => {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: demo}
spec: {address: 198.18.0.1, serviceAccount: a, locality: us-east/zone-a}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: demo}
spec:
  hosts: [b.example.com]
  resolution: STATIC
  ports: [{name: http, number: 9080, protocol: HTTP}]
  endpoints:
    - {address: 198.18.0.11, locality: us-east/zone-b}
    - {address: 198.18.0.12, locality: us-east/zone-a}
`;
  const proxy = parseProxyNode({ id: 'sidecar~198.18.0.1~a.demo~demo.svc.cluster.local', metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local');
  const withOd = buildProxyIR(mesh(`${yaml}${dr('b', 'demo', 'b.example.com', 'ROUND_ROBIN', '    outlierDetection: {consecutive5xxErrors: 2}\n').replace('trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}', 'trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}')}`), proxy);
  assert.deepEqual(validate(withOd), []);
  const eps = withOd.loadAssignments.find((l) => l.clusterName === 'outbound|9080||b.example.com')?.endpoints ?? [];
  assert.deepEqual(eps.map((e) => [e.ip, e.priority ?? 0]), [['198.18.0.11', 1], ['198.18.0.12', 0]]);
  assert.deepEqual(cluster(withOd).trafficPolicy?.locality, { weighted: false });
  const without = buildProxyIR(mesh(`${yaml}${dr('b', 'demo', 'b.example.com', 'ROUND_ROBIN')}`), proxy);
  const plain = without.loadAssignments.find((l) => l.clusterName === 'outbound|9080||b.example.com')?.endpoints ?? [];
  assert.deepEqual(plain.map((e) => e.priority), [undefined, undefined], 'no outlier detection: no failover priorities (Istio)');
});

void test('hostMatches: exact, *.suffix and *', () => {
  assert.ok(hostMatches('b.example.com', 'B.Example.com'));
  assert.ok(hostMatches('*.example.com', 'b.example.com'));
  assert.ok(!hostMatches('*.example.com', 'example.com'));
  assert.ok(hostMatches('*', 'anything.local'));
  assert.ok(!hostMatches('a.example.com', 'b.example.com'));
});

void test('mergeTrafficPolicy: port-level settings replace the top level wholesale; subset fields override one by one', () => {
  const top: TrafficPolicy = {
    loadBalancer: { simple: 'LEAST_REQUEST' },
    outlierDetection: { consecutive5xxErrors: 3 },
    portLevelSettings: [{ port: { number: 9080 }, connectionPool: { tcp: { maxConnections: 5 } } }],
  };
  assert.deepEqual(mergeTrafficPolicy(top, undefined, 9080), { connectionPool: { tcp: { maxConnections: 5 } } });
  assert.deepEqual(mergeTrafficPolicy(top, undefined, 9090), { loadBalancer: { simple: 'LEAST_REQUEST' }, outlierDetection: { consecutive5xxErrors: 3 } });
  assert.deepEqual(mergeTrafficPolicy(top, { loadBalancer: { simple: 'RANDOM' } }, 9090), { loadBalancer: { simple: 'RANDOM' }, outlierDetection: { consecutive5xxErrors: 3 } });
  assert.deepEqual(
    mergeTrafficPolicy(top, { loadBalancer: { simple: 'RANDOM' }, portLevelSettings: [{ port: { number: 9090 }, tls: { mode: 'DISABLE' } }] }, 9090),
    { tls: { mode: 'DISABLE' } },
  );
});

void test('clusterSettings: Istio defaults for outlier detection, consistent hash and bad durations', () => {
  const rule: DestinationRule = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'r', namespace: 'demo' },
    spec: {
      host: 'b.example.com',
      trafficPolicy: {
        loadBalancer: { consistentHash: { useSourceIp: true } },
        outlierDetection: { consecutiveGatewayErrors: 0 },
        connectionPool: { tcp: { connectTimeout: 'soon' } },
      },
    },
  };
  const warnings: string[] = [];
  const s = clusterSettings({ rule, source: 'DestinationRule/demo/r', trafficPolicy: rule.spec.trafficPolicy!, subsets: [] }, 9080, '', (m) => warnings.push(m));
  assert.deepEqual(s.policy?.consistentHash, { key: { sourceIp: true }, minimumRingSize: 1024 });
  assert.deepEqual(s.policy?.outlierDetection, { intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, minHealthPercent: 0, consecutiveGatewayErrors: 0 });
  assert.equal(s.policy?.connectionPool?.connectTimeoutMs, undefined);
  assert.match(warnings.join('\n'), /tcp\.connectTimeout "soon" is not a duration/);
});

void test('findDestinationRule: a rule selecting the workload wins; one selecting others does not apply', () => {
  const mk = (name: string, lb: 'RANDOM' | 'ROUND_ROBIN', selector?: Record<string, string>): DestinationRule =>
    ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name, namespace: 'demo' },
      spec: { host: 'b.example.com', trafficPolicy: { loadBalancer: { simple: lb } }, ...(selector ? { workloadSelector: { matchLabels: selector, labels: selector } } : {}) },
    }) as unknown as DestinationRule;
  const byHost = new Map([['b.example.com', [mk('plain', 'ROUND_ROBIN'), mk('mine', 'RANDOM', { app: 'a' }), mk('theirs', 'RANDOM', { app: 'z' })]]]);
  const found = findDestinationRule(byHost, 'b.example.com', 'demo', { namespace: 'demo', labels: { app: 'a' } }, 'skiff-system', () => {});
  assert.equal(found?.source, 'DestinationRule/demo/mine');
  const other = findDestinationRule(byHost, 'b.example.com', 'demo', { namespace: 'demo', labels: { app: 'q' } }, 'skiff-system', () => {});
  assert.equal(other?.source, 'DestinationRule/demo/plain');
});
