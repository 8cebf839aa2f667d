/**
 * `skiff agent`: runs the node agent on a VM (DESIGN.md §8). Configuration comes from
 * `/etc/skiff/agent.yaml` (or `--config`), `SKIFF_*` environment variables and these flags, in
 * increasing precedence; the agent obtains its SVID, serves SDS and supervises Envoy until
 * SIGTERM/SIGINT, then drains and stops Envoy.
 */
import type { Command } from 'commander';
import { loadAgentConfig, startAgent, type AgentConfigInput } from '../../agents/index.js';
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
  workloadIp?: string;
  trustDomain?: string;
  clusterId?: string;
  label: string[];
  stateDir?: string;
  socketDir?: string;
  envoyPath?: string;
  envoyAdminPort?: number;
  certTtl?: string;
  logLevel?: string;
}

/** Flag names for config fields whose flag is not the plain kebab-case field name. */
const FLAG_NAMES = {
  rootCertPath: '--root-cert',
  tokenPath: '--token-file',
  certTtlSeconds: '--cert-ttl',
  labels: '--label',
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
    .option('--workload-name <name>', 'WorkloadEntry name of this VM')
    .option('--workload-ip <ip>', "this VM's address")
    .option('--trust-domain <td>', 'SPIFFE trust domain (default cluster.local)')
    .option('--cluster-id <id>', 'CLUSTER_ID node metadata (default skiff)')
    .option('--label <k=v>', 'workload label (repeatable)', collect, [])
    .option('--state-dir <dir>', 'SVID and bootstrap (default /var/lib/skiff-agent)')
    .option('--socket-dir <dir>', 'SDS socket directory, short path (default /run/skiff-agent)')
    .option('--envoy-path <file>', 'Envoy binary (default: ENVOY_PATH, the project venv, or envoy on PATH)')
    .option('--envoy-admin-port <port>', 'Envoy admin port on 127.0.0.1 (default 15000)', parsePort)
    .option('--cert-ttl <duration>', 'requested SVID lifetime, e.g. 1h (CA default 24h)')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .action(async (flags: AgentFlags) => {
      const labels = flags.label.length > 0 ? Object.fromEntries(flags.label.map((kv) => splitLabel(kv))) : undefined;
      const overrides: AgentConfigInput = {
        controlPlane: flags.controlPlane,
        rootCertPath: flags.rootCert,
        tokenPath: flags.tokenFile,
        namespace: flags.namespace,
        serviceAccount: flags.serviceAccount,
        workloadName: flags.workloadName,
        workloadIp: flags.workloadIp,
        trustDomain: flags.trustDomain,
        clusterId: flags.clusterId,
        labels,
        stateDir: flags.stateDir,
        socketDir: flags.socketDir,
        envoyPath: flags.envoyPath,
        envoyAdminPort: flags.envoyAdminPort,
        certTtlSeconds: flags.certTtl ? parseDurationSeconds(flags.certTtl, '--cert-ttl') : undefined,
        logLevel: flags.logLevel,
      };
      const config = loadAgentConfig({ file: flags.config, overrides, flagNames: FLAG_NAMES });
      const logger = createLogger({ level: config.logLevel });
      const abort = new AbortController();
      let stopping = false;
      const running: { agent?: Awaited<ReturnType<typeof startAgent>> } = {};
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
      const agent = await startAgent(config, { logger, signal: abort.signal });
      running.agent = agent;
      logger.info({ envoyAdmin: agent.envoyAdminUrl, spiffeId: agent.svid().spiffeId }, 'agent running');
    });
}

function splitLabel(kv: string): [string, string] {
  const eq = kv.indexOf('=');
  if (eq <= 0) throw new Error(`--label: expected key=value, got "${kv}"`);
  return [kv.slice(0, eq), kv.slice(eq + 1)];
}
