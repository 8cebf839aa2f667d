/**
 * A lean PKCS#10 certificate signing request (RFC 2986) for an SVID, built directly in DER with
 * `node:crypto` and no certificate library, for the node agent: loading @peculiar/x509 alone adds
 * about 17 MB to a process's resident memory and 0.1 s to its start (`bench/agent/run.ts`), and
 * the agent only ever needs this one request shape.
 *
 * The request: version 0, an empty subject, the new ECDSA P-256 key, and an extensionRequest
 * attribute (PKCS#9, RFC 2985 §5.4.2) holding one critical subjectAltName with the SPIFFE ID as
 * its only URI (SPIFFE X.509-SVID §2, §4.3; critical because the subject is empty, RFC 5280
 * §4.2.1.6), signed ecdsa-with-SHA256 (RFC 5758 §3.2) with that key.
 */
import crypto from 'node:crypto';
import { TRUE, Tag, bitStringBytes, explicit, integerSmall, octetString, oid, seq, tlv } from '../ca/der.js';

/** OIDs used here: PKCS#9 extensionRequest, subjectAltName, ecdsa-with-SHA256. */
const OIDS = {
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
} as const;

/** A new private key (PKCS#8 PEM: secret, never log it) and its CSR (PEM). */
export interface SvidCsr {
  keyPem: string;
  csrPem: string;
}

function pem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/**
 * Generates an ECDSA P-256 key pair and a CSR asking for `spiffeId` as the only (critical) URI SAN,
 * with an empty subject. `spiffeId` must be a non-empty ASCII URI (the CA checks it is a SPIFFE ID
 * of its trust domain); throws a TypeError otherwise.
 */
export function createSvidCsr(spiffeId: string): SvidCsr {
  if (typeof spiffeId !== 'string' || spiffeId.length === 0 || !/^[\x21-\x7e]+$/.test(spiffeId)) {
    throw new TypeError(`SPIFFE ID must be a non-empty ASCII URI, got ${JSON.stringify(spiffeId)}`);
  }
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const san = seq(oid(OIDS.subjectAltName), TRUE, octetString(seq(tlv(0x86, Buffer.from(spiffeId, 'ascii')))));
  const extensionRequest = seq(oid(OIDS.extensionRequest), tlv(Tag.SET, seq(san)));
  const info = seq(integerSmall(0), seq(), spki, explicit(0, extensionRequest));
  const signature = crypto.sign('sha256', info, privateKey); // DER ECDSA-Sig-Value (RFC 5480 §2.2.3)
  const csr = seq(info, seq(oid(OIDS.ecdsaWithSha256)), bitStringBytes(signature));
  return { keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), csrPem: pem(csr, 'CERTIFICATE REQUEST') };
}
