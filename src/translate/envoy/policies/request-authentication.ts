/**
 * The RequestAuthentication module: Envoy's JWT filter (`envoy.filters.http.jwt_authn`,
 * envoy/extensions/filters/http/jwt_authn/v3/config.proto) on every chain of an inbound HTTP
 * listener, configured as Istio does (`pilot/pkg/security/authn` in istio/istio,
 * https://istio.io/latest/docs/reference/config/security/request_authentication/):
 *
 * - one provider `origins-<i>` per JWT rule (rules sorted by issuer), keys inline (`local_jwks`),
 *   the verified payload stored in dynamic metadata under `payload` for the RBAC filters
 *   (`requestPrincipals`, `request.auth.*`), `scope` and `permission` split at spaces;
 * - a request without a token passes (authorization may still require `requestPrincipals`); a
 *   request with a token that no provider accepts is refused with 401: one rule is
 *   `requires_any {provider, allow_missing}`; several are
 *   `requires_any {P1, ..., Pn, requires_all {any{P1, allow_missing}, ...}}`, so a token valid for
 *   one provider passes even when providers share a location;
 * - CORS preflight requests bypass the filter.
 *
 * TCP listeners get nothing: a JWT is an HTTP credential.
 */
import type { JwtRuleIR } from '../../../ir/types.js';
import { ExtensionType, FilterName } from '../common.js';
import type { JwtAuthentication, JwtProvider, JwtRequirement, NamedFilter } from '../envoy-types.js';
import { JWT_PAYLOAD_KEY } from './rbac-model.js';
import type { EnvoyPolicyModule } from './types.js';

/** Claims whose space-separated string value is also matched as a list (Istio's defaults). */
export const SPACE_DELIMITED_CLAIMS = ['permission', 'scope'];

function provider(r: JwtRuleIR): JwtProvider {
  const p: JwtProvider = {
    issuer: r.issuer,
    localJwks: { inlineString: r.jwks },
    payloadInMetadata: JWT_PAYLOAD_KEY,
    normalizePayloadInMetadata: { spaceDelimitedClaims: SPACE_DELIMITED_CLAIMS },
  };
  if (r.audiences.length > 0) p.audiences = r.audiences;
  if (r.forwardOriginalToken) p.forward = true;
  if (r.fromHeaders.length > 0) p.fromHeaders = r.fromHeaders.map((h) => (h.prefix ? { name: h.name, valuePrefix: h.prefix } : { name: h.name }));
  if (r.fromParams.length > 0) p.fromParams = r.fromParams;
  if (r.fromCookies.length > 0) p.fromCookies = r.fromCookies;
  if (r.outputPayloadToHeader) p.forwardPayloadHeader = r.outputPayloadToHeader;
  if (r.outputClaimToHeaders.length > 0) p.claimToHeaders = r.outputClaimToHeaders.map((c) => ({ headerName: c.header, claimName: c.claim }));
  return p;
}

/** The JWT filter for `rules` (non-empty). */
export function jwtAuthnFilter(rules: readonly JwtRuleIR[]): NamedFilter {
  const providers: Record<string, JwtProvider> = {};
  const each: JwtRequirement[] = [];
  const names: JwtRequirement[] = [];
  rules.forEach((r, i) => {
    const name = `origins-${i}`;
    providers[name] = provider(r);
    each.push({ requiresAny: { requirements: [{ providerName: name }, { allowMissing: {} }] } });
    names.push({ providerName: name });
  });
  const requires: JwtRequirement = each.length === 1 ? each[0]! : { requiresAny: { requirements: [...names, { requiresAll: { requirements: each } }] } };
  const cfg: JwtAuthentication = { providers, rules: [{ match: { prefix: '/' }, requires }], bypassCorsPreflight: true };
  return { name: FilterName.JwtAuthn, typedConfig: { '@type': ExtensionType.JwtAuthn, ...cfg } };
}

/** The RequestAuthentication module (runs after PeerAuthentication, before AuthorizationPolicy). */
export const requestAuthenticationModule: EnvoyPolicyModule = {
  name: 'RequestAuthentication',
  order: 200,
  apply(draft) {
    const l = draft.listener;
    if (l.protocol === 'TCP' || l.jwtRules.length === 0) return;
    const filter = jwtAuthnFilter(l.jwtRules);
    for (const chain of draft.chains) chain.httpFilters.authn.push(filter);
  },
};
