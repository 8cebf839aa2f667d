/**
 * Helpers for the agent's tests (not used by the agent itself): short temporary directories for
 * Unix sockets, free loopback ports, and a throwaway test CA made with @peculiar/x509 that issues
 * SPIFFE X.509-SVIDs (root → leaf, SPIFFE X.509-SVID spec §4 extensions).
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import * as x509 from '@peculiar/x509';

/** A new directory `/tmp/sk-XXXXXX` (short, so socket paths stay far below 108 bytes). */
export async function shortTempDir(prefix = 'sk-'): Promise<string> {
  return fs.mkdtemp(`/tmp/${prefix}`);
}

/** A TCP port that was free on 127.0.0.1 a moment ago (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** An issued test SVID. */
export interface TestSvid {
  certChainPem: string;
  keyPem: string;
  rootsPem: string;
  serial: string;
  spiffeId: string;
}

/** A test CA: one self-signed ECDSA P-256 root that signs leaves directly. */
export interface TestCa {
  rootPem: string;
  /** Issues a leaf with one URI SAN (and optional DNS/IP SANs), EKU serverAuth+clientAuth. */
  issue(opts: { spiffeId: string; ttlSeconds?: number; dnsNames?: string[]; ips?: string[] }): Promise<TestSvid>;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pemKey(pkcs8: ArrayBuffer): string {
  return `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

/** Creates a fresh test CA (root valid one day). */
export async function createTestCa(name = 'skiff agent test root'): Promise<TestCa> {
  const rootKeys = await crypto.webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name: `O=skiff-test, CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    keys: rootKeys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const rootPem = root.toString('pem') + '\n';
  return {
    rootPem,
    async issue(opts) {
      const keys = await crypto.webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
      const serial = crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1');
      const sans: x509.JsonGeneralName[] = [{ type: 'url', value: opts.spiffeId }, ...(opts.dnsNames ?? []).map((d) => ({ type: 'dns' as const, value: d })), ...(opts.ips ?? []).map((ip) => ({ type: 'ip' as const, value: ip }))];
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: 'O=skiff-test',
        issuer: root.subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + (opts.ttlSeconds ?? 3600) * 1000),
        publicKey: keys.publicKey,
        signingKey: rootKeys.privateKey,
        signingAlgorithm: EC,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension(sans, false),
          await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
        ],
      });
      return {
        certChainPem: leaf.toString('pem') + '\n',
        keyPem: pemKey(await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
        rootsPem: rootPem,
        serial,
        spiffeId: opts.spiffeId,
      };
    },
  };
}
