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

void describe('parentRef port and sectionName (GAMMA: attach to one service port)', () => {
  // One service, two HTTP ports: "http" 9080 and "admin" 9090.
  const TWO_PORTS = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shelf, namespace: shop}
spec:
  hosts: [shelf.shop.svc.cluster.local]
  ports: [{name: http, number: 9080, protocol: HTTP}, {name: admin, number: 9090, protocol: HTTP}]
  resolution: STATIC
`;
  const shelf = { host: 'shelf.shop.svc.cluster.local', namespace: 'shop' };
  const route = (name: string, parent: string): string => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: shop}
spec:
  parentRefs: [${parent}]
  rules:
    - backendRefs: [{name: shelf, port: 9080}]
`;
  const grpc = (name: string, parent: string): string => `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: ${name}, namespace: shop}
spec:
  parentRefs: [${parent}]
  rules:
    - backendRefs: [{name: shelf, port: 9090}]
`;
  /** The route source of the virtual host of shelf on `port` (undefined: the default route). */
  const sourceOn = (snap: MeshSnapshot, port: number): string | undefined => httpRoutesForHost(snap, shelf, ctx('shop', port))?.source;

  void test('sectionName attaches the route to the port of that name only', () => {
    const snap = snapshot(`${TWO_PORTS}---${route('by-name', '{group: "", kind: Service, name: shelf, sectionName: admin}')}`);
    assert.equal(sourceOn(snap, 9090), 'HTTPRoute/shop/by-name');
    assert.equal(sourceOn(snap, 9080), undefined);
  });

  void test('port attaches the route to that port only; neither port nor sectionName: every port', () => {
    const snap = snapshot(
      [TWO_PORTS, route('by-port', '{group: "", kind: Service, name: shelf, port: 9080}'), route('all', '{group: networking.istio.io, kind: ServiceEntry, name: shelf}').replace('shelf, port: 9080}]', 'shelf, port: 9090}]')].join('---'),
    );
    assert.equal(sourceOn(snap, 9080), 'HTTPRoute/shop/all, HTTPRoute/shop/by-port');
    assert.equal(sourceOn(snap, 9090), 'HTTPRoute/shop/all');
    // Which backend a request on each port gets: the rules of the routes attached there.
    const on9090 = httpRoutesForHost(snap, shelf, ctx('shop', 9090));
    assert.deepEqual(
      on9090?.routes.map((r) => (r.action.kind === 'forward' ? r.action.clusters.map((c) => c.cluster) : [])),
      [['outbound|9090||shelf.shop.svc.cluster.local']],
    );
  });

  void test('port and sectionName together must name the same port; GRPCRoute parentRefs follow the same rule', () => {
    const snap = snapshot(
      [
        TWO_PORTS,
        route('both', '{group: "", kind: Service, name: shelf, sectionName: http, port: 9080}'),
        route('mismatch', '{group: "", kind: Service, name: shelf, sectionName: http, port: 9090}'),
        grpc('rpc', '{group: networking.istio.io, kind: Hostname, name: shelf.shop.svc.cluster.local, sectionName: admin}'),
      ].join('---'),
    );
    assert.equal(sourceOn(snap, 9080), 'HTTPRoute/shop/both');
    assert.equal(sourceOn(snap, 9090), 'GRPCRoute/shop/rpc');
  });

  void test('the port names of the service given by the caller (the merged ports of a MeshService) are used', () => {
    const snap = snapshot(`${TWO_PORTS}---${route('by-name', '{group: "", kind: Service, name: shelf, sectionName: metrics}')}`);
    const merged = { ...shelf, ports: [{ number: 9080, name: 'http' }, { number: 9090, name: 'admin' }, { number: 9100, name: 'metrics' }] };
    assert.equal(httpRoutesForHost(snap, merged, ctx('shop', 9100))?.source, 'HTTPRoute/shop/by-name');
    assert.equal(httpRoutesForHost(snap, merged, ctx('shop', 9080))?.source, undefined);
  });

  void test('a sectionName or port the service lacks attaches nowhere, with a warning naming the route and its ports', () => {
    const text = [
      TWO_PORTS,
      route('ghost', '{group: "", kind: Service, name: shelf, sectionName: grpc}'),
      route('far', '{group: "", kind: Service, name: shelf, port: 7000}'),
      route('crossed', '{group: "", kind: Service, name: shelf, sectionName: http, port: 9090}'),
    ].join('---');
    const parsed = parseResources(`${SERVICES}---\n${text}`, 'test.yaml');
    const snap = buildSnapshot(1, parsed.resources);
    for (const port of [9080, 9090]) {
      const c = ctx('shop', port);
      assert.equal(httpRoutesForHost(snap, shelf, c), undefined);
      assert.deepEqual([...c.warnings].sort(), [
        'HTTPRoute/shop/crossed parentRefs[0]: sectionName "http" and port 9090 name different ports of service shelf.shop.svc.cluster.local (it has http (9080), admin (9090)): the route does not attach to this parent',
        'HTTPRoute/shop/far parentRefs[0]: service shelf.shop.svc.cluster.local has no port 7000 (it has http (9080), admin (9090)): the route does not attach to this parent',
        'HTTPRoute/shop/ghost parentRefs[0]: service shelf.shop.svc.cluster.local has no port named "grpc" (it has http (9080), admin (9090)): the route does not attach to this parent',
      ]);
    }
  });
});
