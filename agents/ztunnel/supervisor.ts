/**
 * Runs ztunnel as a child process and keeps it running (DESIGN.md §8), with the agent's shared
 * restart policy ({@link ProcessSupervisor}: back-off from 1 s doubling to 30 s, reset after a run
 * that lasted `stableAfterMs`). ztunnel gets exactly the environment it is given
 * ({@link ztunnelEnvironment}) and no arguments. Its log lines (`<time>\t<level>\t<target>\t<message>`,
 * level in lower case) go to pino: warn → warn, error → error, the rest → debug. `stop()` sends
 * SIGTERM (ztunnel drains on it) and SIGKILL after `killTimeoutMs`.
 */
import type { Logger } from '../../src/observability/logger.js';
import { ProcessSupervisor, type RestartPolicy } from '../process-supervisor.js';
import { pickRestartPolicy } from '../supervisor.js';

/** ztunnel's readiness port (hard-coded in ztunnel, `DEFAULT_READINESS_PORT`). */
export const ZTUNNEL_READINESS_PORT = 15021;
/** ztunnel's admin port on localhost (`DEFAULT_ADMIN_PORT`). */
export const ZTUNNEL_ADMIN_PORT = 15000;

/** Options of {@link ZtunnelSupervisor}. */
export interface ZtunnelSupervisorOptions extends RestartPolicy {
  ztunnelPath: string;
  env: Record<string, string>;
  logger: Logger;
  /** Host of ztunnel's readiness endpoint for `ready()` (default 127.0.0.1; it binds every address). */
  readinessHost?: string;
}

/** ztunnel's log format `2026-01-01T00:00:00.000000Z<TAB>warn<TAB>xds::client<TAB>message`, by level. */
function ztunnelLogLevel(line: string): 'warn' | 'error' | 'debug' {
  const level = /^\S+\s+(trace|debug|info|warn|error)\s/i.exec(line)?.[1]?.toLowerCase();
  return level === 'warn' ? 'warn' : level === 'error' ? 'error' : 'debug';
}

/** Supervises one ztunnel process. Not reusable after `stop()`. */
export class ZtunnelSupervisor {
  /** `http://<host>:15021/healthz/ready`. */
  readonly readinessUrl: string;
  private readonly process: ProcessSupervisor;

  constructor(opts: ZtunnelSupervisorOptions) {
    const host = opts.readinessHost ?? '127.0.0.1';
    this.readinessUrl = `http://${host.includes(':') ? `[${host}]` : host}:${ZTUNNEL_READINESS_PORT}/healthz/ready`;
    this.process = new ProcessSupervisor({
      name: 'ztunnel',
      command: opts.ztunnelPath,
      args: () => [],
      env: opts.env,
      logger: opts.logger,
      levelOf: ztunnelLogLevel,
      startedFields: { workload: opts.env['PROXY_WORKLOAD_INFO'] },
      ...pickRestartPolicy(opts),
    });
  }

  /** The running ztunnel's process id, undefined between an exit and its restart. */
  pid(): number | undefined {
    return this.process.pid();
  }

  /** How many times ztunnel was restarted after exiting on its own. */
  get restarts(): number {
    return this.process.restarts;
  }

  /** Starts ztunnel (once); it is restarted whenever it exits until `stop()`. */
  start(): void {
    this.process.start();
  }

  /** Resolves when ztunnel's `/healthz/ready` answers 200 (it has both xDS types and its certificate). */
  async ready(timeoutMs = 60_000): Promise<void> {
    await this.process.waitReady(this.readinessUrl, (status) => status === 200, timeoutMs, 200);
  }

  /** SIGTERM, then SIGKILL after `killTimeoutMs` (default 10 000); resolves when ztunnel has exited. */
  async stop(): Promise<void> {
    await this.process.stop();
  }
}
