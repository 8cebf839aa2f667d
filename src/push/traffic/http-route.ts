/**
 * Gateway API HTTPRoute and GRPCRoute attached to a mesh service (GAMMA, Gateway API "mesh"
 * support, https://gateway-api.sigs.k8s.io/mesh/) → routes of that service's outbound virtual host.
 *
 * Semantics (Gateway API v1 spec, https://gateway-api.sigs.k8s.io/reference/spec/):
 *  - a rule without `matches` matches every request (path prefix `/`); `PathPrefix` matches whole
 *    path elements (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`), rendered as a regex;
 *  - rules of all routes for one host are ordered by the spec's precedence: exact path, then the
 *    longest prefix, then regex paths, then method, most header matches, most query matches, then
 *    the oldest route and rule order;
 *  - `backendRefs` weights are relative (default 1, 0 = no traffic); a rule with no backend that
 *    can receive traffic answers 500;
 *  - no fallback route: a request matching no rule gets 404;
 *  - `timeouts.request` → route timeout, `timeouts.backendRequest` → per-try timeout;
 *  - retries: Istio converts Gateway API routes into VirtualServices without `retries`, so they
 *    get Istio's default retry policy too.
 */
import type {
  BackendObjectReference,
  GRPCRoute,
  GrpcRouteFilter,
  HTTPRoute,
  HttpHeaderFilter,
  HttpHeaderMatch,
  HttpRequestMirrorFilter,
  HttpRouteFilter,
  HttpRouteMatch,
  ParentReference,
} from '../../resources/traffic-types.js';
import { resourceKey, type ServiceEntry } from '../../resources/types.js';
import { backendRefKind, parentRefKind, refHosts, type ServiceEntryLookup } from '../../resources/traffic-hosts.js';
import { parseDurationMs } from '../../resources/security-schemas.js';
import type { HeaderMatchIR, HeaderOpsIR, MirrorIR, RedirectActionIR, RewriteIR, RouteActionIR, RouteIR, RouteMatchIR, WeightedClusterIR } from '../../ir/traffic.js';
import { istioDefaultRetryPolicy, type DestinationRef, type RouteContext } from './virtual-service.js';

/** A ServiceEntry lookup over a list (for `refHosts`). */
function lookupIn(serviceEntries: readonly ServiceEntry[]): ServiceEntryLookup {
  return (ns, name) => serviceEntries.find((s) => s.metadata.namespace === ns && s.metadata.name === name);
}

/** The hosts a `parentRefs` entry attaches a route to (Service, ServiceEntry, Hostname; empty for Gateways). */
export function parentRefHosts(ref: ParentReference, routeNamespace: string, serviceEntries: readonly ServiceEntry[]): string[] {
  return refHosts(parentRefKind(ref), ref, routeNamespace, lookupIn(serviceEntries));
}

/** The host a `backendRefs` entry names (a ServiceEntry's first host), or undefined for an unsupported kind. */
export function backendRefHost(ref: BackendObjectReference, routeNamespace: string, serviceEntries: readonly ServiceEntry[]): string | undefined {
  return refHosts(backendRefKind(ref), ref, routeNamespace, lookupIn(serviceEntries))[0];
}

/** Escapes RE2 metacharacters so `s` matches itself. */
function quoteRe(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, (c) => `\\${c}`);
}

/** A rule's precedence key (larger first), from the Gateway API's ordering rules. */
export interface RulePrecedence {
  /** 3 exact path, 2 prefix, 1 regex. */
  pathKind: number;
  pathLength: number;
  method: number;
  headers: number;
  queryParams: number;
}

/** A route with its precedence, before the routes of a host are sorted. */
export interface RankedRoute {
  route: RouteIR;
  precedence: RulePrecedence;
  /** Creation order of the resource, then rule and match index (smaller first). */
  order: number[];
}

/** Compares ranked routes: higher precedence first, then `order`. */
export function compareRanked(a: RankedRoute, b: RankedRoute): number {
  const pa = a.precedence;
  const pb = b.precedence;
  const keys: Array<keyof RulePrecedence> = ['pathKind', 'pathLength', 'method', 'headers', 'queryParams'];
  for (const k of keys) if (pa[k] !== pb[k]) return pb[k] - pa[k];
  for (let i = 0; i < Math.max(a.order.length, b.order.length); i++) {
    const d = (a.order[i] ?? 0) - (b.order[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function headerMatchesOf(list: readonly HttpHeaderMatch[] | undefined): HeaderMatchIR[] {
  return (list ?? []).map((h) => ({ name: h.name.toLowerCase(), match: h.type === 'RegularExpression' ? { regex: h.value } : { exact: h.value } }));
}

/** The IR match of one HTTPRoute match, its precedence, and the prefix a `ReplacePrefixMatch` replaces. */
function httpMatchOf(m: HttpRouteMatch): { match: RouteMatchIR; precedence: RulePrecedence; prefix?: string } {
  const match: RouteMatchIR = { headers: headerMatchesOf(m.headers), queryParams: [] };
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  let pathKind = 2;
  let prefix: string | undefined;
  if (type === 'Exact') {
    match.path = { exact: value };
    pathKind = 3;
  } else if (type === 'RegularExpression') {
    match.path = { regex: value };
    pathKind = 1;
  } else {
    prefix = value.length > 1 ? value.replace(/\/+$/, '') : '/';
    if (prefix !== '/') match.path = { regex: `${quoteRe(prefix)}(/.*)?` };
  }
  if (m.method) match.headers.unshift({ name: ':method', match: { exact: m.method } });
  for (const q of m.queryParams ?? []) match.queryParams.push({ name: q.name, match: q.type === 'RegularExpression' ? { regex: q.value } : { exact: q.value } });
  const precedence: RulePrecedence = {
    pathKind,
    pathLength: value.length,
    method: m.method ? 1 : 0,
    headers: m.headers?.length ?? 0,
    queryParams: m.queryParams?.length ?? 0,
  };
  return prefix === undefined ? { match, precedence } : { match, precedence, prefix };
}

function headerFilterOf(f: HttpHeaderFilter | undefined): HeaderOpsIR | undefined {
  if (!f) return undefined;
  const rec = (l: ReadonlyArray<{ name: string; value: string }> | undefined): Record<string, string> => Object.fromEntries((l ?? []).map((h) => [h.name.toLowerCase(), h.value]));
  const out: HeaderOpsIR = { set: rec(f.set), add: rec(f.add), remove: (f.remove ?? []).map((h) => h.toLowerCase()) };
  return Object.keys(out.set).length || Object.keys(out.add).length || out.remove.length ? out : undefined;
}

/** Merges header operations (later ones win for `set`/`add` of one name). */
function mergeOps(a: HeaderOpsIR | undefined, b: HeaderOpsIR | undefined): HeaderOpsIR | undefined {
  if (!a) return b;
  if (!b) return a;
  return { set: { ...a.set, ...b.set }, add: { ...a.add, ...b.add }, remove: [...new Set([...a.remove, ...b.remove])] };
}

/** What the filters of one rule (or backend) produce. */
interface FilterEffects {
  requestHeaders?: HeaderOpsIR;
  responseHeaders?: HeaderOpsIR;
  mirrors: MirrorIR[];
  rewrite?: RewriteIR;
  redirect?: RedirectActionIR;
}

interface RuleScope {
  ns: string;
  where: string;
  ctx: RouteContext;
  serviceEntries: readonly ServiceEntry[];
}

function resolveBackend(ref: BackendObjectReference, s: RuleScope, where: string): string | undefined {
  const host = backendRefHost(ref, s.ns, s.serviceEntries);
  if (host === undefined) {
    s.ctx.warn(`${where}: backend kind ${ref.group ?? ''}/${ref.kind ?? 'Service'} is not supported (Service, ServiceEntry or Hostname)`);
    return undefined;
  }
  const dest: DestinationRef = { host };
  if (ref.port !== undefined) dest.port = ref.port;
  return s.ctx.cluster(dest, s.ns, where);
}

function mirrorOf(f: HttpRequestMirrorFilter, s: RuleScope, where: string): MirrorIR | undefined {
  const cluster = resolveBackend(f.backendRef, s, where);
  if (!cluster) return undefined;
  let percent = 100;
  if (f.percent !== undefined) percent = f.percent;
  else if (f.fraction) percent = (f.fraction.numerator / (f.fraction.denominator ?? 100)) * 100;
  return { cluster, percent };
}

function filtersOf(filters: ReadonlyArray<HttpRouteFilter | GrpcRouteFilter>, prefix: string | undefined, s: RuleScope, where: string): FilterEffects {
  const out: FilterEffects = { mirrors: [] };
  filters.forEach((f, k) => {
    const at = `${where} filters[${k}]`;
    switch (f.type) {
      case 'RequestHeaderModifier':
        out.requestHeaders = mergeOps(out.requestHeaders, headerFilterOf(f.requestHeaderModifier));
        break;
      case 'ResponseHeaderModifier':
        out.responseHeaders = mergeOps(out.responseHeaders, headerFilterOf(f.responseHeaderModifier));
        break;
      case 'RequestMirror': {
        const m = f.requestMirror ? mirrorOf(f.requestMirror, s, at) : undefined;
        if (m && m.percent > 0) out.mirrors.push(m);
        break;
      }
      case 'URLRewrite': {
        const u = 'urlRewrite' in f ? f.urlRewrite : undefined;
        if (!u) break;
        const rw: RewriteIR = {};
        if (u.hostname !== undefined) rw.authority = u.hostname;
        if (u.path?.type === 'ReplaceFullPath' && u.path.replaceFullPath !== undefined) rw.fullPath = u.path.replaceFullPath;
        if (u.path?.type === 'ReplacePrefixMatch' && u.path.replacePrefixMatch !== undefined) {
          Object.assign(rw, prefixRewrite(prefix, u.path.replacePrefixMatch));
        }
        out.rewrite = rw;
        break;
      }
      case 'RequestRedirect': {
        const r = 'requestRedirect' in f ? f.requestRedirect : undefined;
        if (!r) break;
        const code = r.statusCode ?? 302;
        const status = ([301, 302, 303, 307, 308] as const).find((c) => c === code) ?? 302;
        if (status !== code) s.ctx.warn(`${at}: statusCode ${code} is not a redirect status: using 302`);
        const red: RedirectActionIR = { kind: 'redirect', status };
        if (r.scheme !== undefined) red.scheme = r.scheme;
        if (r.hostname !== undefined) red.host = r.hostname;
        if (r.port !== undefined) red.port = r.port;
        if (r.path?.type === 'ReplaceFullPath' && r.path.replaceFullPath !== undefined) red.path = r.path.replaceFullPath;
        if (r.path?.type === 'ReplacePrefixMatch' && r.path.replacePrefixMatch !== undefined) red.prefixRewrite = r.path.replacePrefixMatch;
        out.redirect = red;
        break;
      }
      case 'ExtensionRef':
        s.ctx.warn(`${at}: ExtensionRef filters are not supported: ignored`);
        break;
    }
  });
  return out;
}

/**
 * `ReplacePrefixMatch` for a path-element prefix `prefix` (rendered as regex `<prefix>(/.*)?`):
 * the matched prefix becomes `replacement`, keeping the rest of the path and never producing `//`.
 */
function prefixRewrite(prefix: string | undefined, replacement: string): RewriteIR {
  if (prefix === undefined || prefix === '/') return { prefix: replacement };
  const trimmed = replacement.replace(/\/+$/, '');
  if (trimmed === '') return { regex: { pattern: `^${quoteRe(prefix)}/*(.*)$`, substitution: '/\\1' } };
  return { regex: { pattern: `^${quoteRe(prefix)}(/.*)?$`, substitution: `${trimmed.replace(/\\/g, '\\\\')}\\1` } };
}

function backendsOf(
  refs: ReadonlyArray<BackendObjectReference & { weight?: number; filters?: ReadonlyArray<HttpRouteFilter | GrpcRouteFilter> }>,
  s: RuleScope,
): WeightedClusterIR[] {
  const out: WeightedClusterIR[] = [];
  refs.forEach((ref, j) => {
    const where = `${s.where} backendRefs[${j}]`;
    const weight = ref.weight ?? 1;
    if (weight === 0) return;
    const cluster = resolveBackend(ref, s, where);
    if (!cluster) return;
    const wc: WeightedClusterIR = { cluster, weight };
    const fx = filtersOf(ref.filters ?? [], undefined, s, where);
    if (fx.requestHeaders) wc.requestHeaders = fx.requestHeaders;
    if (fx.responseHeaders) wc.responseHeaders = fx.responseHeaders;
    if (fx.mirrors.length || fx.rewrite || fx.redirect) s.ctx.warn(`${where}: only header modifier filters are supported on a backend: others ignored`);
    out.push(wc);
  });
  return out;
}

function durationOf(text: string | undefined, what: string, s: RuleScope): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    s.ctx.warn(`${s.where}: ${what} ${JSON.stringify(text)} is not a duration: ignored`);
    return undefined;
  }
  return Math.round(ms);
}

interface RuleInput {
  name?: string;
  matches: Array<{ match: RouteMatchIR; precedence: RulePrecedence; prefix?: string }>;
  filters: ReadonlyArray<HttpRouteFilter | GrpcRouteFilter>;
  backendRefs: ReadonlyArray<BackendObjectReference & { weight?: number; filters?: ReadonlyArray<HttpRouteFilter | GrpcRouteFilter> }>;
  timeouts?: { request?: string; backendRequest?: string };
}

function rankedRulesOf(route: HTTPRoute | GRPCRoute, rules: RuleInput[], ctx: RouteContext, serviceEntries: readonly ServiceEntry[], age: number): RankedRoute[] {
  const key = resourceKey(route);
  const out: RankedRoute[] = [];
  rules.forEach((rule, i) => {
    const s: RuleScope = { ns: route.metadata.namespace, where: `${key} rules[${i}]`, ctx, serviceEntries };
    rule.matches.forEach((m, j) => {
      const fx = filtersOf(rule.filters, m.prefix, s, s.where);
      let action: RouteActionIR;
      if (fx.redirect) action = fx.redirect;
      else {
        const clusters = backendsOf(rule.backendRefs, s);
        if (clusters.length === 0) {
          if (rule.backendRefs.some((b) => (b.weight ?? 1) > 0)) ctx.warn(`${s.where}: no backend can be reached: requests it matches get 500`);
          action = { kind: 'direct', status: 500 };
        } else action = { kind: 'forward', clusters };
      }
      const base = rule.name ? `${key}/${rule.name}` : `${key}/${i}`;
      const r: RouteIR = { name: rule.matches.length > 1 ? `${base}/${j}` : base, match: m.match, action, mirrors: action.kind === 'forward' ? fx.mirrors : [], source: s.where };
      if (action.kind === 'forward') {
        if (fx.rewrite) r.rewrite = fx.rewrite;
        const timeout = durationOf(rule.timeouts?.request, 'timeouts.request', s);
        if (timeout !== undefined) r.timeoutMs = timeout;
        r.retries = istioDefaultRetryPolicy();
        const perTry = durationOf(rule.timeouts?.backendRequest, 'timeouts.backendRequest', s);
        if (perTry !== undefined) r.retries.perTryTimeoutMs = perTry;
      }
      if (fx.requestHeaders) r.requestHeaders = fx.requestHeaders;
      if (fx.responseHeaders) r.responseHeaders = fx.responseHeaders;
      out.push({ route: r, precedence: m.precedence, order: [age, i, j] });
    });
  });
  return out;
}

/**
 * The rules of an HTTPRoute as ranked routes (sort the routes of a host with {@link compareRanked}).
 * `age` orders routes of equal precedence (the oldest route gets the smallest).
 */
export function httpRouteRoutes(route: HTTPRoute, ctx: RouteContext, serviceEntries: readonly ServiceEntry[], age = 0): RankedRoute[] {
  const rules: RuleInput[] = (route.spec.rules ?? []).map((rule) => {
    const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [{}];
    const input: RuleInput = { matches: matches.map(httpMatchOf), filters: rule.filters ?? [], backendRefs: rule.backendRefs ?? [] };
    if (rule.name !== undefined) input.name = rule.name;
    if (rule.timeouts) input.timeouts = rule.timeouts;
    return input;
  });
  return rankedRulesOf(route, rules, ctx, serviceEntries, age);
}

/**
 * The rules of a GRPCRoute as ranked routes. A method match becomes a path match on
 * `/<service>/<method>`: exact when both are given (`Exact`), else a regex (a missing part matches
 * any one path segment).
 */
export function grpcRouteRoutes(route: GRPCRoute, ctx: RouteContext, serviceEntries: readonly ServiceEntry[], age = 0): RankedRoute[] {
  const rules: RuleInput[] = (route.spec.rules ?? []).map((rule) => {
    const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [{}];
    const input: RuleInput = {
      matches: matches.map((m) => {
        const match: RouteMatchIR = { headers: headerMatchesOf(m.headers), queryParams: [] };
        let pathKind = 0;
        let pathLength = 0;
        const mm = m.method;
        if (mm && (mm.service !== undefined || mm.method !== undefined)) {
          const regex = mm.type === 'RegularExpression';
          if (!regex && mm.service !== undefined && mm.method !== undefined) {
            match.path = { exact: `/${mm.service}/${mm.method}` };
            pathKind = 3;
          } else {
            const svc = mm.service === undefined ? '[^/]+' : regex ? mm.service : quoteRe(mm.service);
            const method = mm.method === undefined ? '[^/]+' : regex ? mm.method : quoteRe(mm.method);
            match.path = { regex: `/${svc}/${method}` };
            pathKind = regex ? 1 : 2;
          }
          pathLength = (mm.service ?? '').length + (mm.method ?? '').length;
        }
        return { match, precedence: { pathKind, pathLength, method: 0, headers: m.headers?.length ?? 0, queryParams: 0 } };
      }),
      filters: rule.filters ?? [],
      backendRefs: rule.backendRefs ?? [],
    };
    if (rule.name !== undefined) input.name = rule.name;
    return input;
  });
  return rankedRulesOf(route, rules, ctx, serviceEntries, age);
}
