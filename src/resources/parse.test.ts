import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue, parseResources } from './parse.js';

/** A valid ServiceEntry with its ports block replaced by `ports` (indented for `spec:`). */
function serviceEntry(ports: string): string {
  return [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata:',
    '  name: payments',
    '  namespace: prod',
    'spec:',
    '  hosts: [payments.prod.svc.cluster.local]',
    '  location: MESH_INTERNAL',
    '  resolution: STATIC',
    '  ports:',
    ports,
    '  workloadSelector:',
    '    labels: {app: payments}',
    '',
  ].join('\n');
}

function errorsOf(text: string, file = 'mesh/payments.yaml'): string[] {
  return parseResources(text, file).errors.map(formatIssue);
}

void describe('parseResources: bad input', () => {
  void it('reports invalid YAML syntax with its line and keeps nothing from that document', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: a\nspec:\n  address: [10.0.0.1\n  labels: {}\n';
    const r = parseResources(text, 'mesh/bad.yaml');
    assert.equal(r.resources.length, 0);
    assert.ok(r.errors.length >= 1);
    const first = r.errors[0]!;
    assert.equal(first.file, 'mesh/bad.yaml');
    assert.ok(first.line >= 6 && first.line <= 8, `line ${first.line}`);
    assert.match(formatIssue(first), /^mesh\/bad\.yaml:\d+: invalid YAML: /);
  });

  void it('reports duplicate keys as a YAML error', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nkind: ServiceEntry\n';
    assert.deepEqual(errorsOf(text, 'a.yaml'), ['a.yaml:3: invalid YAML: Map keys must be unique']);
  });

  void it('rejects an unknown kind, naming it and the supported kinds', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: Gateway2\nmetadata: {name: x}\n';
    assert.deepEqual(errorsOf(text, 'm.yaml'), [
      'm.yaml:2 kind: unknown kind "Gateway2" (supported: WorkloadEntry, WorkloadGroup, ServiceEntry, Sidecar, PeerAuthentication, AuthorizationPolicy, RequestAuthentication, ' +
        'DestinationRule, VirtualService, HTTPRoute, GRPCRoute)',
    ]);
  });

  void it('parses the traffic kinds: a VirtualService without spec is a missing-field error, not an unsupported kind', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n';
    assert.deepEqual(errorsOf(text, 'm.yaml'), ['m.yaml:1 spec: required field is missing (expected object)']);
  });

  void it('rejects an apiVersion the kind does not have', () => {
    const text = 'apiVersion: security.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\n';
    assert.deepEqual(errorsOf(text, 'm.yaml'), [
      'm.yaml:1 apiVersion: apiVersion "security.istio.io/v1" is not supported for kind ServiceEntry ' +
        '(expected networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3)',
    ]);
  });

  void it('names file, line and JSON path for a port name where a number belongs', () => {
    const text = serviceEntry('    - name: http\n      number: http\n      protocol: HTTP');
    // Line 12 is `number: http`.
    assert.deepEqual(errorsOf(text), ['mesh/payments.yaml:12 spec.ports[0].number: expected integer 1-65535, got "http"']);
  });

  void it('rejects a port number out of range', () => {
    const text = serviceEntry('    - {name: http, number: 70000}');
    assert.deepEqual(errorsOf(text), ['mesh/payments.yaml:11 spec.ports[0].number: expected integer 1-65535, got 70000']);
  });

  void it('rejects two ports with one number in a ServiceEntry', () => {
    const text = serviceEntry('    - {name: http, number: 8080, protocol: HTTP}\n    - {name: grpc, number: 8080, protocol: GRPC}');
    assert.deepEqual(errorsOf(text), ['mesh/payments.yaml:12 spec.ports[1].number: port number 8080 is already defined by ports[0]']);
  });

  void it('rejects two ports with one name in a ServiceEntry', () => {
    const text = serviceEntry('    - {name: http, number: 8080}\n    - {name: http, number: 8081}');
    assert.deepEqual(errorsOf(text), ['mesh/payments.yaml:12 spec.ports[1].name: port name "http" is already used by ports[0]']);
  });

  void it('rejects an unknown field with its path and line', () => {
    const text = serviceEntry('    - name: http\n      number: 8080\n      protcol: HTTP');
    assert.deepEqual(errorsOf(text), ['mesh/payments.yaml:13 spec.ports[0].protcol: unknown field "protcol"']);
  });

  void it('rejects an unknown top-level field', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a}\nspec: {address: 10.0.0.1}\nstatus: {}\n';
    assert.deepEqual(errorsOf(text, 'w.yaml'), ['w.yaml:5 status: unknown field "status" (filled in by a Kubernetes API server; remove it)']);
    const exported = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a, uid: 1f2e, labelz: {}}\nspec: {address: 10.0.0.1}\n';
    assert.deepEqual(errorsOf(exported, 'w.yaml'), [
      'w.yaml:3 metadata.uid: unknown field "uid" (filled in by a Kubernetes API server; remove it)',
      'w.yaml:3 metadata.labelz: unknown field "labelz"',
    ]);
  });

  void it('reports a missing required field at its nearest existing parent', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  namespace: demo\nspec: {address: 10.0.0.1}\n';
    assert.deepEqual(errorsOf(text, 'w.yaml'), ['w.yaml:3 metadata.name: required field is missing (expected string)']);
  });

  void it('rejects a wrong enum value, listing the allowed ones', () => {
    const text = 'apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec:\n  mtls:\n    mode: strict\n';
    assert.deepEqual(errorsOf(text, 'p.yaml'), ['p.yaml:6 spec.mtls.mode: expected UNSET|DISABLE|PERMISSIVE|STRICT, got "strict"']);
  });

  void it('rejects an invalid resource name and namespace (DNS-1123)', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: My_VM, namespace: Prod}\nspec: {address: 10.0.0.1}\n';
    const errors = errorsOf(text, 'w.yaml');
    assert.equal(errors.length, 2);
    assert.match(errors[0]!, /^w\.yaml:3 metadata\.name: invalid name "My_VM"/);
    assert.match(errors[1]!, /^w\.yaml:3 metadata\.namespace: invalid namespace "Prod"/);
  });

  void it('quotes label keys that are not identifiers in the path', () => {
    const text = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a}\nspec:\n  address: 10.0.0.1\n  labels:\n    app.kubernetes.io/name: "bad value!"\n';
    assert.deepEqual(errorsOf(text, 'w.yaml'), ['w.yaml:7 spec.labels["app.kubernetes.io/name"]: invalid label value "bad value!"']);
  });

  void it('rejects a document that is not a resource', () => {
    assert.deepEqual(errorsOf('just a string\n', 'x.yaml'), [
      'x.yaml:1: expected a resource (an object with apiVersion, kind, metadata and spec), got "just a string"',
    ]);
  });

  void it('keeps valid documents and reports the invalid one in a multi-document file', () => {
    const good = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a, namespace: demo}\nspec: {address: 10.0.0.1}\n';
    const bad = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: b}\nspec: {address: 10.0.0.300}\n';
    const r = parseResources(`${good}---\n${bad}`, 'm.yaml');
    assert.deepEqual(r.resources.map((x) => x.metadata.name), ['a']);
    assert.deepEqual(r.errors.map(formatIssue), ['m.yaml:9 spec.address: expected an IP address, got "10.0.0.300"']);
  });
});

void describe('parseResources: valid input', () => {
  void it('parses multi-document YAML, skips empty documents and sets origin and default namespace', () => {
    const text = [
      '# leading comment',
      '---',
      '---',
      'apiVersion: networking.istio.io/v1beta1',
      'kind: WorkloadEntry',
      'metadata: {name: vm-1}',
      'spec:',
      '  address: 10.0.0.1',
      '  serviceAccount: api',
      '  labels: {app: api}',
      '  ports: {http: 18080}',
      '---',
      'apiVersion: security.istio.io/v1',
      'kind: PeerAuthentication',
      'metadata: {name: default, namespace: skiff-system}',
      'spec: {mtls: {mode: STRICT}}',
      '',
    ].join('\n');
    const r = parseResources(text, 'mesh/a.yaml');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.resources.length, 2);
    const [we, pa] = r.resources;
    assert.equal(we?.kind, 'WorkloadEntry');
    assert.equal(we?.metadata.namespace, 'default');
    assert.deepEqual(we?.origin, { source: 'file', file: 'mesh/a.yaml', line: 4 });
    assert.deepEqual(we?.spec, { address: '10.0.0.1', serviceAccount: 'api', labels: { app: 'api' }, ports: { http: 18080 } });
    assert.deepEqual(pa?.spec, { mtls: { mode: 'STRICT' } });
    assert.equal(pa?.origin?.line, 13);
  });

  void it('accepts JSON, a top-level array of resources and a kind: List', () => {
    const json = JSON.stringify([
      { apiVersion: 'networking.istio.io/v1alpha3', kind: 'WorkloadEntry', metadata: { name: 'a' }, spec: { address: '10.0.0.1' } },
      { apiVersion: 'networking.istio.io/v1alpha3', kind: 'WorkloadEntry', metadata: { name: 'b' }, spec: { address: 'fd00::2' } },
    ], null, 2);
    const r = parseResources(json, 'mesh/a.json', { source: 'api' });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.resources.map((x) => [x.metadata.name, x.origin?.source, x.origin?.line]), [['a', 'api', 2], ['b', 'api', 12]]);

    const list = 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: WorkloadEntry\n  metadata: {name: c}\n  spec: {address: 10.0.0.3, weight: x}\n';
    assert.deepEqual(errorsOf(list, 'l.yaml'), ['l.yaml:7 items[0].spec.weight: expected number, got "x"']);
  });

  void it('reports a JSON error with its line', () => {
    const r = parseResources('{\n  "kind": "WorkloadEntry",\n  "metadata": {"name": "a"\n}\n', 'a.json');
    assert.equal(r.resources.length, 0);
    assert.ok(r.errors.length >= 1);
    assert.ok(r.errors[0]!.line > 0);
  });

  void it('normalises protocol names to Istio spelling, case-insensitively', () => {
    const text = serviceEntry('    - {name: http, number: 80, protocol: http}\n    - {name: grpc, number: 90, protocol: gRPC}\n    - {name: mongo, number: 27017, protocol: MONGO}');
    const r = parseResources(text, 'x.yaml');
    assert.deepEqual(r.errors, []);
    const se = r.resources[0];
    assert.equal(se?.kind, 'ServiceEntry');
    if (se?.kind !== 'ServiceEntry') return;
    assert.deepEqual(se.spec.ports?.map((p) => p.protocol), ['HTTP', 'GRPC', 'Mongo']);
  });

  void it('warns about fields parsed but not implemented, never ignoring them silently', () => {
    const text = [
      'apiVersion: networking.istio.io/v1',
      'kind: ServiceEntry',
      'metadata: {name: ext}',
      'spec:',
      '  hosts: [api.example.com]',
      '  resolution: DNS',
      '  ports: [{name: https, number: 443, protocol: TLS}]',
      '---',
      'apiVersion: networking.istio.io/v1',
      'kind: Sidecar',
      'metadata: {name: s}',
      'spec:',
      '  ingress:',
      '  - port: {number: 80, name: http}',
      '    captureMode: IPTABLES',
      '    defaultEndpoint: 127.0.0.1:8080',
      '  outboundTrafficPolicy: {mode: ALLOW_ANY}',
      '',
    ].join('\n');
    const r = parseResources(text, 'w.yaml');
    assert.deepEqual(r.errors, []);
    assert.equal(r.resources.length, 2);
    assert.deepEqual(r.warnings.map(formatIssue), [
      'w.yaml:6 spec.resolution: resolution DNS is not implemented yet (Skiff implements STATIC)',
      'w.yaml:4 spec.location: location is unset (Istio default MESH_EXTERNAL), which is not implemented yet: set location: MESH_INTERNAL',
      'w.yaml:15 spec.ingress[0].captureMode: captureMode IPTABLES is not implemented yet (Skiff runs in explicit mode: captureMode NONE)',
      'w.yaml:17 spec.outboundTrafficPolicy.mode: outboundTrafficPolicy ALLOW_ANY is not implemented yet: only services in the registry are reachable (REGISTRY_ONLY)',
    ]);
  });
});
