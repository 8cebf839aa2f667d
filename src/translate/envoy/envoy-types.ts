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

/** `envoy.config.core.v3.Address`. */
export type Address = { socketAddress: { address: string; portValue: number } } | { pipe: { path: string } };

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

/** `envoy.type.matcher.v3.StringMatcher` (the forms Skiff uses). */
export type StringMatcher = { exact: string } | { prefix: string };

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
  typedConfig: TypedConfig<DownstreamTlsContext | UpstreamTlsContext>;
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

/** `envoy.config.listener.v3.Listener`. */
export interface Listener {
  name: string;
  address: Address;
  filterChains: FilterChain[];
  listenerFilters?: NamedFilter[];
  trafficDirection: 'INBOUND' | 'OUTBOUND';
}

/** `envoy.config.route.v3.Route` (prefix match, route to one cluster). */
export interface Route {
  name: string;
  match: { prefix: string };
  route: { cluster: string; timeout: Duration };
}

/** `envoy.config.route.v3.VirtualHost`. */
export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
}

/** `envoy.config.route.v3.RouteConfiguration`. */
export interface RouteConfiguration {
  name: string;
  virtualHosts: VirtualHost[];
  validateClusters?: { value: boolean };
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
}

/** `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`. */
export interface TcpProxy {
  statPrefix: string;
  cluster: string;
}

/** `envoy.config.endpoint.v3.LbEndpoint`. */
export interface LbEndpoint {
  endpoint: { address: Address };
  loadBalancingWeight?: { value: number };
}

/** `envoy.config.endpoint.v3.LocalityLbEndpoints`. */
export interface LocalityLbEndpoints {
  locality?: { region?: string; zone?: string; subZone?: string };
  lbEndpoints: LbEndpoint[];
}

/** `envoy.config.endpoint.v3.ClusterLoadAssignment`. */
export interface ClusterLoadAssignment {
  clusterName: string;
  endpoints?: LocalityLbEndpoints[];
}

/** `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` (explicit HTTP version). */
export interface HttpProtocolOptions {
  explicitHttpConfig: { httpProtocolOptions: Record<string, never> } | { http2ProtocolOptions: Record<string, never> };
}

/** `envoy.config.cluster.v3.Cluster` (STATIC and EDS clusters). */
export interface Cluster {
  name: string;
  type: 'STATIC' | 'EDS';
  connectTimeout: Duration;
  edsClusterConfig?: { edsConfig: ConfigSource };
  loadAssignment?: ClusterLoadAssignment;
  transportSocket?: TransportSocket;
  typedExtensionProtocolOptions?: Record<string, TypedConfig<HttpProtocolOptions>>;
}
