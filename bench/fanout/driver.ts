/**
 * The fan-out benchmark driver (issue 9 §1): writes the generated mesh, starts the real control
 * plane (`skiff serve` from the compiled build in dist/, a separate process whose CPU and RSS are
 * read from /proc), connects N simulated proxies (bench/fanout/clients.ts, another process) over
 * mutual TLS, changes one service's endpoints and measures the time until every affected proxy
 * ACKed the new ClusterLoadAssignment, the control plane's CPU seconds and its RSS per connected
 * proxy; the same proxies are measured against the go-control-plane baseline (bench/baseline)
 * serving the very resources Skiff sends them, before and after the change.
 *
 * One run of (N, mode) has three kinds of pass, each against a fresh process:
 * - a recording pass (once; with `recordingDir`, once per scenario, mesh size and N, shared by
 *   both modes): Skiff with recording clients (they keep and dump what every proxy holds), the
 *   change made through the API, a dump before and after it: the baseline's snapshots. It is not
 *   measured, so that the measured clients do the same work on both sides.
 * - `repeat` measured Skiff passes and `repeat` measured baseline passes, interleaved (Skiff,
 *   baseline, baseline, Skiff, ...), with clients that only ACK. Skiff's change is a
 *   WorkloadEntry created with `PUT /v1/namespaces/ns-0/workloadentries/<name>` (admin token)
 *   that joins `svc-0`, which every proxy sees: its clock starts when the HTTP request is sent.
 *   The baseline's clock starts when it is told to publish the prepared snapshots. Skiff's pass
 *   then also measures the same kind of change made by rewriting `svc-0`'s file (secondary,
 *   `changeFromFileWrite`), and, on the first pass at the largest N, the burst and churn phases.
 * Each figure is the median over the passes; the passes are kept in `samples`.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority } from '../../src/ca/index.js';
import { controlPlaneSpiffeId } from '../../src/identity/spiffe.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ProcessGroup, type Proc } from '../../test/helpers/processes.js';
import type { ClientCommand, ClientEvent, ClientsConfig, ProxySpec } from './clients.js';
import { changeService, DEFAULT_SHAPE, serviceEdsName, serviceNamespace, sidecarServices, workloadInfo, writeMesh, type MeshShape } from './mesh.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root. */
export const REPO = path.resolve(HERE, '..', '..');
/** Where the baseline binary is built (git-ignored). */
export const BASELINE_BIN = path.join(REPO, 'bench', '.build', 'baseline');
/** The compiled CLI the benchmark runs (`npm run build`). */
export const SKIFF_MAIN = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
const TRUST_DOMAIN = 'cluster.local';
const CLK_TCK = 100;
/** The WorkloadEntry the API change creates: joins `svc-0` (label `app: svc-0`) at a new address. */
export const API_WORKLOAD = { name: 'bench-api-we', address: '10.250.0.1' } as const;

/** What each clock measures, for the report. */
export const CLOCKS = {
  skiffChange: 'Skiff `change`: from sending the HTTP PUT that creates a WorkloadEntry joining svc-0 (API validation, store commit, registry debounce and snapshot, push) to each proxy ACKing the new ClusterLoadAssignment of svc-0; one GET of that (then absent) resource before the proxies connect warms the HTTP client and the API',
  skiffChangeFromSnapshot: 'Skiff `changeFromSnapshot`: the same ACKs from the "registry snapshot published" log time of that change (push only)',
  skiffChangeFromFileWrite: "Skiff `changeFromFileWrite`: a second change, one WorkloadEntry of svc-0 moved by renaming a rewritten file into the file source's directory (the file source re-parses the changed file and re-checks the whole set, its debounce and the registry's, push), from the rename to each ACK",
  baselineChange: 'baseline `change`: from the `change` command (SetSnapshot of the prepared post-change snapshots, which are what Skiff served after the API change) to each ACK',
} as const;

/** One fan-out run's parameters. */
export interface FanoutOptions {
  proxies: number;
  mode: 'sotw' | 'delta';
  scenario: 'default' | 'sidecar';
  /** ServiceEntries in the generated mesh (10 WorkloadEntries each); default 1,000. */
  services?: number;
  /** Also run the go-control-plane baseline (default true). */
  baseline?: boolean;
  /** Run the burst and churn phases (default true; on the first Skiff pass only). */
  extras?: boolean;
  /** Measured passes per side, interleaved; figures are medians (default 1). */
  repeat?: number;
  /** Also measure the change made through the file source (`changeFromFileWrite`; default true). */
  fileChange?: boolean;
  /** Extra node flags for the control plane (e.g. `--cpu-prof`). */
  nodeOptions?: string;
  /**
   * A directory where the recording pass keeps its dumps (`<scenario>-<services>-<N>-initial.json`,
   * `-after.json`, `-info.json`) and where a later run of the same scenario, mesh size and N (the
   * other mode) finds and reuses them instead of recording again: Skiff sends the same resources
   * over SotW and delta. The caller creates it fresh for one benchmark run and removes it.
   * Without it, every run records (into its own temporary directory).
   */
  recordingDir?: string;
  /** Progress lines go here (stderr by default). */
  log?: (line: string) => void;
}

/** Latency distribution in ms. */
export interface Latency {
  p50: number;
  p99: number;
  max: number;
  /** Proxies that ACKed / proxies expected. */
  acked: number;
  expected: number;
}

/** What one server (Skiff or the baseline) measured in one pass, or the median over passes. */
export interface ServerResult {
  /** What the server holds in memory at `rssIdleMb` and what it adds per connected proxy. */
  holds: string;
  /** From the first connection to every proxy synced (CDS, EDS, LDS, RDS ACKed), seconds. */
  connectSeconds: number;
  connectCpuSeconds: number;
  /** RSS with everything it serves loaded, before any proxy connects, MB. */
  rssIdleMb: number;
  rssConnectedMb: number;
  /** (rssConnectedMb − rssIdleMb) / N. */
  rssPerProxyMb: number;
  /** Push-to-ACK of the change, primary clock (see `clocks` in the report). */
  change: Latency;
  /** Skiff only: the same ACKs from its "registry snapshot published" log time. */
  changeFromSnapshot?: Latency;
  /** From the start of `change`'s clock to the push (Skiff: API + store + registry debounce and snapshot), ms; 0 for the baseline. */
  changeToPushMs: number;
  /** Skiff only: from sending the API request to its response (validation and store commit), ms. */
  changeRequestMs?: number;
  /** Control plane CPU seconds from the start of `change`'s clock until every proxy ACKed. */
  changeCpuSeconds: number;
  /** First ACK of the changed ClusterLoadAssignment, ms after the start of `change`'s clock. */
  firstPushMs: number;
  /** Responses per proxy caused by the change (any type), mean. */
  responsesPerProxy: number;
  /** Skiff only: a change made through the file source (secondary), from the rename. */
  changeFromFileWrite?: Latency & { toPushMs: number; cpuSeconds: number };
  /** ADS streams the simulated proxies had to reopen (refused or failed streams, retried like Envoy). */
  reconnects: number;
}

/** One pass's result as `samples` lists it. */
export type PassResult = Omit<ServerResult, 'holds'>;

/** Skiff / baseline. */
export interface Ratios {
  /** Skiff's p99 from the API request over the baseline's p99 from its change command. */
  p99: number;
  p50: number;
  /** Skiff's p99 from "registry snapshot published" (the push) over the baseline's p99 (push-to-ACK on both sides). */
  p99FromSnapshot: number | null;
  rssPerProxy: number;
  changeCpu: number;
}

/** The recording pass behind the baseline's snapshots. */
export interface RecordingInfo {
  /** The mode the recording clients used (the dumps serve both modes). */
  mode: 'sotw' | 'delta';
  /** Whether this run reused the dumps of an earlier run (the other mode) instead of recording. */
  reused: boolean;
  /** Distinct resources in the dumps (before; before and after together). */
  resourcesBefore: number;
  resourcesAfter: number;
  /** Recording proxies that ACKed the API change (all of them, or the pass fails). */
  ackedChange: number;
  /** Time the recording pass took, s. */
  seconds: number;
}

/** One fan-out run's result (a member of bench/results/fanout.json). */
export interface FanoutResult {
  proxies: number;
  mode: 'sotw' | 'delta';
  scenario: 'default' | 'sidecar';
  /** ServiceEntries and WorkloadEntries of the generated mesh. */
  mesh: { serviceEntries: number; workloadEntries: number };
  clustersPerProxy: number;
  /** Measured passes per side; `skiff`, `baseline` and `ratios` are medians over them. */
  repeat: number;
  /** Pass order, e.g. `skiff,baseline,baseline,skiff`. */
  order: string;
  skiff: ServerResult;
  baseline?: ServerResult;
  /** Skiff / baseline, from the medians. */
  ratios?: Ratios;
  /** Every measured pass (index i: Skiff's and the baseline's i-th pass, and their ratios; `holds` is left out). */
  samples: { skiff: PassResult; baseline?: PassResult; ratios?: Ratios }[];
  /** The unmeasured recording pass that produced the baseline's snapshots. */
  recording?: RecordingInfo;
  burst?: { changes: number; spanMs: number; edsPushesPerProxy: { mean: number; max: number }; settledMs: number; cpuSeconds: number };
  churn?: { registrations: number; perSecond: number; seconds: number; lagMs: Latency; cpuSeconds: number; edsPushesPerProxy: number };
  errors: string[];
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** utime + stime of a process, seconds (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** VmRSS of a process, MB. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function latency(values: number[], expected: number): Latency {
  const s = [...values].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10) / 10;
  return { p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN), acked: s.length, expected };
}

/** The median of numbers (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : Math.round((((s[mid - 1] as number) + (s[mid] as number)) / 2) * 1000) / 1000;
}

/**
 * Field-wise median of results of the same shape: every number is the median of that number over
 * `xs` (other values are taken from the first); `acked` counts take the minimum instead (a pass in
 * which a proxy missed the change must show). Throws for an empty list.
 */
export function medianOf<T>(xs: readonly T[]): T {
  if (xs.length === 0) throw new Error('medianOf: no samples');
  const walk = (vals: unknown[], key: string): unknown => {
    const first = vals[0];
    if (typeof first === 'number') {
      const nums = vals.filter((v): v is number => typeof v === 'number');
      return key === 'acked' ? Math.min(...nums) : median(nums);
    }
    if (first && typeof first === 'object' && !Array.isArray(first)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(first)) out[k] = walk(vals.map((v) => (v as Record<string, unknown> | undefined)?.[k]), k);
      return out;
    }
    return first;
  };
  return walk([...xs], '') as T;
}

/** Skiff / baseline for one pair of results. */
export function ratiosOf(skiff: PassResult, baseline: PassResult): Ratios {
  const r = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
  return {
    p99: r(skiff.change.p99, baseline.change.p99),
    p50: r(skiff.change.p50, baseline.change.p50),
    p99FromSnapshot: skiff.changeFromSnapshot ? r(skiff.changeFromSnapshot.p99, baseline.change.p99) : null,
    rssPerProxy: r(skiff.rssPerProxyMb, baseline.rssPerProxyMb),
    changeCpu: r(skiff.changeCpuSeconds, Math.max(0.01, baseline.changeCpuSeconds)),
  };
}

/**
 * The time (ms since epoch) of the first "registry snapshot published" log line at or after `t0`
 * in the control plane's output (pino's `time`; the registry logs it before calling its
 * subscribers, i.e. when the push starts). `t0` when there is none.
 */
export function publishedAfter(output: string, t0: number): number {
  const re = /"time":(\d+)[^\n]*"msg":"registry snapshot published"/g;
  for (const m of output.matchAll(re)) {
    const t = Number(m[1]);
    if (t >= Math.floor(t0)) return t;
  }
  return t0;
}

/** Builds the Go baseline into bench/.build (module download from the Go proxy on a clean clone). */
export function buildBaseline(): void {
  // Build output goes to stderr: stdout carries the benchmark's one JSON object.
  const r = spawnSync('go', ['build', '-o', BASELINE_BIN, '.'], { cwd: path.join(REPO, 'bench', 'baseline'), stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`go build of bench/baseline failed (status ${r.status})`);
}

/** Newest modification time (ms) of the files under `dir` that `keep` accepts; 0 for none. */
function newestMtime(dir: string, keep: (file: string) => boolean): number {
  let newest = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (keep(file)) newest = Math.max(newest, fs.statSync(file).mtimeMs);
  }
  return newest;
}

/**
 * Makes sure dist/ holds a build of the current sources: runs `npm run build` when
 * dist/src/cli/main.js is missing or a source file (src/, not tests) is newer than every file in
 * dist/src. Returns what it did. Throws when the build produced no CLI. A type error elsewhere in
 * the tree (tsc's exit status) is reported in the returned note, not fatal: tsc still emits.
 */
export function ensureBuild(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): { built: boolean; note?: string } {
  const isSource = (f: string): boolean => (f.endsWith('.ts') && !f.endsWith('.test.ts')) || f.endsWith('.proto');
  const srcNewest = newestMtime(path.join(REPO, 'src'), isSource);
  const distNewest = newestMtime(path.join(REPO, 'dist', 'src'), (f) => f.endsWith('.js') || f.endsWith('.proto'));
  if (fs.existsSync(SKIFF_MAIN) && distNewest >= srcNewest) return { built: false };
  log('[fanout] building dist/ (npm run build): it is older than src/ or missing');
  const r = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 2, 2] });
  let note: string | undefined;
  if (r.status !== 0) {
    // tsc emits despite type errors; the asset copy after it did not run, so run it here.
    spawnSync(process.execPath, [path.join(REPO, 'scripts', 'copy-assets.mjs')], { cwd: REPO, stdio: ['ignore', 2, 2] });
    note = `npm run build exited ${r.status}; the emitted dist/ was used`;
    log(`[fanout] ${note}`);
  }
  if (!fs.existsSync(SKIFF_MAIN)) throw new Error(`the build did not produce ${SKIFF_MAIN}`);
  return { built: true, ...(note !== undefined ? { note } : {}) };
}

/** A started `skiff serve` (compiled build) and where to reach it. */
interface SkiffProc {
  proc: Proc;
  pid: number;
  grpcPort: number;
  monitoringPort: number;
  apiPort: number;
  /** The admin token the first start wrote to `<dataDir>/admin-token`. */
  adminToken: string;
}

/**
 * Runs `node dist/src/cli/main.js serve` on 127.0.0.1 with ephemeral ports and waits for its
 * "control plane listening" line and its first registry snapshot (the mesh loaded).
 */
async function startSkiff(group: ProcessGroup, opts: { configDir: string; dataDir: string; nodeOptions?: string }): Promise<SkiffProc> {
  const args = [SKIFF_MAIN, 'serve', '--config-dir', opts.configDir, '--data-dir', opts.dataDir, '--listen-address', '127.0.0.1', '--grpc-port', '0', '--monitoring-port', '0', '--api-port', '0', '--ip', '127.0.0.1'];
  const env = { ...process.env, ...(opts.nodeOptions ? { NODE_OPTIONS: opts.nodeOptions } : {}) };
  const child = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = group.add('control-plane', child);
  const m = await proc.waitFor(/"grpcPort":(\d+),"monitoringPort":(\d+),"apiPort":(\d+)/, 120_000);
  await proc.waitFor(/"msg":"registry snapshot published"/, 120_000);
  const adminToken = fs.readFileSync(path.join(opts.dataDir, 'admin-token'), 'utf8').trim();
  return { proc, pid: child.pid as number, grpcPort: Number(m[1]), monitoringPort: Number(m[2]), apiPort: Number(m[3]), adminToken };
}

/**
 * The API change: `PUT /v1/namespaces/<ns of svc-0>/workloadentries/bench-api-we` creating a
 * WorkloadEntry with `app: svc-0` (the label svc-0's ServiceEntry selects) at a new address, so
 * svc-0's ClusterLoadAssignment gains an endpoint. The API's resources and the file source's
 * coexist: a different source and a name no file uses. Resolves when the API answered 201.
 */
async function apiAddWorkload(skiff: SkiffProc, shape: MeshShape): Promise<void> {
  const ns = serviceNamespace(shape, 0);
  const body = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: API_WORKLOAD.name, namespace: ns },
    spec: { address: API_WORKLOAD.address, ports: { http: 9080 }, serviceAccount: 'bench', labels: { app: 'svc-0' } },
  };
  const res = await fetch(`http://127.0.0.1:${skiff.apiPort}/v1/namespaces/${ns}/workloadentries/${API_WORKLOAD.name}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${skiff.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`PUT WorkloadEntry ${ns}/${API_WORKLOAD.name}: HTTP ${res.status}: ${(await res.text()).slice(0, 500)}`);
}
/**
 * One GET of the resource the API change will create (404 then), before anything is measured: the
 * driver's first `fetch` in a process sets up its HTTP client (about 40 ms, the client's cost, not
 * the control plane's; the baseline's change is an IPC message on an open channel), and the
 * control plane's API answers its first request after start-up (routing, authentication).
 * Nothing changes on the control plane.
 */
async function apiWarmUp(skiff: SkiffProc, shape: MeshShape): Promise<void> {
  const ns = serviceNamespace(shape, 0);
  const res = await fetch(`http://127.0.0.1:${skiff.apiPort}/v1/namespaces/${ns}/workloadentries/${API_WORKLOAD.name}`, { headers: { authorization: `Bearer ${skiff.adminToken}` } });
  await res.arrayBuffer();
  if (res.status !== 404) throw new Error(`warm-up GET WorkloadEntry ${ns}/${API_WORKLOAD.name}: HTTP ${res.status}, expected 404 (it must not exist yet)`);
}

/** The clients process with a small request/response helper over IPC. */
class Clients {
  private readonly listeners = new Set<(e: ClientEvent) => void>();
  readonly child: ChildProcess;
  synced = 0;

  constructor(configFile: string) {
    this.child = fork(path.join(HERE, 'clients.ts'), [configFile], { execArgv: ['--import', 'tsx', '--max-old-space-size=4096'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (raw) => {
      const e = raw as ClientEvent;
      if (e.ev === 'synced') this.synced = e.count;
      for (const l of this.listeners) l(e);
    });
  }

  send(cmd: ClientCommand): void {
    this.child.send(cmd);
  }

  next<E extends ClientEvent['ev']>(ev: E, timeoutMs = 60_000): Promise<Extract<ClientEvent, { ev: E }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(l);
        reject(new Error(`clients: no ${ev} within ${timeoutMs} ms`));
      }, timeoutMs);
      const l = (e: ClientEvent): void => {
        if (e.ev !== ev) return;
        clearTimeout(timer);
        this.listeners.delete(l);
        resolve(e as Extract<ClientEvent, { ev: E }>);
      };
      this.listeners.add(l);
    });
  }

  async report(): Promise<Extract<ClientEvent, { ev: 'report' }>> {
    const p = this.next('report');
    this.send({ cmd: 'report' });
    return p;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.send({ cmd: 'close' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/** Waits until `clients.synced` reaches `n` (or fails after `timeoutMs`). */
async function waitSynced(clients: Clients, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (clients.synced < n) {
    if (Date.now() > deadline) throw new Error(`only ${clients.synced}/${n} proxies synced within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Polls the clients until `done(report)` or `timeoutMs`; returns the last report. */
async function pollUntil(clients: Clients, done: (r: Extract<ClientEvent, { ev: 'report' }>) => boolean, timeoutMs: number, intervalMs = 100): Promise<Extract<ClientEvent, { ev: 'report' }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await clients.report();
    if (done(r) || Date.now() > deadline) return r;
    await sleep(intervalMs);
  }
}

/** Waits until no response arrived for `quietMs` (and at least `minMs` passed since `t0`). */
async function waitQuiet(clients: Clients, t0: number, quietMs: number, minMs: number, timeoutMs: number): Promise<Extract<ClientEvent, { ev: 'report' }>> {
  return pollUntil(
    clients,
    (r) => {
      const last = Math.max(t0, ...r.proxies.map((p) => p.lastAt ?? 0));
      return now() - t0 > minMs && now() - last > quietMs;
    },
    timeoutMs,
    200,
  );
}

/** What `/debug/syncz` says, reduced to what {@link waitCaughtUp} needs. */
type SynczProbe = () => Promise<{ registryVersion: number; synced: boolean }>;

/** `/debug/syncz` of a control plane on 127.0.0.1. */
function synczProbe(monitoringPort: number): SynczProbe {
  return async () => {
    const res = await fetch(`http://127.0.0.1:${monitoringPort}/debug/syncz`);
    const body = (await res.json()) as { registryVersion: number; synced: boolean };
    return { registryVersion: body.registryVersion, synced: body.synced };
  };
}

/**
 * Waits until the control plane has caught up with file writes made up to `lastWrite`: a
 * "config loaded" log line after `lastWrite` (the file source reloads once more when a change
 * came in during a load), then `/debug/syncz` reporting every proxy synced to the current registry
 * version with that version unchanged for 3 s (syncz is answered by the same event loop as the
 * pushes, so it cannot answer in the middle of one), then 1.5 s without responses at the proxies.
 */
async function waitCaughtUp(clients: Clients, output: () => string, syncz: SynczProbe, lastWrite: number, timeoutMs: number): Promise<Extract<ClientEvent, { ev: 'report' }>> {
  const deadline = Date.now() + timeoutMs;
  const re = /"time":(\d+)[^\n]*"msg":"config loaded"/g;
  let stableSince = 0;
  let version = -1;
  while (Date.now() < deadline) {
    let lastLoad = 0;
    for (const m of output().matchAll(re)) lastLoad = Math.max(lastLoad, Number(m[1]));
    if (lastLoad > lastWrite) {
      const s = await syncz().catch(() => undefined);
      if (s && s.synced && s.registryVersion === version) {
        if (now() - stableSince > 3000) break;
      } else {
        version = s?.registryVersion ?? -1;
        stableSince = now();
      }
    }
    await sleep(500);
  }
  return waitQuiet(clients, now(), 1500, 0, Math.max(1000, deadline - Date.now()));
}

/** Proxy specs: every `stride`-th WorkloadEntry (spread over services and namespaces). */
function proxySpecs(shape: MeshShape, n: number): ProxySpec[] {
  const total = shape.services * shape.workloadsPerService;
  const stride = Math.max(5, Math.floor(total / n));
  if (n * stride > total) throw new Error(`at most ${Math.floor(total / 5)} proxies for this mesh`);
  const out: ProxySpec[] = [];
  for (let p = 0; p < n; p++) {
    const i = p * stride;
    const w = workloadInfo(shape, i);
    out.push({
      nodeId: `sidecar~${w.address}~${w.name}.${w.namespace}~${w.namespace}.svc.cluster.local`,
      metadata: { NAMESPACE: w.namespace, SERVICE_ACCOUNT: 'bench', WORKLOAD_NAME: w.name, LABELS: { app: `svc-${w.service}` } },
      cert: w.namespace,
    });
  }
  return out;
}

/** Everything the passes of one (N, mode) run share. */
interface RunContext {
  opts: FanoutOptions;
  shape: MeshShape;
  n: number;
  log: (line: string) => void;
  tmp: string;
  group: ProcessGroup;
  ca: CertificateAuthority;
  watchName: string;
  /** A clients config file (recording or not). */
  clientsConfig: (record: boolean) => string;
  /** A fresh mesh directory and a fresh data dir holding only the CA (no store, no API objects). */
  fresh: (tag: string) => { meshDir: string; dataDir: string };
}

/** Connects the clients, waits until every proxy synced and things settled; reads RSS. */
async function connectClients(clients: Clients, pid: number, port: number, n: number, log: (l: string) => void): Promise<{ connectSeconds: number; connectCpuSeconds: number; rssConnected: number }> {
  const cpu0 = cpuSeconds(pid);
  const c0 = now();
  clients.send({ cmd: 'connect', port, concurrency: 10 });
  await waitSynced(clients, n, 300_000);
  const connectSeconds = (now() - c0) / 1000;
  const connectCpuSeconds = cpuSeconds(pid) - cpu0;
  log(`[fanout]   ${n} proxies synced in ${connectSeconds.toFixed(1)} s (server CPU ${connectCpuSeconds.toFixed(1)} s)`);
  // Let connection setup garbage be collected before reading RSS.
  await waitQuiet(clients, now(), 1000, 1000, 30_000);
  await sleep(2000);
  return { connectSeconds, connectCpuSeconds, rssConnected: rssMb(pid) };
}

/** One change's push-to-ACK measurement. */
interface ChangeMeasurement {
  /** From the start of the clock (the change made). */
  fromStart: Latency;
  /** From the push (`pushTime`). */
  fromPush: Latency;
  toPushMs: number;
  /** How long making the change took (an API request: until its response), ms. */
  requestMs: number;
  cpuSeconds: number;
  firstPushMs: number;
  responsesPerProxy: number;
  reconnects: number;
  errors: string[];
}

/**
 * Starts the clock, makes the change (awaited: an API request resolves with its response) and
 * waits until every proxy ACKed a ClusterLoadAssignment named `watchName`, then until quiet.
 */
async function measureChange(clients: Clients, pid: number, n: number, watchName: string, change: () => Promise<void> | void, pushTime: (t0: number) => number, log: (l: string) => void): Promise<ChangeMeasurement> {
  clients.send({ cmd: 'mark', t0: 0, name: watchName });
  await sleep(200);
  const cpuBefore = cpuSeconds(pid);
  const t0 = now();
  await change();
  const requestMs = now() - t0;
  const rep = await pollUntil(clients, (r) => r.proxies.every((p) => p.ackedAt !== undefined), 120_000);
  const cpuAfter = cpuSeconds(pid);
  const ackTimes = rep.proxies.filter((p) => p.ackedAt !== undefined).map((p) => p.ackedAt as number);
  const tPush = pushTime(t0);
  const settled = await waitQuiet(clients, t0, 1000, 1500, 30_000);
  if (settled.lastErrors.length > 0) log(`[fanout]   ${settled.reconnects} streams reopened; last errors: ${settled.lastErrors.join(' | ')}`);
  return {
    fromStart: latency(ackTimes.map((t) => t - t0), n),
    fromPush: latency(ackTimes.map((t) => t - tPush), n),
    toPushMs: Math.round(tPush - t0),
    requestMs: round(requestMs, 1),
    cpuSeconds: round(cpuAfter - cpuBefore, 2),
    firstPushMs: round(Math.min(...settled.proxies.map((p) => p.ackedAt ?? Infinity)) - t0, 1),
    responsesPerProxy: round(settled.proxies.reduce((s, p) => s + p.pushes, 0) / n, 2),
    reconnects: settled.reconnects,
    errors: rep.errors,
  };
}

/**
 * The recording pass (not measured): Skiff with recording clients; dumps what every proxy holds
 * before and after the API change. These dumps are the baseline's snapshots.
 */
async function recordingPass(ctx: RunContext): Promise<{ initial: string; after: string; info: RecordingInfo }> {
  const { n, log, shape } = ctx;
  const dir = ctx.opts.recordingDir ?? ctx.tmp;
  const stem = path.join(dir, `${shape.scenario}-${shape.services}-${n}`);
  const initial = `${stem}-initial.json`;
  const after = `${stem}-after.json`;
  const infoFile = `${stem}-info.json`;
  if (ctx.opts.recordingDir !== undefined && fs.existsSync(infoFile) && fs.existsSync(initial) && fs.existsSync(after)) {
    const info = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as RecordingInfo;
    log(`[fanout] ${ctx.opts.mode} N=${n} ${shape.scenario}: reusing the ${info.mode} recording pass's snapshots for the baseline`);
    return { initial, after, info: { ...info, reused: true } };
  }
  fs.mkdirSync(dir, { recursive: true });
  const t0 = now();
  const dirs = ctx.fresh('record');
  log(`[fanout] ${ctx.opts.mode} N=${n} ${shape.scenario}: recording pass (Skiff, recording clients, not measured)`);
  const skiff = await startSkiff(ctx.group, { configDir: dirs.meshDir, dataDir: dirs.dataDir });
  const clients = new Clients(ctx.clientsConfig(true));
  try {
    clients.send({ cmd: 'connect', port: skiff.grpcPort, concurrency: 10 });
    await waitSynced(clients, n, 300_000);
    await waitQuiet(clients, now(), 1000, 1000, 30_000);
    const d1 = clients.next('dumped', 120_000);
    clients.send({ cmd: 'dump', file: initial });
    const before = await d1;
    const m = await measureChange(clients, skiff.pid, n, ctx.watchName, () => apiAddWorkload(skiff, shape), (t) => t, log);
    const d2 = clients.next('dumped', 120_000);
    clients.send({ cmd: 'dump', file: after });
    const afterDump = await d2;
    if (m.fromStart.acked < n) throw new Error(`recording pass: only ${m.fromStart.acked}/${n} proxies got the API change; control plane output:\n${skiff.proc.output().slice(-3000)}`);
    const info: RecordingInfo = { mode: ctx.opts.mode, reused: false, resourcesBefore: before.resources, resourcesAfter: afterDump.resources, ackedChange: m.fromStart.acked, seconds: round((now() - t0) / 1000, 1) };
    // Written last: its presence says the dumps are complete.
    fs.writeFileSync(infoFile, JSON.stringify(info));
    return { initial, after, info };
  } finally {
    await clients.close();
    await ctx.group.stopAll();
  }
}

/** A measured Skiff pass: connect, the API change, the file change, then burst and churn if asked. */
async function skiffPass(ctx: RunContext, pass: number, extras: boolean): Promise<{ result: ServerResult; errors: string[]; burst?: FanoutResult['burst']; churn?: FanoutResult['churn'] }> {
  const { n, log, shape } = ctx;
  const dirs = ctx.fresh(`skiff-${pass}`);
  log(`[fanout] ${ctx.opts.mode} N=${n} ${shape.scenario}: skiff serve (dist/), pass ${pass + 1}`);
  const skiff = await startSkiff(ctx.group, { configDir: dirs.meshDir, dataDir: dirs.dataDir, ...(ctx.opts.nodeOptions ? { nodeOptions: ctx.opts.nodeOptions } : {}) });
  const output = (): string => skiff.proc.output();
  const clients = new Clients(ctx.clientsConfig(false));
  try {
    await sleep(1500);
    const idle = rssMb(skiff.pid);
    await apiWarmUp(skiff, shape);
    const c = await connectClients(clients, skiff.pid, skiff.grpcPort, n, log);
    const api = await measureChange(clients, skiff.pid, n, ctx.watchName, () => apiAddWorkload(skiff, shape), (t0) => publishedAfter(output(), t0), log);
    log(`[fanout]   API change: p50 ${api.fromStart.p50} ms, p99 ${api.fromStart.p99} ms, max ${api.fromStart.max} ms (${api.fromStart.acked}/${n}); from the snapshot p99 ${api.fromPush.p99} ms; CPU ${api.cpuSeconds} s`);
    if (api.fromStart.acked < n) log(`[fanout]   not every proxy got the change; control plane output:\n${output().slice(-4000)}`);
    const file = ctx.opts.fileChange === false ? undefined : await measureChange(clients, skiff.pid, n, ctx.watchName, () => changeService(dirs.meshDir, shape, 0, 1), (t0) => publishedAfter(output(), t0), log);
    if (file) log(`[fanout]   file change: p99 ${file.fromStart.p99} ms from the rename (${file.fromStart.acked}/${n}), push after ${file.toPushMs} ms`);
    const result: ServerResult = {
      holds: `idle: the parsed mesh (${shape.services} ServiceEntries, ${shape.services * shape.workloadsPerService} WorkloadEntries from files), its registry snapshot, CA, store and API; per connected proxy: its TLS connection and ADS stream state, its IR and the Envoy resources generated for it (outbound resources shared between proxies that see the same content)`,
      connectSeconds: round(c.connectSeconds, 2),
      connectCpuSeconds: round(c.connectCpuSeconds, 2),
      rssIdleMb: round(idle, 1),
      rssConnectedMb: round(c.rssConnected, 1),
      rssPerProxyMb: round((c.rssConnected - idle) / n, 3),
      change: api.fromStart,
      changeFromSnapshot: api.fromPush,
      changeToPushMs: api.toPushMs,
      changeRequestMs: api.requestMs,
      changeCpuSeconds: api.cpuSeconds,
      firstPushMs: api.firstPushMs,
      responsesPerProxy: api.responsesPerProxy,
      ...(file ? { changeFromFileWrite: { ...file.fromStart, toPushMs: file.toPushMs, cpuSeconds: file.cpuSeconds } } : {}),
      reconnects: (file ?? api).reconnects,
    };
    let burst: FanoutResult['burst'];
    let churn: FanoutResult['churn'];
    if (extras) {
      const syncz = synczProbe(skiff.monitoringPort);
      burst = await runBurst({ clients, pid: skiff.pid, shape, meshDir: dirs.meshDir, log, output, syncz });
      churn = await runChurn({ clients, pid: skiff.pid, shape, meshDir: dirs.meshDir, log, n, output, syncz });
    }
    return { result, errors: [...api.errors, ...(file?.errors ?? [])], ...(burst ? { burst } : {}), ...(churn ? { churn } : {}) };
  } finally {
    await clients.close();
    await ctx.group.stopAll();
  }
}

/** A measured baseline pass: serves the recorded snapshots, publishes the post-change ones on `change`. */
async function baselinePass(ctx: RunContext, pass: number, dumps: { initial: string; after: string }, tls: { cert: string; key: string; ca: string }): Promise<{ result: ServerResult; errors: string[] }> {
  const { n, log, shape } = ctx;
  log(`[fanout] ${ctx.opts.mode} N=${n} ${shape.scenario}: go-control-plane baseline, pass ${pass + 1}`);
  const child = spawn(BASELINE_BIN, ['-listen', '127.0.0.1:0', '-cert', tls.cert, '-key', tls.key, '-ca', tls.ca, '-initial', dumps.initial, '-after', dumps.after], { stdio: ['pipe', 'pipe', 'pipe'] });
  const proc = ctx.group.add('baseline', child);
  const clients = new Clients(ctx.clientsConfig(false));
  try {
    // LISTENING comes after both dumps are loaded and the initial snapshots are set.
    const m = await proc.waitFor(/LISTENING (\d+)/, 120_000);
    const pid = child.pid as number;
    await sleep(1500);
    const idle = rssMb(pid);
    const c = await connectClients(clients, pid, Number(m[1]), n, log);
    const ch = await measureChange(clients, pid, n, ctx.watchName, () => void child.stdin?.write('change\n'), (t0) => t0, log);
    log(`[fanout]   change: p50 ${ch.fromStart.p50} ms, p99 ${ch.fromStart.p99} ms, max ${ch.fromStart.max} ms (${ch.fromStart.acked}/${n}), CPU ${ch.cpuSeconds} s`);
    child.stdin?.write('quit\n');
    return {
      result: {
        holds: `idle: every node's snapshot before and after the change (${n} nodes × 2 snapshot sets; each distinct resource decoded once and shared), already set in the cache; per connected proxy: its TLS connection and ADS stream state and the cache's watches`,
        connectSeconds: round(c.connectSeconds, 2),
        connectCpuSeconds: round(c.connectCpuSeconds, 2),
        rssIdleMb: round(idle, 1),
        rssConnectedMb: round(c.rssConnected, 1),
        rssPerProxyMb: round((c.rssConnected - idle) / n, 3),
        change: ch.fromStart,
        changeToPushMs: 0,
        changeCpuSeconds: ch.cpuSeconds,
        firstPushMs: ch.firstPushMs,
        responsesPerProxy: ch.responsesPerProxy,
        reconnects: ch.reconnects,
      },
      errors: ch.errors.map((e) => `baseline: ${e}`),
    };
  } finally {
    await clients.close();
    await ctx.group.stopAll();
  }
}

/**
 * Runs one (N, mode) fan-out measurement: the recording pass (when the baseline runs), then
 * `repeat` Skiff and `repeat` baseline passes interleaved (Skiff, baseline, baseline, Skiff, ...).
 * Needs dist/ (see {@link ensureBuild}; built here only when missing).
 */
export async function runFanout(opts: FanoutOptions): Promise<FanoutResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const repeat = opts.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`repeat: ${repeat} is not a whole number of at least 1`);
  if (!fs.existsSync(SKIFF_MAIN)) ensureBuild(log);
  const withBaseline = opts.baseline !== false;
  if (withBaseline && !fs.existsSync(BASELINE_BIN)) buildBaseline();
  const shape: MeshShape = { ...DEFAULT_SHAPE, scenario: opts.scenario, services: opts.services ?? DEFAULT_SHAPE.services };
  const n = opts.proxies;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-fanout-'));
  const group = new ProcessGroup();
  const errors: string[] = [];
  try {
    const pristine = path.join(tmp, 'data-pristine');
    fs.mkdirSync(pristine, { mode: 0o700 });
    // The data dir's CA: every control plane of this run loads the same one; client SVIDs and the
    // baseline's serving certificate are minted from it.
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: pristine, trustDomain: TRUST_DOMAIN, logger: silentLogger() });
    const certs: ClientsConfig['certs'] = {};
    for (let k = 0; k < shape.namespaces; k++) {
      const c = await ca.issueServingCert({ spiffeId: `spiffe://${TRUST_DOMAIN}/ns/ns-${k}/sa/bench`, ttlSeconds: 24 * 3600 });
      certs[`ns-${k}`] = { certChainPem: c.certChainPem, keyPem: c.keyPem };
    }
    const specs = proxySpecs(shape, n);
    let freshCount = 0;
    const ctx: RunContext = {
      opts,
      shape,
      n,
      log,
      tmp,
      group,
      ca,
      // Every proxy sees svc-0 in both scenarios.
      watchName: serviceEdsName(shape, 0),
      clientsConfig: (record) => {
        const file = path.join(tmp, `clients-${record ? 'rec' : 'plain'}.json`);
        const cfg: ClientsConfig = { mode: opts.mode, record, trustBundlePem: ca.trustBundlePem(), certs, proxies: specs };
        fs.writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
        return file;
      },
      fresh: (tag) => {
        const dir = path.join(tmp, `${tag}-${freshCount++}`);
        const meshDir = path.join(dir, 'mesh');
        const dataDir = path.join(dir, 'data');
        writeMesh(meshDir, shape);
        fs.cpSync(pristine, dataDir, { recursive: true });
        fs.chmodSync(dataDir, 0o700);
        return { meshDir, dataDir };
      },
    };
    const clustersPerProxy = shape.scenario === 'default' ? shape.services : sidecarServices(shape, 0).length;

    let recording: Awaited<ReturnType<typeof recordingPass>> | undefined;
    let tls: { cert: string; key: string; ca: string } | undefined;
    if (withBaseline) {
      recording = await recordingPass(ctx);
      const serving = await ca.issueServingCert({ spiffeId: controlPlaneSpiffeId(TRUST_DOMAIN), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ttlSeconds: 24 * 3600 });
      tls = { cert: path.join(tmp, 'baseline-cert.pem'), key: path.join(tmp, 'baseline-key.pem'), ca: path.join(tmp, 'baseline-ca.pem') };
      fs.writeFileSync(tls.cert, serving.certChainPem);
      fs.writeFileSync(tls.key, serving.keyPem, { mode: 0o600 });
      fs.writeFileSync(tls.ca, ca.trustBundlePem());
    }

    const skiffSamples: ServerResult[] = [];
    const baseSamples: ServerResult[] = [];
    const order: string[] = [];
    let burst: FanoutResult['burst'];
    let churn: FanoutResult['churn'];
    for (let i = 0; i < repeat; i++) {
      // ABBA order: neither side always runs first (machine drift, page cache, thermal state).
      const sides = i % 2 === 0 ? (['skiff', 'baseline'] as const) : (['baseline', 'skiff'] as const);
      for (const side of sides) {
        if (side === 'baseline') {
          if (!recording || !tls) continue;
          const b = await baselinePass(ctx, i, recording, tls);
          baseSamples.push(b.result);
          errors.push(...b.errors);
        } else {
          const s = await skiffPass(ctx, i, opts.extras !== false && i === 0);
          skiffSamples.push(s.result);
          errors.push(...s.errors);
          burst ??= s.burst;
          churn ??= s.churn;
        }
        order.push(side);
      }
    }

    const skiff = medianOf(skiffSamples);
    const result: FanoutResult = {
      proxies: n,
      mode: opts.mode,
      scenario: opts.scenario,
      mesh: { serviceEntries: shape.services, workloadEntries: shape.services * shape.workloadsPerService },
      clustersPerProxy,
      repeat,
      order: order.join(','),
      skiff,
      samples: skiffSamples.map((s, i) => {
        const b = baseSamples[i];
        const { holds: _s, ...skiffPass } = s;
        if (!b) return { skiff: skiffPass };
        const { holds: _b, ...basePass } = b;
        return { skiff: skiffPass, baseline: basePass, ratios: ratiosOf(s, b) };
      }),
      errors,
    };
    if (baseSamples.length > 0) {
      result.baseline = medianOf(baseSamples);
      result.ratios = ratiosOf(skiff, result.baseline);
    }
    if (recording) result.recording = recording.info;
    if (burst) result.burst = burst;
    if (churn) result.churn = churn;
    return result;
  } finally {
    await group.stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** 100 changes (100 different services) within 1 s: EDS pushes per proxy. */
async function runBurst(a: { clients: Clients; pid: number; shape: MeshShape; meshDir: string; log: (l: string) => void; output: () => string; syncz: SynczProbe }): Promise<NonNullable<FanoutResult['burst']>> {
  const { clients, pid, shape, meshDir } = a;
  const changes = 100;
  const last = changes - 1;
  clients.send({ cmd: 'mark', t0: 0, name: serviceEdsName(shape, 0) });
  await sleep(200);
  const cpu0 = cpuSeconds(pid);
  const t0 = now();
  for (let k = 0; k < changes; k++) {
    // Service k's endpoints move (generation 2); svc-0 last so that every proxy sees the end.
    changeService(meshDir, shape, last - k, 2);
    const due = t0 + ((k + 1) * 1000) / changes;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
  }
  const spanMs = now() - t0;
  const r = await waitCaughtUp(clients, a.output, a.syncz, t0 + spanMs, 120_000);
  const cpuSeconds1 = cpuSeconds(pid) - cpu0;
  const pushes = r.proxies.map((p) => p.edsPushes);
  const settledMs = Math.max(...r.proxies.map((p) => p.lastAt ?? t0)) - t0;
  const res = {
    changes,
    spanMs: Math.round(spanMs),
    edsPushesPerProxy: { mean: Math.round((pushes.reduce((s, x) => s + x, 0) / pushes.length) * 100) / 100, max: Math.max(...pushes) },
    settledMs: Math.round(settledMs),
    cpuSeconds: Math.round(cpuSeconds1 * 100) / 100,
  };
  a.log(`[fanout]   burst: ${res.edsPushesPerProxy.mean} EDS pushes per proxy (max ${res.edsPushesPerProxy.max}), settled after ${res.settledMs} ms`);
  return res;
}

/**
 * Churn: new WorkloadEntries are registered at `perSecond` for `seconds` (each a new file with one
 * WorkloadEntry joining service svc-0, which every proxy sees: file changes, not the API), while
 * the proxies stay connected. Measures the lag from the last registration until each proxy's last
 * push (after which nothing arrived for 1.5 s), the CPU spent and the EDS pushes per proxy.
 */
async function runChurn(a: { clients: Clients; pid: number; shape: MeshShape; meshDir: string; log: (l: string) => void; n: number; output: () => string; syncz: SynczProbe }): Promise<NonNullable<FanoutResult['churn']>> {
  const { clients, pid, shape, meshDir } = a;
  const perSecond = 20;
  const seconds = 5;
  const total = perSecond * seconds;
  await waitQuiet(clients, now(), 1000, 0, 30_000);
  clients.send({ cmd: 'mark', t0: 0, name: '' });
  await sleep(200);
  const cpu0 = cpuSeconds(pid);
  const t0 = now();
  let lastAt = t0;
  for (let k = 0; k < total; k++) {
    const i = 20_000 + k;
    const yaml = [
      'apiVersion: networking.istio.io/v1',
      'kind: WorkloadEntry',
      'metadata:',
      `  name: churn-${k}`,
      `  namespace: ${workloadInfo(shape, 0).namespace}`,
      'spec:',
      `  address: 10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      '  ports: {http: 9080}',
      '  serviceAccount: bench',
      '  labels: {app: svc-0}',
      '',
    ].join('\n');
    const file = path.join(meshDir, `churn-${k}.yaml`);
    fs.writeFileSync(`${file}.tmp`, yaml);
    fs.renameSync(`${file}.tmp`, file);
    if (k === total - 1) lastAt = now();
    const wait = t0 + ((k + 1) * 1000) / perSecond - now();
    if (wait > 0) await sleep(wait);
  }
  // Lag: from the last registration to each proxy's last push (the one carrying it).
  const settled = await waitCaughtUp(clients, a.output, a.syncz, lastAt, 120_000);
  const cpu = cpuSeconds(pid) - cpu0;
  const lags = settled.proxies.filter((p) => p.lastAt !== undefined && p.lastAt > lastAt).map((p) => (p.lastAt as number) - lastAt);
  const elapsed = (lastAt - t0) / 1000;
  const res = {
    registrations: total,
    perSecond: Math.round((total / Math.max(elapsed, 0.001)) * 10) / 10,
    seconds: Math.round(elapsed * 10) / 10,
    lagMs: latency(lags, a.n),
    cpuSeconds: Math.round(cpu * 100) / 100,
    edsPushesPerProxy: Math.round((settled.proxies.reduce((s, p) => s + p.edsPushes, 0) / settled.proxies.length) * 100) / 100,
  };
  a.log(`[fanout]   churn: ${res.perSecond}/s for ${res.seconds} s; lag p99 ${res.lagMs.p99} ms; CPU ${res.cpuSeconds} s`);
  return res;
}
