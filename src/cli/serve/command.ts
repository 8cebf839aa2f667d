/**
 * `skiff serve`: flags → {@link startControlPlane}; stops cleanly on SIGTERM/SIGINT; on SIGHUP
 * re-reads the config directory (as Consul re-reads its configuration on SIGHUP).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../observability/logger.js';
import { parseDurationMs } from '../duration.js';
import { collect, defaultConfigDir, defaultDataDir, parsePort } from '../options.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { consulConfigFromFlags, type ConsulFlags } from '../../sources/consul/index.js';

interface ServeFlags extends ConsulFlags {
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
  caTrustedNodeAccount: string[];
  apiPort: number;
  apiTls?: boolean;
  meshConfig?: string;
  registrationGracePeriod: string;
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
    .option('--api-port <port>', 'HTTP API (resources, registry views, tokens)', parsePort, 8080)
    .option('--api-tls', 'serve the API over HTTPS with the serving certificate; clients may also authenticate with their SVID')
    .option('--dns-name <name>', 'extra DNS SAN for the serving certificate (repeatable)', collect, [])
    .option('--ip <ip>', 'extra IP SAN for the serving certificate (repeatable)', collect, [])
    .option('--token-audience <aud>', 'extra accepted bootstrap-token audience, e.g. istio-ca (repeatable)', collect, [])
    .option('--ca-trusted-node-account <ns/sa>', 'node identity allowed to request certificates for other identities with ImpersonatedIdentity (Istio CA_TRUSTED_NODE_ACCOUNTS; repeatable)', collect, [])
    .option('--mesh-config <file>', 'Istio MeshConfig YAML: rootNamespace, trustDomainAliases, extensionProviders (CUSTOM authorizers)')
    .option('--registration-grace-period <duration>', 'how long an auto-registered WorkloadEntry outlives its agent (e.g. 10s, 500ms)', '10s')
    // Consul catalog discovery (issue 5; README "Consul"): on when an address is given.
    .option('--consul-address <url>', 'Consul HTTP API to follow, e.g. http://127.0.0.1:8500 (repeatable: tried in order)', collect, [])
    .option('--consul-config <file>', 'YAML file with a consul: section (the settings below in camelCase; flags win)')
    .option('--consul-token-file <file>', 'file holding the Consul ACL token (service:read, node:read)')
    .option('--consul-datacenter <dc>', 'Consul datacenter to read (default: the agent\'s)')
    .option('--consul-namespace <ns>', 'Consul Enterprise namespace to read')
    .option('--consul-partition <name>', 'Consul Enterprise admin partition to read')
    .option('--consul-tag <tag>', 'take only instances with this tag (repeatable: all must be present)', collect, [])
    .option('--consul-filter <expr>', 'Consul filter expression for /v1/health/service queries, e.g. \'Service.Meta.env == "prod"\'')
    .option('--consul-service-host-template <template>', 'mesh host of a Consul service; {service}, {datacenter}, {namespace} (default {service}.service.consul)')
    .option('--consul-default-namespace <ns>', 'namespace of instances without skiff-namespace meta (default default)')
    .option('--consul-default-service-account <sa>', 'service account of instances without skiff-service-account meta (default default)')
    .option('--consul-warning-is-healthy <bool>', 'keep instances with a warning check in the endpoints (default true)')
    .option('--consul-ca-file <file>', 'CA bundle for an https:// Consul address')
    .option('--consul-cert-file <file>', 'client certificate for Consul (with --consul-key-file)')
    .option('--consul-key-file <file>', 'client certificate key for Consul')
    .option('--consul-tls-server-name <name>', 'name to check in Consul\'s certificate (default: the address host)')
    .option('--consul-wait <duration>', 'blocking query wait, 1s-10m (default 60s)')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .action(async (flags: ServeFlags) => {
      const logger = createLogger({ level: flags.logLevel });
      let cp: ControlPlane | undefined = undefined;
      let stopping = false;
      // SIGHUP: reload the config directory now; `reloadFiles` logs the outcome (a rejected reload
      // keeps the last good configuration serving). Ignored while starting (the start reads the
      // directory anyway) and while stopping. Listening also keeps Node from exiting on SIGHUP.
      process.on('SIGHUP', () => {
        if (stopping) return;
        if (cp === undefined) {
          logger.info({ signal: 'SIGHUP' }, 'SIGHUP ignored: the control plane is still starting');
          return;
        }
        void cp.reloadFiles();
      });
      const started = await startControlPlane({
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
        caTrustedNodeAccounts: flags.caTrustedNodeAccount,
        apiPort: flags.apiPort,
        apiTls: flags.apiTls === true,
        meshConfigFile: flags.meshConfig ? path.resolve(flags.meshConfig) : undefined,
        registrationGracePeriodMs: parseDurationMs(flags.registrationGracePeriod, '--registration-grace-period'),
        consul: await consulConfigFromFlags(flags),
        logger,
      });
      cp = started;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping control plane');
        started.stop().then(
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
