import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { silentLogger } from '../observability/logger.js';
import { generateKeyAndCsr } from '../identity/csr.js';
import { PeerAuthError, pemToDerList } from '../identity/peer.js';
import { CertificateAuthority } from './authority.js';
import { VerifiedPeerCache } from './peer-cache.js';

const TD = 'cluster.local';
const ALICE = `spiffe://${TD}/ns/shop/sa/alice`;

/** A grpc-js server call as the cache sees it: only the TLS peer certificate. */
function callWith(der: Buffer | undefined): { getAuthContext(): { sslPeerCertificate?: PeerCertificate } } {
  return { getAuthContext: () => (der ? { sslPeerCertificate: { raw: der } as PeerCertificate } : {}) };
}

describe('VerifiedPeerCache', () => {
  let dir: string;
  let otherDir: string;
  let ca: CertificateAuthority;
  let other: CertificateAuthority;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-peer-cache-'));
    otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-peer-cache-other-'));
    ca = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: TD, logger: silentLogger() });
    other = await CertificateAuthority.loadOrCreate({ dataDir: otherDir, trustDomain: TD, logger: silentLogger() });
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(otherDir, { recursive: true, force: true });
  });

  async function leafDer(authority: CertificateAuthority, ttlSeconds = 3600): Promise<Buffer> {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const chain = await authority.sign(csrPem, { spiffeId: ALICE, ttlSeconds });
    const der = pemToDerList(chain[0] ?? '')[0];
    assert.ok(der);
    return der;
  }

  it('authenticates a client certificate once and reuses the result for the same certificate', async () => {
    const cache = new VerifiedPeerCache({ trustBundlePem: ca.trustBundlePem() });
    const der = await leafDer(ca);
    const first = cache.authenticate(callWith(der));
    assert.equal(first?.spiffeId, ALICE);
    assert.equal(cache.size, 1);
    assert.deepEqual(cache.authenticate(callWith(der)), first);
    assert.equal(cache.size, 1);
  });

  it('a call without a client certificate is undefined, and nothing is cached', () => {
    const cache = new VerifiedPeerCache({ trustBundlePem: ca.trustBundlePem() });
    assert.equal(cache.authenticate(callWith(undefined)), undefined);
    assert.equal(cache.size, 0);
  });

  it('a certificate from another CA is refused every time and never cached', async () => {
    const cache = new VerifiedPeerCache({ trustBundlePem: ca.trustBundlePem() });
    const der = await leafDer(other);
    assert.throws(() => cache.authenticate(callWith(der)), PeerAuthError);
    assert.throws(() => cache.authenticate(callWith(der)), PeerAuthError);
    assert.equal(cache.size, 0);
  });

  it('a cached certificate is refused once it has expired', async () => {
    let now = Date.now();
    const cache = new VerifiedPeerCache({ trustBundlePem: ca.trustBundlePem(), now: () => now });
    const der = await leafDer(ca, 600);
    assert.equal(cache.authenticate(callWith(der))?.spiffeId, ALICE);
    now += 601_000;
    assert.throws(() => cache.authenticate(callWith(der)), PeerAuthError);
  });

  it('keeps at most maxEntries verifications, dropping the oldest', async () => {
    const cache = new VerifiedPeerCache({ trustBundlePem: ca.trustBundlePem(), maxEntries: 2 });
    for (let i = 0; i < 3; i++) cache.authenticate(callWith(await leafDer(ca)));
    assert.equal(cache.size, 2);
  });
});
