import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TokenAuthority, TokenError } from '../identity/tokens.js';
import { silentLogger } from '../observability/logger.js';
import { importFileTokenState } from './import-token-files.js';
import { openStore } from './index.js';

describe('importFileTokenState', () => {
  it('carries revocations and used single-use tokens from the file state into the store, once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-import-'));
    try {
      // An older control plane: token state in files.
      const old = await TokenAuthority.open({ dataDir: dir, trustDomain: 'cluster.local', logger: silentLogger() });
      const revoked = await old.create({ namespace: 'shop', serviceAccount: 'web' });
      await old.revoke(revoked.jti, revoked.expiresAt);
      const used = await old.create({ namespace: 'shop', serviceAccount: 'web', singleUse: true });
      await old.consume(await old.verify(used.token));

      const store = openStore({ dataDir: dir, logger: silentLogger() });
      try {
        assert.equal(await importFileTokenState(dir, store.tokens, silentLogger()), 2);
        assert.equal(await importFileTokenState(dir, store.tokens, silentLogger()), 0, 'a second import does nothing');
        const upgraded = await TokenAuthority.open({ dataDir: dir, trustDomain: 'cluster.local', logger: silentLogger(), state: store.tokens });
        await assert.rejects(upgraded.verify(revoked.token), (e: unknown) => e instanceof TokenError && e.reason === 'revoked');
        await assert.rejects(upgraded.verify(used.token), (e: unknown) => e instanceof TokenError && e.reason === 'replayed');
      } finally {
        await store.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
