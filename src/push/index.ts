/** The per-proxy push context: node identity parsing and the IR builder. */
export { buildProxyIR, inboundClusterName, outboundClusterName, outboundSni, listenerName, routeConfigName, resolveDefaultEndpoint, virtualHosts, DEFAULT_EGRESS_BIND } from './build.js';
export { parseProxyNode, proxyIdentityFromNode, spiffeIdOf, ProxyNodeError, type ProxyNodeInput } from './node.js';
export { resolvePeerAuthentication, type EffectiveMtls, type MtlsResolver } from './peer-authentication.js';
export { selectSidecar } from './sidecar.js';
