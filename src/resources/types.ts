/**
 * The resource shapes Skiff accepts: Istio's networking and security kinds and the Gateway API
 * kinds, as TypeScript types of their `spec` (field names exactly as in Istio's API reference,
 * https://istio.io/latest/docs/reference/config/). Every source (files, Consul, the API store)
 * yields these objects; nothing downstream knows where a resource came from.
 *
 * The zod schemas in `schemas.ts` validate input into these shapes.
 */

import type { DestinationRule, GRPCRoute, HTTPRoute, VirtualService } from './traffic-types.js';

/** Kubernetes-style object metadata. `namespace` is always set after parsing (default `default`). */
export interface ObjectMeta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Store-assigned version for optimistic concurrency (API store only). */
  resourceVersion?: string;
  /** RFC 3339; used for "oldest wins" precedence (PeerAuthentication). */
  creationTimestamp?: string;
}

/** Where a resource came from, for error messages and the API's merged views. */
export interface ResourceOrigin {
  source: 'file' | 'api' | 'consul' | 'auto-registration';
  /** File path (file source) or other locator. */
  file?: string;
  /** 1-based line of the document start in `file`. */
  line?: number;
}

/**
 * A status condition, as Kubernetes and Istio write them (`status.conditions[]`). Istio reports
 * WorkloadEntry health as the condition `type: Healthy` (`status: "True"` / `"False"`).
 */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  /** RFC 3339. */
  lastTransitionTime?: string;
}

/** Resource status. Sources set it (health from probes or Consul); files do not. */
export interface ResourceStatus {
  conditions?: Condition[];
}

/** A parsed resource of kind `K` with spec `S`. */
export interface Resource<K extends string, S> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  /** Health and other conditions reported by sources (never parsed from files). */
  status?: ResourceStatus;
  /** Not part of the wire shape: filled in by the source. */
  origin?: ResourceOrigin;
}

/** `workloadSelector` of ServiceEntry and Sidecar. */
export interface WorkloadSelector {
  labels?: Record<string, string>;
}

/** `selector` of PeerAuthentication and AuthorizationPolicy (istio.type.v1beta1.WorkloadSelector). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
}

/** networking.istio.io WorkloadEntry spec. */
export interface WorkloadEntrySpec {
  /** IPv4/IPv6 address (or a hostname; Skiff requires an IP for mesh workloads). */
  address?: string;
  /** Port name (of the ServiceEntry port) → port number on this workload. */
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  /** `region/zone/subzone`. */
  locality?: string;
  /** Load balancing weight, 0 = unset. */
  weight?: number;
  /** Defaults to `default` when unset. */
  serviceAccount?: string;
}

/** networking.istio.io ServicePort. */
export interface ServicePort {
  number: number;
  /** HTTP | HTTPS | GRPC | HTTP2 | MONGO | TCP | TLS; case-insensitive in Istio. */
  protocol?: string;
  name: string;
  targetPort?: number;
}

/** networking.istio.io ServiceEntry spec. */
export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: WorkloadSelector;
  exportTo?: string[];
  subjectAltNames?: string[];
}

/** networking.istio.io SidecarPort (Sidecar ingress/egress `port`). */
export interface SidecarPort {
  number: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}

/** Sidecar `ingress[]` entry (IstioIngressListener). */
export interface IstioIngressListener {
  port: SidecarPort;
  bind?: string;
  captureMode?: 'DEFAULT' | 'IPTABLES' | 'NONE';
  /** `127.0.0.1:PORT`, `0.0.0.0:PORT` or `unix://path`. */
  defaultEndpoint?: string;
}

/** Sidecar `egress[]` entry (IstioEgressListener). */
export interface IstioEgressListener {
  port?: SidecarPort;
  bind?: string;
  captureMode?: 'DEFAULT' | 'IPTABLES' | 'NONE';
  /** `namespace/dnsName` entries; `*` and `.` (own namespace) and `~` (none) allowed. */
  hosts: string[];
}

/** networking.istio.io Sidecar spec. */
export interface SidecarSpec {
  workloadSelector?: WorkloadSelector;
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  outboundTrafficPolicy?: { mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY' };
}

/** PeerAuthentication mTLS mode. */
export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

/** security.istio.io PeerAuthentication spec. */
export interface PeerAuthenticationSpec {
  selector?: LabelSelector;
  mtls?: { mode?: MtlsMode };
  /** Port number (as a string key, like Istio's map<uint32, MutualTLS>) → mode. */
  portLevelMtls?: Record<string, { mode?: MtlsMode }>;
}

/** AuthorizationPolicy `rules[].from[].source` (security.istio.io Source). */
export interface AuthzSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

/** AuthorizationPolicy `rules[].to[].operation` (security.istio.io Operation). */
export interface AuthzOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

/** AuthorizationPolicy `rules[].when[]` (security.istio.io Condition). */
export interface AuthzCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

/** One AuthorizationPolicy rule: every present part must match (from OR-ed, to OR-ed, when AND-ed). */
export interface AuthzRule {
  from?: { source?: AuthzSource }[];
  to?: { operation?: AuthzOperation }[];
  when?: AuthzCondition[];
}

/** AuthorizationPolicy action; unset means ALLOW. */
export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** security.istio.io AuthorizationPolicy spec (https://istio.io/latest/docs/reference/config/security/authorization-policy/). */
export interface AuthorizationPolicySpec {
  selector?: LabelSelector;
  /** Gateway-API style targeting; parsed and warned about (not meaningful for VMs). */
  targetRef?: Record<string, unknown>;
  targetRefs?: Record<string, unknown>[];
  rules?: AuthzRule[];
  action?: AuthzAction;
  /** CUSTOM only: the MeshConfig extension provider. */
  provider?: { name: string };
}

/** RequestAuthentication `jwtRules[].fromHeaders[]`. */
export interface JwtHeader {
  name: string;
  prefix?: string;
}

/** security.istio.io JWTRule. */
export interface JwtRule {
  issuer: string;
  audiences?: string[];
  jwksUri?: string;
  /** Inline JWKS as a JSON string. */
  jwks?: string;
  fromHeaders?: JwtHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: { header: string; claim: string }[];
  /** Go-style duration (`5s`, `500ms`); the JWKS fetch timeout. */
  timeout?: string;
  /**
   * Claims holding space-separated lists, split into lists before matching; `scope` and
   * `permission` always are (Istio's default).
   */
  spaceDelimitedClaims?: string[];
}

/** security.istio.io RequestAuthentication spec. */
export interface RequestAuthenticationSpec {
  selector?: LabelSelector;
  targetRef?: Record<string, unknown>;
  targetRefs?: Record<string, unknown>[];
  jwtRules?: JwtRule[];
}

/** ReadinessProbe `httpGet.httpHeaders[]` (networking.istio.io HTTPHeader). */
export interface ProbeHttpHeader {
  name: string;
  value?: string;
}

/** networking.istio.io `HTTPHealthCheckConfig`: a GET whose 2xx/3xx answer counts as success. */
export interface HttpHealthCheckConfig {
  /** Default `/`. */
  path?: string;
  port: number;
  /** Default: the workload's loopback (`127.0.0.1`) as the agent runs the probe on the VM. */
  host?: string;
  /** `HTTP` (default) or `HTTPS` (the certificate is not verified, as in Kubernetes). */
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: ProbeHttpHeader[];
}

/** networking.istio.io `TCPHealthCheckConfig`: a TCP connect that succeeds counts as success. */
export interface TcpHealthCheckConfig {
  host?: string;
  port: number;
}

/** networking.istio.io `ExecHealthCheckConfig`: a command that exits 0 counts as success. */
export interface ExecHealthCheckConfig {
  command: string[];
}

/** networking.istio.io `GrpcHealthCheckConfig` (parsed; not run by Skiff's agent yet). */
export interface GrpcHealthCheckConfig {
  port: number;
  service?: string;
}

/**
 * networking.istio.io `ReadinessProbe` (WorkloadGroup `probe`), with Kubernetes probe semantics:
 * after `initialDelaySeconds`, the check runs every `periodSeconds` with a `timeoutSeconds`
 * deadline; `successThreshold` consecutive successes make the workload healthy,
 * `failureThreshold` consecutive failures unhealthy. 0 or unset means the default (Istio's
 * agent: period 10 s, timeout 1 s, thresholds 1). Exactly one check method is set.
 */
export interface ReadinessProbe {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: HttpHealthCheckConfig;
  tcpSocket?: TcpHealthCheckConfig;
  exec?: ExecHealthCheckConfig;
  grpc?: GrpcHealthCheckConfig;
}

/**
 * networking.istio.io `WorkloadGroup` spec (https://istio.io/latest/docs/reference/config/networking/workload-group/):
 * the template agents register their VMs from. `metadata` labels and annotations go on every
 * generated WorkloadEntry; `template` is a WorkloadEntry spec whose `address` each agent
 * supplies; `probe` is run by each agent against its app.
 */
export interface WorkloadGroupSpec {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  template: WorkloadEntrySpec;
  probe?: ReadinessProbe;
}

export type WorkloadEntry = Resource<'WorkloadEntry', WorkloadEntrySpec>;
export type WorkloadGroup = Resource<'WorkloadGroup', WorkloadGroupSpec>;
export type ServiceEntry = Resource<'ServiceEntry', ServiceEntrySpec>;
export type Sidecar = Resource<'Sidecar', SidecarSpec>;
export type PeerAuthentication = Resource<'PeerAuthentication', PeerAuthenticationSpec>;
export type AuthorizationPolicy = Resource<'AuthorizationPolicy', AuthorizationPolicySpec>;
export type RequestAuthentication = Resource<'RequestAuthentication', RequestAuthenticationSpec>;

/** Every kind the registry holds (later issues add more). */
export type MeshResource =
  | WorkloadEntry
  | WorkloadGroup
  | ServiceEntry
  | Sidecar
  | PeerAuthentication
  | AuthorizationPolicy
  | RequestAuthentication
  | DestinationRule
  | VirtualService
  | HTTPRoute
  | GRPCRoute;
export type MeshKind = MeshResource['kind'];

/** The root namespace: policies there apply mesh-wide (DESIGN.md §3). */
export const ROOT_NAMESPACE = 'skiff-system';

/** A stable key for a resource: `Kind/namespace/name`. */
export function resourceKey(r: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

/**
 * An error or warning about input resources, located in its source:
 * `formatIssue()` renders it as `mesh/payments.yaml:14 spec.ports[0].number: expected integer 1-65535, got "http"`.
 */
export interface ResourceIssue {
  /** The file (or other locator, e.g. `request body`) the resource came from. */
  file: string;
  /** 1-based line of the offending node; 0 when unknown. */
  line: number;
  /** JSON path of the offending node (`spec.ports[0].number`); empty for the whole document or file. */
  path: string;
  message: string;
}

/** The Istio health condition type on a WorkloadEntry. */
export const HEALTHY_CONDITION = 'Healthy';

/**
 * False only when the resource carries `status.conditions[type=Healthy].status == "False"`:
 * a workload without health reporting counts as healthy, as in Istio.
 */
export function isHealthy(r: { status?: ResourceStatus }): boolean {
  return r.status?.conditions?.find((c) => c.type === HEALTHY_CONDITION)?.status !== 'False';
}
