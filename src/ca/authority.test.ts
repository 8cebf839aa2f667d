import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto, { X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as x509 from '@peculiar/x509';
import { silentLogger } from '../observability/logger.js';
import { generateKeyAndCsr, toPem } from '../identity/csr.js';
import { verifyPeerChain, pemToDerList } from '../identity/peer.js';
import { CertificateAuthority, CaError, CA_FILES } from './index.js';

const TD = 'cluster.local';
const ALICE = `spiffe://${TD}/ns/shop/sa/alice`;
const BOB = `spiffe://${TD}/ns/shop/sa/bob`;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ca-'));
}

function leafOf(chain: string[]): x509.X509Certificate {
  return new x509.X509Certificate(chain[0] ?? '');
}

function lifetimeSeconds(cert: x509.X509Certificate): number {
  return (cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000;
}

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CaError, `expected CaError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (re) assert.match(err.message, re);
    return true;
  });
}

/** The content octets of the serialNumber INTEGER of a DER certificate. */
function serialIntegerBytes(der: Buffer): Buffer {
  let pos = 0;
  const header = (): { tag: number; len: number } => {
    const tag = der[pos++] ?? 0;
    let len = der[pos++] ?? 0;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (der[pos++] ?? 0);
    }
    return { tag, len };
  };
  header(); // Certificate SEQUENCE
  header(); // TBSCertificate SEQUENCE
  const version = header(); // [0] EXPLICIT version
  assert.equal(version.tag, 0xa0);
  pos += version.len;
  const serial = header();
  assert.equal(serial.tag, 0x02);
  return der.subarray(pos, pos + serial.len);
}

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('CertificateAuthority with a generated root', () => {
  let dir: string;
  let ca: CertificateAuthority;
  before(async () => {
    dir = tmpDir();
    ca = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: TD, logger: silentLogger() });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('first start writes an ECDSA P-256 self-signed 10-year root in the cacerts layout, key mode 0600', () => {
    const caDir = path.join(dir, 'ca');
    for (const f of Object.values(CA_FILES)) assert.ok(fs.existsSync(path.join(caDir, f)), f);
    assert.equal(fs.statSync(path.join(caDir, CA_FILES.key)).mode & 0o777, 0o600);
    const root = new X509Certificate(fs.readFileSync(path.join(caDir, CA_FILES.root)));
    assert.equal(root.ca, true);
    assert.equal(root.checkIssued(root), true);
    assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const years = (new Date(root.validTo).getTime() - new Date(root.validFrom).getTime()) / (365 * 24 * 3600e3);
    assert.ok(years >= 9.99 && years <= 10.01, `root lifetime ${years} years`);
    const pc = new x509.X509Certificate(root.raw);
    const ku = pc.getExtension(x509.KeyUsagesExtension);
    assert.ok(ku?.critical);
    assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.ok(pc.getExtension(x509.BasicConstraintsExtension)?.critical);
    assert.equal(ca.trustBundlePem(), fs.readFileSync(path.join(caDir, CA_FILES.root), 'utf8'));
  });

  it('a restart loads the same root instead of generating a new one', async () => {
    const again = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: TD, logger: silentLogger() });
    assert.equal(again.trustBundlePem(), ca.trustBundlePem());
  });

  it('two processes starting at once end up with one root', async () => {
    const d = tmpDir();
    try {
      const [a, b] = await Promise.all([
        CertificateAuthority.loadOrCreate({ dataDir: d, trustDomain: TD, logger: silentLogger() }),
        CertificateAuthority.loadOrCreate({ dataDir: d, trustDomain: TD, logger: silentLogger() }),
      ]);
      assert.equal(a.trustBundlePem(), b.trustBundlePem());
      assert.deepEqual(fs.readdirSync(d), ['ca']);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('issued SVID has exactly one URI SAN, the authenticated identity, critical, and an empty subject', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const leaf = leafOf(await ca.sign(csrPem, { spiffeId: ALICE }));
    assert.equal(leaf.subject, '');
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    assert.ok(san);
    assert.equal(san.critical, true);
    assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: ALICE }]);
  });

  it('issued SVID has critical keyUsage digitalSignature only, critical CA:false, EKU serverAuth+clientAuth, SKI and AKI of the root', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const leaf = leafOf(await ca.sign(csrPem, { spiffeId: ALICE }));
    const ku = leaf.getExtension(x509.KeyUsagesExtension);
    assert.ok(ku?.critical);
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
    const bc = leaf.getExtension(x509.BasicConstraintsExtension);
    assert.ok(bc?.critical);
    assert.equal(bc.ca, false);
    const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
    assert.deepEqual([...(eku?.usages ?? [])].sort(), [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].sort());
    const ski = leaf.getExtension(x509.SubjectKeyIdentifierExtension);
    assert.ok(ski && ski.keyId.length === 40);
    const rootSki = new x509.X509Certificate(ca.trustBundlePem()).getExtension(x509.SubjectKeyIdentifierExtension);
    assert.equal(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, rootSki?.keyId);
    const serial = serialIntegerBytes(Buffer.from(leaf.rawData));
    assert.ok(((serial[0] ?? 0x80) & 0x80) === 0, 'serial is a positive INTEGER');
    assert.ok(serial.length >= 16 && serial.length <= 20, `serial of ${serial.length} bytes (RFC 5280: at most 20)`);
  });

  it('two SVIDs get different random serial numbers', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const a = leafOf(await ca.sign(csrPem, { spiffeId: ALICE }));
    const b = leafOf(await ca.sign(csrPem, { spiffeId: ALICE }));
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.ok(Buffer.from(a.serialNumber, 'hex').length >= 16);
  });

  it('signSvid reports the serial (as Node prints it) and NotAfter of the certificate it returns', async () => {
    for (let i = 0; i < 20; i++) {
      const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
      const issued = await ca.signSvid(csrPem, { spiffeId: ALICE });
      const leaf = new X509Certificate(issued.chain[0] ?? '');
      assert.equal(issued.serial, leaf.serialNumber);
      assert.equal(issued.notAfter.getTime(), new Date(leaf.validTo).getTime());
    }
  });

  it('a CSR whose EC public key is not a point on P-256 is refused with bad-csr', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    // The uncompressed point 04||X||Y sits in the SPKI BIT STRING; change the last byte of Y.
    const point = der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04]));
    assert.ok(point > 0);
    der[point + 4 + 63] = (der[point + 4 + 63] ?? 0) ^ 0x01;
    await rejectsWith(ca.sign(toPem(der, 'CERTIFICATE REQUEST'), { spiffeId: ALICE }), 'bad-csr', /public key/);
  });

  it('a PEM with two certificate requests is refused; the old NEW CERTIFICATE REQUEST label is accepted', async () => {
    const a = await generateKeyAndCsr({ spiffeId: ALICE });
    const b = await generateKeyAndCsr({ spiffeId: ALICE });
    await rejectsWith(ca.sign(a.csrPem + b.csrPem, { spiffeId: ALICE }), 'bad-csr', /exactly one/);
    const legacy = a.csrPem.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST');
    assert.equal((await ca.sign(legacy, { spiffeId: ALICE })).length, 2);
    await rejectsWith(ca.sign(a.csrPem.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1*'), { spiffeId: ALICE }), 'bad-csr', /not a PEM/);
  });

  it('the chain is leaf first and root last, and the leaf verifies against the root', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const chain = await ca.sign(csrPem, { spiffeId: ALICE });
    assert.equal(chain.length, 2);
    const leaf = new X509Certificate(chain[0] ?? '');
    const root = new X509Certificate(chain[1] ?? '');
    assert.equal(leaf.ca, false);
    assert.equal(chain[1], ca.trustBundlePem());
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey));
    const peer = verifyPeerChain([leaf.raw], ca.trustBundlePem());
    assert.equal(peer.spiffeId, ALICE);
  });

  it('openssl verifies the issued SVID with -x509_strict for TLS client and server purposes', { skip: !hasOpenssl && 'openssl not installed' }, async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const chain = await ca.sign(csrPem, { spiffeId: ALICE });
    const d = tmpDir();
    try {
      fs.writeFileSync(path.join(d, 'leaf.pem'), chain[0] ?? '');
      fs.writeFileSync(path.join(d, 'root.pem'), ca.trustBundlePem());
      for (const purpose of ['sslclient', 'sslserver']) {
        const r = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', path.join(d, 'root.pem'), path.join(d, 'leaf.pem')], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stdout + r.stderr);
      }
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('default lifetime is 24 h and NotBefore is backdated by 2 minutes', async () => {
    const before = Date.now();
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const leaf = leafOf(await ca.sign(csrPem, { spiffeId: ALICE }));
    assert.ok(lifetimeSeconds(leaf) <= 24 * 3600, `lifetime ${lifetimeSeconds(leaf)}s`);
    assert.ok(lifetimeSeconds(leaf) >= 24 * 3600 - 1);
    const backdate = (before - leaf.notBefore.getTime()) / 1000;
    assert.ok(backdate >= 119 && backdate <= 122, `backdated ${backdate}s`);
  });

  it('a short TTL is backdated by a tenth of the TTL, so half the lifetime is still ahead', async () => {
    const before = Date.now();
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const leaf = leafOf(await ca.sign(csrPem, { spiffeId: ALICE, ttlSeconds: 60 }));
    assert.equal(lifetimeSeconds(leaf), 60);
    const backdate = (before - leaf.notBefore.getTime()) / 1000;
    assert.ok(backdate >= 5 && backdate <= 7.5, `backdated ${backdate}s`);
    const halfLife = leaf.notBefore.getTime() + 30_000;
    assert.ok(halfLife > Date.now());
  });

  it('a TTL of 90 days is issued; one second more is refused with invalid-ttl', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const leaf = leafOf(await ca.sign(csrPem, { spiffeId: ALICE, ttlSeconds: 90 * 86400 }));
    assert.equal(lifetimeSeconds(leaf), 90 * 86400);
    await rejectsWith(ca.sign(csrPem, { spiffeId: ALICE, ttlSeconds: 90 * 86400 + 1 }), 'invalid-ttl', /90 days/);
    await rejectsWith(ca.sign(csrPem, { spiffeId: ALICE, ttlSeconds: -5 }), 'invalid-ttl');
  });

  it('RSA 2048 and ECDSA P-384 CSRs are accepted; RSA keys also get keyEncipherment', async () => {
    const rsa = await generateKeyAndCsr({ spiffeId: ALICE, keyType: 'rsa-2048' });
    const rsaLeaf = leafOf(await ca.sign(rsa.csrPem, { spiffeId: ALICE }));
    assert.equal(rsaLeaf.publicKey.algorithm.name, 'RSASSA-PKCS1-v1_5');
    assert.equal(rsaLeaf.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    const p384 = await generateKeyAndCsr({ spiffeId: ALICE, keyType: 'ecdsa-p384' });
    const p384Leaf = leafOf(await ca.sign(p384.csrPem, { spiffeId: ALICE }));
    assert.equal((p384Leaf.publicKey.algorithm as EcKeyAlgorithm).namedCurve, 'P-384');
  });

  it('an RSA-PSS signed CSR is accepted', async () => {
    const alg = { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    const keys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: { name: 'RSA-PSS', saltLength: 32 } as Algorithm,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ALICE }], true)],
    });
    assert.equal(csr.signatureAlgorithm.name, 'RSA-PSS');
    const leaf = leafOf(await ca.sign(csr.toString('pem'), { spiffeId: ALICE }));
    assert.deepEqual(leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(), [{ type: 'url', value: ALICE }]);
  });

  it('a CSR without SANs is signed for the authenticated identity', async () => {
    const { csrPem } = await generateKeyAndCsr({});
    const leaf = leafOf(await ca.sign(csrPem, { spiffeId: BOB }));
    assert.deepEqual(leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(), [{ type: 'url', value: BOB }]);
  });

  it('a CSR asking for another identity is refused with identity-mismatch naming both', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: BOB });
    await rejectsWith(ca.sign(csrPem, { spiffeId: ALICE }), 'identity-mismatch', /sa\/bob.*sa\/alice/);
  });

  it('a CSR with two SANs is refused with bad-csr, even if one is the right identity', async () => {
    const { csrPem } = await generateKeyAndCsr({ sans: [{ type: 'url', value: ALICE }, { type: 'url', value: BOB }] });
    await rejectsWith(ca.sign(csrPem, { spiffeId: ALICE }), 'bad-csr', /at most one SAN/);
    const dns = await generateKeyAndCsr({ sans: [{ type: 'url', value: ALICE }, { type: 'dns', value: 'alice.example' }] });
    await rejectsWith(ca.sign(dns.csrPem, { spiffeId: ALICE }), 'bad-csr');
  });

  it('a CSR with only a DNS SAN is refused with bad-csr', async () => {
    const { csrPem } = await generateKeyAndCsr({ sans: [{ type: 'dns', value: 'alice.example' }] });
    await rejectsWith(ca.sign(csrPem, { spiffeId: ALICE }), 'bad-csr');
  });

  it('a CSR whose signature does not verify is refused with bad-csr', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff; // flip bits in the signature
    await rejectsWith(ca.sign(toPem(der, 'CERTIFICATE REQUEST'), { spiffeId: ALICE }), 'bad-csr', /signature/);
  });

  it('text that is not a CSR is refused with bad-csr', async () => {
    await rejectsWith(ca.sign('hello', { spiffeId: ALICE }), 'bad-csr');
    await rejectsWith(ca.sign('', { spiffeId: ALICE }), 'bad-csr');
  });

  it('a CSR with an RSA 1024 key is refused with unsupported-key', async () => {
    const keys = await crypto.webcrypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    );
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } });
    await rejectsWith(ca.sign(csr.toString('pem'), { spiffeId: ALICE }), 'unsupported-key', /1024/);
  });

  it('an identity outside the trust domain is refused with invalid-identity', async () => {
    const { csrPem } = await generateKeyAndCsr({});
    await rejectsWith(ca.sign(csrPem, { spiffeId: 'spiffe://other.domain/ns/shop/sa/alice' }), 'invalid-identity');
    await rejectsWith(ca.sign(csrPem, { spiffeId: 'https://example.com/alice' }), 'invalid-identity');
  });

  it('the serving certificate carries the control plane URI SAN plus DNS and IP SANs and matches its key', async () => {
    const id = `spiffe://${TD}/ns/skiff-system/sa/skiff-control-plane`;
    const serving = await ca.issueServingCert({ spiffeId: id, dnsNames: ['localhost', 'cp.example'], ipAddresses: ['127.0.0.1', '::1'], ttlSeconds: 3600 });
    const leaf = new x509.X509Certificate(serving.certChainPem);
    const names = leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON();
    assert.deepEqual(names, [
      { type: 'url', value: id },
      { type: 'dns', value: 'localhost' },
      { type: 'dns', value: 'cp.example' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
    ]);
    const keyPub = crypto.createPublicKey(serving.keyPem).export({ format: 'der', type: 'spki' });
    assert.ok(Buffer.from(leaf.publicKey.rawData).equals(keyPub));
    await rejectsWith(ca.issueServingCert({ spiffeId: id, ipAddresses: ['not-an-ip'] }), 'invalid-identity');
  });
});

/** Writes an Istio `cacerts` directory: root → intermediate (the signing CA), EC keys in SEC1 PEM. */
async function writeIstioCacerts(dir: string, opts: { intermediateDays?: number; extraRoot?: boolean; wrongKey?: boolean } = {}): Promise<{ rootPem: string; intermediatePem: string; extraRootPem?: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const rootKeys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=Istio, CN=Root CA',
    notBefore: new Date(now - 3600e3),
    notAfter: new Date(now + 3650 * 86400e3),
    keys: rootKeys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const interKeys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const inter = await x509.X509CertificateGenerator.create({
    subject: 'O=Istio, CN=Intermediate CA, L=cluster-1',
    issuer: root.subjectName,
    notBefore: new Date(now - 3600e3),
    notAfter: new Date(now + (opts.intermediateDays ?? 365) * 86400e3),
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root),
    ],
  });
  const keySource = opts.wrongKey ? rootKeys.privateKey : interKeys.privateKey;
  const pkcs8 = Buffer.from(await crypto.webcrypto.subtle.exportKey('pkcs8', keySource));
  const sec1 = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'sec1' });
  const rootPem = root.toString('pem') + '\n';
  const intermediatePem = inter.toString('pem') + '\n';
  let extraRootPem: string | undefined;
  if (opts.extraRoot) {
    const k = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const r2 = await x509.X509CertificateGenerator.createSelfSigned({ name: 'O=Istio, CN=New Root CA', keys: k, signingAlgorithm: alg, extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] });
    extraRootPem = r2.toString('pem') + '\n';
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'ca-cert.pem'), intermediatePem);
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), sec1, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'root-cert.pem'), rootPem + (extraRootPem ?? ''));
  fs.writeFileSync(path.join(dir, 'cert-chain.pem'), intermediatePem + rootPem);
  return extraRootPem ? { rootPem, intermediatePem, extraRootPem } : { rootPem, intermediatePem };
}

describe('CertificateAuthority with Istio cacerts', () => {
  let dir: string;
  before(() => {
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('loads an Istio cacerts directory (SEC1 EC key, intermediate signer) and issued chains are leaf, intermediate, root', async () => {
    const caDir = path.join(dir, 'cacerts-1');
    const { rootPem, intermediatePem } = await writeIstioCacerts(caDir);
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-1'), caDir, trustDomain: TD, logger: silentLogger() });
    assert.equal(fs.existsSync(path.join(dir, 'data-1', 'ca')), false, 'nothing generated when a CA dir is given');
    assert.equal(ca.trustBundlePem(), rootPem);
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const chain = await ca.sign(csrPem, { spiffeId: ALICE });
    assert.equal(chain.length, 3);
    assert.equal(chain[1], intermediatePem);
    assert.equal(chain[2], rootPem);
    const ders = chain.flatMap(pemToDerList);
    assert.equal(verifyPeerChain(ders, ca.trustBundlePem()).spiffeId, ALICE);
    assert.throws(() => verifyPeerChain([ders[0] as Buffer], ca.trustBundlePem()), /not signed by the trust bundle/);
  });

  it('an Istio cacerts root with an RSA key in PKCS#1 PEM signs SVIDs that verify against it', async () => {
    const caDir = path.join(dir, 'cacerts-rsa');
    const alg = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
    const keys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'O=Istio, CN=RSA Root',
      keys,
      signingAlgorithm: alg,
      notBefore: new Date(Date.now() - 3600e3),
      notAfter: new Date(Date.now() + 365 * 86400e3),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const pkcs8 = Buffer.from(await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const pkcs1 = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs1' });
    fs.mkdirSync(caDir);
    const rootPem = root.toString('pem') + '\n';
    fs.writeFileSync(path.join(caDir, 'ca-cert.pem'), rootPem);
    fs.writeFileSync(path.join(caDir, 'ca-key.pem'), pkcs1, { mode: 0o600 });
    fs.writeFileSync(path.join(caDir, 'root-cert.pem'), rootPem);
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-rsa'), caDir, trustDomain: TD, logger: silentLogger() });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const chain = await ca.sign(csrPem, { spiffeId: ALICE });
    assert.deepEqual(chain.slice(1), [rootPem]);
    assert.equal(new X509Certificate(chain[0] ?? '').verify(new X509Certificate(rootPem).publicKey), true);
    assert.equal(verifyPeerChain(chain.flatMap(pemToDerList), ca.trustBundlePem()).spiffeId, ALICE);
  });

  it('openssl verifies an SVID issued through an intermediate with -x509_strict', { skip: !hasOpenssl && 'openssl not installed' }, async () => {
    const caDir = path.join(dir, 'cacerts-ossl');
    await writeIstioCacerts(caDir);
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-ossl'), caDir, trustDomain: TD, logger: silentLogger() });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE, keyType: 'ecdsa-p384' });
    const chain = await ca.sign(csrPem, { spiffeId: ALICE });
    fs.writeFileSync(path.join(dir, 'ossl-leaf.pem'), chain[0] ?? '');
    fs.writeFileSync(path.join(dir, 'ossl-inter.pem'), chain[1] ?? '');
    fs.writeFileSync(path.join(dir, 'ossl-root.pem'), ca.trustBundlePem());
    const r = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', path.join(dir, 'ossl-root.pem'), '-untrusted', path.join(dir, 'ossl-inter.pem'), path.join(dir, 'ossl-leaf.pem')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('an SVID never outlives the signing intermediate', async () => {
    const caDir = path.join(dir, 'cacerts-2');
    await writeIstioCacerts(caDir, { intermediateDays: 1 });
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-2'), caDir, trustDomain: TD, logger: silentLogger() });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const leaf = leafOf(await ca.sign(csrPem, { spiffeId: ALICE, ttlSeconds: 30 * 86400 }));
    assert.ok(leaf.notAfter.getTime() <= ca.notAfter.getTime());
    assert.ok(leaf.notAfter.getTime() <= Date.now() + 86400e3);
  });

  it('a root-cert.pem with two roots puts both in the trust bundle and at the end of every chain', async () => {
    const caDir = path.join(dir, 'cacerts-3');
    const { rootPem, extraRootPem } = await writeIstioCacerts(caDir, { extraRoot: true });
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-3'), caDir, trustDomain: TD, logger: silentLogger() });
    assert.equal(ca.trustBundlePem(), rootPem + extraRootPem);
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const chain = await ca.sign(csrPem, { spiffeId: ALICE });
    assert.deepEqual(chain.slice(-2), [rootPem, extraRootPem]);
  });

  it('a ca-key.pem that does not match ca-cert.pem is refused with ca-config', async () => {
    const caDir = path.join(dir, 'cacerts-4');
    await writeIstioCacerts(caDir, { wrongKey: true });
    await rejectsWith(CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-4'), caDir, trustDomain: TD, logger: silentLogger() }), 'ca-config', /does not hold the private key/);
  });

  it('a missing root-cert.pem is refused with ca-config naming the file', async () => {
    const caDir = path.join(dir, 'cacerts-5');
    await writeIstioCacerts(caDir);
    fs.rmSync(path.join(caDir, 'root-cert.pem'));
    await rejectsWith(CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-5'), caDir, trustDomain: TD, logger: silentLogger() }), 'ca-config', /root-cert\.pem: missing/);
  });

  it('a signing certificate that does not chain to root-cert.pem is refused with ca-config', async () => {
    const caDir = path.join(dir, 'cacerts-6');
    await writeIstioCacerts(caDir);
    const other = path.join(dir, 'cacerts-6b');
    await writeIstioCacerts(other);
    fs.copyFileSync(path.join(other, 'root-cert.pem'), path.join(caDir, 'root-cert.pem'));
    await rejectsWith(CertificateAuthority.loadOrCreate({ dataDir: path.join(dir, 'data-6'), caDir, trustDomain: TD, logger: silentLogger() }), 'ca-config', /does not chain/);
  });
});
