/**
 * Skiff's SPIFFE certificate authority (DESIGN.md §4).
 *
 * Its signing material uses Istio's `cacerts` layout, so an operator can plug in the CA of an
 * Istio cluster and both meshes share one root:
 * - `ca-cert.pem`: the signing certificate (a root or an intermediate)
 * - `ca-key.pem`: its private key (PKCS#8, SEC1 or PKCS#1 PEM)
 * - `root-cert.pem`: the trust bundle, one or more roots
 * - `cert-chain.pem`: the chain from `ca-cert` up to its root (optional when `ca-cert` is a root)
 *
 * Without `caDir`, the CA lives in `<dataDir>/ca/` in that same layout: on first start a
 * self-signed ECDSA P-256 root valid for 10 years is generated there (key mode 0600). Creation is
 * atomic (built in a temporary directory, then renamed), so two processes starting at once end
 * up sharing one root.
 *
 * Issued certificates follow the SPIFFE X.509-SVID spec (`standards/X509-SVID.md` §4, §5):
 * empty subject, exactly one URI SAN (critical, since the subject is empty), keyUsage critical
 * with digitalSignature (plus keyEncipherment for RSA keys), basicConstraints critical CA:false,
 * extKeyUsage serverAuth + clientAuth, AKI/SKI, a random positive 128-bit serial. Lifetime: TTL
 * default 24 h, max 90 d (larger is an error); NotBefore is backdated by min(2 min, TTL/10) for
 * clock skew and NotAfter = NotBefore + TTL, so the whole validity period never exceeds the TTL;
 * NotAfter never passes the signing chain's own NotAfter.
 *
 * Signing (the hot path) builds the certificate DER directly and signs it with `node:crypto`
 * (`x509-der.ts`), about ten times faster than @peculiar/x509 on WebCrypto (`bench/ca.ts`), as
 * DESIGN.md §4 allows; @peculiar/x509 on Node's WebCrypto generates and reads the CA's own
 * certificates.
 */
import crypto, { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import type { Logger } from '../observability/logger.js';
import { parseSpiffeId } from '../identity/spiffe.js';
import { derToPem, pemToDerList } from '../identity/peer.js';
import { ensureDir, isErrno, isGroupOrWorldAccessible, readIfExists, syncDir, writeFileSynced } from '../identity/files.js';
import { CaError } from './errors.js';
import { checkCsrKey, generateP256, importSigningKey, type SigningKey } from './keys.js';
import { nativeEcdsaStatus } from './native.js';
import { children, read } from './der.js';
import {
  LEAF_EXTENSIONS,
  authorityKeyIdExt,
  buildCertificate,
  certificatePem,
  keyIdentifier,
  parseCsrPem,
  randomSerial,
  subjectAltNameExt,
  subjectKeyIdExt,
  verifyCsrSignature,
  verifyCsrSignatureSync,
  type SanEntry,
} from './x509-der.js';

/** Default SVID lifetime: 24 hours. */
export const DEFAULT_SVID_TTL_SECONDS = 24 * 3600;
/** Longest SVID lifetime the CA issues: 90 days. */
export const MAX_SVID_TTL_SECONDS = 90 * 24 * 3600;
/** Largest NotBefore backdating: 2 minutes. */
export const MAX_BACKDATE_SECONDS = 120;
/** Lifetime of a generated root: 10 years. */
export const ROOT_TTL_SECONDS = 10 * 365 * 24 * 3600;

/** File names of Istio's `cacerts` layout. */
export const CA_FILES = {
  cert: 'ca-cert.pem',
  key: 'ca-key.pem',
  root: 'root-cert.pem',
  chain: 'cert-chain.pem',
} as const;

/** Options for {@link CertificateAuthority.loadOrCreate}. */
export interface CaOptions {
  /** The data dir; the generated CA lives in `<dataDir>/ca/`. */
  dataDir: string;
  /** A plug-in CA directory in Istio's `cacerts` layout; when set nothing is generated. */
  caDir?: string;
  /** Trust domain of the identities this CA signs for (e.g. `cluster.local`). */
  trustDomain: string;
  logger: Logger;
  /** Source of the current time; defaults to the system clock. For tests. */
  clock?: () => Date;
}

/** Options for {@link CertificateAuthority.sign}. */
export interface SignOptions {
  /** The authenticated identity; it becomes the certificate's only URI SAN. */
  spiffeId: string;
  /** Requested lifetime, seconds; default 24 h, at most 90 d. */
  ttlSeconds?: number;
}

/** A signed SVID: the chain to return to the caller and what a lineage record needs. */
export interface IssuedSvid {
  /** PEM: the new leaf first, then intermediates, then every root of the trust bundle. */
  chain: string[];
  /** The leaf's serial number, uppercase hex (`X509Certificate.serialNumber` form). */
  serial: string;
  notAfter: Date;
}

/** Options for {@link CertificateAuthority.issueServingCert}. */
export interface ServingCertOptions {
  spiffeId: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Lifetime, seconds; default 24 h, at most 90 d. */
  ttlSeconds?: number;
}

/** A serving certificate with its freshly generated key. `keyPem` is secret: never log it. */
export interface ServingCert {
  /** Leaf then intermediates (no root), PEM. */
  certChainPem: string;
  /** PKCS#8 PEM of the ECDSA P-256 key. */
  keyPem: string;
  notAfter: Date;
}

interface LoadedMaterial {
  signer: x509.X509Certificate;
  signerDer: Buffer;
  key: SigningKey;
  intermediatesDer: Buffer[];
  rootsDer: Buffer[];
}

/** Signs SPIFFE X.509-SVIDs. Create with {@link CertificateAuthority.loadOrCreate}. */
export class CertificateAuthority {
  private readonly bundlePem: string;
  private readonly intermediatesPem: string[];
  private readonly rootsPem: string[];
  private readonly chainNotAfter: Date;
  /** authorityKeyIdentifier extension of every issued certificate (the signer's key id). */
  private readonly akiExt: Buffer;
  /** The signer's subject Name DER, the issuer of every issued certificate. */
  private readonly issuerName: Uint8Array;
  /** What follows the leaf in every returned chain: intermediates, then roots (PEM). */
  private readonly chainTailPem: readonly string[];
  /** The last SPIFFE ID {@link checkIdentity} accepted (callers usually repeat the same one). */
  private lastCheckedIdentity: string | undefined;

  private constructor(
    private readonly material: LoadedMaterial,
    readonly trustDomain: string,
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {
    this.akiExt = authorityKeyIdExt(signerKeyId(material.signer));
    this.issuerName = subjectNameDer(material.signerDer);
    this.rootsPem = material.rootsDer.map(derToPem);
    this.intermediatesPem = material.intermediatesDer.map(derToPem);
    this.bundlePem = this.rootsPem.join('');
    this.chainTailPem = [...this.intermediatesPem, ...this.rootsPem];
    const limits = [material.signer.notAfter, ...material.intermediatesDer.map((d) => new x509.X509Certificate(bytes(d)).notAfter)];
    this.chainNotAfter = new Date(Math.min(...limits.map((d) => d.getTime())));
  }

  /**
   * Loads the CA from `caDir` (Istio `cacerts` layout), or from `<dataDir>/ca/`, generating a new
   * ECDSA P-256 root there on first start. Checks that the key matches `ca-cert.pem`, that
   * `ca-cert.pem` is a CA allowed to sign certificates, and that it chains (through
   * `cert-chain.pem`) to a root in `root-cert.pem`. Throws {@link CaError} `ca-config` naming the
   * file and the problem.
   */
  static async loadOrCreate(opts: CaOptions): Promise<CertificateAuthority> {
    x509.cryptoProvider.set(globalThis.crypto);
    const logger = opts.logger;
    const clock = opts.clock ?? (() => new Date());
    let dir: string;
    let source: 'plug-in' | 'generated';
    if (opts.caDir) {
      dir = opts.caDir;
      source = 'plug-in';
    } else {
      dir = path.join(opts.dataDir, 'ca');
      source = 'generated';
      if ((await readIfExists(path.join(dir, CA_FILES.key))) === undefined) {
        await generateRoot(opts.dataDir, dir, opts.trustDomain, clock(), logger);
      }
    }
    const material = await loadMaterial(dir, clock(), logger);
    const ca = new CertificateAuthority(material, opts.trustDomain, logger, clock);
    logger.info(
      {
        source,
        dir,
        signer: material.signer.subject,
        serial: material.signer.serialNumber,
        // `signingKey`, not `key`: the logger redacts fields named `key` (secrets guard).
        signingKey: material.key.description,
        notAfter: material.signer.notAfter.toISOString(),
        roots: material.rootsDer.length,
        intermediates: material.intermediatesDer.length,
        csrVerify: csrVerifyRoute(),
      },
      'CA loaded',
    );
    return ca;
  }

  /** All trusted roots, concatenated PEM (the trust bundle agents and proxies are given). */
  trustBundlePem(): string {
    return this.bundlePem;
  }

  /** The intermediates between an issued leaf and the roots, concatenated PEM ('' if none). */
  intermediatesPemBundle(): string {
    return this.intermediatesPem.join('');
  }

  /** The signing certificate's NotAfter, or that of its chain if earlier: no SVID outlives it. */
  get notAfter(): Date {
    return new Date(this.chainNotAfter);
  }

  /**
   * Signs a PKCS#10 CSR (PEM) for the authenticated `spiffeId`. Returns the chain as PEM strings:
   * the new leaf first, then intermediates, then every root of the trust bundle (Istio's
   * `IstioCertificateResponse.cert_chain` order).
   *
   * Throws {@link CaError}: `invalid-ttl` (TTL not a positive number or above 90 d), `bad-csr`
   * (unparsable, bad signature, SANs other than a single URI), `unsupported-key`,
   * `identity-mismatch` (the CSR's URI SAN names someone else), `invalid-identity` (spiffeId is
   * not an Istio-style SPIFFE ID of this trust domain), `ca-expired`.
   */
  sign(csrPem: string, opts: SignOptions): Promise<string[]> {
    return this.signSvid(csrPem, opts).then(chainOf);
  }

  /**
   * {@link sign}, also returning the new leaf's serial (uppercase hex, as Node's
   * `X509Certificate.serialNumber` prints it) and NotAfter, so callers recording the certificate
   * need not parse it again. Throws like {@link sign}.
   */
  async signSvid(csrPem: string, opts: SignOptions): Promise<IssuedSvid> {
    const ttl = checkTtl(opts.ttlSeconds);
    this.checkIdentity(opts.spiffeId);
    const csr = parseCsrPem(csrPem);
    const keyInfo = await checkCsrKey(csr.spki);
    const verified = verifyCsrSignatureSync(csr, keyInfo) ?? (await verifyCsrSignature(csr, keyInfo));
    if (!verified) throw new CaError('bad-csr', 'CSR signature does not verify with its own public key');
    if (csr.sans) {
      const names = csr.sans;
      if (names.length !== 1 || names[0]?.type !== 'uri') {
        const list = names.map((n) => `${n.type}:${n.value}`).join(', ');
        throw new CaError('bad-csr', `CSR must request at most one SAN, a URI; it requests ${names.length}: ${list}`);
      }
      if (names[0].value !== opts.spiffeId) {
        throw new CaError('identity-mismatch', `CSR asks for ${names[0].value} but the caller authenticated as ${opts.spiffeId}`);
      }
    }
    const leaf = this.issue({ spki: csr.spki, keyId: keyInfo.keyId, ttl, sans: [{ type: 'uri', value: opts.spiffeId }], rsa: keyInfo.kind === 'rsa' });
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ spiffeId: opts.spiffeId, serial: leaf.serial, notAfter: leaf.notAfter.toISOString() }, 'SVID issued');
    const chain = [certificatePem(leaf.der)];
    for (const pem of this.chainTailPem) chain.push(pem);
    return { chain, serial: leaf.serial.toUpperCase(), notAfter: leaf.notAfter };
  }

  /**
   * Issues the control plane's own serving certificate for port 15012 with a fresh ECDSA P-256
   * key generated here: SANs `spiffeId` (URI) plus the DNS names and IP addresses it is reached
   * at. Same profile as an SVID otherwise. Throws {@link CaError} like {@link sign}.
   */
  async issueServingCert(opts: ServingCertOptions): Promise<ServingCert> {
    const ttl = checkTtl(opts.ttlSeconds);
    this.checkIdentity(opts.spiffeId);
    const sans: SanEntry[] = [{ type: 'uri', value: opts.spiffeId }];
    for (const dns of opts.dnsNames ?? []) sans.push({ type: 'dns', value: dns });
    for (const ip of opts.ipAddresses ?? []) {
      if (isIP(ip) === 0) throw new CaError('invalid-identity', `not an IP address: ${ip}`);
      sans.push({ type: 'ip', value: ip });
    }
    const { keyPem, spki } = generateP256();
    const leaf = this.issue({ spki, ttl, sans, rsa: false });
    this.logger.info({ spiffeId: opts.spiffeId, dnsNames: opts.dnsNames, ipAddresses: opts.ipAddresses, serial: leaf.serial }, 'serving certificate issued');
    return { certChainPem: derToPem(leaf.der) + this.intermediatesPem.join(''), keyPem, notAfter: leaf.notAfter };
  }

  private checkIdentity(id: string): void {
    if (this.lastCheckedIdentity !== undefined && id === this.lastCheckedIdentity) return; // a pure function of the string
    let td: string;
    try {
      td = parseSpiffeId(id).trustDomain;
    } catch (err) {
      throw new CaError('invalid-identity', (err as Error).message);
    }
    if (td !== this.trustDomain) throw new CaError('invalid-identity', `${id} is not in this CA's trust domain ${this.trustDomain}`);
    this.lastCheckedIdentity = id;
  }

  /** Builds and signs one leaf (DER) with the SVID profile described in the module comment. */
  private issue(req: { spki: Uint8Array; keyId?: Uint8Array; ttl: number; sans: SanEntry[]; rsa: boolean }): { der: Buffer; serial: string; notAfter: Date } {
    const now = this.clock();
    if (now.getTime() >= this.chainNotAfter.getTime()) {
      throw new CaError('ca-expired', `CA signing certificate expired at ${this.chainNotAfter.toISOString()}`);
    }
    const backdateMs = Math.min(MAX_BACKDATE_SECONDS, req.ttl / 10) * 1000;
    const notBefore = new Date(Math.floor((now.getTime() - backdateMs) / 1000) * 1000);
    const notAfter = new Date(Math.min(notBefore.getTime() + req.ttl * 1000, this.chainNotAfter.getTime()));
    const serial = randomSerial();
    const der = buildCertificate(
      {
        serial,
        issuer: this.issuerName,
        notBefore,
        notAfter,
        subject: EMPTY_NAME,
        spki: req.spki,
        extensions: [
          subjectAltNameExt(req.sans, true), // critical: the subject is empty
          req.rsa ? LEAF_EXTENSIONS.keyUsageRsa : LEAF_EXTENSIONS.keyUsageEcdsa,
          LEAF_EXTENSIONS.basicConstraintsLeaf,
          LEAF_EXTENSIONS.extKeyUsage,
          subjectKeyIdExt(req.keyId ?? keyIdentifier(req.spki)),
          this.akiExt,
        ],
      },
      this.material.key.der,
    );
    return { der, serial: serial.toString('hex'), notAfter };
  }
}

/** How CSR self-signatures are verified, for the start-up log: `native` or `webcrypto (<why>)`. */
function csrVerifyRoute(): string {
  const status = nativeEcdsaStatus();
  return status.active ? 'native' : `webcrypto (${status.reason ?? 'native verifier not loaded'})`;
}

function chainOf(svid: IssuedSvid): string[] {
  return svid.chain;
}

/** An empty Name (`SEQUENCE {}`): SVIDs carry their identity only in the URI SAN. */
const EMPTY_NAME = Buffer.from([0x30, 0x00]);

function checkTtl(ttlSeconds: number | undefined): number {
  const ttl = ttlSeconds ?? DEFAULT_SVID_TTL_SECONDS;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 1) {
    throw new CaError('invalid-ttl', `certificate TTL must be a positive number of seconds, got ${String(ttlSeconds)}`);
  }
  if (ttl > MAX_SVID_TTL_SECONDS) {
    throw new CaError('invalid-ttl', `certificate TTL ${ttl}s exceeds the maximum of ${MAX_SVID_TTL_SECONDS}s (90 days)`);
  }
  return Math.floor(ttl);
}

/** Copies bytes into a fresh ArrayBuffer-backed view (what @peculiar/x509's types ask for). */
function bytes(buf: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(buf);
}

/** The signer's key id: its subjectKeyIdentifier, or computed from its key (RFC 5280 method 1). */
function signerKeyId(signer: x509.X509Certificate): Buffer {
  const ski = signer.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return Buffer.from(ski.keyId, 'hex');
  return keyIdentifier(new Uint8Array(signer.publicKey.rawData));
}

/** The subject Name DER of a certificate, byte for byte (so issued certs chain by exact match). */
function subjectNameDer(certDer: Uint8Array): Uint8Array {
  const cert = read(certDer, 0);
  const tbs = read(certDer, cert.contentStart, cert.end);
  const fields = children(certDer, tbs);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version is optional (v1)
  const subject = fields[offset + 4];
  if (!subject) throw new CaError('ca-config', 'signing certificate has no subject');
  return certDer.subarray(subject.start, subject.end);
}

async function readRequired(dir: string, name: string): Promise<string> {
  const text = await readIfExists(path.join(dir, name));
  if (text === undefined) throw new CaError('ca-config', `${path.join(dir, name)}: missing`);
  return text;
}

function certsFrom(text: string, file: string, atLeastOne: boolean): Buffer[] {
  const ders = pemToDerList(text);
  if (atLeastOne && ders.length === 0) throw new CaError('ca-config', `${file}: holds no PEM certificate`);
  for (const d of ders) {
    try {
      new NodeX509(d);
    } catch {
      throw new CaError('ca-config', `${file}: holds a certificate that cannot be parsed`);
    }
  }
  return ders;
}

function isSelfSigned(c: NodeX509): boolean {
  return c.checkIssued(c) && c.verify(c.publicKey);
}

async function loadMaterial(dir: string, now: Date, logger: Logger): Promise<LoadedMaterial> {
  const certFile = path.join(dir, CA_FILES.cert);
  const keyFile = path.join(dir, CA_FILES.key);
  const rootFile = path.join(dir, CA_FILES.root);
  const chainFile = path.join(dir, CA_FILES.chain);
  const signerDer = certsFrom(await readRequired(dir, CA_FILES.cert), certFile, true)[0] as Buffer;
  const keyPem = await readRequired(dir, CA_FILES.key);
  if (await isGroupOrWorldAccessible(keyFile)) logger.warn({ file: keyFile }, 'CA key file is readable by group or others; it should be mode 0600');
  const key = importSigningKey(keyPem, keyFile);
  const rootsDer = certsFrom(await readRequired(dir, CA_FILES.root), rootFile, true);
  const chainText = await readIfExists(chainFile);
  const chainDer = chainText === undefined ? [] : certsFrom(chainText, chainFile, false);

  const signerNode = new NodeX509(signerDer);
  const signerSpki = signerNode.publicKey.export({ format: 'der', type: 'spki' });
  if (!signerSpki.equals(key.spki)) throw new CaError('ca-config', `${keyFile} does not hold the private key of ${certFile}`);
  const signer = new x509.X509Certificate(bytes(signerDer));
  const bc = signer.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new CaError('ca-config', `${certFile}: not a CA certificate (basicConstraints CA:TRUE missing)`);
  const ku = signer.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) throw new CaError('ca-config', `${certFile}: keyUsage lacks keyCertSign`);
  if (signer.notAfter.getTime() <= now.getTime()) throw new CaError('ca-config', `${certFile}: expired at ${signer.notAfter.toISOString()}`);
  if (signer.notBefore.getTime() > now.getTime() + 5 * 60_000) throw new CaError('ca-config', `${certFile}: not valid before ${signer.notBefore.toISOString()}`);

  // Walk from the signer to a root of the bundle through cert-chain.pem.
  const roots = rootsDer.map((d) => new NodeX509(d));
  const pool = chainDer.map((d) => ({ der: d, cert: new NodeX509(d) }));
  const intermediatesDer: Buffer[] = [];
  let current = signerNode;
  let currentDer = signerDer;
  for (let depth = 0; ; depth++) {
    if (depth > 8) throw new CaError('ca-config', `${chainFile}: chain longer than 8 certificates`);
    if (roots.some((r) => r.raw.equals(currentDer))) break; // the signer (or this link) is itself a root
    intermediatesDer.push(currentDer);
    if (roots.some((r) => current.checkIssued(r) && current.verify(r.publicKey))) break;
    const parent = pool.find((p) => !p.der.equals(currentDer) && current.checkIssued(p.cert) && current.verify(p.cert.publicKey));
    if (!parent || isSelfSigned(current)) {
      throw new CaError('ca-config', `${certFile}: does not chain to a root in ${rootFile} (through ${chainFile}); subject "${current.subject.replace(/\n/g, ', ')}"`);
    }
    current = parent.cert;
    currentDer = parent.der;
  }
  return { signer, signerDer, key, intermediatesDer, rootsDer };
}

async function generateRoot(dataDir: string, dir: string, trustDomain: string, now: Date, logger: Logger): Promise<void> {
  await ensureDir(dataDir);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  const notBefore = new Date(now.getTime() - 3600_000);
  const root = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: [{ O: [trustDomain] }, { CN: ['Skiff Root CA'] }],
      notBefore,
      notAfter: new Date(notBefore.getTime() + ROOT_TTL_SECONDS * 1000),
      keys,
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectKeyIdentifierExtension(keyIdentifier(spki).toString('hex'), false),
      ],
    },
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${(pkcs8.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END PRIVATE KEY-----\n`;
  const certPem = root.toString('pem') + '\n';
  const tmp = path.join(dataDir, `.ca.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  await ensureDir(tmp);
  try {
    await writeFileSynced(path.join(tmp, CA_FILES.key), keyPem, 0o600);
    await writeFileSynced(path.join(tmp, CA_FILES.cert), certPem, 0o644);
    await writeFileSynced(path.join(tmp, CA_FILES.root), certPem, 0o644);
    await writeFileSynced(path.join(tmp, CA_FILES.chain), certPem, 0o644);
    await syncDir(tmp);
    try {
      await fs.rename(tmp, dir);
      await syncDir(dataDir);
      logger.info({ dir, serial: root.serialNumber, notAfter: root.notAfter.toISOString() }, 'generated a new ECDSA P-256 root CA');
    } catch (err) {
      // Another process created it first (or an empty dir was there): keep theirs.
      if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err;
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
