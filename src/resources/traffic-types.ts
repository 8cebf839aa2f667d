/**
 * Traffic management resource shapes: Istio's DestinationRule and VirtualService
 * (networking.istio.io, https://istio.io/latest/docs/reference/config/networking/destination-rule/
 * and .../virtual-service/) and the Gateway API HTTPRoute and GRPCRoute
 * (gateway.networking.k8s.io/v1, https://gateway-api.sigs.k8s.io/reference/spec/).
 * Field names are exactly those of the references. Durations are strings in Istio's /
 * protobuf JSON form (`"1.5s"`, `"100ms"`, `"1m"`); Gateway API durations use its own subset
 * (`"10s"`, `"500ms"`, `"1h"`).
 *
 * The zod schemas in `traffic-schemas.ts` validate input into these shapes.
 */
import type { LabelSelector, Resource } from './types.js';

// ---------------------------------------------------------------------------------------------
// Shared Istio pieces
// ---------------------------------------------------------------------------------------------

/** networking.istio.io `PortSelector`: a port by number. */
export interface PortSelector {
  number: number;
}

/** networking.istio.io `StringMatch`: exactly one of `exact`, `prefix`, `regex` (RE2 syntax). */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

/** networking.istio.io `Percent`: a percentage 0.0-100.0. */
export interface Percent {
  value?: number;
}

/** networking.istio.io `Destination`: a service host (FQDN or short name) plus optional subset and port. */
export interface Destination {
  host: string;
  /** A DestinationRule subset name for `host`. */
  subset?: string;
  /** Required when the service exposes several ports. */
  port?: PortSelector;
}

// ---------------------------------------------------------------------------------------------
// DestinationRule
// ---------------------------------------------------------------------------------------------

/** `LoadBalancerSettings.SimpleLB`. */
export type SimpleLb = 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

/** `LoadBalancerSettings.ConsistentHashLB.HTTPCookie`. */
export interface HttpCookie {
  name: string;
  path?: string;
  /** Cookie lifetime (duration); when set, Envoy generates the cookie if the request lacks it. */
  ttl?: string;
  attributes?: { name: string; value?: string }[];
}

/** `LoadBalancerSettings.ConsistentHashLB`: exactly one hash key; ring hash (default) or Maglev. */
export interface ConsistentHashLb {
  httpHeaderName?: string;
  httpCookie?: HttpCookie;
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  /** Deprecated: use `ringHash.minimumRingSize`. */
  minimumRingSize?: number;
}

/** networking.istio.io `LocalityLoadBalancerSetting`. */
export interface LocalityLbSetting {
  /** `from` locality → weights (percent) of destination localities. */
  distribute?: { from?: string; to?: Record<string, number> }[];
  failover?: { from?: string; to?: string }[];
  /** Label keys (or `key=value`) ordering failover endpoints. */
  failoverPriority?: string[];
  enabled?: boolean;
}

/** networking.istio.io `LoadBalancerSettings`: `simple` or `consistentHash`. */
export interface LoadBalancerSettings {
  simple?: SimpleLb;
  consistentHash?: ConsistentHashLb;
  localityLbSetting?: LocalityLbSetting;
  /** Duration of slow-start for new endpoints (ROUND_ROBIN / LEAST_REQUEST). */
  warmupDurationSecs?: string;
}

/** `ConnectionPoolSettings.TCPSettings`. */
export interface TcpSettings {
  maxConnections?: number;
  connectTimeout?: string;
  tcpKeepalive?: { probes?: number; time?: string; interval?: string };
  maxConnectionDuration?: string;
  idleTimeout?: string;
}

/** `ConnectionPoolSettings.HTTPSettings`. */
export interface HttpSettings {
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeout?: string;
  h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
  useClientProtocol?: boolean;
  maxConcurrentStreams?: number;
}

/** networking.istio.io `ConnectionPoolSettings`. */
export interface ConnectionPoolSettings {
  tcp?: TcpSettings;
  http?: HttpSettings;
}

/** networking.istio.io `OutlierDetection` (Envoy outlier detection). */
export interface OutlierDetection {
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
  consecutiveGatewayErrors?: number;
  consecutive5xxErrors?: number;
  /** Deprecated (`consecutiveErrors`): use consecutiveGatewayErrors / consecutive5xxErrors. */
  consecutiveErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

/** `ClientTLSSettings.TLSmode`. */
export type ClientTlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

/** networking.istio.io `ClientTLSSettings`: TLS the client proxy originates to the upstream. */
export interface ClientTlsSettings {
  mode?: ClientTlsMode;
  /** File paths on the proxy's host (MUTUAL). */
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  /** Kubernetes secret name: parsed, warned about, not used on VMs. */
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
  caCrl?: string;
}

/** `TrafficPolicy.PortTrafficPolicy`: overrides for one port. */
export interface PortTrafficPolicy {
  port?: PortSelector;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTlsSettings;
}

/** networking.istio.io `TrafficPolicy`. */
export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTlsSettings;
  portLevelSettings?: PortTrafficPolicy[];
  /** Parsed and warned about (HTTP CONNECT tunnelling is not implemented). */
  tunnel?: { protocol?: string; targetHost: string; targetPort: number };
  /** Parsed and warned about. */
  proxyProtocol?: { version?: 'V1' | 'V2' };
}

/** networking.istio.io `Subset`: a named group of endpoints selected by labels. */
export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

/** networking.istio.io DestinationRule spec. */
export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  /**
   * istio.type.v1beta1 `WorkloadSelector` (`matchLabels`, unlike ServiceEntry's `labels`): the
   * client workloads in the rule's namespace it applies to; unset means every workload.
   */
  workloadSelector?: LabelSelector;
}

// ---------------------------------------------------------------------------------------------
// VirtualService
// ---------------------------------------------------------------------------------------------

/** networking.istio.io `HTTPMatchRequest`: all set fields must match (AND). */
export interface HttpMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  /** Header names lower-case; `{}` (no matcher) means "present". */
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
  statPrefix?: string;
}

/** networking.istio.io `Headers.HeaderOperations`. */
export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

/** networking.istio.io `Headers`. */
export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

/** networking.istio.io `HTTPRouteDestination`. */
export interface HttpRouteDestination {
  destination: Destination;
  /** Percent of traffic (0-100); with several destinations, all set and summing to 100. */
  weight?: number;
  headers?: Headers;
}

/** networking.istio.io `HTTPRedirect`. */
export interface HttpRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  /** Default 301. */
  redirectCode?: number;
}

/** networking.istio.io `HTTPDirectResponse`. */
export interface HttpDirectResponse {
  status: number;
  body?: { string?: string; bytes?: string };
}

/** networking.istio.io `RegexRewrite`. */
export interface RegexRewrite {
  match?: string;
  rewrite?: string;
}

/** networking.istio.io `HTTPRewrite`. */
export interface HttpRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: RegexRewrite;
}

/** networking.istio.io `HTTPRetry`. */
export interface HttpRetry {
  attempts?: number;
  perTryTimeout?: string;
  /** Comma-separated Envoy `x-envoy-retry-on` / `x-envoy-retry-grpc-on` values and HTTP status codes. */
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  retryIgnorePreviousHosts?: boolean;
  backoff?: string;
}

/** networking.istio.io `HTTPFaultInjection`. */
export interface HttpFaultInjection {
  delay?: { fixedDelay?: string; exponentialDelay?: string; percentage?: Percent; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; http2Error?: string; percentage?: Percent };
}

/** networking.istio.io `HTTPMirrorPolicy`. */
export interface HttpMirrorPolicy {
  destination: Destination;
  percentage?: Percent;
}

/** networking.istio.io `CorsPolicy`. */
export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  /** Deprecated. */
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

/** networking.istio.io `Delegate` (parsed, warned about: delegation is a gateway feature). */
export interface Delegate {
  name?: string;
  namespace?: string;
}

/** networking.istio.io `HTTPRoute` (VirtualService `http[]`; not the Gateway API kind). */
export interface VsHttpRoute {
  name?: string;
  match?: HttpMatchRequest[];
  route?: HttpRouteDestination[];
  redirect?: HttpRedirect;
  directResponse?: HttpDirectResponse;
  delegate?: Delegate;
  rewrite?: HttpRewrite;
  timeout?: string;
  retries?: HttpRetry;
  fault?: HttpFaultInjection;
  mirror?: Destination;
  mirrorPercentage?: Percent;
  mirrors?: HttpMirrorPolicy[];
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

/** networking.istio.io `L4MatchAttributes`. */
export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

/** networking.istio.io `RouteDestination` (TCP/TLS routes). */
export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

/** networking.istio.io `TCPRoute`. */
export interface VsTcpRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

/** networking.istio.io `TLSMatchAttributes`. */
export interface TlsMatchAttributes {
  sniHosts: string[];
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

/** networking.istio.io `TLSRoute` (parsed, warned about: not implemented). */
export interface VsTlsRoute {
  match: TlsMatchAttributes[];
  route?: RouteDestination[];
}

/** networking.istio.io VirtualService spec. */
export interface VirtualServiceSpec {
  hosts?: string[];
  /** `mesh` (the default when unset) means sidecars; other gateways are warned about. */
  gateways?: string[];
  http?: VsHttpRoute[];
  tls?: VsTlsRoute[];
  tcp?: VsTcpRoute[];
  exportTo?: string[];
}

// ---------------------------------------------------------------------------------------------
// Gateway API (gateway.networking.k8s.io/v1)
// ---------------------------------------------------------------------------------------------

/**
 * Gateway API `ParentReference`. For mesh (GAMMA) routes Skiff accepts a Service
 * (`group: ""`, `kind: Service`), a ServiceEntry (`group: networking.istio.io`, `kind: ServiceEntry`)
 * or a host (`group: networking.istio.io`, `kind: Hostname`, `name: <host>`). `kind: Gateway` is
 * warned about (no gateways on VMs).
 */
export interface ParentReference {
  /** Default `gateway.networking.k8s.io`. */
  group?: string;
  /** Default `Gateway`. */
  kind?: string;
  namespace?: string;
  name: string;
  /** For a mesh parent: the service port name; the route attaches to that port only. */
  sectionName?: string;
  /** For a mesh parent: the service port number; the route attaches to that port only (both set: both must match). */
  port?: number;
}

/** Gateway API `HTTPHeader` (name/value pair). */
export interface GatewayHttpHeader {
  name: string;
  value: string;
}

/** Gateway API `HTTPHeaderFilter` (RequestHeaderModifier / ResponseHeaderModifier). */
export interface HttpHeaderFilter {
  set?: GatewayHttpHeader[];
  add?: GatewayHttpHeader[];
  remove?: string[];
}

/** Gateway API `BackendObjectReference` (kind Service / ServiceEntry / Hostname for Skiff). */
export interface BackendObjectReference {
  /** Default `""` (core). */
  group?: string;
  /** Default `Service`. */
  kind?: string;
  name: string;
  namespace?: string;
  /** Required by Skiff for every backend. */
  port?: number;
}

/** Gateway API `HTTPRequestMirrorFilter`: `percent` or `fraction` (not both). */
export interface HttpRequestMirrorFilter {
  backendRef: BackendObjectReference;
  percent?: number;
  fraction?: { numerator: number; denominator?: number };
}

/** Gateway API `HTTPPathModifier`. */
export interface HttpPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

/** Gateway API `HTTPURLRewriteFilter`. */
export interface HttpUrlRewriteFilter {
  hostname?: string;
  path?: HttpPathModifier;
}

/** Gateway API `HTTPRequestRedirectFilter`. */
export interface HttpRequestRedirectFilter {
  scheme?: 'http' | 'https';
  hostname?: string;
  path?: HttpPathModifier;
  port?: number;
  /** 301 (default) or 302 (also 303, 307, 308 in recent releases). */
  statusCode?: number;
}

/** Gateway API `LocalObjectReference` (ExtensionRef filter; warned about). */
export interface LocalObjectReference {
  group: string;
  kind: string;
  name: string;
}

/** Gateway API `HTTPRouteFilter`: `type` names the one set field. */
export interface HttpRouteFilter {
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestMirror' | 'RequestRedirect' | 'URLRewrite' | 'ExtensionRef';
  requestHeaderModifier?: HttpHeaderFilter;
  responseHeaderModifier?: HttpHeaderFilter;
  requestMirror?: HttpRequestMirrorFilter;
  requestRedirect?: HttpRequestRedirectFilter;
  urlRewrite?: HttpUrlRewriteFilter;
  extensionRef?: LocalObjectReference;
}

/** Gateway API `HTTPPathMatch`; default `{type: PathPrefix, value: "/"}`. */
export interface HttpPathMatch {
  type?: 'Exact' | 'PathPrefix' | 'RegularExpression';
  value?: string;
}

/** Gateway API `HTTPHeaderMatch` / `GRPCHeaderMatch`. */
export interface HttpHeaderMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

/** Gateway API `HTTPQueryParamMatch`. */
export interface HttpQueryParamMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

/** Gateway API `HTTPRouteMatch`: all set fields must match (AND). */
export interface HttpRouteMatch {
  path?: HttpPathMatch;
  headers?: HttpHeaderMatch[];
  queryParams?: HttpQueryParamMatch[];
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'CONNECT' | 'OPTIONS' | 'TRACE' | 'PATCH';
}

/** Gateway API `HTTPBackendRef`. `weight` default 1 (proportional, not percent). */
export interface HttpBackendRef extends BackendObjectReference {
  weight?: number;
  filters?: HttpRouteFilter[];
}

/** Gateway API `HTTPRouteTimeouts` (Gateway API durations, e.g. `10s`, `500ms`). */
export interface HttpRouteTimeouts {
  request?: string;
  backendRequest?: string;
}

/** Gateway API `HTTPRouteRule`. */
export interface HttpRouteRule {
  name?: string;
  matches?: HttpRouteMatch[];
  filters?: HttpRouteFilter[];
  backendRefs?: HttpBackendRef[];
  timeouts?: HttpRouteTimeouts;
}

/** gateway.networking.k8s.io HTTPRoute spec. */
export interface HTTPRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HttpRouteRule[];
}

/** Gateway API `GRPCMethodMatch`; `type` default `Exact`. */
export interface GrpcMethodMatch {
  type?: 'Exact' | 'RegularExpression';
  service?: string;
  method?: string;
}

/** Gateway API `GRPCRouteMatch`. */
export interface GrpcRouteMatch {
  method?: GrpcMethodMatch;
  headers?: HttpHeaderMatch[];
}

/** Gateway API `GRPCRouteFilter`: header modifiers, mirror, extension ref. */
export interface GrpcRouteFilter {
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestMirror' | 'ExtensionRef';
  requestHeaderModifier?: HttpHeaderFilter;
  responseHeaderModifier?: HttpHeaderFilter;
  requestMirror?: HttpRequestMirrorFilter;
  extensionRef?: LocalObjectReference;
}

/** Gateway API `GRPCBackendRef`. */
export interface GrpcBackendRef extends BackendObjectReference {
  weight?: number;
  filters?: GrpcRouteFilter[];
}

/** Gateway API `GRPCRouteRule`. */
export interface GrpcRouteRule {
  name?: string;
  matches?: GrpcRouteMatch[];
  filters?: GrpcRouteFilter[];
  backendRefs?: GrpcBackendRef[];
}

/** gateway.networking.k8s.io GRPCRoute spec. */
export interface GRPCRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: GrpcRouteRule[];
}

/** A networking.istio.io DestinationRule resource. */
export type DestinationRule = Resource<'DestinationRule', DestinationRuleSpec>;
/** A networking.istio.io VirtualService resource. */
export type VirtualService = Resource<'VirtualService', VirtualServiceSpec>;
/** A gateway.networking.k8s.io HTTPRoute resource. */
export type HTTPRoute = Resource<'HTTPRoute', HTTPRouteSpec>;
/** A gateway.networking.k8s.io GRPCRoute resource. */
export type GRPCRoute = Resource<'GRPCRoute', GRPCRouteSpec>;
