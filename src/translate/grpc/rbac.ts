/**
 * AuthorizationPolicy for xDS-enabled gRPC servers (gRFC A41): the same RBAC policies Envoy gets,
 * built by the Envoy translator's AuthorizationPolicy module (src/translate/envoy/policies), then
 * reduced to what grpc-js-xds enforces:
 *
 * - DENY and ALLOW filters are kept (enforced rules only; dry-run shadow rules are not evaluated
 *   by gRPC, so a dry-run-only filter is left out);
 * - AUDIT (RBAC action LOG) is refused by gRPC: left out, warned;
 * - CUSTOM needs ext_authz, which gRPC lacks: the requests a CUSTOM policy's rules match are
 *   denied instead (fail closed, as Istio does for a CUSTOM provider it cannot use), warned;
 * - RequestAuthentication (JWT) is not available: request principals never match, warned.
 *
 * Filter names are made unique (`envoy.filters.http.rbac.<n>`): grpc-js-xds rejects an HTTP
 * connection manager with two filters of one name.
 */
import type { InboundListenerIR, ProxyIR } from '../../ir/types.js';
import { ExtensionType, FilterName } from '../envoy/common.js';
import type { NamedFilter } from '../envoy/envoy-types.js';
import { authorizationPolicyModule } from '../envoy/policies/authorization-policy.js';
import { emptySlots, type InboundListenerDraft } from '../envoy/policies/index.js';

interface RbacConfig {
  rules?: { action: string; policies: Record<string, unknown> };
  shadowRules?: { action: string; policies: Record<string, unknown> };
}

function rbacFilter(n: number, rules: NonNullable<RbacConfig['rules']>): NamedFilter {
  const typedConfig = { '@type': ExtensionType.HttpRbac, rules };
  return { name: `${FilterName.HttpRbac}.${n}`, typedConfig };
}

/**
 * The RBAC HTTP filters (in order: CUSTOM-as-DENY, DENY, ALLOW) for inbound listener `l` of a
 * proxyless server; empty when no policy applies. `warn` gets one sentence per thing not enforced.
 */
export function grpcRbacFilters(l: InboundListenerIR, ir: ProxyIR, warn: (msg: string) => void): NamedFilter[] {
  if (l.jwtRules.length > 0) warn(`listener ${l.name}: RequestAuthentication (JWT) is not available on proxyless gRPC servers; request principals never match there`);
  if (l.authorization.length === 0) return [];
  const draft: InboundListenerDraft = {
    listener: { ...l, protocol: 'HTTP2' },
    listenerFilters: [],
    chains: [{ name: 'mtls', tls: true, networkFilters: emptySlots(), httpFilters: emptySlots() }],
  };
  authorizationPolicyModule.apply(draft, ir, warn);
  const chain = draft.chains[0];
  if (!chain) return [];
  const out: NamedFilter[] = [];
  for (const f of chain.httpFilters.authzCustom) {
    if (f.name !== FilterName.HttpRbac) continue; // ext_authz: gRPC has no such filter
    const cfg = f.typedConfig as unknown as RbacConfig;
    const policies = cfg.rules?.policies ?? cfg.shadowRules?.policies ?? {};
    if (!cfg.rules) warn(`listener ${l.name}: CUSTOM authorization (ext_authz) is not available on proxyless gRPC servers; the requests its rules match are denied instead`);
    out.push(rbacFilter(out.length, { action: 'DENY', policies }));
  }
  for (const f of chain.httpFilters.authz) {
    const cfg = f.typedConfig as unknown as RbacConfig;
    if (cfg.rules?.action === 'LOG') {
      warn(`listener ${l.name}: AUDIT policies are not supported by proxyless gRPC servers and are left out`);
      continue;
    }
    if (cfg.shadowRules) warn(`listener ${l.name}: dry-run AuthorizationPolicies are not evaluated by proxyless gRPC servers`);
    if (!cfg.rules) continue;
    out.push(rbacFilter(out.length, cfg.rules));
  }
  return out;
}
