/** `skiff token create` run as an operator would, as a child process. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../observability/logger.js';
import { TokenAuthority } from '../identity/tokens.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');

function skiff(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('skiff token create', () => {
  it('refuses a data dir the control plane never initialised, and creates no key there', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-token-'));
    try {
      const r = skiff(['token', 'create', '--namespace', 'shop', '--service-account', 'web', '--data-dir', dir]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /no control plane data dir at .*token-signing-key\.jwk is missing/);
      assert.equal(r.stdout, '');
      assert.equal(fs.existsSync(path.join(dir, 'token-signing-key.jwk')), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("issues a token the control plane's token authority accepts for exactly that identity", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-token-'));
    try {
      const authority = await TokenAuthority.open({ dataDir: dir, trustDomain: 'cluster.local', logger: silentLogger() });
      const r = skiff(['token', 'create', '--namespace', 'shop', '--service-account', 'web', '--ttl', '10m', '--data-dir', dir]);
      assert.equal(r.status, 0, r.stderr);
      const verified = await authority.verify(r.stdout.trim());
      assert.equal(verified.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
      const lifetime = verified.expiresAt.getTime() - Date.now();
      assert.ok(lifetime > 9 * 60_000 && lifetime <= 10 * 60_000, `lifetime ${lifetime} ms`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a malformed --ttl with the flag named', () => {
    const r = skiff(['token', 'create', '--namespace', 'shop', '--service-account', 'web', '--ttl', 'soon']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--ttl: expected a duration/);
  });
});
