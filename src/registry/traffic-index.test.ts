import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DestinationRule, GRPCRoute, HTTPRoute, VirtualService } from '../resources/traffic-types.js';
import type { ServiceEntry } from '../resources/types.js';
import { buildSnapshot } from './snapshot.js';

const meta = (name: string, namespace: string, creationTimestamp?: string) => ({ name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) });

const se: ServiceEntry = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: meta('reviews', 'demo'),
  spec: { hosts: ['reviews.demo.svc.cluster.local', 'reviews.internal'], ports: [{ name: 'http', number: 9080, protocol: 'HTTP' }] },
};

const dr = (name: string, ns: string, host: string, ts?: string): DestinationRule => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: meta(name, ns, ts),
  spec: { host },
});

const vs = (name: string, ns: string, hosts: string[], ts?: string): VirtualService => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: meta(name, ns, ts),
  spec: { hosts, http: [{ route: [{ destination: { host: hosts[0] ?? '' } }] }] },
});

void describe('snapshot traffic indexes', () => {
  void it('indexes DestinationRules and VirtualServices by resolved host, oldest first then namespace/name', () => {
    const snap = buildSnapshot(1, [
      se,
      dr('b-newer', 'demo', 'reviews', '2024-02-01T00:00:00Z'),
      dr('z-old', 'demo', 'reviews.demo.svc.cluster.local', '2024-01-01T00:00:00Z'),
      dr('a-newer', 'demo', 'reviews', '2024-02-01T00:00:00Z'),
      dr('other', 'prod', 'reviews'),
      vs('v2', 'demo', ['reviews', 'reviews.internal'], '2024-03-01T00:00:00Z'),
      vs('v1', 'demo', ['reviews.demo.svc.cluster.local'], '2024-03-01T00:00:00Z'),
    ]);
    assert.deepEqual(snap.destinationRulesByHost.get('reviews.demo.svc.cluster.local')?.map((r) => r.metadata.name), ['z-old', 'a-newer', 'b-newer']);
    assert.deepEqual(snap.destinationRulesByHost.get('reviews.prod.svc.cluster.local')?.map((r) => r.metadata.name), ['other']);
    // A resource without creationTimestamp counts as oldest (Istio's zero time).
    assert.deepEqual(snap.destinationRules.map((r) => r.metadata.name), ['other', 'z-old', 'a-newer', 'b-newer']);
    assert.deepEqual(snap.virtualServicesByHost.get('reviews.demo.svc.cluster.local')?.map((r) => r.metadata.name), ['v1', 'v2']);
    assert.deepEqual(snap.virtualServicesByHost.get('reviews.internal')?.map((r) => r.metadata.name), ['v2']);
    assert.ok(Object.isFrozen(snap.destinationRulesByHost.get('reviews.demo.svc.cluster.local')));
    assert.throws(() => (snap.virtualServicesByHost as Map<string, unknown>).set('x', []), /immutable/);
  });

  void it('indexes HTTPRoutes and GRPCRoutes by the mesh hosts their parentRefs target', () => {
    const http: HTTPRoute = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: meta('h', 'demo'),
      spec: {
        parentRefs: [
          { group: '', kind: 'Service', name: 'ratings' },
          { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'reviews' },
          { name: 'some-gateway' },
        ],
      },
    };
    const grpc: GRPCRoute = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GRPCRoute',
      metadata: meta('g', 'demo'),
      spec: { parentRefs: [{ group: 'networking.istio.io', kind: 'Hostname', name: 'greeter.internal' }] },
    };
    const snap = buildSnapshot(1, [se, http, grpc]);
    assert.deepEqual([...snap.httpRoutesByHost.keys()].sort(), ['ratings.demo.svc.cluster.local', 'reviews.demo.svc.cluster.local', 'reviews.internal']);
    assert.deepEqual([...snap.grpcRoutesByHost.keys()], ['greeter.internal']);
    assert.equal(snap.httpRoutes.length, 1);
    assert.equal(snap.grpcRoutes[0]?.metadata.name, 'g');
  });
});
