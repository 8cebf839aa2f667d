/**
 * The proxyless gRPC translator (issue 8 §2): a pure function from a proxy's IR to the xDS
 * resources grpc-js-xds consumes (Envoy v3 Listener, RouteConfiguration, Cluster,
 * ClusterLoadAssignment), chosen by the control plane for nodes whose metadata says
 * `GENERATOR: grpc` (Istio's marker). Client side: an API listener and a route configuration per
 * target `<host>:<port>`, EDS clusters with xDS security; server side: a listener per inbound port
 * with mTLS and RBAC. Resource shapes follow istio/istio `pilot/pkg/networking/grpcgen` and the
 * gRFCs A27, A28, A29, A31, A36, A41, A44. Same output shape as `translateEnvoy`.
 */
import type { ProxyIR } from '../../ir/types.js';
import { TypeUrl } from '../../xds/protos/loader.js';
import type { VersionedResource } from '../../xds/types.js';
import { versioned } from '../envoy/common.js';
import type { EnvoyTranslation } from '../envoy/index.js';
import { grpcClusterLoadAssignment, grpcOutboundCluster } from './clusters.js';
import { grpcClientListener, grpcServerListeners } from './listeners.js';
import { grpcRouteConfiguration } from './routes.js';

export { GENERATOR_METADATA_KEY, GRPC_GENERATOR, SERVER_LISTENER_PREFIX, CERT_PROVIDER_INSTANCE, isGrpcNode, serverListenerName, clientListenerName } from './names.js';
export { grpcClientListener, grpcServerListeners, type GrpcApiListener, type GrpcServerListener } from './listeners.js';
export { grpcRouteConfiguration, type GrpcRouteConfiguration, type GrpcRoute } from './routes.js';
export { grpcOutboundCluster, grpcClusterLoadAssignment, type GrpcCluster } from './clusters.js';
export { grpcRbacFilters } from './rbac.js';
export { grpcUpstreamTransportSocket, grpcDownstreamTransportSocket } from './tls.js';

/**
 * Translates `ir` (which should pass `validate()`) into the resources of a proxyless gRPC node.
 * Outbound TCP listeners have no gRPC meaning and are skipped; what gRPC cannot do is left out and
 * reported in `warnings`. Throws `UnknownFieldError` if a builder produced a field the Envoy proto
 * lacks (a bug).
 */
export function translateGrpc(ir: ProxyIR): EnvoyTranslation {
  const warnings: string[] = [];
  const warn = (m: string): void => {
    if (!warnings.includes(m)) warnings.push(m);
  };
  const listeners = new Map<string, VersionedResource>();
  const routes = new Map<string, VersionedResource>();
  const clusters = new Map<string, VersionedResource>();
  const endpoints = new Map<string, VersionedResource>();
  const edsNames = new Set<string>();
  const rdsNames = new Set<string>();

  for (const l of ir.outbound) {
    if (l.protocol !== 'HTTP' || !l.routeConfig) continue;
    for (const vh of l.routeConfig.virtualHosts) {
      const name = vh.name;
      if (listeners.has(name)) continue; // the same target through another egress bind
      listeners.set(name, versioned(TypeUrl.Listener, name, grpcClientListener(name)));
      routes.set(name, versioned(TypeUrl.RouteConfiguration, name, grpcRouteConfiguration(name, vh, warn)));
      rdsNames.add(name);
    }
  }
  for (const l of ir.inbound) {
    for (const s of grpcServerListeners(l, ir, warn)) {
      if (!listeners.has(s.name)) listeners.set(s.name, versioned(TypeUrl.Listener, s.name, s));
    }
  }
  for (const c of ir.clusters) {
    if (c.direction !== 'outbound') continue;
    const cluster = grpcOutboundCluster(c, ir.proxy, warn);
    if (!cluster) continue;
    clusters.set(c.name, versioned(TypeUrl.Cluster, c.name, cluster));
    edsNames.add(c.name);
  }
  for (const la of ir.loadAssignments) {
    if (!clusters.has(la.clusterName)) continue;
    endpoints.set(la.clusterName, versioned(TypeUrl.ClusterLoadAssignment, la.clusterName, grpcClusterLoadAssignment(la, warn)));
  }
  return {
    resources: new Map([
      [TypeUrl.Listener, listeners],
      [TypeUrl.RouteConfiguration, routes],
      [TypeUrl.Cluster, clusters],
      [TypeUrl.ClusterLoadAssignment, endpoints],
    ]),
    references: new Map([
      [TypeUrl.ClusterLoadAssignment, edsNames],
      [TypeUrl.RouteConfiguration, rdsNames],
    ]),
    warnings,
  };
}
