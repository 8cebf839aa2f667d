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
 * Run: `node --import tsx bench/run.ts [--only ca,agent] [--skip fanout] [--quick] [--agent-binary <path>]`
 * (`--quick`: shorter phases, for a smoke run; the numbers are noisier).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo } from './machine.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const RESULTS = path.join(HERE, 'results');

/** One benchmark: its script, arguments, time limit and whether it needs root. */
interface Bench {
  name: string;
  script: string;
  args: (quick: boolean) => string[];
  timeoutS: number;
  needsRoot: boolean;
  /** Writes its own result file (given as `--out`) instead of printing it for us to save. */
  writesOwnFile?: boolean;
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
    args: (q) => [...(q ? ['--proxies', '500'] : []), '--out', path.join(RESULTS, 'fanout.json')],
    // Mine take about 4 minutes: the fan-out run gets the rest of the 15-minute budget.
    timeoutS: 600,
    needsRoot: false,
    writesOwnFile: true,
  },
];

function listArg(name: string): string[] | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : undefined;
}

/** Runs one benchmark; resolves its parsed JSON (the last JSON object on stdout). */
function runOne(b: Bench, quick: boolean): Promise<{ ok: true; json: unknown; seconds: number } | { ok: false; error: string; seconds: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, b.script), ...b.args(quick)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    process.stderr.write(`[${b.name}] ${d.toString()}`);
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), b.timeoutS * 1000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
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
      return { targetMet: pick(json, 'targets') };
    default:
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
  const quick = process.argv.includes('--quick');
  const only = listArg('--only');
  const skip = listArg('--skip') ?? [];
  const isRoot = process.getuid?.() === 0;
  fs.mkdirSync(RESULTS, { recursive: true });
  const summary: Record<string, unknown> = { benchmark: 'summary', date: new Date().toISOString(), machine: machineInfo(), command: `npm run bench${quick ? ' -- --quick' : ''}`, results: {} };
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
    const r = await runOne(b, quick);
    if (!r.ok) {
      results[b.name] = { status: 'failed', seconds: r.seconds, error: r.error };
      continue;
    }
    if (!b.writesOwnFile) fs.writeFileSync(path.join(RESULTS, `${b.name}.json`), `${JSON.stringify(r.json, null, 2)}\n`);
    results[b.name] = { status: 'ok', date: new Date().toISOString(), seconds: r.seconds, file: `bench/results/${b.name}.json`, ...headline(b.name, r.json) };
  }
  summary['totalSeconds'] = Math.round((performance.now() - t0) / 1000);
  fs.writeFileSync(path.join(RESULTS, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  if (Object.values(results).some((r) => (r as { status?: string }).status === 'failed')) process.exitCode = 1;
}

await main();
