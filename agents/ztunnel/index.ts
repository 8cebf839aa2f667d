/**
 * The agent's ztunnel mode (`skiff agent --proxy ztunnel`, issue 6 §3, DESIGN.md §7): instead of
 * an Envoy sidecar, the VM runs an unmodified ztunnel in dedicated mode for its one workload.
 *
 * Files under `<stateDir>/ztunnel/` (directory 0700, files 0600, written atomically):
 * - `root/root-cert.pem`: the PEM bundle verifying the control plane (XDS_ROOT_CA and CA_ROOT_CA),
 *   copied from the agent's `rootCertPath`. In a directory of its own: ztunnel watches the root's
 *   directory and rebuilds its control-plane TLS channel on any change there, which token rewrites
 *   next to it would trigger every time;
 * - `session-token`: a session token for the workload identity (AUTH_TOKEN), obtained with the
 *   agent's SVID and rewritten at half of its lifetime ({@link SessionTokenFile}).
 *
 * Both are written before ztunnel starts: ztunnel treats AUTH_TOKEN as a file only if the file
 * exists at start. The workload registers with label `networking.istio.io/tunnel: http`
 * ({@link ZTUNNEL_WORKLOAD_LABELS}), so the control plane gives it tunnel protocol HBONE and the
 * other proxies reach it on port 15008.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { TUNNEL_LABEL } from '../../src/push/hbone.js';
import type { Logger } from '../../src/observability/logger.js';
import { ensurePrivateDir, writeFileAtomic } from '../files.js';
import type { Svid } from '../svid.js';
import { ztunnelBinaryProblem } from './binary.js';
import { ztunnelEnvironment } from './env.js';
import { SessionTokenFile, type SessionTokenInfo } from './token-file.js';
import { ZtunnelSupervisor, type ZtunnelSupervisorOptions } from './supervisor.js';

export { DEFAULT_ZTUNNEL_PATH, ztunnelBinaryProblem } from './binary.js';
export { ztunnelEnvironment, type ZtunnelEnvInput } from './env.js';
export { SessionTokenFile, requestSessionToken, type SessionTokenInfo } from './token-file.js';
export { ZtunnelSupervisor, ZTUNNEL_READINESS_PORT, ZTUNNEL_ADMIN_PORT } from './supervisor.js';

/** Labels a ztunnel VM registers with: it accepts HBONE (Istio's tunnel label, `src/push/hbone.ts`). */
export const ZTUNNEL_WORKLOAD_LABELS: Readonly<Record<string, string>> = { [TUNNEL_LABEL]: 'http' };

/** Thrown when the ztunnel binary cannot be run; the message says why (no stack trace needed). */
export class ZtunnelBinaryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZtunnelBinaryError';
  }
}

/** Options of {@link ZtunnelProxy}. */
export interface ZtunnelProxyOptions {
  ztunnelPath: string;
  stateDir: string;
  controlPlane: string;
  rootCertPath: string;
  controlPlaneSpiffeId: string;
  namespace: string;
  serviceAccount: string;
  workloadIp: string;
  clusterId: string;
  logLevel: string;
  sessionTokenTtlSeconds: number;
  svid: () => Svid;
  logger: Logger;
  /** Restart and stop timings (tests shorten them). */
  supervisor?: Partial<Pick<ZtunnelSupervisorOptions, 'restartInitialMs' | 'restartMaxMs' | 'stableAfterMs' | 'killTimeoutMs'>>;
}

/** ztunnel for one workload: its files, its session token and its process. */
export class ZtunnelProxy {
  /** `<stateDir>/ztunnel/session-token` (AUTH_TOKEN). */
  readonly tokenPath: string;
  /** `<stateDir>/ztunnel/root/root-cert.pem` (XDS_ROOT_CA, CA_ROOT_CA). */
  readonly rootCertFile: string;
  private tokenFile: SessionTokenFile | undefined;
  private supervisor: ZtunnelSupervisor | undefined;
  private environment: Record<string, string> | undefined;

  constructor(private readonly opts: ZtunnelProxyOptions) {
    const dir = path.resolve(opts.stateDir, 'ztunnel');
    this.tokenPath = path.join(dir, 'session-token');
    this.rootCertFile = path.join(dir, 'root', 'root-cert.pem');
  }

  /** Throws {@link ZtunnelBinaryError} when the binary is missing or not executable. */
  checkBinary(): void {
    const problem = ztunnelBinaryProblem(this.opts.ztunnelPath);
    if (problem) throw new ZtunnelBinaryError(`cannot run ztunnel: ${problem} (set --ztunnel-path)`);
  }

  /**
   * Writes the root and the first session token for `workloadName` and computes ztunnel's
   * environment; the token is renewed from then on. Rejects when the control plane refuses the
   * session token.
   */
  async prepare(workloadName: string): Promise<void> {
    this.checkBinary();
    const dir = path.dirname(this.tokenPath);
    await ensurePrivateDir(dir);
    await ensurePrivateDir(path.dirname(this.rootCertFile));
    await writeFileAtomic(this.rootCertFile, await fs.readFile(this.opts.rootCertPath));
    this.tokenFile = new SessionTokenFile({
      controlPlane: this.opts.controlPlane,
      rootCertPath: this.opts.rootCertPath,
      controlPlaneSpiffeId: this.opts.controlPlaneSpiffeId,
      svid: this.opts.svid,
      tokenPath: this.tokenPath,
      ttlSeconds: this.opts.sessionTokenTtlSeconds,
      logger: this.opts.logger,
    });
    await this.tokenFile.start();
    this.environment = ztunnelEnvironment({
      namespace: this.opts.namespace,
      serviceAccount: this.opts.serviceAccount,
      workloadName,
      workloadIp: this.opts.workloadIp,
      controlPlane: this.opts.controlPlane,
      clusterId: this.opts.clusterId,
      rootCertFile: this.rootCertFile,
      tokenFile: this.tokenPath,
      logLevel: this.opts.logLevel,
    });
  }

  /** Starts and supervises ztunnel (after {@link prepare}). */
  start(): void {
    if (!this.environment) throw new Error('ZtunnelProxy.start() before prepare()');
    this.supervisor = new ZtunnelSupervisor({ ztunnelPath: this.opts.ztunnelPath, env: this.environment, logger: this.opts.logger, readinessHost: this.opts.workloadIp, ...this.opts.supervisor });
    this.supervisor.start();
  }

  /** The environment ztunnel runs with (undefined before {@link prepare}). */
  env(): Readonly<Record<string, string>> | undefined {
    return this.environment;
  }

  /** The token in the file now (no secret). */
  sessionToken(): SessionTokenInfo | undefined {
    return this.tokenFile?.current();
  }

  pid(): number | undefined {
    return this.supervisor?.pid();
  }

  /** Resolves when ztunnel's readiness endpoint (port 15021 on the workload address) answers 200. */
  async ready(timeoutMs?: number): Promise<void> {
    if (!this.supervisor) throw new Error('ztunnel is not started');
    await this.supervisor.ready(timeoutMs);
  }

  /** Stops ztunnel and the token renewal. */
  async stop(): Promise<void> {
    await this.supervisor?.stop();
    this.tokenFile?.stop();
  }
}
