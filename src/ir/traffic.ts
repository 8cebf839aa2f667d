/**
 * Traffic management in the IR: HTTP/TCP routes (from VirtualService, HTTPRoute, GRPCRoute) and
 * cluster traffic policy (from DestinationRule), as plain data the translators render. Field
 * meanings follow Istio's VirtualService and DestinationRule reference
 * (https://istio.io/latest/docs/reference/config/networking/virtual-service/,
 * https://istio.io/latest/docs/reference/config/networking/destination-rule/) and the Gateway API
 * HTTPRoute/GRPCRoute specs; the push context resolves every reference (hosts, subsets, ports)
 * before it gets here, so a translator never looks anything up.
 *
 * Durations are integer milliseconds; percentages are numbers in [0, 100] (fractions allowed).
 */

/** One of Istio's `StringMatch` forms. `regex` is RE2 syntax (Envoy's `safe_regex`). */
export type StringMatchIR = { exact: string } | { prefix: string } | { regex: string };

/**
 * A header condition: `match` unset means "present"; `invert` negates (Istio `withoutHeaders`,
 * Gateway API has none). Pseudo-headers such as `:method` and `:authority` are allowed.
 */
export interface HeaderMatchIR {
  name: string;
  match?: StringMatchIR;
  invert?: boolean;
}

/** A query parameter condition; `match` unset means "present". */
export interface QueryParamMatchIR {
  name: string;
  match?: StringMatchIR;
}

/**
 * The request part of a route match (envoy.config.route.v3.RouteMatch). Every condition must hold.
 * `path` unset matches every path (prefix `/`). Conditions the proxy decides before routing
 * (VirtualService `port`, `sourceLabels`, `sourceNamespace`) are resolved by the push context:
 * a route whose such condition does not hold for this proxy and listener is left out.
 */
export interface RouteMatchIR {
  path?: StringMatchIR;
  /** Istio `ignoreUriCase`: case-insensitive path match. */
  ignoreCase?: boolean;
  headers: HeaderMatchIR[];
  queryParams: QueryParamMatchIR[];
}

/** Header operations on a request or response (Istio `Headers.HeaderOperations`, Gateway API header modifiers). */
export interface HeaderOpsIR {
  /** Overwrite (or add) these headers. */
  set: Record<string, string>;
  /** Append these values (keeping existing ones). */
  add: Record<string, string>;
  /** Remove these headers. */
  remove: string[];
}

/**
 * One weighted destination: the cluster `outbound|<port>|<subset>|<host>` (which the push context
 * also puts in `ProxyIR.clusters`). Weights of one route are integers ≥ 0; Envoy gets their sum
 * as the total.
 */
export interface WeightedClusterIR {
  cluster: string;
  weight: number;
  /** Per-destination header operations (Istio `route[].headers`). */
  requestHeaders?: HeaderOpsIR;
  responseHeaders?: HeaderOpsIR;
}

/** Forward the request to one or more weighted clusters. */
export interface ForwardActionIR {
  kind: 'forward';
  /** Non-empty. A single entry is rendered as a plain `cluster`. */
  clusters: WeightedClusterIR[];
}

/** Answer with a redirect (Istio `HTTPRedirect`, Gateway API `RequestRedirect`). */
export interface RedirectActionIR {
  kind: 'redirect';
  /** Replace the whole path. */
  path?: string;
  /** Replace the matched prefix (Gateway API `ReplacePrefixMatch`). */
  prefixRewrite?: string;
  host?: string;
  port?: number;
  scheme?: string;
  /** 301 (default), 302, 303, 307 or 308. */
  status: 301 | 302 | 303 | 307 | 308;
}

/** Answer directly (Istio `directResponse`). */
export interface DirectResponseActionIR {
  kind: 'direct';
  status: number;
  body?: string;
}

export type RouteActionIR = ForwardActionIR | RedirectActionIR | DirectResponseActionIR;

/** Istio `HTTPRewrite` / Gateway API `URLRewrite`: applied before forwarding. */
export interface RewriteIR {
  /** Replace the matched path prefix (or, with an exact path match, the whole path). */
  prefix?: string;
  /** Replace the whole path (Gateway API `ReplaceFullPath`). */
  fullPath?: string;
  /** RE2 `pattern` and `substitution` (Istio `uriRegexRewrite`). */
  regex?: { pattern: string; substitution: string };
  /** New Host / :authority. */
  authority?: string;
}

/**
 * Istio `HTTPRetry` (envoy.config.route.v3.RetryPolicy). Istio's default when a VirtualService sets
 * none: 2 attempts on `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`
 * with status 503 — the push context fills that default in, so translators render what is here.
 */
export interface RetryPolicyIR {
  /** Number of retries (not counting the first try). 0: no retries. */
  attempts: number;
  perTryTimeoutMs?: number;
  /** Envoy `retry_on` conditions, comma-joined (HTTP and gRPC names), without status codes. */
  retryOn: string;
  /** HTTP status codes from `retryOn` (rendered as `retriable-status-codes`). */
  retriableStatusCodes: number[];
  /** Istio `retryRemoteLocalities`. */
  retryRemoteLocalities?: boolean;
}

/** Istio `HTTPFaultInjection` (envoy.extensions.filters.http.fault.v3). */
export interface FaultIR {
  delay?: { fixedDelayMs: number; percent: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percent: number };
}

/** A mirror destination (Istio `mirrors[]` / `mirror` + `mirrorPercentage`, Gateway API `RequestMirror`). */
export interface MirrorIR {
  cluster: string;
  /** Share of requests copied, 0-100 (Istio's default 100). */
  percent: number;
}

/** Istio `CorsPolicy` (envoy.extensions.filters.http.cors.v3.CorsPolicy). */
export interface CorsIR {
  allowOrigins: StringMatchIR[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
  allowCredentials?: boolean;
}

/**
 * One HTTP route of a virtual host, in match order (the first match wins, as in Envoy and Istio).
 * For gRPC (GRPCRoute), `match.path` is `/<service>/<method>` (exact) or a regex over it.
 */
export interface RouteIR {
  /** Istio `http[].name` or `<kind>/<ns>/<name>/<index>`; unique within the virtual host. */
  name: string;
  match: RouteMatchIR;
  action: RouteActionIR;
  rewrite?: RewriteIR;
  /** Whole-request timeout; 0 disables (Istio's default when unset: no timeout). */
  timeoutMs?: number;
  retries?: RetryPolicyIR;
  fault?: FaultIR;
  mirrors: MirrorIR[];
  requestHeaders?: HeaderOpsIR;
  responseHeaders?: HeaderOpsIR;
  cors?: CorsIR;
  /** `VirtualService/<ns>/<name> http[<i>]` or `HTTPRoute/<ns>/<name> rules[<i>]`, for debugging. */
  source: string;
}

/** One weighted TCP destination of an outbound TCP listener (Istio `tcp[].route[]`). */
export interface TcpWeightedClusterIR {
  cluster: string;
  weight: number;
}

/** Istio `LoadBalancerSettings.SimpleLB`. PASSTHROUGH becomes Envoy's ORIGINAL_DST (no EDS). */
export type SimpleLbIR = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH';

/** Istio `ConsistentHashLB`: exactly one hash key; ring hash unless `maglev`. */
export interface ConsistentHashIR {
  key:
    | { header: string }
    | { cookie: { name: string; path?: string; ttlMs?: number } }
    | { sourceIp: true }
    | { queryParameter: string };
  /** RING_HASH minimum ring size (Istio's default 1024) or MAGLEV table size. */
  minimumRingSize?: number;
  maglev?: boolean;
}

/** Istio `LocalityLoadBalancerSetting` resolved for this proxy. */
export interface LocalityLbIR {
  /**
   * How endpoints are prioritised: the push context already wrote each endpoint's `priority`
   * (0 = the proxy's own locality) from `failover` / `failoverPriority`; `distribute` became
   * locality weights in the load assignment. The translator turns on Envoy's locality-weighted LB
   * when `weighted` is set.
   */
  weighted: boolean;
}

/** Istio `ConnectionPoolSettings` → Envoy circuit breakers and protocol options. */
export interface ConnectionPoolIR {
  maxConnections?: number;
  connectTimeoutMs?: number;
  tcpKeepalive?: { probes?: number; timeSeconds?: number; intervalSeconds?: number };
  maxConnectionDurationMs?: number;
  /** TCP idle timeout of the upstream connection. */
  tcpIdleTimeoutMs?: number;
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  /** HTTP idle timeout of the upstream connection. */
  idleTimeoutMs?: number;
  maxConcurrentStreams?: number;
  /** `UPGRADE`: use HTTP/2 to the upstream for HTTP/1.1 ports. */
  h2Upgrade?: boolean;
  /** Use the downstream request's protocol upstream. */
  useClientProtocol?: boolean;
}

/** Istio `OutlierDetection` (envoy.config.cluster.v3.OutlierDetection). */
export interface OutlierDetectionIR {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  consecutiveLocalOriginFailures?: number;
  splitExternalLocalOriginErrors?: boolean;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

/**
 * Upstream TLS settings other than ISTIO_MUTUAL (which stays in `UpstreamTlsIR`): Istio
 * `ClientTLSSettings` for hosts outside the mesh. File paths are on the proxy's machine.
 */
export interface ClientTlsIR {
  mode: 'DISABLE' | 'SIMPLE' | 'MUTUAL';
  sni?: string;
  subjectAltNames: string[];
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  insecureSkipVerify?: boolean;
}

/**
 * The DestinationRule settings of one outbound cluster (the rule's `trafficPolicy`, overridden by
 * `portLevelSettings` for the port and by the subset's own `trafficPolicy`, as Istio merges them).
 */
export interface ClusterTrafficPolicyIR {
  simpleLb?: SimpleLbIR;
  consistentHash?: ConsistentHashIR;
  locality?: LocalityLbIR;
  connectionPool?: ConnectionPoolIR;
  outlierDetection?: OutlierDetectionIR;
  /** `DestinationRule/<ns>/<name>` (and `subsets[<name>]`), for debugging. */
  source: string;
}

/**
 * Istio's default retry policy for outbound HTTP routes when no VirtualService sets `retries`
 * (istio/pilot `DefaultRetryPolicy`): 2 retries on connect-failure, refused-stream, unavailable,
 * cancelled and status 503, with the previous-hosts predicate the translator adds.
 */
export function istioDefaultRetryPolicy(): RetryPolicyIR {
  return { attempts: 2, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', retriableStatusCodes: [503] };
}
