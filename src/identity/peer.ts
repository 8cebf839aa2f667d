/**
 * Authenticating a TLS peer by its X.509-SVID (SPIFFE `standards/X509-SVID.md`): the chain must
 * lead by valid signatures to a root in the trust bundle, every certificate must be within its
 * validity window, intermediates must be CAs and the leaf must not be one, and the leaf must hold
 * exactly one URI SAN, a SPIFFE ID (§2 "the SVID MUST contain exactly one URI SAN"; other SAN
 * types are allowed). Signatures and issuer matching use `node:crypto`'s `X509Certificate`.
 *
 * Also reads the peer certificate of a `@grpc/grpc-js` server call. grpc-js 1.14
 * (`server-interceptors.ts`, `getAuthContext()`) returns `sslPeerCertificate` only when the TLS
 * socket is `authorized` (OpenSSL already verified the client chain against the server's `ca`
 * option), and it is Node's non-detailed `tls.PeerCertificate`: the leaf with its DER in `.raw`,
 * without `.issuerCertificate`. The intermediates a client sent are therefore not visible to
 * the handler; callers pass the intermediates they know (their CA's own chain) to
 * {@link verifyPeerChain} / {@link verifyCallIdentity}.
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId } from './spiffe.js';

/** Why a peer's certificate was refused. `message` is safe to log and to return to the caller. */
export class PeerAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerAuthError';
  }
}

/** A peer authenticated by {@link verifyPeerChain}. */
export interface VerifiedPeer {
  /** The leaf's URI SAN. */
  spiffeId: string;
  /** The leaf's NotAfter. */
  notAfter: Date;
  /** The leaf's serial number, uppercase hex as Node prints it. */
  serial: string;
}

/** The longest chain (leaf + intermediates) {@link verifyPeerChain} will follow. */
const MAX_CHAIN_DEPTH = 8;

/** Splits a PEM bundle into the DER of each `CERTIFICATE` block. Other block types are ignored. */
export function pemToDerList(pem: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (const m of pem.matchAll(re)) out.push(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
  return out;
}

/** Encodes DER certificate bytes as one PEM `CERTIFICATE` block (64-column lines, final newline). */
export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * The entries of `X509Certificate.subjectAltName` as Node.js (>= 17.3.1) prints it: `TYPE:value`
 * entries joined by ", ", where a value that would be ambiguous (it contains ", ", a quote...)
 * is written as a JSON string literal (Node.js docs, `x509.subjectAltName`; CVE-2021-44532).
 * Throws {@link PeerAuthError} on text that does not follow that form.
 */
export function parseSubjectAltName(text: string): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) throw new PeerAuthError(`cannot parse certificate subjectAltName near ${JSON.stringify(text.slice(i, i + 40))}`);
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        throw new PeerAuthError(`cannot parse certificate subjectAltName entry ${JSON.stringify(text.slice(i, k + 1))}`);
      }
      j = k + 1;
    } else {
      const end = text.indexOf(', ', j);
      j = end < 0 ? text.length : end;
      value = text.slice(colon + 1, j);
    }
    out.push({ type, value });
    if (j < text.length) {
      if (!text.startsWith(', ', j)) throw new PeerAuthError(`cannot parse certificate subjectAltName near ${JSON.stringify(text.slice(j, j + 40))}`);
      j += 2;
    }
    i = j;
  }
  return out;
}

/** The URI SANs of a parsed certificate (empty if it has no subjectAltName extension). */
export function uriSansOf(cert: X509Certificate): string[] {
  const text: string | null | undefined = cert.subjectAltName;
  // Node.js gives null when the extension is present but cannot be parsed.
  if (text === null) throw new PeerAuthError('cannot parse certificate subjectAltName');
  if (text === undefined || text === '') return [];
  return parseSubjectAltName(text)
    .filter((e) => e.type === 'URI')
    .map((e) => e.value);
}

/**
 * The URI SANs of a certificate (DER), read from its subjectAltName extension with Node.js'
 * X509Certificate (empty if it has none). Throws {@link PeerAuthError} if the certificate or the
 * extension cannot be parsed.
 */
export function uriSans(der: Uint8Array): string[] {
  return uriSansOf(parseDer(Buffer.from(der.buffer, der.byteOffset, der.byteLength), 'certificate'));
}

/** Parsed trust bundles by PEM text (a control plane checks every peer against the same one). */
const ROOTS = new Map<string, X509Certificate[]>();

function rootsOf(trustBundlePem: string): X509Certificate[] {
  let roots = ROOTS.get(trustBundlePem);
  if (!roots) {
    roots = pemToDerList(trustBundlePem).map((d) => parseDer(d, 'trust bundle certificate'));
    if (ROOTS.size >= 16) ROOTS.clear();
    ROOTS.set(trustBundlePem, roots);
  }
  return roots;
}

function parseDer(der: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch {
    throw new PeerAuthError(`${what} is not a DER X.509 certificate`);
  }
}

function checkValidity(cert: X509Certificate, now: Date, what: string): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from) throw new PeerAuthError(`${what} (serial ${cert.serialNumber}) is not valid before ${from.toISOString()}`);
  if (now > to) throw new PeerAuthError(`${what} (serial ${cert.serialNumber}) expired at ${to.toISOString()}`);
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/**
 * Verifies a peer's certificate chain (DER, leaf first, then any intermediates in any order)
 * against `trustBundlePem` (one or more root certificates, PEM) at time `now` (default: now).
 * Returns the leaf's SPIFFE ID, NotAfter and serial. Throws {@link PeerAuthError} naming the
 * problem: no certificate, bad signature / unknown issuer, outside the validity window, a CA leaf,
 * a non-CA intermediate, or not exactly one URI SAN that is a SPIFFE ID.
 */
export function verifyPeerChain(chainDer: Buffer[], trustBundlePem: string, now: Date = new Date()): VerifiedPeer {
  const [leafDer, ...restDer] = chainDer;
  if (!leafDer) throw new PeerAuthError('no peer certificate');
  const roots = rootsOf(trustBundlePem);
  if (roots.length === 0) throw new PeerAuthError('trust bundle holds no certificate');
  const leaf = parseDer(leafDer, 'peer certificate');
  const intermediates = restDer.map((d, i) => parseDer(d, `chain certificate ${i + 1}`));

  if (leaf.ca) throw new PeerAuthError(`peer certificate (serial ${leaf.serialNumber}) is a CA certificate, not an SVID`);
  checkValidity(leaf, now, 'peer certificate');
  const uris = uriSansOf(leaf);
  if (uris.length !== 1) throw new PeerAuthError(`peer certificate has ${uris.length} URI SANs; an X.509-SVID has exactly one`);
  const spiffeId = uris[0] ?? '';
  try {
    parseSpiffeId(spiffeId);
  } catch (err) {
    throw new PeerAuthError(`peer certificate URI SAN is not a SPIFFE ID: ${(err as Error).message}`);
  }

  let current = leaf;
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    const root = roots.find((r) => issuedBy(current, r));
    if (root) {
      checkValidity(root, now, 'root certificate');
      return { spiffeId, notAfter: new Date(leaf.validTo), serial: leaf.serialNumber };
    }
    const parent = intermediates.find((c) => c !== current && issuedBy(current, c));
    if (!parent) {
      throw new PeerAuthError(`certificate (serial ${current.serialNumber}, issuer "${current.issuer.replace(/\n/g, ', ')}") is not signed by the trust bundle or a presented intermediate`);
    }
    if (!parent.ca) throw new PeerAuthError(`intermediate certificate (serial ${parent.serialNumber}) is not a CA`);
    checkValidity(parent, now, 'intermediate certificate');
    current = parent;
  }
  throw new PeerAuthError(`certificate chain longer than ${MAX_CHAIN_DEPTH}`);
}

/** The part of a grpc-js server call this module needs (every server call type has it). */
export interface CallWithAuthContext {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * The peer certificate chain (DER, leaf first) of a grpc-js server call, or undefined if the call
 * came without a client certificate (or over plaintext, or with a certificate OpenSSL did not
 * accept against the server's CA list). Follows `issuerCertificate` links when present (Node's
 * detailed form); grpc-js 1.14 gives only the leaf.
 */
export function peerChainFromCall(call: CallWithAuthContext): Buffer[] | undefined {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  if (!peer?.raw) return undefined;
  const chain: Buffer[] = [peer.raw];
  let cur: PeerCertificate | undefined = (peer as { issuerCertificate?: PeerCertificate }).issuerCertificate;
  while (cur?.raw && chain.length <= MAX_CHAIN_DEPTH && !chain.some((c) => c.equals(cur!.raw))) {
    chain.push(cur.raw);
    cur = (cur as { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return chain;
}

/** Options for {@link authenticateCallPeer} and {@link verifyCallIdentity}. */
export interface CallIdentityOptions {
  /** Root certificates, PEM. */
  trustBundlePem: string;
  /** Intermediate CA certificates (PEM) that may sit between the peer's leaf and a root. */
  intermediatesPem?: string;
  /** Time to check validity at (default now). */
  now?: Date;
}

/**
 * Authenticates the TLS client of a grpc-js server call by its SVID. Returns undefined if the
 * caller sent no (accepted) client certificate; throws {@link PeerAuthError} if it sent one that
 * fails {@link verifyPeerChain}.
 */
export function authenticateCallPeer(call: CallWithAuthContext, opts: CallIdentityOptions): VerifiedPeer | undefined {
  const chain = peerChainFromCall(call);
  if (!chain) return undefined;
  const extra = opts.intermediatesPem ? pemToDerList(opts.intermediatesPem) : [];
  return verifyPeerChain([...chain, ...extra], opts.trustBundlePem, opts.now);
}

/**
 * The verified SPIFFE ID of a grpc-js server call's TLS client (for the xDS server and the CA),
 * or undefined if there is no client certificate or it does not verify.
 */
export function verifyCallIdentity(call: CallWithAuthContext, opts: CallIdentityOptions): string | undefined {
  try {
    return authenticateCallPeer(call, opts)?.spiffeId;
  } catch (err) {
    if (err instanceof PeerAuthError) return undefined;
    throw err;
  }
}
