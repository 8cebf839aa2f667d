import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lintPolicies } from '../policy/index.js';
import { buildSnapshot } from '../registry/snapshot.js';
import type { MeshSnapshot } from '../registry/types.js';
import { validateResourceSet } from '../resources/validate.js';
import { ROOT_NAMESPACE, resourceKey, type MeshResource, type ResourceIssue } from '../resources/types.js';
import { ApiError } from './errors.js';
import { checkMeshReferences, meshWarnings, parseResourceBody, REQUEST_BODY, type ParsedBody } from './resource-body.js';

/** A mesh from files: services with HTTP and TCP ports, workloads, Sidecars, DestinationRules, policies in the root namespace. */
function mesh(): MeshSnapshot {
  const file = (line: number) => ({ source: 'file' as const, file: 'mesh.yaml', line });
  const resources: MeshResource[] = [];
  for (const ns of ['shop', 'bank', 'vault']) {
    for (let j = 0; j < 4; j++) {
      const tcp = j === 3;
      resources.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: `svc-${j}`, namespace: ns },
        spec: {
          hosts: [`svc-${j}.${ns}.mesh`],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          ports: [tcp ? { number: 5432, name: 'tcp-pg', protocol: 'TCP' } : { number: 80, name: 'http', protocol: 'HTTP' }],
          workloadSelector: { labels: { app: `svc-${j}` } },
        },
        origin: file(1),
      });
      for (let w = 0; w < 3; w++) {
        resources.push({
          apiVersion: 'networking.istio.io/v1',
          kind: 'WorkloadEntry',
          metadata: { name: `svc-${j}-${w}`, namespace: ns },
          spec: { address: `10.${j}.${w}.1`, labels: { app: `svc-${j}` }, serviceAccount: 'default' },
          origin: file(2),
        });
      }
    }
    resources.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'svc-0', namespace: ns },
      spec: { host: `svc-0.${ns}.mesh`, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
      origin: file(3),
    });
  }
  resources.push({
    apiVersion: 'networking.istio.io/v1',
    kind: 'Sidecar',
    metadata: { name: 'default', namespace: 'bank' },
    spec: { ingress: [{ port: { number: 9000, protocol: 'TCP', name: 'tcp' }, defaultEndpoint: '127.0.0.1:9000' }] },
    origin: file(4),
  });
  resources.push({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'ext', namespace: ROOT_NAMESPACE },
    spec: { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] },
    origin: file(5),
  });
  return buildSnapshot(1, resources);
}

/** The checks as they were: against every resource of the mesh. */
function wholeMeshErrors(incoming: ParsedBody, snapshot: MeshSnapshot): ResourceIssue[] {
  const keys = new Set(incoming.resources.map(resourceKey));
  const merged = [...snapshot.resources.filter((r) => !keys.has(resourceKey(r))), ...incoming.resources];
  return validateResourceSet(merged, incoming.locate, { references: true }).errors.filter((e) => e.file === REQUEST_BODY);
}

/** `meshWarnings` as it was: the policy lint against every resource of the mesh. */
function wholeMeshWarnings(incoming: ParsedBody, snapshot: MeshSnapshot): ResourceIssue[] {
  const keys = new Set(incoming.resources.map(resourceKey));
  const seNamespaces = new Set(incoming.resources.filter((r) => r.kind === 'ServiceEntry').map((r) => r.metadata.namespace));
  const sidecarNamespaces = new Set(incoming.resources.filter((r) => r.kind === 'Sidecar').map((r) => r.metadata.namespace));
  const context: MeshResource[] = [];
  for (const ns of seNamespaces) context.push(...(snapshot.workloadsByNamespace.get(ns) ?? []));
  if (sidecarNamespaces.size > 0) {
    context.push(...snapshot.serviceEntries);
    for (const ns of sidecarNamespaces) context.push(...(snapshot.sidecarsByNamespace.get(ns) ?? []));
  }
  const merged = [...context.filter((r) => !keys.has(resourceKey(r))), ...incoming.resources];
  const { warnings } = validateResourceSet(merged, incoming.locate);
  const policyWarnings = incoming.resources.some((r) => r.kind === 'AuthorizationPolicy' || r.kind === 'RequestAuthentication')
    ? lintPolicies([...snapshot.resources.filter((r) => !keys.has(resourceKey(r))), ...incoming.resources], { rootNamespace: ROOT_NAMESPACE, locate: incoming.locate })
    : [];
  return [...incoming.warnings, ...[...warnings, ...policyWarnings].filter((w) => w.file === REQUEST_BODY)];
}

function referenceErrors(incoming: ParsedBody, snapshot: MeshSnapshot): ResourceIssue[] {
  try {
    checkMeshReferences(incoming, snapshot);
    return [];
  } catch (err) {
    assert.ok(err instanceof ApiError && err.status === 422, String(err));
    return (err.errors ?? []).map((e) => ({ file: REQUEST_BODY, line: e.line ?? 0, path: e.path, message: e.message }));
  }
}

const BODIES: Record<string, string> = {
  'VirtualService to an unknown host, an unknown subset and a missing port': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: refs, namespace: shop}
spec:
  hosts: [svc-0.shop.mesh]
  http:
  - route:
    - destination: {host: nowhere.shop.mesh}
  - route:
    - destination: {host: svc-0.shop.mesh, subset: v9}
  - route:
    - destination: {host: svc-1.bank.mesh, subset: v1, port: {number: 81}}
`,
  'VirtualService with good references': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: good, namespace: shop}
spec:
  hosts: [svc-0.shop.mesh]
  http:
  - route:
    - destination: {host: svc-0.shop.mesh, subset: v1, port: {number: 80}}
`,
  'HTTPRoute naming a ServiceEntry that does not exist, and one that does': `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: bank}
spec:
  parentRefs:
  - {group: networking.istio.io, kind: ServiceEntry, name: svc-9}
  - {group: networking.istio.io, kind: ServiceEntry, name: svc-1, port: 8080}
`,
  'a DestinationRule replacing a file one (the subset disappears) with a VirtualService using it': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-0-api, namespace: vault}
spec: {host: svc-1.vault.mesh, subsets: [{name: blue, labels: {v: b}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: blue, namespace: vault}
spec:
  hosts: [svc-1.vault.mesh]
  http: [{route: [{destination: {host: svc-1.vault.mesh, subset: blue}}]}, {route: [{destination: {host: svc-0.vault.mesh, subset: blue}}]}]
`,
  'ALLOW with HTTP-only fields on a TCP service, a policy for nobody, a RequestAuthentication on TCP only': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db-get-only, namespace: vault}
spec:
  selector: {matchLabels: {app: svc-3}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nobody, namespace: vault}
spec:
  selector: {matchLabels: {app: none}}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: vault}
spec:
  selector: {matchLabels: {app: svc-3}}
  jwtRules: [{issuer: https://issuer.example, jwksUri: https://issuer.example/jwks}]
`,
  'DENY with HTTP-only fields in a namespace whose Sidecar makes every port TCP': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-post, namespace: bank}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: [POST]}}]}]
`,
  'a WorkloadEntry with a second CUSTOM provider on it': `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: new-we, namespace: shop}
spec: {address: 10.99.0.1, labels: {app: svc-0}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext2, namespace: shop}
spec:
  action: CUSTOM
  provider: {name: other}
  selector: {matchLabels: {app: svc-0}}
  rules: [{}]
`,
  'a mesh-wide policy in the root namespace': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-get-only, namespace: ${ROOT_NAMESPACE}}
spec:
  rules: [{to: [{operation: {paths: [/api]}}]}]
`,
};

void describe('API mesh checks against the resources they need', () => {
  const snapshot = mesh();
  for (const [name, text] of Object.entries(BODIES)) {
    void it(`report what the checks against the whole mesh report: ${name}`, () => {
      const body = parseResourceBody(text);
      const errors = referenceErrors(body, snapshot);
      const expectedErrors = wholeMeshErrors(body, snapshot);
      assert.deepEqual(
        errors.map((e) => [e.path, e.message, e.line]),
        expectedErrors.map((e) => [e.path, e.message, e.line]),
      );
      assert.deepEqual(meshWarnings(body, snapshot), wholeMeshWarnings(body, snapshot));
    });
  }

  void it('find what they are meant to find in these bodies (the comparison above is not vacuous)', () => {
    const refs = referenceErrors(parseResourceBody(BODIES['VirtualService to an unknown host, an unknown subset and a missing port']!), snapshot).map((e) => e.message);
    assert.equal(refs.length, 4, refs.join('\n'));
    assert.equal(referenceErrors(parseResourceBody(BODIES['HTTPRoute naming a ServiceEntry that does not exist, and one that does']!), snapshot).length, 2);
    assert.equal(referenceErrors(parseResourceBody(BODIES['a DestinationRule replacing a file one (the subset disappears) with a VirtualService using it']!), snapshot).length, 1);
    const lint = (n: string) => meshWarnings(parseResourceBody(BODIES[n]!), snapshot).map((w) => w.message);
    const policy = lint('ALLOW with HTTP-only fields on a TCP service, a policy for nobody, a RequestAuthentication on TCP only');
    assert.ok(policy.some((m) => /never matches on TCP ports/.test(m)) && policy.some((m) => /applies to no WorkloadEntry/.test(m)) && policy.some((m) => /JWT rules apply to HTTP ports only/.test(m)), policy.join('\n'));
    assert.ok(lint('DENY with HTTP-only fields in a namespace whose Sidecar makes every port TCP').some((m) => /bank\/svc-0-0:9000/.test(m)));
    assert.ok(lint('a WorkloadEntry with a second CUSTOM provider on it').some((m) => /several providers/.test(m)));
    assert.ok(lint('a mesh-wide policy in the root namespace').some((m) => /vault\/svc-3-0:5432/.test(m)));
  });
});
