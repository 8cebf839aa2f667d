/**
 * `npm run bench`: runs every benchmark of issue 9, one after another (they must not share the
 * cores), each in its own process, and writes `bench/results/<name>.json` plus
 * `bench/results/summary.json` (the headline numbers and whether each target of issue 9 §2 is met).
 *
 *   ca         bench/ca.ts              CSRs/s per core vs the raw ECDSA limit; the gRPC path
 *   dataplane  bench/dataplane/run.ts   wrk through two Skiff sidecars vs a minimal Envoy pair
 *   agent      bench/agent/run.ts       agent cold start vs Envoy's own start; agent RSS
 *   fanout     bench/fanout/run.ts      push-to-ACK vs go-control-plane (when present)
 *
 * Budget: under 15 minutes on a 2-core machine: about 4 for the first three, at most 10 for the
 * fan-out run (every benchmark has a time limit; one that fails or overruns is recorded as failed
 * and the others still run). The data-plane and agent
 * benchmarks need root (network namespaces); without it they are recorded as skipped.
 *
 * Run: `node --import tsx bench/run.ts [--only ca,agent] [--skip fanout] [--quick] [--repeat k] [--agent-binary <path>]`
 * (`--quick`: shorter phases, for a smoke run; the numbers are noisier, and every result file,
 * the summary included, goes to the git-ignored `bench/results/quick/` so that the committed
 * results stay as they are. `--repeat k`: the fan-out benchmark runs k interleaved Skiff and
 * baseline passes per (N, mode) and reports medians; default 1, which keeps `npm run bench` under
 * 15 minutes; its time limit grows with k).
 *
 * Before the fan-out benchmark, dist/ is rebuilt (`npm run build`) when it is older than src/:
 * the fan-out benchmark runs Skiff compiled, not under tsx.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuild } from './fanout/driver.js';
import { machineInfo } from './machine.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const QUICK = process.argv.includes('--quick');
/** Where result files go: `bench/results/`, or its git-ignored `quick/` for `--quick` runs. */
const RESULTS = QUICK ? path.join(HERE, 'results', 'quick') : path.join(HERE, 'results');
/** `--repeat k` for the fan-out benchmark (interleaved passes per (N, mode), medians). */
const REPEAT = ((): number => {
  const i = process.argv.indexOf('--repeat');
  if (i < 0) return 1;
  const k = Number(process.argv[i + 1]);
  if (!Number.isInteger(k) || k < 1 || k > 20) throw new Error('--repeat must be a whole number from 1 to 20');
  return k;
})();

/** One benchmark: its script, arguments, time limit and whether it needs root. */
interface Bench {
  name: string;
  script: string;
  args: (quick: boolean) => string[];
  timeoutS: number;
  needsRoot: boolean;
  /** Writes its own result file (given as `--out`) instead of printing it for us to save. */
  writesOwnFile?: boolean;
  /** Runs before the benchmark, outside its time limit. */
  prepare?: () => void;
}

/** `--agent-binary <path>`: the agent binary to measure (default dist/skiff-agent-linux-x64). */
const agentBinary = ((): string | undefined => {
  const i = process.argv.indexOf('--agent-binary');
  return i >= 0 ? process.argv[i + 1] : undefined;
})();

const BENCHES: Bench[] = [
  { name: 'ca', script: 'bench/ca.ts', args: (q) => (q ? ['--seconds', '2', '--grpc-seconds', '3'] : ['--seconds', '6', '--grpc-seconds', '8']), timeoutS: 120, needsRoot: false },
  { name: 'dataplane', script: 'bench/dataplane/run.ts', args: (q) => (q ? ['--seconds', '3', '--reps', '1'] : ['--seconds', '8', '--reps', '3']), timeoutS: 300, needsRoot: true },
  {
    name: 'agent',
    script: 'bench/agent/run.ts',
    // Also one cold start per repetition with V8's young generation capped (see the README).
    args: (q) => [
      ...(q ? ['--reps', '1'] : ['--reps', '3']),
      '--compare-node-options',
      '--max-semi-space-size=1',
      ...(agentBinary !== undefined ? ['--binary', agentBinary] : []),
    ],
    timeoutS: 300,
    needsRoot: true,
  },
  {
    name: 'fanout',
    script: 'bench/fanout/run.ts',
    args: (q) => [...(q ? ['--proxies', '500'] : []), '--repeat', String(REPEAT), '--out', path.join(RESULTS, 'fanout.json')],
    // The others take about 4 minutes and the build of dist/ about 1: the fan-out run gets the
    // rest of the 15-minute budget (with --repeat k, k times that). It writes its file after
    // every (N, mode), so a run stopped by the limit still leaves what it measured.
    timeoutS: 630 * REPEAT,
    needsRoot: false,
    writesOwnFile: true,
    prepare: () => void ensureBuild(),
  },
];

function listArg(name: string): string[] | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : undefined;
}

/** Runs one benchmark; resolves its parsed JSON (the last JSON object on stdout). */
function runOne(b: Bench, quick: boolean): Promise<{ ok: true; json: unknown; seconds: number } | { ok: false; error: string; seconds: number }> {
  const started = performance.now();
  // Its own process group, so that a time limit (or our own SIGINT/SIGTERM) also stops what it
  // started (control planes, simulated proxies, Envoys) instead of leaving them running.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, b.script), ...b.args(quick)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    killGroup(signal);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    process.stderr.write(`[${b.name}] ${d.toString()}`);
  });
  const timer = setTimeout(() => {
    killGroup('SIGTERM');
    // Whatever ignores SIGTERM is killed 10 s later.
    setTimeout(() => killGroup('SIGKILL'), 10_000).unref();
  }, b.timeoutS * 1000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const seconds = Math.round((performance.now() - started) / 100) / 10;
      if (code !== 0) {
        const why = signal ? `killed by ${signal}${signal === 'SIGTERM' ? ` (time limit ${b.timeoutS} s)` : ''}` : `exit code ${code}`;
        return resolve({ ok: false, error: `${why}: ${err.trim().split('\n').slice(-5).join(' | ')}`, seconds });
      }
      const start = out.indexOf('{');
      try {
        resolve({ ok: true, json: JSON.parse(out.slice(start)) as unknown, seconds });
      } catch {
        resolve({ ok: false, error: `no JSON on stdout: ${out.slice(0, 300)}`, seconds });
      }
    });
  });
}

/** Picks a value at a dotted path of a result, for the summary. */
function pick(json: unknown, dotted: string): unknown {
  let cur: unknown = json;
  for (const k of dotted.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
  return cur;
}

/** Headline numbers and targets per benchmark (issue 9 §2). */
function headline(name: string, json: unknown): Record<string, unknown> {
  const num = (p: string): number => Number(pick(json, p));
  switch (name) {
    case 'ca':
      return {
        signingCoreCsrsPerCpuSecond: pick(json, 'signingCore.perCpuSecond'),
        rawSignVerifyPerCpuSecond: pick(json, 'raw.perCpuSecond'),
        ratioPerCore: pick(json, 'signingCore.ratioPerCore'),
        grpcCsrsPerServerCpuSecond: pick(json, 'grpc.serverCsrsPerCpuSecond'),
        grpcRatioPerCore: pick(json, 'grpc.ratioToRawPerCore'),
        targetMet: { signingCoreRatioAtLeast0_5: num('signingCore.ratioPerCore') >= 0.5, grpcRatioAtLeast0_5: num('grpc.ratioToRawPerCore') >= 0.5 },
      };
    case 'dataplane':
      return {
        ratios: pick(json, 'ratios'),
        targetMet: { rpsWithin10Percent: num('ratios.skiffToMinimalRps') >= 0.9, p99Within10Percent: num('ratios.skiffToMinimalP99') <= 1.1 },
      };
    case 'agent':
      return {
        coldStartMs: pick(json, 'coldStartMs'),
        envoyStaticStartMs: pick(json, 'envoyStaticStartMs'),
        agentRssMiB: pick(json, 'agentRssMiB'),
        agentRssWithNodeOptionsMiB: pick(json, 'withNodeOptions.agentRssMiB'),
        targetMet: pick(json, 'met'),
      };
    case 'fanout':
      return fanoutHeadline(json);
    default:
      return {};
  }
}

/** One fan-out run as the summary shows it. */
interface FanoutRunHeadline {
  proxies: number;
  mode: string;
  scenario: string;
  repeat: number;
  skiffP99Ms: number;
  baselineP99Ms: number | null;
  p99Ratio: number | null;
  /** Push-to-ACK ratio: Skiff from "registry snapshot published" over the baseline from its command. */
  p99FromSnapshotRatio: number | null;
  skiffP99FromSnapshotMs: number | null;
  skiffP99FromFileWriteMs: number | null;
  skiffRssPerProxyMb: number;
  baselineRssPerProxyMb: number | null;
  rssPerProxyRatio: number | null;
}

/** The fan-out headline: p99 on both sides, ratios and RSS per proxy for every run, and the targets. */
function fanoutHeadline(json: unknown): Record<string, unknown> {
  const runs = (pick(json, 'runs') as unknown[] | undefined) ?? [];
  const num = (x: unknown, p: string): number | null => {
    const v = pick(x, p);
    return typeof v === 'number' ? v : null;
  };
  const rows: FanoutRunHeadline[] = runs.map((r) => ({
    proxies: Number(pick(r, 'proxies')),
    mode: String(pick(r, 'mode')),
    scenario: String(pick(r, 'scenario')),
    repeat: Number(pick(r, 'repeat') ?? 1),
    skiffP99Ms: Number(pick(r, 'skiff.change.p99')),
    baselineP99Ms: num(r, 'baseline.change.p99'),
    p99Ratio: num(r, 'ratios.p99'),
    p99FromSnapshotRatio: num(r, 'ratios.p99FromSnapshot'),
    skiffP99FromSnapshotMs: num(r, 'skiff.changeFromSnapshot.p99'),
    skiffP99FromFileWriteMs: num(r, 'skiff.changeFromFileWrite.p99'),
    skiffRssPerProxyMb: Number(pick(r, 'skiff.rssPerProxyMb')),
    baselineRssPerProxyMb: num(r, 'baseline.rssPerProxyMb'),
    rssPerProxyRatio: num(r, 'ratios.rssPerProxy'),
  }));
  return {
    clock: 'skiffP99Ms/p99Ratio: Skiff from the HTTP API request; skiffP99FromSnapshotMs/p99FromSnapshotRatio: Skiff from the push (registry snapshot published); baseline from its change command (see clocks in the file)',
    complete: pick(json, 'complete'),
    runs: rows,
    failed: pick(json, 'failed'),
    // Judged at 2,000 proxies only (null when the run did not reach 2,000).
    targetMet: pick(json, 'targets'),
  };
}

/**
 * For a benchmark that writes its own file (the fan-out one writes it after every run, with
 * `complete: false` until the end): the headline of what it wrote since `startedAt`, as
 * `{ partial: ... }`, or {} when there is none.
 */
function partialOf(b: Bench, startedAt: number): Record<string, unknown> {
  if (!b.writesOwnFile) return {};
  const file = path.join(RESULTS, `${b.name}.json`);
  try {
    if (fs.statSync(file).mtimeMs < startedAt) return {};
    return { partial: { file: path.relative(REPO, file), ...headline(b.name, JSON.parse(fs.readFileSync(file, 'utf8')) as unknown) } };
  } catch {
    return {};
  }
}

/** The `results` of the last summary.json, or {} if there is none. */
function readPreviousResults(): Record<string, unknown> {
  try {
    const prev = JSON.parse(fs.readFileSync(path.join(RESULTS, 'summary.json'), 'utf8')) as { results?: Record<string, unknown> };
    return prev.results ?? {};
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const quick = QUICK;
  const only = listArg('--only');
  const skip = listArg('--skip') ?? [];
  const isRoot = process.getuid?.() === 0;
  fs.mkdirSync(RESULTS, { recursive: true });
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const summary: Record<string, unknown> = { benchmark: 'summary', date: new Date().toISOString(), machine: machineInfo(), command, results: {} };
  // With --only/--skip, the other benchmarks keep their entries from the previous summary.
  const previous = only || skip.length > 0 ? readPreviousResults() : {};
  const results = { ...previous } as Record<string, unknown>;
  summary['results'] = results;
  const t0 = performance.now();
  for (const b of BENCHES) {
    if ((only && !only.includes(b.name)) || skip.includes(b.name)) continue;
    if (!fs.existsSync(path.join(REPO, b.script))) {
      results[b.name] = { status: 'absent', note: `${b.script} does not exist` };
      continue;
    }
    if (b.needsRoot && !isRoot) {
      results[b.name] = { status: 'skipped', note: 'needs root (network namespaces)' };
      continue;
    }
    process.stderr.write(`== ${b.name}\n`);
    try {
      b.prepare?.();
    } catch (err) {
      results[b.name] = { status: 'failed', seconds: 0, error: `preparing: ${err instanceof Error ? err.message : String(err)}` };
      continue;
    }
    const startedAt = Date.now();
    const r = await runOne(b, quick);
    if (!r.ok) {
      results[b.name] = { status: 'failed', seconds: r.seconds, error: r.error, ...partialOf(b, startedAt) };
      continue;
    }
    if (!b.writesOwnFile) fs.writeFileSync(path.join(RESULTS, `${b.name}.json`), `${JSON.stringify(r.json, null, 2)}\n`);
    results[b.name] = { status: 'ok', date: new Date().toISOString(), seconds: r.seconds, file: path.relative(REPO, path.join(RESULTS, `${b.name}.json`)), ...headline(b.name, r.json) };
  }
  summary['totalSeconds'] = Math.round((performance.now() - t0) / 1000);
  fs.writeFileSync(path.join(RESULTS, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  if (Object.values(results).some((r) => (r as { status?: string }).status === 'failed')) process.exitCode = 1;
}

await main();
