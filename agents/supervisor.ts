/**
 * Runs Envoy as a child process and keeps it running (DESIGN.md §8):
 * `envoy -c <bootstrap> --use-dynamic-base-id --base-id-path <bootstrap>.base-id --log-level <l>
 * --drain-time-s <n> --local-address-ip-version v4`; restarts it after an exit with exponential back-off (1 s doubling
 * to 30 s, back to 1 s after a run that lasted `stableAfterMs`); forwards Envoy's log lines to pino
 * (warning → warn, error/critical → error, the rest → debug); on `stop()` drains listeners
 * (`POST /drain_listeners?graceful`) for the drain time, sends SIGTERM and, after a timeout, SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import readline from 'node:readline';
import type { Logger } from '../src/observability/logger.js';
import { localHttpRequest } from './local-http.js';

/** Options of {@link EnvoySupervisor}. */
export interface EnvoySupervisorOptions {
  /** Envoy binary (absolute path or a name on PATH). */
  envoyPath: string;
  /** Bootstrap file (`-c`). */
  bootstrapPath: string;
  /** Admin port on 127.0.0.1 as configured in the bootstrap; used by `ready()` and drain. */
  adminPort: number;
  logger: Logger;
  /** Pass `--use-dynamic-base-id` (default true) so several Envoys can share a host. */
  baseIdDynamic?: boolean;
  /** `--drain-time-s`, and how long `stop()` lets listeners drain (default 5). */
  drainSeconds?: number;
  /** Envoy `--log-level` (default `warn`). */
  logLevel?: string;
  /** More Envoy arguments, appended. */
  extraArgs?: string[];
  /** First restart delay (default 1000 ms), doubled after each quick exit. */
  restartInitialMs?: number;
  /** Longest restart delay (default 30 000 ms). */
  restartMaxMs?: number;
  /** A run at least this long resets the restart delay (default 60 000 ms). */
  stableAfterMs?: number;
  /** Time between SIGTERM and SIGKILL on stop (default 10 000 ms). */
  killTimeoutMs?: number;
}

/** Supervises one Envoy process. Not reusable after `stop()`. */
export class EnvoySupervisor {
  /** `http://127.0.0.1:<adminPort>`. */
  readonly adminUrl: string;
  private child: ChildProcess | undefined;
  private childExited: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private nextDelayMs: number;
  private stopping = false;
  private started = false;
  private restartCount = 0;
  private readonly log: Logger;

  /** Where Envoy writes the base id it picked (`--base-id-path`), next to the bootstrap. */
  private readonly baseIdPath: string;

  constructor(private readonly opts: EnvoySupervisorOptions) {
    this.adminUrl = `http://127.0.0.1:${opts.adminPort}`;
    this.baseIdPath = `${opts.bootstrapPath}.base-id`;
    this.log = opts.logger.child({ component: 'envoy' });
    this.nextDelayMs = opts.restartInitialMs ?? 1000;
  }

  /** The running Envoy's process id, undefined between a crash and its restart. */
  pid(): number | undefined {
    return this.child?.pid;
  }

  /** How many times Envoy was restarted after exiting on its own. */
  get restarts(): number {
    return this.restartCount;
  }

  /** The command-line arguments Envoy is started with. */
  args(): string[] {
    const o = this.opts;
    return [
      '-c',
      o.bootstrapPath,
      ...(o.baseIdDynamic === false ? [] : ['--use-dynamic-base-id', '--base-id-path', this.baseIdPath]),
      '--log-level',
      o.logLevel ?? 'warn',
      '--drain-time-s',
      String(o.drainSeconds ?? 5),
      '--local-address-ip-version',
      'v4',
      ...(o.extraArgs ?? []),
    ];
  }

  /** Starts Envoy (once); it is restarted whenever it exits until `stop()`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.spawnEnvoy();
  }

  private spawnEnvoy(): void {
    if (this.stopping) return;
    const startedAt = Date.now();
    const child = spawn(this.opts.envoyPath, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let resolveExit!: () => void;
    this.childExited = new Promise<void>((resolve) => (resolveExit = resolve));
    this.forwardLog(child);
    if (child.pid) this.log.info({ pid: child.pid, envoy: this.opts.envoyPath, bootstrap: this.opts.bootstrapPath }, 'Envoy started');

    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
      if (gone) return;
      gone = true;
      if (this.child === child) this.child = undefined;
      const cleaned = this.removeHotRestartMemory().finally(resolveExit);
      if (this.stopping) {
        this.log.info({ code, signal }, 'Envoy stopped');
        return;
      }
      const ranMs = Date.now() - startedAt;
      if (ranMs >= (this.opts.stableAfterMs ?? 60_000)) this.nextDelayMs = this.opts.restartInitialMs ?? 1000;
      const delay = this.nextDelayMs;
      this.nextDelayMs = Math.min(this.opts.restartMaxMs ?? 30_000, delay * 2);
      this.log.warn({ code, signal, err: err?.message, ranMs, restartInMs: delay }, 'Envoy exited; restarting');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        void cleaned.then(() => {
          if (this.stopping) return;
          this.restartCount++;
          this.spawnEnvoy();
        });
      }, delay);
    };
    child.once('error', (err) => onGone(null, null, err));
    child.once('exit', (code, signal) => onGone(code, signal));
  }

  /**
   * Envoy with hot restart enabled leaves its shared memory region `/dev/shm/envoy_shared_memory_<n>`
   * behind when it exits (even on SIGTERM), and a dynamic base id is a new `<n>` every start. The
   * supervisor never hot-restarts, so after each exit it removes the region of the base id Envoy
   * reported in `--base-id-path` (Envoy 1.x names it after base id × 10).
   */
  private async removeHotRestartMemory(): Promise<void> {
    if (this.opts.baseIdDynamic === false) return;
    try {
      const baseId = Number((await fs.readFile(this.baseIdPath, 'utf8')).trim());
      await fs.rm(this.baseIdPath, { force: true });
      if (Number.isSafeInteger(baseId) && baseId > 0) await fs.rm(`/dev/shm/envoy_shared_memory_${baseId * 10}`, { force: true });
    } catch {
      // no base id written (Envoy failed early): nothing to clean
    }
  }

  private forwardLog(child: ChildProcess): void {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
      lines.on('line', (line) => {
        // Envoy's default format: [time][thread][level][logger] [file:line] message
        const level = /^\[[^\]]*\]\[[^\]]*\]\[(\w+)\]/.exec(line)?.[1];
        if (level === 'warning') this.log.warn({ envoy: line }, 'envoy');
        else if (level === 'error' || level === 'critical') this.log.error({ envoy: line }, 'envoy');
        else this.log.debug({ envoy: line }, 'envoy');
      });
    }
  }

  /**
   * Resolves when the admin endpoint `/ready` answers 200 `LIVE` (Envoy finished initialising).
   * Rejects after `timeoutMs` (default 60 000) or when the supervisor is stopped.
   */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.stopping) throw new Error('Envoy supervisor stopped');
      try {
        const res = await localHttpRequest(`${this.adminUrl}/ready`, { timeoutMs: 1000 });
        const body = res.body.trim();
        if (res.status === 200 && body === 'LIVE') return;
        last = `${res.status} ${body}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Envoy not ready after ${timeoutMs} ms (${this.adminUrl}/ready: ${last})`);
  }

  /**
   * Stops Envoy: lets listeners drain for the drain time (when > 0 and `drain` is not false), then
   * SIGTERM, then SIGKILL after `killTimeoutMs`. Resolves when the process has exited.
   */
  async stop(opts: { drain?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    const exited = this.childExited;
    if (!child || !exited || child.exitCode !== null || child.signalCode !== null) return;
    const drainSeconds = this.opts.drainSeconds ?? 5;
    if (opts.drain !== false && drainSeconds > 0) {
      try {
        await localHttpRequest(`${this.adminUrl}/drain_listeners?graceful`, { method: 'POST', timeoutMs: 1000 });
        this.log.info({ drainSeconds }, 'draining Envoy listeners');
        await Promise.race([exited, new Promise((r) => setTimeout(r, drainSeconds * 1000))]);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'could not drain Envoy listeners; stopping it now');
      }
    }
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => {
      this.log.warn({ pid: child.pid }, 'Envoy did not exit after SIGTERM; sending SIGKILL');
      child.kill('SIGKILL');
    }, this.opts.killTimeoutMs ?? 10_000);
    await exited;
    clearTimeout(killTimer);
  }
}
