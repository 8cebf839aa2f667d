/**
 * Which routing resource decides the routes of one outbound host, for one proxy:
 *  - a VirtualService for sidecars (`gateways` unset or naming `mesh`) whose `hosts` name the host
 *    (an FQDN, a short name relative to the VirtualService's namespace, `*.suffix` or `*`), exported
 *    to the proxy's namespace (`exportTo`). Exact names win over wildcards; among several, the one
 *    in the proxy's namespace, else the service's, else the oldest (Istio uses one VirtualService
 *    per host for sidecars; the others are reported);
 *  - else the Gateway API HTTPRoutes and GRPCRoutes attached to the host (GAMMA): "consumer" routes
 *    (in the proxy's namespace, when that is not the service's) replace "producer" routes (in the
 *    service's namespace), as the Gateway API mesh spec says; their rules are merged and ordered
 *    by the spec's precedence. A parentRef with `port` attaches its route to that service port
 *    only, with `sectionName` to the port of that name only (both: the port matching both).
 * When a VirtualService and Gateway API routes both target a host, the VirtualService wins and a
 * warning says so (Skiff's documented rule).
 */
import type { GRPCRoute, HTTPRoute, ParentReference, VirtualService } from '../../resources/traffic-types.js';
import { parentRefPortProblem, parentRefSelectsPort, type ParentPort } from '../../resources/traffic-hosts.js';
import { resourceKey } from '../../resources/types.js';
import type { MeshSnapshot } from '../../registry/types.js';
import type { RouteIR, TcpWeightedClusterIR } from '../../ir/traffic.js';
import { oldestFirst } from '../selectors.js';
import { appliesToMesh, sanitizeHeaderOps, virtualServiceHttpRoutes, virtualServiceTcpRoute, type RouteContext } from './virtual-service.js';
import { compareRanked, grpcRouteRoutes, httpRouteRoutes, parentRefHosts, type RankedRoute } from './http-route.js';

/** The outbound service a virtual host or TCP listener serves. */
export interface RoutedService {
  /** The service host (a ServiceEntry host). */
  host: string;
  /** The ServiceEntry's namespace. */
  namespace: string;
  /**
   * The service's ports (number and name), which a parentRef's `port` / `sectionName` select.
   * Absent: the ports of the snapshot's ServiceEntries in `namespace` that define `host`.
   */
  ports?: readonly ParentPort[];
}

/** The ports of `svc`: its own list, else those of the ServiceEntries in its namespace defining its host. */
function portsOf(snapshot: MeshSnapshot, svc: RoutedService): ParentPort[] {
  if (svc.ports) return [...svc.ports];
  const host = svc.host.toLowerCase();
  const out: ParentPort[] = [];
  for (const se of snapshot.serviceEntries) {
    if (se.metadata.namespace !== svc.namespace || !se.spec.hosts.some((h) => h.toLowerCase() === host)) continue;
    for (const p of se.spec.ports ?? []) if (!out.some((o) => o.number === p.number)) out.push({ number: p.number, name: p.name });
  }
  return out;
}

/** Expands a VirtualService host: a name without dots is short for `<name>.<ns>.svc.cluster.local`. */
export function expandHost(host: string, namespace: string): string {
  const h = host.toLowerCase();
  if (h === '*' || h.includes('.')) return h;
  return `${h}.${namespace}.svc.cluster.local`;
}

/** 2: exact host, 1: wildcard match, 0: no match. */
function hostMatch(pattern: string, host: string): number {
  if (pattern === host) return 2;
  if (pattern === '*') return 1;
  if (pattern.startsWith('*.') && host.endsWith(pattern.slice(1))) return 1;
  return 0;
}

/** Istio `exportTo`: unset or `*` everyone, `.` the resource's namespace, `~` nobody, else names. */
function exportedTo(exportTo: readonly string[] | undefined, ownNamespace: string, proxyNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || (e === '.' && ownNamespace === proxyNamespace) || e === proxyNamespace);
}

/**
 * The VirtualService that decides the routes of `svc` for a proxy in `proxyNamespace`, or
 * undefined. Several candidates: reported through `warn`, one chosen as the module comment says.
 */
export function virtualServiceFor(snapshot: MeshSnapshot, svc: RoutedService, proxyNamespace: string, warn: (msg: string) => void): VirtualService | undefined {
  const host = svc.host.toLowerCase();
  const candidates: Array<{ vs: VirtualService; score: number }> = [];
  for (const vs of snapshot.virtualServices) {
    if (!appliesToMesh(vs)) continue;
    if (!exportedTo(vs.spec.exportTo, vs.metadata.namespace, proxyNamespace)) continue;
    const score = Math.max(0, ...(vs.spec.hosts ?? []).map((h) => hostMatch(expandHost(h, vs.metadata.namespace), host)));
    if (score > 0) candidates.push({ vs, score });
  }
  if (candidates.length === 0) return undefined;
  const rank = (vs: VirtualService): number => (vs.metadata.namespace === proxyNamespace ? 2 : vs.metadata.namespace === svc.namespace ? 1 : 0);
  candidates.sort((a, b) => b.score - a.score || rank(b.vs) - rank(a.vs) || oldestFirst(a.vs, b.vs));
  const chosen = candidates[0]!.vs;
  if (candidates.length > 1) {
    warn(`host ${svc.host}: ${candidates.length} VirtualServices apply (${candidates.map((c) => resourceKey(c.vs)).join(', ')}): using ${resourceKey(chosen)}`);
  }
  return chosen;
}

/** Whether `ref` (a parentRef of a route in `routeNamespace`) names the host `host` (lower case). */
function namesHost(snapshot: MeshSnapshot, ref: ParentReference, routeNamespace: string, host: string): boolean {
  return parentRefHosts(ref, routeNamespace, snapshot.serviceEntries).some((h) => h.toLowerCase() === host);
}

/**
 * The HTTPRoutes and GRPCRoutes attached to port `port` of `svc` that apply to a proxy in
 * `proxyNamespace`, oldest first. A route attaches when one of its parentRefs names the service
 * and selects that port: no `port` / `sectionName` (every port), a `port` equal to it, a
 * `sectionName` equal to its name, or both (Gateway API `ParentReference`, GAMMA).
 */
export function gatewayRoutesFor(snapshot: MeshSnapshot, svc: RoutedService, proxyNamespace: string, port: number): Array<HTTPRoute | GRPCRoute> {
  const host = svc.host.toLowerCase();
  const servicePort: ParentPort = { number: port, name: portsOf(snapshot, svc).find((p) => p.number === port)?.name ?? '' };
  const attached = [...snapshot.httpRoutes, ...snapshot.grpcRoutes].filter((r) =>
    (r.spec.parentRefs ?? []).some((p) => parentRefSelectsPort(p, servicePort) && namesHost(snapshot, p, r.metadata.namespace, host)),
  );
  const consumer = attached.filter((r) => r.metadata.namespace === proxyNamespace && proxyNamespace !== svc.namespace);
  const chosen = consumer.length > 0 ? consumer : attached.filter((r) => r.metadata.namespace === svc.namespace);
  return chosen.sort(oldestFirst);
}

/**
 * Reports the parentRefs naming `svc` whose `port` / `sectionName` select none of its ports: such
 * a parentRef attaches its route nowhere (the set-level check rejects it when the ServiceEntries
 * are part of the same set; this covers sets checked without references).
 */
function warnDanglingParentPorts(snapshot: MeshSnapshot, svc: RoutedService, warn: (msg: string) => void): void {
  const host = svc.host.toLowerCase();
  let ports: ParentPort[] | undefined;
  for (const r of [...snapshot.httpRoutes, ...snapshot.grpcRoutes]) {
    (r.spec.parentRefs ?? []).forEach((p, i) => {
      if (p.port === undefined && p.sectionName === undefined) return;
      if (!namesHost(snapshot, p, r.metadata.namespace, host)) return;
      ports ??= portsOf(snapshot, svc);
      const problem = parentRefPortProblem(p, svc.host, ports);
      if (problem) warn(`${resourceKey(r)} parentRefs[${i}]: ${problem}: the route does not attach to this parent`);
    });
  }
}

function byKindAndKey(a: { kind: string }, b: { kind: string }): number {
  return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0;
}

/**
 * The routes of the virtual host of `svc` on listener port `ctx.port`: from its VirtualService,
 * else its Gateway API routes; undefined when neither exists (the default route applies).
 * `source` names the resources (`VirtualService/<ns>/<name>`, `HTTPRoute/<ns>/<name>`, ...).
 */
export function httpRoutesForHost(snapshot: MeshSnapshot, svc: RoutedService, ctx: RouteContext): { routes: RouteIR[]; source: string } | undefined {
  const vs = virtualServiceFor(snapshot, svc, ctx.proxyNamespace, ctx.warn);
  const gateway = gatewayRoutesFor(snapshot, svc, ctx.proxyNamespace, ctx.port);
  warnDanglingParentPorts(snapshot, svc, ctx.warn);
  if (vs) {
    if (gateway.length > 0) {
      ctx.warn(`host ${svc.host}: ${resourceKey(vs)} and ${gateway.map(resourceKey).join(', ')} both route it: the VirtualService wins`);
    }
    if ((vs.spec.http ?? []).length === 0) {
      if ((vs.spec.tcp ?? []).length === 0 && (vs.spec.tls ?? []).length > 0) ctx.warn(`${resourceKey(vs)}: tls routes are not implemented: ignored`);
      return undefined;
    }
    const routes = virtualServiceHttpRoutes(vs, ctx);
    sanitizeHeaderOps(routes, ctx.warn);
    return { routes, source: resourceKey(vs) };
  }
  if (gateway.length === 0) return undefined;
  const ranked: RankedRoute[] = [];
  gateway.forEach((r, age) => {
    if ((r.spec.hostnames ?? []).length > 0) ctx.warn(`${resourceKey(r)}: hostnames are ignored for mesh (GAMMA) attachment: its rules apply to every request for ${svc.host}`);
    ranked.push(...(r.kind === 'HTTPRoute' ? httpRouteRoutes(r, ctx, snapshot.serviceEntries, age) : grpcRouteRoutes(r, ctx, snapshot.serviceEntries, age)));
  });
  ranked.sort(compareRanked);
  const names = new Set<string>();
  const routes = ranked.map((r) => {
    let name = r.route.name;
    while (names.has(name)) name = `${name}'`;
    names.add(name);
    return { ...r.route, name };
  });
  sanitizeHeaderOps(routes, ctx.warn);
  return { routes, source: [...gateway].sort(byKindAndKey).map(resourceKey).join(', ') };
}

/**
 * The weighted destinations of the TCP listener forwarding to `svc` on port `ctx.port`, from the
 * first applicable `tcp` route of its VirtualService; undefined when there is none.
 */
export function tcpRouteForHost(snapshot: MeshSnapshot, svc: RoutedService, ctx: RouteContext): { clusters: TcpWeightedClusterIR[]; source: string } | undefined {
  const vs = virtualServiceFor(snapshot, svc, ctx.proxyNamespace, ctx.warn);
  if (!vs) return undefined;
  if ((vs.spec.tcp ?? []).length === 0) {
    if ((vs.spec.http ?? []).length > 0) ctx.warn(`${resourceKey(vs)}: port ${ctx.port} of ${svc.host} is TCP: its http routes do not apply there`);
    return undefined;
  }
  return virtualServiceTcpRoute(vs, ctx);
}

export type { RouteContext };
