import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as x509 from '@peculiar/x509';
import { CertificateAuthority } from '../ca/authority.js';
import { silentLogger } from '../observability/logger.js';
import { createSvidCsr } from './svid-csr.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/web';
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('createSvidCsr', () => {
  it('builds a CSR that verifies, with an empty subject and the SPIFFE ID as its only, critical URI SAN', async () => {
    const { csrPem } = createSvidCsr(ID);
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    assert.equal(await csr.verify(), true);
    assert.equal(csr.subject, '');
    // (Pkcs10CertificateRequest.getExtension finds extensions by OID, not by class.)
    const san = csr.getExtension('2.5.29.17');
    assert.ok(san instanceof x509.SubjectAlternativeNameExtension);
    assert.equal(san.critical, true);
    assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: ID }]);
    assert.equal(csr.signatureAlgorithm.name, 'ECDSA');
  });

  it('the private key is PKCS#8 P-256 and matches the key in the CSR', async () => {
    const { keyPem, csrPem } = createSvidCsr(ID);
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const key = crypto.createPrivateKey(keyPem);
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const csrSpki = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).publicKey.rawData);
    assert.ok(crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }).equals(csrSpki));
  });

  it("Skiff's CA signs it for the same identity", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-svid-csr-'));
    try {
      const ca = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: 'cluster.local', logger: silentLogger() });
      const chain = await ca.sign(createSvidCsr(ID).csrPem, { spiffeId: ID });
      const leaf = new crypto.X509Certificate(chain[0] ?? '');
      assert.equal(leaf.subjectAltName, `URI:${ID}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('openssl accepts the request and its signature', { skip: !hasOpenssl && 'openssl not installed' }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-svid-csr-'));
    try {
      const file = path.join(dir, 'req.pem');
      fs.writeFileSync(file, createSvidCsr(ID).csrPem);
      const r = spawnSync('openssl', ['req', '-in', file, '-noout', '-verify', '-text'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /verify OK/i);
      assert.match(r.stdout, /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an empty or non-ASCII identity with a TypeError', () => {
    assert.throws(() => createSvidCsr(''), TypeError);
    assert.throws(() => createSvidCsr('spiffe://cluster.local/ns/é/sa/x'), /ASCII/);
  });
});
