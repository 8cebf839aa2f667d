/**
 * The intermediate representation (IR): everything one proxy needs, as plain data, computed by the
 * push context (`src/push/`) and consumed by the translators (`src/translate/envoy/`). It imports
 * nothing from resources or xDS: it names listeners, clusters and endpoints in the data plane's
 * terms (Istio's naming, DESIGN.md §6) but carries no Envoy message shapes.
 *
 * Every value is JSON-serialisable so a debug view can print the IR as it is.
 */
import type { ClientTlsIR, ClusterTrafficPolicyIR, RouteIR, TcpWeightedClusterIR } from './traffic.js';
export type * from './traffic.js';

/**
 * Who a connected proxy is: from its xDS node id and metadata (Istio's form, DESIGN.md §6), checked
 * against its client certificate by the xDS server.
 */
export interface ProxyIdentity {
  /** The raw node id, `sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`. */
  nodeId: string;
  /** The workload's IP address (IPv4 or IPv6) from the node id. */
  ip: string;
  namespace: string;
  /** From node metadata SERVICE_ACCOUNT; `default` when unset. */
  serviceAccount: string;
  /** From node metadata WORKLOAD_NAME: the name of this workload's WorkloadEntry. */
  workloadName?: string;
  /** Workload labels from node metadata LABELS (used when no WorkloadEntry is found). */
  labels: Record<string, string>;
  /** SPIFFE trust domain, e.g. `cluster.local`. */
  trustDomain: string;
  /** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
  spiffeId: string;
  /** Where the proxy runs (its WorkloadEntry `locality`, else node metadata): drives locality-aware routing. */
  locality?: LocalityIR;
}

/** Effective PeerAuthentication mode of one inbound port (Istio's MutualTLS.Mode without UNSET). */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/**
 * The application protocol of a port: `HTTP` (HTTP/1.1, Istio `HTTP`), `HTTP2` (Istio `HTTP2`,
 * `GRPC`, `GRPC-WEB`: HTTP handled by Envoy, HTTP/2 to the upstream) or `TCP` (everything else,
 * including `TLS` and `HTTPS` which Envoy passes through as bytes).
 */
export type AppProtocol = 'HTTP' | 'HTTP2' | 'TCP';


/** A socket address (IP literal and port 1-65535) or a Unix socket path. */
export type EndpointAddress = { ip: string; port: number } | { pipe: string };

/**
 * One inbound listener: the workload accepts mesh traffic on `address:port` and forwards it to the
 * local application through the inbound cluster `cluster`.
 */
export interface InboundListenerIR {
  /** Istio-like name `<address>_<port>`. */
  name: string;
  /** The workload's address (or the Sidecar ingress `bind`). */
  address: string;
  port: number;
  /** HTTP and HTTP2 ports go through the HTTP connection manager; TCP ports through tcp_proxy. */
  protocol: AppProtocol;
  /** The effective PeerAuthentication mode for this port. */
  mtls: MtlsMode;
  /** Which policy decided `mtls` (`PeerAuthentication/<ns>/<name>` or `default`), for debugging. */
  mtlsSource: string;
  /** The inbound cluster name, `inbound|<port>||`. */
  cluster: string;
  /**
   * The AuthorizationPolicies that apply to the workload (so to this port; a rule's `ports` narrows
   * it), sorted by namespace then name. Empty: no policy, everything is allowed.
   */
  authorization: AuthzPolicyIR[];
  /**
   * The JWT rules of the RequestAuthentications that apply to the workload, sorted by issuer (the
   * order Istio gives Envoy's JWT providers). Empty: no JWT filter. HTTP ports only in effect.
   */
  jwtRules: JwtRuleIR[];
}

/**
 * AuthorizationPolicy action (https://istio.io/latest/docs/reference/config/security/authorization-policy/):
 * the resource's unset action is ALLOW.
 */
export type AuthzActionIR = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/**
 * Istio's `Source` of one `rules[].from[]` entry. Every list is non-empty when present (an empty
 * list means the same as an absent one and is dropped while normalising). Values keep Istio's
 * syntax: principals `<td>/ns/<ns>/sa/<sa>`, `*`, `prefix*`, `*suffix`; ip blocks `a.b.c.d` or CIDR.
 */
export interface AuthzSourceIR {
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

/** Istio's `Operation` of one `rules[].to[]` entry; lists as in {@link AuthzSourceIR}. Ports are decimal strings. */
export interface AuthzOperationIR {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

/** Istio's `Condition` (`rules[].when[]`): `key` such as `request.headers[x-user]` or `source.ip`. */
export interface AuthzConditionIR {
  key: string;
  values: string[];
  notValues: string[];
}

/**
 * One rule: it matches when one `from` entry, one `to` entry and every `when` condition match; an
 * empty `from` / `to` matches every source / operation (so `{}` matches every request).
 */
export interface AuthzRuleIR {
  from: AuthzSourceIR[];
  to: AuthzOperationIR[];
  when: AuthzConditionIR[];
}

/** One AuthorizationPolicy that applies to the proxy's workload, normalised. */
export interface AuthzPolicyIR {
  name: string;
  namespace: string;
  action: AuthzActionIR;
  /** CUSTOM only: the MeshConfig extension provider (`provider.name`). */
  provider?: string;
  /** `istio.io/dry-run: "true"` (ALLOW and DENY only): evaluated and logged, never enforced. */
  dryRun: boolean;
  /** Empty (`spec: {}` or no rules): the policy matches nothing (an ALLOW of nothing denies all). */
  rules: AuthzRuleIR[];
  /** Why it applies: the root namespace without selector, a namespace without selector, or a selector. */
  scope: 'mesh' | 'namespace' | 'workload';
}

/**
 * One `jwtRules[]` entry of a RequestAuthentication that applies, with its JWKS resolved to the
 * inline JSON Envoy verifies tokens with (https://istio.io/latest/docs/reference/config/security/jwt/).
 */
export interface JwtRuleIR {
  issuer: string;
  /** Accepted `aud` values; empty: any audience. */
  audiences: string[];
  /** A JWKS document (JSON with a `keys` array). */
  jwks: string;
  /**
   * Where `jwks` came from: `inline` (the rule's `jwks`), `jwksUri <uri>` (fetched by the control
   * plane), or `unavailable` (a public key nobody holds the private key of: every token is refused,
   * as Istio does when it cannot fetch the keys).
   */
  jwksSource: string;
  /** Header locations (empty: Envoy's default `Authorization: Bearer <token>`). */
  fromHeaders: Array<{ name: string; prefix?: string }>;
  /** Query parameter locations. */
  fromParams: string[];
  /** Cookie locations. */
  fromCookies: string[];
  /** Header that receives the verified payload (base64url JSON), when set. */
  outputPayloadToHeader?: string;
  /** Keep the token in the request forwarded to the application. */
  forwardOriginalToken: boolean;
  /** Claims copied into request headers. */
  outputClaimToHeaders: Array<{ header: string; claim: string }>;
  /** `RequestAuthentication/<ns>/<name> jwtRules[<i>]`, for messages. */
  source: string;
}

/**
 * A MeshConfig extension provider used by a CUSTOM AuthorizationPolicy of this proxy, resolved to
 * the cluster the ext_authz filter calls (Istio's `envoyExtAuthzHttp` / `envoyExtAuthzGrpc`,
 * https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/#MeshConfig-ExtensionProvider).
 */
export interface ExtAuthzProviderIR {
  name: string;
  kind: 'http' | 'grpc';
  /**
   * Why the provider cannot be used (unknown name, unresolvable service, bad setting); the CUSTOM
   * policies naming it then deny every request they match, as Istio does. Unset when usable.
   */
  error?: string;
  /** The cluster called: `outbound|<port>||<host>` (a mesh service) or an external cluster (an IP). */
  cluster: string;
  /** The service host or IP as configured (HTTP `uri` host, gRPC `:authority`). */
  host: string;
  port: number;
  /** Per-check timeout in milliseconds (Istio's default 600 s). */
  timeoutMs: number;
  /** Allow the request when the authorizer cannot be reached or errs. */
  failOpen: boolean;
  /** HTTP status returned when the authorizer errs (and `failOpen` is false); Envoy's default 403 when unset. */
  statusOnError?: number;
  /** HTTP only: prefix added to the checked path. */
  pathPrefix?: string;
  /** HTTP only: request headers sent to the authorizer (exact, `prefix*` or `*suffix`). */
  includeRequestHeadersInCheck: string[];
  /** HTTP only: fixed headers added to the check request, sorted by name. */
  includeAdditionalHeadersInCheck: Array<{ name: string; value: string }>;
  /** HTTP only: authorizer response headers copied into the allowed upstream request. */
  headersToUpstreamOnAllow: string[];
  /** HTTP only: authorizer response headers returned to the client on deny. */
  headersToDownstreamOnDeny: string[];
  /** HTTP only: authorizer response headers returned to the client on allow. */
  headersToDownstreamOnAllow: string[];
  /** Send the request body to the authorizer (buffered up to `maxRequestBytes`). */
  includeRequestBodyInCheck?: { maxRequestBytes: number; allowPartialMessage: boolean; packAsBytes: boolean };
}

/** An HTTP virtual host of an outbound route configuration: requests whose Host is in `domains`. */
export interface VirtualHostIR {
  /** `<host>:<port>`. */
  name: string;
  /** Host header values (with and without `:port`); unique within the route configuration. */
  domains: string[];
  /** The outbound cluster every request is routed to when `routes` is unset (no VirtualService or HTTPRoute). */
  cluster: string;
  /**
   * The routes of a VirtualService / HTTPRoute / GRPCRoute for this host, in match order. Unset: one
   * default route `/` to `cluster`. When set, a request no route matches gets 404 (Istio and the
   * Gateway API add no fallback route).
   */
  routes?: RouteIR[];
  /** Which resource set `routes`, e.g. `VirtualService/demo/reviews`. */
  routesSource?: string;
}

/** The route configuration (served over RDS) of an outbound HTTP listener. */
export interface RouteConfigIR {
  /** `<port>` for the default bind 127.0.0.1, else `<bind>_<port>`. */
  name: string;
  virtualHosts: VirtualHostIR[];
}

/**
 * One outbound listener: the local application connects to `address:port` and Envoy forwards to a
 * mesh service, by Host header (HTTP) or to the single cluster `tcpCluster` (TCP).
 */
export interface OutboundListenerIR {
  /** `<address>_<port>`. */
  name: string;
  /** The Sidecar egress `bind` (default 127.0.0.1). */
  address: string;
  port: number;
  protocol: 'HTTP' | 'TCP';
  /** Set when `protocol` is HTTP. */
  routeConfig?: RouteConfigIR;
  /** Set when `protocol` is TCP. */
  tcpCluster?: string;
  /**
   * TCP only: a weighted split from a VirtualService `tcp` route (Envoy tcp_proxy
   * `weighted_clusters`); when set it replaces `tcpCluster` (which stays the first destination).
   */
  tcpWeightedClusters?: TcpWeightedClusterIR[];
}

/** Upstream TLS of an outbound cluster: Istio mutual TLS with SPIFFE SVIDs. */
export interface UpstreamTlsIR {
  mode: 'ISTIO_MUTUAL';
  /** `outbound_.<port>_._.<host>`. */
  sni: string;
  /**
   * The URI SANs the peer certificate may carry: the SPIFFE IDs of the destination workloads (and
   * a ServiceEntry's `subjectAltNames`). Sorted, unique.
   */
  subjectAltNames: string[];
}

/** A cluster for traffic from the mesh to the local application (static endpoint). */
export interface InboundClusterIR {
  direction: 'inbound';
  /** `inbound|<port>||`. */
  name: string;
  port: number;
  protocol: AppProtocol;
  /** The application endpoint (`defaultEndpoint`). */
  endpoint: EndpointAddress;
}

/** A cluster for traffic to a mesh service; its endpoints come from a load assignment (EDS). */
export interface OutboundClusterIR {
  direction: 'outbound';
  /** `outbound|<port>||<host>`. */
  name: string;
  /** The service host and port number. */
  host: string;
  port: number;
  /** Namespace of the ServiceEntry that defines the service. */
  serviceNamespace: string;
  protocol: AppProtocol;
  /** Istio mutual TLS (the default inside the mesh). Ignored when `clientTls` is set. */
  tls: UpstreamTlsIR;
  /** A DestinationRule subset name (`outbound|<port>|<subset>|<host>`); unset for the whole service. */
  subset?: string;
  /** A DestinationRule `tls` other than ISTIO_MUTUAL (DISABLE, SIMPLE, MUTUAL): replaces `tls`. */
  clientTls?: ClientTlsIR;
  /** DestinationRule traffic policy for this cluster, when one applies. */
  trafficPolicy?: ClusterTrafficPolicyIR;
}

/**
 * A plaintext cluster to an address outside the mesh registry: an external authorizer configured by
 * IP literal (`outbound|<port>||<ip>`, one STATIC endpoint).
 */
export interface ExternalClusterIR {
  direction: 'external';
  name: string;
  /** The endpoint's port. */
  port: number;
  endpoint: { ip: string; port: number };
  /** HTTP2 for gRPC authorizers, HTTP for HTTP ones. */
  protocol: AppProtocol;
}

export type ClusterIR = InboundClusterIR | OutboundClusterIR | ExternalClusterIR;

/** Where an endpoint runs: Istio's `region/zone/subzone`. */
export interface LocalityIR {
  region?: string;
  zone?: string;
  subZone?: string;
}

/** One upstream endpoint of an outbound cluster. */
export interface EndpointIR {
  ip: string;
  port: number;
  /** Load balancing weight ≥ 1, when set. */
  weight?: number;
  locality?: LocalityIR;
  /**
   * Locality failover priority for this proxy (0 = most preferred; Envoy `LocalityLbEndpoints.priority`),
   * computed by the push context from the proxy's own locality and the DestinationRule's
   * `localityLbSetting`. Unset: 0.
   */
  priority?: number;
  /** The SPIFFE ID the endpoint's certificate carries. */
  spiffeId: string;
  /** `WorkloadEntry/<ns>/<name>` or `ServiceEntry/<ns>/<name>#endpoints[i]`, for debugging. */
  source: string;
  /**
   * The endpoint's proxy accepts HBONE (HTTP/2 CONNECT over mTLS on `HBONE_PORT`): traffic to it is
   * tunnelled to `<ip>:<port>` instead of being sent over mTLS to `ip:port` itself.
   */
  hbone?: boolean;
}

/** The HBONE port of a proxy (Istio's 15008: HTTP/2 CONNECT over mTLS). */
export const HBONE_PORT = 15008;

/** HBONE termination on this proxy: a CONNECT listener on `address:port` in front of its inbound ports. */
export interface HboneInboundIR {
  address: string;
  port: number;
}

/** The endpoints of one outbound cluster (served over EDS as a ClusterLoadAssignment). */
export interface LoadAssignmentIR {
  clusterName: string;
  endpoints: EndpointIR[];
  /**
   * Locality weights from `localityLbSetting.distribute` (Envoy `LocalityLbEndpoints.load_balancing_weight`),
   * keyed `region/zone/subzone` (missing parts empty). Unset: no locality weights.
   */
  localityWeights?: Record<string, number>;
}

/** The whole per-proxy slice of the mesh. */
export interface ProxyIR {
  proxy: ProxyIdentity;
  inbound: InboundListenerIR[];
  outbound: OutboundListenerIR[];
  clusters: ClusterIR[];
  loadAssignments: LoadAssignmentIR[];
  /** The extension providers the CUSTOM policies of `inbound` name, sorted by name. */
  extAuthzProviders: ExtAuthzProviderIR[];
  /**
   * Other trust domains treated as the proxy's own (MeshConfig `trustDomainAliases`): peers from
   * them pass inbound TLS, and AuthorizationPolicy principals in the local domain match them too.
   */
  trustDomainAliases: string[];
  /** Assumptions and dropped configuration, each a sentence for the control plane's log. */
  warnings: string[];
  /** Set when the proxy speaks HBONE: it accepts tunnelled traffic for its inbound ports. */
  hbone?: HboneInboundIR;
}
