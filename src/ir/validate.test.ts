import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyIR } from './types.js';
import { validate } from './validate.js';

/** A small consistent IR: one inbound HTTP port, one outbound HTTP listener to one service. */
function sample(): ProxyIR {
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
    inbound: [{ name: '198.18.0.1_8080', address: '198.18.0.1', port: 8080, protocol: 'HTTP', mtls: 'STRICT', mtlsSource: 'default', cluster: 'inbound|8080||', authorization: [], jwtRules: [] }],
    outbound: [
      {
        name: '127.0.0.1_9080',
        address: '127.0.0.1',
        port: 9080,
        protocol: 'HTTP',
        routeConfig: { name: '9080', virtualHosts: [{ name: 'b:9080', domains: ['b', 'b:9080'], cluster: 'outbound|9080||b' }] },
      },
    ],
    clusters: [
      { direction: 'inbound', name: 'inbound|8080||', port: 8080, protocol: 'HTTP', endpoint: { ip: '127.0.0.1', port: 8080 } },
      {
        direction: 'outbound',
        name: 'outbound|9080||b',
        host: 'b',
        port: 9080,
        serviceNamespace: 'demo',
        protocol: 'HTTP',
        tls: { mode: 'ISTIO_MUTUAL', sni: 'outbound_.9080_._.b', subjectAltNames: ['spiffe://cluster.local/ns/demo/sa/b'] },
      },
    ],
    loadAssignments: [{ clusterName: 'outbound|9080||b', endpoints: [{ ip: '198.18.0.2', port: 8080, spiffeId: 'spiffe://cluster.local/ns/demo/sa/b', source: 'x' }] }],
    extAuthzProviders: [],
    trustDomainAliases: [],
    warnings: [],
  };
}

void test('a consistent IR has no errors', () => {
  assert.deepEqual(validate(sample()), []);
});

void test('two listeners on one address and port are an error, also through a wildcard address', () => {
  const ir = sample();
  ir.outbound.push({ name: '0.0.0.0_9080', address: '0.0.0.0', port: 9080, protocol: 'TCP', tcpCluster: 'outbound|9080||b' });
  assert.deepEqual(validate(ir), ['listeners 127.0.0.1_9080 and 0.0.0.0_9080 both bind 0.0.0.0:9080']);
});

void test('an outbound listener on the application endpoint is an error', () => {
  const ir = sample();
  ir.outbound.push({ name: '127.0.0.1_8080', address: '127.0.0.1', port: 8080, protocol: 'TCP', tcpCluster: 'outbound|9080||b' });
  assert.deepEqual(validate(ir), ["outbound listener 127.0.0.1_8080 binds 127.0.0.1:8080, the local application's endpoint 127.0.0.1:8080"]);
});

void test('a route or listener naming a missing cluster is an error', () => {
  const ir = sample();
  ir.outbound[0]!.routeConfig!.virtualHosts[0]!.cluster = 'outbound|9080||nope';
  ir.inbound[0]!.cluster = 'inbound|1||';
  assert.deepEqual(validate(ir), [
    'inbound listener 198.18.0.1_8080 names missing cluster inbound|1||',
    'route configuration 9080 virtual host b:9080 names missing cluster outbound|9080||nope',
  ]);
});

void test('an outbound cluster without its load assignment, or a stray load assignment, is an error', () => {
  const ir = sample();
  ir.loadAssignments = [{ clusterName: 'outbound|1||x', endpoints: [] }];
  assert.deepEqual(validate(ir), ['load assignment for unknown cluster outbound|1||x', 'outbound cluster outbound|9080||b has 0 load assignments (expected 1)']);
});

void test('duplicate names, duplicate domains and bad ports are errors', () => {
  const ir = sample();
  ir.clusters.push({ ...ir.clusters[0]! });
  ir.outbound[0]!.routeConfig!.virtualHosts.push({ name: 'b2', domains: ['B'], cluster: 'outbound|9080||b' });
  ir.loadAssignments[0]!.endpoints.push({ ip: 'b.example', port: 0, weight: 0, spiffeId: 's', source: 'y' });
  assert.deepEqual(validate(ir), [
    'duplicate cluster inbound|8080||',
    'route configuration 9080: domain B appears twice',
    'load assignment outbound|9080||b: endpoint address "b.example" is not an IP address',
    'load assignment outbound|9080||b: endpoint b.example has invalid port 0',
    'load assignment outbound|9080||b: endpoint b.example:0 has invalid weight 0',
  ]);
});

void test('an inbound listener that forwards to itself is an error', () => {
  const ir = sample();
  const c = ir.clusters[0]!;
  if (c.direction === 'inbound') c.endpoint = { ip: '198.18.0.1', port: 8080 };
  assert.deepEqual(validate(ir), ["inbound listener 198.18.0.1_8080 binds 198.18.0.1:8080, the local application's endpoint 198.18.0.1:8080"]);
});

void test('bad authorization values are errors naming the policy and the field', () => {
  const ir = sample();
  ir.inbound[0]!.authorization = [
    {
      name: 'p',
      namespace: 'demo',
      action: 'DENY',
      dryRun: false,
      scope: 'namespace',
      rules: [
        {
          from: [{ ipBlocks: ['10.0.0.0/33'], principals: [''] }],
          to: [{ ports: ['0', '65536', 'http'] }],
          when: [
            { key: 'source.colour', values: ['red'], notValues: [] },
            { key: 'destination.ip', values: ['1.2.3'], notValues: [] },
            { key: 'request.headers[x]', values: [], notValues: [] },
          ],
        },
      ],
    },
  ];
  assert.deepEqual(validate(ir), [
    'AuthorizationPolicy demo/p rules[0].from[0].source.ipBlocks[0]: "10.0.0.0/33" is not an IP address or CIDR block',
    'AuthorizationPolicy demo/p rules[0].from[0].source.principals[0]: empty value',
    'AuthorizationPolicy demo/p rules[0].to[0].operation.ports[0]: "0" is not a port 1-65535',
    'AuthorizationPolicy demo/p rules[0].to[0].operation.ports[1]: "65536" is not a port 1-65535',
    'AuthorizationPolicy demo/p rules[0].to[0].operation.ports[2]: "http" is not a port 1-65535',
    'AuthorizationPolicy demo/p rules[0].when[0].key: unknown key "source.colour" (supported: request.headers[...], source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, request.auth.principal, request.auth.audiences, request.auth.presenter, destination.ip, destination.port, connection.sni, request.auth.claims[...], experimental.envoy.filters.<filter>[...])',
    'AuthorizationPolicy demo/p rules[0].when[1].values[0]: "1.2.3" is not an IP address or CIDR block',
    'AuthorizationPolicy demo/p rules[0].when[2]: request.headers[x] needs values or notValues',
  ]);
});

void test('CUSTOM needs a known provider whose cluster exists; dry-run only on ALLOW/DENY; JWT rules need a JWKS', () => {
  const ir = sample();
  const base = { namespace: 'demo', dryRun: false, scope: 'namespace' as const, rules: [] };
  ir.inbound[0]!.authorization = [
    { ...base, name: 'no-provider', action: 'CUSTOM' },
    { ...base, name: 'unknown-provider', action: 'CUSTOM', provider: 'nobody' },
    { ...base, name: 'ok', action: 'CUSTOM', provider: 'authz' },
    { ...base, name: 'dry-audit', action: 'AUDIT', dryRun: true },
  ];
  ir.extAuthzProviders = [
    {
      name: 'authz',
      kind: 'grpc',
      cluster: 'outbound|9000||10.0.0.9',
      host: '10.0.0.9',
      port: 9000,
      timeoutMs: 1000,
      failOpen: false,
      includeRequestHeadersInCheck: [],
      includeAdditionalHeadersInCheck: [],
      headersToUpstreamOnAllow: [],
      headersToDownstreamOnDeny: [],
      headersToDownstreamOnAllow: [],
    },
  ];
  ir.inbound[0]!.jwtRules = [
    {
      issuer: 'https://i',
      audiences: [],
      jwks: 'not json',
      jwksSource: 'inline',
      fromHeaders: [{ name: '' }],
      fromParams: [],
      fromCookies: [],
      forwardOriginalToken: false,
      outputClaimToHeaders: [],
      source: 'RequestAuthentication/demo/r jwtRules[0]',
    },
  ];
  assert.deepEqual(validate(ir), [
    'extension provider authz names missing cluster outbound|9000||10.0.0.9',
    'AuthorizationPolicy demo/no-provider: CUSTOM needs provider.name',
    "AuthorizationPolicy demo/unknown-provider: provider nobody is not among the proxy's extension providers",
    'AuthorizationPolicy demo/dry-audit: dry-run is only supported for ALLOW and DENY',
    'RequestAuthentication/demo/r jwtRules[0]: jwks is not a JSON Web Key Set (an object with a "keys" array)',
    'RequestAuthentication/demo/r jwtRules[0]: fromHeaders[0] has an empty name',
  ]);
  ir.clusters.push({ direction: 'external', name: 'outbound|9000||10.0.0.9', port: 9000, endpoint: { ip: '10.0.0.9', port: 9000 }, protocol: 'HTTP2' });
  assert.ok(!validate(ir).some((e) => e.includes('missing cluster')));
});
