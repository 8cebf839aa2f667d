/**
 * The CA's signing hot path without a certificate library: reading a PKCS#10 CSR (RFC 2986) and
 * building and signing an X.509 v3 certificate (RFC 5280 §4.1) directly in DER, signed with
 * `node:crypto`. DESIGN.md §4 allows this because @peculiar/x509 on WebCrypto signs about 40
 * times slower than the raw ECDSA operations (see `bench/ca.ts`). @peculiar/x509 remains in use
 * for the rare operations (generating and loading roots) and for CSR signature algorithms this
 * module does not verify itself (RSA-PSS).
 */
import crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CaError } from './errors.js';
import { DerError, NULL, Tag, TRUE, bitStringBytes, bytesOf, children, contentOf, expect, explicit, integerSmall, integerUnsigned, namedBits, octetString, oid, read, readOid, seq, time, tlv } from './der.js';

/** OIDs used here (RFC 5280 §4.2.1, RFC 5758, RFC 8017, PKCS#9). */
export const Oid = {
  subjectAltName: '2.5.29.17',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
} as const;

const SIGNATURE_HASH: Record<string, string> = {
  [Oid.ecdsaWithSha256]: 'sha256',
  [Oid.ecdsaWithSha384]: 'sha384',
  [Oid.ecdsaWithSha512]: 'sha512',
  [Oid.sha256WithRsa]: 'sha256',
  [Oid.sha384WithRsa]: 'sha384',
  [Oid.sha512WithRsa]: 'sha512',
};

/** A SAN as read from a CSR. `type` follows RFC 5280 GeneralName choice names. */
export interface CsrSan {
  type: 'uri' | 'dns' | 'ip' | 'email' | 'other';
  value: string;
}

/** The parts of a CSR the CA needs. */
export interface ParsedCsr {
  der: Uint8Array;
  /** The DER of certificationRequestInfo: the signed bytes. */
  info: Uint8Array;
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** SANs of the extensionRequest attribute; undefined if the CSR requests none. */
  sans: CsrSan[] | undefined;
}

const PEM_RE = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (NEW )?CERTIFICATE REQUEST-----/g;
const BASE64_BODY_RE = /^[A-Za-z0-9+/=\s]+$/;
const BEGIN = '-----BEGIN CERTIFICATE REQUEST-----';
const END = '-----END CERTIFICATE REQUEST-----';

/**
 * The base64 body of the only PEM certificate request in `pem`, or undefined when it holds none or
 * several. The common shape (one `CERTIFICATE REQUEST` block) is found with `indexOf`; anything
 * else (`NEW CERTIFICATE REQUEST` labels, several blocks) goes through the full regular expression.
 */
function csrPemBody(pem: string): { body: string } | { count: number } {
  const begin = pem.indexOf(BEGIN);
  const end = begin < 0 ? -1 : pem.indexOf(END, begin + BEGIN.length);
  // Exactly two label lines in the text (this BEGIN and this END): one block.
  const labels = begin < 0 || end < 0 ? 0 : countOf(pem, 'CERTIFICATE REQUEST-----');
  if (labels === 2) {
    const body = pem.slice(begin + BEGIN.length, end);
    if (BASE64_BODY_RE.test(body)) return { body };
  }
  const blocks = [...pem.matchAll(PEM_RE)];
  return blocks.length === 1 ? { body: blocks[0]?.[2] ?? '' } : { count: blocks.length };
}

function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** Parses a PEM PKCS#10 CSR. Throws {@link CaError} `bad-csr` naming what is wrong. */
export function parseCsrPem(pem: string): ParsedCsr {
  const found = typeof pem === 'string' ? csrPemBody(pem) : { count: 0 };
  if (!('body' in found)) throw new CaError('bad-csr', found.count === 0 ? 'not a PEM PKCS#10 certificate signing request' : 'expected exactly one PEM certificate request');
  // Node's base64 decoder skips the line breaks.
  const der = new Uint8Array(Buffer.from(found.body, 'base64'));
  try {
    return parseCsrDer(der);
  } catch (err) {
    if (err instanceof DerError) throw new CaError('bad-csr', `malformed certificate signing request: ${err.message}`);
    throw err;
  }
}

function parseCsrDer(der: Uint8Array): ParsedCsr {
  const top = expect(der, 0, Tag.SEQUENCE, 'CertificationRequest');
  if (top.end !== der.length) throw new DerError('trailing bytes after CertificationRequest');
  const [infoNode, algNode, sigNode, ...extra] = children(der, top);
  if (!infoNode || !algNode || !sigNode || extra.length > 0) throw new DerError('CertificationRequest must have 3 elements');
  if (infoNode.tag !== Tag.SEQUENCE || algNode.tag !== Tag.SEQUENCE || sigNode.tag !== Tag.BIT_STRING) throw new DerError('CertificationRequest element types');
  const [version, subject, spkiNode, attrs, ...more] = children(der, infoNode);
  if (!version || version.tag !== Tag.INTEGER || !subject || subject.tag !== Tag.SEQUENCE || !spkiNode || spkiNode.tag !== Tag.SEQUENCE || more.length > 0) {
    throw new DerError('certificationRequestInfo must be version, subject, subjectPKInfo, attributes');
  }
  const algOidNode = children(der, algNode)[0];
  if (!algOidNode) throw new DerError('empty signatureAlgorithm');
  const sigContent = contentOf(der, sigNode);
  if (sigContent[0] !== 0) throw new DerError('signature BIT STRING has unused bits');
  let sans: CsrSan[] | undefined;
  if (attrs) {
    if (attrs.tag !== 0xa0) throw new DerError('attributes must be [0]');
    for (const attr of children(der, attrs)) {
      const [typeNode, valuesNode] = children(der, attr);
      if (!typeNode || !valuesNode || valuesNode.tag !== Tag.SET) throw new DerError('malformed attribute');
      if (readOid(der, typeNode) !== Oid.extensionRequest) continue;
      for (const extensions of children(der, valuesNode)) {
        for (const ext of children(der, extensions)) {
          const parts = children(der, ext);
          const idNode = parts[0];
          const valueNode = parts[parts.length - 1];
          if (!idNode || !valueNode || valueNode.tag !== Tag.OCTET_STRING) throw new DerError('malformed extension');
          if (readOid(der, idNode) !== Oid.subjectAltName) continue;
          if (sans) throw new CaError('bad-csr', 'CSR requests more than one subjectAltName extension');
          sans = readGeneralNames(der, read(der, valueNode.contentStart, valueNode.end));
        }
      }
    }
  }
  return {
    der,
    info: bytesOf(der, infoNode),
    spki: bytesOf(der, spkiNode),
    signatureAlgorithm: readOid(der, algOidNode),
    signature: sigContent.subarray(1),
    sans,
  };
}

function readGeneralNames(der: Uint8Array, node: ReturnType<typeof read>): CsrSan[] {
  if (node.tag !== Tag.SEQUENCE) throw new DerError('subjectAltName must be a SEQUENCE');
  return children(der, node).map((n): CsrSan => {
    const c = Buffer.from(contentOf(der, n));
    switch (n.tag) {
      case 0x86:
        return { type: 'uri', value: c.toString('latin1') };
      case 0x82:
        return { type: 'dns', value: c.toString('latin1') };
      case 0x81:
        return { type: 'email', value: c.toString('latin1') };
      case 0x87:
        return { type: 'ip', value: c.length === 4 ? [...c].join('.') : c.toString('hex') };
      default:
        return { type: 'other', value: `[${n.tag & 0x1f}]` };
    }
  });
}

/**
 * Verifies a CSR's self-signature with `node:crypto` against `publicKey` (the CSR's own key, from
 * `checkCsrKey`): ECDSA or RSA PKCS#1 v1.5 with SHA-2; or
 * with @peculiar/x509 for other algorithms (RSA-PSS). SHA-1 and unknown algorithms fail.
 */
export async function verifyCsrSignature(csr: ParsedCsr, publicKey: crypto.KeyObject): Promise<boolean> {
  const hash = SIGNATURE_HASH[csr.signatureAlgorithm];
  try {
    if (hash) return crypto.verify(hash, csr.info, publicKey, csr.signature);
    if (csr.signatureAlgorithm === '1.2.840.113549.1.1.10') {
      return await new x509.Pkcs10CertificateRequest(new Uint8Array(csr.der)).verify();
    }
    return false;
  } catch {
    return false;
  }
}

/** A private key for signing certificates with `node:crypto`. */
export interface DerSigner {
  key: crypto.KeyObject;
  /** `sha256`, `sha384` or `sha512`. */
  hash: string;
  /** The AlgorithmIdentifier DER for the certificate's `signature` / `signatureAlgorithm`. */
  algorithmIdentifier: Buffer;
}

/** The AlgorithmIdentifier for a signing key: ecdsa-with-SHA* (no parameters) or sha*WithRSAEncryption (NULL parameters). */
export function algorithmIdentifierFor(kind: 'ecdsa' | 'rsa', hash: string): Buffer {
  if (kind === 'ecdsa') {
    const id = { sha256: Oid.ecdsaWithSha256, sha384: Oid.ecdsaWithSha384, sha512: Oid.ecdsaWithSha512 }[hash];
    if (!id) throw new CaError('ca-config', `no ECDSA signature algorithm for ${hash}`);
    return seq(oid(id));
  }
  const id = { sha256: Oid.sha256WithRsa, sha384: Oid.sha384WithRsa, sha512: Oid.sha512WithRsa }[hash];
  if (!id) throw new CaError('ca-config', `no RSA signature algorithm for ${hash}`);
  return seq(oid(id), NULL);
}

/** A SAN to put in a certificate. */
export type SanEntry = { type: 'uri' | 'dns'; value: string } | { type: 'ip'; value: string };

/** One Extension: `SEQUENCE { extnID, critical (only when TRUE), extnValue OCTET STRING }`. */
export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  const idDer = id === Oid.subjectAltName ? SAN_OID_DER : id === Oid.subjectKeyIdentifier ? SKI_OID_DER : oid(id);
  return critical ? seq(idDer, TRUE, octetString(value)) : seq(idDer, octetString(value));
}

/** Encoded OIDs of the two extensions built per certificate (the others are precomputed whole). */
const SAN_OID_DER = oid(Oid.subjectAltName);
const SKI_OID_DER = oid(Oid.subjectKeyIdentifier);

function ipBytes(ip: string): Buffer {
  const v4 = ip.split('.');
  if (v4.length === 4 && v4.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) return Buffer.from(v4.map(Number));
  // IPv6: expand '::' and write 8 groups of 16 bits.
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) throw new CaError('invalid-identity', `not an IP address: ${ip}`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** subjectAltName extension (critical when the subject is empty, RFC 5280 §4.2.1.6). */
export function subjectAltNameExt(sans: SanEntry[], critical: boolean): Buffer {
  const names = sans.map((s) => {
    if (s.type === 'uri') return tlv(0x86, Buffer.from(s.value, 'latin1'));
    if (s.type === 'dns') return tlv(0x82, Buffer.from(s.value, 'latin1'));
    return tlv(0x87, ipBytes(s.value));
  });
  return extension(Oid.subjectAltName, critical, seq(...names));
}

/** Precomputed extensions shared by every SVID (same bytes each time). */
export const LEAF_EXTENSIONS = {
  /** keyUsage critical digitalSignature. */
  keyUsageEcdsa: extension(Oid.keyUsage, true, namedBits([0])),
  /** keyUsage critical digitalSignature + keyEncipherment (RSA keys). */
  keyUsageRsa: extension(Oid.keyUsage, true, namedBits([0, 2])),
  /** basicConstraints critical, cA FALSE (the DEFAULT, so an empty SEQUENCE). */
  basicConstraintsLeaf: extension(Oid.basicConstraints, true, seq()),
  /** extKeyUsage serverAuth, clientAuth. */
  extKeyUsage: extension(Oid.extKeyUsage, false, seq(oid(Oid.serverAuth), oid(Oid.clientAuth))),
};

/** subjectKeyIdentifier extension with the given key id. */
export function subjectKeyIdExt(keyId: Uint8Array): Buffer {
  return extension(Oid.subjectKeyIdentifier, false, octetString(keyId));
}

/** authorityKeyIdentifier extension: `SEQUENCE { [0] keyIdentifier }`. */
export function authorityKeyIdExt(keyId: Uint8Array): Buffer {
  return extension(Oid.authorityKeyIdentifier, false, seq(tlv(0x80, keyId)));
}

/** SHA-1 digest; the one-shot `crypto.hash` (Node >= 20.12) where present, it is cheaper. */
const sha1: (data: Uint8Array) => Buffer =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (data) => (crypto as unknown as { hash(alg: string, data: Uint8Array, enc: 'buffer'): Buffer }).hash('sha1', data, 'buffer')
    : (data) => crypto.createHash('sha1').update(data).digest();

/**
 * A certificate DER as PEM (RFC 7468 §5: base64 in lines of 64 characters), built without a
 * regular expression: it runs once per issued certificate.
 */
export function certificatePem(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING content of an SPKI. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  try {
    const top = expect(spki, 0, Tag.SEQUENCE, 'SubjectPublicKeyInfo');
    const [, bits] = children(spki, top);
    if (!bits || bits.tag !== Tag.BIT_STRING) throw new DerError('SubjectPublicKeyInfo has no BIT STRING');
    return sha1(contentOf(spki, bits).subarray(1));
  } catch (err) {
    if (err instanceof DerError) throw new CaError('bad-csr', `malformed public key: ${err.message}`);
    throw err;
  }
}

/** Fields of a certificate to build with {@link buildCertificate}. */
export interface CertificateFields {
  /** Serial number, big-endian magnitude; encoded as a positive INTEGER. */
  serial: Uint8Array;
  /** The issuer Name exactly as DER in the signing certificate's subject. */
  issuer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** The subject Name DER; an empty SEQUENCE for SVIDs. */
  subject: Uint8Array;
  spki: Uint8Array;
  /** Encoded Extension elements. */
  extensions: Uint8Array[];
}

/** Builds the TBSCertificate, signs it with `signer`, and returns the Certificate DER. */
export function buildCertificate(fields: CertificateFields, signer: DerSigner): Buffer {
  const tbs = seq(
    explicit(0, integerSmall(2)), // v3
    integerUnsigned(fields.serial),
    signer.algorithmIdentifier,
    fields.issuer,
    seq(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.spki,
    explicit(3, seq(...fields.extensions)),
  );
  const signature = crypto.sign(signer.hash, tbs, signer.key);
  return seq(tbs, signer.algorithmIdentifier, bitStringBytes(signature));
}

/** Random bytes drawn ahead in one call and handed out 16 at a time by {@link randomSerial}. */
const SERIAL_POOL_SIZE = 16 * 256;
let serialPool = Buffer.alloc(0);
let serialPoolPos = SERIAL_POOL_SIZE;

/**
 * A random positive serial number of 16 bytes (RFC 5280 §4.1.2.2: positive, at most 20 octets),
 * from the CSPRNG. The bytes are fetched 4 KiB at a time (one `randomFillSync` per 256 serials)
 * and each serial gets its own copy, so no two certificates share bytes.
 */
export function randomSerial(): Buffer {
  if (serialPoolPos + 16 > SERIAL_POOL_SIZE) {
    if (serialPool.length === 0) serialPool = Buffer.allocUnsafeSlow(SERIAL_POOL_SIZE);
    crypto.randomFillSync(serialPool);
    serialPoolPos = 0;
  }
  const b = Buffer.from(serialPool.subarray(serialPoolPos, serialPoolPos + 16));
  serialPoolPos += 16;
  b[0] = (b[0] ?? 0) & 0x7f || 0x01;
  return b;
}
