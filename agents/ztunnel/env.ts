/**
 * The environment the agent starts ztunnel with (DESIGN.md §7): dedicated mode for this VM's one
 * workload, pointed at Skiff for xDS and certificates. Variable names and meanings are ztunnel's
 * (`src/config.rs`, `src/xds/client.rs` of istio/ztunnel):
 *
 * - `PROXY_MODE=dedicated`, `PROXY_WORKLOAD_INFO=<namespace>/<name>/<serviceAccount>`
 * - `XDS_ADDRESS`, `CA_ADDRESS`: `https://<control plane host:port>` (the TLS gRPC port 15012)
 * - `XDS_ROOT_CA`, `CA_ROOT_CA`: a PEM file verifying the control plane's serving certificate
 * - `AUTH_TOKEN`: the token file. ztunnel treats the value as a file path only if that file exists
 *   when it starts (otherwise as the token itself), and reads it again for every xDS stream and
 *   CreateCertificate call, sending `authorization: Bearer <content>` and `clusterid`
 * - `CLUSTER_ID`: the `clusterid` metadata and the node's CLUSTER_ID
 * - `INSTANCE_IP`, `POD_NAME`, `POD_NAMESPACE`: the xDS node
 *   (`ztunnel~<ip>~<name>.<ns>~<ns>.svc.cluster.local`, metadata NAME, NAMESPACE, INSTANCE_IPS)
 * - `ENABLE_ORIG_SRC=false`: deliver inbound connections to the app from ztunnel's own address.
 *   With original source (ztunnel's best-effort default as root) the app's replies go to the
 *   peer's address, which only works with the iptables/policy routing Istio installs on a node;
 *   Skiff's VMs run without capture (DESIGN.md §6 explicit mode), as ztunnel's own dedicated-mode
 *   tests do (`src/test_helpers/linux.rs`: `require_original_source: Some(false)`)
 * - `RUST_LOG`: ztunnel's log filter, from the agent's log level
 *
 * Deliberately not set:
 * - `NODE_NAME`: with it, ztunnel only serves workloads whose `node` field names that node
 *   (`src/state/workload.rs`, `node_local_by_identity`), and Skiff's WorkloadEntries carry no
 *   node; without it every workload counts as local, so dedicated mode finds its own workload
 *   (`find_by_info`) by namespace, name and service account;
 * - `SERVICE_ACCOUNT`: with POD_NAMESPACE and POD_NAME it would make ztunnel treat itself as a
 *   separate in-mesh workload (its shared-mode identity).
 */
/** What {@link ztunnelEnvironment} needs. */
export interface ZtunnelEnvInput {
  namespace: string;
  serviceAccount: string;
  workloadName: string;
  workloadIp: string;
  /** `host:port` of Skiff's TLS gRPC port. */
  controlPlane: string;
  clusterId: string;
  /** PEM file verifying the control plane (XDS_ROOT_CA and CA_ROOT_CA). */
  rootCertFile: string;
  /** The session-token file (AUTH_TOKEN). */
  tokenFile: string;
  /** The agent's log level (pino names), mapped to RUST_LOG. */
  logLevel: string;
  /** Passed through from the agent's environment when set (PATH, locale, time zone). */
  inherit?: NodeJS.ProcessEnv;
}

const RUST_LOG: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', error: 'error', fatal: 'error', silent: 'off' };

/** The complete environment of the ztunnel process (nothing else of the agent's leaks in). */
export function ztunnelEnvironment(input: ZtunnelEnvInput): Record<string, string> {
  const inherit = input.inherit ?? process.env;
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'LANG', 'LC_ALL', 'TZ']) {
    const v = inherit[key];
    if (v !== undefined) env[key] = v;
  }
  return {
    ...env,
    PROXY_MODE: 'dedicated',
    PROXY_WORKLOAD_INFO: `${input.namespace}/${input.workloadName}/${input.serviceAccount}`,
    XDS_ADDRESS: `https://${input.controlPlane}`,
    CA_ADDRESS: `https://${input.controlPlane}`,
    XDS_ROOT_CA: input.rootCertFile,
    CA_ROOT_CA: input.rootCertFile,
    AUTH_TOKEN: input.tokenFile,
    CLUSTER_ID: input.clusterId,
    INSTANCE_IP: input.workloadIp,
    POD_NAME: input.workloadName,
    POD_NAMESPACE: input.namespace,
    ENABLE_ORIG_SRC: 'false',
    RUST_LOG: RUST_LOG[input.logLevel] ?? 'info',
  };
}
