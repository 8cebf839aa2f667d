import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseResources } from './parse.js';
import type { WorkloadGroup } from './types.js';

/** Parses one WorkloadGroup given as an object; returns its `path: message` errors and warnings. */
function parse(spec: unknown, apiVersion = 'networking.istio.io/v1'): { errors: string[]; warnings: string[]; group?: WorkloadGroup } {
  const text = JSON.stringify({ apiVersion, kind: 'WorkloadGroup', metadata: { name: 'reviews', namespace: 'bookinfo' }, spec });
  const r = parseResources(text, 'g.json');
  return {
    errors: r.errors.map((e) => `${e.path}: ${e.message}`),
    warnings: r.warnings.map((e) => `${e.path}: ${e.message}`),
    group: r.resources[0] as WorkloadGroup | undefined,
  };
}
const errors = (spec: unknown): string[] => parse(spec).errors;

// The example of Istio's WorkloadGroup reference page, in substance.
const istioExample = {
  metadata: { labels: { 'app.kubernetes.io/name': 'reviews', 'app.kubernetes.io/version': '1.3.4' } },
  template: { ports: { grpc: 3550, http: 8080 }, serviceAccount: 'default' },
  probe: {
    initialDelaySeconds: 5,
    timeoutSeconds: 3,
    periodSeconds: 4,
    successThreshold: 3,
    failureThreshold: 3,
    httpGet: { path: '/foo/bar', host: '127.0.0.1', port: 3100, scheme: 'HTTPS', httpHeaders: [{ name: 'Lit-Header', value: 'Im-The-Best' }] },
  },
};

void describe('WorkloadGroup schema (Istio networking.istio.io WorkloadGroup)', () => {
  void it("accepts Istio's reference example in every networking apiVersion, as written", () => {
    for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
      const r = parse(istioExample, v);
      assert.deepEqual(r.errors, [], v);
      assert.deepEqual(r.warnings, [], v);
      assert.deepEqual(r.group?.spec, istioExample);
    }
  });

  void it('accepts tcpSocket and exec probes, and a group without a probe', () => {
    assert.deepEqual(errors({ template: {}, probe: { tcpSocket: { port: 9000 } } }), []);
    assert.deepEqual(errors({ template: {}, probe: { exec: { command: ['/usr/bin/check', '--quick'] }, periodSeconds: 1 } }), []);
    assert.deepEqual(errors({ template: { serviceAccount: 'reviews', labels: { app: 'reviews' } } }), []);
  });

  void it('requires a template (the generated entries come from it)', () => {
    assert.deepEqual(errors({ metadata: { labels: { app: 'x' } } }), ['spec.template: required field is missing (expected object)']);
  });

  void it('requires exactly one probe method', () => {
    assert.deepEqual(errors({ template: {}, probe: { periodSeconds: 5 } }), ['spec.probe: a probe needs one check method: httpGet, tcpSocket, exec or grpc']);
    assert.deepEqual(errors({ template: {}, probe: { httpGet: { port: 80 }, tcpSocket: { port: 80 } } }), ['spec.probe.tcpSocket: only one check method may be set, got httpGet and tcpSocket']);
  });

  void it('checks probe ports, schemes, paths, header names and commands', () => {
    assert.deepEqual(errors({ template: {}, probe: { httpGet: { path: '/' } } }), ['spec.probe.httpGet.port: expected integer 1-65535, got nothing']);
    assert.deepEqual(errors({ template: {}, probe: { tcpSocket: { port: 0 } } }), ['spec.probe.tcpSocket.port: expected integer 1-65535, got 0']);
    assert.deepEqual(errors({ template: {}, probe: { httpGet: { port: 80, scheme: 'https' } } }), ['spec.probe.httpGet.scheme: expected HTTP or HTTPS, got "https"']);
    assert.deepEqual(errors({ template: {}, probe: { httpGet: { port: 80, path: 'healthz' } } }), ['spec.probe.httpGet.path: path "healthz" must start with "/"']);
    assert.deepEqual(errors({ template: {}, probe: { httpGet: { port: 80, httpHeaders: [{ name: 'X_Bad', value: 'v' }] } } }), [
      `spec.probe.httpGet.httpHeaders[0].name: invalid header name "X_Bad": only letters, digits and '-' are allowed`,
    ]);
    assert.deepEqual(errors({ template: {}, probe: { exec: { command: [] } } }), ['spec.probe.exec.command: exec.command is required: the program to run and its arguments']);
    assert.deepEqual(errors({ template: {}, probe: { tcpSocket: { port: 80, host: 'not a host' } } }), ['spec.probe.tcpSocket.host: invalid probe host "not a host": expected an IP address or a DNS name']);
  });

  void it('refuses negative probe timings (Istio validateReadinessProbe)', () => {
    assert.deepEqual(errors({ template: {}, probe: { tcpSocket: { port: 80 }, periodSeconds: -1, failureThreshold: 1.5 } }), [
      'spec.probe.periodSeconds: expected >= 0, got -1',
      'spec.probe.failureThreshold: expected integer, got 1.5',
    ]);
  });

  void it('checks labels, the template service account and unknown fields', () => {
    assert.deepEqual(errors({ metadata: { labels: { 'bad key!': 'x' } }, template: {} }).length, 1);
    assert.deepEqual(errors({ template: { serviceAccount: 'Not_Valid' } }), ['spec.template.serviceAccount: invalid service account "Not_Valid": must be a lower-case DNS-1123 subdomain']);
    assert.deepEqual(errors({ template: {}, probes: {} }), ['spec.probes: unknown field "probes"']);
    assert.deepEqual(errors({ template: { adress: '10.0.0.1' } }), ['spec.template.adress: unknown field "adress"']);
  });

  void it('warns that a template address is replaced and that gRPC probes are not run', () => {
    const r = parse({ template: { address: '10.0.0.1', network: 'n1' }, probe: { grpc: { port: 9000 } } });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, [
      'spec.template.address: template.address is ignored: each registered workload gets the address its agent reports',
      'spec.template.network: network is not implemented yet (Skiff assumes one flat network)',
      'spec.probe.grpc: grpc probes are not implemented yet: agents of this group report no health (the workloads count as healthy)',
    ]);
    assert.deepEqual(errors({ template: { address: 'vm.example.com' } }).length, 1);
  });
});
