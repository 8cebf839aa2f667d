/**
 * Bootstrap tokens (DESIGN.md §4): JWTs signed by the control plane with ES256 (library `jose`),
 * bound to one workload identity, short-lived, with a `jti` so single-use tokens and revocation
 * work. A VM's agent presents one as `authorization: Bearer <JWT>` to get its first SVID; after
 * that it renews with the SVID.
 *
 * Claims (RFC 7519 names where one exists):
 * - `iss`: the control plane's SPIFFE ID, `spiffe://<td>/ns/skiff-system/sa/skiff-control-plane`
 * - `sub`: the workload's SPIFFE ID, `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`
 * - `aud`: `skiff-ca` (tokens for other audiences, e.g. `istio-ca`, are accepted when configured)
 * - `exp`, `iat` (seconds since the epoch), `jti` (128 random bits, base64url)
 * - `grp`: optional WorkloadGroup, `<namespace>/<name>`
 * - `single_use`: `true` on a token that may obtain one certificate only (absent otherwise)
 *
 * State shared between processes on one host:
 * - `token-signing-key.jwk` in the data dir: the ES256 private key as a JWK (mode 0600), created
 *   once, atomically.
 * - Token state (issued tokens, used single-use `jti`s, revocations) behind {@link TokenStateStore}.
 *   The control plane and `skiff token` pass the durable store (`src/store`, SQLite in the data
 *   dir), so the API, the host CLI and the CA share one token store. Without one, the state lives
 *   in files (`token-state/used/<jti>`, `token-state/revoked/<jti>`, see {@link FileTokenState}).
 *   Verification reads the state at verify time, so a token used or revoked by another process
 *   (or another request) is refused at once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, jwtVerify, generateKeyPair, exportJWK, importJWK, calculateJwkThumbprint, errors as joseErrors } from 'jose';
import type { JWK, CryptoKey as JoseCryptoKey } from 'jose';
import type { Logger } from '../observability/logger.js';
import { CONTROL_PLANE_SPIFFE_ID, parseSpiffeId, spiffeId as makeSpiffeId, SpiffeIdError } from './spiffe.js';
import { createFileExclusive, ensureDir, isErrno, isGroupOrWorldAccessible, readIfExists } from './files.js';

/** The audience every Skiff bootstrap token carries by default and the CA always accepts. */
export const DEFAULT_TOKEN_AUDIENCE = 'skiff-ca';
/** Name of the signing key file in the data dir. */
export const TOKEN_KEY_FILE = 'token-signing-key.jwk';
/** Name of the token state directory in the data dir. */
export const TOKEN_STATE_DIR = 'token-state';
/** Longest token lifetime `create()` accepts: 30 days. */
export const MAX_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
/** Clock skew tolerated on `exp` and `iat`, seconds. */
const CLOCK_TOLERANCE_SECONDS = 5;
const ALG = 'ES256';
const JTI_RE = /^[A-Za-z0-9_-]{16,64}$/;
const GROUP_SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

/** Why a token was refused (the `reason` of a {@link TokenError}). */
export type TokenErrorReason = 'expired' | 'bad-signature' | 'wrong-audience' | 'wrong-issuer' | 'malformed' | 'replayed' | 'revoked';

/** A refused token. `message` is safe to return to the caller (it never holds the token). */
export class TokenError extends Error {
  constructor(
    readonly reason: TokenErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

/** A token whose signature and claims were checked by {@link TokenAuthority.verify}. */
export interface VerifiedToken {
  /** `sub`: the workload's SPIFFE ID. */
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  jti: string;
  /** `grp`: `<namespace>/<WorkloadGroup name>`, if the token is bound to a WorkloadGroup. */
  group?: string;
  /** True if the token may obtain one certificate only (see {@link TokenAuthority.consume}). */
  singleUse: boolean;
  expiresAt: Date;
}

/** A newly created token and its metadata. `token` is a secret: never log it. */
export interface CreatedToken {
  token: string;
  jti: string;
  expiresAt: Date;
  spiffeId: string;
}

/** Options for {@link TokenAuthority.create}. */
export interface CreateTokenOptions {
  namespace: string;
  serviceAccount: string;
  /** Lifetime in seconds, 1 to {@link MAX_TOKEN_TTL_SECONDS}; default 3600. */
  ttlSeconds?: number;
  /** Mark the token single-use (`single_use: true`). Default false. */
  singleUse?: boolean;
  /** WorkloadGroup the token is bound to: `<name>` (in `namespace`) or `<namespace>/<name>`. */
  group?: string;
  /** `aud` value(s); default `skiff-ca`. */
  audience?: string | string[];
  /** Who asks (recorded with the token, e.g. `admin-token:<id>` or `host:<user>`); default `unknown`. */
  createdBy?: string;
}

/** Options for {@link TokenAuthority.open}. */
export interface TokenAuthorityOptions {
  /** Directory holding the signing key and token state (created 0700 if missing). */
  dataDir: string;
  /** Trust domain of issued and accepted identities (e.g. `cluster.local`). */
  trustDomain: string;
  /** Audiences accepted besides `skiff-ca` (e.g. `istio-ca`). */
  audiences?: string[];
  logger: Logger;
  /** Source of the current time; defaults to the system clock. For tests. */
  clock?: () => Date;
  /**
   * Where token state lives: the durable store shared with the API (`store.tokens`). Default:
   * {@link FileTokenState} under `dataDir`.
   */
  state?: TokenStateStore;
}

/** What is recorded about an issued token (never the token itself). */
export interface IssuedTokenRecord {
  jti: string;
  /** `sub`. */
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  /** `grp`: `<namespace>/<WorkloadGroup>`. */
  group?: string;
  singleUse: boolean;
  audiences: string[];
  issuedAt: Date;
  expiresAt: Date;
  /** Who asked for it: `admin-token:<id>`, `host:<user>`, ... */
  createdBy: string;
}

/**
 * Where a {@link TokenAuthority} keeps token state. Implementations must be durable (a resolved
 * `markUsed`/`revoke` survives a crash) and shared by every process that verifies tokens of the
 * same key. `src/store` implements it on SQLite; {@link FileTokenState} on files.
 */
export interface TokenStateStore {
  /** Records an issued token's metadata (for listing and audit). */
  recordIssued(record: IssuedTokenRecord): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
  isUsed(jti: string): Promise<boolean>;
  /**
   * Marks a single-use token used. Resolves true for exactly one call per `jti` (across
   * processes), false for every later one. `expiresAt` lets the record be pruned after expiry.
   */
  markUsed(jti: string, expiresAt: Date, actor: string): Promise<boolean>;
  /**
   * Revokes `jti` (known or not). `expiresAt`: prune the record after that time (undefined: keep
   * it). Resolves true if it was not revoked before.
   */
  revoke(jti: string, expiresAt: Date | undefined, actor: string): Promise<boolean>;
  /** Deletes state of tokens expired before `now`; returns how many records went. */
  prune(now: Date): Promise<number>;
}

interface StateRecord {
  jti: string;
  /** Expiry of the token, seconds since the epoch; null = keep forever. */
  exp: number | null;
}

/**
 * {@link TokenStateStore} on files under `<dataDir>/token-state/`: `used/<jti>` and
 * `revoked/<jti>`, one small JSON file each, created with link(2) so exactly one consumer wins a
 * race, and fsync'd (file and directory) before the call returns. Issued tokens are not recorded
 * (no listing). Used where no durable store is open (unit tests, standalone tools).
 */
export class FileTokenState implements TokenStateStore {
  private constructor(
    private readonly stateDir: string,
    private readonly logger: Logger,
  ) {}

  /** Opens (creating the directories of) the file state under `dataDir`. */
  static async open(dataDir: string, logger: Logger): Promise<FileTokenState> {
    const stateDir = path.join(dataDir, TOKEN_STATE_DIR);
    await ensureDir(path.join(stateDir, 'used'));
    await ensureDir(path.join(stateDir, 'revoked'));
    return new FileTokenState(stateDir, logger);
  }

  async recordIssued(): Promise<void> {}

  isRevoked(jti: string): Promise<boolean> {
    return this.hasRecord('revoked', jti);
  }

  isUsed(jti: string): Promise<boolean> {
    return this.hasRecord('used', jti);
  }

  markUsed(jti: string, expiresAt: Date): Promise<boolean> {
    return this.writeRecord('used', { jti, exp: Math.ceil(expiresAt.getTime() / 1000) });
  }

  revoke(jti: string, expiresAt: Date | undefined): Promise<boolean> {
    return this.writeRecord('revoked', { jti, exp: expiresAt ? Math.ceil(expiresAt.getTime() / 1000) : null });
  }

  async prune(nowDate: Date): Promise<number> {
    const now = nowDate.getTime() / 1000;
    let removed = 0;
    for (const kind of ['used', 'revoked'] as const) {
      const dir = path.join(this.stateDir, kind);
      for (const name of await fs.readdir(dir)) {
        if (name.startsWith('.')) continue;
        const file = path.join(dir, name);
        const text = await readIfExists(file);
        if (text === undefined) continue;
        let rec: StateRecord | undefined;
        try {
          rec = JSON.parse(text) as StateRecord;
        } catch {
          this.logger.warn({ file }, 'unreadable token state record kept');
          continue;
        }
        if (typeof rec.exp === 'number' && rec.exp + CLOCK_TOLERANCE_SECONDS < now) {
          await fs.rm(file, { force: true });
          removed++;
        }
      }
    }
    return removed;
  }

  private async hasRecord(kind: 'used' | 'revoked', jti: string): Promise<boolean> {
    try {
      await fs.access(path.join(this.stateDir, kind, jti));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  private async writeRecord(kind: 'used' | 'revoked', rec: StateRecord): Promise<boolean> {
    const dir = path.join(this.stateDir, kind);
    await ensureDir(dir);
    return createFileExclusive(path.join(dir, rec.jti), JSON.stringify(rec) + '\n');
  }
}

/**
 * Issues and verifies bootstrap tokens. Several instances (in several processes) may share one
 * data dir and one {@link TokenStateStore}: they use the same key and see each other's
 * used/revoked `jti`s.
 */
export class TokenAuthority {
  private lastPrune = 0;

  private constructor(
    private readonly privateKey: JoseCryptoKey,
    private readonly publicKey: JoseCryptoKey,
    private readonly kid: string,
    private readonly state: TokenStateStore,
    private readonly trustDomain: string,
    private readonly issuer: string,
    private readonly acceptedAudiences: string[],
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  /**
   * Opens the token authority on `dataDir`: loads `token-signing-key.jwk`, or creates it (ES256,
   * mode 0600) if missing (atomically: two processes starting together end up with one key),
   * opens the token state ({@link TokenAuthorityOptions.state}, or files) and prunes state of
   * expired tokens.
   */
  static async open(opts: TokenAuthorityOptions): Promise<TokenAuthority> {
    const logger = opts.logger;
    const issuer = CONTROL_PLANE_SPIFFE_ID(opts.trustDomain);
    await ensureDir(opts.dataDir);
    const keyFile = path.join(opts.dataDir, TOKEN_KEY_FILE);
    let text = await readIfExists(keyFile);
    if (text === undefined) {
      const { privateKey } = await generateKeyPair(ALG, { extractable: true });
      const jwk = await exportJWK(privateKey);
      const kid = await calculateJwkThumbprint(jwk);
      const created = await createFileExclusive(keyFile, JSON.stringify({ ...jwk, alg: ALG, kid, use: 'sig' }) + '\n');
      if (created) logger.info({ file: keyFile, kid }, 'created token signing key');
      text = await fs.readFile(keyFile, 'utf8');
    }
    if (await isGroupOrWorldAccessible(keyFile)) {
      logger.warn({ file: keyFile }, 'token signing key file is readable by group or others; it should be mode 0600');
    }
    let jwk: JWK;
    try {
      jwk = JSON.parse(text) as JWK;
    } catch {
      throw new Error(`${keyFile}: not a JSON Web Key`);
    }
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') {
      throw new Error(`${keyFile}: expected an EC P-256 private JWK (ES256)`);
    }
    const { d: _d, ...publicJwk } = jwk;
    const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwk));
    const privateKey = (await importJWK(jwk, ALG)) as JoseCryptoKey;
    const publicKey = (await importJWK(publicJwk, ALG)) as JoseCryptoKey;
    const state = opts.state ?? (await FileTokenState.open(opts.dataDir, logger));
    const audiences = [DEFAULT_TOKEN_AUDIENCE, ...(opts.audiences ?? []).filter((a) => a !== DEFAULT_TOKEN_AUDIENCE)];
    const authority = new TokenAuthority(privateKey, publicKey, kid, state, opts.trustDomain, issuer, audiences, logger, opts.clock ?? (() => new Date()));
    await authority.prune();
    return authority;
  }

  /** The `iss` of tokens this authority issues and accepts. */
  get issuerId(): string {
    return this.issuer;
  }

  /**
   * Creates a token for `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`. Throws an `Error`
   * (not a TokenError) for a bad namespace/service account/group or a TTL outside
   * 1 s..{@link MAX_TOKEN_TTL_SECONDS}.
   */
  async create(opts: CreateTokenOptions): Promise<CreatedToken> {
    const ttl = opts.ttlSeconds ?? 3600;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
      throw new RangeError(`token TTL must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS} (30 days), got ${ttl}`);
    }
    const sub = makeSpiffeId(this.trustDomain, opts.namespace, opts.serviceAccount);
    const grp = opts.group === undefined ? undefined : normalizeGroup(opts.group, opts.namespace);
    // 128 random bits; never a leading '-', so `skiff token revoke <jti>` is not read as an option.
    let jti = crypto.randomBytes(16).toString('base64url');
    while (jti.startsWith('-')) jti = crypto.randomBytes(16).toString('base64url');
    const iat = Math.floor(this.clock().getTime() / 1000);
    const exp = iat + ttl;
    const claims: Record<string, unknown> = {};
    if (grp !== undefined) claims['grp'] = grp;
    if (opts.singleUse) claims['single_use'] = true;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(sub)
      .setAudience(opts.audience ?? DEFAULT_TOKEN_AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.privateKey);
    const audiences = opts.audience === undefined ? [DEFAULT_TOKEN_AUDIENCE] : Array.isArray(opts.audience) ? [...opts.audience] : [opts.audience];
    const parts = parseSpiffeId(sub);
    await this.state.recordIssued({
      jti,
      spiffeId: sub,
      namespace: parts.namespace,
      serviceAccount: parts.serviceAccount,
      ...(grp !== undefined ? { group: grp } : {}),
      singleUse: opts.singleUse === true,
      audiences,
      issuedAt: new Date(iat * 1000),
      expiresAt: new Date(exp * 1000),
      createdBy: opts.createdBy ?? 'unknown',
    });
    this.logger.info({ jti, spiffeId: sub, exp, singleUse: opts.singleUse === true, grp, createdBy: opts.createdBy }, 'created bootstrap token');
    return { token, jti, expiresAt: new Date(exp * 1000), spiffeId: sub };
  }

  /**
   * Checks a token: ES256 signature by this authority's key, `iss`, `aud` (one of the accepted
   * audiences), `exp`/`iat`, a well-formed `sub` in this trust domain and `jti`, and that the
   * `jti` is neither revoked nor (for a single-use token) already used. Does not consume it: call
   * {@link consume} once the token has been used. Throws {@link TokenError}.
   */
  async verify(token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.split('.').length !== 3) {
      throw new TokenError('malformed', 'token is not a compact JWS (three dot-separated parts)');
    }
    let payload: Record<string, unknown>;
    try {
      const result = await jwtVerify(token, this.publicKey, {
        algorithms: [ALG],
        issuer: this.issuer,
        audience: this.acceptedAudiences,
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: this.clock(),
      });
      payload = result.payload;
    } catch (err) {
      throw mapJoseError(err);
    }
    const now = this.clock().getTime() / 1000;
    const iat = payload['iat'];
    if (typeof iat === 'number' && iat > now + CLOCK_TOLERANCE_SECONDS) {
      throw new TokenError('malformed', 'token issued in the future (iat)');
    }
    const jti = payload['jti'];
    if (typeof jti !== 'string' || !JTI_RE.test(jti)) throw new TokenError('malformed', 'token jti is not 16-64 base64url characters');
    const sub = payload['sub'];
    let parts;
    try {
      parts = parseSpiffeId(String(sub));
    } catch (err) {
      throw new TokenError('malformed', `token sub: ${err instanceof SpiffeIdError ? err.message : 'not a SPIFFE ID'}`);
    }
    if (parts.trustDomain !== this.trustDomain) {
      throw new TokenError('malformed', `token sub ${String(sub)} is not in trust domain ${this.trustDomain}`);
    }
    const grp = payload['grp'];
    if (grp !== undefined && (typeof grp !== 'string' || !isGroup(grp) || !grp.startsWith(`${parts.namespace}/`))) {
      throw new TokenError('malformed', 'token grp must be <namespace>/<WorkloadGroup> in the token namespace');
    }
    const singleUse = payload['single_use'];
    if (singleUse !== undefined && typeof singleUse !== 'boolean') throw new TokenError('malformed', 'token single_use must be a boolean');
    if (await this.state.isRevoked(jti)) throw new TokenError('revoked', `token ${jti} was revoked`);
    if (singleUse === true && (await this.state.isUsed(jti))) throw new TokenError('replayed', `single-use token ${jti} was already used`);
    const verified: VerifiedToken = {
      spiffeId: String(sub),
      namespace: parts.namespace,
      serviceAccount: parts.serviceAccount,
      jti,
      singleUse: singleUse === true,
      expiresAt: new Date(Number(payload['exp']) * 1000),
    };
    if (typeof grp === 'string') verified.group = grp;
    return verified;
  }

  /**
   * Records that a single-use token was used, durably (fsync'd) before returning. Exactly one
   * call per `jti` succeeds, across processes; any later one throws {@link TokenError} `replayed`.
   * A token that is not single-use is not recorded (no-op).
   */
  async consume(verified: VerifiedToken): Promise<void> {
    if (!verified.singleUse) return;
    const created = await this.state.markUsed(verified.jti, verified.expiresAt, verified.spiffeId);
    if (!created) throw new TokenError('replayed', `single-use token ${verified.jti} was already used`);
    this.logger.info({ jti: verified.jti, spiffeId: verified.spiffeId }, 'single-use bootstrap token consumed');
    if (this.clock().getTime() - this.lastPrune > 3600_000) await this.prune();
  }

  /**
   * Revokes a token by `jti`, durably, so every later {@link verify} (in any process sharing the
   * data dir) refuses it with `revoked`. With `expiresAt` the record is pruned after that time;
   * without it the record is kept. Revoking twice is harmless. Resolves true if the token was not
   * revoked before. `actor` is recorded with the revocation.
   */
  async revoke(jti: string, expiresAt?: Date, actor = 'unknown'): Promise<boolean> {
    if (!JTI_RE.test(jti)) throw new TokenError('malformed', 'jti is not 16-64 base64url characters');
    const fresh = await this.state.revoke(jti, expiresAt, actor);
    this.logger.info({ jti, actor }, 'bootstrap token revoked');
    return fresh;
  }

  /** True if `jti` was revoked (by any process sharing the token state). */
  isRevoked(jti: string): Promise<boolean> {
    return this.state.isRevoked(jti);
  }

  /**
   * Deletes used/revoked records whose token has expired (they can no longer verify anyway).
   * Returns the number removed.
   */
  async prune(): Promise<number> {
    this.lastPrune = this.clock().getTime();
    const removed = await this.state.prune(this.clock());
    if (removed > 0) this.logger.debug({ removed }, 'pruned expired token state');
    return removed;
  }
}

function isGroup(grp: string): boolean {
  const parts = grp.split('/');
  return parts.length === 2 && parts.every((p) => GROUP_SEGMENT_RE.test(p) && p !== '.' && p !== '..');
}

function normalizeGroup(group: string, namespace: string): string {
  const full = group.includes('/') ? group : `${namespace}/${group}`;
  if (!isGroup(full)) throw new RangeError(`WorkloadGroup ${JSON.stringify(group)}: expected <name> or <namespace>/<name>`);
  if (!full.startsWith(`${namespace}/`)) {
    throw new RangeError(`WorkloadGroup ${JSON.stringify(group)} is not in the token's namespace ${namespace}`);
  }
  return full;
}

function mapJoseError(err: unknown): TokenError {
  if (err instanceof joseErrors.JWTExpired) return new TokenError('expired', 'token expired');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenError('bad-signature', 'token signature does not verify with the control plane key');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new TokenError('bad-signature', `token algorithm not allowed (only ${ALG})`);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return new TokenError('malformed', `token has no "${err.claim}" claim`);
    if (err.claim === 'aud') return new TokenError('wrong-audience', 'token audience is not accepted by this CA');
    if (err.claim === 'iss') return new TokenError('wrong-issuer', 'token issuer is not this control plane');
    return new TokenError('malformed', `token claim "${err.claim}" is invalid`);
  }
  if (err instanceof joseErrors.JOSEError) return new TokenError('malformed', `token is malformed (${err.code})`);
  if (err instanceof TypeError) return new TokenError('malformed', 'token is malformed');
  return new TokenError('malformed', 'token could not be verified');
}
