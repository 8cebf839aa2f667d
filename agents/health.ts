/**
 * Runs a workload probe periodically with Kubernetes readiness-probe semantics (the prober
 * worker of the kubelet, which Istio's agent mirrors for WorkloadGroup probes):
 *
 * - the first run starts `initialDelaySeconds` after {@link HealthChecker.start}; later runs start
 *   `periodSeconds` after the previous one started (or right after it ended when it took longer);
 * - each run has a `timeoutSeconds` deadline; a run that times out is a failure;
 * - the verdict becomes healthy after `successThreshold` consecutive successes and unhealthy
 *   after `failureThreshold` consecutive failures; until then the previous verdict stands (at
 *   the start there is none: the workload is not yet known to be healthy);
 * - every change of verdict (including the first one) is passed to `onChange`.
 */
import type { Logger } from '../src/observability/logger.js';
import { describeProbe, resolveProbe, runProbe, type ProbeMessage, type ProbeResult, type ResolvedProbe } from './probe.js';

/** The current verdict of a {@link HealthChecker}. */
export interface HealthVerdict {
  healthy: boolean;
  /** The message of the run that decided it. */
  message: string;
}

/** Options of {@link HealthChecker}. */
export interface HealthCheckerOptions {
  probe: ProbeMessage;
  logger: Logger;
  /** Called on every change of verdict. */
  onChange(verdict: HealthVerdict): void;
  /** Runs one probe (tests may substitute); default {@link runProbe}. */
  run?: (method: ResolvedProbe['method'], timeoutMs: number) => Promise<ProbeResult>;
  /** Milliseconds per probe "second" (default 1000; tests shorten it to keep real timers short). */
  secondMs?: number;
}

/** A periodic probe with thresholds; see the module comment. */
export class HealthChecker {
  private readonly probe: ResolvedProbe;
  private readonly run: (method: ResolvedProbe['method'], timeoutMs: number) => Promise<ProbeResult>;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private lastResult: boolean | undefined;
  private streak = 0;
  private current: HealthVerdict | undefined;
  private runs = 0;

  /** Throws when the probe has no method the agent runs. */
  constructor(private readonly opts: HealthCheckerOptions) {
    const p = resolveProbe(opts.probe);
    const scale = (opts.secondMs ?? 1000) / 1000;
    this.probe = { ...p, initialDelayMs: p.initialDelayMs * scale, timeoutMs: p.timeoutMs * scale, periodMs: p.periodMs * scale };
    this.run = opts.run ?? runProbe;
  }

  /** Starts probing (after the initial delay). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.opts.logger.info({ probe: describeProbe(this.probe.method), periodMs: this.probe.periodMs, timeoutMs: this.probe.timeoutMs }, 'workload probe started');
    this.schedule(this.probe.initialDelayMs);
  }

  /** Stops probing; a run in flight finishes but changes nothing. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The current verdict, or undefined before the thresholds decided one. */
  verdict(): HealthVerdict | undefined {
    return this.current;
  }

  /** How many runs completed (tests). */
  completedRuns(): number {
    return this.runs;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    const started = Date.now();
    let result: ProbeResult;
    try {
      result = await this.run(this.probe.method, this.probe.timeoutMs);
    } catch (err) {
      result = { healthy: false, message: `probe failed: ${(err as Error).message}` };
    }
    if (this.stopped) return;
    this.runs++;
    this.record(result);
    this.schedule(Math.max(0, this.probe.periodMs - (Date.now() - started)));
  }

  private record(result: ProbeResult): void {
    if (result.healthy === this.lastResult) this.streak++;
    else this.streak = 1;
    this.lastResult = result.healthy;
    const threshold = result.healthy ? this.probe.successThreshold : this.probe.failureThreshold;
    if (this.streak < threshold) return;
    if (this.current?.healthy === result.healthy) {
      this.current = { healthy: result.healthy, message: this.current.message };
      return;
    }
    this.current = { healthy: result.healthy, message: result.message };
    this.opts.logger.info({ healthy: result.healthy, message: result.message }, result.healthy ? 'workload probe: healthy' : 'workload probe: unhealthy');
    try {
      this.opts.onChange(this.current);
    } catch (err) {
      this.opts.logger.error({ err }, 'health change listener failed');
    }
  }
}
