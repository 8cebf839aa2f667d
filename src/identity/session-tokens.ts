/**
 * Session tokens (DESIGN.md §4: "Proxies that can only send a bearer token (ztunnel) get renewable
 * session tokens from their agent"; issue 6 §3). ztunnel sends `authorization: Bearer <token>` on
 * every xDS stream and CreateCertificate call for as long as it runs, so its agent, which holds
 * the workload's X.509-SVID, asks the control plane for short-lived tokens for that same identity
 * and keeps ztunnel's token file fresh. The single-use bootstrap token is never used for this.
 *
 * A session token is a JWT signed with the control plane's token-signing key (the same
 * `token-signing-key.jwk` in the data dir as {@link TokenAuthority}), so every place that verifies
 * bearer tokens today (`TokenAuthority.verify`: ztunnel xDS streams, CreateCertificate) accepts it
 * unchanged. Claims:
 * - `iss`: the control plane's SPIFFE ID; `sub`: the SVID's SPIFFE ID (the only identity it is good for)
 * - `aud`: `skiff-ca`; `iat`, `exp` (TTL {@link MIN_SESSION_TTL_SECONDS}..{@link MAX_SESSION_TTL_SECONDS})
 * - `jti`: the `jti` of the bootstrap token the SVID descends from (its lineage), when known, else
 *   a fresh random one. Deliberately shared: revoking the bootstrap token revokes every session
 *   token of its lineage through the same `isRevoked(jti)` check, closes the ztunnel streams opened
 *   with them (`ZtunnelClients.openedWithTokens`), and certificates obtained with a session token
 *   are recorded under the same lineage. Never `single_use`, so the bootstrap token's single use
 *   (a separate `used` record, checked only for `single_use` tokens) is not affected.
 * - `ses`: `true`, marking a session token in logs and audits.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, importJWK, type JWK, type CryptoKey as JoseCryptoKey } from 'jose';
import type { Logger } from '../observability/logger.js';
import { CONTROL_PLANE_SPIFFE_ID, parseSpiffeId } from './spiffe.js';
import { DEFAULT_TOKEN_AUDIENCE, TOKEN_KEY_FILE } from './tokens.js';

/** Default session-token lifetime: 30 minutes. */
export const DEFAULT_SESSION_TTL_SECONDS = 1800;
/** Longest session-token lifetime: 1 hour (longer requests are capped). */
export const MAX_SESSION_TTL_SECONDS = 3600;
/** Shortest session-token lifetime: 10 seconds (shorter requests are raised). */
export const MIN_SESSION_TTL_SECONDS = 10;
const JTI_RE = /^[A-Za-z0-9_-]{16,64}$/;

/** A session token. `token` is a secret: never log it. */
export interface SessionToken {
  token: string;
  spiffeId: string;
  /** The `jti` (the lineage's bootstrap token `jti`, or a fresh one). */
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
}

/** Options of {@link SessionTokenIssuer.open}. */
export interface SessionTokenIssuerOptions {
  /** The control plane's data dir holding `token-signing-key.jwk` (created by `TokenAuthority.open`). */
  dataDir: string;
  trustDomain: string;
  logger: Logger;
  /** `aud` of issued tokens; default `skiff-ca` (what the control plane accepts). For tests. */
  audience?: string;
  /** Source of the current time; defaults to the system clock. For tests. */
  clock?: () => Date;
}

/** Options of {@link SessionTokenIssuer.issue}. */
export interface IssueSessionTokenOptions {
  /** The authenticated caller's SPIFFE ID (from its verified SVID), in this trust domain. */
  spiffeId: string;
  /** `jti` of the bootstrap token the caller's SVID descends from, if recorded. */
  lineage?: string;
  /** Requested lifetime in seconds; 0/undefined = default; clamped to the allowed range. */
  ttlSeconds?: number;
}

/** Issues session tokens signed with the control plane's token-signing key. */
export class SessionTokenIssuer {
  private constructor(
    private readonly key: JoseCryptoKey,
    private readonly kid: string | undefined,
    private readonly trustDomain: string,
    private readonly audience: string,
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  /**
   * Loads the signing key from `<dataDir>/token-signing-key.jwk`. Throws when the file is missing
   * (open the {@link TokenAuthority} first: it creates the key) or is not an ES256 private JWK.
   */
  static async open(opts: SessionTokenIssuerOptions): Promise<SessionTokenIssuer> {
    const file = path.join(opts.dataDir, TOKEN_KEY_FILE);
    let jwk: JWK;
    try {
      jwk = JSON.parse(await fs.readFile(file, 'utf8')) as JWK;
    } catch (err) {
      throw new Error(`session tokens: cannot read the token signing key ${file}: ${(err as Error).message}`);
    }
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new Error(`${file}: expected an EC P-256 private JWK (ES256)`);
    const key = (await importJWK(jwk, 'ES256')) as JoseCryptoKey;
    return new SessionTokenIssuer(key, jwk.kid, opts.trustDomain, opts.audience ?? DEFAULT_TOKEN_AUDIENCE, opts.logger, opts.clock ?? (() => new Date()));
  }

  /** The lifetime actually granted for a requested one (seconds). */
  static grantedTtl(requested: number | undefined): number {
    if (requested === undefined || !Number.isFinite(requested) || requested <= 0) return DEFAULT_SESSION_TTL_SECONDS;
    return Math.min(MAX_SESSION_TTL_SECONDS, Math.max(MIN_SESSION_TTL_SECONDS, Math.floor(requested)));
  }

  /**
   * Issues a session token for `spiffeId`. Throws an `Error` when the SPIFFE ID is not a workload
   * identity of this trust domain or `lineage` is not a well-formed `jti`.
   */
  async issue(opts: IssueSessionTokenOptions): Promise<SessionToken> {
    const id = parseSpiffeId(opts.spiffeId);
    if (id.trustDomain !== this.trustDomain) throw new Error(`${opts.spiffeId} is not in trust domain ${this.trustDomain}`);
    if (opts.lineage !== undefined && !JTI_RE.test(opts.lineage)) throw new Error('lineage jti is not 16-64 base64url characters');
    let jti = opts.lineage ?? crypto.randomBytes(16).toString('base64url');
    while (jti.startsWith('-')) jti = crypto.randomBytes(16).toString('base64url');
    const ttl = SessionTokenIssuer.grantedTtl(opts.ttlSeconds);
    const iat = Math.floor(this.clock().getTime() / 1000);
    const exp = iat + ttl;
    const token = await new SignJWT({ ses: true })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', ...(this.kid ? { kid: this.kid } : {}) })
      .setIssuer(CONTROL_PLANE_SPIFFE_ID(this.trustDomain))
      .setSubject(opts.spiffeId)
      .setAudience(this.audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.key);
    this.logger.debug({ spiffeId: opts.spiffeId, jti, exp }, 'issued session token');
    return { token, spiffeId: opts.spiffeId, jti, issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000) };
  }
}
