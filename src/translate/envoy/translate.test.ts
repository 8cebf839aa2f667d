import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyIR } from '../../ir/types.js';
import { buildProxyIR, parseProxyNode } from '../../push/index.js';
import { buildSnapshot } from '../../registry/index.js';
import { formatIssue, parseResources } from '../../resources/parse.js';
import { decodeAny, TypeUrl, UnknownFieldError } from '../../xds/protos/loader.js';
import { POLICY_MODULES, translateEnvoy, type EnvoyPolicyModule } from './index.js';

const MESH = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec: {mtls: {mode: STRICT}}
---
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
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a, namespace: demo}
spec:
  ingress:
    - {port: {number: 8080, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:8080"}
  egress:
    - {port: {number: 9080, protocol: HTTP, name: http}, hosts: ["./*"]}
`;
const EXTRA_B = `
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b-2, namespace: demo}
spec: {address: 198.18.0.3, serviceAccount: b, labels: {app: b}}
`;

function irOf(yaml: string): ProxyIR {
  const parsed = parseResources(yaml, 'mesh.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  const proxy = parseProxyNode({ id: 'sidecar~198.18.0.1~a.demo~demo.svc.cluster.local', metadata: { SERVICE_ACCOUNT: 'a', WORKLOAD_NAME: 'a' } }, 'cluster.local');
  return buildProxyIR(buildSnapshot(1, parsed.resources), proxy);
}

function versions(out: ReturnType<typeof translateEnvoy>): Record<string, string> {
  const v: Record<string, string> = {};
  for (const [typeUrl, byName] of out.resources) for (const [name, r] of byName) v[`${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)}/${name}`] = r.version;
  return v;
}

void test('every EDS and RDS name a cluster or listener needs is among the resources', () => {
  const out = translateEnvoy(irOf(MESH));
  assert.deepEqual([...(out.references.get(TypeUrl.ClusterLoadAssignment) ?? [])], ['outbound|9080||b.demo.svc.cluster.local']);
  assert.deepEqual([...(out.references.get(TypeUrl.RouteConfiguration) ?? [])], ['9080']);
  for (const [typeUrl, names] of out.references) for (const n of names) assert.ok(out.resources.get(typeUrl)?.has(n), `${typeUrl} ${n}`);
  assert.deepEqual(Object.keys(versions(out)).sort(), [
    'Cluster/inbound|8080||',
    'Cluster/outbound|9080||b.demo.svc.cluster.local',
    'ClusterLoadAssignment/outbound|9080||b.demo.svc.cluster.local',
    'Listener/127.0.0.1_9080',
    'Listener/198.18.0.1_8080',
    'RouteConfiguration/9080',
  ]);
});

void test('an empty IR yields all four types, empty', () => {
  const ir = irOf(MESH);
  const out = translateEnvoy({ ...ir, inbound: [], outbound: [], clusters: [], loadAssignments: [] });
  assert.deepEqual([...out.resources.keys()].sort(), [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration].sort());
  for (const byName of out.resources.values()) assert.equal(byName.size, 0);
});

void test('versions are content hashes: a new endpoint of the same identity changes only the ClusterLoadAssignment', () => {
  const before = versions(translateEnvoy(irOf(MESH)));
  assert.deepEqual(versions(translateEnvoy(irOf(MESH))), before, 'same input, same versions');
  const after = versions(translateEnvoy(irOf(MESH + EXTRA_B)));
  const changed = Object.keys(before).filter((k) => before[k] !== after[k]);
  assert.deepEqual(changed, ['ClusterLoadAssignment/outbound|9080||b.demo.svc.cluster.local']);
});

void test('policy modules run in ascending order, whatever the order of the list', () => {
  const ran: string[] = [];
  const mk = (name: string, order: number): EnvoyPolicyModule => ({ name, order, apply: () => void ran.push(name) });
  translateEnvoy(irOf(MESH), [mk('late', 300), ...POLICY_MODULES, mk('early', 50)]);
  assert.deepEqual(ran, ['early', 'late']);
});

void test('the built-in policy list is sorted by order with unique names', () => {
  const orders = POLICY_MODULES.map((m) => m.order);
  assert.deepEqual(orders, [...orders].sort((a, b) => a - b));
  assert.equal(new Set(POLICY_MODULES.map((m) => m.name)).size, POLICY_MODULES.length);
  assert.deepEqual(POLICY_MODULES.map((m) => m.name), ['PeerAuthentication', 'RequestAuthentication', 'AuthorizationPolicy']);
});

void test('a misspelt field in a generated message is an error, never silently dropped', () => {
  const typo: EnvoyPolicyModule = {
    name: 'typo',
    order: 200,
    apply(draft) {
      for (const c of draft.chains) {
        // The cast stands for a builder whose types are too loose to catch the typo at compile time.
        const typedConfig = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', suppressEnvoyHeadres: true } as { '@type': string };
        c.httpFilters.authz.push({ name: 'envoy.filters.http.router', typedConfig });
      }
    },
  };
  assert.throws(() => translateEnvoy(irOf(MESH), [...POLICY_MODULES, typo]), (err: unknown) => err instanceof UnknownFieldError && /suppressEnvoyHeadres/.test(err.message));
});

void test('without the PeerAuthentication module no inbound listener is produced (fail closed)', () => {
  assert.throws(() => translateEnvoy(irOf(MESH), []), /198\.18\.0\.1_8080: no policy module produced a filter chain/);
});

void test('under STRICT every inbound filter chain requires a client certificate and forwards the peer URI', () => {
  const out = translateEnvoy(irOf(MESH));
  const listener = decodeAny(out.resources.get(TypeUrl.Listener)!.get('198.18.0.1_8080')!.resource);
  const chains = listener['filterChains'] as Array<Record<string, unknown>>;
  assert.equal(chains.length, 1);
  const tls = (chains[0]!['transportSocket'] as { typedConfig: Record<string, unknown> }).typedConfig;
  assert.deepEqual(tls['requireClientCertificate'], { value: true });
  const hcm = (chains[0]!['filters'] as Array<{ typedConfig: Record<string, unknown> }>)[0]!.typedConfig;
  assert.equal(hcm['forwardClientCertDetails'], 'SANITIZE_SET');
  assert.deepEqual(hcm['setCurrentClientCertDetails'], { uri: true });
});
