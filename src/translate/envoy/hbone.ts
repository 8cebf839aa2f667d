/**
 * HBONE for Envoy sidecars (HTTP/2 CONNECT over mTLS on port 15008, as Istio's ztunnel and
 * waypoints speak it), built from Envoy's internal listeners:
 *
 * Inbound, on a proxy whose workload speaks HBONE (`ProxyIR.hbone`):
 * - listener `connect_terminate` on `<ip>:15008`: mTLS with the workload SVID, client certificates
 *   required and checked against the trust bundle (any SPIFFE ID of the trust domain: who may call
 *   is authorization's job), ALPN `h2`; an HTTP/2 connection manager accepting CONNECT. It records
 *   the peer's SPIFFE ID as filter state `io.skiff.peer_principal` (shared with the upstream) and
 *   routes a CONNECT for `<ip>:<port>` of each inbound port to cluster `inbound-hbone|<port>`;
 *   any other authority gets 404.
 * - cluster `inbound-hbone|<port>`: the internal listener of the same name, through the
 *   `internal_upstream` transport socket with a PROXY protocol v2 header, so the internal
 *   connection carries the real client address and the `<ip>:15008` it connected to.
 * - internal listener `inbound-hbone|<port>`: the PROXY protocol listener filter, then the very
 *   filter chain of the plain inbound listener of that port (its mTLS chain), without TLS, with
 *   its authorization rewritten for where it now runs: peer principals are read from the filter
 *   state instead of the (absent) TLS connection, `ipBlocks` from the PROXY-restored remote
 *   address, and port conditions decided for that port. HTTP chains tell the application the
 *   peer's SPIFFE ID in `x-forwarded-client-cert` (`URI=...`), as the mTLS chain does.
 *
 * Outbound, for an EDS cluster with endpoints that speak HBONE (`EndpointIR.hbone`):
 * - those endpoints are the internal listener `connect_originate|<cluster>` (endpoint id
 *   `<ip>:<port>`), with metadata `tunnel: {destination: "<ip>:<port>", address: "<ip>:15008"}`
 *   and the transport socket match `tunnel: http`, which picks a plain `internal_upstream`
 *   transport that passes the `tunnel` metadata on (other endpoints keep mTLS);
 * - internal listener `connect_originate|<cluster>`: tcp_proxy tunnelling in CONNECT for
 *   `%DYNAMIC_METADATA(tunnel:destination)%` to cluster `connect_originate|<cluster>`;
 * - cluster `connect_originate|<cluster>`: ORIGINAL_DST to `tunnel.address`, HTTP/2, mTLS with the
 *   workload SVID and the peer's certificate required to carry one of the destination workloads'
 *   SPIFFE IDs (the same check as the plain cluster), ALPN `h2`.
 *
 * The proxy's bootstrap must enable the `envoy.bootstrap.internal_listener` extension.
 */
import { HBONE_PORT, type LoadAssignmentIR, type OutboundClusterIR, type ProxyIR } from '../../ir/types.js';
import { duration } from '../../xds/protos/loader.js';
import { CONNECT_TIMEOUT_MS } from './clusters.js';
import { ExtensionType, FilterName, routerFilter, socketAddress } from './common.js';
import type {
  Cluster,
  ConnectRoute,
  FilterChain,
  HttpConnectionManager,
  LbEndpoint,
  Listener,
  NamedFilter,
  Permission,
  Principal,
  RbacRules,
  SetFilterStateConfig,
  StructObject,
  TcpProxy,
  TransportSocket,
  TypedConfig,
} from './envoy-types.js';
import { downstreamTransportSocket, upstreamTransportSocket } from './tls.js';

/** The HBONE termination listener (Istio's name). */
export const CONNECT_TERMINATE = 'connect_terminate';
/** Filter state key holding the HBONE peer's SPIFFE ID inside the internal listeners. */
export const PEER_PRINCIPAL_KEY = 'io.skiff.peer_principal';
/** Endpoint metadata namespace of the tunnel destination (`destination`) and HBONE address (`address`). */
export const TUNNEL_METADATA = 'tunnel';
/** The endpoint metadata value selecting the tunnel transport socket. */
const TUNNEL_MATCH: StructObject = { fields: { tunnel: { stringValue: 'http' } } };
const ALPN_H2 = ['h2'];

/** `inbound-hbone|<port>`: the cluster and internal listener delivering HBONE traffic for one inbound port. */
export function hboneInboundName(port: number): string {
  return `inbound-hbone|${port}`;
}

/** `connect_originate|<cluster>`: the internal listener and cluster tunnelling one outbound cluster's HBONE endpoints. */
export function connectOriginateName(cluster: string): string {
  return `connect_originate|${cluster}`;
}

/** `ip:port`, or `[ip]:port` for IPv6: the CONNECT authority. */
export function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function rawBuffer(): TransportSocket {
  return { name: FilterName.RawBuffer, typedConfig: { '@type': ExtensionType.RawBuffer } };
}

function http2Options(): Cluster['typedExtensionProtocolOptions'] {
  return { [FilterName.HttpProtocolOptions]: { '@type': ExtensionType.HttpProtocolOptions, explicitHttpConfig: { http2ProtocolOptions: {} } } };
}

// ---------------------------------------------------------------------------------------------
// Inbound

/** Principals as the internal listener sees them: identity from the filter state, IPs from the PROXY header. */
function internalPrincipal(p: Principal): Principal {
  if ('andIds' in p) return { andIds: { ids: p.andIds.ids.map(internalPrincipal) } };
  if ('orIds' in p) return { orIds: { ids: p.orIds.ids.map(internalPrincipal) } };
  if ('notId' in p) return { notId: internalPrincipal(p.notId) };
  if ('authenticated' in p) return { filterState: { key: PEER_PRINCIPAL_KEY, stringMatch: p.authenticated.principalName } };
  if ('directRemoteIp' in p) return { remoteIp: p.directRemoteIp };
  return p;
}

/** Permissions for one port: `destinationPort` is decided (the internal connection's port is 15008). */
function internalPermission(p: Permission, port: number): Permission {
  if ('andRules' in p) return { andRules: { rules: p.andRules.rules.map((r) => internalPermission(r, port)) } };
  if ('orRules' in p) return { orRules: { rules: p.orRules.rules.map((r) => internalPermission(r, port)) } };
  if ('notRule' in p) return { notRule: internalPermission(p.notRule, port) };
  if ('destinationPort' in p) return p.destinationPort === port ? { any: true } : { notRule: { any: true } };
  return p;
}

function internalRules(rules: RbacRules, port: number): RbacRules {
  const policies: RbacRules['policies'] = {};
  for (const [name, policy] of Object.entries(rules.policies)) {
    policies[name] = { permissions: policy.permissions.map((p) => internalPermission(p, port)), principals: policy.principals.map(internalPrincipal) };
  }
  return { ...rules, policies };
}

/** An RBAC filter (network or HTTP) rewritten for an internal listener; other filters unchanged. */
function internalFilter(f: NamedFilter, port: number): NamedFilter {
  const type = f.typedConfig['@type'];
  if (type !== ExtensionType.HttpRbac && type !== ExtensionType.NetworkRbac) return f;
  const config = f.typedConfig as NamedFilter['typedConfig'] & { rules?: RbacRules; shadowRules?: RbacRules };
  const out: Record<string, unknown> = { ...config };
  if (config.rules) out['rules'] = internalRules(config.rules, port);
  if (config.shadowRules) out['shadowRules'] = internalRules(config.shadowRules, port);
  return { name: f.name, typedConfig: out as NamedFilter['typedConfig'] };
}

/** The HTTP connection manager of an internal copy: filters rewritten, the peer identity in XFCC. */
function internalHcm(hcm: HttpConnectionManager, port: number): HttpConnectionManager {
  const { setCurrentClientCertDetails: _unused, ...rest } = hcm;
  const out: HttpConnectionManager = {
    ...rest,
    httpFilters: hcm.httpFilters.map((f) => internalFilter(f, port)),
    forwardClientCertDetails: 'SANITIZE',
    useRemoteAddress: { value: true },
  };
  if (hcm.routeConfig) {
    out.routeConfig = {
      ...hcm.routeConfig,
      requestHeadersToAdd: [{ header: { key: 'x-forwarded-client-cert', value: `URI=%FILTER_STATE(${PEER_PRINCIPAL_KEY}:PLAIN)%` }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
    };
  }
  return out;
}

/** The internal copy of an inbound listener's mTLS chain (or its only chain) for HBONE traffic. */
function internalInboundListener(l: Listener, port: number): Listener {
  const source = l.filterChains.find((c) => c.transportSocket !== undefined) ?? l.filterChains[0];
  if (!source) throw new Error(`inbound listener ${l.name} has no filter chain`);
  const filters = source.filters.map((f): NamedFilter => {
    if (f.name === FilterName.HttpConnectionManager) {
      const { '@type': type, ...hcm } = f.typedConfig as NamedFilter['typedConfig'] & HttpConnectionManager;
      return { name: f.name, typedConfig: { '@type': type, ...internalHcm(hcm, port) } };
    }
    return internalFilter(f, port);
  });
  const chain: FilterChain = { name: `${hboneInboundName(port)}_${source.name}`, filters };
  return {
    name: hboneInboundName(port),
    internalListener: {},
    listenerFilters: [{ name: FilterName.ProxyProtocolListener, typedConfig: { '@type': ExtensionType.ProxyProtocolListener } }],
    filterChains: [chain],
    trafficDirection: 'INBOUND',
  };
}

/** The cluster delivering one port's HBONE traffic into its internal listener, with a PROXY header. */
function hboneInboundCluster(port: number): Cluster {
  const name = hboneInboundName(port);
  return {
    name,
    type: 'STATIC',
    connectTimeout: duration(CONNECT_TIMEOUT_MS),
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { envoyInternalAddress: { serverListenerName: name } } } }] }] },
    transportSocket: {
      name: FilterName.InternalUpstream,
      typedConfig: {
        '@type': ExtensionType.InternalUpstream,
        transportSocket: { name: FilterName.ProxyProtocolUpstream, typedConfig: { '@type': ExtensionType.ProxyProtocolUpstream, config: { version: 'V2' }, transportSocket: rawBuffer() } },
      },
    },
  };
}

/** The `connect_terminate` listener in front of the inbound ports `ports`. */
/** `envoy.filters.http.set_filter_state`: the peer's URI SAN as `io.skiff.peer_principal`, shared with the upstream. */
function peerPrincipalFilter(): NamedFilter {
  const config: TypedConfig<SetFilterStateConfig> = {
    '@type': ExtensionType.SetFilterState,
    onRequestHeaders: [
      { objectKey: PEER_PRINCIPAL_KEY, factoryKey: 'envoy.string', formatString: { textFormatSource: { inlineString: '%DOWNSTREAM_PEER_URI_SAN%' } }, sharedWithUpstream: 'ONCE' },
    ],
  };
  return { name: FilterName.SetFilterState, typedConfig: config };
}

function connectTerminate(ir: ProxyIR, address: string, listenPort: number, ports: readonly number[]): Listener {
  const routes: ConnectRoute[] = ports.map((port) => ({
    name: hboneInboundName(port),
    match: { connectMatcher: {}, headers: [{ name: ':authority', stringMatch: { exact: hostPort(address, port) } }] },
    route: { cluster: hboneInboundName(port), upgradeConfigs: [{ upgradeType: 'CONNECT', connectConfig: {} }] },
  }));
  const hcm: HttpConnectionManager = {
    statPrefix: `hbone_${address}_${listenPort}`,
    codecType: 'HTTP2',
    http2ProtocolOptions: { allowConnect: true },
    upgradeConfigs: [{ upgradeType: 'CONNECT' }],
    routeConfig: { name: CONNECT_TERMINATE, virtualHosts: [{ name: CONNECT_TERMINATE, domains: ['*'], routes }] },
    httpFilters: [peerPrincipalFilter(), routerFilter()],
  };
  return {
    name: CONNECT_TERMINATE,
    address: socketAddress(address, listenPort),
    filterChains: [
      {
        name: CONNECT_TERMINATE,
        filters: [{ name: FilterName.HttpConnectionManager, typedConfig: { '@type': ExtensionType.HttpConnectionManager, ...hcm } }],
        transportSocket: downstreamTransportSocket(ir.proxy, ir.trustDomainAliases, ALPN_H2),
      },
    ],
    trafficDirection: 'INBOUND',
  };
}

/**
 * The HBONE inbound resources of `ir` (none unless `ir.hbone`): `connect_terminate`, and per
 * rendered inbound listener its `inbound-hbone|<port>` internal listener and cluster.
 */
export function hboneInbound(ir: ProxyIR, inbound: ReadonlyMap<string, Listener>): { listeners: Listener[]; clusters: Cluster[] } {
  if (!ir.hbone) return { listeners: [], clusters: [] };
  const listeners: Listener[] = [];
  const clusters: Cluster[] = [];
  const ports: number[] = [];
  for (const l of ir.inbound) {
    const rendered = inbound.get(l.name);
    if (!rendered || ports.includes(l.port)) continue;
    ports.push(l.port);
    listeners.push(internalInboundListener(rendered, l.port));
    clusters.push(hboneInboundCluster(l.port));
  }
  listeners.push(connectTerminate(ir, ir.hbone.address, ir.hbone.port, ports));
  return { listeners, clusters };
}

// ---------------------------------------------------------------------------------------------
// Outbound

/** Names of the load assignments that have at least one HBONE endpoint. */
export function hboneClusterNames(loadAssignments: readonly LoadAssignmentIR[]): Set<string> {
  return new Set(loadAssignments.filter((la) => la.endpoints.some((e) => e.hbone)).map((la) => la.clusterName));
}

/** The LB endpoint of an HBONE endpoint: the cluster's `connect_originate` internal listener, with the tunnel metadata. */
export function hboneLbEndpoint(clusterName: string, ip: string, port: number): LbEndpoint {
  const destination = hostPort(ip, port);
  return {
    endpoint: { address: { envoyInternalAddress: { serverListenerName: connectOriginateName(clusterName), endpointId: destination } } },
    metadata: {
      filterMetadata: {
        'envoy.transport_socket_match': TUNNEL_MATCH,
        [TUNNEL_METADATA]: { fields: { destination: { stringValue: destination }, address: { stringValue: hostPort(ip, HBONE_PORT) } } },
      },
    },
  };
}

/** Adds the transport socket match that sends HBONE endpoints of `cluster` into its internal listener. */
export function withHboneTransportMatch(cluster: Cluster): Cluster {
  return {
    ...cluster,
    transportSocketMatches: [
      {
        name: 'hbone',
        match: TUNNEL_MATCH,
        transportSocket: {
          name: FilterName.InternalUpstream,
          typedConfig: { '@type': ExtensionType.InternalUpstream, passthroughMetadata: [{ kind: { host: {} }, name: TUNNEL_METADATA }], transportSocket: rawBuffer() },
        },
      },
    ],
  };
}

/** The `connect_originate|<cluster>` internal listener and cluster of one outbound cluster. */
export function connectOriginate(cluster: OutboundClusterIR, ir: ProxyIR): { listener: Listener; cluster: Cluster } {
  const name = connectOriginateName(cluster.name);
  const tcp: TypedConfig<TcpProxy> = { '@type': ExtensionType.TcpProxy, statPrefix: name, cluster: name, tunnelingConfig: { hostname: `%DYNAMIC_METADATA(${TUNNEL_METADATA}:destination)%` } };
  const listener: Listener = {
    name,
    internalListener: {},
    filterChains: [
      {
        name,
        filters: [{ name: FilterName.TcpProxy, typedConfig: tcp }],
      },
    ],
    trafficDirection: 'OUTBOUND',
  };
  const tunnel: Cluster = {
    name,
    type: 'ORIGINAL_DST',
    lbPolicy: 'CLUSTER_PROVIDED',
    connectTimeout: duration(CONNECT_TIMEOUT_MS),
    originalDstLbConfig: { metadataKey: { key: TUNNEL_METADATA, path: [{ key: 'address' }] } },
    transportSocket: upstreamTransportSocket(cluster, ir.proxy, ALPN_H2),
    typedExtensionProtocolOptions: http2Options(),
  };
  return { listener, cluster: tunnel };
}
