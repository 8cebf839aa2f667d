import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GRPCRoute, GRPCRouteSpec, HTTPRoute, HTTPRouteSpec } from '../../resources/traffic-types.js';
import { compareRanked, grpcRouteRoutes, httpRouteRoutes } from './http-route.js';
import type { RouteContext } from './virtual-service.js';

const KNOWN = new Set(['reviews.demo.svc.cluster.local', 'canary.demo.svc.cluster.local']);

function ctx(): RouteContext & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    proxyNamespace: 'demo',
    proxyLabels: {},
    port: 9080,
    warn: (m) => warnings.push(m),
    cluster: (dest, _ns, where) => {
      if (!KNOWN.has(dest.host)) {
        warnings.push(`${where}: unknown ${dest.host}`);
        return undefined;
      }
      return `outbound|${dest.port ?? 9080}||${dest.host}`;
    },
    warnings,
  };
}

const backend = (name: string, weight?: number): { name: string; port: number; weight?: number } => (weight === undefined ? { name, port: 9080 } : { name, port: 9080, weight });

function httpRoute(spec: HTTPRouteSpec, name = 'r'): HTTPRoute {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: 'demo' }, spec };
}

function grpcRoute(spec: GRPCRouteSpec): GRPCRoute {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name: 'g', namespace: 'demo' }, spec };
}

void describe('HTTPRoute rules', () => {
  void test('relative weights; weight 0 gets nothing; a rule with only weight-0 backends answers 500', () => {
    const c = ctx();
    const ranked = httpRouteRoutes(
      httpRoute({
        rules: [
          { backendRefs: [backend('reviews', 3), backend('canary', 1), backend('reviews', 0)], timeouts: { request: '10s', backendRequest: '2s' } },
          { matches: [{ path: { type: 'PathPrefix', value: '/drained' } }], backendRefs: [backend('reviews', 0)] },
          { backendRefs: [] },
        ],
      }),
      c,
      [],
    );
    const [all, drained, none] = ranked.map((r) => r.route);
    assert.deepEqual(all!.action, {
      kind: 'forward',
      clusters: [
        { cluster: 'outbound|9080||reviews.demo.svc.cluster.local', weight: 3 },
        { cluster: 'outbound|9080||canary.demo.svc.cluster.local', weight: 1 },
      ],
    });
    assert.equal(all!.timeoutMs, 10_000);
    assert.equal(all!.retries?.perTryTimeoutMs, 2000);
    assert.deepEqual(drained!.action, { kind: 'direct', status: 500 });
    assert.deepEqual(drained!.match.path, { regex: '/drained(/.*)?' });
    assert.deepEqual(none!.action, { kind: 'direct', status: 500 });
    assert.deepEqual(c.warnings, []);
  });

  void test('precedence: exact path, then the longest prefix, then method and header counts, then rule order', () => {
    const ranked = httpRouteRoutes(
      httpRoute({
        rules: [
          { name: 'root', backendRefs: [backend('reviews')] },
          { name: 'api', matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [backend('reviews')] },
          { name: 'api-post', matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: 'POST' }], backendRefs: [backend('reviews')] },
          { name: 'exact', matches: [{ path: { type: 'Exact', value: '/' } }], backendRefs: [backend('reviews')] },
          { name: 'api-v2', matches: [{ path: { type: 'PathPrefix', value: '/api/v2' } }], backendRefs: [backend('reviews')] },
        ],
      }),
      ctx(),
      [],
    );
    assert.deepEqual(
      [...ranked].sort(compareRanked).map((r) => r.route.name),
      ['HTTPRoute/demo/r/exact', 'HTTPRoute/demo/r/api-v2', 'HTTPRoute/demo/r/api-post', 'HTTPRoute/demo/r/api', 'HTTPRoute/demo/r/root'],
    );
  });

  void test('filters: header modifiers, mirror, URLRewrite prefix (path-element aware) and redirect (302 default)', () => {
    const ranked = httpRouteRoutes(
      httpRoute({
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/api/' } }],
            filters: [
              { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }], remove: ['x-b'] } },
              { type: 'RequestMirror', requestMirror: { backendRef: backend('canary'), fraction: { numerator: 1, denominator: 4 } } },
              { type: 'URLRewrite', urlRewrite: { hostname: 'h', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } },
            ],
            backendRefs: [backend('reviews')],
          },
          { filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] },
        ],
      }),
      ctx(),
      [],
    );
    const [rw, redirect] = ranked.map((r) => r.route);
    assert.deepEqual(rw!.requestHeaders, { set: { 'x-a': '1' }, add: {}, remove: ['x-b'] });
    assert.deepEqual(rw!.mirrors, [{ cluster: 'outbound|9080||canary.demo.svc.cluster.local', percent: 25 }]);
    assert.deepEqual(rw!.rewrite, { authority: 'h', regex: { pattern: '^/api/*(.*)$', substitution: '/\\1' } });
    assert.deepEqual(redirect!.action, { kind: 'redirect', status: 302, scheme: 'https' });
  });

  void test('an unresolvable backend is left out with a warning; none left: 500', () => {
    const c = ctx();
    const [r] = httpRouteRoutes(httpRoute({ rules: [{ backendRefs: [backend('missing')] }] }), c, []);
    assert.deepEqual(r!.route.action, { kind: 'direct', status: 500 });
    assert.ok(c.warnings.some((w) => w.includes('HTTPRoute/demo/r rules[0] backendRefs[0]: unknown missing.demo.svc.cluster.local')), c.warnings.join('\n'));
  });
});

void describe('GRPCRoute rules', () => {
  void test('method matches become paths: exact service+method, service-only and regex forms', () => {
    const ranked = grpcRouteRoutes(
      grpcRoute({
        rules: [
          { matches: [{ method: { type: 'RegularExpression', service: 'a\\.B', method: 'List.*' } }], backendRefs: [backend('reviews')] },
          { matches: [{ method: { service: 'a.B' }, headers: [{ name: 'X-T', value: 'g' }] }], backendRefs: [backend('reviews')] },
          { matches: [{ method: { service: 'a.B', method: 'Get' } }], backendRefs: [backend('reviews')] },
          { backendRefs: [backend('reviews')] },
        ],
      }),
      ctx(),
      [],
    );
    const sorted = [...ranked].sort(compareRanked).map((r) => r.route);
    assert.deepEqual(
      sorted.map((r) => r.match.path),
      [{ exact: '/a.B/Get' }, { regex: '/a\\.B/[^/]+' }, { regex: '/a\\.B/List.*' }, undefined],
    );
    assert.deepEqual(sorted[1]!.match.headers, [{ name: 'x-t', match: { exact: 'g' } }]);
  });
});
