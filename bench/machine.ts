/**
 * Shared helpers for the benchmarks in `bench/`: the machine description every result carries,
 * CPU time of another process (from `/proc/<pid>/stat`), and percentiles.
 */
import fs from 'node:fs';
import os from 'node:os';

/** What every benchmark JSON reports about where it ran. */
export interface MachineInfo {
  cpuModel: string;
  /** Logical CPUs the OS reports (not all of them are necessarily free for the benchmark). */
  cpuCount: number;
  totalMemoryGiB: number;
  platform: string;
  node: string;
  openssl: string;
  /** 1-minute load average when the benchmark started: other work sharing the cores. */
  loadAverage1m: number;
}

/** The machine description of this process (CPU model, cores, memory, Node and OpenSSL versions). */
export function machineInfo(): MachineInfo {
  const cpu = os.cpus()[0];
  return {
    cpuModel: cpu?.model ?? 'unknown',
    cpuCount: os.cpus().length,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    openssl: process.versions.openssl ?? 'unknown',
    loadAverage1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ; 100 on every Linux port we run on). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) a process has used so far, read from `/proc/<pid>/stat` (fields 14
 * and 15, proc(5)). Linux only; throws if the process is gone.
 */
export function processCpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields after it start past the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / USER_HZ;
}

/** Resident set size of a process in MiB (`VmRSS` of `/proc/<pid>/status`); undefined if gone. */
export function processRssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A process's resident memory in MiB from `/proc/<pid>/status`: `rss` (VmRSS), split into
 * `anon` (RssAnon: its own heap and stacks) and `file` (RssFile: mapped files, mostly the
 * executable's pages, shared with other processes running the same binary). Undefined if gone.
 */
export function processMemoryMiB(pid: number): { rss: number; anon: number; file: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN);
    const mib = (v: number): number => Math.round((v / 1024) * 10) / 10;
    return { rss: mib(kb('VmRSS')), anon: mib(kb('RssAnon')), file: mib(kb('RssFile')) };
  } catch {
    return undefined;
  }
}

/** The q-quantile (0..1) of `values` by nearest rank; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

/** Rounds to `digits` decimals (for readable JSON). */
export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/**
 * The positive number after `--<name>` on the command line (e.g. `argValue('--reps', 3)`), or
 * `fallback` when the flag is absent. Throws when the value is not a positive number.
 */
export function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}
