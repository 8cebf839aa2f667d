import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { silentLogger } from '../src/observability/logger.js';
import { SVID_FILE, SvidError, SvidManager, type Svid, type SvidManagerOptions } from './svid.js';
import { startTestControlPlane, type TestControlPlane } from './test-control-plane.js';
import { shortTempDir } from './testing.js';

const CP_ID = 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane';
const WEB = 'spiffe://cluster.local/ns/shop/sa/web';

void describe('SvidManager against the real CA over TLS', () => {
  let dir: string;
  let cp: TestControlPlane;
  const managers: SvidManager[] = [];

  before(async () => {
    dir = await shortTempDir();
    cp = await startTestControlPlane(path.join(dir, 'cp'));
  });
  after(async () => {
    for (const m of managers) await m.stop();
    await cp.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function manager(name: string, extra: Partial<SvidManagerOptions> = {}): SvidManager {
    const m = new SvidManager({
      controlPlane: cp.address,
      rootCertPath: cp.rootCertPath,
      controlPlaneSpiffeId: CP_ID,
      spiffeId: WEB,
      stateDir: path.join(dir, name, 'state'),
      tokenPath: path.join(dir, name, 'token'),
      logger: silentLogger(),
      ...extra,
    });
    managers.push(m);
    return m;
  }

  void it('gets an SVID with the bootstrap token, persists it 0600, and reuses it after a restart without a token', async () => {
    await fs.mkdir(path.join(dir, 'a'));
    await cp.writeToken(path.join(dir, 'a', 'token'), 'shop', 'web', { singleUse: true });
    const first = manager('a');
    const svid = await first.start();
    assert.equal(svid.spiffeId, WEB);
    const leaf = new crypto.X509Certificate(svid.certChainPem);
    assert.equal(leaf.subjectAltName, `URI:${WEB}`);
    assert.ok(leaf.checkPrivateKey(crypto.createPrivateKey(svid.keyPem)));
    assert.ok(leaf.verify(new crypto.X509Certificate(svid.rootsPem).publicKey), 'the leaf chains to the trust bundle that came with it');
    assert.ok(svid.notAfter.getTime() - svid.notBefore.getTime() <= 24 * 3600_000 + 120_000, 'default lifetime at most 24 h (+ backdating)');
    assert.deepEqual(cp.calls.at(-1), { token: true, clientCert: false, ok: true });

    const state = path.join(dir, 'a', 'state');
    assert.equal((await fs.stat(path.join(state, SVID_FILE))).mode & 0o777, 0o600);
    assert.equal((await fs.stat(state)).mode & 0o777, 0o700);
    const stored = await fs.readFile(path.join(state, SVID_FILE), 'utf8');
    assert.ok(!stored.includes((await fs.readFile(path.join(dir, 'a', 'token'), 'utf8')).trim()), 'the token is not stored with the SVID');
    assert.deepEqual((await fs.readdir(state)).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left behind');
    await first.stop();

    // Restart: the single-use token is spent and now even deleted; the persisted SVID is reused.
    await fs.rm(path.join(dir, 'a', 'token'));
    const callsBefore = cp.calls.length;
    const second = manager('a');
    const again = await second.start();
    assert.equal(again.serial, svid.serial);
    assert.equal(again.keyPem, svid.keyPem);
    assert.equal(cp.calls.length, callsBefore, 'no CA call on restart');
    await second.stop();
  });

  void it('renews at about half the lifetime over mTLS with a new key, with no token, and tells listeners', async () => {
    await fs.mkdir(path.join(dir, 'b'));
    await cp.writeToken(path.join(dir, 'b', 'token'), 'shop', 'web');
    const m = manager('b', { certTtlSeconds: 4, random: () => 0.5 });
    const first = await m.start();
    const life = first.notAfter.getTime() - first.notBefore.getTime();
    assert.ok(life <= 4_500, `short TTL honoured (${life} ms)`);
    await fs.rm(path.join(dir, 'b', 'token')); // renewal must not need it
    const callsBefore = cp.calls.length;
    const rotated = await new Promise<Svid>((resolve) => m.onRotate(resolve));
    const halfway = first.notBefore.getTime() + life / 2;
    assert.ok(Date.now() >= halfway - 50, 'not renewed before half the lifetime');
    assert.ok(Date.now() < first.notAfter.getTime(), 'renewed before expiry');
    assert.notEqual(rotated.serial, first.serial);
    assert.notEqual(rotated.keyPem, first.keyPem, 'a new key for each certificate');
    assert.equal(rotated.spiffeId, WEB);
    assert.deepEqual(cp.calls.slice(callsBefore)[0], { token: false, clientCert: true, ok: true });
    assert.equal(m.current().serial, rotated.serial);
    const persisted = await fs.readFile(path.join(dir, 'b', 'state', SVID_FILE), 'utf8');
    assert.ok(persisted.includes(rotated.certChainPem.trim()), 'the renewed SVID is persisted');
    await m.stop();
  });

  void it('keeps retrying a failed renewal with back-off, logging it, and renews once the CA is back', async () => {
    const cpDir = path.join(dir, 'cp2');
    let local = await startTestControlPlane(cpDir);
    const port = Number(local.address.split(':')[1]);
    await fs.mkdir(path.join(dir, 'c'));
    await local.writeToken(path.join(dir, 'c', 'token'), 'shop', 'web');
    const logs: { msg: string; level: number; serial?: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg: string; level: number }) });
    const m = manager('c', { controlPlane: local.address, rootCertPath: local.rootCertPath, logger, certTtlSeconds: 3, random: () => 0.5, retryInitialMs: 100, retryMaxMs: 300, requestTimeoutMs: 1000 });
    const first = await m.start();
    await local.stop();
    const rotated = new Promise<Svid>((resolve) => m.onRotate(resolve));
    // Wait until at least two renewal attempts have failed, then bring the CA back on the same port.
    const deadline = Date.now() + 10_000;
    while (logs.filter((l) => /renewal fail/.test(l.msg)).length < 2) {
      assert.ok(Date.now() < deadline, 'renewal failures are logged');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(m.current().serial, first.serial, 'the current SVID stays while renewal fails');
    local = await startTestControlPlane(cpDir, { port });
    try {
      const next = await rotated;
      assert.notEqual(next.serial, first.serial);
      assert.ok(Date.now() < first.notAfter.getTime() + 5_000);
      const text = JSON.stringify(logs);
      assert.ok(!text.includes('PRIVATE KEY') && !text.includes('BEGIN CERTIFICATE'), 'no key or certificate in the logs');
      assert.ok(logs.some((l) => l.msg === 'SVID renewed' && l.serial === next.serial), 'the renewal is logged with its serial');
    } finally {
      await m.stop();
      await local.stop();
    }
  });

  void it('refuses to start without a valid SVID and without a token, with a clear error', async () => {
    const m = manager('d');
    await assert.rejects(m.start(), (err: unknown) => err instanceof SvidError && /no valid SVID/.test(err.message) && /bootstrap token .*cannot be read/.test(err.message));
  });

  void it('fails fast when the CA refuses the token (garbage token)', async () => {
    await fs.mkdir(path.join(dir, 'e'));
    await fs.writeFile(path.join(dir, 'e', 'token'), 'not-a-jwt\n', { mode: 0o600 });
    const m = manager('e');
    await assert.rejects(m.start(), (err: unknown) => err instanceof SvidError && /UNAUTHENTICATED/.test(err.message));
  });

  void it('refuses a token for another identity: the CA will not sign it for this SPIFFE ID', async () => {
    await fs.mkdir(path.join(dir, 'f'));
    await cp.writeToken(path.join(dir, 'f', 'token'), 'shop', 'db');
    const m = manager('f');
    await assert.rejects(m.start(), (err: unknown) => err instanceof SvidError && /PERMISSION_DENIED|spiffe:\/\/cluster\.local\/ns\/shop\/sa\/db/.test(err.message));
  });

  void it('does not reuse a persisted SVID for another identity, nor a corrupt file', async () => {
    await fs.mkdir(path.join(dir, 'g'));
    await cp.writeToken(path.join(dir, 'g', 'token'), 'shop', 'web');
    const web = await manager('g').start();
    // Same state dir, other identity: needs its own token.
    const other = manager('g', { spiffeId: 'spiffe://cluster.local/ns/shop/sa/db', tokenPath: path.join(dir, 'g', 'missing') });
    await assert.rejects(other.start(), SvidError);
    // Corrupt file: a token is used again.
    await fs.writeFile(path.join(dir, 'g', 'state', SVID_FILE), 'garbage', { mode: 0o600 });
    const fresh = await manager('g').start();
    assert.notEqual(fresh.serial, web.serial);
  });

  void it('does not accept a control plane whose certificate has another SPIFFE ID and no matching SAN', async () => {
    await fs.mkdir(path.join(dir, 'h'));
    await cp.writeToken(path.join(dir, 'h', 'token'), 'shop', 'web');
    const m = manager('h', { controlPlaneSpiffeId: 'spiffe://cluster.local/ns/skiff-system/sa/someone-else', controlPlane: cp.address.replace('127.0.0.1', 'localhost'), retryInitialMs: 50, requestTimeoutMs: 2000 });
    const started = m.start();
    // The server certificate only names 127.0.0.1 and the control plane ID: every attempt fails TLS, so start keeps retrying.
    const outcome = await Promise.race([started.then(() => 'started', () => 'failed'), new Promise((r) => setTimeout(() => r('still retrying'), 1500))]);
    assert.equal(outcome, 'still retrying');
    await m.stop();
    await assert.rejects(started, SvidError);
  });
});
