import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProxyIR, RouteIR } from './types.js';
import { validate } from './validate.js';

const CLUSTER = 'outbound|9080||b';

/** A consistent IR with one outbound HTTP virtual host whose routes are `routes`. */
function withRoutes(routes: RouteIR[]): ProxyIR {
  return {
    proxy: {
      nodeId: 'sidecar~198.18.0.1~a.demo~demo.svc.cluster.local',
      ip: '198.18.0.1',
      namespace: 'demo',
      serviceAccount: 'a',
      labels: {},
      trustDomain: 'cluster.local',
      spiffeId: 'spiffe://cluster.local/ns/demo/sa/a',
    },
    inbound: [],
    outbound: [
      {
        name: '127.0.0.1_9080',
        address: '127.0.0.1',
        port: 9080,
        protocol: 'HTTP',
        routeConfig: { name: '9080', virtualHosts: [{ name: 'b:9080', domains: ['b'], cluster: CLUSTER, routes }] },
      },
    ],
    clusters: [
      {
        direction: 'outbound',
        name: CLUSTER,
        host: 'b',
        port: 9080,
        serviceNamespace: 'demo',
        protocol: 'HTTP',
        tls: { mode: 'ISTIO_MUTUAL', sni: 'outbound_.9080_._.b', subjectAltNames: [] },
      },
    ],
    loadAssignments: [{ clusterName: CLUSTER, endpoints: [] }],
    extAuthzProviders: [],
    trustDomainAliases: [],
    warnings: [],
  };
}

function route(over: Partial<RouteIR> = {}): RouteIR {
  return { name: 'r', match: { headers: [], queryParams: [] }, action: { kind: 'forward', clusters: [{ cluster: CLUSTER, weight: 100 }] }, mirrors: [], source: 'test', ...over };
}

void describe('validate: routes', () => {
  void test('a consistent route passes', () => {
    assert.deepEqual(validate(withRoutes([route({ fault: { delay: { fixedDelayMs: 5, percent: 0.5 } }, mirrors: [{ cluster: CLUSTER, percent: 50 }] })])), []);
  });

  void test('missing clusters, zero weight sums, duplicate names and bad percentages are reported', () => {
    const errors = validate(
      withRoutes([
        route({ action: { kind: 'forward', clusters: [{ cluster: 'outbound|1||nope', weight: 1 }] } }),
        route({ action: { kind: 'forward', clusters: [{ cluster: CLUSTER, weight: 0 }] } }),
        route({ name: 'm', mirrors: [{ cluster: CLUSTER, percent: 150 }] }),
      ]),
    );
    assert.ok(errors.some((e) => e.includes('names missing cluster outbound|1||nope')), errors.join('\n'));
    assert.ok(errors.some((e) => e.includes('cluster weights sum to 0')), errors.join('\n'));
    assert.ok(errors.some((e) => e.includes('duplicate route name r')), errors.join('\n'));
    assert.ok(errors.some((e) => e.includes('mirror percentage 150 is not a percentage')), errors.join('\n'));
  });

  void test('a regex Envoy (RE2) cannot compile is reported, naming the route', () => {
    const errors = validate(withRoutes([route({ match: { path: { regex: '/a(' }, headers: [{ name: 'x', match: { regex: '(?=look)' } }], queryParams: [] } })]));
    assert.equal(errors.filter((e) => e.includes('is not valid RE2')).length, 2, errors.join('\n'));
    assert.ok(errors[0]!.includes('route r'));
  });

  void test('statuses: redirect codes and direct response range; fault delay at least 1 ms', () => {
    const errors = validate(
      withRoutes([
        route({ name: 'a', action: { kind: 'direct', status: 99 } }),
        route({ name: 'b', fault: { delay: { fixedDelayMs: 0, percent: 10 } } }),
      ]),
    );
    assert.ok(errors.some((e) => e.includes('direct response status 99')), errors.join('\n'));
    assert.ok(errors.some((e) => e.includes('fault delay 0 ms')), errors.join('\n'));
  });

  void test('TCP weighted clusters must exist and sum to more than 0', () => {
    const ir = withRoutes([]);
    ir.outbound = [{ name: '127.0.0.1_5432', address: '127.0.0.1', port: 5432, protocol: 'TCP', tcpCluster: CLUSTER, tcpWeightedClusters: [{ cluster: 'outbound|5432|x|db', weight: 0 }] }];
    const errors = validate(ir);
    assert.ok(errors.some((e) => e.includes('names missing cluster outbound|5432|x|db')), errors.join('\n'));
    assert.ok(errors.some((e) => e.includes('weighted clusters sum to 0')), errors.join('\n'));
  });
});
