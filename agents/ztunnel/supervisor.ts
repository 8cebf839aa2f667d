/**
 * Runs ztunnel as a child process and keeps it running (DESIGN.md §8), with the Envoy
 * supervisor's restart policy (agents/supervisor.ts): after an exit it is restarted with
 * exponential back-off (1 s doubling to 30 s, back to 1 s after a run that lasted
 * `stableAfterMs`). ztunnel gets exactly the environment it is given ({@link ztunnelEnvironment})
 * and no arguments. Its log lines (`<time>\t<level>\t<target>\t<message>`, level in lower case)
 * go to pino: warn → warn, error → error, the rest → debug. `stop()` sends SIGTERM (ztunnel drains on it) and SIGKILL
 * after `killTimeoutMs`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { Logger } from '../../src/observability/logger.js';
import { localHttpRequest } from '../local-http.js';

/** ztunnel's readiness port (hard-coded in ztunnel, `DEFAULT_READINESS_PORT`). */
export const ZTUNNEL_READINESS_PORT = 15021;
/** ztunnel's admin port on localhost (`DEFAULT_ADMIN_PORT`). */
export const ZTUNNEL_ADMIN_PORT = 15000;

/** Options of {@link ZtunnelSupervisor}. */
export interface ZtunnelSupervisorOptions {
  ztunnelPath: string;
  env: Record<string, string>;
  logger: Logger;
  /** Host of ztunnel's readiness endpoint for `ready()` (default 127.0.0.1; it binds every address). */
  readinessHost?: string;
  restartInitialMs?: number;
  restartMaxMs?: number;
  stableAfterMs?: number;
  killTimeoutMs?: number;
}

/** Supervises one ztunnel process. Not reusable after `stop()`. */
export class ZtunnelSupervisor {
  private child: ChildProcess | undefined;
  private childExited: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private nextDelayMs: number;
  private stopping = false;
  private started = false;
  private restartCount = 0;
  private readonly log: Logger;
  /** `http://<host>:15021/healthz/ready`. */
  readonly readinessUrl: string;

  constructor(private readonly opts: ZtunnelSupervisorOptions) {
    this.log = opts.logger.child({ component: 'ztunnel' });
    this.nextDelayMs = opts.restartInitialMs ?? 1000;
    const host = opts.readinessHost ?? '127.0.0.1';
    this.readinessUrl = `http://${host.includes(':') ? `[${host}]` : host}:${ZTUNNEL_READINESS_PORT}/healthz/ready`;
  }

  /** The running ztunnel's process id, undefined between an exit and its restart. */
  pid(): number | undefined {
    return this.child?.pid;
  }

  /** How many times ztunnel was restarted after exiting on its own. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Starts ztunnel (once); it is restarted whenever it exits until `stop()`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.spawnZtunnel();
  }

  private spawnZtunnel(): void {
    if (this.stopping) return;
    const startedAt = Date.now();
    const child = spawn(this.opts.ztunnelPath, [], { env: this.opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let resolveExit!: () => void;
    this.childExited = new Promise<void>((resolve) => (resolveExit = resolve));
    this.forwardLog(child);
    if (child.pid) this.log.info({ pid: child.pid, ztunnel: this.opts.ztunnelPath, workload: this.opts.env['PROXY_WORKLOAD_INFO'] }, 'ztunnel started');
    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
      if (gone) return;
      gone = true;
      if (this.child === child) this.child = undefined;
      resolveExit();
      if (this.stopping) {
        this.log.info({ code, signal }, 'ztunnel stopped');
        return;
      }
      const ranMs = Date.now() - startedAt;
      if (ranMs >= (this.opts.stableAfterMs ?? 60_000)) this.nextDelayMs = this.opts.restartInitialMs ?? 1000;
      const delay = this.nextDelayMs;
      this.nextDelayMs = Math.min(this.opts.restartMaxMs ?? 30_000, delay * 2);
      this.log.warn({ code, signal, err: err?.message, ranMs, restartInMs: delay }, 'ztunnel exited; restarting');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this.stopping) return;
        this.restartCount++;
        this.spawnZtunnel();
      }, delay);
    };
    child.once('error', (err) => onGone(null, null, err));
    child.once('exit', (code, signal) => onGone(code, signal));
  }

  private forwardLog(child: ChildProcess): void {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
      lines.on('line', (line) => {
        // ztunnel's format: 2026-01-01T00:00:00.000000Z<TAB>warn<TAB>xds::client<TAB>message
        const level = /^\S+\s+(trace|debug|info|warn|error)\s/i.exec(line)?.[1]?.toLowerCase();
        if (level === 'warn') this.log.warn({ ztunnel: line }, 'ztunnel');
        else if (level === 'error') this.log.error({ ztunnel: line }, 'ztunnel');
        else this.log.debug({ ztunnel: line }, 'ztunnel');
      });
    }
  }

  /** Resolves when ztunnel's `/healthz/ready` answers 200 (it has both xDS types and its certificate). */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.stopping) throw new Error('ztunnel supervisor stopped');
      try {
        const res = await localHttpRequest(this.readinessUrl, { timeoutMs: 1000 });
        const body = res.body.trim();
        if (res.status === 200) return;
        last = `${res.status} ${body}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`ztunnel not ready after ${timeoutMs} ms (${this.readinessUrl}: ${last})`);
  }

  /** SIGTERM, then SIGKILL after `killTimeoutMs` (default 10 000); resolves when ztunnel has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    const exited = this.childExited;
    if (!child || !exited || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => {
      this.log.warn({ pid: child.pid }, 'ztunnel did not exit after SIGTERM; sending SIGKILL');
      child.kill('SIGKILL');
    }, this.opts.killTimeoutMs ?? 10_000);
    await exited;
    clearTimeout(killTimer);
  }
}
