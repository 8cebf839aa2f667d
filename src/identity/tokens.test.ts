import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { silentLogger } from '../observability/logger.js';
import { TokenAuthority, TokenError, TOKEN_KEY_FILE, type TokenErrorReason } from './tokens.js';

const TD = 'cluster.local';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-tokens-'));
}

async function open(dataDir: string, extra: Partial<Parameters<typeof TokenAuthority.open>[0]> = {}): Promise<TokenAuthority> {
  return TokenAuthority.open({ dataDir, trustDomain: TD, logger: silentLogger(), ...extra });
}

async function refusedWith(p: Promise<unknown>, reason: TokenErrorReason, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TokenError, `expected TokenError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    if (re) assert.match(err.message, re);
    return true;
  });
}

describe('TokenAuthority', () => {
  let dir: string;
  let tokens: TokenAuthority;
  before(async () => {
    dir = tmpDir();
    tokens = await open(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates the ES256 signing key file with mode 0600 and reuses it on the next open', async () => {
    const file = path.join(dir, TOKEN_KEY_FILE);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const before = fs.readFileSync(file, 'utf8');
    const jwk = JSON.parse(before) as { kty: string; crv: string; alg: string };
    assert.deepEqual([jwk.kty, jwk.crv, jwk.alg], ['EC', 'P-256', 'ES256']);
    const again = await open(dir);
    assert.equal(fs.readFileSync(file, 'utf8'), before);
    const { token } = await again.create({ namespace: 'shop', serviceAccount: 'alice' });
    assert.equal((await tokens.verify(token)).serviceAccount, 'alice');
  });

  it('a token carries iss, sub, aud, exp, iat, jti, grp and single_use as DESIGN.md §4 says', async () => {
    const created = await tokens.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 600, singleUse: true, group: 'cart' });
    const claims = decodeJwt(created.token);
    assert.equal(decodeProtectedHeader(created.token).alg, 'ES256');
    assert.equal(claims.iss, 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane');
    assert.equal(claims.sub, 'spiffe://cluster.local/ns/shop/sa/alice');
    assert.equal(claims.aud, 'skiff-ca');
    assert.equal(claims.jti, created.jti);
    assert.equal(claims['grp'], 'shop/cart');
    assert.equal(claims['single_use'], true);
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 600);
    assert.equal(created.expiresAt.getTime(), (claims.exp ?? 0) * 1000);
    const verified = await tokens.verify(created.token);
    assert.deepEqual(verified, {
      spiffeId: 'spiffe://cluster.local/ns/shop/sa/alice',
      namespace: 'shop',
      serviceAccount: 'alice',
      jti: created.jti,
      group: 'shop/cart',
      singleUse: true,
      expiresAt: created.expiresAt,
    });
  });

  it('a multi-use token verifies and can be used repeatedly', async () => {
    const { token } = await tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    for (let i = 0; i < 3; i++) {
      const v = await tokens.verify(token);
      assert.equal(v.singleUse, false);
      await tokens.consume(v);
    }
  });

  it('an expired token is refused with expired', async () => {
    const past = await open(dir, { clock: () => new Date(Date.now() - 2 * 3600e3) });
    const { token } = await past.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 3600 });
    await refusedWith(tokens.verify(token), 'expired', /token expired/);
  });

  it('a token signed with another key is refused with bad-signature', async () => {
    const otherDir = tmpDir();
    try {
      const forger = await open(otherDir);
      const { token } = await forger.create({ namespace: 'shop', serviceAccount: 'alice' });
      await refusedWith(tokens.verify(token), 'bad-signature');
    } finally {
      fs.rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('a token for another audience is refused with wrong-audience unless that audience is configured', async () => {
    const { token } = await tokens.create({ namespace: 'shop', serviceAccount: 'alice', audience: 'istio-ca' });
    await refusedWith(tokens.verify(token), 'wrong-audience');
    const lenient = await open(dir, { audiences: ['istio-ca'] });
    assert.equal((await lenient.verify(token)).serviceAccount, 'alice');
  });

  it('a token from another trust domain issuer is refused with wrong-issuer', async () => {
    const other = await TokenAuthority.open({ dataDir: dir, trustDomain: 'other.domain', logger: silentLogger() });
    const { token } = await other.create({ namespace: 'shop', serviceAccount: 'alice' });
    await refusedWith(tokens.verify(token), 'wrong-issuer');
  });

  it('garbage, a truncated token and an unsigned token are refused with malformed or bad-signature', async () => {
    await refusedWith(tokens.verify('not-a-token'), 'malformed');
    await refusedWith(tokens.verify('a.b.c'), 'malformed');
    const { token } = await tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    await refusedWith(tokens.verify(token.slice(0, -10)), 'bad-signature');
    const [, payload] = token.split('.');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    await refusedWith(tokens.verify(none), 'bad-signature', /algorithm not allowed/);
  });

  it('a single-use token is refused with replayed once consumed, also after a restart', async () => {
    const { token } = await tokens.create({ namespace: 'shop', serviceAccount: 'alice', singleUse: true });
    const first = await tokens.verify(token);
    await tokens.consume(first);
    await refusedWith(tokens.verify(token), 'replayed');
    await refusedWith(tokens.consume(first), 'replayed');
    const restarted = await open(dir);
    await refusedWith(restarted.verify(token), 'replayed');
  });

  it('two concurrent uses of a single-use token: exactly one wins', async () => {
    const { token } = await tokens.create({ namespace: 'shop', serviceAccount: 'alice', singleUse: true });
    const other = await open(dir);
    const [a, b] = await Promise.all([tokens.verify(token), other.verify(token)]);
    const results = await Promise.allSettled([tokens.consume(a), other.consume(b)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  });

  it('a revoked token is refused with revoked by every instance sharing the data dir, also after a restart', async () => {
    const { token, jti, expiresAt } = await tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const other = await open(dir);
    await other.revoke(jti, expiresAt);
    await refusedWith(tokens.verify(token), 'revoked');
    await refusedWith((await open(dir)).verify(token), 'revoked');
  });

  it('a token created by another process on the same data dir verifies here', async () => {
    const moduleUrl = new URL('./tokens.ts', import.meta.url).href;
    const code = `
      const { TokenAuthority } = await import(${JSON.stringify(moduleUrl)});
      const { silentLogger } = await import(${JSON.stringify(new URL('../observability/logger.ts', import.meta.url).href)});
      const t = await TokenAuthority.open({ dataDir: process.argv[1], trustDomain: 'cluster.local', logger: silentLogger() });
      const { token } = await t.create({ namespace: 'shop', serviceAccount: 'from-cli', singleUse: true });
      process.stdout.write(token);`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, dir], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    const verified = await tokens.verify(res.stdout.trim());
    assert.equal(verified.serviceAccount, 'from-cli');
    await tokens.consume(verified);
  });

  it('state of expired tokens is pruned; live state is kept', async () => {
    const d = tmpDir();
    try {
      const past = await open(d, { clock: () => new Date(Date.now() - 3 * 3600e3) });
      const old = await past.create({ namespace: 'shop', serviceAccount: 'alice', singleUse: true, ttlSeconds: 3600 });
      await past.consume(await past.verify(old.token));
      const fresh = await past.create({ namespace: 'shop', serviceAccount: 'alice', singleUse: true, ttlSeconds: 24 * 3600 });
      await past.consume(await past.verify(fresh.token));
      const now = await open(d); // open() prunes
      assert.deepEqual(fs.readdirSync(path.join(d, 'token-state', 'used')), [fresh.jti]);
      await refusedWith(now.verify(fresh.token), 'replayed');
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('create refuses a zero or over-30-day TTL, a bad service account, and a WorkloadGroup in another namespace', async () => {
    await assert.rejects(tokens.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 0 }), /TTL/);
    await assert.rejects(tokens.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 31 * 86400 }), /TTL/);
    await assert.rejects(tokens.create({ namespace: 'shop', serviceAccount: 'al/ice' }), /service account/);
    await assert.rejects(tokens.create({ namespace: 'shop', serviceAccount: 'alice', group: 'other/cart' }), /not in the token's namespace/);
  });

  it('a signing key file that is not an EC P-256 JWK is a clear error', async () => {
    const d = tmpDir();
    try {
      fs.writeFileSync(path.join(d, TOKEN_KEY_FILE), '{"kty":"oct","k":"abc"}', { mode: 0o600 });
      await assert.rejects(open(d), /expected an EC P-256 private JWK/);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
