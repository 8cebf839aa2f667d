import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../registry/index.js';
import { formatIssue, parseResources } from '../resources/parse.js';
import type { MeshSnapshot } from '../registry/types.js';
import { applicableAuthorizationPolicies, parseGoBool, type PolicyTarget } from './authorization.js';
import { buildProxyIR } from './build.js';
import { parseProxyNode } from './node.js';

function mesh(yaml: string): MeshSnapshot {
  const parsed = parseResources(yaml, 'test.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  return buildSnapshot(1, parsed.resources);
}

function policy(ns: string, name: string, selector?: Record<string, string>, extra = ''): string {
  const sel = selector ? `\n  selector: {matchLabels: ${JSON.stringify(selector)}}` : '';
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${ns}${extra}}
spec:${sel}
  rules: [{}]
`;
}

const SCOPES = [
  policy('skiff-system', 'mesh-wide'),
  policy('skiff-system', 'root-selects-api', { app: 'api' }),
  policy('skiff-system', 'root-selects-other', { app: 'other' }),
  policy('demo', 'namespace-wide'),
  policy('demo', 'selects-api', { app: 'api' }),
  policy('demo', 'selects-api-v2', { app: 'api', version: 'v2' }),
  policy('shop', 'other-namespace'),
  policy('shop', 'other-namespace-selects-api', { app: 'api' }),
].join('');

const API: PolicyTarget = { namespace: 'demo', labels: { app: 'api', version: 'v1' }, rootNamespace: 'skiff-system', ref: 'demo/api' };

void test("policies apply by Istio's scope: mesh-wide, root selector in every namespace, own namespace, own-namespace selector", () => {
  const applied = applicableAuthorizationPolicies(mesh(SCOPES), API, () => undefined);
  assert.deepEqual(
    applied.map((p) => `${p.namespace}/${p.name} ${p.scope}`),
    ['demo/namespace-wide namespace', 'demo/selects-api workload', 'skiff-system/mesh-wide mesh', 'skiff-system/root-selects-api workload'],
  );
});

void test('the mesh config can move the root namespace', () => {
  const applied = applicableAuthorizationPolicies(mesh(SCOPES), { ...API, rootNamespace: 'shop' }, () => undefined);
  assert.deepEqual(
    applied.map((p) => `${p.namespace}/${p.name} ${p.scope}`),
    ['demo/namespace-wide namespace', 'demo/selects-api workload', 'shop/other-namespace mesh', 'shop/other-namespace-selects-api workload'],
  );
});

void test('a workload in the root namespace gets the root policies once', () => {
  const applied = applicableAuthorizationPolicies(mesh(SCOPES), { namespace: 'skiff-system', labels: { app: 'api' }, rootNamespace: 'skiff-system', ref: 'x' }, () => undefined);
  assert.deepEqual(
    applied.map((p) => p.name),
    ['mesh-wide', 'root-selects-api'],
  );
});

void test('normalised form: action defaults to ALLOW, empty lists drop out, rules keep their order', () => {
  const applied = applicableAuthorizationPolicies(
    mesh(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: demo}
spec:
  rules:
    - from: [{source: {principals: [], namespaces: ["a"]}}, {source: {ipBlocks: ["10.0.0.1"], notIpBlocks: []}}]
      to: [{operation: {methods: ["GET"], paths: []}}]
      when: [{key: source.ip, values: ["10.0.0.0/8"]}]
    - {}
`),
    API,
    () => undefined,
  );
  assert.deepEqual(applied, [
    {
      name: 'p',
      namespace: 'demo',
      action: 'ALLOW',
      dryRun: false,
      scope: 'namespace',
      rules: [
        { from: [{ namespaces: ['a'] }, { ipBlocks: ['10.0.0.1'] }], to: [{ methods: ['GET'] }], when: [{ key: 'source.ip', values: ['10.0.0.0/8'], notValues: [] }] },
        { from: [], to: [], when: [] },
      ],
    },
  ]);
});

void test('dry-run: Go boolean spellings, on ALLOW and DENY only', () => {
  assert.equal(parseGoBool('True'), true);
  assert.equal(parseGoBool('0'), false);
  assert.equal(parseGoBool('yes'), undefined);
  const snapshot = mesh(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny, namespace: demo, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: wet-allow, namespace: demo, annotations: {istio.io/dry-run: "false"}}
spec: {rules: [{}]}
`);
  const applied = applicableAuthorizationPolicies(snapshot, API, () => undefined);
  assert.deepEqual(
    applied.map((p) => [p.name, p.dryRun]),
    [
      ['dry-deny', true],
      ['wet-allow', false],
    ],
  );
});

void test('a policy with targetRef is not applied to a sidecar, and the log says so', () => {
  const warnings: string[] = [];
  const snapshot = mesh(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: ingress}]
  rules: [{}]
`);
  assert.deepEqual(applicableAuthorizationPolicies(snapshot, API, (m) => warnings.push(m)), []);
  assert.ok(warnings.some((w) => w.includes('AuthorizationPolicy/demo/gw uses targetRef')), warnings.join('\n'));
});

void test('buildProxyIR puts the applicable policies on every inbound listener and keeps the 2-argument call working', () => {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api, namespace: demo}
spec: {address: 198.18.0.1, serviceAccount: api, labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: demo}
spec:
  ingress:
    - {port: {number: 8080, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:18080"}
    - {port: {number: 5432, protocol: TCP, name: tcp}, defaultEndpoint: "127.0.0.1:15432"}
  egress: [{hosts: ["~/*"]}]
${SCOPES}`;
  const proxy = parseProxyNode({ id: 'sidecar~198.18.0.1~api.demo~demo.svc.cluster.local', metadata: { SERVICE_ACCOUNT: 'api', WORKLOAD_NAME: 'api' } }, 'cluster.local');
  const ir = buildProxyIR(mesh(yaml), proxy);
  assert.deepEqual(
    ir.inbound.map((l) => [l.port, l.authorization.map((p) => p.name)]),
    [
      [5432, ['namespace-wide', 'selects-api', 'mesh-wide', 'root-selects-api']],
      [8080, ['namespace-wide', 'selects-api', 'mesh-wide', 'root-selects-api']],
    ],
  );
  assert.deepEqual(ir.extAuthzProviders, []);
});
