/** The per-proxy push context: node identity parsing and the IR builder. */
export { buildProxyIR, egressPartFor, egressShareOf, type EgressPart, inboundClusterName, outboundClusterName, outboundSni, listenerName, routeConfigName, resolveDefaultEndpoint, virtualHosts, DEFAULT_EGRESS_BIND, type BuildExtras } from './build.js';
export { parseProxyNode, proxyIdentityFromNode, spiffeIdOf, ProxyNodeError, type ProxyNodeInput } from './node.js';
export { resolvePeerAuthentication, type EffectiveMtls, type MtlsResolver } from './peer-authentication.js';
export { selectSidecar } from './sidecar.js';
export { applicableAuthorizationPolicies, applicableRequestAuthentications, normalizePolicy, policyScope, parseGoBool, DRY_RUN_ANNOTATION, type PolicyTarget } from './authorization.js';
export { jwtRulesOf, jwksKey, UNAVAILABLE_JWKS } from './request-authentication.js';
export {
  resolveExtAuthzProviders,
  parseDurationMs,
  providerNameProblem,
  DEFAULT_EXT_AUTHZ_TIMEOUT_MS,
  type MeshConfigInput,
  type ExtAuthzHttpInput,
  type ExtAuthzGrpcInput,
  type ExtAuthzContext,
} from './ext-authz.js';
