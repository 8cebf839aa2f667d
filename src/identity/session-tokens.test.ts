import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import { MAX_SESSION_TTL_SECONDS, MIN_SESSION_TTL_SECONDS, SessionTokenIssuer } from './session-tokens.js';
import { TokenAuthority, TokenError } from './tokens.js';

const TD = 'cluster.local';
const WEB = 'spiffe://cluster.local/ns/shop/sa/web';

describe('session tokens', () => {
  let dir: string;
  let now: Date;
  const clock = () => now;
  let tokens: TokenAuthority;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-session-'));
    now = new Date();
    tokens = await TokenAuthority.open({ dataDir: dir, trustDomain: TD, logger: silentLogger(), clock });
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is accepted by the control plane as a bearer token for exactly the SVID identity, again and again', async () => {
    const sessions = await SessionTokenIssuer.open({ dataDir: dir, trustDomain: TD, logger: silentLogger(), clock });
    const s = await sessions.issue({ spiffeId: WEB, ttlSeconds: 60 });
    for (let i = 0; i < 3; i++) {
      const v = await tokens.verify(s.token);
      assert.equal(v.spiffeId, WEB);
      assert.equal(v.namespace, 'shop');
      assert.equal(v.serviceAccount, 'web');
      assert.equal(v.singleUse, false);
    }
    assert.equal(s.expiresAt.getTime() - s.issuedAt.getTime(), 60_000);
  });

  it('is refused once expired', async () => {
    const sessions = await SessionTokenIssuer.open({ dataDir: dir, trustDomain: TD, logger: silentLogger(), clock });
    const s = await sessions.issue({ spiffeId: WEB, ttlSeconds: 30 });
    now = new Date(now.getTime() + 40_000);
    await assert.rejects(tokens.verify(s.token), (err: unknown) => err instanceof TokenError && err.reason === 'expired');
  });

  it('is refused with another audience', async () => {
    const other = await SessionTokenIssuer.open({ dataDir: dir, trustDomain: TD, logger: silentLogger(), clock, audience: 'somebody-else' });
    const s = await other.issue({ spiffeId: WEB });
    await assert.rejects(tokens.verify(s.token), (err: unknown) => err instanceof TokenError && err.reason === 'wrong-audience');
  });

  it('is refused when signed by another control plane', async () => {
    const otherDir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-session-other-'));
    try {
      await TokenAuthority.open({ dataDir: otherDir, trustDomain: TD, logger: silentLogger() });
      const foreign = await SessionTokenIssuer.open({ dataDir: otherDir, trustDomain: TD, logger: silentLogger() });
      const s = await foreign.issue({ spiffeId: WEB });
      await assert.rejects(tokens.verify(s.token), (err: unknown) => err instanceof TokenError && err.reason === 'bad-signature');
    } finally {
      await fs.rm(otherDir, { recursive: true, force: true });
    }
  });

  it('leaves the single-use bootstrap token single-use, and dies with its revocation', async () => {
    const bootstrap = await tokens.create({ namespace: 'shop', serviceAccount: 'web', singleUse: true });
    await tokens.consume(await tokens.verify(bootstrap.token));
    const sessions = await SessionTokenIssuer.open({ dataDir: dir, trustDomain: TD, logger: silentLogger(), clock });
    const s = await sessions.issue({ spiffeId: WEB, lineage: bootstrap.jti });
    assert.equal(s.jti, bootstrap.jti);
    // The session token works; the bootstrap token stays used up.
    assert.equal((await tokens.verify(s.token)).spiffeId, WEB);
    await assert.rejects(tokens.verify(bootstrap.token), (err: unknown) => err instanceof TokenError && err.reason === 'replayed');
    // Revoking the bootstrap token revokes the session tokens of its lineage.
    await tokens.revoke(bootstrap.jti, bootstrap.expiresAt, 'test');
    await assert.rejects(tokens.verify(s.token), (err: unknown) => err instanceof TokenError && err.reason === 'revoked');
  });

  it('clamps the lifetime to its short range and refuses foreign identities', async () => {
    const sessions = await SessionTokenIssuer.open({ dataDir: dir, trustDomain: TD, logger: silentLogger(), clock });
    const long = await sessions.issue({ spiffeId: WEB, ttlSeconds: 90 * 24 * 3600 });
    assert.equal((long.expiresAt.getTime() - long.issuedAt.getTime()) / 1000, MAX_SESSION_TTL_SECONDS);
    const short = await sessions.issue({ spiffeId: WEB, ttlSeconds: 1 });
    assert.equal((short.expiresAt.getTime() - short.issuedAt.getTime()) / 1000, MIN_SESSION_TTL_SECONDS);
    await assert.rejects(sessions.issue({ spiffeId: 'spiffe://example.org/ns/shop/sa/web' }), /not in trust domain cluster.local/);
    await assert.rejects(sessions.issue({ spiffeId: 'https://example.org/x' }));
  });

  it('fails to open with a clear error without the signing key', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-session-empty-'));
    try {
      await assert.rejects(SessionTokenIssuer.open({ dataDir: empty, trustDomain: TD, logger: silentLogger() }), /cannot read the token signing key/);
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });
});
