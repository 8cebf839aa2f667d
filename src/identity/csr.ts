/**
 * Key pairs and PKCS#10 certificate signing requests for SVIDs (@peculiar/x509 on Node's
 * WebCrypto), as an agent sends them to `CreateCertificate`: an empty subject and one URI SAN,
 * the SPIFFE ID (SPIFFE X.509-SVID §2), signed with the new key.
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Key types accepted by Skiff's CA. ECDSA P-256 is the default (DESIGN.md §4). */
export type CsrKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072';

/** Options for {@link generateKeyAndCsr}. */
export interface CsrOptions {
  /** The SPIFFE ID to request as URI SAN. Omit (with no `sans`) for a CSR without SANs. */
  spiffeId?: string;
  keyType?: CsrKeyType;
  /** SANs to request instead of the single URI SAN (e.g. to build a malformed request in tests). */
  sans?: x509.JsonGeneralName[];
}

/** A new private key (PKCS#8 PEM: secret, never log it) and its CSR (PEM). */
export interface KeyAndCsr {
  keyPem: string;
  csrPem: string;
}

function algorithmFor(keyType: CsrKeyType): RsaHashedKeyGenParams | (EcKeyGenParams & { hash: string }) {
  switch (keyType) {
    case 'ecdsa-p256':
      return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    case 'ecdsa-p384':
      return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    case 'rsa-2048':
    case 'rsa-3072':
      return { name: 'RSASSA-PKCS1-v1_5', modulusLength: keyType === 'rsa-2048' ? 2048 : 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  }
}

/** Encodes DER bytes as a PEM block with the given label. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${(b64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Generates a key pair and a CSR requesting `spiffeId` as the only (critical) URI SAN, with an
 * empty subject. Returns PEM strings.
 */
export async function generateKeyAndCsr(opts: CsrOptions = {}): Promise<KeyAndCsr> {
  const alg = algorithmFor(opts.keyType ?? 'ecdsa-p256');
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const sans = opts.sans ?? (opts.spiffeId ? [{ type: 'url' as const, value: opts.spiffeId }] : []);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      keys,
      signingAlgorithm: alg,
      extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans, true)] : [],
    },
    globalThis.crypto,
  );
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keyPem: toPem(pkcs8, 'PRIVATE KEY'), csrPem: csr.toString('pem') + '\n' };
}
