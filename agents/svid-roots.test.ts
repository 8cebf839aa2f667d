/** Bad input: a `--root-cert` file that holds no certificate fails fast with a clear error. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/observability/logger.js';
import { SvidError, SvidManager } from './svid.js';

describe('control plane trust bundle file', () => {
  for (const [name, content] of [
    ['a text file', 'junk\n'],
    ['a truncated certificate', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'],
  ] as const) {
    it(`refuses ${name} at once instead of retrying`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-roots-'));
      try {
        fs.writeFileSync(path.join(dir, 'root.pem'), content);
        fs.writeFileSync(path.join(dir, 'token'), 'x.y.z\n');
        const mgr = new SvidManager({
          controlPlane: '127.0.0.1:1',
          rootCertPath: path.join(dir, 'root.pem'),
          controlPlaneSpiffeId: 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane',
          spiffeId: 'spiffe://cluster.local/ns/shop/sa/web',
          stateDir: path.join(dir, 'state'),
          tokenPath: path.join(dir, 'token'),
          logger: silentLogger(),
          retryInitialMs: 50,
          retryMaxMs: 100,
        });
        await assert.rejects(mgr.start(), (err: unknown) => err instanceof SvidError && /root\.pem (holds no PEM certificate|holds an unreadable certificate)/.test(err.message));
        await mgr.stop();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
