/**
 * Runs Envoy as a child process and keeps it running (DESIGN.md §8):
 * `envoy -c <bootstrap> --use-dynamic-base-id --base-id-path <bootstrap>.base-id --log-level <l>
 * --drain-time-s <n> --local-address-ip-version v4`, restarted after an exit with the shared back-off
 * ({@link ProcessSupervisor}); Envoy's log lines go to pino (warning → warn, error/critical →
 * error, the rest → debug); on `stop()` it drains listeners (`POST /drain_listeners?graceful`) for
 * the drain time, sends SIGTERM and, after a timeout, SIGKILL.
 */
import fs from 'node:fs/promises';
import type { Logger } from '../src/observability/logger.js';
import { localHttpRequest } from './local-http.js';
import { ProcessSupervisor, type RestartPolicy } from './process-supervisor.js';

/** Options of {@link EnvoySupervisor}. */
export interface EnvoySupervisorOptions extends RestartPolicy {
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
}

/** Supervises one Envoy process. Not reusable after `stop()`. */
export class EnvoySupervisor {
  /** `http://127.0.0.1:<adminPort>`. */
  readonly adminUrl: string;
  /** Where Envoy writes the base id it picked (`--base-id-path`), next to the bootstrap. */
  private readonly baseIdPath: string;
  private readonly process: ProcessSupervisor;
  private readonly log: Logger;

  constructor(private readonly opts: EnvoySupervisorOptions) {
    this.adminUrl = `http://127.0.0.1:${opts.adminPort}`;
    this.baseIdPath = `${opts.bootstrapPath}.base-id`;
    this.process = new ProcessSupervisor({
      name: 'Envoy',
      command: opts.envoyPath,
      args: () => this.args(),
      logger: opts.logger,
      levelOf: envoyLogLevel,
      startedFields: { bootstrap: opts.bootstrapPath },
      afterExit: () => this.removeHotRestartMemory(),
      ...pickRestartPolicy(opts),
    });
    this.log = this.process.log;
  }

  /** The running Envoy's process id, undefined between a crash and its restart. */
  pid(): number | undefined {
    return this.process.pid();
  }

  /** How many times Envoy was restarted after exiting on its own. */
  get restarts(): number {
    return this.process.restarts;
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
    this.process.start();
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

  /**
   * Resolves when the admin endpoint `/ready` answers 200 `LIVE` (Envoy finished initialising).
   * Rejects after `timeoutMs` (default 60 000) or when the supervisor is stopped.
   */
  async ready(timeoutMs = 60_000): Promise<void> {
    await this.process.waitReady(`${this.adminUrl}/ready`, (status, body) => status === 200 && body === 'LIVE', timeoutMs, 100);
  }

  /**
   * Stops Envoy: lets listeners drain for the drain time (when > 0 and `drain` is not false), then
   * SIGTERM, then SIGKILL after `killTimeoutMs`. Resolves when the process has exited.
   */
  async stop(opts: { drain?: boolean } = {}): Promise<void> {
    const drainSeconds = this.opts.drainSeconds ?? 5;
    const drain =
      opts.drain !== false && drainSeconds > 0
        ? async (exited: Promise<void>): Promise<void> => {
            try {
              await localHttpRequest(`${this.adminUrl}/drain_listeners?graceful`, { method: 'POST', timeoutMs: 1000 });
              this.log.info({ drainSeconds }, 'draining Envoy listeners');
              await Promise.race([exited, new Promise((r) => setTimeout(r, drainSeconds * 1000))]);
            } catch (err) {
              this.log.warn({ err: (err as Error).message }, 'could not drain Envoy listeners; stopping it now');
            }
          }
        : undefined;
    await this.process.stop(drain);
  }
}

/** Envoy's default log format `[time][thread][level][logger] [file:line] message`, by level. */
function envoyLogLevel(line: string): 'warn' | 'error' | 'debug' {
  const level = /^\[[^\]]*\]\[[^\]]*\]\[(\w+)\]/.exec(line)?.[1];
  return level === 'warning' ? 'warn' : level === 'error' || level === 'critical' ? 'error' : 'debug';
}

/** The {@link RestartPolicy} fields of `o` that are set. */
export function pickRestartPolicy(o: RestartPolicy): RestartPolicy {
  const out: RestartPolicy = {};
  if (o.restartInitialMs !== undefined) out.restartInitialMs = o.restartInitialMs;
  if (o.restartMaxMs !== undefined) out.restartMaxMs = o.restartMaxMs;
  if (o.stableAfterMs !== undefined) out.stableAfterMs = o.stableAfterMs;
  if (o.killTimeoutMs !== undefined) out.killTimeoutMs = o.killTimeoutMs;
  return out;
}
