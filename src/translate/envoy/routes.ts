/**
 * Route configurations (envoy/config/route/v3/route.proto): the RDS ones of outbound HTTP listeners
 * and the inline one of each inbound HTTP listener. A virtual host without routes from a
 * VirtualService / HTTPRoute / GRPCRoute has one route matching `/` to its cluster with no route
 * timeout (Istio's default: no timeout unless a VirtualService sets one). Routes from those
 * resources are rendered as the IR says (`src/ir/traffic.ts`), with Istio's Envoy shapes:
 * weighted clusters, retry policy with the previous-hosts predicate, mirrors as runtime fractions
 * (denominator MILLION), fault and CORS as per-route `typed_per_filter_config`.
 */
import type { ClusterIR, InboundListenerIR, RouteConfigIR, VirtualHostIR } from '../../ir/types.js';
import { hashPolicyFor } from './clusters.js';
import type { CorsIR, FaultIR, HeaderMatchIR, HeaderOpsIR, RetryPolicyIR, RouteIR, StringMatchIR } from '../../ir/traffic.js';
import { istioDefaultRetryPolicy } from '../../ir/traffic.js';
import { duration } from '../../xds/protos/loader.js';
import { ExtensionType, FilterName } from './common.js';
import type {
  ClusterWeight,
  CorsPolicy,
  FractionalPercent,
  HeaderMatcher,
  HeaderValueOption,
  HttpFault,
  RetryPolicy,
  Route,
  RouteAction,
  RouteConfiguration,
  RouteMatch,
  StringMatcher,
  TypedConfig,
  VirtualHost,
} from './envoy-types.js';

function defaultRoute(cluster: string): Route {
  return { name: 'default', match: { prefix: '/' }, route: { cluster, timeout: duration(0) } };
}

/**
 * A percentage (0-100, fractions allowed) as an Envoy FractionalPercent over a MILLION, as Istio
 * renders VirtualService percentages.
 */
export function fractionalPercent(percent: number): FractionalPercent {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/** An IR string match as an Envoy StringMatcher (`regex` → `safe_regex`, RE2). */
export function stringMatcherOf(m: StringMatchIR): StringMatcher {
  if ('exact' in m) return { exact: m.exact };
  // Envoy's StringMatcher.prefix must not be empty: an empty prefix matches everything.
  if ('prefix' in m) return m.prefix === '' ? { safeRegex: { regex: '.*' } } : { prefix: m.prefix };
  return { safeRegex: { regex: m.regex } };
}

function headerMatcherOf(h: HeaderMatchIR): HeaderMatcher & { invertMatch?: boolean } {
  const base: HeaderMatcher = h.match ? { name: h.name, stringMatch: stringMatcherOf(h.match) } : { name: h.name, presentMatch: true };
  return h.invert ? { ...base, invertMatch: true } : base;
}

function routeMatchOf(r: RouteIR): RouteMatch {
  const p = r.match.path;
  let match: RouteMatch;
  if (!p) match = { prefix: '/' };
  else if ('exact' in p) match = { path: p.exact };
  else if ('prefix' in p) match = { prefix: p.prefix };
  else match = { safeRegex: { regex: p.regex } };
  if (r.match.ignoreCase) match.caseSensitive = { value: false };
  if (r.match.headers.length > 0) match.headers = r.match.headers.map(headerMatcherOf);
  if (r.match.queryParams.length > 0) {
    match.queryParameters = r.match.queryParams.map((q) => (q.match ? { name: q.name, stringMatch: stringMatcherOf(q.match) } : { name: q.name, presentMatch: true }));
  }
  return match;
}

/** Header operations as Envoy's `*_headers_to_add` (set: overwrite, add: append) and `*_to_remove`. */
function headersToAdd(ops: HeaderOpsIR): HeaderValueOption[] {
  return [
    ...Object.entries(ops.set).map(([key, value]): HeaderValueOption => ({ header: { key, value }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...Object.entries(ops.add).map(([key, value]): HeaderValueOption => ({ header: { key, value }, appendAction: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
}

function mergeOps(a: HeaderOpsIR | undefined, b: HeaderOpsIR | undefined): HeaderOpsIR | undefined {
  if (!a) return b;
  if (!b) return a;
  return { set: { ...a.set, ...b.set }, add: { ...a.add, ...b.add }, remove: [...new Set([...a.remove, ...b.remove])] };
}

function applyHeaderOps(target: { requestHeadersToAdd?: HeaderValueOption[]; requestHeadersToRemove?: string[]; responseHeadersToAdd?: HeaderValueOption[]; responseHeadersToRemove?: string[] }, req: HeaderOpsIR | undefined, resp: HeaderOpsIR | undefined): void {
  if (req) {
    const add = headersToAdd(req);
    if (add.length) target.requestHeadersToAdd = add;
    if (req.remove.length) target.requestHeadersToRemove = [...req.remove];
  }
  if (resp) {
    const add = headersToAdd(resp);
    if (add.length) target.responseHeadersToAdd = add;
    if (resp.remove.length) target.responseHeadersToRemove = [...resp.remove];
  }
}

/** Istio's Envoy retry policy for an IR retry policy; undefined when retries are off. */
export function retryPolicyOf(r: RetryPolicyIR): RetryPolicy | undefined {
  if (r.attempts <= 0) return undefined;
  const out: RetryPolicy = {
    retryOn: r.retryOn,
    numRetries: { value: r.attempts },
    retryHostPredicate: [{ name: FilterName.PreviousHosts, typedConfig: { '@type': ExtensionType.PreviousHostsPredicate } }],
    hostSelectionRetryMaxAttempts: 5,
  };
  if (r.perTryTimeoutMs !== undefined) out.perTryTimeout = duration(r.perTryTimeoutMs);
  if (r.retriableStatusCodes.length > 0) out.retriableStatusCodes = [...r.retriableStatusCodes];
  if (r.retryRemoteLocalities) {
    const config: TypedConfig<{ updateFrequency: number }> = { '@type': ExtensionType.PreviousPrioritiesConfig, updateFrequency: 2 };
    out.retryPriority = { name: FilterName.PreviousPriorities, typedConfig: config };
  }
  return out;
}

/** The per-route HTTP fault filter config of an IR fault. */
export function faultConfigOf(f: FaultIR): HttpFault {
  const out: HttpFault = {};
  if (f.delay) out.delay = { fixedDelay: duration(f.delay.fixedDelayMs), percentage: fractionalPercent(f.delay.percent) };
  if (f.abort) {
    const pct = fractionalPercent(f.abort.percent);
    out.abort = f.abort.grpcStatus !== undefined ? { grpcStatus: f.abort.grpcStatus, percentage: pct } : { httpStatus: f.abort.httpStatus ?? 503, percentage: pct };
  }
  return out;
}

/** The per-route CORS policy of an IR CORS policy (envoy.extensions.filters.http.cors.v3.CorsPolicy). */
export function corsPolicyOf(c: CorsIR): CorsPolicy {
  const out: CorsPolicy = {};
  if (c.allowOrigins.length) out.allowOriginStringMatch = c.allowOrigins.map(stringMatcherOf);
  if (c.allowMethods.length) out.allowMethods = c.allowMethods.join(',');
  if (c.allowHeaders.length) out.allowHeaders = c.allowHeaders.join(',');
  if (c.exposeHeaders.length) out.exposeHeaders = c.exposeHeaders.join(',');
  if (c.maxAgeSeconds !== undefined) out.maxAge = String(c.maxAgeSeconds);
  if (c.allowCredentials !== undefined) out.allowCredentials = { value: c.allowCredentials };
  return out;
}

const REDIRECT_CODES = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' } as const;

/** Escapes `\` so a literal path survives as a regex substitution. */
function literalSubstitution(s: string): string {
  return s.replace(/\\/g, '\\\\');
}

/**
 * One IR route as an Envoy route. `clusters` (the proxy's clusters by name) supplies the request
 * hash policy of a consistent-hash destination ({@link hashPolicyFor}; for a weighted route, the
 * first destination that has one, as Istio does).
 */
export function routeOf(r: RouteIR, clusters: ReadonlyMap<string, ClusterIR> = new Map()): Route {
  const route: Route = { name: r.name, match: routeMatchOf(r) };
  let routeReq = r.requestHeaders;
  let routeResp = r.responseHeaders;
  const a = r.action;
  if (a.kind === 'redirect') {
    route.redirect = { responseCode: REDIRECT_CODES[a.status] };
    if (a.path !== undefined) route.redirect.pathRedirect = a.path;
    if (a.prefixRewrite !== undefined) route.redirect.prefixRewrite = a.prefixRewrite;
    if (a.host !== undefined) route.redirect.hostRedirect = a.host;
    if (a.port !== undefined) route.redirect.portRedirect = a.port;
    if (a.scheme !== undefined) route.redirect.schemeRedirect = a.scheme;
  } else if (a.kind === 'direct') {
    route.directResponse = a.body !== undefined ? { status: a.status, body: { inlineString: a.body } } : { status: a.status };
  } else {
    const live = a.clusters.filter((c) => c.weight > 0);
    const action: RouteAction = { timeout: duration(r.timeoutMs ?? 0) };
    if (live.length === 1) {
      const only = live[0]!;
      action.cluster = only.cluster;
      routeReq = mergeOps(routeReq, only.requestHeaders);
      routeResp = mergeOps(routeResp, only.responseHeaders);
    } else {
      action.weightedClusters = {
        clusters: live.map((c) => {
          const w: ClusterWeight = { name: c.cluster, weight: { value: c.weight } };
          applyHeaderOps(w, c.requestHeaders, c.responseHeaders);
          return w;
        }),
      };
    }
    for (const wc of live) {
      const c = clusters.get(wc.cluster);
      const hash = c?.direction === 'outbound' ? hashPolicyFor(c) : undefined;
      if (hash) {
        action.hashPolicy = hash;
        break;
      }
    }
    const retry = r.retries ? retryPolicyOf(r.retries) : undefined;
    if (retry) action.retryPolicy = retry;
    if (r.mirrors.length > 0) {
      action.requestMirrorPolicies = r.mirrors.map((m) => (m.percent >= 100 ? { cluster: m.cluster } : { cluster: m.cluster, runtimeFraction: { defaultValue: fractionalPercent(m.percent) } }));
    }
    const rw = r.rewrite;
    if (rw?.fullPath !== undefined) action.regexRewrite = { pattern: { regex: '^/.*$' }, substitution: literalSubstitution(rw.fullPath) };
    else if (rw?.regex) action.regexRewrite = { pattern: { regex: rw.regex.pattern }, substitution: rw.regex.substitution };
    else if (rw?.prefix !== undefined) action.prefixRewrite = rw.prefix;
    if (rw?.authority !== undefined) action.hostRewriteLiteral = rw.authority;
    route.route = action;
  }
  applyHeaderOps(route, routeReq, routeResp);
  const perFilter: Record<string, { '@type': string }> = {};
  if (r.fault) perFilter[FilterName.HttpFault] = { '@type': ExtensionType.HttpFault, ...faultConfigOf(r.fault) };
  if (r.cors) perFilter[FilterName.Cors] = { '@type': ExtensionType.CorsPolicy, ...corsPolicyOf(r.cors) };
  if (Object.keys(perFilter).length > 0) route.typedPerFilterConfig = perFilter;
  return route;
}

function outboundVhost(vh: VirtualHostIR, clusters: ReadonlyMap<string, ClusterIR>): VirtualHost {
  return { name: vh.name, domains: vh.domains, routes: vh.routes ? vh.routes.map((r) => routeOf(r, clusters)) : [defaultOutboundRoute(vh.cluster, clusters)] };
}

/**
 * The default route of an outbound virtual host (no VirtualService or HTTPRoute): Istio's default
 * retry policy (`istioDefaultRetryPolicy`, as Istio's `BuildDefaultHTTPOutboundRoute`), and the
 * request hash policy its cluster needs when a DestinationRule gives it a consistent hash
 * ({@link hashPolicyFor}, clusters.ts).
 */
function defaultOutboundRoute(cluster: string, clusters: ReadonlyMap<string, ClusterIR>): Route {
  const route = defaultRoute(cluster);
  const retryPolicy = retryPolicyOf(istioDefaultRetryPolicy());
  if (retryPolicy && route.route) route.route.retryPolicy = retryPolicy;
  const c = clusters.get(cluster);
  const hashPolicy = c?.direction === 'outbound' ? hashPolicyFor(c) : undefined;
  if (hashPolicy && route.route) route.route.hashPolicy = hashPolicy;
  return route;
}

/**
 * The RouteConfiguration served over RDS for an outbound HTTP listener: one virtual host per
 * service. `validateClusters` is off so a route that briefly names a cluster Envoy has not yet
 * received does not NACK the whole configuration (Istio does the same).
 */
export function outboundRouteConfiguration(rc: RouteConfigIR, clusters: ReadonlyMap<string, ClusterIR> = new Map()): RouteConfiguration {
  return {
    name: rc.name,
    virtualHosts: rc.virtualHosts.map((vh) => outboundVhost(vh, clusters)),
    validateClusters: { value: false },
  };
}

/**
 * The inline route configuration of an inbound HTTP listener (Istio's names): `inbound|<port>||`
 * with the one virtual host `inbound|http|<port>` matching every Host, to the inbound cluster.
 */
export function inboundRouteConfiguration(l: InboundListenerIR): RouteConfiguration {
  return {
    name: l.cluster,
    virtualHosts: [{ name: `inbound|http|${l.port}`, domains: ['*'], routes: [defaultRoute(l.cluster)] }],
    validateClusters: { value: false },
  };
}
