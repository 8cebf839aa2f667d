/**
 * Clusters (envoy/config/cluster/v3/cluster.proto): `inbound|<port>||` STATIC to the local
 * application; `outbound|<port>||<host>` EDS over ADS with Istio mutual TLS; `outbound|<port>||<ip>`
 * STATIC plaintext to an external authorizer.
 */
import type { AppProtocol, ExternalClusterIR, InboundClusterIR, OutboundClusterIR, ProxyIdentity } from '../../ir/types.js';
import { duration } from '../../xds/protos/loader.js';
import { endpointAddress, ExtensionType, FilterName } from './common.js';
import type { Cluster, HttpProtocolOptions, TypedConfig } from './envoy-types.js';
import { upstreamTransportSocket } from './tls.js';

/** Connect timeout of every cluster (Istio's default `connectTimeout`, 10 s). */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * `typedExtensionProtocolOptions` fixing the upstream HTTP version: HTTP/2 for HTTP2/gRPC ports,
 * HTTP/1.1 for HTTP ports, none for TCP.
 */
function protocolOptions(protocol: AppProtocol): Record<string, TypedConfig<HttpProtocolOptions>> | undefined {
  if (protocol === 'TCP') return undefined;
  const explicitHttpConfig: HttpProtocolOptions['explicitHttpConfig'] = protocol === 'HTTP2' ? { http2ProtocolOptions: {} } : { httpProtocolOptions: {} };
  return { [FilterName.HttpProtocolOptions]: { '@type': ExtensionType.HttpProtocolOptions, explicitHttpConfig } };
}

/** A STATIC cluster to the application endpoint of an inbound port, in plaintext. */
export function inboundCluster(c: InboundClusterIR): Cluster {
  const cluster: Cluster = {
    name: c.name,
    type: 'STATIC',
    connectTimeout: duration(CONNECT_TIMEOUT_MS),
    loadAssignment: { clusterName: c.name, endpoints: [{ lbEndpoints: [{ endpoint: { address: endpointAddress(c.endpoint) } }] }] },
  };
  const opts = protocolOptions(c.protocol);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}

/**
 * A STATIC plaintext cluster to an address outside the registry (an external authorizer given by
 * IP), HTTP/2 for gRPC services.
 */
export function externalCluster(c: ExternalClusterIR): Cluster {
  const cluster: Cluster = {
    name: c.name,
    type: 'STATIC',
    connectTimeout: duration(CONNECT_TIMEOUT_MS),
    loadAssignment: { clusterName: c.name, endpoints: [{ lbEndpoints: [{ endpoint: { address: endpointAddress(c.endpoint) } }] }] },
  };
  const opts = protocolOptions(c.protocol);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}

/** An EDS cluster (endpoints over ADS) to a mesh service port, with upstream mutual TLS. */
export function outboundCluster(c: OutboundClusterIR, proxy: ProxyIdentity): Cluster {
  const cluster: Cluster = {
    name: c.name,
    type: 'EDS',
    connectTimeout: duration(CONNECT_TIMEOUT_MS),
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    transportSocket: upstreamTransportSocket(c, proxy),
  };
  const opts = protocolOptions(c.protocol);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}
