/**
 * CA signing benchmark (issue 2 §7, issue 9 §1). Prints one JSON object (`benchmark: "ca-sign"`).
 *
 * What "raw limit" means here: one ECDSA P-256 / SHA-256 signature (the certificate) plus one
 * verification (the CSR's self-signature), `node:crypto`, with the key objects already imported.
 * That is the floor cost of one certificate; `ratio` = the CA's rate / that rate.
 *
 * Phases, run interleaved in short rounds (so load from other processes on the shared cores hits
 * every phase alike), each rate counted per second of wall time and per CPU second of this
 * process (`process.cpuUsage`, all threads): "per core" in the JSON means per CPU second.
 * - `signingCore`: `CertificateAuthority.sign()` one call at a time as `skiff serve` runs it:
 *   parse the CSR, take its public key, verify its signature, check the SAN, build and sign the
 *   SVID, PEM-encode the chain. CSR signatures go through the native verifier
 *   (`src/ca/native.ts`, built by `scripts/build-native.mjs`, which this benchmark runs first)
 *   when it is built; `signingCore.csrVerify` says which route ran.
 * - `signingCoreWebCrypto`: the same with the native verifier switched off: the CSR key is
 *   imported through WebCrypto `raw` (the route without a C compiler, and before issue 9).
 * - `raw`: the raw limit above.
 * - `rawWithKeyImport` (context only): the same plus importing the CSR's public key from its bytes
 *   (a CA never saw the key before, so it cannot skip this); the cheapest import `node:crypto`
 *   offers on Node 20 / OpenSSL 3.0 costs about as much as the verification itself.
 * - `csrCheck`: parse + key import + verify alone.
 * - `peculiarX509`: the same work on @peculiar/x509 + WebCrypto, the library path the CA used
 *   before its hot path moved to DER + `node:crypto` (DESIGN.md §4); fewer rounds (slow).
 * Then `grpc`: the whole Istio `CreateCertificate` path: the CA service (as `skiff serve` wires
 * it: mTLS renewal authentication against the trust bundle, the SQLite lineage store recording
 * each certificate; certificates issued together share one durable commit, see
 * `src/store/sqlite/group-commit.ts`) in a child process, called by a grpc-js client in this
 * process over mTLS with `concurrency` calls in flight on one channel. Reports calls/s and the
 * server's CSRs per CPU second (its CPU from /proc), so its ratio to the raw limit is per core too.
 * `grpcWithoutDatabase` is the same with an in-memory lineage, separating the CA service's cost
 * from SQLite's durable commits.
 *
 * Run: `node --import tsx bench/ca.ts [--seconds N] [--grpc-seconds N] [--concurrency N]`
 * (`npm run bench:ca`). Defaults: 6 s per in-process phase, 8 s of gRPC load.
 */
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { CertificateAuthority } from '../src/ca/authority.js';
import { meshChannelCredentials, meshServerCredentials } from '../src/ca/credentials.js';
import { checkCsrKey } from '../src/ca/keys.js';
import { nativeEcdsaStatus, setNativeEcdsaEnabled } from '../src/ca/native.js';
import { CREATE_CERTIFICATE_PATH, caServiceDefinition, createCaService, type CertificateLineage, type IstioCertificateRequest, type IstioCertificateResponse } from '../src/ca/service.js';
import { parseCsrPem, verifyCsrSignature } from '../src/ca/x509-der.js';
import { generateKeyAndCsr } from '../src/identity/csr.js';
import { CONTROL_PLANE_SPIFFE_ID } from '../src/identity/spiffe.js';
import { TokenAuthority } from '../src/identity/tokens.js';
import { silentLogger } from '../src/observability/logger.js';
import { createControlPlaneMetrics } from '../src/observability/metrics.js';
import { openStore } from '../src/store/index.js';
import { machineInfo, processCpuSeconds, quantile, round, argValue } from './machine.js';

const TD = 'cluster.local';
const SPIFFE_ID = `spiffe://${TD}/ns/bench/sa/workload`;
const ROUND_MS = 250;

/** Accumulated operations, wall time and CPU time of one phase over its rounds. */
interface PhaseTotals {
  ops: number;
  wallS: number;
  cpuS: number;
}

/** One timed round of `fn` for about `ms` milliseconds; adds into `totals`. */
async function runRound(fn: () => unknown, ms: number, totals: PhaseTotals): Promise<void> {
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    await fn();
    n++;
    if ((n & 7) === 0) now = performance.now();
  }
  now = performance.now();
  const cpu = process.cpuUsage(cpu0);
  totals.ops += n;
  totals.wallS += (now - start) / 1000;
  totals.cpuS += (cpu.user + cpu.system) / 1e6;
}

function rates(t: PhaseTotals): { perSecond: number; perCpuSecond: number; ops: number } {
  return { perSecond: round(t.ops / t.wallS), perCpuSecond: round(t.ops / t.cpuS), ops: t.ops };
}

// ------------------------------------------------------------------ gRPC server (child process)

/**
 * The child side of the gRPC phase: a CA service wired like `skiff serve` (store-backed token
 * state and lineage), serving on 127.0.0.1 with mTLS. Writes the client's SVID and the trust
 * bundle into `dir`, prints `port <n>` and serves until stdin closes.
 */
async function serve(dir: string, ledger: 'sqlite' | 'memory'): Promise<void> {
  const logger = silentLogger();
  const store = openStore({ dataDir: dir, logger });
  const memory = new Map<string, string | undefined>();
  const certificates: CertificateLineage =
    ledger === 'sqlite'
      ? store.certificates
      : {
          record: (c) => {
            memory.set(c.serial, c.jti);
            return Promise.resolve();
          },
          tokenOf: (serial) => Promise.resolve(memory.get(serial)),
        };
  const ca = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: TD, logger });
  const tokens = await TokenAuthority.open({ dataDir: dir, trustDomain: TD, logger, state: store.tokens });
  const trustBundlePem = ca.trustBundlePem();
  const service = createCaService({ ca, tokens, trustBundlePem, logger, metrics: createControlPlaneMetrics(), certificates });
  const serving = await ca.issueServingCert({ spiffeId: CONTROL_PLANE_SPIFFE_ID(TD), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await generateKeyAndCsr({ spiffeId: SPIFFE_ID });
  const clientChain = await ca.sign(client.csrPem, { spiffeId: SPIFFE_ID });
  fs.writeFileSync(path.join(dir, 'client.json'), JSON.stringify({ certChainPem: clientChain.slice(0, -1).join(''), keyPem: client.keyPem, trustBundlePem }), { mode: 0o600 });
  const server = new grpc.Server();
  server.addService(service.definition, service.implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', meshServerCredentials({ certChainPem: serving.certChainPem, keyPem: serving.keyPem, trustBundlePem }), (err, p) => (err ? reject(err) : resolve(p)));
  });
  process.stdout.write(`port ${port}\n`);
  process.stdin.resume();
  await new Promise<void>((resolve) => process.stdin.once('end', resolve));
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await store.close();
}

/** Runs the gRPC phase against a child CA server; returns its JSON section. */
async function grpcPhase(csrs: string[], seconds: number, concurrency: number, rawPerCpuSecond: number, ledger: 'sqlite' | 'memory'): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-ca-grpc-'));
  // SKIFF_BENCH_CPU_PROF=<dir>: write a V8 CPU profile of the CA server (open in Chrome DevTools).
  const prof = process.env['SKIFF_BENCH_CPU_PROF'] ? ['--cpu-prof', '--cpu-prof-dir', process.env['SKIFF_BENCH_CPU_PROF']] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', fileURLToPath(import.meta.url), '--serve', dir, ledger], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const rl = readline.createInterface({ input: child.stdout });
      rl.on('line', (line) => {
        const m = /^port (\d+)$/.exec(line);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`CA server exited early (${code})`)));
    });
    const material = JSON.parse(fs.readFileSync(path.join(dir, 'client.json'), 'utf8')) as { certChainPem: string; keyPem: string; trustBundlePem: string };
    const creds = meshChannelCredentials({ ...material, expectedServerSpiffeId: CONTROL_PLANE_SPIFFE_ID(TD) });
    // TLS server name `localhost` (a DNS SAN of the serving certificate): SNI may not be an IP.
    const client = new grpc.Client(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    const def = caServiceDefinition()['CreateCertificate'] as grpc.MethodDefinition<IstioCertificateRequest, IstioCertificateResponse>;
    let next = 0;
    const call = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = { csr: csrs[next++ % csrs.length] ?? '', validityDuration: 0 };
        client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, def.requestSerialize, def.responseDeserialize, req, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err, res) =>
          err || !res?.certChain.length ? reject(err ?? new Error('empty response')) : resolve(),
        );
      });
    const load = async (ms: number, latencies?: number[]): Promise<number> => {
      const end = performance.now() + ms;
      let done = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            const t = performance.now();
            await call();
            latencies?.push(performance.now() - t);
            done++;
          }
        }),
      );
      return done;
    };
    await load(1000); // warm-up: TLS handshake, JIT, SQLite pages
    const latencies: number[] = [];
    const cpu0 = processCpuSeconds(child.pid ?? 0);
    const t0 = performance.now();
    const done = await load(seconds * 1000, latencies);
    const wallS = (performance.now() - t0) / 1000;
    const serverCpuS = processCpuSeconds(child.pid ?? 0) - cpu0;
    client.close();
    const perCpuSecond = done / serverCpuS;
    process.stderr.write(`gRPC CreateCertificate (${ledger} ledger): ${round(done / wallS)}/s, ${round(perCpuSecond)} per server CPU-s (${done} calls, ${concurrency} in flight)\n`);
    return {
      path: `istio.v1.auth.IstioCertificateService/CreateCertificate over mTLS (renewal: client SVID), ${ledger === 'sqlite' ? 'SQLite lineage store as skiff serve wires it (durable group commit: calls in flight together share one transaction)' : 'in-memory lineage (the CA service alone, no database)'}`,
      concurrency,
      calls: done,
      callsPerSecond: round(done / wallS),
      serverCpuSeconds: round(serverCpuS, 2),
      serverCsrsPerCpuSecond: round(perCpuSecond),
      ratioToRawPerCore: round(perCpuSecond / rawPerCpuSecond, 3),
      latencyMs: { p50: round(quantile(latencies, 0.5), 2), p99: round(quantile(latencies, 0.99), 2) },
    };
  } finally {
    child.stdin.end();
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/build-native.mjs', import.meta.url))], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) process.stderr.write(`build-native exited ${build.status ?? build.signal}\n`);
  const status = nativeEcdsaStatus();
  const csrVerifyRoute = status.active ? 'native' : `webcrypto (${status.reason ?? '?'})`;
  process.stderr.write(`CSR verification: ${csrVerifyRoute}\n`);
  const seconds = argValue('--seconds', 6);
  const grpcSeconds = argValue('--grpc-seconds', 8);
  const concurrency = argValue('--concurrency', 8);
  const machine = machineInfo();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-ca-'));
  try {
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: dir, trustDomain: TD, logger: silentLogger() });
    // 64 distinct CSR keys: every key import is of a key not seen in the previous 63 calls.
    const csrs = await Promise.all(Array.from({ length: 64 }, () => generateKeyAndCsr({ spiffeId: SPIFFE_ID })));
    const csrPems = csrs.map((c) => c.csrPem);
    const parsed = csrPems.map((p) => parseCsrPem(p));
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tbs = crypto.randomBytes(420); // about the size of an SVID's TBSCertificate
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const caKeys = await crypto.webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
    const issuer = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=bench', keys: caKeys, signingAlgorithm: alg });
    let i = 0;
    const phases: Record<string, { fn: () => unknown; everyNthRound: number; totals: PhaseTotals }> = {
      signingCore: { fn: () => ca.sign(csrPems[i++ & 63] ?? '', { spiffeId: SPIFFE_ID }), everyNthRound: 1, totals: { ops: 0, wallS: 0, cpuS: 0 } },
      signingCoreWebCrypto: {
        fn: async () => {
          const was = setNativeEcdsaEnabled(false);
          try {
            await ca.sign(csrPems[i++ & 63] ?? '', { spiffeId: SPIFFE_ID });
          } finally {
            setNativeEcdsaEnabled(was);
          }
        },
        everyNthRound: 1,
        totals: { ops: 0, wallS: 0, cpuS: 0 },
      },
      raw: {
        fn: () => {
          const sig = crypto.sign('sha256', tbs, privateKey);
          if (!crypto.verify('sha256', tbs, publicKey, sig)) throw new Error('verify failed');
        },
        everyNthRound: 1,
        totals: { ops: 0, wallS: 0, cpuS: 0 },
      },
      rawWithKeyImport: {
        fn: async () => {
          const csr = parsed[i++ & 63];
          if (!csr) throw new Error('no CSR');
          const key = await crypto.webcrypto.subtle.importKey('raw', csr.spki.subarray(csr.spki.length - 65), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
          if (!crypto.verify('sha256', csr.info, crypto.KeyObject.from(key), csr.signature)) throw new Error('verify failed');
          crypto.sign('sha256', tbs, privateKey);
        },
        everyNthRound: 1,
        totals: { ops: 0, wallS: 0, cpuS: 0 },
      },
      csrCheck: {
        fn: async () => {
          const csr = parseCsrPem(csrPems[i++ & 63] ?? '');
          if (!(await verifyCsrSignature(csr, await checkCsrKey(csr.spki)))) throw new Error('CSR did not verify');
        },
        everyNthRound: 1,
        totals: { ops: 0, wallS: 0, cpuS: 0 },
      },
      peculiarX509: {
        fn: async () => {
          const csr = new x509.Pkcs10CertificateRequest(csrPems[i++ & 63] ?? '');
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
        },
        everyNthRound: 4,
        totals: { ops: 0, wallS: 0, cpuS: 0 },
      },
    };
    // Warm-up (JIT, lazily initialised OpenSSL state), then interleaved rounds.
    for (const p of Object.values(phases)) await runRound(p.fn, 200, { ops: 0, wallS: 0, cpuS: 0 });
    const rounds = Math.max(1, Math.round((seconds * 1000) / ROUND_MS));
    for (let r = 0; r < rounds; r++) {
      for (const p of Object.values(phases)) if (r % p.everyNthRound === 0) await runRound(p.fn, ROUND_MS, p.totals);
    }
    const core = rates(phases.signingCore?.totals ?? { ops: 0, wallS: 1, cpuS: 1 });
    const raw = rates(phases.raw?.totals ?? { ops: 0, wallS: 1, cpuS: 1 });
    const coreWebCrypto = rates(phases.signingCoreWebCrypto?.totals ?? { ops: 0, wallS: 1, cpuS: 1 });
    const rawImport = rates(phases.rawWithKeyImport?.totals ?? { ops: 0, wallS: 1, cpuS: 1 });
    const csrCheck = rates(phases.csrCheck?.totals ?? { ops: 0, wallS: 1, cpuS: 1 });
    const peculiar = rates(phases.peculiarX509?.totals ?? { ops: 0, wallS: 1, cpuS: 1 });
    for (const [name, p] of Object.entries(phases)) {
      const r = rates(p.totals);
      process.stderr.write(`${name}: ${r.perSecond}/s wall, ${r.perCpuSecond} per CPU-s (${r.ops} ops)\n`);
    }
    const grpcResult = await grpcPhase(csrPems, grpcSeconds, concurrency, raw.perCpuSecond, 'sqlite');
    const grpcMemory = await grpcPhase(csrPems, grpcSeconds, concurrency, raw.perCpuSecond, 'memory');
    const result = {
      benchmark: 'ca-sign',
      date: new Date().toISOString(),
      machine,
      command: 'node --import tsx bench/ca.ts',
      secondsPerPhase: seconds,
      csrKey: 'ECDSA P-256',
      caKey: 'ECDSA P-256',
      rawLimitDefinition: 'one ECDSA P-256/SHA-256 sign (the certificate) + one verify (the CSR self-signature), node:crypto, keys already imported',
      target: 'signingCore.ratioPerCore >= 0.5',
      signingCore: { ...core, ratioPerCore: round(core.perCpuSecond / raw.perCpuSecond, 3), ratioWall: round(core.perSecond / raw.perSecond, 3), csrVerify: csrVerifyRoute },
      signingCoreWebCrypto: {
        ...coreWebCrypto,
        ratioPerCore: round(coreWebCrypto.perCpuSecond / raw.perCpuSecond, 3),
        ratioWall: round(coreWebCrypto.perSecond / raw.perSecond, 3),
        note: 'the same calls with the native verifier switched off (CSR key imported through WebCrypto raw): what the CA does where no C compiler built it',
      },
      raw,
      rawWithKeyImport: { ...rawImport, note: 'raw + importing a never-seen CSR public key (WebCrypto raw import); context, not the target baseline' },
      csrCheck,
      grpc: grpcResult,
      grpcWithoutDatabase: grpcMemory,
      peculiarX509: { ...peculiar, speedupOfSigningCore: round(core.perCpuSecond / peculiar.perCpuSecond, 1) },
      // Kept for readers of the issue-2 JSON shape.
      csrSignedPerSecond: core.perSecond,
      rawEcdsaP256SignVerifyPerSecond: raw.perSecond,
      ratio: round(core.perCpuSecond / raw.perCpuSecond, 3),
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const serveAt = process.argv.indexOf('--serve');
if (serveAt >= 0) await serve(process.argv[serveAt + 1] ?? '', process.argv[serveAt + 2] === 'memory' ? 'memory' : 'sqlite');
else await main();
