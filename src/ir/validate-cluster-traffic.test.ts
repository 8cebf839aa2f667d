import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OutboundClusterIR, ProxyIR } from './types.js';
import { validateClusterTraffic } from './validate.js';

function ir(cluster: Partial<OutboundClusterIR>, endpoints: ProxyIR['loadAssignments'][number]['endpoints'] = [], localityWeights?: Record<string, number>): ProxyIR {
  const name = 'outbound|80||b.example.com';
  const c: OutboundClusterIR = {
    direction: 'outbound',
    name,
    host: 'b.example.com',
    port: 80,
    serviceNamespace: 'demo',
    protocol: 'HTTP',
    tls: { mode: 'ISTIO_MUTUAL', sni: 'outbound_.80_._.b.example.com', subjectAltNames: [] },
    ...cluster,
  };
  return {
    proxy: { nodeId: 'n', ip: '198.18.0.1', namespace: 'demo', serviceAccount: 'a', labels: {}, trustDomain: 'cluster.local', spiffeId: 'spiffe://cluster.local/ns/demo/sa/a' },
    inbound: [],
    outbound: [],
    clusters: [c],
    loadAssignments: [{ clusterName: name, endpoints, ...(localityWeights ? { localityWeights } : {}) }],
    extAuthzProviders: [],
    trustDomainAliases: [],
    warnings: [],
  };
}

const ep = (ip: string, priority?: number): ProxyIR['loadAssignments'][number]['endpoints'][number] => ({ ip, port: 80, spiffeId: 's', source: ip, ...(priority !== undefined ? { priority } : {}) });

void test('a consistent DestinationRule-derived cluster passes', () => {
  const errors = validateClusterTraffic(
    ir({ trafficPolicy: { source: 'DestinationRule/demo/b', consistentHash: { key: { header: 'x' }, minimumRingSize: 1024 }, locality: { weighted: true } } }, [ep('198.18.0.2'), ep('198.18.0.3', 1)], {}),
  );
  assert.deepEqual(errors, []);
});

void test('MUTUAL without a client certificate, a non-prime Maglev table, both LB kinds are refused', () => {
  const errors = validateClusterTraffic(
    ir({
      clientTls: { mode: 'MUTUAL', subjectAltNames: [], caCertificates: '' },
      trafficPolicy: { source: 's', simpleLb: 'RANDOM', consistentHash: { key: { sourceIp: true }, maglev: true, minimumRingSize: 1000 } },
    }),
  );
  assert.ok(errors.some((e) => /MUTUAL needs clientCertificate and privateKey/.test(e)), errors.join('\n'));
  assert.ok(errors.some((e) => /caCertificates is an empty file path/.test(e)));
  assert.ok(errors.some((e) => /not a prime number/.test(e)));
  assert.ok(errors.some((e) => /both simple load balancing RANDOM and a consistent hash/.test(e)));
});

void test('priorities with a gap, bad percentages and a weighted cluster without locality weights are refused', () => {
  const errors = validateClusterTraffic(
    ir(
      { trafficPolicy: { source: 's', locality: { weighted: true }, outlierDetection: { intervalMs: 0, baseEjectionTimeMs: 1000, maxEjectionPercent: 120, minHealthPercent: 0 }, connectionPool: { maxConnections: 0 } } },
      [ep('198.18.0.2'), ep('198.18.0.3', 2)],
    ),
  );
  assert.ok(errors.some((e) => /priorities skip 1/.test(e)), errors.join('\n'));
  assert.ok(errors.some((e) => /maxEjectionPercent 120 is not within 0-100/.test(e)));
  assert.ok(errors.some((e) => /interval and baseEjectionTime must be positive/.test(e)));
  assert.ok(errors.some((e) => /maxConnections 0 is not a positive integer/.test(e)));
  assert.ok(errors.some((e) => /no locality weights/.test(e)));
});
