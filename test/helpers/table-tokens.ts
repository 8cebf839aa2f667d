/**
 * The JWTs the authorization table sends (`TokenName` in test/authz-cases/types.ts), minted for
 * the table's two issuers: valid ones with various claims, and invalid ones (expired, wrong
 * audience, unknown issuer, signed by a key the issuer never published).
 */
import type { TokenName } from '../authz-cases/types.js';
import { createTestIssuer, type TestIssuer } from './jwt-issuer.js';

/** The issuer whose JWKS is inline in the table's RequestAuthentication. */
export const TABLE_ISSUER = 'https://issuer.skiff.test';
/** The issuer whose JWKS is served at `jwksUri`. */
export const TABLE_ISSUER2 = 'https://issuer2.skiff.test';

/** Signs every table token; `issuer` must be {@link TABLE_ISSUER} (kid `k1`), `issuer2` {@link TABLE_ISSUER2} (kid `k2`). */
export async function mintTableTokens(issuer: TestIssuer, issuer2: TestIssuer): Promise<Record<TokenName, string>> {
  // Same issuer names and key ids, other keys: their signatures must not verify.
  const rogue = await createTestIssuer(issuer.issuer, 'k1');
  const rogue2 = await createTestIssuer(issuer2.issuer, 'k2');
  const now = Math.floor(Date.now() / 1000);
  const base = { aud: 'backend', azp: 'web-client' };
  return {
    alice: await issuer.sign({ ...base, sub: 'alice', groups: ['dev', 'admins'], team: { name: 'payments' } }),
    bob: await issuer.sign({ ...base, sub: 'bob', groups: ['dev'] }),
    aliceOtherPresenter: await issuer.sign({ ...base, azp: 'other-client', sub: 'alice', groups: ['dev', 'admins'] }),
    aliceFewGroups: await issuer.sign({ ...base, sub: 'alice', groups: ['dev'] }),
    expired: await issuer.sign({ ...base, sub: 'alice', iat: now - 7200, exp: now - 3600 }),
    wrongAudience: await issuer.sign({ ...base, aud: 'somebody-else', sub: 'alice' }),
    wrongIssuer: await issuer.sign({ ...base, iss: 'https://unknown.skiff.test', sub: 'alice' }),
    badSignature: await rogue.sign({ ...base, sub: 'alice' }),
    issuer2: await issuer2.sign({ ...base, sub: 'carol' }),
    issuer2BadSignature: await rogue2.sign({ ...base, sub: 'carol' }),
  };
}
