/**
 * RequestAuthentication as Istio enforces it
 * (https://istio.io/latest/docs/reference/config/security/request_authentication/ and Istio's
 * `convertToEnvoyJwtConfig`, `pilot/pkg/security/authn/policy_applier.go`): the JWT rules of every
 * RequestAuthentication that applies form one requirement "each token present must be valid for
 * an issuer whose locations it was found in; no token at all is fine". So:
 *
 * - no token in any configured location → the request passes, unauthenticated;
 * - a token that fails (malformed, unknown issuer, expired, not yet valid, bad signature, keys
 *   unavailable) → 401, whatever the authorization policies say; a token whose only fault is its
 *   audience → 403 (Envoy's JWT filter answers `JwtAudienceNotAllowed` with Forbidden);
 * - a valid token → its payload becomes `request.auth.*` (principal `iss/sub`, claims).
 *
 * Token locations follow Envoy's JWT filter: `fromHeaders` (the token follows `prefix`),
 * `fromParams` (query parameters); with neither, `Authorization: Bearer <token>` and the
 * `access_token` parameter. CORS preflights (OPTIONS with Origin and
 * Access-Control-Request-Method) skip verification, as Istio configures. `exp` and `nbf` allow
 * Envoy's default 60 s clock skew. Audiences compare without `http(s)://` and a trailing `/`, as
 * Envoy does.
 *
 * Signatures are checked synchronously with `node:crypto` (RS*, PS*, ES*, EdDSA, HS*).
 */
import { constants, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { parseJwks, type VerificationKey } from '../resources/jwks.js';
import type { JwtRule } from '../resources/types.js';
import type { JwksLookup } from './types.js';

/** A JWT rule with the policy it came from (for messages). */
export interface ScopedJwtRule {
  rule: JwtRule;
  /** `namespace/name` of the RequestAuthentication. */
  policy: string;
  index: number;
}

/** The outcome of request authentication. */
export type JwtOutcome =
  | { kind: 'none' }
  | { kind: 'valid'; principal: string; payload: Record<string, unknown> }
  /** `audience`: the failure was a disallowed audience (Envoy answers 403, else 401). */
  | { kind: 'invalid'; reason: string; audience: boolean };

/** A request as the JWT filter sees it. */
export interface JwtRequest {
  method: string;
  /** The raw path with its query. */
  rawPath: string;
  /** Lower-case header names. */
  headers: ReadonlyMap<string, string>;
}

/** Envoy's default `clock_skew_seconds`. */
const CLOCK_SKEW_S = 60;
/** Claims Istio always treats as space-delimited (`buildSpaceDelimitedClaims`). */
const DEFAULT_SPACE_DELIMITED = ['scope', 'permission'];

const HASHES: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };
const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

type Location = { header: string; prefix: string } | { param: string };

function locationsOf(rule: JwtRule): Location[] {
  const headers = (rule.fromHeaders ?? []).map((h) => ({ header: h.name.toLowerCase(), prefix: h.prefix ?? '' }));
  const params = (rule.fromParams ?? []).map((p) => ({ param: p }));
  if (headers.length + params.length + (rule.fromCookies?.length ?? 0) === 0) {
    return [{ header: 'authorization', prefix: 'Bearer ' }, { param: 'access_token' }];
  }
  return [...headers, ...params];
}

/** Envoy's extractor keeps the run of JWT characters after the prefix. */
function tokenAt(value: string): string | undefined {
  const m = /^[A-Za-z0-9\-_.]+/.exec(value);
  return m?.[0];
}

function extract(loc: Location, req: JwtRequest, query: URLSearchParams): string | undefined {
  if ('param' in loc) {
    const v = query.get(loc.param);
    return v === null || v === '' ? undefined : v;
  }
  const value = req.headers.get(loc.header);
  if (value === undefined) return undefined;
  if (loc.prefix === '') return tokenAt(value.trim());
  const at = value.indexOf(loc.prefix);
  return at < 0 ? undefined : tokenAt(value.slice(at + loc.prefix.length));
}

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Envoy jwt_verify_lib audience comparison: without `http(s)://` and a trailing `/`. */
function sanitizeAudience(aud: string): string {
  return aud.replace(/^https?:\/\//, '').replace(/\/$/, '');
}

function keyFits(alg: string, k: VerificationKey): boolean {
  const type = k.key.asymmetricKeyType;
  if (alg.startsWith('HS')) return k.key.type === 'secret';
  if (alg.startsWith('RS') || alg.startsWith('PS')) return type === 'rsa' || type === 'rsa-pss';
  if (alg.startsWith('ES')) return type === 'ec' && k.key.asymmetricKeyDetails?.namedCurve === EC_CURVES[alg];
  if (alg === 'EdDSA') return type === 'ed25519' || type === 'ed448';
  return false;
}

function signatureValid(alg: string, key: KeyObject, data: Buffer, sig: Buffer): boolean {
  const hash = HASHES[alg.slice(2)];
  try {
    if (alg.startsWith('HS') && hash) {
      const mac = createHmac(hash, key).update(data).digest();
      return mac.length === sig.length && timingSafeEqual(mac, sig);
    }
    if (alg.startsWith('RS') && hash) return verify(hash, data, key, sig);
    if (alg.startsWith('PS') && hash) return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
    if (alg.startsWith('ES') && hash) return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    if (alg === 'EdDSA') return verify(null, data, key, sig);
  } catch {
    return false;
  }
  return false;
}

const SUPPORTED_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512']);

/** The keys for a rule: inline `jwks`, else the lookup by `jwksUri` (or by issuer). */
function keysFor(rule: JwtRule, jwks: JwksLookup | undefined, warn: (m: string) => void): VerificationKey[] | undefined {
  let text: string | undefined = rule.jwks !== undefined && rule.jwks !== '' ? rule.jwks : undefined;
  const lookup = (k: string): string | undefined => (typeof jwks === 'function' ? jwks(k) : jwks?.[k]);
  if (text === undefined && rule.jwksUri) text = lookup(rule.jwksUri);
  if (text === undefined && rule.issuer) text = lookup(rule.issuer);
  if (text === undefined) {
    warn(`no keys for issuer "${rule.issuer}"${rule.jwksUri ? ` (jwksUri ${rule.jwksUri} not fetched)` : ''}: its tokens are rejected`);
    return undefined;
  }
  const parsed = parseJwks(text);
  if ('error' in parsed) {
    warn(`keys for issuer "${rule.issuer}" are unusable (${parsed.error}): its tokens are rejected`);
    return undefined;
  }
  return parsed.keys;
}

/** Verifies `token` for one rule; returns the payload or why it fails. */
function verifyFor(
  token: string,
  rule: JwtRule,
  loadKeys: () => VerificationKey[] | undefined,
  nowS: number,
): { payload: Record<string, unknown> } | { reason: string; audience?: true } {
  const parts = token.split('.');
  if (parts.length !== 3) return { reason: 'the token is not a JWT (header.payload.signature)' };
  const header = decodeJson(parts[0] ?? '');
  const payload = decodeJson(parts[1] ?? '');
  if (!header || !payload) return { reason: 'the token is malformed (header or payload is not base64url JSON)' };
  const alg = header['alg'];
  if (typeof alg !== 'string' || !SUPPORTED_ALGS.has(alg)) return { reason: `unsupported token algorithm ${JSON.stringify(alg ?? null)}` };
  if (rule.issuer !== '' && payload['iss'] !== rule.issuer) return { reason: `issuer ${JSON.stringify(payload['iss'] ?? null)} is not configured` };
  const wanted = rule.audiences ?? [];
  if (wanted.length > 0) {
    const aud = payload['aud'];
    const have = (typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : []).map(sanitizeAudience);
    if (!wanted.map(sanitizeAudience).some((w) => have.includes(w))) {
      return { reason: `audience ${JSON.stringify(aud ?? null)} is not allowed (want ${wanted.join(', ')})`, audience: true };
    }
  }
  const exp = payload['exp'];
  if (typeof exp === 'number' && nowS > exp + CLOCK_SKEW_S) return { reason: 'the token has expired' };
  const nbf = payload['nbf'];
  if (typeof nbf === 'number' && nowS < nbf - CLOCK_SKEW_S) return { reason: 'the token is not yet valid' };
  const keys = loadKeys();
  if (keys === undefined) return { reason: `no keys to verify tokens of issuer "${rule.issuer}"` };
  const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
  const data = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
  const sig = Buffer.from(parts[2] ?? '', 'base64url');
  const candidates = keys.filter((k) => (kid === undefined || k.jwk.kid === undefined || k.jwk.kid === kid) && (k.jwk.alg === undefined || k.jwk.alg === alg) && keyFits(alg, k));
  if (candidates.some((k) => signatureValid(alg, k.key, data, sig))) return { payload };
  return { reason: 'the token signature does not verify with the issuer\'s keys' };
}

/** The payload as Envoy's JWT filter stores it: space-delimited claims split into lists. */
function normalizePayload(payload: Record<string, unknown>, rule: JwtRule): Record<string, unknown> {
  const out = { ...payload };
  for (const claim of new Set([...DEFAULT_SPACE_DELIMITED, ...(rule.spaceDelimitedClaims ?? [])])) {
    const v = out[claim];
    if (typeof v === 'string') out[claim] = v.split(' ').filter((s) => s !== '');
  }
  return out;
}

/**
 * Authenticates a request against the JWT rules that apply to its workload (see the module
 * comment). `warn` receives notes (keys unavailable, cookies not read).
 */
export function authenticate(
  rules: readonly ScopedJwtRule[],
  req: JwtRequest,
  jwks: JwksLookup | undefined,
  nowMs: number,
  warn: (m: string) => void,
): JwtOutcome {
  if (rules.length === 0) return { kind: 'none' };
  if (req.method === 'OPTIONS' && req.headers.has('origin') && req.headers.has('access-control-request-method')) return { kind: 'none' };
  for (const r of rules) {
    if ((r.rule.fromCookies?.length ?? 0) > 0) warn(`${r.policy} jwtRules[${r.index}].fromCookies is not implemented: tokens in cookies are not read`);
  }
  const q = req.rawPath.indexOf('?');
  const query = new URLSearchParams(q < 0 ? '' : req.rawPath.slice(q + 1).split('#')[0]);
  // Each distinct token, with the rules in whose locations it was found.
  const found = new Map<string, ScopedJwtRule[]>();
  for (const r of rules) {
    for (const loc of locationsOf(r.rule)) {
      const token = extract(loc, req, query);
      if (token === undefined) continue;
      const list = found.get(token) ?? [];
      if (!list.includes(r)) list.push(r);
      found.set(token, list);
    }
  }
  if (found.size === 0) return { kind: 'none' };
  const nowS = Math.floor(nowMs / 1000);
  let first: { principal: string; payload: Record<string, unknown> } | undefined;
  for (const [token, foundIn] of found) {
    // Rules naming the token's (unverified) issuer first, so a failure reports their reason.
    const iss = decodeJson(token.split('.')[1] ?? '')?.['iss'];
    const candidates = [...foundIn].sort((a, b) => Number(b.rule.issuer === iss) - Number(a.rule.issuer === iss));
    let failure: { reason: string; audience?: true } | undefined;
    let ok: { payload: Record<string, unknown>; rule: JwtRule } | undefined;
    for (const c of candidates) {
      const result = verifyFor(token, c.rule, () => keysFor(c.rule, jwks, warn), nowS);
      if ('payload' in result) {
        ok = { payload: result.payload, rule: c.rule };
        break;
      }
      failure ??= result;
    }
    if (!ok) return { kind: 'invalid', reason: failure?.reason ?? 'the token is invalid', audience: failure?.audience === true };
    if (!first) {
      const i = typeof ok.payload['iss'] === 'string' ? ok.payload['iss'] : '';
      const sub = typeof ok.payload['sub'] === 'string' ? ok.payload['sub'] : '';
      first = { principal: `${i}/${sub}`, payload: normalizePayload(ok.payload, ok.rule) };
    }
  }
  return first ? { kind: 'valid', ...first } : { kind: 'none' };
}
