import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue, parseResources } from './parse.js';
import { hostsOverlap, validateResourceSet } from './validate.js';

const WE = (name: string, labels: string, ns = 'demo'): string =>
  `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  address: 10.0.0.1\n  labels: ${labels}\n`;
const SE = (name: string, host: string, selector: string, ns = 'demo'): string =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  hosts: [${host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{name: http, number: 80, protocol: HTTP}]\n  workloadSelector:\n    labels: ${selector}\n`;

function check(text: string): { errors: string[]; warnings: string[] } {
  const parsed = parseResources(text, 'mesh.yaml');
  assert.deepEqual(parsed.errors, []);
  const r = validateResourceSet(parsed.resources, parsed.locate);
  return { errors: r.errors.map(formatIssue), warnings: r.warnings.map(formatIssue) };
}

void describe('validateResourceSet', () => {
  void it('rejects a duplicate Kind/namespace/name, naming both locations', () => {
    const text = `${WE('vm-1', '{app: a}')}---\n${WE('vm-1', '{app: b}')}`;
    const r = check(text);
    assert.deepEqual(r.errors, ['mesh.yaml:10 metadata.name: duplicate WorkloadEntry demo/vm-1: also defined at mesh.yaml:1']);
  });

  void it('accepts one name in two namespaces and two kinds', () => {
    const text = `${WE('api', '{app: api}')}---\n${WE('api', '{app: api}', 'prod')}---\n${SE('api', 'api.demo.svc', '{app: api}')}`;
    assert.deepEqual(check(text), { errors: [], warnings: [] });
  });

  void it('warns (does not reject) when a ServiceEntry selects no WorkloadEntry yet', () => {
    const text = `${SE('api', 'api.demo.svc', '{app: api}')}---\n${WE('vm-1', '{app: api}', 'prod')}`;
    assert.deepEqual(check(text), {
      errors: [],
      warnings: ['mesh.yaml:9 spec.workloadSelector: selects no WorkloadEntry in namespace demo yet: the service has no endpoints'],
    });
  });

  void it('selects by WorkloadEntry metadata labels too (Istio merges them)', () => {
    const we = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm, namespace: demo, labels: {app: api}}\nspec: {address: 10.0.0.1}\n';
    assert.deepEqual(check(`${SE('api', 'api.demo.svc', '{app: api}')}---\n${we}`).warnings, []);
  });

  void it('warns when a Sidecar egress host names no known service', () => {
    const sidecar = [
      'apiVersion: networking.istio.io/v1',
      'kind: Sidecar',
      'metadata: {name: s, namespace: demo}',
      'spec:',
      '  egress:',
      '  - port: {number: 9000}',
      '    hosts:',
      '    - ./api.demo.svc',
      '    - prod/api.demo.svc',
      '    - "*/*.demo.svc"',
      '    - ~/*',
      '',
    ].join('\n');
    const r = check(`${SE('api', 'api.demo.svc', '{app: api}')}---\n${WE('vm', '{app: api}')}---\n${sidecar}`);
    assert.deepEqual(r, { errors: [], warnings: ['mesh.yaml:27 spec.egress[0].hosts[1]: egress host "prod/api.demo.svc" names no known service'] });
  });

  void it('matches every selector label, metadata labels taking precedence, and an empty selector matches any workload', () => {
    const weMeta = (name: string, meta: string, spec: string): string =>
      `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${name}, namespace: demo, labels: ${meta}}\nspec:\n  address: 10.0.0.2\n  labels: ${spec}\n`;
    const text = [
      SE('both', 'both.demo.svc', '{app: api, version: v1}'), // vm-1 has both labels
      SE('half', 'half.demo.svc', '{app: api, version: v2}'), // app matches, version does not
      SE('over', 'over.demo.svc', '{app: web}'), // spec says web, metadata overrides it to api
      SE('meta', 'meta.demo.svc', '{app: api, tier: back}'), // tier only in metadata labels
      SE('any', 'any.demo.svc', '{}'),
      WE('vm-1', '{app: api, version: v1}'),
      weMeta('vm-2', '{app: api, tier: back}', '{app: web}'),
    ].join('---\n');
    const r = check(text);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.warnings.map((w) => w.replace(/^mesh\.yaml:\d+ /, '')),
      ['spec.workloadSelector: selects no WorkloadEntry in namespace demo yet: the service has no endpoints', 'spec.workloadSelector: selects no WorkloadEntry in namespace demo yet: the service has no endpoints'],
    );
    assert.deepEqual(r.warnings.map((w) => w.split(' ')[0]), ['mesh.yaml:20', 'mesh.yaml:31'], 'the warnings are on "half" and "over"');
  });

  void it('finds Sidecar egress hosts served by wildcard ServiceEntry hosts, and wildcard egress hosts', () => {
    const sidecar = [
      'apiVersion: networking.istio.io/v1',
      'kind: Sidecar',
      'metadata: {name: s, namespace: demo}',
      'spec:',
      '  egress:',
      '  - hosts: [./api.example.com, "*/*.example.com", "*/*.other.com", "./*"]',
      '',
    ].join('\n');
    const r = check(`${SE('ext', '"*.example.com"', '{app: api}')}---\n${WE('vm', '{app: api}')}---\n${sidecar}`);
    assert.deepEqual(r, { errors: [], warnings: ['mesh.yaml:24 spec.egress[0].hosts[2]: egress host "*/*.other.com" names no known service'] });
  });

  void it('matches wildcard hosts either way', () => {
    assert.ok(hostsOverlap('*.demo.svc', 'api.demo.svc'));
    assert.ok(hostsOverlap('api.demo.svc', '*.demo.svc'));
    assert.ok(hostsOverlap('*', 'x.y'));
    assert.ok(!hostsOverlap('*.prod.svc', 'api.demo.svc'));
  });
});
