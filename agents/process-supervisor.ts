/**
 * Keeps one proxy process (Envoy or ztunnel) running, as the node agent must (DESIGN.md §8): after
 * an exit it is restarted with exponential back-off (`restartInitialMs`, default 1 s, doubling to
 * `restartMaxMs`, default 30 s; back to the initial delay after a run that lasted `stableAfterMs`,
 * default 60 s); each line it writes goes to pino at the level `levelOf` reads from it (warn,
 * error, else debug); `stop()` runs an optional drain step, sends SIGTERM and, after
 * `killTimeoutMs` (default 10 s), SIGKILL, and resolves when the process has exited.
 *
 * The proxy-specific parts (command line, environment, log format, readiness URL, clean-up after
 * an exit, draining) come from the caller: see `supervisor.ts` (Envoy) and `ztunnel/supervisor.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { Logger } from '../src/observability/logger.js';
import { localHttpRequest } from './local-http.js';

/** Restart and stop timing shared by every supervised proxy (milliseconds). */
export interface RestartPolicy {
  /** First restart delay (default 1000 ms), doubled after each quick exit. */
  restartInitialMs?: number;
  /** Longest restart delay (default 30 000 ms). */
  restartMaxMs?: number;
  /** A run at least this long resets the restart delay (default 60 000 ms). */
  stableAfterMs?: number;
  /** Time between SIGTERM and SIGKILL on stop (default 10 000 ms). */
  killTimeoutMs?: number;
}

/** What {@link ProcessSupervisor} runs and how it reads the process's output. */
export interface ProcessSpec extends RestartPolicy {
  /** Short name for logs and errors: `Envoy`, `ztunnel`. */
  name: string;
  command: string;
  args: () => string[];
  /** The child's whole environment; unset: the agent's own. */
  env?: Record<string, string>;
  logger: Logger;
  /** The log level of one output line (`warn`, `error`, anything else is logged at debug). */
  levelOf: (line: string) => 'warn' | 'error' | 'debug';
  /** Extra fields of the "started" log line. */
  startedFields?: Record<string, unknown>;
  /** Runs after each exit, before a restart may happen (e.g. removing Envoy's shared memory). */
  afterExit?: () => Promise<void>;
}

/** Supervises one process. Not reusable after `stop()`. */
export class ProcessSupervisor {
  private child: ChildProcess | undefined;
  private childExited: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private nextDelayMs: number;
  private stopping = false;
  private started = false;
  private restartCount = 0;
  /** The child logger (`component: <name in lower case>`). */
  readonly log: Logger;

  constructor(private readonly spec: ProcessSpec) {
    this.log = spec.logger.child({ component: spec.name.toLowerCase() });
    this.nextDelayMs = spec.restartInitialMs ?? 1000;
  }

  /** The running process id, undefined between an exit and its restart. */
  pid(): number | undefined {
    return this.child?.pid;
  }

  /** How many times the process was restarted after exiting on its own. */
  get restarts(): number {
    return this.restartCount;
  }

  /** True once `stop()` was called. */
  get isStopping(): boolean {
    return this.stopping;
  }

  /** Starts the process (once); it is restarted whenever it exits until `stop()`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.spawnChild();
  }

  private spawnChild(): void {
    if (this.stopping) return;
    const s = this.spec;
    const startedAt = Date.now();
    const child = spawn(s.command, s.args(), { stdio: ['ignore', 'pipe', 'pipe'], ...(s.env ? { env: s.env } : {}) });
    this.child = child;
    let resolveExit!: () => void;
    this.childExited = new Promise<void>((resolve) => (resolveExit = resolve));
    this.forwardLog(child);
    if (child.pid) this.log.info({ pid: child.pid, command: s.command, ...s.startedFields }, `${s.name} started`);

    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
      if (gone) return;
      gone = true;
      if (this.child === child) this.child = undefined;
      const cleaned = (s.afterExit ? s.afterExit().catch(() => undefined) : Promise.resolve()).finally(resolveExit);
      if (this.stopping) {
        this.log.info({ code, signal }, `${s.name} stopped`);
        return;
      }
      const ranMs = Date.now() - startedAt;
      if (ranMs >= (s.stableAfterMs ?? 60_000)) this.nextDelayMs = s.restartInitialMs ?? 1000;
      const delay = this.nextDelayMs;
      this.nextDelayMs = Math.min(s.restartMaxMs ?? 30_000, delay * 2);
      this.log.warn({ code, signal, err: err?.message, ranMs, restartInMs: delay }, `${s.name} exited; restarting`);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        void cleaned.then(() => {
          if (this.stopping) return;
          this.restartCount++;
          this.spawnChild();
        });
      }, delay);
    };
    child.once('error', (err) => onGone(null, null, err));
    child.once('exit', (code, signal) => onGone(code, signal));
  }

  private forwardLog(child: ChildProcess): void {
    const key = this.spec.name.toLowerCase();
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
      lines.on('line', (line) => {
        const level = this.spec.levelOf(line);
        this.log[level]({ [key]: line }, key);
      });
    }
  }

  /**
   * Polls `url` every `intervalMs` until `accept(status, body)` holds. Rejects after `timeoutMs`
   * (naming the last answer) or when the supervisor is stopped.
   */
  async waitReady(url: string, accept: (status: number, body: string) => boolean, timeoutMs: number, intervalMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.stopping) throw new Error(`${this.spec.name} supervisor stopped`);
      try {
        const res = await localHttpRequest(url, { timeoutMs: 1000 });
        const body = res.body.trim();
        if (accept(res.status, body)) return;
        last = `${res.status} ${body}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    throw new Error(`${this.spec.name} not ready after ${timeoutMs} ms (${url}: ${last})`);
  }

  /**
   * Stops the process: `drain(exited)` first when given (it may wait on `exited`), then SIGTERM,
   * then SIGKILL after `killTimeoutMs`. Resolves when the process has exited.
   */
  async stop(drain?: (exited: Promise<void>) => Promise<void>): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    const exited = this.childExited;
    if (!child || !exited || child.exitCode !== null || child.signalCode !== null) return;
    if (drain) await drain(exited);
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => {
      this.log.warn({ pid: child.pid }, `${this.spec.name} did not exit after SIGTERM; sending SIGKILL`);
      child.kill('SIGKILL');
    }, this.spec.killTimeoutMs ?? 10_000);
    await exited;
    clearTimeout(killTimer);
  }
}
