import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CertificateAuthority } from './authority.js';
import { CaError } from './errors.js';
import { checkCsrKey } from './keys.js';
import { nativeEcdsa, nativeEcdsaStatus, setNativeEcdsaEnabled } from './native.js';
import { bitStringBytes, explicit, integerSmall, oid, octetString, seq, tlv, TRUE, Tag } from './der.js';
import { parseCsrPem, verifyCsrSignature, verifyCsrSignatureSync } from './x509-der.js';
import { toPem } from '../identity/csr.js';
import { createSvidCsr } from '../identity/svid-csr.js';
import { silentLogger } from '../observability/logger.js';

const ALICE = 'spiffe://cluster.local/ns/default/sa/alice';
const CURVES = [
  { name: 'P-256', node: 'prime256v1', id: 0, hash: 'sha256', pointLength: 65 },
  { name: 'P-384', node: 'secp384r1', id: 1, hash: 'sha384', pointLength: 97 },
] as const;

/** The uncompressed SEC 1 point at the end of an EC SubjectPublicKeyInfo. */
function pointOf(publicKey: crypto.KeyObject, length: number): Buffer {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return Buffer.from(spki.subarray(spki.length - length));
}

/** Re-encodes a DER ECDSA-Sig-Value with a superfluous leading zero on `r` (BER, not DER). */
function withPaddedR(signature: Buffer): Buffer {
  const rLen = signature[3] ?? 0;
  const r = signature.subarray(4, 4 + rLen);
  const rest = signature.subarray(4 + rLen);
  return seq(tlv(Tag.INTEGER, Buffer.concat([Buffer.from([0]), r])), rest);
}

/** Group orders n (SEC 2 §2.4.2, §2.5.1). */
const ORDER: Record<string, bigint> = {
  'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  'P-384': 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};

/** r and s of a DER ECDSA-Sig-Value written by node:crypto (short-form lengths). */
function rsOf(signature: Buffer): [bigint, bigint] {
  const at = signature[1]! & 0x80 ? 3 : 2;
  const rLen = signature[at + 1]!;
  const r = BigInt(`0x${signature.subarray(at + 2, at + 2 + rLen).toString('hex')}`);
  const sLen = signature[at + 3 + rLen]!;
  const s = BigInt(`0x${signature.subarray(at + 4 + rLen, at + 4 + rLen + sLen).toString('hex')}`);
  return [r, s];
}

/** DER INTEGER content of a non-negative bigint (minimal, with a 0x00 when the top bit is set). */
function intContent(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const b = Buffer.from(hex, 'hex');
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

/** ECDSA-Sig-Value of (r, s); `longForm` writes the SEQUENCE length in long form (BER, not DER). */
function sigOf(r: bigint, s: bigint, longForm = false): Buffer {
  const body = Buffer.concat([tlv(Tag.INTEGER, intContent(r)), tlv(Tag.INTEGER, intContent(s))]);
  if (!longForm) return seq(body);
  return Buffer.concat([Buffer.from([0x30, 0x81, body.length]), body]);
}

/** A P-256 CSR for `spiffeId` whose SubjectPublicKeyInfo carries the point in compressed form. */
function compressedPointCsr(spiffeId: string): string {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const compressed = crypto.ECDH.convertKey(pointOf(publicKey, 65), 'prime256v1', undefined, undefined, 'compressed') as Buffer;
  const spki = seq(seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), bitStringBytes(compressed));
  const san = seq(oid('2.5.29.17'), TRUE, octetString(seq(tlv(0x86, Buffer.from(spiffeId, 'ascii')))));
  const info = seq(integerSmall(0), seq(), spki, explicit(0, seq(oid('1.2.840.113549.1.9.14'), tlv(Tag.SET, seq(san)))));
  const csr = seq(info, seq(oid('1.2.840.10045.4.3.2')), bitStringBytes(crypto.sign('sha256', info, privateKey)));
  return toPem(csr, 'CERTIFICATE REQUEST');
}

describe('native ECDSA verifier (dist/native/skiff_ecdsa.node)', () => {
  after(() => setNativeEcdsaEnabled(true));

  it('is built and passes its self-test (npm test builds it; see scripts/build-native.mjs)', () => {
    const status = nativeEcdsaStatus();
    assert.equal(status.active, true, `native verifier not active: ${status.reason ?? ''}`);
  });

  it('agrees with node:crypto on valid, tampered, foreign-key and non-DER signatures (P-256 and P-384)', () => {
    const native = nativeEcdsa();
    assert.ok(native);
    for (const curve of CURVES) {
      const other = crypto.generateKeyPairSync('ec', { namedCurve: curve.node });
      for (let i = 0; i < 40; i++) {
        const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: curve.node });
        const point = pointOf(publicKey, curve.pointLength);
        const data = crypto.randomBytes(64 + i);
        const good = crypto.sign(curve.hash, data, privateKey);
        const flipped = Buffer.from(good);
        flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
        const cases: [string, Buffer, Buffer][] = [
          ['valid', data, good],
          ['other data', Buffer.concat([data, Buffer.from('!')]), good],
          ['flipped signature bit', data, flipped],
          ['signature by another key', data, crypto.sign(curve.hash, data, other.privateKey)],
          ['r with a BER leading zero', data, withPaddedR(good)],
          ['truncated signature', data, good.subarray(0, good.length - 1)],
          ['trailing byte after the signature', data, Buffer.concat([good, Buffer.from([0])])],
          ['empty signature', data, Buffer.alloc(0)],
        ];
        const n = ORDER[curve.name]!;
        const [r, sv] = rsOf(good);
        cases.push(
          ['high-S form (n - s), which ECDSA accepts', data, sigOf(r, n - sv)],
          ['r = 0', data, sigOf(0n, sv)],
          ['s = 0', data, sigOf(r, 0n)],
          ['r + n', data, sigOf(r + n, sv)],
          ['s = n', data, sigOf(r, n)],
          ['long-form SEQUENCE length', data, sigOf(r, sv, true)],
        );
        for (const [what, d, sig] of cases) {
          const expected = crypto.verify(curve.hash, d, publicKey, sig);
          const digest = crypto.createHash(curve.hash).update(d).digest();
          assert.equal(native.verify(curve.id, point, digest, sig) === 1, expected, `${curve.name} ${what}`);
        }
        assert.equal(native.verify(curve.id, point, crypto.createHash(curve.hash).update(data).digest(), good), 1, `${curve.name} valid signature verifies`);
      }
    }
  });

  it('refuses points that are not public keys on the curve, and wrong arguments with a TypeError', () => {
    const native = nativeEcdsa();
    assert.ok(native);
    const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const point = pointOf(publicKey, 65);
    const offCurve = Buffer.from(point);
    offCurve[64] = (offCurve[64] ?? 0) ^ 1;
    const xTooBig = Buffer.concat([Buffer.from([4]), Buffer.alloc(32, 0xff), point.subarray(33)]);
    const compressed = crypto.ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    assert.equal(native.checkPoint(0, point), 1);
    for (const [what, bad] of [
      ['off the curve', offCurve],
      ['x not below p', xTooBig],
      ['point at infinity', Buffer.from([0])],
      ['compressed (left to WebCrypto)', compressed],
      ['a P-256 point given as P-384', point],
    ] as const) {
      assert.equal(native.checkPoint(what.includes('P-384') ? 1 : 0, bad), -1, what);
    }
    assert.equal(native.verify(0, offCurve, Buffer.alloc(32), Buffer.alloc(8)), -1);
    assert.throws(() => native.verify(2 as 0, point, Buffer.alloc(32), Buffer.alloc(8)), TypeError);
    assert.throws(() => (native.verify as (...a: unknown[]) => number)(0, 'not bytes', Buffer.alloc(32), Buffer.alloc(8)), TypeError);
    assert.throws(() => (native.checkPoint as (...a: unknown[]) => number)(0), TypeError);
  });

  it('checkCsrKey gives the same verdicts through the native verifier and through WebCrypto', async () => {
    const csr = parseCsrPem(createSvidCsr(ALICE).csrPem);
    const tampered = { ...csr, info: Buffer.concat([csr.info, Buffer.from([0])]) };
    const verdicts: boolean[][] = [];
    for (const enabled of [true, false]) {
      setNativeEcdsaEnabled(enabled);
      const key = await checkCsrKey(csr.spki);
      verdicts.push([verifyCsrSignatureSync(csr, key) ?? false, verifyCsrSignatureSync(tampered, key) ?? true]);
    }
    setNativeEcdsaEnabled(true);
    assert.deepEqual(verdicts, [
      [true, false],
      [true, false],
    ]);
  });

  it('an off-curve CSR key is bad-csr on both routes; a compressed point is accepted (through WebCrypto)', async () => {
    const der = parseCsrPem(createSvidCsr(ALICE).csrPem).spki;
    const spki = Buffer.from(der);
    spki[spki.length - 1] = (spki[spki.length - 1] ?? 0) ^ 1;
    for (const enabled of [true, false]) {
      setNativeEcdsaEnabled(enabled);
      await assert.rejects(checkCsrKey(spki), (err: unknown) => err instanceof CaError && err.code === 'bad-csr' && /public key is malformed/.test(err.message));
    }
    setNativeEcdsaEnabled(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-native-'));
    try {
      const ca = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: 'cluster.local', logger: silentLogger() });
      const chain = await ca.sign(compressedPointCsr(ALICE), { spiffeId: ALICE });
      const leaf = new X509Certificate(chain[0] ?? '');
      assert.equal(leaf.subjectAltName, `URI:${ALICE}`);
      assert.ok(leaf.verify(new X509Certificate(ca.trustBundlePem()).publicKey));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a CSR whose signature algorithm does not suit its key (sha256WithRSAEncryption on an EC key) is refused on both routes', async () => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const san = seq(oid('2.5.29.17'), TRUE, octetString(seq(tlv(0x86, Buffer.from(ALICE, 'ascii')))));
    const info = seq(integerSmall(0), seq(), spki, explicit(0, seq(oid('1.2.840.113549.1.9.14'), tlv(Tag.SET, seq(san)))));
    const signature = crypto.sign('sha256', info, privateKey); // an ECDSA signature...
    const rsaAlg = seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0))); // ...labelled sha256WithRSAEncryption
    const csr = parseCsrPem(toPem(seq(info, rsaAlg, bitStringBytes(signature)), 'CERTIFICATE REQUEST'));
    const pss = { ...csr, signatureAlgorithm: '1.2.840.113549.1.1.10' };
    for (const enabled of [true, false]) {
      setNativeEcdsaEnabled(enabled);
      const key = await checkCsrKey(csr.spki);
      assert.equal(key.verify('sha256', info, signature), true, 'the signature itself is a valid ECDSA one');
      assert.equal(verifyCsrSignatureSync(csr, key), false);
      assert.equal(await verifyCsrSignature(pss, key), false, 'RSA-PSS on an EC key');
    }
    setNativeEcdsaEnabled(true);
  });
});
