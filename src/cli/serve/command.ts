/** `skiff serve`: flags → {@link startControlPlane}; stops cleanly on SIGTERM/SIGINT. */
import path from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../observability/logger.js';
import { collect, defaultConfigDir, defaultDataDir, parsePort } from '../options.js';
import { startControlPlane } from './control-plane.js';

interface ServeFlags {
  configDir?: string;
  dataDir?: string;
  caDir?: string;
  trustDomain: string;
  listenAddress: string;
  grpcPort: number;
  monitoringPort: number;
  dnsName: string[];
  ip: string[];
  tokenAudience: string[];
  meshConfig?: string;
  logLevel?: string;
}

/** Adds the `serve` subcommand to `program`. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the control plane: discovery, SPIFFE CA and xDS server')
    .option('--config-dir <dir>', 'directory of mesh YAML to serve and watch (default ./mesh, else examples/basic)')
    .option('--data-dir <dir>', 'state: CA root, token key, used tokens (default ./.skiff)')
    .option('--ca-dir <dir>', "plug in an Istio 'cacerts' directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)")
    .option('--trust-domain <td>', 'SPIFFE trust domain', 'cluster.local')
    .option('--listen-address <ip>', 'address for all listeners', '0.0.0.0')
    .option('--grpc-port <port>', 'xDS and CA over TLS', parsePort, 15012)
    .option('--monitoring-port <port>', '/metrics, /healthz, /readyz, /debug', parsePort, 15014)
    .option('--dns-name <name>', 'extra DNS SAN for the serving certificate (repeatable)', collect, [])
    .option('--ip <ip>', 'extra IP SAN for the serving certificate (repeatable)', collect, [])
    .option('--token-audience <aud>', 'extra accepted bootstrap-token audience, e.g. istio-ca (repeatable)', collect, [])
    .option('--mesh-config <file>', 'Istio MeshConfig YAML: rootNamespace, trustDomainAliases, extensionProviders (CUSTOM authorizers)')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .action(async (flags: ServeFlags) => {
      const logger = createLogger({ level: flags.logLevel });
      const cp = await startControlPlane({
        configDir: path.resolve(flags.configDir ?? defaultConfigDir()),
        dataDir: path.resolve(flags.dataDir ?? defaultDataDir()),
        caDir: flags.caDir ? path.resolve(flags.caDir) : undefined,
        trustDomain: flags.trustDomain,
        listenAddress: flags.listenAddress,
        grpcPort: flags.grpcPort,
        monitoringPort: flags.monitoringPort,
        dnsNames: flags.dnsName,
        ipAddresses: flags.ip,
        tokenAudiences: flags.tokenAudience,
        meshConfigFile: flags.meshConfig ? path.resolve(flags.meshConfig) : undefined,
        logger,
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping control plane');
        cp.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
