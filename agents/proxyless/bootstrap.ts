/**
 * The bootstrap file of a proxyless gRPC application (issue 8 §2): the JSON grpc-js-xds reads from
 * `GRPC_XDS_BOOTSTRAP` (gRFC A27 bootstrap, with A29 `certificate_providers` and A36
 * `server_listener_resource_name_template`), written by `skiff agent --proxyless`.
 *
 * - `xds_servers`: the agent's local xDS endpoint (agents/xds-proxy) with `insecure` channel
 *   credentials: it is a Unix socket on the VM, and the agent carries the streams to the control
 *   plane over mTLS with its SVID (grpc-js-xds cannot present a client certificate itself).
 * - `node`: Istio's sidecar node id and metadata (the same keys as the Envoy bootstrap,
 *   DESIGN.md §6) plus `GENERATOR: grpc`, Istio's marker that tells the control plane the node is
 *   a proxyless gRPC client, so it gets the gRPC flavour of the configuration.
 * - `certificate_providers.default`: the `file_watcher` plugin over the certificate chain, key and
 *   trust bundle files the agent writes and rotates; the control plane's TLS contexts name the
 *   instance `default` for both the identity and the validation context (as Istio does).
 * - `server_listener_resource_name_template`: Istio's `xds.istio.io/grpc/lds/inbound/%s`, so an
 *   xDS-enabled server bound to `ip:port` asks for `xds.istio.io/grpc/lds/inbound/ip:port`.
 */
import path from 'node:path';
import { sidecarNodeId } from '../bootstrap.js';
import { writeFileAtomic } from '../files.js';

/** Node metadata key and value that mark a proxyless gRPC node (Istio's `GENERATOR: grpc`). */
export const GENERATOR_KEY = 'GENERATOR';
/** See {@link GENERATOR_KEY}. */
export const GRPC_GENERATOR = 'grpc';

/** Listener name template for xDS-enabled servers (Istio's; `%s` is the bound `ip:port`). */
export const SERVER_LISTENER_NAME_TEMPLATE = 'xds.istio.io/grpc/lds/inbound/%s';

/** Certificate provider instance the control plane names in the TLS contexts it sends proxyless nodes. */
export const CERT_PROVIDER_INSTANCE = 'default';

/** File names (inside the agent's proxyless directory) of the credentials grpc-js-xds watches. */
export const PROXYLESS_FILES = {
  certificateChain: 'cert-chain.pem',
  privateKey: 'key.pem',
  rootCert: 'root-cert.pem',
  bootstrap: 'grpc-bootstrap.json',
  env: 'grpc-xds.env',
} as const;

/** What {@link buildGrpcBootstrap} needs. */
export interface GrpcBootstrapParams {
  namespace: string;
  serviceAccount: string;
  workloadName: string;
  workloadIp: string;
  labels: Record<string, string>;
  clusterId: string;
  /** The local xDS endpoint, `unix:///path` or `127.0.0.1:<port>`. */
  xdsAddress: string;
  /** Directory holding {@link PROXYLESS_FILES} (absolute). */
  credentialsDir: string;
  /** How often grpc-js-xds re-reads the credential files, seconds (default 60; renewal is at half the SVID lifetime). */
  refreshSeconds?: number;
  /** Locality of the workload (region/zone/subZone), reported to the control plane. */
  locality?: { region?: string; zone?: string; subZone?: string };
}

/** The bootstrap object (JSON-ready, grpc-js-xds field names). */
export interface GrpcBootstrap {
  xds_servers: Array<{ server_uri: string; channel_creds: Array<{ type: string }>; server_features: string[] }>;
  node: {
    id: string;
    cluster: string;
    locality: { region?: string; zone?: string; sub_zone?: string };
    metadata: Record<string, unknown>;
  };
  certificate_providers: Record<string, { plugin_name: 'file_watcher'; config: { certificate_file: string; private_key_file: string; ca_certificate_file: string; refresh_interval: string } }>;
  server_listener_resource_name_template: string;
}

/** Builds the grpc-js-xds bootstrap for one workload (see the module comment for each part). */
export function buildGrpcBootstrap(p: GrpcBootstrapParams): GrpcBootstrap {
  if (!path.isAbsolute(p.credentialsDir)) throw new Error(`credentialsDir must be absolute, got ${p.credentialsDir}`);
  const file = (name: string): string => path.join(p.credentialsDir, name);
  const locality: GrpcBootstrap['node']['locality'] = {};
  if (p.locality?.region) locality.region = p.locality.region;
  if (p.locality?.zone) locality.zone = p.locality.zone;
  if (p.locality?.subZone) locality.sub_zone = p.locality.subZone;
  return {
    xds_servers: [{ server_uri: p.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: sidecarNodeId(p),
      cluster: `${p.serviceAccount}.${p.namespace}`,
      locality,
      metadata: {
        [GENERATOR_KEY]: GRPC_GENERATOR,
        NAMESPACE: p.namespace,
        SERVICE_ACCOUNT: p.serviceAccount,
        WORKLOAD_NAME: p.workloadName,
        LABELS: { ...p.labels },
        CLUSTER_ID: p.clusterId,
        INSTANCE_IPS: p.workloadIp,
      },
    },
    certificate_providers: {
      [CERT_PROVIDER_INSTANCE]: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: file(PROXYLESS_FILES.certificateChain),
          private_key_file: file(PROXYLESS_FILES.privateKey),
          ca_certificate_file: file(PROXYLESS_FILES.rootCert),
          refresh_interval: `${p.refreshSeconds ?? 60}s`,
        },
      },
    },
    server_listener_resource_name_template: SERVER_LISTENER_NAME_TEMPLATE,
  };
}

/**
 * The environment a proxyless application needs (grpc-js-xds reads these at import time):
 * `GRPC_XDS_BOOTSTRAP` (the bootstrap path) and `GRPC_XDS_EXPERIMENTAL_RBAC=true` (grpc-js-xds
 * 1.14 ignores the RBAC HTTP filter on xDS-enabled servers without it, so AuthorizationPolicy would
 * not be enforced). Retry, fault injection, outlier detection and ring hash are on by default.
 */
export function grpcXdsEnv(bootstrapPath: string): Record<string, string> {
  return { GRPC_XDS_BOOTSTRAP: bootstrapPath, GRPC_XDS_EXPERIMENTAL_RBAC: 'true' };
}

/**
 * Writes the bootstrap (`grpc-bootstrap.json`) and a systemd `EnvironmentFile` (`grpc-xds.env`,
 * from {@link grpcXdsEnv}) into `p.credentialsDir`, atomically, mode 0600. Returns both paths.
 */
export async function writeGrpcBootstrap(p: GrpcBootstrapParams): Promise<{ bootstrapPath: string; envPath: string }> {
  const bootstrapPath = path.join(p.credentialsDir, PROXYLESS_FILES.bootstrap);
  const envPath = path.join(p.credentialsDir, PROXYLESS_FILES.env);
  await writeFileAtomic(bootstrapPath, `${JSON.stringify(buildGrpcBootstrap(p), null, 2)}\n`);
  const env = Object.entries(grpcXdsEnv(bootstrapPath)).map(([k, v]) => `${k}=${v}\n`).join('');
  await writeFileAtomic(envPath, env);
  return { bootstrapPath, envPath };
}
