import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { VirtualService, VirtualServiceSpec } from '../../resources/traffic-types.js';
import { istioDefaultRetryPolicy, parseRetryOn, sanitizeHeaderOps, virtualServiceHttpRoutes, virtualServiceTcpRoute, type RouteContext } from './virtual-service.js';

const HOSTS: Record<string, number[]> = { 'reviews.demo.svc.cluster.local': [9080], 'ratings.demo.svc.cluster.local': [9080, 9090] };

/** A context that resolves the two services above like the push context does. */
function ctx(overrides: Partial<RouteContext> = {}): RouteContext & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    proxyNamespace: 'demo',
    proxyLabels: { app: 'a', version: 'v1' },
    port: 9080,
    warn: (m) => warnings.push(m),
    cluster: (dest, ns, where) => {
      const host = dest.host.includes('.') ? dest.host : `${dest.host}.${ns}.svc.cluster.local`;
      const ports = HOSTS[host];
      if (!ports) {
        warnings.push(`${where}: unknown host ${dest.host}`);
        return undefined;
      }
      const port = dest.port ?? (ports.length === 1 ? ports[0]! : 9080);
      return `outbound|${port}|${dest.subset ?? ''}|${host}`;
    },
    warnings,
    ...overrides,
  };
}

function vs(spec: VirtualServiceSpec): VirtualService {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'demo' }, spec };
}

void describe('VirtualService http routes', () => {
  void test('a weighted split becomes weighted clusters with Istio default retries and no timeout', () => {
    const c = ctx();
    const routes = virtualServiceHttpRoutes(
      vs({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 20 }] }] }),
      c,
    );
    assert.equal(routes.length, 1);
    const r = routes[0]!;
    assert.deepEqual(r.action, {
      kind: 'forward',
      clusters: [
        { cluster: 'outbound|9080|v1|reviews.demo.svc.cluster.local', weight: 80 },
        { cluster: 'outbound|9080|v2|reviews.demo.svc.cluster.local', weight: 20 },
      ],
    });
    assert.deepEqual(r.retries, istioDefaultRetryPolicy());
    assert.equal(r.timeoutMs, undefined);
    assert.equal(r.name, 'VirtualService/demo/reviews/0');
    assert.deepEqual(c.warnings, []);
  });

  void test('several match entries are ORed: one route each, with match fields mapped', () => {
    const routes = virtualServiceHttpRoutes(
      vs({
        http: [
          {
            name: 'r',
            match: [
              { name: 'a', headers: { 'End-User': { exact: 'jason' } }, withoutHeaders: { 'x-skip': {} } },
              { uri: { prefix: '/v2' }, ignoreUriCase: true, method: { exact: 'GET' }, queryParams: { debug: { exact: '1' }, trace: {} } },
            ],
            route: [{ destination: { host: 'reviews' } }],
          },
        ],
      }),
      ctx(),
    );
    assert.deepEqual(
      routes.map((r) => r.name),
      ['r/a', 'r/1'],
    );
    assert.deepEqual(routes[0]!.match, {
      headers: [{ name: 'end-user', match: { exact: 'jason' } }, { name: 'x-skip', invert: true }],
      queryParams: [],
    });
    assert.deepEqual(routes[1]!.match, {
      path: { prefix: '/v2' },
      ignoreCase: true,
      headers: [{ name: ':method', match: { exact: 'GET' } }],
      queryParams: [{ name: 'debug', match: { exact: '1' } }, { name: 'trace' }],
    });
  });

  void test('sourceLabels, sourceNamespace and port are decided for this proxy', () => {
    const routes = virtualServiceHttpRoutes(
      vs({
        http: [
          { name: 'v2-only', match: [{ sourceLabels: { version: 'v2' } }], route: [{ destination: { host: 'reviews' } }] },
          { name: 'other-ns', match: [{ sourceNamespace: 'other' }], route: [{ destination: { host: 'reviews' } }] },
          { name: 'other-port', match: [{ port: 9999 }], route: [{ destination: { host: 'reviews' } }] },
          { name: 'gateway-only', match: [{ gateways: ['my-gw'] }], route: [{ destination: { host: 'reviews' } }] },
          { name: 'mine', match: [{ sourceLabels: { app: 'a' }, port: 9080, sourceNamespace: 'demo' }], route: [{ destination: { host: 'reviews' } }] },
        ],
      }),
      ctx(),
    );
    assert.deepEqual(
      routes.map((r) => r.name),
      ['mine'],
    );
  });

  void test('retries: attempts, perTryTimeout, retryOn split into conditions and status codes; attempts 0 disables', () => {
    const c = ctx();
    const routes = virtualServiceHttpRoutes(
      vs({
        http: [
          { name: 'a', retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx,503,bogus' }, route: [{ destination: { host: 'reviews' } }] },
          { name: 'b', retries: { attempts: 0 }, route: [{ destination: { host: 'reviews' } }] },
        ],
      }),
      c,
    );
    assert.deepEqual(routes[0]!.retries, { attempts: 3, perTryTimeoutMs: 2000, retryOn: '5xx,retriable-status-codes', retriableStatusCodes: [503] });
    assert.equal(routes[1]!.retries?.attempts, 0);
    assert.ok(c.warnings.some((w) => w.includes('"bogus" is not an Envoy retry condition')), c.warnings.join('\n'));
  });

  void test('fault, mirror, headers, timeout, rewrite and CORS map to the IR', () => {
    const routes = virtualServiceHttpRoutes(
      vs({
        http: [
          {
            timeout: '1.5s',
            rewrite: { uri: '/v1', authority: 'internal' },
            fault: { delay: { fixedDelay: '5s', percentage: { value: 10 } }, abort: { grpcStatus: 'UNAVAILABLE' } },
            mirror: { host: 'ratings', port: { number: 9090 } },
            mirrorPercentage: { value: 12.5 },
            headers: { request: { set: { 'X-A': '1' }, remove: ['X-B'] } },
            corsPolicy: { allowOrigins: [{ exact: 'https://x' }], allowMethods: ['GET'], maxAge: '1m', allowCredentials: false },
            route: [{ destination: { host: 'reviews' }, headers: { response: { add: { 'x-c': '2' } } } }],
          },
        ],
      }),
      ctx(),
    );
    const r = routes[0]!;
    assert.equal(r.timeoutMs, 1500);
    assert.deepEqual(r.rewrite, { prefix: '/v1', authority: 'internal' });
    assert.deepEqual(r.fault, { delay: { fixedDelayMs: 5000, percent: 10 }, abort: { grpcStatus: 14, percent: 100 } });
    assert.deepEqual(r.mirrors, [{ cluster: 'outbound|9090||ratings.demo.svc.cluster.local', percent: 12.5 }]);
    assert.deepEqual(r.requestHeaders, { set: { 'x-a': '1' }, add: {}, remove: ['x-b'] });
    assert.deepEqual(r.cors, { allowOrigins: [{ exact: 'https://x' }], allowMethods: ['GET'], allowHeaders: [], exposeHeaders: [], maxAgeSeconds: 60, allowCredentials: false });
    assert.deepEqual(r.action, { kind: 'forward', clusters: [{ cluster: 'outbound|9080||reviews.demo.svc.cluster.local', weight: 100, responseHeaders: { set: {}, add: { 'x-c': '2' }, remove: [] } }] });
  });

  void test('redirect (301 default) and direct response; an unknown destination gets 503 with a warning', () => {
    const c = ctx();
    const routes = virtualServiceHttpRoutes(
      vs({
        http: [
          { name: 'redir', redirect: { uri: '/new', authority: 'x' } },
          { name: 'direct', directResponse: { status: 418, body: { string: 'tea' } } },
          { name: 'lost', route: [{ destination: { host: 'nowhere.example.com' } }] },
        ],
      }),
      c,
    );
    assert.deepEqual(routes[0]!.action, { kind: 'redirect', status: 301, path: '/new', host: 'x' });
    assert.deepEqual(routes[1]!.action, { kind: 'direct', status: 418, body: 'tea' });
    assert.deepEqual(routes[2]!.action, { kind: 'direct', status: 503 });
    assert.ok(c.warnings.some((w) => w.includes('VirtualService/demo/reviews http[2] route[0]: unknown host nowhere.example.com')), c.warnings.join('\n'));
    assert.ok(c.warnings.some((w) => w.includes('requests it matches get 503')));
  });
});

void describe('VirtualService parseRetryOn', () => {
  void test('status codes add retriable-status-codes once; unknown names are reported', () => {
    const warnings: string[] = [];
    assert.deepEqual(parseRetryOn('gateway-error, 502,504,unavailable,nope', (m) => warnings.push(m)), {
      retryOn: 'gateway-error,unavailable,retriable-status-codes',
      codes: [502, 504],
    });
    assert.equal(warnings.length, 1);
  });
});

void describe('VirtualService tcp routes', () => {
  void test('the first tcp route whose port matches decides the weighted destinations', () => {
    const c = ctx({ port: 5432 });
    const got = virtualServiceTcpRoute(
      vs({
        tcp: [
          { match: [{ port: 6000 }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
          { match: [{ port: 5432 }], route: [{ destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } }, weight: 70 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 30 }] },
        ],
      }),
      c,
    );
    assert.deepEqual(got, {
      clusters: [
        { cluster: 'outbound|9080|v1|reviews.demo.svc.cluster.local', weight: 70 },
        { cluster: 'outbound|9080|v2|reviews.demo.svc.cluster.local', weight: 30 },
      ],
      source: 'VirtualService/demo/reviews tcp[1]',
    });
  });
  void test('no applicable tcp route: undefined', () => {
    assert.equal(virtualServiceTcpRoute(vs({ tcp: [{ match: [{ port: 1 }], route: [{ destination: { host: 'reviews' } }] }] }), ctx()), undefined);
  });
});

void describe('header operations Envoy refuses', () => {
  void test('setting Host becomes an authority rewrite; pseudo-headers and Host removal are dropped with a warning', () => {
    const c = ctx();
    const routes = virtualServiceHttpRoutes(
      vs({
        http: [
          {
            headers: { request: { set: { Host: 'internal', 'x-a': '1' }, remove: [':path', 'x-b'] }, response: { set: { ':status': '200' } } },
            route: [{ destination: { host: 'reviews' }, weight: 50, headers: { request: { set: { host: 'x' } } } }, { destination: { host: 'ratings' }, weight: 50 }],
          },
        ],
      }),
      c,
    );
    sanitizeHeaderOps(routes, c.warn);
    const r = routes[0]!;
    assert.deepEqual(r.rewrite, { authority: 'internal' });
    assert.deepEqual(r.requestHeaders, { set: { 'x-a': '1' }, add: {}, remove: ['x-b'] });
    assert.equal(r.responseHeaders, undefined);
    assert.ok(r.action.kind === 'forward' && r.action.clusters[0]!.requestHeaders === undefined);
    assert.equal(c.warnings.length, 3, c.warnings.join('\n'));
  });
});
