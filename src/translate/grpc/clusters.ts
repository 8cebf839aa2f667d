/**
 * Clusters and ClusterLoadAssignments for proxyless gRPC clients (gRFC A27 CDS/EDS, A29 security,
 * A42 ring hash, A50 outlier detection). The Envoy renderings (src/translate/envoy/clusters.ts and
 * endpoints.ts) are reused and adapted where grpc-js-xds differs:
 *
 * - the transport socket names certificate provider instances (./tls.ts), never SDS secrets;
 * - `lb_policy` must be ROUND_ROBIN (the default) or RING_HASH: another policy (LEAST_REQUEST,
 *   RANDOM, MAGLEV) would make grpc-js-xds reject the cluster, so it falls back to round robin
 *   with a warning; Envoy-only options are dropped;
 * - every locality needs a `locality` (empty is fine) and a `load_balancing_weight` (gRPC ignores a locality without one): a
 *   locality without one gets the sum of its endpoints' weights, as Istio sends proxyless clients;
 * - HBONE endpoints are plain `ip:port` for gRPC (it cannot tunnel), with a warning.
 */
import type { LoadAssignmentIR, OutboundClusterIR, ProxyIdentity } from '../../ir/types.js';
import { clusterLoadAssignment } from '../envoy/endpoints.js';
import { outboundCluster } from '../envoy/clusters.js';
import { grpcUpstreamTransportSocket, type GrpcTransportSocket } from './tls.js';

/** A Cluster object as produced by the Envoy renderer, opened up for the gRPC adjustments. */
export type GrpcCluster = Omit<ReturnType<typeof outboundCluster>, 'transportSocket' | 'lbPolicy'> & { transportSocket?: GrpcTransportSocket; lbPolicy?: string } & Record<string, unknown>;

const GRPC_LB_POLICIES = new Set(['ROUND_ROBIN', 'RING_HASH']);
/** Cluster fields that only configure Envoy; gRPC ignores or rejects them. */
const ENVOY_ONLY_FIELDS = ['typedExtensionProtocolOptions', 'transportSocketMatches', 'leastRequestLbConfig', 'maglevLbConfig', 'originalDstLbConfig', 'upstreamConnectionOptions', 'commonHttpProtocolOptions'];

/**
 * The CDS cluster of an outbound mesh service for a proxyless client: EDS over ADS with xDS
 * security (mTLS through the bootstrap's certificate provider). Returns undefined (warned) for a
 * cluster gRPC cannot use (ORIGINAL_DST / PASSTHROUGH, DISABLE/SIMPLE/MUTUAL TLS with files).
 */
export function grpcOutboundCluster(c: OutboundClusterIR, proxy: ProxyIdentity, warn: (msg: string) => void): GrpcCluster | undefined {
  if (c.clientTls && c.clientTls.mode !== 'DISABLE') {
    warn(`cluster ${c.name}: DestinationRule tls mode ${c.clientTls.mode} (certificate files) is not supported for proxyless gRPC clients; the cluster is left out for them`);
    return undefined;
  }
  const rendered = outboundCluster(c, proxy) as unknown as GrpcCluster;
  if (rendered.type !== 'EDS') {
    warn(`cluster ${c.name}: a ${String(rendered.type)} cluster cannot be used by proxyless gRPC clients; left out for them`);
    return undefined;
  }
  const out: GrpcCluster = { ...rendered };
  for (const f of ENVOY_ONLY_FIELDS) delete out[f];
  if (c.clientTls?.mode === 'DISABLE') delete out.transportSocket;
  else out.transportSocket = grpcUpstreamTransportSocket(c, proxy);
  if (out.lbPolicy !== undefined && !GRPC_LB_POLICIES.has(out.lbPolicy)) {
    warn(`cluster ${c.name}: load balancer ${out.lbPolicy} is not available in proxyless gRPC; round robin is used for gRPC clients`);
    delete out.lbPolicy;
  }
  return out;
}

/**
 * The ClusterLoadAssignment of `la` for gRPC: Envoy's, with a locality weight on every locality
 * (the sum of its endpoints' weights, 1 each when unset) unless one is already set.
 */
export function grpcClusterLoadAssignment(la: LoadAssignmentIR, warn: (msg: string) => void): ReturnType<typeof clusterLoadAssignment> {
  if (la.endpoints.some((e) => e.hbone)) warn(`cluster ${la.clusterName}: HBONE endpoints are reached directly (no tunnel) by proxyless gRPC clients`);
  const plain: LoadAssignmentIR = { ...la, endpoints: la.endpoints.map((e) => ({ ...e, hbone: false })) };
  const cla = clusterLoadAssignment(plain);
  for (const group of cla.endpoints ?? []) {
    const g = group as typeof group & { loadBalancingWeight?: { value: number } };
    g.locality ??= {}; // grpc-js-xds rejects a LocalityLbEndpoints without a locality
    if (g.loadBalancingWeight === undefined) {
      g.loadBalancingWeight = { value: group.lbEndpoints.reduce((sum, ep) => sum + (ep.loadBalancingWeight?.value ?? 1), 0) };
    }
  }
  return cla;
}
