/**
 * `skiff agent`: runs the node agent on a VM (DESIGN.md §8). Configuration comes from
 * `/etc/skiff/agent.yaml` (or `--config`), `SKIFF_*` environment variables and these flags, in
 * increasing precedence; the agent obtains its SVID, serves SDS, registers the VM (with
 * `--workload-group`) and reports its probe's health, and supervises Envoy until SIGTERM/SIGINT,
 * then deregisters, drains and stops Envoy.
 */
import type { Command } from 'commander';
import { loadAgentConfig, startAgent, type AgentConfigInput } from '../../agents/index.js';
import { startProxylessAgent } from '../../agents/proxyless/agent.js';
import { createLogger } from '../observability/logger.js';
import { parseDurationSeconds } from './duration.js';
import { collect, parsePort } from './options.js';

interface AgentFlags {
  config?: string;
  controlPlane?: string;
  rootCert?: string;
  tokenFile?: string;
  namespace?: string;
  serviceAccount?: string;
  workloadName?: string;
  workloadGroup?: string;
  probeHttpGetPath?: string;
  probePort?: number;
  probePeriod?: string;
  workloadIp?: string;
  trustDomain?: string;
  clusterId?: string;
  label: string[];
  stateDir?: string;
  socketDir?: string;
  envoyPath?: string;
  envoyAdminPort?: number;
  readinessPort?: number;
  readinessAddress?: string;
  certTtl?: string;
  logLevel?: string;
  xds?: string;
  proxy?: string;
  ztunnelPath?: string;
  sessionTokenTtl?: string;
  proxyless?: boolean;
}

/** Flag names for config fields whose flag is not the plain kebab-case field name. */
const FLAG_NAMES = {
  rootCertPath: '--root-cert',
  tokenPath: '--token-file',
  certTtlSeconds: '--cert-ttl',
  labels: '--label',
  xdsMode: '--xds',
  sessionTokenTtlSeconds: '--session-token-ttl',
} as const;

/** Adds the `agent` subcommand to `program`. */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the node agent: SVID lifecycle, SDS, Envoy supervision')
    .option('--config <file>', 'agent YAML (default /etc/skiff/agent.yaml if present)')
    .option('--control-plane <host:port>', 'control plane xDS + CA address (TLS)')
    .option('--root-cert <file>', "PEM trust bundle to verify the control plane (the mesh root)")
    .option('--token-file <file>', 'bootstrap token (needed only until the first SVID is persisted)')
    .option('--namespace <ns>', 'workload namespace')
    .option('--service-account <sa>', 'workload service account')
    .option('--workload-name <name>', 'WorkloadEntry name of this VM (not with --workload-group)')
    .option('--workload-group <ns/name>', 'register this VM into a WorkloadGroup (the control plane creates and names its WorkloadEntry)')
    .option('--probe-port <port>', "probe the app on 127.0.0.1:<port> and report its health (TCP connect, or HTTP GET with --probe-http-get-path)", parsePort)
    .option('--probe-http-get-path <path>', 'with --probe-port: probe with HTTP GET <path> (2xx/3xx = healthy)')
    .option('--probe-period <duration>', 'with --probe-port: time between probes (default 10s)')
    .option('--workload-ip <ip>', "this VM's address")
    .option('--trust-domain <td>', 'SPIFFE trust domain (default cluster.local)')
    .option('--cluster-id <id>', 'CLUSTER_ID node metadata (default skiff)')
    .option('--label <k=v>', 'workload label (repeatable)', collect, [])
    .option('--state-dir <dir>', 'SVID and bootstrap (default /var/lib/skiff-agent)')
    .option('--socket-dir <dir>', 'SDS socket directory, short path (default /run/skiff-agent)')
    .option('--envoy-path <file>', 'Envoy binary (default: ENVOY_PATH, the project venv, or envoy on PATH)')
    .option('--envoy-admin-port <port>', 'Envoy admin port on 127.0.0.1 (default 15000)', parsePort)
    .option('--cert-ttl <duration>', 'requested SVID lifetime, e.g. 1h (CA default 24h)')
    .option('--readiness-port <port>', 'readiness endpoint GET /healthz/ready (default 15021; 0 turns it off)', parsePort)
    .option('--readiness-address <ip>', 'address of the readiness endpoint (default: the workload IP)')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .option('--xds <mode>', 'ADS flavour Envoy uses: sotw (default) or delta (incremental xDS)')
    .option('--proxy <kind>', 'the VM proxy: envoy (default) or ztunnel (dedicated mode, HBONE)')
    .option('--ztunnel-path <file>', 'ztunnel binary for --proxy ztunnel (default /usr/local/bin/ztunnel)')
    .option('--session-token-ttl <duration>', "lifetime of ztunnel's session tokens, renewed at half life (default 30m, at most 1h)")
    .option('--proxyless', 'proxyless gRPC: no Envoy; serve a local xDS endpoint (<socket-dir>/xds.sock) and write the grpc-js-xds bootstrap and SVID files (<state-dir>/proxyless/)')
    .action(async (flags: AgentFlags) => {
      const labels = flags.label.length > 0 ? Object.fromEntries(flags.label.map((kv) => splitLabel(kv))) : undefined;
      const overrides: AgentConfigInput = {
        controlPlane: flags.controlPlane,
        rootCertPath: flags.rootCert,
        tokenPath: flags.tokenFile,
        namespace: flags.namespace,
        serviceAccount: flags.serviceAccount,
        workloadName: flags.workloadName,
        workloadGroup: flags.workloadGroup,
        probe: probeFromFlags(flags),
        workloadIp: flags.workloadIp,
        trustDomain: flags.trustDomain,
        clusterId: flags.clusterId,
        labels,
        stateDir: flags.stateDir,
        socketDir: flags.socketDir,
        envoyPath: flags.envoyPath,
        envoyAdminPort: flags.envoyAdminPort,
        readinessPort: flags.readinessPort,
        readinessAddress: flags.readinessAddress,
        certTtlSeconds: flags.certTtl ? parseDurationSeconds(flags.certTtl, '--cert-ttl') : undefined,
        logLevel: flags.logLevel,
        xdsMode: flags.xds,
        proxy: flags.proxy,
        ztunnelPath: flags.ztunnelPath,
        sessionTokenTtlSeconds: flags.sessionTokenTtl ? parseDurationSeconds(flags.sessionTokenTtl, '--session-token-ttl') : undefined,
        proxyless: flags.proxyless,
      };
      const config = loadAgentConfig({ file: flags.config, overrides, flagNames: FLAG_NAMES });
      const logger = createLogger({ level: config.logLevel });
      const abort = new AbortController();
      let stopping = false;
      const running: { agent?: { stop(): Promise<void> } } = {};
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping agent');
        abort.abort();
        const done = running.agent ? running.agent.stop() : Promise.resolve();
        done.then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      if (config.proxyless) {
        const proxyless = await startProxylessAgent(config, { logger, signal: abort.signal });
        running.agent = proxyless;
        logger.info({ xds: proxyless.xdsAddress, bootstrap: proxyless.bootstrapPath, spiffeId: proxyless.svid().spiffeId }, 'proxyless agent running');
        return;
      }
      const agent = await startAgent(config, { logger, signal: abort.signal });
      running.agent = agent;
      if (agent.ztunnel) logger.info({ ztunnelPid: agent.envoyPid(), env: agent.ztunnel.env(), spiffeId: agent.svid().spiffeId }, 'agent running with ztunnel');
      else logger.info({ envoyAdmin: agent.envoyAdminUrl, spiffeId: agent.svid().spiffeId }, 'agent running');
    });
}

/** `--probe-port` (+ `--probe-http-get-path`, `--probe-period`) as the config's `probe` block. */
function probeFromFlags(flags: AgentFlags): Record<string, unknown> | undefined {
  if (flags.probePort === undefined) {
    if (flags.probeHttpGetPath !== undefined || flags.probePeriod !== undefined) throw new Error('--probe-http-get-path and --probe-period need --probe-port');
    return undefined;
  }
  const periodSeconds = flags.probePeriod !== undefined ? parseDurationSeconds(flags.probePeriod, '--probe-period') : undefined;
  const method = flags.probeHttpGetPath !== undefined ? { httpGet: { port: flags.probePort, path: flags.probeHttpGetPath } } : { tcpSocket: { port: flags.probePort } };
  return { ...method, ...(periodSeconds !== undefined ? { periodSeconds } : {}) };
}

function splitLabel(kv: string): [string, string] {
  const eq = kv.indexOf('=');
  if (eq <= 0) throw new Error(`--label: expected key=value, got "${kv}"`);
  return [kv.slice(0, eq), kv.slice(eq + 1)];
}
