import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { buildSnapshot } from '../registry/index.js';
import { formatIssue, parseResources } from '../resources/parse.js';
import { parseJwks } from '../resources/jwks.js';
import type { RequestAuthentication } from '../resources/types.js';
import { applicableRequestAuthentications, type PolicyTarget } from './authorization.js';
import { jwksKey, jwtRulesOf, UNAVAILABLE_JWKS } from './request-authentication.js';

function jwks(): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k', alg: 'ES256' }] });
}
const INLINE = jwks();
const FETCHED = jwks();

function policies(yaml: string): RequestAuthentication[] {
  const parsed = parseResources(yaml, 'test.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  const target: PolicyTarget = { namespace: 'demo', labels: { app: 'api' }, rootNamespace: 'skiff-system', ref: 'demo/api' };
  return applicableRequestAuthentications(buildSnapshot(1, parsed.resources), target, () => undefined);
}

const YAML = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: mesh, namespace: skiff-system}
spec:
  jwtRules:
    - {issuer: "https://z.example.com", jwksUri: "https://z.example.com/keys"}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: api, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  jwtRules:
    - issuer: https://a.example.com
      jwks: '${INLINE}'
      fromHeaders: [{name: x-token, prefix: "Bearer "}, {name: x-raw}]
      fromParams: [t]
      outputPayloadToHeader: x-payload
      forwardOriginalToken: true
      outputClaimToHeaders: [{header: x-sub, claim: sub}]
    - {issuer: "https://m.example.com", jwksUri: "https://down.example.com/keys"}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: other, namespace: demo}
spec:
  selector: {matchLabels: {app: other}}
  jwtRules: [{issuer: "https://never.example.com", jwks: '${INLINE}'}]
`;

void test('rules of every applicable RequestAuthentication, sorted by issuer, keys inline or from the fetched map', () => {
  const warnings: string[] = [];
  const rules = jwtRulesOf(policies(YAML), new Map([['https://z.example.com/keys', FETCHED]]), (m) => warnings.push(m));
  assert.deepEqual(
    rules.map((r) => [r.issuer, r.jwksSource, r.source]),
    [
      ['https://a.example.com', 'inline', 'RequestAuthentication/demo/api jwtRules[0]'],
      ['https://m.example.com', 'unavailable', 'RequestAuthentication/demo/api jwtRules[1]'],
      ['https://z.example.com', 'jwksUri https://z.example.com/keys', 'RequestAuthentication/skiff-system/mesh jwtRules[0]'],
    ],
  );
  assert.equal(rules[0]?.jwks, INLINE);
  assert.equal(rules[2]?.jwks, FETCHED);
  assert.deepEqual(rules[0], {
    issuer: 'https://a.example.com',
    audiences: [],
    jwks: INLINE,
    jwksSource: 'inline',
    fromHeaders: [{ name: 'x-token', prefix: 'Bearer ' }, { name: 'x-raw' }],
    fromParams: ['t'],
    fromCookies: [],
    outputPayloadToHeader: 'x-payload',
    forwardOriginalToken: true,
    outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
    source: 'RequestAuthentication/demo/api jwtRules[0]',
  });
  assert.deepEqual(warnings, [
    'RequestAuthentication/demo/api jwtRules[1]: the keys of issuer https://m.example.com (jwksUri https://down.example.com/keys) are not available yet: its tokens are refused until they are',
  ]);
});

void test('keys that are not available fail closed: a valid JWKS whose private key nobody has', () => {
  const rules = jwtRulesOf(policies(YAML), undefined, () => undefined);
  const down = rules.find((r) => r.issuer === 'https://m.example.com');
  assert.equal(down?.jwks, UNAVAILABLE_JWKS);
  const parsed = parseJwks(UNAVAILABLE_JWKS);
  assert.ok(!('error' in parsed) && parsed.keys.length === 1 && parsed.keys[0]?.key.type === 'public');
  assert.equal((JSON.parse(UNAVAILABLE_JWKS) as { keys: Array<Record<string, unknown>> }).keys[0]?.['d'], undefined, 'no private key material');
});

void test('a fetched document that is not a JWKS is not shipped', () => {
  const warnings: string[] = [];
  const rules = jwtRulesOf(policies(YAML), new Map([['https://z.example.com/keys', '{"keys": "nope"}']]), (m) => warnings.push(m));
  assert.equal(rules.find((r) => r.issuer === 'https://z.example.com')?.jwks, UNAVAILABLE_JWKS);
  assert.ok(warnings.some((w) => w.includes('https://z.example.com') && w.includes('unusable')), warnings.join('\n'));
});

void test('the map key is the jwksUri, or the issuer when the rule has none (OpenID discovery)', () => {
  assert.equal(jwksKey({ issuer: 'https://i', jwksUri: 'https://i/keys' }), 'https://i/keys');
  assert.equal(jwksKey({ issuer: 'https://i' }), 'https://i');
});
