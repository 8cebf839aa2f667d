/**
 * The ext_authz filters of a CUSTOM AuthorizationPolicy provider, as Istio builds them
 * (envoy/extensions/filters/{http,network}/ext_authz/v3/ext_authz.proto): the filter only runs when
 * the RBAC filter before it, in shadow mode, matched one of the provider's rules and recorded the
 * policy name in dynamic metadata (`filter_enabled_metadata` on
 * `istio_ext_authz_shadow_effective_policy_id` starting with `istio-ext-authz-<provider>`).
 */
import type { ExtAuthzProviderIR } from '../../../ir/types.js';
import { duration } from '../../../xds/protos/loader.js';
import { ExtensionType, FilterName } from '../common.js';
import type { GrpcService, HttpExtAuthz, ListStringMatcher, MetadataMatcher, NamedFilter, NetworkExtAuthz, StringMatcher } from '../envoy-types.js';

/** Prefix of the RBAC policy names of CUSTOM rules (Istio's `istio-ext-authz`). */
export const EXT_AUTHZ_MATCH_PREFIX = 'istio-ext-authz';

/** Stat prefix of the shadow RBAC filter in front of ext_authz; its metadata keys start with it. */
export const EXT_AUTHZ_SHADOW_STAT_PREFIX = 'istio_ext_authz_';

/** The shadow engine's metadata key naming the policy that matched (Envoy RBAC `shadow_effective_policy_id`). */
const SHADOW_EFFECTIVE_POLICY_ID = 'shadow_effective_policy_id';

/** The RBAC policy-name prefix of a provider's rules. */
export function providerPolicyPrefix(provider: string): string {
  return `${EXT_AUTHZ_MATCH_PREFIX}-${provider}-`;
}

/** Runs ext_authz only when the shadow RBAC filter named `rbacFilter` matched a rule of `provider`. */
function filterEnabledMetadata(rbacFilter: string, provider: string): MetadataMatcher {
  return {
    filter: rbacFilter,
    path: [{ key: EXT_AUTHZ_SHADOW_STAT_PREFIX + SHADOW_EFFECTIVE_POLICY_ID }],
    value: { stringMatch: { prefix: `${EXT_AUTHZ_MATCH_PREFIX}-${provider}` } },
  };
}

/** Istio's header list: case-insensitive exact, `prefix*` or `*suffix`; undefined when empty. */
function headerList(headers: readonly string[]): ListStringMatcher | undefined {
  if (headers.length === 0) return undefined;
  return {
    patterns: headers.map((h): StringMatcher => {
      if (h.startsWith('*')) return { suffix: h.slice(1), ignoreCase: true };
      if (h.endsWith('*')) return { prefix: h.slice(0, -1), ignoreCase: true };
      return { exact: h, ignoreCase: true };
    }),
  };
}

function grpcService(p: ExtAuthzProviderIR): GrpcService {
  return { envoyGrpc: { clusterName: p.cluster, authority: p.host }, timeout: duration(p.timeoutMs) };
}

/** The HTTP ext_authz filter for provider `p` (HTTP or gRPC check service). */
export function httpExtAuthzFilter(p: ExtAuthzProviderIR): NamedFilter {
  const cfg: HttpExtAuthz = { transportApiVersion: 'V3', filterEnabledMetadata: filterEnabledMetadata(FilterName.HttpRbac, p.name) };
  if (p.kind === 'grpc') {
    cfg.grpcService = grpcService(p);
  } else {
    const service: NonNullable<HttpExtAuthz['httpService']> = {
      serverUri: { uri: `http://${p.host}`, cluster: p.cluster, timeout: duration(p.timeoutMs) },
    };
    if (p.pathPrefix) service.pathPrefix = p.pathPrefix;
    if (p.includeAdditionalHeadersInCheck.length > 0) {
      service.authorizationRequest = { headersToAdd: p.includeAdditionalHeadersInCheck.map((h) => ({ key: h.name, value: h.value })) };
    }
    const upstream = headerList(p.headersToUpstreamOnAllow);
    const onDeny = headerList(p.headersToDownstreamOnDeny);
    const onAllow = headerList(p.headersToDownstreamOnAllow);
    if (upstream || onDeny || onAllow) {
      service.authorizationResponse = {};
      if (upstream) service.authorizationResponse.allowedUpstreamHeaders = upstream;
      if (onDeny) service.authorizationResponse.allowedClientHeaders = onDeny;
      if (onAllow) service.authorizationResponse.allowedClientHeadersOnSuccess = onAllow;
    }
    cfg.httpService = service;
    const allowed = headerList(p.includeRequestHeadersInCheck);
    if (allowed) cfg.allowedHeaders = allowed;
  }
  if (p.failOpen) cfg.failureModeAllow = true;
  if (p.statusOnError !== undefined) cfg.statusOnError = { code: p.statusOnError };
  const body = p.includeRequestBodyInCheck;
  if (body) {
    cfg.withRequestBody = { maxRequestBytes: body.maxRequestBytes };
    if (body.allowPartialMessage) cfg.withRequestBody.allowPartialMessage = true;
    if (body.packAsBytes) cfg.withRequestBody.packAsBytes = true;
  }
  return { name: FilterName.HttpExtAuthz, typedConfig: { '@type': ExtensionType.HttpExtAuthz, ...cfg } };
}

/** The network ext_authz filter for a gRPC provider (TCP chains); undefined for an HTTP provider. */
export function networkExtAuthzFilter(p: ExtAuthzProviderIR): NamedFilter | undefined {
  if (p.kind !== 'grpc') return undefined;
  const cfg: NetworkExtAuthz = {
    statPrefix: 'tcp.',
    grpcService: grpcService(p),
    transportApiVersion: 'V3',
    filterEnabledMetadata: filterEnabledMetadata(FilterName.NetworkRbac, p.name),
  };
  if (p.failOpen) cfg.failureModeAllow = true;
  return { name: FilterName.NetworkExtAuthz, typedConfig: { '@type': ExtensionType.NetworkExtAuthz, ...cfg } };
}
