/**
 * The fan-out benchmark driver (issue 9 §1): writes the generated mesh, starts the real control
 * plane (`skiff serve`, a separate process whose CPU and RSS are read from /proc), connects N
 * simulated proxies (bench/fanout/clients.ts, another process) over mutual TLS, changes one
 * service's endpoints by rewriting its file, and measures the time until every affected proxy
 * ACKed the new ClusterLoadAssignment, the control plane's CPU seconds and its RSS per connected
 * proxy. Then a burst (100 changes in 1 s: EDS pushes per proxy) and a churn run (new
 * WorkloadEntry files at a fixed rate while serving). The same proxies are then pointed at the
 * go-control-plane baseline (bench/baseline) serving the very resources Skiff sent them, and the
 * same change (Skiff's post-change resources) is applied there.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority } from '../../src/ca/index.js';
import { controlPlaneSpiffeId } from '../../src/identity/spiffe.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ProcessGroup } from '../../test/helpers/processes.js';
import { startControlPlaneProc } from '../../test/helpers/skiff.js';
import type { ClientCommand, ClientEvent, ClientsConfig, ProxySpec } from './clients.js';
import { changeService, DEFAULT_SHAPE, serviceEdsName, sidecarServices, workloadInfo, writeMesh, type MeshShape } from './mesh.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Repository root. */
export const REPO = path.resolve(HERE, '..', '..');
/** Where the baseline binary is built (git-ignored). */
export const BASELINE_BIN = path.join(REPO, 'bench', '.build', 'baseline');
const TRUST_DOMAIN = 'cluster.local';
const CLK_TCK = 100;

/** One fan-out run's parameters. */
export interface FanoutOptions {
  proxies: number;
  mode: 'sotw' | 'delta';
  scenario: 'default' | 'sidecar';
  /** ServiceEntries in the generated mesh (10 WorkloadEntries each); default 1,000. */
  services?: number;
  /** Also run the go-control-plane baseline (default true). */
  baseline?: boolean;
  /** Run the burst and churn phases (default true). */
  extras?: boolean;
  /** Extra node flags for the control plane (e.g. `--cpu-prof`). */
  nodeOptions?: string;
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

/** What one server (Skiff or the baseline) measured. */
export interface ServerResult {
  /** From the first connection to every proxy synced (CDS, EDS, LDS, RDS ACKed), seconds. */
  connectSeconds: number;
  connectCpuSeconds: number;
  rssIdleMb: number;
  rssConnectedMb: number;
  rssPerProxyMb: number;
  /**
   * Push-to-ACK of the one-service change: from the push (Skiff: the registry publishing the new
   * snapshot, its "registry snapshot published" log time; baseline: the `change` command) until
   * each proxy ACKed the new ClusterLoadAssignment.
   */
  change: Latency;
  /** The same from the change itself (Skiff: the file rename, so including the file reload and debounce). */
  changeFromWrite: Latency;
  /** From the change to the push (Skiff: file reload + debounce + registry), ms. */
  changeToPushMs: number;
  /** Control plane CPU seconds from the change until every proxy ACKed. */
  changeCpuSeconds: number;
  /** First EDS response after the change, ms (Skiff: includes the file and registry debounce). */
  firstPushMs: number;
  /** Responses per proxy caused by the change (any type), mean. */
  responsesPerProxy: number;
  /** ADS streams the simulated proxies had to reopen (refused or failed streams, retried like Envoy). */
  reconnects: number;
}

/** One fan-out run's result (a member of bench/results/fanout.json). */
export interface FanoutResult {
  proxies: number;
  mode: 'sotw' | 'delta';
  scenario: 'default' | 'sidecar';
  /** ServiceEntries and WorkloadEntries of the generated mesh. */
  mesh: { serviceEntries: number; workloadEntries: number };
  clustersPerProxy: number;
  skiff: ServerResult;
  baseline?: ServerResult;
  /** Skiff / baseline. */
  ratios?: { p99: number; p50: number; rssPerProxy: number; changeCpu: number };
  burst?: { changes: number; spanMs: number; edsPushesPerProxy: { mean: number; max: number }; settledMs: number; cpuSeconds: number };
  churn?: { registrations: number; perSecond: number; seconds: number; lagMs: Latency; cpuSeconds: number; edsPushesPerProxy: number };
  errors: string[];
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
  const r = spawnSync('go', ['build', '-o', BASELINE_BIN, '.'], { cwd: path.join(REPO, 'bench', 'baseline'), stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`go build of bench/baseline failed (status ${r.status})`);
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

/** Runs one fan-out measurement (Skiff, then the baseline on the same proxies). */
export async function runFanout(opts: FanoutOptions): Promise<FanoutResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const shape: MeshShape = { ...DEFAULT_SHAPE, scenario: opts.scenario, services: opts.services ?? DEFAULT_SHAPE.services };
  const n = opts.proxies;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-fanout-'));
  const group = new ProcessGroup();
  const errors: string[] = [];
  let clients: Clients | undefined;
  try {
    const meshDir = path.join(tmp, 'mesh');
    const dataDir = path.join(tmp, 'data');
    writeMesh(meshDir, shape);
    fs.mkdirSync(dataDir, { mode: 0o700 });
    // The data dir's CA: the control plane loads the same one; client SVIDs are minted from it.
    const ca = await CertificateAuthority.loadOrCreate({ dataDir, trustDomain: TRUST_DOMAIN, logger: silentLogger() });
    const certs: ClientsConfig['certs'] = {};
    for (let k = 0; k < shape.namespaces; k++) {
      const c = await ca.issueServingCert({ spiffeId: `spiffe://${TRUST_DOMAIN}/ns/ns-${k}/sa/bench`, ttlSeconds: 24 * 3600 });
      certs[`ns-${k}`] = { certChainPem: c.certChainPem, keyPem: c.keyPem };
    }
    const specs = proxySpecs(shape, n);
    const clientsConfig = (record: boolean): string => {
      const file = path.join(tmp, `clients-${record ? 'rec' : 'plain'}.json`);
      const cfg: ClientsConfig = { mode: opts.mode, record, trustBundlePem: ca.trustBundlePem(), certs, proxies: specs };
      fs.writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
      return file;
    };
    const changed = 0;
    const watchName = serviceEdsName(shape, changed);
    // Every proxy sees svc-0 in both scenarios.
    const clustersPerProxy = shape.scenario === 'default' ? shape.services : sidecarServices(shape, 0).length;

    // ---------------- Skiff ----------------
    log(`[fanout] ${opts.mode} N=${n} ${opts.scenario}: starting skiff serve`);
    const cp = await startControlPlaneProc(group, {
      configDir: meshDir,
      dataDir,
      address: '127.0.0.1',
      env: opts.nodeOptions ? { NODE_OPTIONS: opts.nodeOptions } : {},
    });
    const pid = cp.proc.child.pid as number;
    await sleep(1500);
    const skiffIdle = rssMb(pid);
    clients = new Clients(clientsConfig(true));
    const initialDump = path.join(tmp, 'initial.json');
    const afterDump = path.join(tmp, 'after.json');
    const skiff = await measureServer({
      clients,
      pid,
      port: cp.grpcPort,
      n,
      log,
      idleRss: skiffIdle,
      watchName,
      change: () => changeService(meshDir, shape, changed, 1),
      pushTime: (t0) => publishedAfter(cp.proc.output(), t0),
      dumpBefore: initialDump,
    });
    if (skiff.result.change.acked < n) log(`[fanout]   not every proxy got the change; control plane output:\n${cp.proc.output().slice(-4000)}`);
    // The clients dumped what Skiff served before the change inside measureServer; what it
    // serves after the change is dumped now: the baseline serves both.
    const dumped = clients.next('dumped', 120_000);
    clients.send({ cmd: 'dump', file: afterDump });
    await dumped;
    errors.push(...skiff.errors);

    let burst: FanoutResult['burst'];
    let churn: FanoutResult['churn'];
    if (opts.extras !== false) {
      const output = (): string => cp.proc.output();
      const syncz = synczProbe(cp.monitoringPort);
      burst = await runBurst({ clients, pid, shape, meshDir, log, output, syncz });
      churn = await runChurn({ clients, pid, shape, meshDir, log, n, output, syncz });
    }
    await clients.close();
    clients = undefined;
    await group.stopAll();

    // ---------------- baseline ----------------
    let baseline: ServerResult | undefined;
    if (opts.baseline !== false) {
      if (!fs.existsSync(BASELINE_BIN)) buildBaseline();
      const serving = await ca.issueServingCert({ spiffeId: controlPlaneSpiffeId(TRUST_DOMAIN), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ttlSeconds: 24 * 3600 });
      const certFile = path.join(tmp, 'baseline-cert.pem');
      const keyFile = path.join(tmp, 'baseline-key.pem');
      const caFile = path.join(tmp, 'baseline-ca.pem');
      fs.writeFileSync(certFile, serving.certChainPem);
      fs.writeFileSync(keyFile, serving.keyPem, { mode: 0o600 });
      fs.writeFileSync(caFile, ca.trustBundlePem());
      log(`[fanout] ${opts.mode} N=${n} ${opts.scenario}: starting go-control-plane baseline`);
      const child = spawn(BASELINE_BIN, ['-listen', '127.0.0.1:0', '-cert', certFile, '-key', keyFile, '-ca', caFile, '-initial', initialDump, '-after', afterDump], { stdio: ['pipe', 'pipe', 'pipe'] });
      const proc = group.add('baseline', child);
      const m = await proc.waitFor(/LISTENING (\d+)/, 120_000);
      const bpid = child.pid as number;
      const baseRss = Number((await proc.waitFor(/BASE_RSS (\d+)/, 1000).catch(() => ['', 'NaN']))[1]) / 1024 / 1024;
      await sleep(1000);
      const idle = Number.isFinite(baseRss) ? baseRss : rssMb(bpid);
      clients = new Clients(clientsConfig(false));
      const b = await measureServer({
        clients,
        pid: bpid,
        port: Number(m[1]),
        n,
        log,
        idleRss: idle,
        watchName,
        change: () => child.stdin?.write('change\n'),
      pushTime: (t0) => t0,
      });
      errors.push(...b.errors.map((e) => `baseline: ${e}`));
      baseline = b.result;
      await clients.close();
      clients = undefined;
      child.stdin?.write('quit\n');
      await group.stopAll();
    }

    const result: FanoutResult = {
      proxies: n,
      mode: opts.mode,
      scenario: opts.scenario,
      mesh: { serviceEntries: shape.services, workloadEntries: shape.services * shape.workloadsPerService },
      clustersPerProxy, skiff: skiff.result, errors };
    if (baseline) {
      baseline.rssIdleMb = Math.round(baseline.rssIdleMb * 10) / 10;
      const r = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
      result.baseline = baseline;
      result.ratios = {
        p99: r(skiff.result.change.p99, baseline.change.p99),
        p50: r(skiff.result.change.p50, baseline.change.p50),
        rssPerProxy: r(skiff.result.rssPerProxyMb, baseline.rssPerProxyMb),
        changeCpu: r(skiff.result.changeCpuSeconds, Math.max(0.01, baseline.changeCpuSeconds)),
      };
    }
    if (burst) result.burst = burst;
    if (churn) result.churn = churn;
    return result;
  } finally {
    await clients?.close().catch(() => {});
    await group.stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface MeasureArgs {
  clients: Clients;
  pid: number;
  port: number;
  n: number;
  log: (l: string) => void;
  idleRss: number;
  watchName: string;
  change: () => void;
  /** When the control plane started pushing the change (ms since epoch), given the change time. */
  pushTime: (t0: number) => number;
  /** Where the clients dump what they hold before the change (recording clients only). */
  dumpBefore?: string;
}

/** Connect, settle, measure RSS, dump the pre-change state, change, measure push-to-ACK. */
async function measureServer(a: MeasureArgs): Promise<{ result: ServerResult; errors: string[] }> {
  const { clients, pid, n, log } = a;
  const cpu0 = cpuSeconds(pid);
  const c0 = now();
  clients.send({ cmd: 'connect', port: a.port, concurrency: 10 });
  await waitSynced(clients, n, 300_000);
  const connectSeconds = (now() - c0) / 1000;
  const connectCpuSeconds = cpuSeconds(pid) - cpu0;
  log(`[fanout]   ${n} proxies synced in ${connectSeconds.toFixed(1)} s (server CPU ${connectCpuSeconds.toFixed(1)} s)`);
  // Let connection setup garbage be collected before reading RSS.
  await waitQuiet(clients, now(), 1000, 1000, 30_000);
  await sleep(2000);
  const rssConnected = rssMb(pid);
  if (a.dumpBefore !== undefined) {
    const dumped = clients.next('dumped', 120_000);
    clients.send({ cmd: 'dump', file: a.dumpBefore });
    await dumped;
  }

  clients.send({ cmd: 'mark', t0: 0, name: a.watchName });
  await sleep(200);
  const cpuBefore = cpuSeconds(pid);
  const t0 = now();
  a.change();
  const rep = await pollUntil(clients, (r) => r.proxies.every((p) => p.ackedAt !== undefined), 120_000);
  const cpuAfter = cpuSeconds(pid);
  const ackTimes = rep.proxies.filter((p) => p.ackedAt !== undefined).map((p) => p.ackedAt as number);
  const tPush = a.pushTime(t0);
  const acked = ackTimes.map((t) => t - tPush);
  const settled = await waitQuiet(clients, t0, 1000, 1500, 30_000);
  const firstPush = Math.min(...settled.proxies.map((p) => p.ackedAt ?? Infinity)) - t0;
  const change = latency(acked, n);
  const changeFromWrite = latency(ackTimes.map((t) => t - t0), n);
  log(`[fanout]   change: p50 ${change.p50} ms, p99 ${change.p99} ms, max ${change.max} ms (${change.acked}/${n}), CPU ${(cpuAfter - cpuBefore).toFixed(2)} s`);
  const result: ServerResult = {
    connectSeconds: Math.round(connectSeconds * 100) / 100,
    connectCpuSeconds: Math.round(connectCpuSeconds * 100) / 100,
    rssIdleMb: Math.round(a.idleRss * 10) / 10,
    rssConnectedMb: Math.round(rssConnected * 10) / 10,
    rssPerProxyMb: Math.round(((rssConnected - a.idleRss) / n) * 1000) / 1000,
    change,
    changeFromWrite,
    changeToPushMs: Math.round(tPush - t0),
    changeCpuSeconds: Math.round((cpuAfter - cpuBefore) * 100) / 100,
    firstPushMs: Math.round(firstPush * 10) / 10,
    responsesPerProxy: Math.round((settled.proxies.reduce((s, p) => s + p.pushes, 0) / n) * 100) / 100,
    reconnects: settled.reconnects,
  };
  if (settled.lastErrors.length > 0) log(`[fanout]   ${settled.reconnects} streams reopened; last errors: ${settled.lastErrors.join(' | ')}`);
  return { result, errors: rep.errors };
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
