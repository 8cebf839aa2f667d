/**
 * A JWT issuer for RequestAuthentication tests: an ES256 key pair made with `jose`, its public
 * JWKS (RFC 7517) as the JSON string Istio's `jwtRules[].jwks` takes, and a signer for tokens
 * with chosen claims (RFC 7519: `iss`, `sub`, `aud`, `azp`, `exp`, `iat`, custom claims).
 */
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';

/** A test issuer. */
export interface TestIssuer {
  issuer: string;
  /** Public JWKS as a JSON string (`{"keys":[...]}`). */
  jwks: string;
  /**
   * Signs a token. `claims` are merged over `{iss: issuer, iat: now, exp: now + 1 h}`; pass
   * `exp` in the past for an expired token, another `iss` for a wrong issuer.
   */
  sign(claims: JWTPayload): Promise<string>;
}

/** Creates an issuer named `issuer` with a fresh key pair whose key id is `kid`. */
export async function createTestIssuer(issuer: string, kid: string): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return {
    issuer,
    jwks: JSON.stringify({ keys: [jwk] }),
    sign: async (claims) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, iat: now, exp: now + 3600, ...claims }).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(privateKey);
    },
  };
}
