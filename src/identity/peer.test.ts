import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as x509 from '@peculiar/x509';
import { PeerAuthError, parseSubjectAltName, peerChainFromCall, uriSans, verifyCallIdentity, verifyPeerChain } from './peer.js';

const ALICE = 'spiffe://cluster.local/ns/shop/sa/alice';
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

interface Ca {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
}

async function makeCa(name: string, issuer?: Ca, isCa = true): Promise<Ca> {
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    subject: name,
    issuer: issuer ? issuer.cert.subjectName : name,
    notBefore: new Date(Date.now() - 3600e3),
    notAfter: new Date(Date.now() + 86400e3),
    publicKey: keys.publicKey,
    signingKey: (issuer ?? { keys }).keys.privateKey,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(isCa, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { cert, keys, pem: cert.toString('pem') + '\n' };
}

async function makeLeaf(issuer: Ca, opts: { sans?: x509.JsonGeneralName[]; ca?: boolean; notBefore?: Date; notAfter?: Date } = {}): Promise<Buffer> {
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    issuer: issuer.cert.subjectName,
    notBefore: opts.notBefore ?? new Date(Date.now() - 60e3),
    notAfter: opts.notAfter ?? new Date(Date.now() + 3600e3),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension(opts.sans ?? [{ type: 'url', value: ALICE }], true),
      new x509.BasicConstraintsExtension(opts.ca ?? false, undefined, true),
    ],
  });
  return Buffer.from(cert.rawData);
}

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PeerAuthError, `expected PeerAuthError, got ${String(err)}`);
    assert.match(err.message, re);
    return true;
  });
}

describe('verifyPeerChain', () => {
  let root: Ca;
  let inter: Ca;
  before(async () => {
    root = await makeCa('CN=Root');
    inter = await makeCa('CN=Intermediate', root);
  });

  it('accepts a leaf signed by a root of the bundle and returns its SPIFFE ID, NotAfter and serial', async () => {
    const leaf = await makeLeaf(root);
    const peer = verifyPeerChain([leaf], root.pem);
    assert.equal(peer.spiffeId, ALICE);
    assert.ok(peer.notAfter.getTime() > Date.now());
    assert.match(peer.serial, /^[0-9A-F]+$/);
  });

  it('accepts a leaf through a presented intermediate, and refuses it without the intermediate', async () => {
    const leaf = await makeLeaf(inter);
    assert.equal(verifyPeerChain([leaf, Buffer.from(inter.cert.rawData)], root.pem).spiffeId, ALICE);
    refused(() => verifyPeerChain([leaf], root.pem), /not signed by the trust bundle/);
  });

  it('accepts a bundle with several roots', async () => {
    const other = await makeCa('CN=Other root');
    const leaf = await makeLeaf(root);
    assert.equal(verifyPeerChain([leaf], other.pem + root.pem).spiffeId, ALICE);
  });

  it('refuses a leaf from another root', async () => {
    const other = await makeCa('CN=Other root');
    const leaf = await makeLeaf(other);
    refused(() => verifyPeerChain([leaf], root.pem), /not signed by the trust bundle/);
  });

  it('refuses an expired leaf and a leaf not yet valid', async () => {
    const expired = await makeLeaf(root, { notBefore: new Date(Date.now() - 7200e3), notAfter: new Date(Date.now() - 3600e3) });
    refused(() => verifyPeerChain([expired], root.pem), /expired at/);
    const future = await makeLeaf(root, { notBefore: new Date(Date.now() + 3600e3), notAfter: new Date(Date.now() + 7200e3) });
    refused(() => verifyPeerChain([future], root.pem), /not valid before/);
  });

  it('refuses a leaf with two URI SANs, with none, or with a URI that is not a SPIFFE ID', async () => {
    refused(() => verifyPeerChain([], root.pem), /no peer certificate/);
    const two = await makeLeaf(root, { sans: [{ type: 'url', value: ALICE }, { type: 'url', value: 'spiffe://cluster.local/ns/shop/sa/bob' }] });
    refused(() => verifyPeerChain([two], root.pem), /2 URI SANs/);
    const none = await makeLeaf(root, { sans: [{ type: 'dns', value: 'alice.example' }] });
    refused(() => verifyPeerChain([none], root.pem), /0 URI SANs/);
    const https = await makeLeaf(root, { sans: [{ type: 'url', value: 'https://alice.example/' }] });
    refused(() => verifyPeerChain([https], root.pem), /not a SPIFFE ID/);
  });

  it('accepts DNS SANs next to the one URI SAN', async () => {
    const leaf = await makeLeaf(root, { sans: [{ type: 'url', value: ALICE }, { type: 'dns', value: 'alice.example' }] });
    assert.equal(verifyPeerChain([leaf], root.pem).spiffeId, ALICE);
  });

  it('refuses a CA certificate as the leaf, and a chain through a non-CA intermediate', async () => {
    const caLeaf = await makeLeaf(root, { ca: true });
    refused(() => verifyPeerChain([caLeaf], root.pem), /is a CA certificate/);
    const notCa = await makeCa('CN=Not a CA', root, false);
    const leaf = await makeLeaf(notCa);
    refused(() => verifyPeerChain([leaf, Buffer.from(notCa.cert.rawData)], root.pem), /is not a CA/);
  });

  it('refuses bytes that are not a certificate', () => {
    refused(() => verifyPeerChain([Buffer.from('hello')], root.pem), /not a DER X.509 certificate/);
  });
});

describe('peer certificate of a grpc-js call', () => {
  it('reads the leaf from the auth context, follows issuerCertificate links, and is undefined without a certificate', async () => {
    const root = await makeCa('CN=Root');
    const leaf = await makeLeaf(root);
    const rootDer = Buffer.from(root.cert.rawData);
    const rootPeer = { raw: rootDer } as { raw: Buffer; issuerCertificate?: unknown };
    rootPeer.issuerCertificate = rootPeer; // Node's detailed form: a self-signed root points at itself
    const call = (peer: unknown) => ({ getAuthContext: () => ({ sslPeerCertificate: peer as never }) });
    assert.deepEqual(peerChainFromCall(call({ raw: leaf })), [leaf]);
    assert.deepEqual(peerChainFromCall(call({ raw: leaf, issuerCertificate: rootPeer })), [leaf, rootDer]);
    assert.equal(peerChainFromCall({ getAuthContext: () => ({}) }), undefined);
    assert.equal(peerChainFromCall({ getAuthContext: () => null }), undefined);
    assert.equal(verifyCallIdentity(call({ raw: leaf }), { trustBundlePem: root.pem }), ALICE);
    const other = await makeCa('CN=Other');
    assert.equal(verifyCallIdentity(call({ raw: leaf }), { trustBundlePem: other.pem }), undefined);
  });
});

describe('subjectAltName as Node.js prints it', () => {
  it('splits entries and reads JSON-quoted values, so a ", " inside a value is not a separator', () => {
    assert.deepEqual(parseSubjectAltName('URI:spiffe://cluster.local/ns/a/sa/b, DNS:a.example, IP Address:198.18.0.1'), [
      { type: 'URI', value: 'spiffe://cluster.local/ns/a/sa/b' },
      { type: 'DNS', value: 'a.example' },
      { type: 'IP Address', value: '198.18.0.1' },
    ]);
    assert.deepEqual(parseSubjectAltName('URI:"spiffe://td/ns/a, URI:spiffe://td/ns/evil", DNS:x'), [
      { type: 'URI', value: 'spiffe://td/ns/a, URI:spiffe://td/ns/evil' },
      { type: 'DNS', value: 'x' },
    ]);
    assert.throws(() => parseSubjectAltName('URI:"unterminated'), PeerAuthError);
    assert.throws(() => parseSubjectAltName('no colon here'), PeerAuthError);
  });

  it("reads a real certificate's URI SANs, including one Node.js must quote", async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=san-test',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      keys,
      signingAlgorithm: alg,
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'spiffe://cluster.local/ns/demo/sa/web' },
          { type: 'dns', value: 'web.demo' },
          { type: 'url', value: 'https://example.test/a, URI:spiffe://cluster.local/ns/x/sa/y' },
        ]),
      ],
    });
    assert.deepEqual(uriSans(new Uint8Array(cert.rawData)), ['spiffe://cluster.local/ns/demo/sa/web', 'https://example.test/a, URI:spiffe://cluster.local/ns/x/sa/y']);
  });
});

describe('a certificate whose subjectAltName cannot be parsed', () => {
  it('is refused with PeerAuthError (a 401 for the API), not a TypeError', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '02',
      name: 'CN=bad-san',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      keys,
      signingAlgorithm: alg,
      // subjectAltName (2.5.29.17) whose value is not GeneralNames: an INTEGER.
      extensions: [new x509.Extension('2.5.29.17', false, Uint8Array.from([0x02, 0x01, 0x05]))],
    });
    assert.throws(() => uriSans(new Uint8Array(cert.rawData)), PeerAuthError);
  });
});
