import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildSnapshot } from '../../registry/index.js';
import type { MeshSnapshot } from '../../registry/types.js';
import { formatIssue, parseResources } from '../../resources/parse.js';
import { gatewayRoutesFor, httpRoutesForHost, tcpRouteForHost, virtualServiceFor } from './routes.js';
import type { RouteContext } from './virtual-service.js';

const SERVICES = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  ports: [{name: http, number: 9080, protocol: HTTP}]
  resolution: STATIC
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: shop}
spec:
  hosts: [db.shop.svc.cluster.local]
  ports: [{name: tcp, number: 5432, protocol: TCP}]
  resolution: STATIC
`;

function snapshot(extra: string): MeshSnapshot {
  const parsed = parseResources(`${SERVICES}---\n${extra}`, 'test.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  return buildSnapshot(1, parsed.resources);
}

function ctx(proxyNamespace = 'shop', port = 9080): RouteContext & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    proxyNamespace,
    proxyLabels: {},
    port,
    warn: (m) => warnings.push(m),
    cluster: (dest, ns) => `outbound|${dest.port ?? port}|${dest.subset ?? ''}|${dest.host.includes('.') ? dest.host : `${dest.host}.${ns}.svc.cluster.local`}`,
    warnings,
  };
}

const reviews = { host: 'reviews.shop.svc.cluster.local', namespace: 'shop' };

const VS = (name: string, hosts: string, extra = ''): string => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: shop}
spec:
  hosts: ${hosts}
${extra}  http:
    - route: [{destination: {host: reviews}}]
`;

const HTTP_ROUTE = (name: string, ns: string): string => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${ns}}
spec:
  parentRefs: [{group: networking.istio.io, kind: Hostname, name: reviews.shop.svc.cluster.local}]
  rules:
    - backendRefs: [{group: networking.istio.io, kind: Hostname, name: reviews.shop.svc.cluster.local, port: 9080}]
`;

void describe('route source selection', () => {
  void test('a VirtualService wins over an HTTPRoute for the same host, with a warning', () => {
    const c = ctx();
    const got = httpRoutesForHost(snapshot(`${VS('reviews', '[reviews]')}---${HTTP_ROUTE('reviews', 'shop')}`), reviews, c);
    assert.equal(got?.source, 'VirtualService/shop/reviews');
    assert.ok(c.warnings.some((w) => w.includes('both route it: the VirtualService wins')), c.warnings.join('\n'));
  });

  void test('no VirtualService: the HTTPRoute decides; no resource at all: undefined (default route)', () => {
    assert.equal(httpRoutesForHost(snapshot(HTTP_ROUTE('reviews', 'shop')), reviews, ctx())?.source, 'HTTPRoute/shop/reviews');
    assert.equal(httpRoutesForHost(snapshot(''), reviews, ctx()), undefined);
  });

  void test('an exact host beats a wildcard; gateway-only and unexported VirtualServices do not apply', () => {
    const snap = snapshot(
      [
        VS('wild', '["*.shop.svc.cluster.local"]'),
        VS('exact', '[reviews.shop.svc.cluster.local]'),
        VS('gw', '[reviews]', '  gateways: [my-gateway]\n'),
        VS('hidden', '[reviews]', '  exportTo: ["."]\n'),
      ].join('---'),
    );
    const c = ctx('other');
    assert.equal(virtualServiceFor(snap, reviews, 'other', c.warn)?.metadata.name, 'exact');
    assert.ok(c.warnings.some((w) => w.includes('2 VirtualServices apply')), c.warnings.join('\n'));
  });

  void test('consumer routes (the proxy namespace) replace producer routes (the service namespace)', () => {
    const snap = snapshot(`${HTTP_ROUTE('producer', 'shop')}---${HTTP_ROUTE('consumer', 'web')}`);
    assert.deepEqual(
      gatewayRoutesFor(snap, reviews, 'web', 9080).map((r) => r.metadata.name),
      ['consumer'],
    );
    assert.deepEqual(
      gatewayRoutesFor(snap, reviews, 'billing', 9080).map((r) => r.metadata.name),
      ['producer'],
    );
  });

  void test('a TCP service takes the tcp routes of its VirtualService', () => {
    const snap = snapshot(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: shop}
spec:
  hosts: [db]
  tcp:
    - route:
        - {destination: {host: db, subset: a}, weight: 60}
        - {destination: {host: db, subset: b}, weight: 40}
`);
    const got = tcpRouteForHost(snap, { host: 'db.shop.svc.cluster.local', namespace: 'shop' }, ctx('shop', 5432));
    assert.deepEqual(got?.clusters, [
      { cluster: 'outbound|5432|a|db.shop.svc.cluster.local', weight: 60 },
      { cluster: 'outbound|5432|b|db.shop.svc.cluster.local', weight: 40 },
    ]);
  });
});
