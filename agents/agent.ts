/**
 * The node agent (`skiff agent`, DESIGN.md §8) composed from small start/stop components, started
 * in order and stopped in reverse:
 *
 *   SVID manager → SDS server (fed by SVID rotations) → readiness endpoint (agents/readiness.ts)
 *   → registration → Envoy bootstrap file → Envoy supervisor
 *
 * With `proxy: ztunnel` (issue 6 §3, agents/ztunnel) there is no SDS, no Envoy bootstrap and no
 * agent readiness endpoint (ztunnel serves its own on 15021): the agent registers the workload
 * with the HBONE tunnel label, writes ztunnel's root and session-token files (the token renewed at
 * half life with the SVID) and supervises ztunnel in dedicated mode instead of Envoy.
 *
 * Registration (issue 4 §3) runs when the agent has a `workloadGroup` (the control plane creates
 * the VM's WorkloadEntry and names it before the bootstrap is written, so Envoy's WORKLOAD_NAME
 * is that entry) or a `probe` (health reports for a static WorkloadEntry). The probe (the
 * group's, else the configured one) runs against the app and its verdicts go to the control
 * plane. `stop()` deregisters first (the workload leaves EDS at once), then drains Envoy.
 *
 * Signal handling (SIGTERM → `stop()`) belongs to the CLI.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../src/observability/logger.js';
import { buildSidecarBootstrap, writeEnvoyBootstrap } from './bootstrap.js';
import { controlPlaneCredentials } from './ca-client.js';
import { controlPlaneSpiffeId, splitHostPort, workloadGroupRef, workloadSpiffeId, type AgentConfig } from './config.js';
import { ensurePrivateDir } from './files.js';
import { HealthChecker, type HealthVerdict } from './health.js';
import { collectStartupGarbage } from './memory.js';
import type { ProbeMessage } from './probe.js';
import { RegistrationClient, RegistrationRefusedError, type RegistrationClientOptions } from './registration.js';
import { startSdsServer, type SdsServer } from './sds.js';
import { startEnvoyReadiness, type ReadinessServer } from './readiness.js';
import { EnvoySupervisor, type EnvoySupervisorOptions } from './supervisor.js';
import { SvidManager, type Svid } from './svid.js';
import { ZTUNNEL_WORKLOAD_LABELS, ZtunnelProxy } from './ztunnel/index.js';

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
  /** The WorkloadEntry name Envoy reports (named by the control plane for a WorkloadGroup). */
  readonly workloadName: string;
  /** The probe's current verdict; undefined without a probe or before its first verdict. */
  health(): HealthVerdict | undefined;
  /** The ztunnel of `proxy: ztunnel` (files, session token, process); undefined for Envoy. */
  readonly ztunnel?: ZtunnelProxy;
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
  /** Registration reconnect timings (tests shorten them). */
  registration?: Partial<Pick<RegistrationClientOptions, 'retryInitialMs' | 'retryMaxMs'>>;
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
  let readiness: ReadinessServer | undefined;
  let unsubscribe: (() => void) | undefined;
  const group = workloadGroupRef(config);
  let workloadName = config.workloadName ?? '';
  let labels = config.labels;
  let registration: RegistrationClient | undefined;
  let checker: HealthChecker | undefined;
  let checkedProbe = '';
  // (Re)starts the probe when the one to run changed; verdicts go to the control plane.
  const runProbe = (probe: ProbeMessage | undefined): void => {
    const key = JSON.stringify(probe ?? null);
    if (key === checkedProbe) return;
    checkedProbe = key;
    checker?.stop();
    checker = undefined;
    if (!probe) return;
    const client = registration;
    checker = new HealthChecker({ probe, logger: log, onChange: (v) => client?.report({ healthy: v.healthy, message: v.message }) });
    checker.start();
  };
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
  const ztunnel =
    config.proxy === 'ztunnel'
      ? new ZtunnelProxy({
          ztunnelPath: config.ztunnelPath,
          stateDir: config.stateDir,
          controlPlane: config.controlPlane,
          rootCertPath: config.rootCertPath,
          controlPlaneSpiffeId: cpId,
          namespace: config.namespace,
          serviceAccount: config.serviceAccount,
          workloadIp: config.workloadIp,
          clusterId: config.clusterId,
          logLevel: config.logLevel,
          sessionTokenTtlSeconds: config.sessionTokenTtlSeconds,
          svid: () => svids.current(),
          logger: opts.logger,
          ...(opts.supervisor ? { supervisor: opts.supervisor } : {}),
        })
      : undefined;
  // A missing or non-executable ztunnel fails the start before anything runs.
  ztunnel?.checkBinary();
  const registerLabels = ztunnel ? { ...config.labels, ...ZTUNNEL_WORKLOAD_LABELS } : config.labels;
  if (ztunnel && group === undefined) {
    log.warn({ workloadEntry: `${config.namespace}/${config.workloadName ?? ''}`, label: ZTUNNEL_WORKLOAD_LABELS }, 'ztunnel mode with a static WorkloadEntry: the entry itself must carry the tunnel label for peers to use HBONE');
  }

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
        if (ztunnel) return; // ztunnel gets its certificates from the CA itself
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
      // GET /healthz/ready on readinessAddress (default workloadIp):readinessPort (agents/readiness.ts).
      name: 'readiness',
      start: async () => {
        if (config.readinessPort === 0 || !sds) return;
        readiness = await startEnvoyReadiness({ host: config.readinessAddress ?? config.workloadIp, port: config.readinessPort, adminUrl: envoy.adminUrl, spiffeId, sds, logger: opts.logger });
      },
      stop: async () => readiness?.stop(),
    },
    {
      name: 'registration',
      start: async () => {
        if (group === undefined && config.probe === undefined) return;
        const controlPlaneHost = splitHostPort(config.controlPlane)?.host;
        registration = new RegistrationClient({
          address: config.controlPlane,
          credentials: () => {
            const svid = svids.current();
            return controlPlaneCredentials({
              rootsPem: fs.readFileSync(config.rootCertPath, 'utf8'),
              controlPlaneSpiffeId: cpId,
              client: { keyPem: svid.keyPem, certChainPem: svid.certChainPem },
              ...(controlPlaneHost ? { host: controlPlaneHost } : {}),
            });
          },
          register:
            group !== undefined
              ? { workloadGroup: group, address: config.workloadIp, labels: registerLabels }
              : { workloadEntry: `${config.namespace}/${config.workloadName ?? ''}`, address: config.workloadIp },
          logger: opts.logger,
          ...opts.registration,
        });
        registration.onStatus((s) => runProbe(s.probe ?? config.probe));
        if (group === undefined) {
          // A static entry needs nothing from the control plane to start: probe at once, and
          // report once the stream is up (verdicts wait in the client until then).
          runProbe(config.probe);
          registration.start().catch((err: unknown) => {
            if (err instanceof RegistrationRefusedError) log.error({ err: err.message }, 'health reporting refused by the control plane');
          });
          return;
        }
        // The control plane names the auto-registered entry (Envoy's WORKLOAD_NAME) and sends
        // the group's probe: wait for it before writing the bootstrap.
        const status = await registration.start(opts.signal);
        workloadName = status.workloadName;
        labels = status.labels ?? config.labels;
        runProbe(status.probe ?? config.probe);
      },
      stop: async () => {
        checker?.stop();
        registration?.stop();
      },
    },
    {
      name: 'bootstrap',
      start: async () => {
        await ensurePrivateDir(config.stateDir);
        if (ztunnel) {
          await ztunnel.prepare(workloadName);
          return;
        }
        await writeEnvoyBootstrap(
          bootstrapPath,
          buildSidecarBootstrap({
            namespace: config.namespace,
            serviceAccount: config.serviceAccount,
            workloadName,
            workloadIp: config.workloadIp,
            labels,
            clusterId: config.clusterId,
            controlPlane: config.controlPlane,
            controlPlaneSpiffeId: cpId,
            sdsSocketPath: path.resolve(config.socketDir, 'sds.sock'),
            adminPort: config.envoyAdminPort,
            xdsMode: config.xdsMode,
          }),
        );
      },
      stop: async () => undefined,
    },
    {
      name: 'envoy',
      start: async () => (ztunnel ? ztunnel.start() : envoy.start()),
      stop: () => (ztunnel ? ztunnel.stop() : envoy.stop()),
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
  // Start-up garbage (config parse, the bootstrap's descriptor set) freed now, not seconds later.
  collectStartupGarbage();
  if (ztunnel) log.info({ spiffeId, serial: svids.current().serial, proxy: 'ztunnel', ztunnelPath: config.ztunnelPath, workloadName }, 'agent started');
  else log.info({ spiffeId, serial: svids.current().serial, envoyAdmin: envoy.adminUrl, bootstrapPath, workloadName }, 'agent started');

  let stopping: Promise<void> | undefined;
  return {
    envoyAdminUrl: envoy.adminUrl,
    sdsSocketPath: path.resolve(config.socketDir, 'sds.sock'),
    bootstrapPath,
    svid: () => svids.current(),
    envoyPid: () => (ztunnel ? ztunnel.pid() : envoy.pid()),
    ready: (timeoutMs?: number) => (ztunnel ? ztunnel.ready(timeoutMs) : envoy.ready(timeoutMs)),
    ...(ztunnel ? { ztunnel } : {}),
    workloadName,
    health: () => checker?.verdict(),
    stop: () => {
      // Deregister first: the workload leaves EDS while Envoy still drains its connections.
      stopping ??= (async () => {
        readiness?.markDraining();
        checker?.stop();
        await registration?.leave('agent stopping');
        await stopAll();
      })().then(() => log.info('agent stopped'));
      return stopping;
    },
  };
}
