/**
 * The JWT rules of the RequestAuthentications that apply to a workload, with their keys resolved to
 * an inline JWKS (https://istio.io/latest/docs/reference/config/security/request_authentication/).
 * The control plane fetches `jwksUri` itself (Istio's default `istiod` JWKS fetch mode) and the
 * caller hands the documents in; Envoy never fetches keys.
 */
import { resourceKey, type RequestAuthentication } from '../resources/types.js';
import { parseJwks } from '../resources/jwks.js';
import type { JwtRuleIR } from '../ir/types.js';

/**
 * A JWKS holding one RSA public key whose private key was generated once and thrown away: nobody
 * can sign a token it verifies. Used when a rule's keys are not available, so that every token of
 * that issuer is refused (fail closed) while requests without a token still pass, as Istio does
 * when its JWKS fetch fails.
 */
export const UNAVAILABLE_JWKS = JSON.stringify({
  keys: [
    {
      kty: 'RSA',
      e: 'AQAB',
      n: 'sHTKmneVMHzImlUNQ4DHOdT7jN9V-vQAT5uAdJvN9S7L46kbrU-NQNXeFPgmsPULp6Lv3bLWnIsY6OrFj-9RV7lDWoqSHWNUH5Ib0hys6Kx_hEJQI9e7_wPKsKcS5ityLkvfhBUf7kxXV8LznX41zUIr9yozUeUv8Zp2xRrKOahqvZmmo4YE_mfexEgOb36HpeUN42eKBx92T5-HRaJh7sJEpcBJozAm1wUzzqe1TZgvikrmeIoN8W4qSM3xUqSValqYYYTlnknDJidCYkhoV4hflsrbO8HbCRD8P0LMVMqTu2juR5cAxnYCA3Xu-dXDnB-ChHmL0u3gv-i_0k5A_Q',
    },
  ],
});

/**
 * The key under which the caller's JWKS map holds the keys of a rule without inline `jwks`: its
 * `jwksUri`, or, when that is unset too, its `issuer` (the fetcher then finds the keys through
 * OpenID discovery, `<issuer>/.well-known/openid-configuration`, as Istio does).
 */
export function jwksKey(rule: { issuer: string; jwksUri?: string }): string {
  return rule.jwksUri !== undefined && rule.jwksUri !== '' ? rule.jwksUri : rule.issuer;
}

/**
 * The JWT rules of `policies` (already scoped to the workload), in Istio's order (by issuer, stable),
 * each with its JWKS: the rule's inline `jwks`, else `jwks.get(jwksKey(rule))`. Keys that are
 * missing or not a usable JWKS are replaced by {@link UNAVAILABLE_JWKS} and reported through `warn`.
 */
export function jwtRulesOf(policies: readonly RequestAuthentication[], jwks: ReadonlyMap<string, string> | undefined, warn: (msg: string) => void): JwtRuleIR[] {
  const out: JwtRuleIR[] = [];
  for (const p of policies) {
    (p.spec.jwtRules ?? []).forEach((r, i) => {
      const source = `${resourceKey(p)} jwtRules[${i}]`;
      let doc: string | undefined;
      let jwksSource: string;
      if (r.jwks !== undefined && r.jwks !== '') {
        doc = r.jwks;
        jwksSource = 'inline';
      } else {
        const key = jwksKey(r);
        doc = jwks?.get(key);
        jwksSource = r.jwksUri ? `jwksUri ${r.jwksUri}` : `OpenID discovery of ${r.issuer}`;
        if (doc === undefined) {
          warn(`${source}: the keys of issuer ${r.issuer} (${jwksSource}) are not available yet: its tokens are refused until they are`);
          jwksSource = 'unavailable';
        }
      }
      if (doc !== undefined) {
        const parsed = parseJwks(doc);
        if ('error' in parsed) {
          warn(`${source}: the keys of issuer ${r.issuer} (${jwksSource}) are unusable (${parsed.error}): its tokens are refused`);
          doc = undefined;
          jwksSource = 'unavailable';
        }
      }
      const rule: JwtRuleIR = {
        issuer: r.issuer,
        audiences: [...(r.audiences ?? [])],
        jwks: doc ?? UNAVAILABLE_JWKS,
        jwksSource,
        fromHeaders: (r.fromHeaders ?? []).map((h) => (h.prefix !== undefined && h.prefix !== '' ? { name: h.name, prefix: h.prefix } : { name: h.name })),
        fromParams: [...(r.fromParams ?? [])],
        fromCookies: [...(r.fromCookies ?? [])],
        forwardOriginalToken: r.forwardOriginalToken ?? false,
        outputClaimToHeaders: (r.outputClaimToHeaders ?? []).map((c) => ({ header: c.header, claim: c.claim })),
        source,
      };
      if (r.outputPayloadToHeader) rule.outputPayloadToHeader = r.outputPayloadToHeader;
      out.push(rule);
    });
  }
  return out.sort((a, b) => (a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0));
}
