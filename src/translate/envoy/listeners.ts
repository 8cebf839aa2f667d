/**
 * Listeners (envoy/config/listener/v3/listener.proto): inbound per workload port, shaped by the
 * policy modules; outbound per Sidecar egress `bind:port`, HTTP through RDS or TCP to one cluster.
 */
import type { InboundListenerIR, OutboundListenerIR, ProxyIR } from '../../ir/types.js';
import { ExtensionType, FilterName, routerFilter, socketAddress } from './common.js';
import type { FilterChain, HttpConnectionManager, Listener, NamedFilter, TcpProxy } from './envoy-types.js';
import { slotFilters, type EnvoyPolicyModule, type InboundChainDraft, type InboundListenerDraft } from './policies/index.js';
import { inboundRouteConfiguration } from './routes.js';
import { downstreamTransportSocket } from './tls.js';

function hcmFilter(hcm: HttpConnectionManager): NamedFilter {
  return { name: FilterName.HttpConnectionManager, typedConfig: { '@type': ExtensionType.HttpConnectionManager, ...hcm } };
}

function tcpProxyFilter(tcp: TcpProxy): NamedFilter {
  return { name: FilterName.TcpProxy, typedConfig: { '@type': ExtensionType.TcpProxy, ...tcp } };
}

/**
 * Renders one inbound filter chain. HTTP: the HTTP connection manager (codec AUTO, the inline
 * route configuration, the chain's HTTP filters in slot order then the router); on mTLS chains the peer's
 * identity reaches the application as `x-forwarded-client-cert: ...;URI=spiffe://...`
 * (SANITIZE_SET with the URI), on plaintext chains a client-sent XFCC header is removed (SANITIZE).
 * TCP: the chain's network filters then tcp_proxy to the inbound cluster.
 */
function renderInboundChain(l: InboundListenerIR, c: InboundChainDraft, ir: ProxyIR): FilterChain {
  const terminal =
    l.protocol === 'TCP'
      ? tcpProxyFilter({ statPrefix: l.cluster, cluster: l.cluster })
      : hcmFilter({
          statPrefix: `inbound_${l.address}_${l.port}`,
          codecType: 'AUTO',
          routeConfig: inboundRouteConfiguration(l),
          httpFilters: [...slotFilters(c.httpFilters), routerFilter()],
          forwardClientCertDetails: c.tls ? 'SANITIZE_SET' : 'SANITIZE',
          ...(c.tls ? { setCurrentClientCertDetails: { uri: true } } : {}),
          normalizePath: { value: true },
        });
  const chain: FilterChain = { name: `${l.name}_${c.name}`, filters: [...slotFilters(c.networkFilters), terminal] };
  if (c.matchTransport) chain.filterChainMatch = { transportProtocol: c.matchTransport };
  if (c.tls) chain.transportSocket = downstreamTransportSocket(ir.proxy, ir.trustDomainAliases);
  return chain;
}

/**
 * The inbound listener `<address>_<port>`: the draft runs through `modules` in order, then is
 * rendered. Throws when no module produced a filter chain (the listener would accept nothing).
 */
export function inboundListener(l: InboundListenerIR, ir: ProxyIR, modules: readonly EnvoyPolicyModule[], warn: (msg: string) => void): Listener {
  const draft: InboundListenerDraft = { listener: l, listenerFilters: [], chains: [] };
  for (const m of modules) m.apply(draft, ir, warn);
  if (draft.chains.length === 0) throw new Error(`inbound listener ${l.name}: no policy module produced a filter chain`);
  const listener: Listener = {
    name: l.name,
    address: socketAddress(l.address, l.port),
    filterChains: draft.chains.map((c) => renderInboundChain(l, c, ir)),
    trafficDirection: 'INBOUND',
  };
  if (draft.listenerFilters.length > 0) listener.listenerFilters = draft.listenerFilters;
  return listener;
}

/**
 * The HTTP filters of every outbound HTTP connection manager before the router, as Istio's
 * sidecars have them: CORS, then fault injection. Both are empty (no effect) unless a route
 * carries per-route config for them, and they are always there so that a VirtualService adding a
 * fault or CORS policy changes only the routes (RDS), never the listener: a listener change would
 * leave open connections on the old filter chain until they drain.
 */
function routeFilters(): NamedFilter[] {
  return [
    { name: FilterName.Cors, typedConfig: { '@type': ExtensionType.Cors } },
    { name: FilterName.HttpFault, typedConfig: { '@type': ExtensionType.HttpFault } },
  ];
}

/**
 * The outbound listener `<bind>_<port>`: HTTP through the HTTP connection manager with its route
 * configuration over RDS (via ADS), or TCP to the one cluster (or, with a VirtualService `tcp`
 * split, tcp_proxy `weighted_clusters`).
 */
export function outboundListener(l: OutboundListenerIR): Listener {
  let filter: NamedFilter;
  if (l.protocol === 'HTTP') {
    if (!l.routeConfig) throw new Error(`outbound listener ${l.name}: HTTP without a route configuration`);
    filter = hcmFilter({
      statPrefix: `outbound_${l.address}_${l.port}`,
      codecType: 'AUTO',
      rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: l.routeConfig.name },
      httpFilters: [...routeFilters(), routerFilter()],
      normalizePath: { value: true },
    });
  } else {
    if (!l.tcpCluster) throw new Error(`outbound listener ${l.name}: TCP without a cluster`);
    const weighted = (l.tcpWeightedClusters ?? []).filter((c) => c.weight > 0);
    filter =
      weighted.length > 1
        ? tcpProxyFilter({ statPrefix: l.name, weightedClusters: { clusters: weighted.map((c) => ({ name: c.cluster, weight: c.weight })) } })
        : tcpProxyFilter({ statPrefix: weighted[0]?.cluster ?? l.tcpCluster, cluster: weighted[0]?.cluster ?? l.tcpCluster });
  }
  return {
    name: l.name,
    address: socketAddress(l.address, l.port),
    filterChains: [{ name: l.name, filters: [filter] }],
    trafficDirection: 'OUTBOUND',
  };
}
