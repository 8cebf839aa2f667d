/**
 * Listeners for proxyless gRPC (grpc-js-xds): client API listeners (gRFC A27) and server
 * listeners of xDS-enabled servers (gRFC A36).
 *
 * - A client resolving `xds:///<host>:<port>` asks LDS for `<host>:<port>`: an `api_listener`
 *   holding an HTTP connection manager whose routes come over RDS (ADS) under the same name.
 * - A server bound to `ip:port` asks for `xds.istio.io/grpc/lds/inbound/ip:port` (the bootstrap's
 *   template). Its Listener must carry that exact socket address, exactly one network filter (the
 *   HTTP connection manager, no listener filters), an inline route configuration whose routes use
 *   `non_forwarding_action`, and the router as last HTTP filter. The filter chain terminates mTLS
 *   through the certificate provider (./tls.ts) unless PeerAuthentication is DISABLE. gRPC cannot
 *   tell TLS from plaintext on one port, so PERMISSIVE is served as mutual TLS (warned).
 */
import type { InboundListenerIR, ProxyIR } from '../../ir/types.js';
import { ExtensionType, FilterName, routerFilter, socketAddress } from '../envoy/common.js';
import type { Address, NamedFilter } from '../envoy/envoy-types.js';
import { SERVER_LISTENER_PREFIX, serverListenerName } from './names.js';
import { grpcRbacFilters } from './rbac.js';
import { grpcDownstreamTransportSocket, type GrpcTransportSocket } from './tls.js';

/** `envoy.config.listener.v3.Listener` with an `api_listener` (client side). */
export interface GrpcApiListener {
  name: string;
  apiListener: { apiListener: { '@type': string } & Record<string, unknown> };
}

/** `envoy.config.listener.v3.Listener` of an xDS-enabled server. */
export interface GrpcServerListener {
  name: string;
  address: Address;
  filterChains: Array<{ name: string; filters: NamedFilter[]; transportSocket?: GrpcTransportSocket }>;
  trafficDirection: 'INBOUND';
}

/** The client API listener `name` (`<host>:<port>`), its routes over RDS as `name`. */
export function grpcClientListener(name: string): GrpcApiListener {
  return {
    name,
    apiListener: {
      apiListener: {
        '@type': ExtensionType.HttpConnectionManager,
        statPrefix: name,
        rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: name },
        httpFilters: [routerFilter()],
      },
    },
  };
}

/**
 * The server listeners for inbound listener `l`: one for its address and, when that is not already
 * a wildcard, one for `0.0.0.0` (a server bound to every interface asks for that name).
 */
export function grpcServerListeners(l: InboundListenerIR, ir: ProxyIR, warn: (msg: string) => void): GrpcServerListener[] {
  if (l.mtls === 'PERMISSIVE') warn(`listener ${l.name}: PeerAuthentication PERMISSIVE is served as STRICT on proxyless gRPC servers (gRPC cannot accept TLS and plaintext on one port)`);
  const rbac = grpcRbacFilters(l, ir, warn);
  const hcmConfig = {
    '@type': ExtensionType.HttpConnectionManager,
    statPrefix: `inbound_${l.address}_${l.port}`,
    routeConfig: {
      name: l.cluster,
      virtualHosts: [{ name: `inbound|grpc|${l.port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, nonForwardingAction: {} }] }],
    },
    httpFilters: [...rbac, routerFilter()],
  };
  const hcm: NamedFilter = { name: FilterName.HttpConnectionManager, typedConfig: hcmConfig };
  const tls = l.mtls !== 'DISABLE';
  const addresses = [l.address, ...(l.address === '0.0.0.0' || l.address === '::' ? [] : ['0.0.0.0'])];
  return addresses.map((ip) => ({
    name: serverListenerName(ip, l.port),
    address: socketAddress(ip, l.port),
    filterChains: [{ name: `${SERVER_LISTENER_PREFIX}${l.name}_${tls ? 'mtls' : 'plaintext'}`, filters: [hcm], ...(tls ? { transportSocket: grpcDownstreamTransportSocket() } : {}) }],
    trafficDirection: 'INBOUND',
  }));
}
