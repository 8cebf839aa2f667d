/**
 * Agent benchmark (issue 9 §1, §2): the node agent's cold start and memory.
 *
 * - `coldStartMs`: from spawning `skiff agent` (fresh state directory: no SVID yet, so it makes a
 *   key and CSR, gets its SVID over CreateCertificate with a bootstrap token, serves SDS, writes
 *   the bootstrap, starts Envoy, which fetches its config over ADS) to the first successful mTLS
 *   request through its Envoy: an HTTP/1.1 GET from the host with a client SVID, Istio's SNI and
 *   ALPN, answered 200 by the app behind the Sidecar ingress (STRICT mTLS).
 * - `envoyStaticStartMs`: the same Envoy binary started on its own with a static bootstrap giving
 *   the same mTLS inbound listener (`bench/dataplane/minimal-envoy.ts`), from spawn to the first
 *   successful request of the same kind: Envoy's own start time. Target:
 *   coldStartMs < envoyStaticStartMs + 1000.
 * - `agentRssMiB`: the agent process's resident memory (VmRSS) once serving, after a few seconds
 *   of steady state; Envoy's RSS is reported beside it. Target: agent < 60 MiB.
 * Repeated `--reps` times (default 3, medians reported), alternating Envoy-alone and agent runs.
 *
 * The agent runs as the single-file binary `dist/skiff-agent-linux-x64` when it has been built
 * (`npm run build:agent-binary`), else from source with tsx (`--from-source` forces that); the JSON
 * says which. The VM is a network namespace on a bridge, 198.18.50.0/24 (shared with the data-plane benchmark: run them one at a time); the control plane and the
 * test client are on the host side. Needs root, `go` (the backend) and Envoy (`npm run setup`).
 * The agent gets the environment of its systemd unit (agents/systemd/skiff-agent.service:
 * NODE_OPTIONS and any other `Environment=`), as deployed. With the binary, each repetition also
 * runs it once more after dropping the binary's page cache (`afterPageCacheDrop`, as after a
 * reboot; `--no-page-cache-drop` skips it).
 * Run: `node --import tsx bench/agent/run.ts [--reps 3] [--from-source] [--binary <path>] [--node-options '<flags>']
 * [--compare-node-options '<flags>'] [--debug-log]` (`--node-options` sets NODE_OPTIONS for the
 * agent; `--compare-node-options` adds a second cold start per repetition with those flags, reported
 * as `withNodeOptions`, e.g. `--max-semi-space-size=1` as the systemd unit sets it;
 * `--debug-log` runs it at log level debug for a finer `firstRunTimeline`; `--hold <file>` keeps each
 * measured agent running, its pid written to `file`, until the file is removed).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { issueSvid, type Svid } from '../../test/helpers/authz-lab.js';
import { canCreateNetns, createLab, type Lab } from '../../test/helpers/netns.js';
import { ProcessGroup } from '../../test/helpers/processes.js';
import { REPO, SKIFF, agentArgs, createToken, startControlPlaneProc, type AgentSpec } from '../../test/helpers/skiff.js';
import { machineInfo, processMemoryMiB, processRssMiB, round, argValue } from '../machine.js';
import { minimalServerBootstrap } from '../dataplane/minimal-envoy.js';

const NS = 'bench';
const HOST = `web.${NS}.svc.cluster.local`;
const PORT = 8080;
const STATIC_PORT = 18443;
const APP_PORT = 9080;
const SUBNET = 50; // 198.18.50.0/24, shared with bench/dataplane (bench/run.ts runs them one at a time)
const SNI = `outbound_.${PORT}_._.${HOST}`;

function meshYaml(ip: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: ${NS}}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: ${PORT}, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-1, namespace: ${NS}}
spec: {address: ${ip}, serviceAccount: web, labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: web, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: web}}
  ingress:
    - port: {number: ${PORT}, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:${APP_PORT}
`;
}

/** One mTLS HTTP/1.1 GET; resolves the status code, 0 on any failure (not listening yet, TLS refused). */
function mtlsGet(ip: string, port: number, svid: Svid, ca: string): Promise<number> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(status);
    };
    const socket = tls.connect({
      host: ip,
      port,
      cert: svid.certChainPem,
      key: svid.keyPem,
      ca,
      servername: SNI,
      ALPNProtocols: ['istio-http/1.1'],
      checkServerIdentity: () => undefined, // the chain is verified; the identity is a URI SAN
    });
    let data = '';
    socket.setTimeout(2000, () => done(0));
    socket.on('error', () => done(0));
    socket.on('secureConnect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m) done(Number(m[1]));
    });
    socket.on('end', () => done(0));
  });
}

/** Polls until a request succeeds; resolves the time of success (performance.now()). */
async function firstSuccess(ip: string, port: number, svid: Svid, ca: string, child: ChildProcess, timeoutMs: number, logs: () => string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited before serving\n${logs()}`);
    if ((await mtlsGet(ip, port, svid, ca)) === 200) return performance.now();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no successful mTLS request within ${timeoutMs} ms\n${logs()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The Envoy child of a process (the agent's supervisor spawns it). */
function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const reps = argValue('--reps', 3);
  const fromSource = process.argv.includes('--from-source');
  const debugLog = process.argv.includes('--debug-log');
  const nodeOptionsAt = process.argv.indexOf('--node-options');
  // As deployed: the environment the systemd unit gives the agent (NODE_OPTIONS and the rest);
  // `--node-options` replaces NODE_OPTIONS.
  const unitEnv = unitEnvironment(path.join(REPO, 'agents', 'systemd', 'skiff-agent.service'));
  const nodeOptions = nodeOptionsAt >= 0 ? (process.argv[nodeOptionsAt + 1] ?? '') : unitEnv['NODE_OPTIONS'];
  const agentExtraEnv = Object.fromEntries(Object.entries(unitEnv).filter(([k]) => k !== 'NODE_OPTIONS'));
  const compareAt = process.argv.indexOf('--compare-node-options');
  const compareNodeOptions = compareAt >= 0 ? (process.argv[compareAt + 1] ?? '') : undefined;
  const holdAt = process.argv.indexOf('--hold');
  const holdFile = holdAt >= 0 ? path.resolve(process.argv[holdAt + 1] ?? '') : undefined;
  if (!canCreateNetns()) throw new Error('the agent benchmark needs root and `ip netns` (network namespaces)');
  const envoy = fs.readFileSync(path.join(REPO, '.venv', 'envoy-path'), 'utf8').trim();
  const binaryAt = process.argv.indexOf('--binary');
  const binary = binaryAt >= 0 ? path.resolve(process.argv[binaryAt + 1] ?? '') : path.join(REPO, 'dist', 'skiff-agent-linux-x64');
  const useBinary = !fromSource && fs.existsSync(binary);
  const [node, ...tsxArgs] = SKIFF as [string, ...string[]];
  // --profile-dir <dir> (from source only): a V8 CPU profile of each agent run, written when it stops.
  const profileAt = process.argv.indexOf('--profile-dir');
  const profile = profileAt >= 0 && !useBinary ? ['--cpu-prof', '--cpu-prof-dir', process.argv[profileAt + 1] ?? '.'] : [];
  const agentCommand = useBinary ? { cmd: binary, pre: [] as string[] } : { cmd: node, pre: [...profile, ...tsxArgs] };
  const machine = machineInfo();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-agent-'));
  const socketRoot = fs.mkdtempSync('/tmp/sk-');
  const group = new ProcessGroup();
  let lab: Lab | undefined;
  try {
    const backendBin = path.join(tmp, 'backend');
    const go = fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
    execFileSync(go, ['build', '-o', backendBin, path.join(REPO, 'bench', 'dataplane', 'backend.go')], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, GO111MODULE: 'off' } });
    lab = createLab(['a'], SUBNET);
    const theLab = lab;
    const ip = lab.vms['a']?.ip ?? '';
    const meshDir = path.join(tmp, 'mesh');
    fs.mkdirSync(meshDir);
    fs.writeFileSync(path.join(meshDir, 'mesh.yaml'), meshYaml(ip));
    const dataDir = path.join(tmp, 'data');
    const cp = await startControlPlaneProc(group, { configDir: meshDir, dataDir, address: lab.hostIp });
    const trustBundleFile = path.join(dataDir, 'trust-bundle.pem');
    const trustBundlePem = fs.readFileSync(trustBundleFile, 'utf8');
    group.add('backend', lab.spawnIn('a', backendBin, ['-listen', `127.0.0.1:${APP_PORT}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const client = await issueSvid(cp, trustBundlePem, NS, 'client');
    // The static Envoy serves with an SVID of the same workload identity.
    const serverSvid = await issueSvid(cp, trustBundlePem, NS, 'web');
    const chainFile = path.join(tmp, 'web-chain.pem');
    const keyFile = path.join(tmp, 'web-key.pem');
    fs.writeFileSync(chainFile, serverSvid.certChainPem);
    fs.writeFileSync(keyFile, serverSvid.keyPem, { mode: 0o600 });
    const staticBootstrap = path.join(tmp, 'static-envoy.json');
    fs.writeFileSync(
      staticBootstrap,
      minimalServerBootstrap({ adminPort: 15100, certChainFile: chainFile, keyFile, trustBundleFile, listenIp: ip, listenPort: STATIC_PORT, appIp: '127.0.0.1', appPort: APP_PORT }),
    );

    const bootBinary = path.join(tmp, path.basename(binary));
    const envoyStarts: number[] = [];
    const envoyRss: number[] = [];
    const timelines: Record<string, number>[] = [];
    type Mem = NonNullable<ReturnType<typeof processMemoryMiB>>;
    type Variant = { name: string; nodeOptions: string | undefined; dropPageCache: boolean; starts: number[]; mem: Mem[] };
    const variants: Variant[] = [{ name: 'default', nodeOptions, dropPageCache: false, starts: [], mem: [] }];
    if (compareNodeOptions !== undefined) variants.push({ name: 'compare', nodeOptions: compareNodeOptions, dropPageCache: false, starts: [], mem: [] });
    // The binary's pages as after a reboot: its page cache dropped, so the agent's start reads them
    // from disk (see pageCacheNote below).
    const bootVariant: Variant | undefined = useBinary && !process.argv.includes('--no-page-cache-drop') ? { name: 'boot', nodeOptions, dropPageCache: true, starts: [], mem: [] } : undefined;
    if (bootVariant) variants.push(bootVariant);

    /** One cold start of the agent: fresh state (no SVID), a new bootstrap token. */
    const runAgentOnce = async (agentNodeOptions: string | undefined, tag: string, dropPageCache = false): Promise<{ startMs: number; mem: Mem | undefined; envoyRss: number | undefined; timeline: Record<string, number> }> => {
      const tokenFile = path.join(tmp, `token-${tag}`);
      fs.writeFileSync(tokenFile, createToken(dataDir, NS, 'web', ['--ttl', '10m']), { mode: 0o600 });
      const socketDir = path.join(socketRoot, tag);
      fs.mkdirSync(socketDir);
      const spec: AgentSpec = {
        name: `a${tag}`,
        controlPlane: `${theLab.hostIp}:${cp.grpcPort}`,
        rootCert: trustBundleFile,
        tokenFile,
        namespace: NS,
        serviceAccount: 'web',
        workloadName: 'web-1',
        workloadIp: ip,
        stateDir: path.join(tmp, `state-${tag}`),
        socketDir,
        adminPort: 15000,
        labels: { app: 'web' },
      };
      // ENVOY_PATH: the same Envoy binary as the static run, wherever the agent binary lives.
      // A copy of the binary, so the original keeps the page cache it was left with.
      if (dropPageCache && !fs.existsSync(bootBinary)) fs.copyFileSync(binary, bootBinary);
      if (dropPageCache) dropFilePageCache(bootBinary);
      const cmd = dropPageCache ? bootBinary : agentCommand.cmd;
      const env = { ...process.env, ...agentExtraEnv, ENVOY_PATH: envoy, ...(debugLog ? { SKIFF_LOG_LEVEL: 'debug' } : {}), ...(agentNodeOptions !== undefined ? { NODE_OPTIONS: agentNodeOptions } : {}) };
      const t1 = performance.now();
      const spawnedAt = Date.now();
      const a = theLab.spawnIn('a', cmd, [...agentCommand.pre, ...agentArgs(spec)], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const aProc = group.add(`agent-${tag}`, a);
      const startMs = (await firstSuccess(ip, PORT, client, trustBundlePem, a, 120_000, () => aProc.output())) - t1;
      await new Promise((res) => setTimeout(res, 3000)); // steady state: renewal scheduled, GC settled
      // `ip netns exec` execs the command, so the spawned pid is the agent (its child if not).
      const agentPid = [a.pid ?? 0, ...childPids(a.pid ?? 0)].find((pid) => /skiff|node/.test(readComm(pid))) ?? a.pid ?? 0;
      const mem = processMemoryMiB(agentPid);
      const envoyPid = childPids(agentPid).find((pid) => readComm(pid) === 'envoy');
      const eRss = envoyPid === undefined ? undefined : processRssMiB(envoyPid);
      if (holdFile !== undefined) await holdForInspection(holdFile, agentPid);
      const tl = timeline(aProc.output(), spawnedAt);
      await stop(a);
      return { startMs, mem, envoyRss: eRss, timeline: tl };
    };
    for (let r = 0; r < reps; r++) {
      // Envoy alone, static config.
      const t0 = performance.now();
      const e = theLab.spawnIn('a', envoy, ['-c', staticBootstrap, '--disable-hot-restart', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const eProc = group.add(`envoy-static-${r}`, e);
      envoyStarts.push((await firstSuccess(ip, STATIC_PORT, client, trustBundlePem, e, 30_000, () => eProc.output())) - t0);
      await stop(e);

      for (const variant of variants) {
        const m = await runAgentOnce(variant.nodeOptions, `${r}-${variant.name}`, variant.dropPageCache);
        variant.starts.push(m.startMs);
        if (m.mem) variant.mem.push(m.mem);
        if (m.envoyRss !== undefined) envoyRss.push(m.envoyRss);
        if (variant === variants[0]) timelines.push(m.timeline);
        process.stderr.write(`rep ${r + 1} ${variant.name}: envoy static start ${round(envoyStarts[r] ?? 0)} ms, agent cold start ${round(m.startMs)} ms, agent RSS ${m.mem?.rss} MiB (anon ${m.mem?.anon}), envoy RSS ${m.envoyRss} MiB\n`);
      }
    }
    const agentStarts = variants[0]?.starts ?? [];
    const agentRss = (variants[0]?.mem ?? []).map((m) => m.rss);
    const agentAnon = (variants[0]?.mem ?? []).map((m) => m.anon);
    const agentFile = (variants[0]?.mem ?? []).map((m) => m.file);
    const compared = variants.find((v) => v.name === 'compare');
    const coldStartMs = round(median(agentStarts));
    const envoyStaticStartMs = round(median(envoyStarts));
    const rss = round(median(agentRss), 1);
    const result = {
      benchmark: 'agent',
      date: new Date().toISOString(),
      machine,
      command: 'node --import tsx bench/agent/run.ts',
      agent: useBinary ? `single-file binary ${binary.startsWith(REPO) ? path.relative(REPO, binary) : binary} (built ${fs.statSync(binary).mtime.toISOString()})` : 'from source: node --import tsx src/cli/main.ts agent',
      envoy: execFileSync(envoy, ['--version'], { encoding: 'utf8' }).trim().split('\n').pop(),
      network: `network namespace on a Linux bridge, 198.18.${SUBNET}.0/24; control plane and client on the host side`,
      repetitions: reps,
      targets: { agentRssMiB: '< 60', coldStartMs: '< envoyStaticStartMs + 1000' },
      coldStartMs,
      envoyStaticStartMs,
      coldStartOverEnvoyMs: round(coldStartMs - envoyStaticStartMs),
      agentRssMiB: rss,
      agentRssBreakdownMiB: { anon: round(median(agentAnon), 1), file: round(median(agentFile), 1), note: 'anon: the agent\'s own memory (V8 heap, buffers); file: mapped files, mostly the Node.js executable, shared with other processes running it' },
      nodeOptions: nodeOptions ?? null,
      agentEnvironment: agentExtraEnv,
      ...(bootVariant && bootVariant.mem.length > 0
        ? {
            afterPageCacheDrop: {
              note: pageCacheNote,
              coldStartMs: round(median(bootVariant.starts)),
              agentRssMiB: round(median(bootVariant.mem.map((m) => m.rss)), 1),
              agentRssBreakdownMiB: { anon: round(median(bootVariant.mem.map((m) => m.anon)), 1), file: round(median(bootVariant.mem.map((m) => m.file)), 1) },
              runs: bootVariant.mem.map((m, i) => ({ coldStartMs: round(bootVariant.starts[i] ?? 0), agentRssMiB: m.rss, anon: m.anon, file: m.file })),
            },
          }
        : {}),
      ...(compared
        ? {
            withNodeOptions: {
              nodeOptions: compared.nodeOptions,
              coldStartMs: round(median(compared.starts)),
              agentRssMiB: round(median(compared.mem.map((m) => m.rss)), 1),
              agentRssBreakdownMiB: { anon: round(median(compared.mem.map((m) => m.anon)), 1), file: round(median(compared.mem.map((m) => m.file)), 1) },
            },
          }
        : {}),
      envoyRssMiB: round(median(envoyRss), 1),
      runs: agentStarts.map((ms, i) => ({ coldStartMs: round(ms), envoyStaticStartMs: round(envoyStarts[i] ?? 0), agentRssMiB: agentRss[i], envoyRssMiB: envoyRss[i] })),
      met: {
        rss: rss < 60,
        ...(bootVariant && bootVariant.mem.length > 0 ? { rssAfterPageCacheDrop: median(bootVariant.mem.map((m) => m.rss)) < 60 } : {}),
        coldStart: coldStartMs < envoyStaticStartMs + 1000,
      },
      firstRunTimeline: { note: 'ms after spawn at which the agent logged each message (first occurrence), first repetition', ...timelines[0] },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await group.stopAll();
    lab?.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(socketRoot, { recursive: true, force: true });
  }
}

/**
 * Why the JSON has `afterPageCacheDrop`: most of the agent's RSS is file-backed (the Node.js
 * executable's pages mapped from the page cache), and how many pages a fault maps depends on the
 * size of the page-cache folios holding the file. A binary just written in one go (the build's
 * output) sits in the page cache as large folios, up to 2 MiB, mapped whole on first touch; after
 * a reboot (the service's normal start) or any eviction the kernel reads the pages the agent
 * touches with readahead instead. The bench measures both: the first as the file was left, the
 * second on a copy of it whose page cache is dropped with POSIX_FADV_DONTNEED before each run (that
 * file only), so the original keeps its page cache.
 */
const pageCacheNote =
  'a copy of the same binary, its page cache dropped before each run (posix_fadvise DONTNEED on that file, as after a reboot): the executable is read from disk with readahead instead of mapped from the large folios a freshly written file has in the page cache';

/** Drops `file`'s clean pages from the page cache (`dd iflag=nocache count=0`: posix_fadvise DONTNEED). */
function dropFilePageCache(file: string): void {
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/**
 * The variables a systemd unit's `Environment=` lines set (double-quoted assignments or bare
 * words, several per line; later ones win), as systemd.exec(5) describes them.
 */
function unitEnvironment(unitFile: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(unitFile, 'utf8').split('\n')) {
    const m = /^Environment=(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const word of (m[1] ?? '').match(/"[^"]*"|\S+/g) ?? []) {
      const assignment = word.startsWith('"') ? word.slice(1, -1) : word;
      const eq = assignment.indexOf('=');
      if (eq > 0) env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return env;
}

/** The agent's JSON log lines (pino) as `message → ms after spawn`, first occurrence of each. */
function timeline(output: string, spawnedAt: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as { time?: number; msg?: string };
      if (typeof rec.time === 'number' && rec.msg && !(rec.msg in out)) out[rec.msg] = rec.time - spawnedAt;
    } catch {
      /* not a log record */
    }
  }
  return out;
}

/**
 * `--hold <file>`: after measuring, writes the agent's pid to `file` and waits until the file is
 * removed, so /proc/<pid>/smaps can be inspected in the measured state (a debugging aid; the
 * numbers are read before the hold).
 */
async function holdForInspection(file: string, pid: number): Promise<void> {
  fs.writeFileSync(file, `${pid}\n`);
  process.stderr.write(`agent pid ${pid} held; remove ${file} to continue\n`);
  while (fs.existsSync(file)) await new Promise((r) => setTimeout(r, 500));
}

function readComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

await main();
