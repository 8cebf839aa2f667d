/**
 * TypeScript shapes of the Envoy v3 messages Skiff builds, in protobufjs object form (camelCase
 * field names, enums by name, `google.protobuf.Any` as `{'@type': url, ...fields}`, Durations as
 * `{seconds, nanos}`). Only the fields Skiff sets are declared, so a misspelt field is a compile
 * error here and an {@link UnknownFieldError} from `encodeStrict` at run time.
 *
 * Field names follow the Envoy API protos (envoy/config/{listener,cluster,route,endpoint,core}/v3,
 * envoy/extensions/transport_sockets/tls/v3/{tls,common,secret}.proto,
 * envoy/extensions/filters/network/{http_connection_manager,tcp_proxy}/v3).
 */

/** `google.protobuf.Duration`. */
export interface Duration {
  seconds: number;
  nanos: number;
}

/** A `google.protobuf.Any` given by its payload: `@type` is the payload's type URL. */
export type TypedConfig<T extends object = object> = { '@type': string } & T;

/** `envoy.config.core.v3.Address` (an internal address names an internal listener). */
export type Address =
  | { socketAddress: { address: string; portValue: number } }
  | { pipe: { path: string } }
  | { envoyInternalAddress: { serverListenerName: string; endpointId?: string } };

/** `google.protobuf.Struct` in protobufjs object form (string values only, as Skiff writes them). */
export interface StructObject {
  fields: Record<string, { stringValue: string }>;
}

/** `envoy.config.core.v3.ConfigSource` (the ADS and gRPC API forms). */
export interface ConfigSource {
  ads?: Record<string, never>;
  apiConfigSource?: {
    apiType: 'GRPC';
    transportApiVersion: 'V3';
    grpcServices: Array<{ envoyGrpc: { clusterName: string } }>;
    setNodeOnFirstMessageOnly?: boolean;
  };
  initialFetchTimeout?: Duration;
  resourceApiVersion: 'V3';
}

/** `envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig`. */
export interface SdsSecretConfig {
  name: string;
  sdsConfig: ConfigSource;
}

/** `envoy.type.matcher.v3.StringMatcher` (the forms Skiff uses), optionally case-insensitive. */
export type StringMatcher = ({ exact: string } | { prefix: string } | { suffix: string } | { safeRegex: { regex: string } }) & { ignoreCase?: boolean };

/** `envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher`. */
export interface SubjectAltNameMatcher {
  sanType: 'URI' | 'DNS' | 'EMAIL' | 'IP_ADDRESS';
  matcher: StringMatcher;
}

/** `envoy.extensions.transport_sockets.tls.v3.CommonTlsContext`. */
export interface CommonTlsContext {
  tlsCertificateSdsSecretConfigs: SdsSecretConfig[];
  combinedValidationContext: {
    defaultValidationContext: { matchTypedSubjectAltNames?: SubjectAltNameMatcher[] };
    validationContextSdsSecretConfig: SdsSecretConfig;
  };
  alpnProtocols?: string[];
  tlsParams?: { tlsMinimumProtocolVersion?: 'TLSv1_2' | 'TLSv1_3'; tlsMaximumProtocolVersion?: 'TLSv1_2' | 'TLSv1_3' };
}

/** `envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`. */
export interface DownstreamTlsContext {
  commonTlsContext: CommonTlsContext;
  requireClientCertificate: { value: boolean };
}

/** `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`. */
export interface UpstreamTlsContext {
  commonTlsContext: CommonTlsContext;
  sni: string;
}

/** `envoy.config.core.v3.TransportSocket`. */
export interface TransportSocket {
  name: string;
  typedConfig: TypedConfig<DownstreamTlsContext | UpstreamTlsContext | InternalUpstreamTransport | ProxyProtocolUpstreamTransport> | TypedConfig;
}

/** `envoy.extensions.filters.http.set_filter_state.v3.Config` (request-header time values). */
export interface SetFilterStateConfig {
  onRequestHeaders: Array<{
    objectKey: string;
    factoryKey: string;
    formatString: { textFormatSource: { inlineString: string } };
    sharedWithUpstream: 'NONE' | 'ONCE' | 'TRANSITIVE';
  }>;
}

/** `envoy.extensions.transport_sockets.internal_upstream.v3.InternalUpstreamTransport`. */
export interface InternalUpstreamTransport {
  /** Endpoint (`host`) metadata copied into the internal listener connection's dynamic metadata. */
  passthroughMetadata?: Array<{ kind: { host: Record<string, never> }; name: string }>;
  transportSocket: TransportSocket;
}

/** `envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport`. */
export interface ProxyProtocolUpstreamTransport {
  config: { version: 'V1' | 'V2' };
  transportSocket: TransportSocket;
}

/** `envoy.config.listener.v3.Filter` (network filter) and `ListenerFilter`, by typed config. */
export interface NamedFilter {
  name: string;
  typedConfig: TypedConfig;
}

/** `envoy.config.listener.v3.FilterChainMatch` (the fields Skiff uses). */
export interface FilterChainMatch {
  transportProtocol?: 'tls' | 'raw_buffer';
  applicationProtocols?: string[];
}

/** `envoy.config.listener.v3.FilterChain`. */
export interface FilterChain {
  name: string;
  filterChainMatch?: FilterChainMatch;
  filters: NamedFilter[];
  transportSocket?: TransportSocket;
}

/** `envoy.config.listener.v3.Listener`; an internal listener has `internalListener` and no address. */
export interface Listener {
  name: string;
  address?: Address;
  internalListener?: Record<string, never>;
  filterChains: FilterChain[];
  listenerFilters?: NamedFilter[];
  trafficDirection: 'INBOUND' | 'OUTBOUND';
}

/** `envoy.type.v3.FractionalPercent`. */
export interface FractionalPercent {
  numerator: number;
  denominator: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
}

/** `envoy.config.route.v3.QueryParameterMatcher`. */
export type QueryParameterMatcher = { name: string } & ({ presentMatch: boolean } | { stringMatch: StringMatcher });

/** `envoy.config.route.v3.RouteMatch` (path forms, case sensitivity, headers, query parameters). */
export type RouteMatch = ({ prefix: string } | { path: string } | { safeRegex: { regex: string } }) & {
  caseSensitive?: { value: boolean };
  headers?: Array<HeaderMatcher & { invertMatch?: boolean }>;
  queryParameters?: QueryParameterMatcher[];
};

/** `envoy.config.route.v3.RetryPolicy` (the fields Istio sets). */
export interface RetryPolicy {
  retryOn: string;
  numRetries: { value: number };
  perTryTimeout?: Duration;
  retryHostPredicate?: TypedExtensionConfig[];
  hostSelectionRetryMaxAttempts?: number;
  retriableStatusCodes?: number[];
  retryPriority?: TypedExtensionConfig;
}

/** `envoy.config.route.v3.WeightedCluster.ClusterWeight`. */
export interface ClusterWeight {
  name: string;
  weight: { value: number };
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
}

/** `envoy.config.route.v3.RouteAction` (the fields Skiff sets). */
export interface RouteAction {
  cluster?: string;
  weightedClusters?: { clusters: ClusterWeight[] };
  timeout: Duration;
  retryPolicy?: RetryPolicy;
  requestMirrorPolicies?: Array<{ cluster: string; runtimeFraction?: { defaultValue: FractionalPercent } }>;
  prefixRewrite?: string;
  regexRewrite?: { pattern: { regex: string }; substitution: string };
  hostRewriteLiteral?: string;
  hashPolicy?: RouteHashPolicy[];
}

/** `envoy.config.route.v3.RedirectAction`. */
export interface RedirectAction {
  pathRedirect?: string;
  prefixRewrite?: string;
  hostRedirect?: string;
  portRedirect?: number;
  schemeRedirect?: string;
  responseCode?: 'MOVED_PERMANENTLY' | 'FOUND' | 'SEE_OTHER' | 'TEMPORARY_REDIRECT' | 'PERMANENT_REDIRECT';
}

/** `envoy.config.route.v3.Route`: forward (`route`), `redirect` or `directResponse`. */
export interface Route {
  name: string;
  match: RouteMatch;
  route?: RouteAction;
  redirect?: RedirectAction;
  directResponse?: { status: number; body?: { inlineString: string } };
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
  typedPerFilterConfig?: Record<string, TypedConfig>;
}

/** `envoy.extensions.filters.http.fault.v3.HTTPFault` (per-route: fixed delay and abort). */
export interface HttpFault {
  delay?: { fixedDelay: Duration; percentage: FractionalPercent };
  abort?: ({ httpStatus: number } | { grpcStatus: number }) & { percentage: FractionalPercent };
}

/** `envoy.extensions.filters.http.cors.v3.CorsPolicy` (per-route). */
export interface CorsPolicy {
  allowOriginStringMatch?: StringMatcher[];
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials?: { value: boolean };
}

/** `envoy.config.route.v3.Route` terminating HTTP CONNECT: the tunnelled bytes go to `cluster`. */
export interface ConnectRoute {
  name: string;
  match: { connectMatcher: Record<string, never>; headers?: HeaderMatcher[] };
  route: { cluster: string; upgradeConfigs: Array<{ upgradeType: 'CONNECT'; connectConfig: Record<string, never> }> };
}

/** `envoy.config.route.v3.VirtualHost`. */
export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Array<Route | ConnectRoute>;
}

/** `envoy.config.core.v3.HeaderValueOption`. */
export interface HeaderValueOption {
  header: { key: string; value: string };
  appendAction: 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';
}

/** `envoy.config.route.v3.RouteConfiguration`. */
export interface RouteConfiguration {
  name: string;
  virtualHosts: VirtualHost[];
  validateClusters?: { value: boolean };
  requestHeadersToAdd?: HeaderValueOption[];
}

/** `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`. */
export interface HttpConnectionManager {
  statPrefix: string;
  codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  rds?: { configSource: ConfigSource; routeConfigName: string };
  routeConfig?: RouteConfiguration;
  httpFilters: NamedFilter[];
  forwardClientCertDetails?: 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';
  setCurrentClientCertDetails?: { uri?: boolean; subject?: boolean; cert?: boolean; chain?: boolean; dns?: boolean };
  normalizePath?: { value: boolean };
  /** Use the connection's address as the client address (not `x-forwarded-for`). */
  useRemoteAddress?: { value: boolean };
  http2ProtocolOptions?: { allowConnect: boolean };
  upgradeConfigs?: Array<{ upgradeType: 'CONNECT' }>;
}

/** `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`: one `cluster` or `weightedClusters`. */
export interface TcpProxy {
  statPrefix: string;
  cluster?: string;
  weightedClusters?: { clusters: Array<{ name: string; weight: number }> };
  /** Tunnel the connection in an HTTP CONNECT request for `hostname` (command operators allowed). */
  tunnelingConfig?: { hostname: string };
}

/** `envoy.config.endpoint.v3.LbEndpoint`. */
export interface LbEndpoint {
  endpoint: { address: Address };
  loadBalancingWeight?: { value: number };
  /** Endpoint metadata: transport socket match criteria, values for an internal listener. */
  metadata?: { filterMetadata: Record<string, StructObject> };
}

/** `envoy.config.endpoint.v3.LocalityLbEndpoints`. */
export interface LocalityLbEndpoints {
  locality?: { region?: string; zone?: string; subZone?: string };
  lbEndpoints: LbEndpoint[];
  /** The locality's weight under locality-weighted load balancing. */
  loadBalancingWeight?: { value: number };
  /** Failover priority, 0 (highest) up without gaps. */
  priority?: number;
}

/** `envoy.config.endpoint.v3.ClusterLoadAssignment`. */
export interface ClusterLoadAssignment {
  clusterName: string;
  endpoints?: LocalityLbEndpoints[];
}

/** `envoy.config.core.v3.Http2ProtocolOptions` (the fields Skiff sets). */
export interface Http2ProtocolOptions {
  maxConcurrentStreams?: { value: number };
}

/**
 * `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`: the upstream HTTP version (explicit, or
 * the downstream's) and `envoy.config.core.v3.HttpProtocolOptions` limits.
 */
export interface HttpProtocolOptions {
  explicitHttpConfig?: { httpProtocolOptions: Record<string, never> } | { http2ProtocolOptions: Http2ProtocolOptions };
  useDownstreamProtocolConfig?: { httpProtocolOptions: Record<string, never>; http2ProtocolOptions: Http2ProtocolOptions };
  commonHttpProtocolOptions?: {
    idleTimeout?: Duration;
    maxConnectionDuration?: Duration;
    maxRequestsPerConnection?: { value: number };
  };
}

/** `envoy.config.cluster.v3.CircuitBreakers.Thresholds` (default priority). */
export interface CircuitBreakerThresholds {
  maxConnections?: { value: number };
  maxPendingRequests?: { value: number };
  maxRequests?: { value: number };
  maxRetries?: { value: number };
  trackRemaining?: boolean;
}

/** `envoy.config.cluster.v3.OutlierDetection` (the fields Istio sets; `_5xx` keeps protobufjs' field name). */
export interface OutlierDetection {
  consecutive_5xx?: { value: number };
  enforcingConsecutive_5xx?: { value: number };
  consecutiveGatewayFailure?: { value: number };
  enforcingConsecutiveGatewayFailure?: { value: number };
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailure?: { value: number };
  enforcingConsecutiveLocalOriginFailure?: { value: number };
  enforcingLocalOriginSuccessRate?: { value: number };
  enforcingSuccessRate?: { value: number };
  interval?: Duration;
  baseEjectionTime?: Duration;
  maxEjectionPercent?: { value: number };
}

/** `envoy.config.cluster.v3.Cluster.CommonLbConfig` (panic threshold, locality-weighted LB). */
export interface CommonLbConfig {
  healthyPanicThreshold?: { value: number };
  localityWeightedLbConfig?: Record<string, never>;
}

/** `envoy.config.core.v3.DataSource` read from a file on the proxy's machine. */
export interface FileDataSource {
  filename: string;
}

/**
 * `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext` for TLS to hosts outside the mesh
 * (DestinationRule SIMPLE / MUTUAL): certificates and the CA from files, or the system trust store.
 */
export interface FileUpstreamTlsContext {
  commonTlsContext: {
    tlsCertificates?: Array<{ certificateChain: FileDataSource; privateKey: FileDataSource }>;
    validationContext?: {
      trustedCa?: FileDataSource;
      systemRootCerts?: Record<string, never>;
      matchTypedSubjectAltNames?: SubjectAltNameMatcher[];
    };
    alpnProtocols?: string[];
  };
  sni?: string;
}

/**
 * `envoy.config.route.v3.RouteAction.HashPolicy`: what a consistent-hash cluster (RING_HASH,
 * MAGLEV) hashes a request on.
 */
export type RouteHashPolicy =
  | { header: { headerName: string } }
  | { cookie: { name: string; path?: string; ttl?: Duration } }
  | { connectionProperties: { sourceIp: boolean } }
  | { queryParameter: { name: string } };

/** `envoy.config.cluster.v3.Cluster` (STATIC, EDS and ORIGINAL_DST clusters). */
export interface Cluster {
  name: string;
  type: 'STATIC' | 'EDS' | 'ORIGINAL_DST';
  connectTimeout: Duration;
  edsClusterConfig?: { edsConfig: ConfigSource };
  loadAssignment?: ClusterLoadAssignment;
  transportSocket?: TransportSocket;
  /** Transport sockets chosen by endpoint metadata (`envoy.transport_socket_match`). */
  transportSocketMatches?: Array<{ name: string; match: StructObject; transportSocket: TransportSocket }>;
  lbPolicy?: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'CLUSTER_PROVIDED';
  ringHashLbConfig?: { minimumRingSize?: { value: number } };
  maglevLbConfig?: { tableSize?: { value: number } };
  circuitBreakers?: { thresholds: CircuitBreakerThresholds[] };
  outlierDetection?: OutlierDetection;
  commonLbConfig?: CommonLbConfig;
  /** TCP keepalive of upstream connections (seconds). */
  upstreamConnectionOptions?: { tcpKeepalive: { keepaliveProbes?: { value: number }; keepaliveTime?: { value: number }; keepaliveInterval?: { value: number } } };
  /** ORIGINAL_DST: the destination `ip:port` from the connection's dynamic metadata. */
  originalDstLbConfig?: { metadataKey: { key: string; path: Array<{ key: string }> } };
  typedExtensionProtocolOptions?: Record<string, TypedConfig<HttpProtocolOptions>>;
}

/** `envoy.config.core.v3.CidrRange` (`prefixLen` is a `UInt32Value`). */
export interface CidrRange {
  addressPrefix: string;
  prefixLen: { value: number };
}

/** `envoy.config.route.v3.HeaderMatcher` (presence or string match). */
export type HeaderMatcher = { name: string } & ({ presentMatch: boolean } | { stringMatch: StringMatcher });

/** `envoy.type.matcher.v3.ValueMatcher` (the forms Skiff uses). */
export type ValueMatcher =
  | { stringMatch: StringMatcher }
  | { listMatch: { oneOf: ValueMatcher } }
  | { orMatch: { valueMatchers: ValueMatcher[] } };

/** `envoy.type.matcher.v3.MetadataMatcher`: the value at `path` in filter `filter`'s dynamic metadata. */
export interface MetadataMatcher {
  filter: string;
  path: Array<{ key: string }>;
  value: ValueMatcher;
}

/** `envoy.config.core.v3.TypedExtensionConfig`. */
export interface TypedExtensionConfig {
  name: string;
  typedConfig: TypedConfig;
}

/** `envoy.config.rbac.v3.Permission`: what a request or connection asks for. */
export type Permission =
  | { any: true }
  | { andRules: { rules: Permission[] } }
  | { orRules: { rules: Permission[] } }
  | { notRule: Permission }
  | { header: HeaderMatcher }
  | { urlPath: { path: StringMatcher } }
  | { uriTemplate: TypedExtensionConfig }
  | { destinationIp: CidrRange }
  | { destinationPort: number }
  | { metadata: MetadataMatcher }
  | { requestedServerName: StringMatcher };

/** `envoy.config.rbac.v3.Principal`: who asks. */
export type Principal =
  | { any: true }
  | { andIds: { ids: Principal[] } }
  | { orIds: { ids: Principal[] } }
  | { notId: Principal }
  | { authenticated: { principalName: StringMatcher } }
  | { directRemoteIp: CidrRange }
  | { remoteIp: CidrRange }
  | { header: HeaderMatcher }
  | { metadata: MetadataMatcher }
  | { filterState: { key: string; stringMatch: StringMatcher } };

/** `envoy.config.rbac.v3.Policy`: matches when one permission and one principal match. */
export interface RbacPolicy {
  permissions: Permission[];
  principals: Principal[];
}

/** `envoy.config.rbac.v3.RBAC`: `policies` by name; ALLOW with no policy denies everything. */
export interface RbacRules {
  action: 'ALLOW' | 'DENY' | 'LOG';
  policies: Record<string, RbacPolicy>;
}

/** `envoy.extensions.filters.http.rbac.v3.RBAC`. */
export interface HttpRbac {
  rules?: RbacRules;
  shadowRules?: RbacRules;
  shadowRulesStatPrefix?: string;
}

/** `envoy.extensions.filters.network.rbac.v3.RBAC`. */
export interface NetworkRbac extends HttpRbac {
  statPrefix: string;
}

/** `envoy.type.matcher.v3.ListStringMatcher`. */
export interface ListStringMatcher {
  patterns: StringMatcher[];
}

/** `envoy.config.core.v3.GrpcService` through Envoy's own gRPC client. */
export interface GrpcService {
  envoyGrpc: { clusterName: string; authority?: string };
  timeout: Duration;
}

/** `envoy.extensions.filters.http.ext_authz.v3.ExtAuthz` (the fields Skiff sets). */
export interface HttpExtAuthz {
  httpService?: {
    serverUri: { uri: string; cluster: string; timeout: Duration };
    pathPrefix?: string;
    authorizationRequest?: { headersToAdd: Array<{ key: string; value: string }> };
    authorizationResponse?: { allowedUpstreamHeaders?: ListStringMatcher; allowedClientHeaders?: ListStringMatcher; allowedClientHeadersOnSuccess?: ListStringMatcher };
  };
  grpcService?: GrpcService;
  transportApiVersion: 'V3';
  failureModeAllow?: boolean;
  statusOnError?: { code: number };
  allowedHeaders?: ListStringMatcher;
  withRequestBody?: { maxRequestBytes: number; allowPartialMessage?: boolean; packAsBytes?: boolean };
  filterEnabledMetadata: MetadataMatcher;
}

/** `envoy.extensions.filters.network.ext_authz.v3.ExtAuthz`. */
export interface NetworkExtAuthz {
  statPrefix: string;
  grpcService: GrpcService;
  transportApiVersion: 'V3';
  failureModeAllow?: boolean;
  filterEnabledMetadata: MetadataMatcher;
}

/** `envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement`. */
export type JwtRequirement =
  | { providerName: string }
  | { requiresAny: { requirements: JwtRequirement[] } }
  | { requiresAll: { requirements: JwtRequirement[] } }
  | { allowMissing: Record<string, never> };

/** `envoy.extensions.filters.http.jwt_authn.v3.JwtProvider` (the fields Skiff sets). */
export interface JwtProvider {
  issuer: string;
  audiences?: string[];
  localJwks: { inlineString: string };
  forward?: boolean;
  fromHeaders?: Array<{ name: string; valuePrefix?: string }>;
  fromParams?: string[];
  fromCookies?: string[];
  forwardPayloadHeader?: string;
  payloadInMetadata: string;
  normalizePayloadInMetadata?: { spaceDelimitedClaims: string[] };
  claimToHeaders?: Array<{ headerName: string; claimName: string }>;
}

/** `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`. */
export interface JwtAuthentication {
  providers: Record<string, JwtProvider>;
  rules: Array<{ match: { prefix: string }; requires: JwtRequirement }>;
  bypassCorsPreflight?: boolean;
}
