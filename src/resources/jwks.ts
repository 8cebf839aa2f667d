/**
 * JSON Web Key Sets (RFC 7517 §5) as RequestAuthentication `jwks` carries them inline and a
 * `jwksUri` serves them: a JSON object with a non-empty `keys` array. Each key must be one Envoy's
 * JWT filter can verify with (`kty` RSA, EC, OKP or oct, RFC 7518 §6 / RFC 8037) and must import
 * with `node:crypto`, so a set accepted here is a set Envoy accepts.
 *
 * Used by resource validation (inline `jwks`), by the JWKS fetcher (`sources/jwks`) and by the
 * reference evaluator (`policy/`), which verifies tokens against the parsed keys.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';

/** One JSON Web Key as parsed from a set (RFC 7517 §4); other members are kept. */
export interface JsonWebKey {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  [member: string]: unknown;
}

/** A JWKS key ready to verify with. */
export interface VerificationKey {
  jwk: JsonWebKey;
  /** A public key (RSA, EC, OKP) or a secret key (oct). */
  key: KeyObject;
}

/** Result of {@link parseJwks}: the keys, or why the text is not a usable JWKS. */
export type JwksParseResult = { keys: VerificationKey[]; warnings: string[] } | { error: string };

const KEY_TYPES = new Set(['RSA', 'EC', 'OKP', 'oct']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Imports one key; returns the key or a message. */
function importKey(jwk: JsonWebKey): KeyObject | string {
  try {
    if (jwk.kty === 'oct') {
      if (typeof jwk['k'] !== 'string' || jwk['k'] === '') return 'an oct key needs "k"';
      return createSecretKey(Buffer.from(jwk['k'], 'base64url'));
    }
    // createPublicKey derives the public key from a private JWK too (the warning says so).
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Parses and checks a JWKS document. Errors: not JSON, not an object, no `keys` array, an empty
 * set, a key without a supported `kty`, a key that does not import. Warnings (as Istio's
 * `warnPrivateJwksKeys`): a key carrying private material (`d`, or a symmetric `oct` key).
 */
export function parseJwks(text: string): JwksParseResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { error: `jwks is not valid JSON: ${(err as Error).message}` };
  }
  if (!isObject(data)) return { error: 'jwks must be a JSON object with a "keys" array' };
  const list = data['keys'];
  if (!Array.isArray(list)) return { error: 'jwks must be a JSON object with a "keys" array' };
  if (list.length === 0) return { error: 'jwks has no keys' };
  const keys: VerificationKey[] = [];
  const warnings: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i];
    if (!isObject(item)) return { error: `jwks key ${i} is not a JSON object` };
    const kty = item['kty'];
    if (typeof kty !== 'string' || !KEY_TYPES.has(kty)) {
      return { error: `jwks key ${i}: unsupported or missing "kty" (${JSON.stringify(kty ?? null)}; expected RSA, EC, OKP or oct)` };
    }
    for (const member of ['kid', 'alg', 'use'] as const) {
      if (item[member] !== undefined && typeof item[member] !== 'string') return { error: `jwks key ${i}: "${member}" must be a string` };
    }
    const jwk = item as JsonWebKey;
    const key = importKey(jwk);
    if (typeof key === 'string') return { error: `jwks key ${i} (${kty}) is invalid: ${key}` };
    if (kty === 'oct' || jwk['d'] !== undefined) {
      warnings.push(`jwks key ${i} contains private key material; only public keys are needed to verify tokens`);
    }
    keys.push({ jwk, key });
  }
  return { keys, warnings };
}

/** The problem with a JWKS text, or undefined when {@link parseJwks} accepts it. */
export function jwksProblem(text: string): string | undefined {
  const parsed = parseJwks(text);
  return 'error' in parsed ? parsed.error : undefined;
}
