/**
 * PEM and X.509 helpers for SVIDs (SPIFFE X.509-SVID spec): split PEM text into blocks, split a
 * CA response chain into the SVID chain and the trust bundle, read a leaf's SPIFFE ID.
 */
import crypto from 'node:crypto';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

/** One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`) and its full text with a final newline. */
export interface PemBlock {
  label: string;
  pem: string;
}

/** Every PEM block in `text`, in order. */
export function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1] ?? '', pem: `${m[0]}\n` }));
}

/** Certificates in PEM strings that may each hold one or several certificates, flattened. */
export function certificatePems(texts: readonly string[]): string[] {
  return texts.flatMap((t) => pemBlocks(t).filter((b) => b.label === 'CERTIFICATE').map((b) => b.pem));
}

/** True when `cert` names and verifies itself as its issuer (a root). */
export function isSelfSigned(cert: crypto.X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/**
 * Splits a CA response chain (leaf first, intermediates, the root bundle last; DESIGN.md §4) into
 * the chain a proxy presents (leaf + intermediates) and the trust bundle: the trailing run of
 * self-signed certificates, or, when none is self-signed, the last certificate.
 */
export function splitChain(pems: readonly string[]): { chain: string[]; roots: string[] } {
  const certs = pems.map((p) => new crypto.X509Certificate(p));
  let firstRoot = certs.length;
  while (firstRoot > 1 && isSelfSigned(certs[firstRoot - 1]!)) firstRoot--;
  if (firstRoot === certs.length && certs.length > 1) firstRoot = certs.length - 1;
  return { chain: pems.slice(0, firstRoot), roots: pems.slice(firstRoot) };
}

/** The URI SANs of a certificate. */
export function certUriSans(cert: crypto.X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/** The serial number as lowercase hex. */
export function serialOf(cert: crypto.X509Certificate): string {
  return cert.serialNumber.toLowerCase();
}
