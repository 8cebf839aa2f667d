import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSnapshot } from '../registry/snapshot.js';
import type { MeshResource, ServiceEntry, ServicePort, WorkloadEntry } from '../resources/types.js';
import { serviceEndpoints, visibleServices } from './services.js';

const HOST = 'web.service.consul';

function se(name: string, namespace: string, source: 'file' | 'consul', ports: ServicePort[], selector: Record<string, string>): ServiceEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace },
    spec: { hosts: [HOST], ports, resolution: 'STATIC', location: 'MESH_INTERNAL', workloadSelector: { labels: selector } },
    origin: { source },
  };
}

function we(name: string, namespace: string, address: string, labels: Record<string, string>, ports?: Record<string, number>): WorkloadEntry {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace }, spec: { address, labels, ...(ports ? { ports } : {}) } };
}

const fileSe = se('web', 'shop', 'file', [{ number: 8080, name: 'http', protocol: 'HTTP' }], { app: 'web' });
const fileWe = we('web-file', 'shop', '10.0.0.1', { app: 'web' });
const consulLabels = { 'skiff.dev/source': 'consul', 'skiff.dev/consul-service': 'web' };

function endpointsOf(resources: MeshResource[], proxyNamespace = 'shop'): { warnings: string[]; ports: ServicePort[]; byPort: Record<number, string[]> } {
  const snapshot = buildSnapshot(1, resources);
  const warnings: string[] = [];
  const services = visibleServices(snapshot, proxyNamespace, (m) => void warnings.push(m));
  assert.equal(services.length, 1, JSON.stringify(services.map((s) => s.host)));
  const svc = services[0]!;
  const byPort: Record<number, string[]> = {};
  for (const p of svc.ports) byPort[p.number] = serviceEndpoints(snapshot, svc, p, 'cluster.local', (m) => void warnings.push(m)).map((e) => `${e.ip}:${e.port}`).sort();
  return { warnings, ports: [...svc.ports], byPort };
}

describe('one host from two sources: ServiceEntries of one namespace merge', () => {
  it('a file ServiceEntry and a Consul one for the same host serve the endpoints of both', () => {
    const out = endpointsOf([fileSe, fileWe, se('consul-web', 'shop', 'consul', [{ number: 8080, name: 'http', protocol: 'HTTP' }], consulLabels), we('web-abc', 'shop', '10.0.0.2', consulLabels, { http: 8080 })]);
    assert.deepEqual(out.byPort, { 8080: ['10.0.0.1:8080', '10.0.0.2:8080'] });
    assert.deepEqual(out.warnings, []);
  });

  it('port definitions that disagree: a conflict naming both ServiceEntries and sources; each keeps its own port mapping', () => {
    // Without creation timestamps the oldest-first order falls back to names: consul-web < web.
    const out = endpointsOf([
      fileSe,
      we('web-file', 'shop', '10.0.0.1', { app: 'web' }, { http: 7070 }),
      se('consul-web', 'shop', 'consul', [{ number: 8080, name: 'tcp', protocol: 'TCP' }], consulLabels),
      we('web-abc', 'shop', '10.0.0.2', consulLabels, { tcp: 9080 }),
    ]);
    assert.deepEqual(out.ports, [{ number: 8080, name: 'tcp', protocol: 'TCP' }]);
    assert.deepEqual(out.byPort, { 8080: ['10.0.0.1:7070', '10.0.0.2:9080'] });
    assert.deepEqual(out.warnings, [
      "conflict: host web.service.consul port 8080 is tcp/TCP in ServiceEntry/shop/consul-web (consul) but http/HTTP in ServiceEntry/shop/web (file): using ServiceEntry/shop/consul-web (consul)'s; the endpoints of both are served",
    ]);
  });

  it('a port only the second ServiceEntry has is added, with its endpoints only', () => {
    const out = endpointsOf([
      fileSe,
      fileWe,
      se('consul-web', 'shop', 'consul', [{ number: 8080, name: 'http', protocol: 'HTTP' }, { number: 9090, name: 'grpc', protocol: 'GRPC' }], consulLabels),
      we('web-abc', 'shop', '10.0.0.2', consulLabels, { grpc: 19090 }),
    ]);
    assert.deepEqual(out.ports.map((p) => p.number), [8080, 9090]);
    assert.deepEqual(out.byPort, { 8080: ['10.0.0.1:8080', '10.0.0.2:8080'], 9090: ['10.0.0.2:19090'] });
  });

  it('a WorkloadEntry both ServiceEntries select is one endpoint', () => {
    const both = we('web-both', 'shop', '10.0.0.3', { app: 'web', ...consulLabels });
    const out = endpointsOf([fileSe, both, se('consul-web', 'shop', 'consul', [{ number: 8080, name: 'http', protocol: 'HTTP' }], consulLabels)]);
    assert.deepEqual(out.byPort, { 8080: ['10.0.0.3:8080'] });
  });

  it('ServiceEntries of other namespaces are not merged (the own namespace wins, as before)', () => {
    const out = endpointsOf([fileSe, fileWe, se('consul-web', 'fleet', 'consul', [{ number: 8080, name: 'http', protocol: 'HTTP' }], consulLabels), we('web-abc', 'fleet', '10.0.0.2', consulLabels)]);
    assert.deepEqual(out.byPort, { 8080: ['10.0.0.1:8080'] });
    assert.deepEqual(out.warnings, ['host web.service.consul is defined by ServiceEntry/shop/web, ServiceEntry/fleet/consul-web: using ServiceEntry/shop/web']);
  });
});
