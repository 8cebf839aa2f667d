/**
 * The authorization table through the reference evaluator alone (no root, no Envoy): every case
 * of `test/authz-cases/cases.ts` must get the decision Istio documents. `authz.test.ts` runs the
 * same table through real Envoy as well; this file keeps the evaluator checked on machines where
 * network namespaces cannot be created.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { formatIssue, parseResources } from '../../src/resources/parse.js';
import { AUTHZ_GROUPS } from '../authz-cases/cases.js';
import { IDENTITIES, type CaseContext, type IdentityName, type TokenName } from '../authz-cases/types.js';
import { evaluateCase, type ReferenceEnv } from '../helpers/authz-reference.js';
import { createTestIssuer } from '../helpers/jwt-issuer.js';
import { EXT_AUTHZ_ALLOW, EXT_AUTHZ_HEADER } from '../helpers/stub-servers.js';
import { mintTableTokens, TABLE_ISSUER, TABLE_ISSUER2 } from '../helpers/table-tokens.js';

const ctxBase: Omit<CaseContext, 'jwks'> = {
  bIp: '198.18.41.2',
  c1: '198.18.41.100',
  c2: '198.18.41.101',
  issuer: TABLE_ISSUER,
  issuer2: TABLE_ISSUER2,
  jwksUri: 'http://198.18.41.1:8081/jwks.json',
  extAuthzProvider: 'ext-http',
};

describe('authorization table: the reference evaluator matches Istio', () => {
  let env: ReferenceEnv;

  before(async () => {
    const issuer = await createTestIssuer(TABLE_ISSUER, 'k1');
    const issuer2 = await createTestIssuer(TABLE_ISSUER2, 'k2');
    const tokens: Record<TokenName, string> = await mintTableTokens(issuer, issuer2);
    const ctx: CaseContext = { ...ctxBase, jwks: issuer.jwks };
    env = {
      ctx,
      clients: { c1: ctx.c1, c2: ctx.c2 },
      spiffeIds: Object.fromEntries(
        (Object.keys(IDENTITIES) as IdentityName[]).map((k) => [k, `spiffe://cluster.local/ns/${IDENTITIES[k].namespace}/sa/${IDENTITIES[k].serviceAccount}`]),
      ),
      tokens,
      jwksUriKeys: issuer2.jwks,
      extensionProviders: [{ name: 'ext-http', envoyExtAuthzHttp: { service: '198.18.41.1', port: 8082, includeRequestHeadersInCheck: [EXT_AUTHZ_HEADER] } }],
      externalAuthorizer: (headers) => headers[EXT_AUTHZ_HEADER] === EXT_AUTHZ_ALLOW,
    };
  });

  for (const group of AUTHZ_GROUPS) {
    describe(`policy set ${group.name}`, () => {
      for (const kase of group.cases) {
        it(kase.name, () => {
          const yaml = group.policies(env.ctx);
          const parsed = parseResources(yaml, `${group.name}.yaml`);
          assert.deepEqual(parsed.errors.map(formatIssue), [], 'the policy set must parse');
          const got = evaluateCase(kase, parsed.resources, env);
          assert.equal(got.outcome, kase.expect, `${kase.name}: expected ${kase.expect} per Istio (${kase.doc}); evaluator: ${got.detail}`);
        });
      }
    });
  }
});
