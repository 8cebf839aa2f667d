import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServiceEntry } from '../resources/types.js';
import { parseDurationMs, providerNameProblem, resolveExtAuthzProviders, type ExtAuthzContext, type MeshConfigInput } from './ext-authz.js';
import type { MeshService } from './services.js';

function service(host: string, namespace: string, ports: Array<{ number: number; protocol: string }>): MeshService {
  const entry: ServiceEntry = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: host.split('.')[0] ?? host, namespace },
    spec: { hosts: [host], ports: ports.map((p) => ({ ...p, name: `p${p.number}` })) },
  };
  return { host, namespace, entry, ports: entry.spec.ports ?? [] };
}

function context(services: MeshService[]): ExtAuthzContext & { made: string[] } {
  const made: string[] = [];
  return {
    made,
    services,
    meshCluster: (svc, port) => {
      const name = `outbound|${port.number}||${svc.host}`;
      made.push(name);
      return name;
    },
    externalCluster: (ip, port, protocol) => {
      const name = `outbound|${port}||${ip}`;
      made.push(`${name} ${protocol}`);
      return name;
    },
  };
}

const SERVICES = [
  service('authz.security.svc.cluster.local', 'security', [{ number: 9000, protocol: 'GRPC' }]),
  service('dup.example.com', 'a', [{ number: 80, protocol: 'HTTP' }]),
  service('dup.example.com', 'b', [{ number: 80, protocol: 'HTTP' }]),
];

const CONFIG: MeshConfigInput = {
  extensionProviders: [
    {
      name: 'http-ip',
      envoyExtAuthzHttp: {
        service: '198.51.100.7',
        port: 8000,
        timeout: '1.5s',
        pathPrefix: '/check',
        includeHeadersInCheck: ['x-user'],
        includeAdditionalHeadersInCheck: { 'x-b': '2', 'x-a': '1' },
        statusOnError: '503',
        failOpen: true,
      },
    },
    { name: 'grpc-mesh', envoyExtAuthzGrpc: { service: 'security/authz.security.svc.cluster.local', port: 9000 } },
    { name: 'no-port', envoyExtAuthzGrpc: { service: 'authz.security.svc.cluster.local', port: 9001 } },
    { name: 'ambiguous', envoyExtAuthzHttp: { service: 'dup.example.com', port: 80 } },
    { name: 'bad-status', envoyExtAuthzHttp: { service: '198.51.100.7', port: 80, statusOnError: '299' } },
    { name: 'star', envoyExtAuthzHttp: { service: '198.51.100.7', port: 80, headersToUpstreamOnAllow: ['*'] } },
    { name: 'Upper', envoyExtAuthzHttp: { service: '198.51.100.7', port: 80 } },
  ],
};

void test('an HTTP provider at an IP gets a plaintext external cluster and its settings', () => {
  const ctx = context(SERVICES);
  const [p] = resolveExtAuthzProviders(['http-ip'], CONFIG, ctx);
  assert.deepEqual(p, {
    name: 'http-ip',
    kind: 'http',
    cluster: 'outbound|8000||198.51.100.7',
    host: '198.51.100.7',
    port: 8000,
    timeoutMs: 1500,
    failOpen: true,
    statusOnError: 503,
    pathPrefix: '/check',
    includeRequestHeadersInCheck: ['x-user'],
    includeAdditionalHeadersInCheck: [
      { name: 'x-a', value: '1' },
      { name: 'x-b', value: '2' },
    ],
    headersToUpstreamOnAllow: [],
    headersToDownstreamOnDeny: [],
    headersToDownstreamOnAllow: [],
  });
  assert.deepEqual(ctx.made, ['outbound|8000||198.51.100.7 HTTP']);
});

void test('a gRPC provider naming a mesh service uses its outbound cluster; default timeout 600 s', () => {
  const ctx = context(SERVICES);
  const [p] = resolveExtAuthzProviders(['grpc-mesh'], CONFIG, ctx);
  assert.equal(p?.error, undefined);
  assert.equal(p?.cluster, 'outbound|9000||authz.security.svc.cluster.local');
  assert.equal(p?.kind, 'grpc');
  assert.equal(p?.timeoutMs, 600_000);
});

void test('providers that cannot be used carry the reason, and add no cluster', () => {
  const ctx = context(SERVICES);
  const out = resolveExtAuthzProviders(['nobody', 'no-port', 'ambiguous', 'bad-status', 'star', 'Upper'], CONFIG, ctx);
  assert.deepEqual(
    Object.fromEntries(out.map((p) => [p.name, p.error])),
    {
      Upper: 'invalid provider name: only lower-case letters, digits and "-" are allowed',
      ambiguous: 'found dup.example.com in several namespaces (a, b): write <namespace>/<host>',
      'bad-status': 'statusOnError "299" is not an HTTP status Envoy supports',
      'no-port': 'service authz.security.svc.cluster.local has no port 9001',
      nobody: 'the mesh config has no extension provider named "nobody" (known: http-ip, grpc-mesh, no-port, ambiguous, bad-status, star, Upper)',
      star: 'headersToUpstreamOnAllow: a single wildcard "*" is not supported, use a prefix or suffix match',
    },
  );
  assert.deepEqual(ctx.made, []);
});

void test('durations in Go form', () => {
  assert.equal(parseDurationMs('600s'), 600_000);
  assert.equal(parseDurationMs('1m30s'), 90_000);
  assert.equal(parseDurationMs('250ms'), 250);
  assert.equal(parseDurationMs('0.5s'), 500);
  assert.equal(parseDurationMs('5'), undefined);
  assert.equal(parseDurationMs('1x'), undefined);
  assert.equal(parseDurationMs(''), undefined);
});

void test('provider names are DNS labels', () => {
  assert.equal(providerNameProblem('my-authz'), undefined);
  assert.match(providerNameProblem('-x') ?? '', /start or end/);
  assert.match(providerNameProblem('a'.repeat(64)) ?? '', /63/);
});
