/**
 * Route configurations for proxyless gRPC clients (gRFC A28 routing, A31 timeouts, A44 retries),
 * rendered from the same IR routes as Envoy's (src/ir/traffic.ts) but restricted to what
 * grpc-js-xds accepts, because it rejects a whole RouteConfiguration for one unsupported part:
 *
 * - a route action other than `route` (redirect, direct response) → the route is left out, warned;
 * - the route timeout is `max_stream_duration.max_stream_duration` (gRPC ignores `route.timeout`);
 * - retries keep Envoy's `retry_on` (gRPC applies its gRPC status names: `cancelled`,
 *   `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`) and `num_retries` ≥ 1
 *   (gRPC caps attempts at 5);
 * - rewrites, header operations, mirrors, CORS and fault injection are not applied by this
 *   translation (gRPC has no rewrite/mirror/CORS; fault injection needs the HTTP fault filter's
 *   proto), each warned once per route.
 *
 * One RouteConfiguration per client listener (`<host>:<port>`), with one virtual host matching
 * every authority (the listener already names the target).
 */
import type { HeaderMatchIR, RouteIR, StringMatchIR, VirtualHostIR } from '../../ir/types.js';
import { duration } from '../../xds/protos/loader.js';

type StringMatcher = { exact: string } | { prefix: string } | { safeRegex: { regex: string } };

/** `envoy.config.route.v3.HeaderMatcher` (the forms Skiff renders for gRPC). */
export interface GrpcHeaderMatcher {
  name: string;
  stringMatch?: StringMatcher;
  presentMatch?: boolean;
  invertMatch?: boolean;
}

/** `envoy.config.route.v3.Route` in the gRPC subset. */
export interface GrpcRoute {
  name: string;
  match: ({ prefix: string } | { path: string } | { safeRegex: { regex: string } }) & { caseSensitive?: { value: boolean }; headers?: GrpcHeaderMatcher[] };
  route: {
    cluster?: string;
    weightedClusters?: { clusters: Array<{ name: string; weight: { value: number } }> };
    maxStreamDuration?: { maxStreamDuration: { seconds: number; nanos: number } };
    retryPolicy?: { retryOn: string; numRetries: { value: number }; perTryTimeout?: { seconds: number; nanos: number }; retriableStatusCodes?: number[] };
  };
}

/** `envoy.config.route.v3.RouteConfiguration` for one gRPC target. */
export interface GrpcRouteConfiguration {
  name: string;
  virtualHosts: Array<{ name: string; domains: string[]; routes: GrpcRoute[] }>;
}

function stringMatcher(m: StringMatchIR): StringMatcher {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safeRegex: { regex: m.regex } };
}

function headerMatcher(h: HeaderMatchIR): GrpcHeaderMatcher {
  const out: GrpcHeaderMatcher = { name: h.name };
  if (h.match) out.stringMatch = stringMatcher(h.match);
  else out.presentMatch = true;
  if (h.invert) out.invertMatch = true;
  return out;
}

function pathMatch(r: RouteIR): GrpcRoute['match'] {
  const p = r.match.path;
  const base: GrpcRoute['match'] = !p ? { prefix: '/' } : 'exact' in p ? { path: p.exact } : 'prefix' in p ? { prefix: p.prefix } : { safeRegex: { regex: p.regex } };
  if (r.match.ignoreCase) base.caseSensitive = { value: false };
  if (r.match.headers.length > 0) base.headers = r.match.headers.map(headerMatcher);
  return base;
}

/** The gRPC route of one IR route, or undefined (with a warning) when gRPC cannot carry it. */
function grpcRoute(r: RouteIR, where: string, warn: (msg: string) => void): GrpcRoute | undefined {
  if (r.action.kind !== 'forward') {
    warn(`${r.source} (${where}): a ${r.action.kind === 'redirect' ? 'redirect' : 'direct response'} cannot be done by a proxyless gRPC client; the route is left out for gRPC clients`);
    return undefined;
  }
  if (r.match.queryParams.length > 0) {
    warn(`${r.source} (${where}): gRPC requests have no query parameters; the route never matches for gRPC clients and is left out`);
    return undefined;
  }
  const unsupported = [
    r.rewrite ? 'rewrite' : '',
    r.requestHeaders || r.responseHeaders || r.action.clusters.some((c) => c.requestHeaders || c.responseHeaders) ? 'header operations' : '',
    r.mirrors.length > 0 ? 'mirror' : '',
    r.cors ? 'CORS' : '',
    r.fault ? 'fault injection' : '',
  ].filter(Boolean);
  if (unsupported.length > 0) warn(`${r.source} (${where}): ${unsupported.join(', ')} not applied for proxyless gRPC clients`);
  const clusters = r.action.clusters;
  const route: GrpcRoute['route'] = {};
  if (clusters.length === 1 && clusters[0]) route.cluster = clusters[0].cluster;
  else route.weightedClusters = { clusters: clusters.map((c) => ({ name: c.cluster, weight: { value: c.weight } })) };
  if (r.timeoutMs !== undefined && r.timeoutMs > 0) route.maxStreamDuration = { maxStreamDuration: duration(r.timeoutMs) };
  if (r.retries && r.retries.attempts > 0) {
    route.retryPolicy = { retryOn: r.retries.retryOn, numRetries: { value: r.retries.attempts } };
    if (r.retries.perTryTimeoutMs !== undefined && r.retries.perTryTimeoutMs > 0) route.retryPolicy.perTryTimeout = duration(r.retries.perTryTimeoutMs);
    if (r.retries.retriableStatusCodes.length > 0) route.retryPolicy.retriableStatusCodes = [...r.retries.retriableStatusCodes];
  }
  return { name: r.name, match: pathMatch(r), route };
}

/**
 * The RouteConfiguration `name` for the virtual host `vh` of a gRPC target: its routes (or, with
 * none, one route `/` to `vh.cluster`), in match order, minus what gRPC cannot carry (warned).
 */
export function grpcRouteConfiguration(name: string, vh: VirtualHostIR, warn: (msg: string) => void): GrpcRouteConfiguration {
  const routes: GrpcRoute[] = [];
  if (vh.routes === undefined) {
    routes.push({ name: 'default', match: { prefix: '/' }, route: { cluster: vh.cluster } });
  } else {
    for (const r of vh.routes) {
      const g = grpcRoute(r, name, warn);
      if (g) routes.push(g);
    }
  }
  return { name, virtualHosts: [{ name: vh.name, domains: ['*'], routes }] };
}
