/**
 * Clusters (envoy/config/cluster/v3/cluster.proto): `inbound|<port>||` STATIC to the local
 * application; `outbound|<port>|<subset>|<host>` EDS over ADS with Istio mutual TLS and the
 * DestinationRule's traffic policy; `outbound|<port>||<ip>` STATIC plaintext to an external
 * authorizer. Also {@link hashPolicyFor}: the route hash policy of a consistent-hash cluster.
 */
import type { AppProtocol, ExternalClusterIR, InboundClusterIR, OutboundClusterIR, ProxyIdentity } from '../../ir/types.js';
import { duration } from '../../xds/protos/loader.js';
import { endpointAddress, ExtensionType, FilterName } from './common.js';
import type { CircuitBreakerThresholds, Cluster, CommonLbConfig, Duration, Http2ProtocolOptions, HttpProtocolOptions, OutlierDetection, RouteHashPolicy, TypedConfig } from './envoy-types.js';
import { clientTransportSocket, upstreamAlpn, upstreamTransportSocket } from './tls.js';

/** Connect timeout of every cluster (Istio's default `connectTimeout`, 10 s). */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * `typedExtensionProtocolOptions` fixing the upstream HTTP version: HTTP/2 for HTTP2/gRPC ports,
 * HTTP/1.1 for HTTP ports, none for TCP.
 */
function protocolOptions(protocol: AppProtocol): Record<string, TypedConfig<HttpProtocolOptions>> | undefined {
  if (protocol === 'TCP') return undefined;
  const explicitHttpConfig: HttpProtocolOptions['explicitHttpConfig'] = protocol === 'HTTP2' ? { http2ProtocolOptions: {} } : { httpProtocolOptions: {} };
  return { [FilterName.HttpProtocolOptions]: { '@type': ExtensionType.HttpProtocolOptions, explicitHttpConfig } };
}

/** A STATIC cluster to the application endpoint of an inbound port, in plaintext. */
export function inboundCluster(c: InboundClusterIR): Cluster {
  const cluster: Cluster = {
    name: c.name,
    type: 'STATIC',
    connectTimeout: duration(CONNECT_TIMEOUT_MS),
    loadAssignment: { clusterName: c.name, endpoints: [{ lbEndpoints: [{ endpoint: { address: endpointAddress(c.endpoint) } }] }] },
  };
  const opts = protocolOptions(c.protocol);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}

/**
 * A STATIC plaintext cluster to an address outside the registry (an external authorizer given by
 * IP), HTTP/2 for gRPC services.
 */
export function externalCluster(c: ExternalClusterIR): Cluster {
  const cluster: Cluster = {
    name: c.name,
    type: 'STATIC',
    connectTimeout: duration(CONNECT_TIMEOUT_MS),
    loadAssignment: { clusterName: c.name, endpoints: [{ lbEndpoints: [{ endpoint: { address: endpointAddress(c.endpoint) } }] }] },
  };
  const opts = protocolOptions(c.protocol);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}

/**
 * The cluster of a mesh service port (or subset): EDS over ADS with Istio mutual TLS by default,
 * shaped by the DestinationRule settings in `c.trafficPolicy` and `c.clientTls` the way Istio's
 * cluster builder renders them (pilot `cluster_traffic_policy.go`; Envoy
 * envoy/config/cluster/v3/{cluster,circuit_breaker,outlier_detection}.proto):
 *
 * - `simpleLb` → `lb_policy` ROUND_ROBIN / LEAST_REQUEST / RANDOM; PASSTHROUGH → an ORIGINAL_DST
 *   cluster (`CLUSTER_PROVIDED`, no EDS); `consistentHash` → RING_HASH (`minimum_ring_size`) or
 *   MAGLEV (`table_size`), with the request hash on the routes ({@link hashPolicyFor}).
 *   No policy: Envoy's default (ROUND_ROBIN).
 * - `circuit_breakers` on every outbound cluster (default priority; limits 2^32-1 and
 *   `track_remaining` unless `connectionPool` sets them, as Istio does);
 * - `connectionPool` → `connect_timeout`, TCP keepalive (`upstream_connection_options`),
 *   and in `HttpProtocolOptions`: `common_http_protocol_options` (idle timeout, falling back to
 *   the TCP idle timeout; max connection duration; max requests per connection), HTTP/2
 *   `max_concurrent_streams`, HTTP/2 for an HTTP/1.1 port with `h2UpgradePolicy: UPGRADE`, the
 *   downstream protocol with `useClientProtocol`.
 * - `outlierDetection` → `outlier_detection` with success-rate ejection off, each consecutive
 *   error count that is set enforced at 100 % (0 when the count is 0; an unset count keeps
 *   Envoy's default), and `common_lb_config.healthy_panic_threshold` = `minHealthPercent`.
 * - `locality.weighted` → `common_lb_config.locality_weighted_lb_config`.
 * - `clientTls` DISABLE → no transport socket; SIMPLE / MUTUAL → {@link clientTransportSocket}.
 */
export function outboundCluster(c: OutboundClusterIR, proxy: ProxyIdentity): Cluster {
  const policy = c.trafficPolicy;
  const pool = policy?.connectionPool;
  const cluster: Cluster = {
    name: c.name,
    type: 'EDS',
    connectTimeout: duration(pool?.connectTimeoutMs ?? CONNECT_TIMEOUT_MS),
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
  };
  if (c.clientTls) {
    const socket = clientTransportSocket(c);
    if (socket) cluster.transportSocket = socket;
  } else {
    // An HTTP/1.1 port upgraded to HTTP/2 (h2UpgradePolicy UPGRADE) offers Istio's HTTP/2 ALPN.
    cluster.transportSocket = upstreamTransportSocket(c, proxy, upstreamAlpn(pool?.h2Upgrade ? 'HTTP2' : c.protocol));
  }
  if (policy?.simpleLb === 'PASSTHROUGH') {
    cluster.type = 'ORIGINAL_DST';
    cluster.lbPolicy = 'CLUSTER_PROVIDED';
    delete cluster.edsClusterConfig;
  } else if (policy?.consistentHash) {
    const ch = policy.consistentHash;
    if (ch.maglev) {
      cluster.lbPolicy = 'MAGLEV';
      if (ch.minimumRingSize !== undefined) cluster.maglevLbConfig = { tableSize: { value: ch.minimumRingSize } };
    } else {
      cluster.lbPolicy = 'RING_HASH';
      if (ch.minimumRingSize !== undefined) cluster.ringHashLbConfig = { minimumRingSize: { value: ch.minimumRingSize } };
    }
  } else if (policy?.simpleLb) {
    cluster.lbPolicy = policy.simpleLb;
  }
  // Istio puts circuit breakers on every outbound cluster, unlimited (2^32-1) unless a
  // DestinationRule connectionPool says otherwise: Envoy's own defaults (1024 connections,
  // 3 concurrent retries) would refuse retries under ordinary load.
  const t: CircuitBreakerThresholds = {
    maxConnections: { value: pool?.maxConnections ?? UNLIMITED },
    maxPendingRequests: { value: pool?.http1MaxPendingRequests ?? UNLIMITED },
    maxRequests: { value: pool?.http2MaxRequests ?? UNLIMITED },
    maxRetries: { value: pool?.maxRetries ?? UNLIMITED },
    trackRemaining: true,
  };
  cluster.circuitBreakers = { thresholds: [t] };
  if (pool) {
    if (pool.tcpKeepalive) {
      const ka: NonNullable<Cluster['upstreamConnectionOptions']>['tcpKeepalive'] = {};
      if (pool.tcpKeepalive.probes !== undefined) ka.keepaliveProbes = { value: pool.tcpKeepalive.probes };
      if (pool.tcpKeepalive.timeSeconds !== undefined) ka.keepaliveTime = { value: pool.tcpKeepalive.timeSeconds };
      if (pool.tcpKeepalive.intervalSeconds !== undefined) ka.keepaliveInterval = { value: pool.tcpKeepalive.intervalSeconds };
      cluster.upstreamConnectionOptions = { tcpKeepalive: ka };
    }
  }
  const od = policy?.outlierDetection;
  const common: CommonLbConfig = {};
  if (od) {
    const out: OutlierDetection = { enforcingSuccessRate: { value: 0 } };
    if (od.consecutive5xxErrors !== undefined) {
      out.consecutive_5xx = { value: od.consecutive5xxErrors };
      out.enforcingConsecutive_5xx = { value: od.consecutive5xxErrors > 0 ? 100 : 0 };
    }
    if (od.consecutiveGatewayErrors !== undefined) {
      out.consecutiveGatewayFailure = { value: od.consecutiveGatewayErrors };
      out.enforcingConsecutiveGatewayFailure = { value: od.consecutiveGatewayErrors > 0 ? 100 : 0 };
    }
    out.interval = duration(od.intervalMs);
    out.baseEjectionTime = duration(od.baseEjectionTimeMs);
    out.maxEjectionPercent = { value: od.maxEjectionPercent };
    if (od.splitExternalLocalOriginErrors) {
      out.splitExternalLocalOriginErrors = true;
      if (od.consecutiveLocalOriginFailures !== undefined && od.consecutiveLocalOriginFailures > 0) {
        out.consecutiveLocalOriginFailure = { value: od.consecutiveLocalOriginFailures };
        out.enforcingConsecutiveLocalOriginFailure = { value: 100 };
      }
      out.enforcingLocalOriginSuccessRate = { value: 0 };
    }
    cluster.outlierDetection = out;
    common.healthyPanicThreshold = { value: od.minHealthPercent };
  }
  if (policy?.locality?.weighted) common.localityWeightedLbConfig = {};
  if (Object.keys(common).length > 0) cluster.commonLbConfig = common;
  const opts = outboundProtocolOptions(c);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}

/** Envoy's "no limit" for a circuit breaker threshold (Istio's default for every threshold). */
const UNLIMITED = 4_294_967_295;

/** The upstream `HttpProtocolOptions` of an outbound cluster (see {@link outboundCluster}); none for TCP. */
function outboundProtocolOptions(c: OutboundClusterIR): Record<string, TypedConfig<HttpProtocolOptions>> | undefined {
  if (c.protocol === 'TCP') return undefined;
  const pool = c.trafficPolicy?.connectionPool;
  const h2 = c.protocol === 'HTTP2' || pool?.h2Upgrade === true;
  const h2Options: Http2ProtocolOptions = {};
  if (pool?.maxConcurrentStreams !== undefined) h2Options.maxConcurrentStreams = { value: pool.maxConcurrentStreams };
  const options: HttpProtocolOptions = {};
  if (pool?.useClientProtocol) {
    options.useDownstreamProtocolConfig = { httpProtocolOptions: {}, http2ProtocolOptions: h2Options };
  } else {
    options.explicitHttpConfig = h2 ? { http2ProtocolOptions: h2Options } : { httpProtocolOptions: {} };
  }
  const commonOptions: NonNullable<HttpProtocolOptions['commonHttpProtocolOptions']> = {};
  const idle = pool?.idleTimeoutMs ?? pool?.tcpIdleTimeoutMs;
  if (idle !== undefined) commonOptions.idleTimeout = duration(idle);
  if (pool?.maxConnectionDurationMs !== undefined) commonOptions.maxConnectionDuration = duration(pool.maxConnectionDurationMs);
  if (pool?.maxRequestsPerConnection !== undefined) commonOptions.maxRequestsPerConnection = { value: pool.maxRequestsPerConnection };
  if (Object.keys(commonOptions).length > 0) options.commonHttpProtocolOptions = commonOptions;
  return { [FilterName.HttpProtocolOptions]: { '@type': ExtensionType.HttpProtocolOptions, ...options } };
}

/**
 * The request hash policy a route to `cluster` needs: Envoy hashes requests only when the route
 * says what to hash (envoy.config.route.v3.RouteAction.hash_policy), so a route whose destination
 * is a consistent-hash cluster (DestinationRule `loadBalancer.consistentHash`, rendered RING_HASH
 * or MAGLEV by {@link outboundCluster}) must carry this. Istio's mapping
 * (`consistentHashToHashPolicy`): `httpHeaderName` → `header`, `httpCookie` → `cookie` (name,
 * path, ttl: Envoy generates the cookie when a ttl is set), `useSourceIp` →
 * `connection_properties.source_ip`, `httpQueryParameterName` → `query_parameter`.
 *
 * Returns undefined when the cluster has no consistent hash (the route then sets no hash policy).
 * For weighted routes Istio uses the hash policy of the first destination that has one.
 */
export function hashPolicyFor(cluster: OutboundClusterIR): RouteHashPolicy[] | undefined {
  const ch = cluster.trafficPolicy?.consistentHash;
  if (!ch || cluster.trafficPolicy?.simpleLb === 'PASSTHROUGH') return undefined;
  const key = ch.key;
  if ('header' in key) return [{ header: { headerName: key.header } }];
  if ('cookie' in key) {
    const cookie: { name: string; path?: string; ttl?: Duration } = { name: key.cookie.name };
    if (key.cookie.path !== undefined) cookie.path = key.cookie.path;
    if (key.cookie.ttlMs !== undefined) cookie.ttl = duration(key.cookie.ttlMs);
    return [{ cookie }];
  }
  if ('sourceIp' in key) return [{ connectionProperties: { sourceIp: true } }];
  return [{ queryParameter: { name: key.queryParameter } }];
}
