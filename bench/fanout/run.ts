/**
 * `node --import tsx bench/fanout/run.ts [--proxies 500,1000,2000] [--mode sotw,delta]
 *   [--scenario sidecar,default] [--services 1000] [--repeat 1] [--no-baseline] [--no-extras]
 *   [--keep-dumps <dir>] [--out bench/results/fanout.json]`
 *
 * Runs the fan-out benchmark (bench/fanout/driver.ts) for every combination of the given proxy
 * counts, modes and scenarios, prints one JSON object on stdout (progress goes to stderr) and
 * writes the same object to `--out`. Skiff runs from dist/ (built first when older than src/).
 * With `--repeat k`, each (N, mode) runs k Skiff and k baseline passes interleaved and reports
 * medians. The baseline's snapshots come from one unmeasured recording pass per (scenario, N),
 * shared by both modes (`--keep-dumps <dir>` keeps them). Targets of issue 9 §2 are evaluated for
 * the largest N.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo, type MachineInfo } from '../machine.js';
import { buildBaseline, CLOCKS, ensureBuild, REPO, runFanout, type FanoutResult } from './driver.js';

/** The JSON written to bench/results/fanout.json. */
export interface FanoutReport {
  benchmark: 'fanout';
  date: string;
  machine: MachineInfo;
  command: string;
  /** Where each side's push-to-ACK clock starts. */
  clocks: typeof CLOCKS;
  /** Measured passes per side and (N, mode), interleaved; figures are medians. */
  repeat: number;
  /** Whether dist/ was rebuilt before the run (Skiff runs compiled, not under tsx). */
  build: { built: boolean; note?: string };
  mesh: { serviceEntries: number; workloadEntries: number };
  /** False in the file written after each run while others remain (a stopped run leaves that). */
  complete: boolean;
  runs: FanoutResult[];
  /** Runs that could not complete, with the reason. */
  failed: { proxies: number; mode: string; scenario: string; error: string }[];
  /**
   * Issue 9 §2 targets, judged on the runs with 2,000 proxies (`null`: not measured). The p99
   * targets are judged twice: push-to-ACK (Skiff's clock at "registry snapshot published", the
   * baseline's at its SetSnapshot command: both start when the new configuration is handed to the
   * xDS side) and from the HTTP API request (Skiff also pays its source: API, durable commit,
   * the registry's 100 ms debounce and snapshot; the baseline has no source).
   */
  targets: {
    pushToAck: { p99Under1s: boolean | null; p99AtMost1_5xBaseline: boolean | null };
    fromApiRequest: { p99Under1s: boolean | null; p99AtMost1_5xBaseline: boolean | null };
    memoryUnder0_3MbPerProxy: boolean | null;
  };
}

function list<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const out = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const v of out) if (!allowed.includes(v as T)) throw new Error(`--${what}: ${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
  return out as T[];
}

/** Parses flags, runs, prints and writes the report. */
export async function main(argv: string[]): Promise<FanoutReport> {
  const { values } = parseArgs({
    args: argv,
    options: {
      proxies: { type: 'string', default: '500,1000,2000' },
      mode: { type: 'string', default: 'sotw,delta' },
      scenario: { type: 'string', default: 'sidecar' },
      'no-baseline': { type: 'boolean', default: false },
      'no-extras': { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(REPO, 'bench', 'results', 'fanout.json') },
      services: { type: 'string', default: '1000' },
      repeat: { type: 'string', default: '1' },
      'keep-dumps': { type: 'string' },
    },
  });
  const proxies = values.proxies.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 2000) throw new Error(`--proxies: ${JSON.stringify(s)} is not a whole number from 1 to 2000`);
    return n;
  });
  if (!Number.isInteger(Number(values.services)) || Number(values.services) < 10) throw new Error(`--services: ${JSON.stringify(values.services)} is not a whole number of at least 10`);
  const modes = list(values.mode, ['sotw', 'delta'] as const, 'mode');
  const scenarios = list(values.scenario, ['sidecar', 'default'] as const, 'scenario');
  const machine = machineInfo();
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) throw new Error(`--repeat: ${JSON.stringify(values.repeat)} is not a whole number from 1 to 20`);
  const withBaseline = !values['no-baseline'];
  const build = ensureBuild();
  if (withBaseline) buildBaseline();

  const runs: FanoutResult[] = [];
  const failed: FanoutReport['failed'] = [];
  /** The report so far (`complete` false while runs remain: written after each run). */
  const reportOf = (complete: boolean): FanoutReport => {
    const top = Math.max(...proxies);
    const atTop = runs.filter((r) => r.proxies === top);
    const all = <T>(xs: T[], f: (x: T) => boolean | null): boolean | null => (xs.length === 0 || xs.some((x) => f(x) === null) ? null : xs.every((x) => f(x) === true));
    return {
      benchmark: 'fanout',
      date: new Date().toISOString(),
      machine,
      command: `node --import tsx bench/fanout/run.ts ${argv.join(' ')}`.trim(),
      clocks: CLOCKS,
      repeat,
      build,
      mesh: { serviceEntries: Number(values.services), workloadEntries: Number(values.services) * 10 },
      complete,
      runs,
      failed,
      targets: {
        pushToAck: {
          p99Under1s: top === 2000 ? all(atTop, (r) => (r.skiff.changeFromSnapshot ? r.skiff.changeFromSnapshot.p99 < 1000 && r.skiff.changeFromSnapshot.acked === r.skiff.changeFromSnapshot.expected : null)) : null,
          p99AtMost1_5xBaseline: top === 2000 ? all(atTop, (r) => (r.ratios?.p99FromSnapshot != null ? r.ratios.p99FromSnapshot <= 1.5 : null)) : null,
        },
        fromApiRequest: {
          p99Under1s: top === 2000 ? all(atTop, (r) => r.skiff.change.p99 < 1000 && r.skiff.change.acked === r.skiff.change.expected) : null,
          p99AtMost1_5xBaseline: top === 2000 ? all(atTop, (r) => (r.ratios ? r.ratios.p99 <= 1.5 : null)) : null,
        },
        memoryUnder0_3MbPerProxy: top === 2000 ? all(atTop, (r) => r.skiff.rssPerProxyMb < 0.3) : null,
      },
    };
  };
  const write = (report: FanoutReport): void => {
    fs.mkdirSync(path.dirname(values.out), { recursive: true });
    fs.writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
  };
  // The recording pass's dumps, shared by the two modes of one (scenario, N); removed at the end
  // (copied to --keep-dumps first when given).
  const recordingDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-fanout-recordings-'));
  try {
    for (const scenario of scenarios) {
      for (const mode of modes) {
        for (const n of proxies) {
          // The burst and churn phases run at the largest N only (they do not depend much on N).
          try {
            runs.push(await runFanout({ proxies: n, mode, scenario, baseline: withBaseline, extras: !values['no-extras'] && n === Math.max(...proxies), services: Number(values.services), repeat, recordingDir }));
          } catch (err) {
            // One failed run (e.g. proxies that never synced) is reported, the others still run.
            failed.push({ proxies: n, mode, scenario, error: err instanceof Error ? err.message : String(err) });
            process.stderr.write(`[fanout] ${mode} N=${n} ${scenario} failed: ${err instanceof Error ? err.message : String(err)}\n`);
          }
          // What is done so far survives a time limit that stops the rest.
          write(reportOf(false));
        }
      }
    }
  } finally {
    if (values['keep-dumps'] !== undefined) fs.cpSync(recordingDir, values['keep-dumps'], { recursive: true });
    fs.rmSync(recordingDir, { recursive: true, force: true });
  }
  const report = reportOf(true);
  write(report);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return report;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`fanout: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
