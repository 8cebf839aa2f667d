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
import { DerError, NULL, Tag, TRUE, children, expect, explicit, integerSmall, namedBits, octetString, oid, read, readOid, seq, timeSize, tlv, tlvSize, writeHeader, writeTime, type Node } from './der.js';

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

/** Signature algorithms verified in one call, with the key type each needs (RFC 5758 §3.2, RFC 4055 §5). */
const SIGNATURE_ALGORITHMS: Record<string, { hash: string; kind: 'ecdsa' | 'rsa' }> = {
  [Oid.ecdsaWithSha256]: { hash: 'sha256', kind: 'ecdsa' },
  [Oid.ecdsaWithSha384]: { hash: 'sha384', kind: 'ecdsa' },
  [Oid.ecdsaWithSha512]: { hash: 'sha512', kind: 'ecdsa' },
  [Oid.sha256WithRsa]: { hash: 'sha256', kind: 'rsa' },
  [Oid.sha384WithRsa]: { hash: 'sha384', kind: 'rsa' },
  [Oid.sha512WithRsa]: { hash: 'sha512', kind: 'rsa' },
};
const RSA_PSS = '1.2.840.113549.1.1.10';

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
  // Node's base64 decoder skips the line breaks. The Buffer is the CSR's own copy of the bytes.
  const der = Buffer.from(found.body, 'base64');
  try {
    return parseCsrDer(der);
  } catch (err) {
    if (err instanceof DerError) throw new CaError('bad-csr', `malformed certificate signing request: ${err.message}`);
    throw err;
  }
}

/** Content octets of OIDs compared byte for byte while parsing (no dotted string is built). */
const OID_BYTES = {
  extensionRequest: oidContent(Oid.extensionRequest),
  subjectAltName: oidContent(Oid.subjectAltName),
};

/** Signature algorithms the CSR parser names without decoding the OID (the common ones). */
const KNOWN_SIGNATURE_OIDS: { content: Buffer; dotted: string }[] = [Oid.ecdsaWithSha256, Oid.ecdsaWithSha384, Oid.ecdsaWithSha512, Oid.sha256WithRsa, Oid.sha384WithRsa, Oid.sha512WithRsa].map(
  (dotted) => ({ content: oidContent(dotted), dotted }),
);

/** The content octets (no tag and length) of the OBJECT IDENTIFIER `dotted`. */
function oidContent(dotted: string): Buffer {
  const der = oid(dotted);
  return der.subarray(2); // every OID used here is shorter than 128 bytes
}

/** True if the OBJECT IDENTIFIER `node` of `buf` has the content octets `content`. */
export function oidIs(buf: Uint8Array, node: Node, content: Uint8Array): boolean {
  if (node.tag !== Tag.OID || node.end - node.contentStart !== content.length) return false;
  for (let i = 0; i < content.length; i++) if (buf[node.contentStart + i] !== content[i]) return false;
  return true;
}

function signatureAlgorithmOf(der: Uint8Array, node: Node): string {
  for (const known of KNOWN_SIGNATURE_OIDS) if (oidIs(der, node, known.content)) return known.dotted;
  return readOid(der, node);
}

/**
 * Reads `CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm,
 * signature BIT STRING }` (RFC 2986 §4) element by element, without building lists of nodes.
 */
function parseCsrDer(der: Buffer): ParsedCsr {
  const top = expect(der, 0, Tag.SEQUENCE, 'CertificationRequest');
  if (top.end !== der.length) throw new DerError('trailing bytes after CertificationRequest');
  if (top.contentStart >= top.end) throw new DerError('CertificationRequest must have 3 elements');
  const infoNode = read(der, top.contentStart, top.end);
  const algNode = infoNode.end < top.end ? read(der, infoNode.end, top.end) : undefined;
  const sigNode = algNode && algNode.end < top.end ? read(der, algNode.end, top.end) : undefined;
  if (!algNode || !sigNode || sigNode.end !== top.end) throw new DerError('CertificationRequest must have 3 elements');
  if (infoNode.tag !== Tag.SEQUENCE || algNode.tag !== Tag.SEQUENCE || sigNode.tag !== Tag.BIT_STRING) throw new DerError('CertificationRequest element types');
  // certificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, attributes [0] }
  const layout = 'certificationRequestInfo must be version, subject, subjectPKInfo, attributes';
  if (infoNode.contentStart >= infoNode.end) throw new DerError(layout);
  const version = read(der, infoNode.contentStart, infoNode.end);
  const subject = version.end < infoNode.end ? read(der, version.end, infoNode.end) : undefined;
  const spkiNode = subject && subject.end < infoNode.end ? read(der, subject.end, infoNode.end) : undefined;
  const attrs = spkiNode && spkiNode.end < infoNode.end ? read(der, spkiNode.end, infoNode.end) : undefined;
  if (version.tag !== Tag.INTEGER || subject?.tag !== Tag.SEQUENCE || spkiNode?.tag !== Tag.SEQUENCE || (attrs && attrs.end !== infoNode.end)) throw new DerError(layout);
  if (algNode.contentStart >= algNode.end) throw new DerError('empty signatureAlgorithm');
  const algOidNode = read(der, algNode.contentStart, algNode.end);
  if (sigNode.contentStart >= sigNode.end || der[sigNode.contentStart] !== 0) throw new DerError('signature BIT STRING has unused bits');
  let sans: CsrSan[] | undefined;
  if (attrs) {
    if (attrs.tag !== 0xa0) throw new DerError('attributes must be [0]');
    // Attribute ::= SEQUENCE { type OID, values SET }; extensionRequest values hold Extensions.
    for (let a = attrs.contentStart; a < attrs.end; ) {
      const attr = read(der, a, attrs.end);
      a = attr.end;
      const typeNode = attr.contentStart < attr.end ? read(der, attr.contentStart, attr.end) : undefined;
      const valuesNode = typeNode && typeNode.end < attr.end ? read(der, typeNode.end, attr.end) : undefined;
      if (!typeNode || !valuesNode || valuesNode.tag !== Tag.SET) throw new DerError('malformed attribute');
      if (typeNode.tag !== Tag.OID) throw new DerError('expected an OBJECT IDENTIFIER');
      if (!oidIs(der, typeNode, OID_BYTES.extensionRequest)) continue;
      for (let v = valuesNode.contentStart; v < valuesNode.end; ) {
        const extensions = read(der, v, valuesNode.end);
        v = extensions.end;
        for (let e = extensions.contentStart; e < extensions.end; ) {
          const ext = read(der, e, extensions.end);
          e = ext.end;
          // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
          const parts = children(der, ext);
          const idNode = parts[0];
          const valueNode = parts[parts.length - 1];
          if (!idNode || !valueNode || valueNode.tag !== Tag.OCTET_STRING) throw new DerError('malformed extension');
          if (idNode.tag !== Tag.OID) throw new DerError('expected an OBJECT IDENTIFIER');
          if (!oidIs(der, idNode, OID_BYTES.subjectAltName)) continue;
          if (sans) throw new CaError('bad-csr', 'CSR requests more than one subjectAltName extension');
          sans = readGeneralNames(der, read(der, valueNode.contentStart, valueNode.end));
        }
      }
    }
  }
  return {
    der,
    info: view(der, infoNode.start, infoNode.end),
    spki: view(der, spkiNode.start, spkiNode.end),
    signatureAlgorithm: signatureAlgorithmOf(der, algOidNode),
    signature: view(der, sigNode.contentStart + 1, sigNode.end),
    sans,
  };
}

/**
 * Bytes `start`..`end` of `buf` as a plain Uint8Array view (no copy). Cheaper than
 * `Buffer#subarray`, which constructs a Buffer through the species constructor.
 */
export function view(buf: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset + start, end - start);
}

function readGeneralNames(der: Buffer, node: Node): CsrSan[] {
  if (node.tag !== Tag.SEQUENCE) throw new DerError('subjectAltName must be a SEQUENCE');
  const names: CsrSan[] = [];
  for (let pos = node.contentStart; pos < node.end; ) {
    const n = read(der, pos, node.end);
    pos = n.end;
    names.push(generalName(der, n));
  }
  return names;
}

function generalName(der: Buffer, n: Node): CsrSan {
  switch (n.tag) {
    case 0x86:
      return { type: 'uri', value: der.toString('latin1', n.contentStart, n.end) };
    case 0x82:
      return { type: 'dns', value: der.toString('latin1', n.contentStart, n.end) };
    case 0x81:
      return { type: 'email', value: der.toString('latin1', n.contentStart, n.end) };
    case 0x87: {
      const c = der.subarray(n.contentStart, n.end);
      return { type: 'ip', value: c.length === 4 ? `${c[0]}.${c[1]}.${c[2]}.${c[3]}` : c.toString('hex') };
    }
    default:
      return { type: 'other', value: `[${n.tag & 0x1f}]` };
  }
}

/** The part of `checkCsrKey`'s answer that verifies signatures (`keys.ts` `CsrKeyInfo`). */
export interface CsrVerifier {
  /** The key type: a CSR signature algorithm for the other type fails (as Go's `CheckSignature`). */
  kind: 'ecdsa' | 'rsa';
  /** True when `signature` over `data` verifies with `hash`; false otherwise, never throws. */
  verify(hash: string, data: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * Verifies a CSR's self-signature with the CSR's own key (`key`, from `checkCsrKey`): ECDSA or
 * RSA PKCS#1 v1.5 with SHA-2 through `key.verify`; or with @peculiar/x509 for RSA-PSS. The
 * signature algorithm must suit the key (ecdsa-with-SHA* for an EC key, RSA ones for an RSA
 * key); SHA-1 and unknown algorithms fail.
 */
export async function verifyCsrSignature(csr: ParsedCsr, key: CsrVerifier): Promise<boolean> {
  const direct = verifyCsrSignatureSync(csr, key);
  if (direct !== undefined) return direct;
  try {
    if (csr.signatureAlgorithm === RSA_PSS && key.kind === 'rsa') {
      return await new x509.Pkcs10CertificateRequest(new Uint8Array(csr.der)).verify();
    }
    return false;
  } catch {
    return false;
  }
}

/**
 * {@link verifyCsrSignature} without a promise for the algorithms `key.verify` handles (ECDSA
 * and RSA PKCS#1 v1.5 with SHA-256/384/512): true or false; undefined when the CSR's algorithm
 * needs the asynchronous path (RSA-PSS) or is refused there.
 */
export function verifyCsrSignatureSync(csr: ParsedCsr, key: CsrVerifier): boolean | undefined {
  const alg = SIGNATURE_ALGORITHMS[csr.signatureAlgorithm];
  if (!alg) return undefined;
  if (alg.kind !== key.kind) return false;
  return key.verify(alg.hash, csr.info, csr.signature);
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
  return critical ? seq(oid(id), TRUE, octetString(value)) : seq(oid(id), octetString(value));
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

/**
 * subjectAltName extension (critical when the subject is empty, RFC 5280 §4.2.1.6): GeneralNames
 * of uniformResourceIdentifier [6], dNSName [2] (IA5String, written as Latin-1 bytes) and
 * iPAddress [7]. Encoded into one buffer: this runs once per issued certificate.
 */
export function subjectAltNameExt(sans: SanEntry[], critical: boolean): Buffer {
  const ips = sans.map((s) => (s.type === 'ip' ? ipBytes(s.value) : undefined));
  let namesLength = 0;
  for (let i = 0; i < sans.length; i++) namesLength += tlvSize(ips[i]?.length ?? (sans[i]?.value.length ?? 0));
  const namesSeq = tlvSize(namesLength); // GeneralNames SEQUENCE
  const extnValue = tlvSize(namesSeq); // OCTET STRING around it
  const content = SAN_OID_DER.length + (critical ? TRUE.length : 0) + extnValue;
  const out = Buffer.allocUnsafe(tlvSize(content));
  let p = writeHeader(out, 0, Tag.SEQUENCE, content);
  out.set(SAN_OID_DER, p);
  p += SAN_OID_DER.length;
  if (critical) {
    out.set(TRUE, p);
    p += TRUE.length;
  }
  p = writeHeader(out, p, Tag.OCTET_STRING, namesSeq);
  p = writeHeader(out, p, Tag.SEQUENCE, namesLength);
  for (let i = 0; i < sans.length; i++) {
    const san = sans[i] as SanEntry;
    const ip = ips[i];
    if (ip) {
      p = writeHeader(out, p, 0x87, ip.length);
      out.set(ip, p);
      p += ip.length;
    } else {
      // Latin-1 writes one byte per UTF-16 unit, so the length is the string's length.
      p = writeHeader(out, p, san.type === 'uri' ? 0x86 : 0x82, san.value.length);
      p += out.write(san.value, p, 'latin1');
    }
  }
  return checkedLength(out, p);
}

/** `out` after checking that the writer filled it exactly (a sizing bug must never ship bytes). */
function checkedLength(out: Buffer, end: number): Buffer {
  if (end !== out.length) throw new Error(`DER writer filled ${end} of ${out.length} bytes`);
  return out;
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
  const inner = tlvSize(keyId.length); // KeyIdentifier OCTET STRING
  const content = SKI_OID_DER.length + tlvSize(inner);
  const out = Buffer.allocUnsafe(tlvSize(content));
  let p = writeHeader(out, 0, Tag.SEQUENCE, content);
  out.set(SKI_OID_DER, p);
  p = writeHeader(out, p + SKI_OID_DER.length, Tag.OCTET_STRING, inner);
  p = writeHeader(out, p, Tag.OCTET_STRING, keyId.length);
  out.set(keyId, p);
  return checkedLength(out, p + keyId.length);
}

/** authorityKeyIdentifier extension: `SEQUENCE { [0] keyIdentifier }`. */
export function authorityKeyIdExt(keyId: Uint8Array): Buffer {
  return extension(Oid.authorityKeyIdentifier, false, seq(tlv(0x80, keyId)));
}

/** SHA-1 digest; the one-shot `crypto.hash` (Node >= 20.12) where present, it is cheaper. */
export const sha1: (data: Uint8Array) => Buffer =
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
    const alg = read(spki, top.contentStart, top.end);
    const bits = alg.end < top.end ? read(spki, alg.end, top.end) : undefined;
    if (!bits || bits.tag !== Tag.BIT_STRING || bits.contentStart >= bits.end) throw new DerError('SubjectPublicKeyInfo has no BIT STRING');
    return sha1(view(spki, bits.contentStart + 1, bits.end));
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

/** `[0] EXPLICIT Version` v3 (INTEGER 2), the same in every certificate. */
const VERSION_V3 = explicit(0, integerSmall(2));

/**
 * Builds the TBSCertificate (RFC 5280 §4.1.1.1: version v3, serialNumber, signature, issuer,
 * validity, subject, subjectPublicKeyInfo, extensions [3]), signs it with `signer`, and returns
 * the Certificate DER. Sizes are computed first and each of the two structures is written into
 * one buffer: this is the CA's per-certificate hot path.
 */
export function buildCertificate(fields: CertificateFields, signer: DerSigner): Buffer {
  const { serial, issuer, notBefore, notAfter, subject, spki, extensions } = fields;
  const alg = signer.algorithmIdentifier;
  // serialNumber: a positive INTEGER, minimal (no leading zero bytes unless the top bit is set).
  let s = 0;
  while (s < serial.length - 1 && serial[s] === 0) s++;
  const pad = (serial[s] ?? 0) & 0x80 ? 1 : 0;
  const serialContent = serial.length - s + pad;
  const validityContent = timeSize(notBefore) + timeSize(notAfter);
  let extsContent = 0;
  for (const e of extensions) extsContent += e.length;
  const extsSeq = tlvSize(extsContent);
  const tbsContent =
    VERSION_V3.length + tlvSize(serialContent) + alg.length + issuer.length + tlvSize(validityContent) + subject.length + spki.length + tlvSize(extsSeq);
  const tbs = Buffer.allocUnsafe(tlvSize(tbsContent));
  let p = writeHeader(tbs, 0, Tag.SEQUENCE, tbsContent);
  tbs.set(VERSION_V3, p);
  p = writeHeader(tbs, p + VERSION_V3.length, Tag.INTEGER, serialContent);
  if (pad) tbs[p++] = 0;
  for (let i = s; i < serial.length; i++) tbs[p++] = serial[i] as number;
  tbs.set(alg, p);
  p += alg.length;
  tbs.set(issuer, p);
  p = writeHeader(tbs, p + issuer.length, Tag.SEQUENCE, validityContent);
  p = writeTime(tbs, p, notBefore);
  p = writeTime(tbs, p, notAfter);
  tbs.set(subject, p);
  p += subject.length;
  tbs.set(spki, p);
  p = writeHeader(tbs, p + spki.length, 0xa3, extsSeq);
  p = writeHeader(tbs, p, Tag.SEQUENCE, extsContent);
  for (const e of extensions) {
    tbs.set(e, p);
    p += e.length;
  }
  checkedLength(tbs, p);
  const signature = crypto.sign(signer.hash, tbs, signer.key);
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  const certContent = tbs.length + alg.length + tlvSize(signature.length + 1);
  const cert = Buffer.allocUnsafe(tlvSize(certContent));
  p = writeHeader(cert, 0, Tag.SEQUENCE, certContent);
  cert.set(tbs, p);
  p += tbs.length;
  cert.set(alg, p);
  p = writeHeader(cert, p + alg.length, Tag.BIT_STRING, signature.length + 1);
  cert[p++] = 0; // no unused bits
  cert.set(signature, p);
  return checkedLength(cert, p + signature.length);
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
  const b = Buffer.allocUnsafe(16);
  for (let i = 0; i < 16; i++) b[i] = serialPool[serialPoolPos + i] as number;
  serialPoolPos += 16;
  b[0] = (b[0] ?? 0) & 0x7f || 0x01;
  return b;
}
