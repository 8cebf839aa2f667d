/**
 * The node agent (`skiff agent`, DESIGN.md §8) composed from small start/stop components, started
 * in order and stopped in reverse:
 *
 *   SVID manager → SDS server (fed by SVID rotations) → Envoy bootstrap file → Envoy supervisor
 *
 * Signal handling (SIGTERM → `stop()`) belongs to the CLI.
 */
import path from 'node:path';
import type { Logger } from '../src/observability/logger.js';
import { buildSidecarBootstrap, writeEnvoyBootstrap } from './bootstrap.js';
import { controlPlaneSpiffeId, workloadSpiffeId, type AgentConfig } from './config.js';
import { ensurePrivateDir } from './files.js';
import { startSdsServer, type SdsServer } from './sds.js';
import { EnvoySupervisor, type EnvoySupervisorOptions } from './supervisor.js';
import { SvidManager, type Svid } from './svid.js';

/** File name of the Envoy bootstrap inside the state directory. */
export const BOOTSTRAP_FILE = 'envoy-bootstrap.json';

/** A running agent. */
export interface Agent {
  /** Drains and stops Envoy, stops SDS and SVID renewal. The persisted SVID stays for the next start. */
  stop(): Promise<void>;
  /** The current SVID (changes on renewal). */
  svid(): Svid;
  /** `http://127.0.0.1:<envoyAdminPort>`. */
  readonly envoyAdminUrl: string;
  /** Absolute path of the SDS socket. */
  readonly sdsSocketPath: string;
  /** Path of the Envoy bootstrap written at start. */
  readonly bootstrapPath: string;
  /** The running Envoy's process id (undefined while it is being restarted). */
  envoyPid(): number | undefined;
  /** Resolves when Envoy reports LIVE on its admin `/ready` (default timeout 60 s). */
  ready(timeoutMs?: number): Promise<void>;
}

/** Options of {@link startAgent}. */
export interface StartAgentOptions {
  logger: Logger;
  /**
   * Aborts a start that is still waiting (for example for an unreachable control plane): the
   * pending `startAgent` rejects and nothing is left running. The CLI wires SIGTERM to it.
   */
  signal?: AbortSignal;
  /** Envoy restart and stop timings (tests shorten them). */
  supervisor?: Partial<Pick<EnvoySupervisorOptions, 'restartInitialMs' | 'restartMaxMs' | 'stableAfterMs' | 'killTimeoutMs'>>;
}

/** A part of the agent with a start and a stop (Kuma's component style). */
interface Component {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the agent: obtains (or reuses) the SVID, serves it over SDS, writes the Envoy bootstrap
 * and starts Envoy. Resolves once Envoy has been spawned (use `ready()` to wait for LIVE). On a
 * failure the parts already started are stopped and the error is rethrown (for example
 * `SvidError` when there is neither a valid persisted SVID nor a usable token).
 */
export async function startAgent(config: AgentConfig, opts: StartAgentOptions): Promise<Agent> {
  const log = opts.logger.child({ component: 'agent' });
  const spiffeId = workloadSpiffeId(config);
  const cpId = controlPlaneSpiffeId(config.trustDomain);
  const bootstrapPath = path.resolve(config.stateDir, BOOTSTRAP_FILE);

  const svids = new SvidManager({
    controlPlane: config.controlPlane,
    rootCertPath: config.rootCertPath,
    controlPlaneSpiffeId: cpId,
    spiffeId,
    stateDir: config.stateDir,
    ...(config.tokenPath ? { tokenPath: config.tokenPath } : {}),
    ...(config.certTtlSeconds ? { certTtlSeconds: config.certTtlSeconds } : {}),
    logger: opts.logger,
  });
  let sds: SdsServer | undefined;
  let unsubscribe: (() => void) | undefined;
  const envoy = new EnvoySupervisor({
    envoyPath: config.envoyPath,
    bootstrapPath,
    adminPort: config.envoyAdminPort,
    logger: opts.logger,
    baseIdDynamic: config.envoyBaseIdDynamic,
    drainSeconds: config.envoyDrainSeconds,
    logLevel: config.envoyLogLevel,
    ...opts.supervisor,
  });

  const components: Component[] = [
    {
      name: 'svid',
      start: async () => {
        await svids.start();
      },
      stop: () => svids.stop(),
    },
    {
      name: 'sds',
      start: async () => {
        sds = await startSdsServer({ socketDir: config.socketDir, logger: opts.logger, secrets: svids.current() });
        const server = sds;
        unsubscribe = svids.onRotate((svid) => server.update(svid));
      },
      stop: async () => {
        unsubscribe?.();
        await sds?.stop();
      },
    },
    {
      name: 'bootstrap',
      start: async () => {
        await ensurePrivateDir(config.stateDir);
        await writeEnvoyBootstrap(
          bootstrapPath,
          buildSidecarBootstrap({
            namespace: config.namespace,
            serviceAccount: config.serviceAccount,
            workloadName: config.workloadName,
            workloadIp: config.workloadIp,
            labels: config.labels,
            clusterId: config.clusterId,
            controlPlane: config.controlPlane,
            controlPlaneSpiffeId: cpId,
            sdsSocketPath: path.resolve(config.socketDir, 'sds.sock'),
            adminPort: config.envoyAdminPort,
          }),
        );
      },
      stop: async () => undefined,
    },
    {
      name: 'envoy',
      start: async () => envoy.start(),
      stop: () => envoy.stop(),
    },
  ];

  const started: Component[] = [];
  const onAbort = (): void => void svids.stop();
  if (opts.signal?.aborted) throw new Error('agent start aborted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const stopAll = async (): Promise<void> => {
    for (const c of started.reverse()) {
      try {
        await c.stop();
      } catch (err) {
        log.error({ component: c.name, err: (err as Error).message }, 'component failed to stop');
      }
    }
    started.length = 0;
  };
  try {
    for (const c of components) {
      started.push(c); // pushed first: a half-started component may hold resources; its stop() is safe
      await c.start();
      if (opts.signal?.aborted) throw new Error('agent start aborted');
    }
  } catch (err) {
    log.error({ component: started.at(-1)?.name, err: (err as Error).message }, 'agent failed to start');
    await stopAll();
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  log.info({ spiffeId, serial: svids.current().serial, envoyAdmin: envoy.adminUrl, bootstrapPath }, 'agent started');

  let stopping: Promise<void> | undefined;
  return {
    envoyAdminUrl: envoy.adminUrl,
    sdsSocketPath: path.resolve(config.socketDir, 'sds.sock'),
    bootstrapPath,
    svid: () => svids.current(),
    envoyPid: () => envoy.pid(),
    ready: (timeoutMs?: number) => envoy.ready(timeoutMs),
    stop: () => {
      stopping ??= stopAll().then(() => log.info('agent stopped'));
      return stopping;
    },
  };
}
