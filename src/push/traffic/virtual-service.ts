/**
 * VirtualService → routes for one outbound virtual host (HTTP) or TCP listener, following Istio's
 * VirtualService reference (https://istio.io/latest/docs/reference/config/networking/virtual-service/)
 * as Istio's sidecars apply it:
 *  - `http[]` in order; each `match[]` entry is one Envoy route (entries are ORed, the fields of one
 *    entry ANDed); `port`, `sourceLabels`, `sourceNamespace` and `gateways` are decided here, for
 *    this proxy and listener port: an entry that does not hold is left out;
 *  - no fallback route: a request matching no route gets Envoy's 404, as with Istio;
 *  - a route without `retries` gets Istio's default retry policy ({@link istioDefaultRetryPolicy});
 *    `retries.attempts: 0` disables retries;
 *  - `tcp[]`: the first route whose match applies decides the (weighted) destinations.
 */
import { istioDefaultRetryPolicy } from '../../ir/traffic.js';
import type { Destination, HeaderOperations, HttpMatchRequest, StringMatch, VirtualService, VsHttpRoute, VsTcpRoute } from '../../resources/traffic-types.js';
import { resourceKey } from '../../resources/types.js';
import { parseDurationMs } from '../../resources/security-schemas.js';
import type {
  CorsIR,
  FaultIR,
  HeaderMatchIR,
  HeaderOpsIR,
  MirrorIR,
  QueryParamMatchIR,
  RetryPolicyIR,
  RewriteIR,
  RouteActionIR,
  RouteIR,
  RouteMatchIR,
  StringMatchIR,
  TcpWeightedClusterIR,
  WeightedClusterIR,
} from '../../ir/traffic.js';

/** A destination to resolve to a cluster: a host as written (FQDN or short name), port and subset. */
export interface DestinationRef {
  host: string;
  port?: number;
  subset?: string;
}

/**
 * What the route builders need from the push context, for one proxy and one outbound listener port.
 * `cluster` resolves a destination (short names relative to `namespace`, the route resource's
 * namespace) to an outbound cluster name, adding the cluster to the proxy's IR; it reports why it
 * cannot through `warn` (prefixed with `where`) and returns undefined.
 */
export interface RouteContext {
  proxyNamespace: string;
  /** The proxy workload's labels (VirtualService `sourceLabels`). */
  proxyLabels: Readonly<Record<string, string>>;
  /** The listener port the virtual host or TCP listener serves. */
  port: number;
  cluster: (dest: DestinationRef, namespace: string, where: string) => string | undefined;
  warn: (msg: string) => void;
}

/** Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` condition names (router filter docs). */
export const ENVOY_RETRY_ON: ReadonlySet<string> = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/**
 * Splits Istio's `retryOn` (`"5xx,connect-failure,503"`) into Envoy conditions and HTTP status
 * codes; `retriable-status-codes` is added when codes are given (as Istio does). Unknown names are
 * reported through `warn` and dropped.
 */
export function parseRetryOn(retryOn: string, warn: (msg: string) => void): { retryOn: string; codes: number[] } {
  const names: string[] = [];
  const codes: number[] = [];
  for (const raw of retryOn.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    if (/^[0-9]+$/.test(item)) {
      const code = Number(item);
      if (code >= 100 && code <= 599) codes.push(code);
      else warn(`retryOn status code ${item} is not an HTTP status: ignored`);
      continue;
    }
    if (!ENVOY_RETRY_ON.has(item)) {
      warn(`retryOn ${JSON.stringify(item)} is not an Envoy retry condition: ignored`);
      continue;
    }
    if (!names.includes(item)) names.push(item);
  }
  if (codes.length > 0 && !names.includes('retriable-status-codes')) names.push('retriable-status-codes');
  return { retryOn: names.join(','), codes: [...new Set(codes)] };
}

/** gRPC status names (google.rpc.Code) to numbers, for Istio `abort.grpcStatus`. */
const GRPC_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** Istio `StringMatch` → IR; `{}` (no form set) is undefined, which means "present" for headers. */
export function stringMatchOf(m: StringMatch | undefined): StringMatchIR | undefined {
  if (!m) return undefined;
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { regex: m.regex };
  return undefined;
}

/** Istio `HeaderOperations` → IR; undefined when it does nothing. Header names are lower-cased. */
export function headerOpsOf(ops: HeaderOperations | undefined): HeaderOpsIR | undefined {
  if (!ops) return undefined;
  const lower = (r: Record<string, string> | undefined): Record<string, string> =>
    Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const out: HeaderOpsIR = { set: lower(ops.set), add: lower(ops.add), remove: (ops.remove ?? []).map((h) => h.toLowerCase()) };
  if (Object.keys(out.set).length === 0 && Object.keys(out.add).length === 0 && out.remove.length === 0) return undefined;
  return out;
}

/** A VirtualService applies to sidecars when `gateways` is unset, empty or names `mesh`. */
export function appliesToMesh(vs: VirtualService): boolean {
  const gws = vs.spec.gateways ?? [];
  return gws.length === 0 || gws.includes('mesh');
}

function labelsMatch(want: Readonly<Record<string, string>> | undefined, have: Readonly<Record<string, string>>): boolean {
  return Object.entries(want ?? {}).every(([k, v]) => have[k] === v);
}

/** Whether the proxy-side conditions of one match entry hold (port, source, gateways). */
function proxyConditionsHold(m: { port?: number; sourceLabels?: Record<string, string>; sourceNamespace?: string; gateways?: string[] }, ctx: RouteContext): boolean {
  if (m.port !== undefined && m.port !== ctx.port) return false;
  if (!labelsMatch(m.sourceLabels, ctx.proxyLabels)) return false;
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== ctx.proxyNamespace) return false;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false;
  return true;
}

function routeMatchOf(m: HttpMatchRequest | undefined, where: string, warn: (msg: string) => void): RouteMatchIR {
  const out: RouteMatchIR = { headers: [], queryParams: [] };
  if (!m) return out;
  const path = stringMatchOf(m.uri);
  if (path) out.path = path;
  if (m.ignoreUriCase) out.ignoreCase = true;
  const pseudo: Array<[string, StringMatch | undefined]> = [
    [':method', m.method],
    [':authority', m.authority],
    [':scheme', m.scheme],
  ];
  for (const [name, sm] of pseudo) {
    const match = stringMatchOf(sm);
    if (match) out.headers.push({ name, match });
  }
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const h: HeaderMatchIR = { name: name.toLowerCase() };
    const match = stringMatchOf(sm);
    if (match) h.match = match;
    out.headers.push(h);
  }
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    const h: HeaderMatchIR = { name: name.toLowerCase(), invert: true };
    const match = stringMatchOf(sm);
    if (match) h.match = match;
    out.headers.push(h);
  }
  for (const [name, sm] of Object.entries(m.queryParams ?? {})) {
    const q: QueryParamMatchIR = { name };
    const match = stringMatchOf(sm);
    if (match && !('exact' in match && match.exact === '')) q.match = match;
    out.queryParams.push(q);
  }
  if (m.statPrefix !== undefined) warn(`${where}: statPrefix is not implemented: ignored`);
  return out;
}

function percentOf(p: { value?: number } | undefined, legacy?: number): number {
  if (p?.value !== undefined) return p.value;
  if (legacy !== undefined) return legacy;
  return 100;
}

function durationMs(text: string | undefined, what: string, where: string, warn: (msg: string) => void): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    warn(`${where}: ${what} ${JSON.stringify(text)} is not a duration: ignored`);
    return undefined;
  }
  return Math.round(ms);
}

function faultOf(route: VsHttpRoute, where: string, warn: (msg: string) => void): FaultIR | undefined {
  const f = route.fault;
  if (!f) return undefined;
  const out: FaultIR = {};
  if (f.delay) {
    if (f.delay.exponentialDelay !== undefined) warn(`${where}: fault.delay.exponentialDelay is not implemented: ignored`);
    const ms = durationMs(f.delay.fixedDelay, 'fault.delay.fixedDelay', where, warn);
    if (ms !== undefined) out.delay = { fixedDelayMs: ms, percent: percentOf(f.delay.percentage, f.delay.percent) };
  }
  if (f.abort) {
    const percent = percentOf(f.abort.percentage);
    if (f.abort.httpStatus !== undefined) out.abort = { httpStatus: f.abort.httpStatus, percent };
    else if (f.abort.grpcStatus !== undefined) {
      const code = GRPC_CODES[f.abort.grpcStatus.toUpperCase()] ?? (/^[0-9]+$/.test(f.abort.grpcStatus) ? Number(f.abort.grpcStatus) : undefined);
      if (code === undefined) warn(`${where}: fault.abort.grpcStatus ${JSON.stringify(f.abort.grpcStatus)} is not a gRPC status: ignored`);
      else out.abort = { grpcStatus: code, percent };
    } else if (f.abort.http2Error !== undefined) warn(`${where}: fault.abort.http2Error is not implemented: ignored`);
  }
  return out.delay || out.abort ? out : undefined;
}

function corsOf(route: VsHttpRoute): CorsIR | undefined {
  const c = route.corsPolicy;
  if (!c) return undefined;
  const origins: StringMatchIR[] = [];
  for (const o of c.allowOrigins ?? []) {
    const m = stringMatchOf(o);
    if (m) origins.push(m);
  }
  for (const o of c.allowOrigin ?? []) origins.push(o === '*' ? { prefix: '' } : { exact: o });
  const out: CorsIR = { allowOrigins: origins, allowMethods: c.allowMethods ?? [], allowHeaders: c.allowHeaders ?? [], exposeHeaders: c.exposeHeaders ?? [] };
  if (c.maxAge !== undefined) {
    const ms = parseDurationMs(c.maxAge);
    if (ms !== undefined) out.maxAgeSeconds = Math.floor(ms / 1000);
  }
  if (c.allowCredentials !== undefined) out.allowCredentials = c.allowCredentials;
  return out;
}

function retriesOf(route: VsHttpRoute, where: string, warn: (msg: string) => void): RetryPolicyIR {
  const r = route.retries;
  if (!r) return istioDefaultRetryPolicy();
  const out = istioDefaultRetryPolicy();
  out.attempts = r.attempts ?? 0;
  if (out.attempts <= 0) return { attempts: 0, retryOn: '', retriableStatusCodes: [] };
  if (r.retryOn !== undefined && r.retryOn.trim() !== '') {
    const parsed = parseRetryOn(r.retryOn, (m) => warn(`${where}: ${m}`));
    out.retryOn = parsed.retryOn;
    out.retriableStatusCodes = parsed.codes;
  }
  const perTry = durationMs(r.perTryTimeout, 'retries.perTryTimeout', where, warn);
  if (perTry !== undefined) out.perTryTimeoutMs = perTry;
  if (r.retryRemoteLocalities) out.retryRemoteLocalities = true;
  if (r.backoff !== undefined) warn(`${where}: retries.backoff is not implemented: Envoy's default back-off is used`);
  if (r.retryIgnorePreviousHosts === false) warn(`${where}: retries.retryIgnorePreviousHosts false is not implemented: retries avoid the previous host`);
  return out;
}

/**
 * Resolves `route[]` destinations to weighted clusters. A single destination gets weight 100 when
 * it sets none; destinations with weight 0 or that cannot be resolved are left out.
 */
function forwardOf(
  dests: ReadonlyArray<{ destination: Destination; weight?: number; headers?: { request?: HeaderOperations; response?: HeaderOperations } }>,
  ns: string,
  where: string,
  ctx: RouteContext,
): WeightedClusterIR[] {
  const out: WeightedClusterIR[] = [];
  dests.forEach((d, j) => {
    const weight = d.weight ?? (dests.length === 1 ? 100 : 0);
    if (weight === 0) return;
    const ref: DestinationRef = { host: d.destination.host };
    if (d.destination.port?.number !== undefined) ref.port = d.destination.port.number;
    if (d.destination.subset) ref.subset = d.destination.subset;
    const cluster = ctx.cluster(ref, ns, `${where} route[${j}]`);
    if (!cluster) return;
    const wc: WeightedClusterIR = { cluster, weight };
    const req = headerOpsOf(d.headers?.request);
    const resp = headerOpsOf(d.headers?.response);
    if (req) wc.requestHeaders = req;
    if (resp) wc.responseHeaders = resp;
    out.push(wc);
  });
  return out;
}

function actionOf(route: VsHttpRoute, ns: string, where: string, ctx: RouteContext): RouteActionIR | undefined {
  if (route.redirect) {
    const r = route.redirect;
    const status = r.redirectCode ?? 301;
    if (![301, 302, 303, 307, 308].includes(status)) {
      ctx.warn(`${where}: redirectCode ${status} is not a redirect status: using 301`);
    }
    const action: RouteActionIR = { kind: 'redirect', status: ([301, 302, 303, 307, 308].includes(status) ? status : 301) as 301 };
    if (r.uri !== undefined) action.path = r.uri;
    if (r.authority !== undefined) action.host = r.authority;
    if (r.port !== undefined) action.port = r.port;
    if (r.scheme !== undefined) action.scheme = r.scheme;
    if (r.derivePort !== undefined) ctx.warn(`${where}: redirect.derivePort is not implemented: ignored`);
    return action;
  }
  if (route.directResponse) {
    const d = route.directResponse;
    const action: RouteActionIR = { kind: 'direct', status: d.status };
    if (d.body?.string !== undefined) action.body = d.body.string;
    else if (d.body?.bytes !== undefined) action.body = Buffer.from(d.body.bytes, 'base64').toString('utf8');
    return action;
  }
  if (route.route && route.route.length > 0) {
    const clusters = forwardOf(route.route, ns, where, ctx);
    if (clusters.length === 0) {
      ctx.warn(`${where}: no destination can be reached: requests it matches get 503`);
      return { kind: 'direct', status: 503 };
    }
    return { kind: 'forward', clusters };
  }
  ctx.warn(`${where}: neither route, redirect nor directResponse: skipped`);
  return undefined;
}

function mirrorsOf(route: VsHttpRoute, ns: string, where: string, ctx: RouteContext): MirrorIR[] {
  const list: Array<{ destination: Destination; percent: number }> = [];
  if (route.mirror) list.push({ destination: route.mirror, percent: percentOf(route.mirrorPercentage) });
  for (const m of route.mirrors ?? []) list.push({ destination: m.destination, percent: percentOf(m.percentage) });
  const out: MirrorIR[] = [];
  list.forEach((m, j) => {
    const ref: DestinationRef = { host: m.destination.host };
    if (m.destination.port?.number !== undefined) ref.port = m.destination.port.number;
    if (m.destination.subset) ref.subset = m.destination.subset;
    const cluster = ctx.cluster(ref, ns, `${where} mirror[${j}]`);
    if (cluster && m.percent > 0) out.push({ cluster, percent: m.percent });
  });
  return out;
}

function rewriteOf(route: VsHttpRoute): RewriteIR | undefined {
  const r = route.rewrite;
  if (!r) return undefined;
  const out: RewriteIR = {};
  if (r.uri !== undefined) out.prefix = r.uri;
  if (r.uriRegexRewrite?.match !== undefined) out.regex = { pattern: r.uriRegexRewrite.match, substitution: r.uriRegexRewrite.rewrite ?? '' };
  if (r.authority !== undefined) out.authority = r.authority;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The routes of `vs.spec.http` for one virtual host, in order: one {@link RouteIR} per `match`
 * entry whose proxy-side conditions hold (see the module comment). Names: `http[].name` (with
 * `match[].name` or the entry index when a route has several entries), else
 * `VirtualService/<ns>/<name>/<i>`, made unique. Problems are reported through `ctx.warn`.
 */
export function virtualServiceHttpRoutes(vs: VirtualService, ctx: RouteContext): RouteIR[] {
  const ns = vs.metadata.namespace;
  const key = resourceKey(vs);
  const out: RouteIR[] = [];
  const names = new Set<string>();
  (vs.spec.http ?? []).forEach((http, i) => {
    const where = `${key} http[${i}]`;
    if (http.delegate) {
      ctx.warn(`${where}: delegate is a gateway feature, not implemented for sidecars: skipped`);
      return;
    }
    const entries = http.match && http.match.length > 0 ? http.match.map((m, j) => ({ m, j })) : [{ m: undefined, j: 0 }];
    const applicable = entries.filter((e) => !e.m || proxyConditionsHold(e.m, ctx));
    if (applicable.length === 0) return;
    const action = actionOf(http, ns, where, ctx);
    if (!action) return;
    const shared: Omit<RouteIR, 'name' | 'match'> = { action, mirrors: action.kind === 'forward' ? mirrorsOf(http, ns, where, ctx) : [], source: where };
    const rewrite = rewriteOf(http);
    if (rewrite && action.kind === 'forward') shared.rewrite = rewrite;
    if (action.kind === 'forward') {
      const timeout = durationMs(http.timeout, 'timeout', where, ctx.warn);
      if (timeout !== undefined) shared.timeoutMs = timeout;
      shared.retries = retriesOf(http, where, ctx.warn);
    }
    const fault = faultOf(http, where, ctx.warn);
    if (fault) shared.fault = fault;
    const req = headerOpsOf(http.headers?.request);
    const resp = headerOpsOf(http.headers?.response);
    if (req) shared.requestHeaders = req;
    if (resp) shared.responseHeaders = resp;
    const cors = corsOf(http);
    if (cors) shared.cors = cors;
    const base = http.name ?? `${key}/${i}`;
    for (const { m, j } of applicable) {
      let name = entries.length > 1 ? `${base}/${m?.name ?? j}` : base;
      while (names.has(name)) name = `${name}'`;
      names.add(name);
      out.push({ ...structuredClone(shared), name, match: routeMatchOf(m, `${where} match[${j}]`, ctx.warn) });
    }
  });
  return out;
}

/**
 * The destinations of the first `vs.spec.tcp` route whose match applies to this proxy and port
 * (a route without `match` always applies), as weighted clusters; undefined when none applies or
 * none of its destinations can be reached. `destinationSubnets` is not implemented (warned).
 */
export function virtualServiceTcpRoute(vs: VirtualService, ctx: RouteContext): { clusters: TcpWeightedClusterIR[]; source: string } | undefined {
  const key = resourceKey(vs);
  const routes: readonly VsTcpRoute[] = vs.spec.tcp ?? [];
  for (let i = 0; i < routes.length; i++) {
    const tcp = routes[i]!;
    const where = `${key} tcp[${i}]`;
    const matches = tcp.match ?? [];
    if (matches.some((m) => (m.destinationSubnets?.length ?? 0) > 0)) ctx.warn(`${where}: destinationSubnets is not implemented: ignored`);
    if (matches.length > 0 && !matches.some((m) => proxyConditionsHold(m, ctx))) continue;
    const clusters = forwardOf(tcp.route ?? [], vs.metadata.namespace, where, ctx).map((c) => ({ cluster: c.cluster, weight: c.weight }));
    if (clusters.length === 0) {
      ctx.warn(`${where}: no destination can be reached: the listener keeps its default destination`);
      return undefined;
    }
    return { clusters, source: where };
  }
  return undefined;
}

/** Header names Envoy refuses in `*_headers_to_add` / `*_to_remove`: pseudo-headers and Host. */
function protectedHeader(name: string): boolean {
  return name.startsWith(':') || name === 'host';
}

/**
 * Strips what Envoy refuses from header operations (it NACKs a route that sets or removes a
 * pseudo-header or Host): setting or adding `host` / `:authority` on a route's requests becomes
 * an authority rewrite (as Istio does), unless the route already rewrites the authority; every
 * other such operation is dropped with a warning. Returns undefined when nothing is left.
 */
function cleanOps(ops: HeaderOpsIR | undefined, where: string, warn: (msg: string) => void, takeAuthority?: (value: string) => void): HeaderOpsIR | undefined {
  if (!ops) return undefined;
  const out: HeaderOpsIR = { set: {}, add: {}, remove: [] };
  for (const kind of ['set', 'add'] as const) {
    for (const [name, value] of Object.entries(ops[kind])) {
      if (!protectedHeader(name)) {
        out[kind][name] = value;
      } else if (takeAuthority && (name === 'host' || name === ':authority')) {
        takeAuthority(value);
      } else {
        warn(`${where}: header ${name} cannot be modified there: ignored`);
      }
    }
  }
  for (const name of ops.remove) {
    if (protectedHeader(name)) warn(`${where}: header ${name} cannot be removed: ignored`);
    else out.remove.push(name);
  }
  return Object.keys(out.set).length || Object.keys(out.add).length || out.remove.length ? out : undefined;
}

/**
 * Makes the header operations of `routes` acceptable to Envoy (see `cleanOps`): in place, for the
 * route and each weighted cluster; problems are reported through `warn` with the route's source.
 */
export function sanitizeHeaderOps(routes: RouteIR[], warn: (msg: string) => void): void {
  for (const r of routes) {
    const takeAuthority =
      r.action.kind === 'forward'
        ? (value: string): void => {
            r.rewrite ??= {};
            r.rewrite.authority ??= value;
          }
        : undefined;
    const req = cleanOps(r.requestHeaders, r.source, warn, takeAuthority);
    const resp = cleanOps(r.responseHeaders, r.source, warn);
    if (req) r.requestHeaders = req;
    else delete r.requestHeaders;
    if (resp) r.responseHeaders = resp;
    else delete r.responseHeaders;
    if (r.action.kind !== 'forward') continue;
    for (const wc of r.action.clusters) {
      const wreq = cleanOps(wc.requestHeaders, `${r.source} destination ${wc.cluster}`, warn);
      const wresp = cleanOps(wc.responseHeaders, `${r.source} destination ${wc.cluster}`, warn);
      if (wreq) wc.requestHeaders = wreq;
      else delete wc.requestHeaders;
      if (wresp) wc.responseHeaders = wresp;
      else delete wc.responseHeaders;
    }
  }
}

export { istioDefaultRetryPolicy };
