import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { OutboundClusterIR, ProxyIR } from '../../ir/types.js';
import { buildProxyIR, parseProxyNode } from '../../push/index.js';
import { buildSnapshot } from '../../registry/index.js';
import { formatIssue, parseResources } from '../../resources/parse.js';
import { decodeAny, TypeUrl } from '../../xds/protos/loader.js';
import type { EncodedAny } from '../../xds/protos/loader.js';
import * as agentBootstrap from '../../../agents/proxyless/bootstrap.js';
import { CERT_PROVIDER_INSTANCE, GENERATOR_METADATA_KEY, GRPC_GENERATOR, isGrpcNode, SERVER_LISTENER_PREFIX, translateGrpc } from './index.js';

const MESH = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-1, namespace: demo}
spec: {address: 198.18.0.1, serviceAccount: client, labels: {app: client}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server-1, namespace: demo}
spec: {address: 198.18.0.2, serviceAccount: server, labels: {app: server}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: demo}
spec:
  hosts: [echo.demo.svc.cluster.local]
  resolution: STATIC
  ports: [{name: grpc, number: 50051, protocol: GRPC}]
  workloadSelector: {labels: {app: server}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-client, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/client]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  action: DENY
  rules: [{to: [{operation: {paths: [/echo.Echo/Admin]}}]}]
`;

function irOf(name: string, ip: string, sa: string): ProxyIR {
  const parsed = parseResources(MESH, 'mesh.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  const proxy = parseProxyNode({ id: `sidecar~${ip}~${name}.demo~demo.svc.cluster.local`, metadata: { SERVICE_ACCOUNT: sa, WORKLOAD_NAME: name, GENERATOR: 'grpc' } }, 'cluster.local');
  return buildProxyIR(buildSnapshot(1, parsed.resources), proxy);
}

type Decoder = { decode(ctx: unknown, any: { type_url: string; value: Buffer }): { name: string; error?: string; value?: unknown } };
let decoders: Record<string, Decoder>;
const ctx = { server: { server_uri: 'unix:///x', channel_creds: [], server_features: [] }, bootstrap: { certificateProviders: { [CERT_PROVIDER_INSTANCE]: {} } } };

/** grpc-js-xds's own validation of a resource (what its xDS client ACKs or NACKs). */
function grpcAccepts(typeUrl: string, any: EncodedAny): { name: string; error?: string } {
  const d = decoders[typeUrl];
  assert.ok(d, typeUrl);
  return d.decode(ctx, { type_url: any.typeUrl, value: Buffer.from(any.value) });
}

describe('proxyless gRPC translation', () => {
  before(async () => {
    // grpc-js-xds reads its feature switches when first imported.
    process.env['GRPC_XDS_EXPERIMENTAL_RBAC'] = 'true';
    const xds = await import('@grpc/grpc-js-xds');
    xds.register();
    const { ListenerResourceType } = await import('@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js');
    const { RouteConfigurationResourceType } = await import('@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js');
    const { ClusterResourceType } = await import('@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js');
    const { EndpointResourceType } = await import('@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js');
    decoders = {
      [TypeUrl.Listener]: ListenerResourceType.get(),
      [TypeUrl.RouteConfiguration]: RouteConfigurationResourceType.get(),
      [TypeUrl.Cluster]: ClusterResourceType.get(),
      [TypeUrl.ClusterLoadAssignment]: EndpointResourceType.get(),
    };
  });

  it('the client gets an API listener, routes, an mTLS EDS cluster and weighted localities, all accepted by grpc-js-xds', () => {
    const out = translateGrpc(irOf('client-1', '198.18.0.1', 'client'));
    const target = 'echo.demo.svc.cluster.local:50051';
    const cluster = 'outbound|50051||echo.demo.svc.cluster.local';
    assert.ok(out.resources.get(TypeUrl.Listener)?.has(target));
    assert.ok(out.resources.get(TypeUrl.RouteConfiguration)?.has(target));
    assert.ok(out.resources.get(TypeUrl.Cluster)?.has(cluster));
    assert.ok(out.resources.get(TypeUrl.ClusterLoadAssignment)?.has(cluster));
    assert.deepEqual([...(out.references.get(TypeUrl.RouteConfiguration) ?? [])], [target]);
    for (const [typeUrl, byName] of out.resources) {
      for (const [name, r] of byName) assert.equal(grpcAccepts(typeUrl, r.resource).error, undefined, `${name} rejected`);
    }
    const rc = decodeAny(out.resources.get(TypeUrl.RouteConfiguration)!.get(target)!.resource) as { virtualHosts: Array<{ routes: Array<{ route: { cluster: string } }> }> };
    assert.equal(rc.virtualHosts[0]?.routes[0]?.route.cluster, cluster);
    const c = decodeAny(out.resources.get(TypeUrl.Cluster)!.get(cluster)!.resource) as { transportSocket: { typedConfig: { commonTlsContext: Record<string, unknown> } } };
    assert.deepEqual(c.transportSocket.typedConfig.commonTlsContext, {
      tlsCertificateProviderInstance: { instanceName: 'default' },
      validationContext: { caCertificateProviderInstance: { instanceName: 'default' }, matchSubjectAltNames: [{ exact: 'spiffe://cluster.local/ns/demo/sa/server' }] },
    });
    const cla = decodeAny(out.resources.get(TypeUrl.ClusterLoadAssignment)!.get(cluster)!.resource) as { endpoints: Array<{ loadBalancingWeight: { value: number } }> };
    assert.equal(cla.endpoints[0]?.loadBalancingWeight.value, 1, 'gRPC ignores localities without a weight');
  });

  it('the server gets listeners named by the bootstrap template with mTLS and RBAC, accepted by grpc-js-xds', () => {
    const out = translateGrpc(irOf('server-1', '198.18.0.2', 'server'));
    const names = [...(out.resources.get(TypeUrl.Listener)?.keys() ?? [])].sort();
    assert.deepEqual(names, [`${SERVER_LISTENER_PREFIX}0.0.0.0:50051`, `${SERVER_LISTENER_PREFIX}198.18.0.2:50051`]);
    for (const [name, r] of out.resources.get(TypeUrl.Listener) ?? []) assert.equal(grpcAccepts(TypeUrl.Listener, r.resource).error, undefined, name);
    const l = decodeAny(out.resources.get(TypeUrl.Listener)!.get(`${SERVER_LISTENER_PREFIX}198.18.0.2:50051`)!.resource) as {
      address: { socketAddress: { address: string; portValue: number } };
      filterChains: Array<{ transportSocket: { typedConfig: { requireClientCertificate: { value: boolean } } }; filters: Array<{ typedConfig: { httpFilters: Array<{ name: string; typedConfig: { rules?: { action?: string } } }> } }> }>;
    };
    assert.deepEqual(l.address.socketAddress, { address: '198.18.0.2', portValue: 50051 });
    assert.equal(l.filterChains[0]?.transportSocket.typedConfig.requireClientCertificate.value, true);
    const filters = l.filterChains[0]?.filters[0]?.typedConfig.httpFilters ?? [];
    assert.deepEqual(
      filters.map((f) => [f.name, f.typedConfig.rules?.action ?? 'ALLOW']),
      [
        ['envoy.filters.http.rbac.0', 'DENY'],
        ['envoy.filters.http.rbac.1', 'ALLOW'],
        ['envoy.filters.http.router', 'ALLOW'],
      ],
    );
  });

  it('weighted splits, retries and timeouts render as gRPC understands them; redirects are left out with a warning', () => {
    const ir = irOf('client-1', '198.18.0.1', 'client');
    const vh = ir.outbound.flatMap((l) => l.routeConfig?.virtualHosts ?? [])[0];
    assert.ok(vh);
    const base = ir.clusters.find((c): c is OutboundClusterIR => c.direction === 'outbound')!;
    const v1 = { ...base, name: 'outbound|50051|v1|echo.demo.svc.cluster.local', subset: 'v1' };
    const v2 = { ...base, name: 'outbound|50051|v2|echo.demo.svc.cluster.local', subset: 'v2' };
    ir.clusters.push(v1, v2);
    const la = ir.loadAssignments[0]!;
    ir.loadAssignments.push({ ...la, clusterName: v1.name }, { ...la, clusterName: v2.name });
    vh.routes = [
      { name: 'moved', match: { path: { exact: '/old.Svc/Call' }, headers: [], queryParams: [] }, action: { kind: 'redirect', status: 301, path: '/new' }, mirrors: [], source: 'VirtualService/demo/echo http[0]' },
      {
        name: 'split',
        match: { path: { prefix: '/echo.Echo/' }, headers: [{ name: 'x-canary', match: { exact: 'yes' } }], queryParams: [] },
        action: { kind: 'forward', clusters: [{ cluster: v1.name, weight: 80 }, { cluster: v2.name, weight: 20 }] },
        timeoutMs: 1500,
        retries: { attempts: 3, retryOn: 'unavailable,cancelled', retriableStatusCodes: [], perTryTimeoutMs: 500 },
        mirrors: [],
        source: 'VirtualService/demo/echo http[1]',
      },
    ];
    const out = translateGrpc(ir);
    const target = vh.name;
    const any = out.resources.get(TypeUrl.RouteConfiguration)!.get(target)!.resource;
    assert.equal(grpcAccepts(TypeUrl.RouteConfiguration, any).error, undefined);
    const rc = decodeAny(any) as { virtualHosts: Array<{ routes: Array<{ name: string; match: unknown; route: Record<string, unknown> }> }> };
    const routes = rc.virtualHosts[0]?.routes ?? [];
    assert.deepEqual(routes.map((r) => r.name), ['split']);
    assert.deepEqual(routes[0]?.route['weightedClusters'], { clusters: [{ name: v1.name, weight: { value: 80 } }, { name: v2.name, weight: { value: 20 } }] });
    assert.deepEqual(routes[0]?.route['maxStreamDuration'], { maxStreamDuration: { seconds: 1, nanos: 500_000_000 } });
    assert.deepEqual(routes[0]?.route['retryPolicy'], { retryOn: 'unavailable,cancelled', numRetries: { value: 3 }, perTryTimeout: { seconds: 0, nanos: 500_000_000 } });
    assert.ok(out.warnings.some((w) => /redirect cannot be done by a proxyless gRPC client/.test(w)), out.warnings.join('\n'));
    for (const [typeUrl, byName] of out.resources) for (const [name, r] of byName) assert.equal(grpcAccepts(typeUrl, r.resource).error, undefined, name);
  });

  it('DestinationRule policies gRPC lacks fall back with a warning; the clusters stay acceptable to grpc-js-xds', () => {
    const parsed = parseResources(
      `${MESH}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: demo}
spec:
  host: echo.demo.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 10s}
    connectionPool: {http: {http2MaxRequests: 100}}
`,
      'mesh.yaml',
    );
    assert.deepEqual(parsed.errors.map(formatIssue), []);
    const proxy = parseProxyNode({ id: 'sidecar~198.18.0.1~client-1.demo~demo.svc.cluster.local', metadata: { SERVICE_ACCOUNT: 'client' } }, 'cluster.local');
    const out = translateGrpc(buildProxyIR(buildSnapshot(1, parsed.resources), proxy));
    assert.ok(out.warnings.some((w) => /LEAST_REQUEST is not available in proxyless gRPC/.test(w)), out.warnings.join('\n'));
    for (const [typeUrl, byName] of out.resources) for (const [name, r] of byName) assert.equal(grpcAccepts(typeUrl, r.resource).error, undefined, name);
  });

  it('GENERATOR grpc marks a proxyless node; the agent bootstrap uses the same names', () => {
    assert.equal(isGrpcNode({ GENERATOR: 'grpc' }), true);
    assert.equal(isGrpcNode({ NAMESPACE: 'demo' }), false);
    assert.equal(isGrpcNode(undefined), false);
    assert.equal(agentBootstrap.GENERATOR_KEY, GENERATOR_METADATA_KEY);
    assert.equal(agentBootstrap.GRPC_GENERATOR, GRPC_GENERATOR);
    assert.equal(agentBootstrap.CERT_PROVIDER_INSTANCE, CERT_PROVIDER_INSTANCE);
    assert.equal(agentBootstrap.SERVER_LISTENER_NAME_TEMPLATE, `${SERVER_LISTENER_PREFIX}%s`);
  });
});
