/**
 * CA signing benchmark (issue 2 §7). Prints one JSON object:
 * - `csrSignedPerSecond`: `CertificateAuthority.sign()` calls completed per second, one at a time
 *   (one core: each call awaits the previous one), ECDSA P-256 CSRs against a generated ECDSA
 *   P-256 root. Each call parses the CSR, verifies its signature, builds and signs the SVID.
 * - `rawEcdsaP256SignVerifyPerSecond`: `node:crypto` ECDSA P-256 / SHA-256 sign followed by a
 *   verify, per second, on the same machine in the same run: the floor cost of one CSR (one
 *   verify of the CSR, one signature on the certificate).
 * - `ratio`: the first divided by the second (1.0 would mean the CA adds no overhead).
 * - `breakdown`: the CSR check alone (parse, key import, signature verify), and for comparison
 *   the same work done with @peculiar/x509 on WebCrypto (CSR verify + certificate build), the
 *   library path the CA used before its hot path moved to DER + `node:crypto` (DESIGN.md §4).
 *
 * Run: `node --import tsx bench/ca.ts [seconds per phase, default 3]`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { CertificateAuthority } from '../src/ca/authority.js';
import { generateKeyAndCsr } from '../src/identity/csr.js';
import { checkCsrKey } from '../src/ca/keys.js';
import { parseCsrPem, verifyCsrSignature } from '../src/ca/x509-der.js';
import { silentLogger } from '../src/observability/logger.js';

const seconds = Number(process.argv[2] ?? 3);
const SPIFFE_ID = 'spiffe://cluster.local/ns/bench/sa/workload';

async function rate(label: string, fn: () => unknown, durationMs = seconds * 1000): Promise<number> {
  // Warm up (JIT, lazily initialised crypto state) before timing.
  for (let i = 0; i < 50; i++) await fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(durationMs) * 1_000_000n;
  let now = start;
  while (now < end) {
    await fn();
    n++;
    if ((n & 15) === 0) now = process.hrtime.bigint();
  }
  now = process.hrtime.bigint();
  const perSecond = n / (Number(now - start) / 1e9);
  process.stderr.write(`${label}: ${perSecond.toFixed(0)}/s (${n} in ${(Number(now - start) / 1e9).toFixed(2)} s)\n`);
  return perSecond;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-ca-'));
  try {
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: 'cluster.local', logger: silentLogger() });
    const csrs = await Promise.all(Array.from({ length: 16 }, () => generateKeyAndCsr({ spiffeId: SPIFFE_ID })));
    let i = 0;
    const csrSignedPerSecond = await rate('CertificateAuthority.sign', async () => ca.sign(csrs[i++ % csrs.length]?.csrPem ?? '', { spiffeId: SPIFFE_ID }));

    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tbs = crypto.randomBytes(400); // about the size of an SVID's TBSCertificate
    const rawEcdsaP256SignVerifyPerSecond = await rate('node:crypto ECDSA P-256 sign+verify', () => {
      const sig = crypto.sign('sha256', tbs, privateKey);
      if (!crypto.verify('sha256', tbs, publicKey, sig)) throw new Error('verify failed');
    });

    let j = 0;
    const csrCheckPerSecond = await rate('CSR parse + key import + signature verify (DER + node:crypto)', async () => {
      const csr = parseCsrPem(csrs[j++ % csrs.length]?.csrPem ?? '');
      if (!(await verifyCsrSignature(csr, checkCsrKey(csr.spki).publicKey))) throw new Error('CSR did not verify');
    });

    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const caKeys = await crypto.webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
    const issuer = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=bench', keys: caKeys, signingAlgorithm: alg });
    let k = 0;
    const peculiarPerSecond = await rate('@peculiar/x509 on WebCrypto: CSR verify + certificate build', async () => {
      const csr = new x509.Pkcs10CertificateRequest(csrs[k++ % csrs.length]?.csrPem ?? '');
      if (!(await csr.verify())) throw new Error('CSR did not verify');
      await x509.X509CertificateGenerator.create({
        issuer: issuer.subjectName,
        publicKey: csr.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: alg,
        extensions: [
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: SPIFFE_ID }], true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        ],
      });
    });

    const cpu = os.cpus()[0];
    const result = {
      benchmark: 'ca-sign',
      date: new Date().toISOString(),
      machine: {
        cpuModel: cpu?.model ?? 'unknown',
        cpuCount: os.cpus().length,
        totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        node: process.version,
        openssl: process.versions.openssl,
      },
      secondsPerPhase: seconds,
      csrKey: 'ECDSA P-256',
      caKey: 'ECDSA P-256',
      csrSignedPerSecond: Math.round(csrSignedPerSecond),
      rawEcdsaP256SignVerifyPerSecond: Math.round(rawEcdsaP256SignVerifyPerSecond),
      ratio: Math.round((csrSignedPerSecond / rawEcdsaP256SignVerifyPerSecond) * 1000) / 1000,
      breakdown: {
        csrCheckPerSecond: Math.round(csrCheckPerSecond),
        peculiarX509WebCryptoPathPerSecond: Math.round(peculiarPerSecond),
        speedupOverPeculiarPath: Math.round((csrSignedPerSecond / peculiarPerSecond) * 10) / 10,
      },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
