import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto, { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { bitStringBytes, explicit, integerSmall, oid, seq, tlv, time, octetString, TRUE } from './der.js';
import { LEAF_EXTENSIONS, Oid, algorithmIdentifierFor, authorityKeyIdExt, buildCertificate, keyIdentifier, parseCsrPem, subjectAltNameExt, subjectKeyIdExt } from './x509-der.js';
import { generateKeyAndCsr } from '../identity/csr.js';

/**
 * The certificate as the composition of one-TLV-at-a-time helpers writes it (RFC 5280 §4.1): the
 * reference the one-buffer writer of `buildCertificate` must match byte for byte.
 */
function referenceCertificate(f: { serial: Uint8Array; issuer: Uint8Array; notBefore: Date; notAfter: Date; subject: Uint8Array; spki: Uint8Array; extensions: Uint8Array[] }, key: crypto.KeyObject, alg: Buffer): Buffer {
  let i = 0;
  while (i < f.serial.length - 1 && f.serial[i] === 0) i++;
  const magnitude = Buffer.from(f.serial.subarray(i));
  const serial = tlv(0x02, (magnitude[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude);
  const tbs = seq(explicit(0, integerSmall(2)), serial, alg, f.issuer, seq(time(f.notBefore), time(f.notAfter)), f.subject, f.spki, explicit(3, seq(...f.extensions)));
  return seq(tbs, alg, bitStringBytes(crypto.sign('sha256', tbs, key)));
}

/** subjectAltName as the TLV-by-TLV composition writes it (URI and DNS names). */
function referenceSan(sans: { type: 'uri' | 'dns'; value: string }[], critical: boolean): Buffer {
  const names = sans.map((s) => tlv(s.type === 'uri' ? 0x86 : 0x82, Buffer.from(s.value, 'latin1')));
  const value = octetString(seq(...names));
  return critical ? seq(oid(Oid.subjectAltName), TRUE, value) : seq(oid(Oid.subjectAltName), value);
}

describe('DER certificate writer', () => {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaAlg = algorithmIdentifierFor('rsa', 'sha256');
  const signer = { key: rsa.privateKey, hash: 'sha256', algorithmIdentifier: rsaAlg };
  const issuer = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('Skiff Test CA')))));
  const spkis = [
    crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }),
    crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'der', type: 'spki' }),
    crypto.generateKeyPairSync('rsa', { modulusLength: 4096 }).publicKey.export({ format: 'der', type: 'spki' }),
  ];
  const longUri = `spiffe://cluster.local/ns/${'n'.repeat(63)}/sa/${'s'.repeat(200)}`; // > 255 bytes: 2-byte lengths

  it('writes the same bytes as the TLV-by-TLV composition (RSA signatures are deterministic) and OpenSSL parses them', () => {
    const serials = [Buffer.from('01'.repeat(16), 'hex'), Buffer.from('ff'.repeat(16), 'hex'), Buffer.from('0000ff01', 'hex'), Buffer.from('00', 'hex'), crypto.randomBytes(20)];
    const dates = [new Date('2026-11-29T21:00:00Z'), new Date('2049-12-31T23:59:59Z'), new Date('2050-01-01T00:00:00Z'), new Date('1949-06-01T01:02:03Z')];
    const uris = ['spiffe://cluster.local/ns/a/sa/b', longUri];
    let n = 0;
    for (const spki of spkis) {
      for (const serial of serials) {
        for (const notBefore of dates) {
          for (const uri of uris) {
            const extensions = [
              subjectAltNameExt([{ type: 'uri', value: uri }], true),
              LEAF_EXTENSIONS.keyUsageEcdsa,
              LEAF_EXTENSIONS.basicConstraintsLeaf,
              LEAF_EXTENSIONS.extKeyUsage,
              subjectKeyIdExt(keyIdentifier(spki)),
              authorityKeyIdExt(Buffer.alloc(20, 7)),
            ];
            const fields = { serial, issuer, notBefore, notAfter: new Date(notBefore.getTime() + 86400e3), subject: seq(), spki, extensions };
            const der = buildCertificate(fields, signer);
            assert.deepEqual(der, referenceCertificate(fields, rsa.privateKey, rsaAlg));
            const parsed = new X509Certificate(der);
            assert.ok(parsed.verify(rsa.publicKey));
            assert.equal(parsed.subjectAltName, `URI:${uri}`);
            n++;
          }
        }
      }
    }
    assert.equal(n, 120);
  });

  it('subjectAltName and subjectKeyIdentifier extensions match the TLV-by-TLV composition', () => {
    const sets: { type: 'uri' | 'dns'; value: string }[][] = [[{ type: 'uri', value: 'spiffe://cluster.local/ns/a/sa/b' }], [{ type: 'uri', value: longUri }], [{ type: 'dns', value: 'd'.repeat(300) }, { type: 'uri', value: 'spiffe://x/ns/a/sa/b' }], []];
    for (const sans of sets) for (const critical of [true, false]) assert.deepEqual(subjectAltNameExt(sans, critical), referenceSan(sans, critical));
    for (const len of [0, 20, 32, 200]) {
      const id = crypto.randomBytes(len);
      assert.deepEqual(subjectKeyIdExt(id), seq(oid(Oid.subjectKeyIdentifier), octetString(octetString(id))));
    }
  });

  it('IP and DNS SANs are encoded as RFC 5280 iPAddress and dNSName', () => {
    const ext = subjectAltNameExt([{ type: 'uri', value: 'spiffe://td/ns/a/sa/b' }, { type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }, { type: 'ip', value: 'fd00::1' }], false);
    const names = new x509.SubjectAlternativeNameExtension(new Uint8Array(ext)).names.toJSON();
    assert.deepEqual(names, [
      { type: 'url', value: 'spiffe://td/ns/a/sa/b' },
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: 'fd00::1' },
    ]);
  });

  it('Time: UTCTime through 2049, GeneralizedTime from 2050 and before 1950', () => {
    assert.equal(time(new Date('2049-12-31T23:59:59Z')).toString('latin1', 2), '491231235959Z');
    assert.equal(time(new Date('2049-12-31T23:59:59Z'))[0], 0x17);
    assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1', 2), '20500101000000Z');
    assert.equal(time(new Date('2050-01-01T00:00:00Z'))[0], 0x18);
    assert.equal(time(new Date('1949-06-01T01:02:03Z')).toString('latin1', 2), '19490601010203Z');
    assert.equal(time(new Date('1950-01-01T00:00:00Z')).toString('latin1', 2), '500101000000Z');
  });

  it('parseCsrPem reads the signed bytes, key, signature algorithm and SANs of real CSRs', async () => {
    for (const keyType of ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048'] as const) {
      const { csrPem } = await generateKeyAndCsr({ spiffeId: 'spiffe://cluster.local/ns/a/sa/b', keyType });
      const csr = parseCsrPem(csrPem);
      const reference = new x509.Pkcs10CertificateRequest(csrPem);
      assert.deepEqual(Buffer.from(csr.spki), Buffer.from(reference.publicKey.rawData));
      assert.deepEqual(Buffer.from(csr.der), Buffer.from(reference.rawData));
      assert.deepEqual(Buffer.from(csr.signature), Buffer.from(reference.signature));
      assert.equal(csr.signatureAlgorithm, keyType === 'rsa-2048' ? Oid.sha256WithRsa : keyType === 'ecdsa-p384' ? Oid.ecdsaWithSha384 : Oid.ecdsaWithSha256);
      assert.deepEqual(csr.sans, [{ type: 'uri', value: 'spiffe://cluster.local/ns/a/sa/b' }]);
      assert.ok(crypto.verify(keyType === 'ecdsa-p384' ? 'sha384' : 'sha256', csr.info, crypto.createPublicKey({ key: Buffer.from(csr.spki), format: 'der', type: 'spki' }), csr.signature));
    }
  });
});
