/**
 * `skiff agent --proxyless` (issue 8 §2): the node agent for a VM whose applications use proxyless
 * gRPC (grpc-js-xds) instead of an Envoy sidecar. Components, started in order, stopped in reverse:
 *
 *   SVID manager → credential files (rewritten on every renewal) → local xDS endpoint
 *   (agents/xds-proxy, `<socketDir>/xds.sock`, forwarding to the control plane with the SVID)
 *   → grpc-js-xds bootstrap + env file (`<stateDir>/proxyless/`)
 *
 * Applications start with the variables of `grpc-xds.env` (`GRPC_XDS_BOOTSTRAP`, …). A static
 * `workloadName` names the WorkloadEntry; WorkloadGroup auto-registration and probes are not
 * part of this mode yet (a clear error says so).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../src/observability/logger.js';
import { channelOptionsFor, controlPlaneCredentials } from '../ca-client.js';
import { controlPlaneSpiffeId, splitHostPort, workloadSpiffeId, type AgentConfig } from '../config.js';
import { ensurePrivateDir } from '../files.js';
import { collectStartupGarbage } from '../memory.js';
import { SvidManager, type Svid } from '../svid.js';
import { startXdsProxy, type XdsProxy } from '../xds-proxy/forwarder.js';
import { PROXYLESS_FILES, grpcXdsEnv, writeGrpcBootstrap } from './bootstrap.js';
import { writeProxylessCredentials } from './credentials.js';

/** Socket file name of the local xDS endpoint inside `socketDir`. */
export const XDS_SOCKET = 'xds.sock';
/** Directory (inside `stateDir`) of the bootstrap and credential files. */
export const PROXYLESS_DIR = 'proxyless';

/** A running proxyless agent. */
export interface ProxylessAgent {
  svid(): Svid;
  /** `unix:///<socketDir>/xds.sock`. */
  readonly xdsAddress: string;
  /** Absolute path of `grpc-bootstrap.json`. */
  readonly bootstrapPath: string;
  /** Absolute path of `grpc-xds.env` (a systemd EnvironmentFile). */
  readonly envPath: string;
  /** The environment an application needs (`GRPC_XDS_BOOTSTRAP`, `GRPC_XDS_EXPERIMENTAL_RBAC`). */
  readonly env: Record<string, string>;
  /** Stops forwarding and renewal; the files stay for the next start. */
  stop(): Promise<void>;
}

/** Options of {@link startProxylessAgent}. */
export interface StartProxylessAgentOptions {
  logger: Logger;
  signal?: AbortSignal;
}

/**
 * Starts the proxyless agent. Resolves once the bootstrap is written and the local xDS endpoint
 * listens. Throws `SvidError` (no SVID obtainable) or an `Error` for an unsupported setting
 * (`workloadGroup`, `probe`, `proxy: ztunnel`); whatever was started is stopped first.
 */
export async function startProxylessAgent(config: AgentConfig, opts: StartProxylessAgentOptions): Promise<ProxylessAgent> {
  const log = opts.logger.child({ component: 'agent', mode: 'proxyless' });
  if (config.workloadGroup !== undefined || config.probe !== undefined || config.workloadName === undefined) {
    throw new Error('--proxyless: give --workload-name (WorkloadGroup registration and probes are not supported in proxyless mode yet)');
  }
  const proxyKind = (config as { proxy?: string }).proxy;
  if (proxyKind !== undefined && proxyKind !== 'envoy') throw new Error(`--proxyless runs no proxy; it cannot be combined with --proxy ${proxyKind}`);
  const workloadName = config.workloadName;
  const cpId = controlPlaneSpiffeId(config.trustDomain);
  const dir = path.resolve(config.stateDir, PROXYLESS_DIR);
  const svids = new SvidManager({
    controlPlane: config.controlPlane,
    rootCertPath: config.rootCertPath,
    controlPlaneSpiffeId: cpId,
    spiffeId: workloadSpiffeId(config),
    stateDir: config.stateDir,
    ...(config.tokenPath ? { tokenPath: config.tokenPath } : {}),
    ...(config.certTtlSeconds ? { certTtlSeconds: config.certTtlSeconds } : {}),
    logger: opts.logger,
  });
  let proxy: XdsProxy | undefined;
  let unsubscribe: (() => void) | undefined;
  const stopAll = async (): Promise<void> => {
    unsubscribe?.();
    await proxy?.stop();
    await svids.stop();
  };
  const onAbort = (): void => void svids.stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await svids.start();
    if (opts.signal?.aborted) throw new Error('agent start aborted');
    await ensurePrivateDir(config.stateDir);
    await writeProxylessCredentials(dir, svids.current());
    unsubscribe = svids.onRotate((svid) => {
      writeProxylessCredentials(dir, svid).then(
        () => log.info({ serial: svid.serial }, 'proxyless credential files rotated'),
        (err: unknown) => log.error({ err: (err as Error).message }, 'writing the rotated proxyless credential files failed'),
      );
    });
    const controlPlaneHost = splitHostPort(config.controlPlane)?.host;
    proxy = await startXdsProxy({
      listen: `unix:${path.resolve(config.socketDir, XDS_SOCKET)}`,
      upstream: config.controlPlane,
      channelOptions: channelOptionsFor(config.controlPlane),
      credentials: () => {
        const svid = svids.current();
        return controlPlaneCredentials({
          rootsPem: fs.readFileSync(config.rootCertPath, 'utf8'),
          controlPlaneSpiffeId: cpId,
          client: { keyPem: svid.keyPem, certChainPem: svid.certChainPem },
          ...(controlPlaneHost ? { host: controlPlaneHost } : {}),
        });
      },
      logger: opts.logger,
    });
    const { bootstrapPath, envPath } = await writeGrpcBootstrap({
      namespace: config.namespace,
      serviceAccount: config.serviceAccount,
      workloadName,
      workloadIp: config.workloadIp,
      labels: config.labels,
      clusterId: config.clusterId,
      xdsAddress: proxy.address,
      credentialsDir: dir,
    });
    collectStartupGarbage(); // start-up garbage freed now, not seconds later (agents/memory.ts)
    log.info({ spiffeId: svids.current().spiffeId, xds: proxy.address, bootstrapPath, envFile: envPath }, `proxyless agent started; start applications with the variables in ${PROXYLESS_FILES.env}`);
    const xdsAddress = proxy.address;
    let stopping: Promise<void> | undefined;
    return {
      svid: () => svids.current(),
      xdsAddress,
      bootstrapPath,
      envPath,
      env: grpcXdsEnv(bootstrapPath),
      stop: () => {
        stopping ??= stopAll().then(() => log.info('agent stopped'));
        return stopping;
      },
    };
  } catch (err) {
    log.error({ err: (err as Error).message }, 'proxyless agent failed to start');
    await stopAll();
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
