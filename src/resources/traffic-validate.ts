/**
 * Checks of the traffic management kinds (DestinationRule, VirtualService, HTTPRoute, GRPCRoute)
 * beyond their schemas:
 *
 * - {@link trafficResourceWarnings}: fields of one resource Skiff parses but does not implement
 *   (gateways other than `mesh`, `delegate`, `tls` routes, DestinationRule `tunnel` /
 *   `proxyProtocol` / `warmupDurationSecs` / `credentialName`...), and Gateway parents (there
 *   are no gateways on VMs). Each is a warning, never silently ignored (DESIGN.md §3).
 * - {@link trafficSetIssues}: references across the whole set, so a change that breaks one is
 *   rejected whole and the last good snapshot keeps serving. Errors: a destination / backendRef
 *   host no ServiceEntry defines, a `subset` no DestinationRule for that host defines, a port the
 *   service lacks, a parentRef `port` / `sectionName` (service port number / name) that selects
 *   no port of its service. Warning: a VirtualService and an HTTPRoute/GRPCRoute for the same host.
 *
 * Precedence rule when a VirtualService and a Gateway API route both target one host: Istio does
 * not define the outcome; Skiff uses the VirtualService (the route is ignored for that host) and
 * says so in the warning.
 *
 * Hosts are resolved as in `traffic-hosts.ts` (short names against the resource's namespace).
 * ServiceEntry `exportTo` is not considered: every ServiceEntry is visible to every resource.
 */
import type { PathSegment } from './issues.js';
import {
  backendRefKind,
  comparePrecedence,
  parentRefKind,
  parentRefPortProblem,
  refHosts,
  resolveShortHost,
  routeTargetHosts,
  type MeshRefKind,
  type ParentPort,
  type ServiceEntryLookup,
} from './traffic-hosts.js';
import type { BackendObjectReference, Destination, DestinationRule, GRPCRoute, HTTPRoute, ParentReference, TrafficPolicy, VirtualService } from './traffic-types.js';
import type { MeshResource, ServiceEntry } from './types.js';

/** One issue about one resource, at a path inside it (the caller adds file and line). */
export interface TrafficIssue {
  resource: MeshResource;
  path: PathSegment[];
  message: string;
}

/** A warning about one resource, at a path inside it (the shape of `warnings.ts`'s ResourceWarning). */
export interface TrafficWarning {
  path: PathSegment[];
  message: string;
}

// ---------------------------------------------------------------------------------------------
// Per-resource warnings

function trafficPolicyWarnings(tp: TrafficPolicy | undefined, base: PathSegment[], out: TrafficWarning[]): void {
  if (tp === undefined) return;
  if (tp.tunnel !== undefined) out.push({ path: [...base, 'tunnel'], message: 'tunnel (HTTP CONNECT tunnelling) is not implemented yet: traffic is sent directly' });
  if (tp.proxyProtocol !== undefined) out.push({ path: [...base, 'proxyProtocol'], message: 'proxyProtocol is not implemented yet: no PROXY protocol header is sent' });
  const policies: [PathSegment[], { loadBalancer?: TrafficPolicy['loadBalancer']; tls?: TrafficPolicy['tls'] }][] = [[base, tp]];
  (tp.portLevelSettings ?? []).forEach((p, i) => policies.push([[...base, 'portLevelSettings', i], p]));
  for (const [at, p] of policies) {
    if (p.loadBalancer?.warmupDurationSecs !== undefined) {
      out.push({ path: [...at, 'loadBalancer', 'warmupDurationSecs'], message: 'warmupDurationSecs (slow start) is not implemented yet: new endpoints get full traffic at once' });
    }
    if ((p.loadBalancer?.consistentHash?.httpCookie?.attributes?.length ?? 0) > 0) {
      out.push({ path: [...at, 'loadBalancer', 'consistentHash', 'httpCookie', 'attributes'], message: 'cookie attributes are not implemented yet: the generated cookie has none' });
    }
    if (p.tls?.credentialName !== undefined) {
      out.push({ path: [...at, 'tls', 'credentialName'], message: 'credentialName names a Kubernetes secret, which Skiff cannot read on VMs: set clientCertificate, privateKey and caCertificates (file paths) instead' });
    }
    if (p.tls?.caCrl !== undefined) out.push({ path: [...at, 'tls', 'caCrl'], message: 'caCrl is not implemented yet: revocation is not checked' });
  }
}

function destinationRuleWarnings(dr: DestinationRule, out: TrafficWarning[]): void {
  trafficPolicyWarnings(dr.spec.trafficPolicy, ['spec', 'trafficPolicy'], out);
  (dr.spec.subsets ?? []).forEach((s, i) => trafficPolicyWarnings(s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy'], out));
}

function gatewaysWarnings(gateways: readonly string[] | undefined, base: PathSegment[], out: TrafficWarning[]): void {
  if (gateways === undefined || gateways.length === 0) return;
  gateways.forEach((g, i) => {
    if (g !== 'mesh') out.push({ path: [...base, i], message: `gateway ${JSON.stringify(g)} is ignored: Skiff runs no gateways (only "mesh", the sidecars, is implemented)` });
  });
  if (!gateways.includes('mesh')) out.push({ path: base, message: 'gateways does not include "mesh": these routes apply to no sidecar' });
}

function virtualServiceWarnings(vs: VirtualService, out: TrafficWarning[]): void {
  const spec = vs.spec;
  gatewaysWarnings(spec.gateways, ['spec', 'gateways'], out);
  if ((spec.tls?.length ?? 0) > 0) out.push({ path: ['spec', 'tls'], message: 'tls routes (SNI routing) are not implemented yet: they are ignored' });
  (spec.http ?? []).forEach((h, i) => {
    const at: PathSegment[] = ['spec', 'http', i];
    if (h.delegate !== undefined) out.push({ path: [...at, 'delegate'], message: 'delegate is not implemented yet (delegation is a gateway feature): this route is ignored' });
    (h.match ?? []).forEach((m, j) => {
      gatewaysWarnings(m.gateways, [...at, 'match', j, 'gateways'], out);
      if (m.statPrefix !== undefined) out.push({ path: [...at, 'match', j, 'statPrefix'], message: 'statPrefix is not implemented yet' });
    });
    if (h.fault?.delay?.exponentialDelay !== undefined) out.push({ path: [...at, 'fault', 'delay', 'exponentialDelay'], message: 'exponentialDelay is not implemented yet: no delay is injected' });
    if (h.fault?.abort?.http2Error !== undefined) out.push({ path: [...at, 'fault', 'abort', 'http2Error'], message: 'http2Error is not implemented yet: no abort is injected' });
    if (h.retries?.retryIgnorePreviousHosts !== undefined) out.push({ path: [...at, 'retries', 'retryIgnorePreviousHosts'], message: 'retryIgnorePreviousHosts is not implemented yet' });
    if (h.retries?.backoff !== undefined) out.push({ path: [...at, 'retries', 'backoff'], message: 'backoff is not implemented yet: Envoy uses its default (25 ms base)' });
    if (h.corsPolicy?.unmatchedPreflights !== undefined) out.push({ path: [...at, 'corsPolicy', 'unmatchedPreflights'], message: 'unmatchedPreflights is not implemented yet' });
    if (h.redirect?.derivePort === 'FROM_REQUEST_PORT') out.push({ path: [...at, 'redirect', 'derivePort'], message: 'derivePort FROM_REQUEST_PORT is not implemented yet: the redirect keeps the default port of its scheme' });
  });
  (spec.tcp ?? []).forEach((t, i) => (t.match ?? []).forEach((m, j) => gatewaysWarnings(m.gateways, ['spec', 'tcp', i, 'match', j, 'gateways'], out)));
}

function gatewayRouteWarnings(route: HTTPRoute | GRPCRoute, out: TrafficWarning[]): void {
  (route.spec.parentRefs ?? []).forEach((ref, i) => {
    if (parentRefKind(ref) === 'Gateway') {
      out.push({ path: ['spec', 'parentRefs', i], message: `Gateway parent ${JSON.stringify(ref.name)} is ignored: Skiff runs no gateways (attach mesh routes to a Service, ServiceEntry or Hostname)` });
    }
  });
  const filterWarnings = (filters: readonly { type: string }[] | undefined, base: PathSegment[]): void => {
    (filters ?? []).forEach((f, k) => {
      if (f.type === 'ExtensionRef') out.push({ path: [...base, k], message: 'ExtensionRef filters are not implemented: the filter is ignored' });
    });
  };
  (route.spec.rules ?? []).forEach((rule, i) => {
    filterWarnings(rule.filters, ['spec', 'rules', i, 'filters']);
    (rule.backendRefs ?? []).forEach((b, j) => filterWarnings(b.filters, ['spec', 'rules', i, 'backendRefs', j, 'filters']));
  });
}

/**
 * Warnings for one traffic resource that passed its schema (empty for other kinds). Paths are
 * relative to the resource.
 */
export function trafficResourceWarnings(r: MeshResource): TrafficWarning[] {
  const out: TrafficWarning[] = [];
  switch (r.kind) {
    case 'DestinationRule':
      destinationRuleWarnings(r, out);
      break;
    case 'VirtualService':
      virtualServiceWarnings(r, out);
      break;
    case 'HTTPRoute':
    case 'GRPCRoute':
      gatewayRouteWarnings(r, out);
      break;
    default:
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Set-level checks

/** True when ServiceEntry host `pattern` (possibly `*.x`) covers `host`. */
function hostCovers(pattern: string, host: string): boolean {
  return pattern === host || (pattern.startsWith('*') && host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1);
}

/** The ServiceEntries defining `host` (exact first, then wildcards covering it). */
function servicesFor(host: string, services: readonly ServiceEntry[]): ServiceEntry[] {
  const exact = services.filter((se) => se.spec.hosts.includes(host));
  return exact.length > 0 ? exact : services.filter((se) => se.spec.hosts.some((h) => hostCovers(h, host)));
}

/** Port numbers the ServiceEntries define. */
function portsOf(ses: readonly ServiceEntry[]): Set<number> {
  return new Set(ses.flatMap((se) => (se.spec.ports ?? []).map((p) => p.number)));
}

function describePorts(ports: Set<number>): string {
  return ports.size === 0 ? 'it defines no ports' : `it has ${[...ports].sort((a, b) => a - b).join(', ')}`;
}

/**
 * Runs the cross-resource checks of the traffic kinds over a whole set. Returns errors (the set
 * must be rejected) and warnings, each naming the resource and the path of the offending field
 * (`spec.http[0].route[1].destination.host`). With `references: false` the host/subset/port
 * errors and the "host names no ServiceEntry" warnings are left out (for a set that is only part
 * of the mesh); the VirtualService-vs-route precedence warning stays.
 */
export function trafficSetIssues(resources: readonly MeshResource[], options: { references?: boolean } = {}): { errors: TrafficIssue[]; warnings: TrafficIssue[] } {
  const errors: TrafficIssue[] = [];
  const warnings: TrafficIssue[] = [];
  const services = resources.filter((r): r is ServiceEntry => r.kind === 'ServiceEntry');
  const destinationRules = resources.filter((r): r is DestinationRule => r.kind === 'DestinationRule');
  const seByName = new Map(services.map((se) => [`${se.metadata.namespace}/${se.metadata.name}`, se]));
  const lookup: ServiceEntryLookup = (ns, name) => seByName.get(`${ns}/${name}`);

  const subsetsByHost = new Map<string, Set<string>>();
  for (const dr of destinationRules) {
    const host = resolveShortHost(dr.spec.host, dr.metadata.namespace);
    const set = subsetsByHost.get(host) ?? new Set<string>();
    for (const s of dr.spec.subsets ?? []) set.add(s.name);
    subsetsByHost.set(host, set);
  }

  /** Checks an Istio `Destination` (host, subset, port). */
  const checkDestination = (r: MeshResource, d: Destination, base: PathSegment[]): void => {
    const host = resolveShortHost(d.host, r.metadata.namespace);
    const ses = servicesFor(host, services);
    const shown = host === d.host ? `"${d.host}"` : `"${d.host}" (${host})`;
    if (ses.length === 0) {
      errors.push({ resource: r, path: [...base, 'host'], message: `host ${shown} is not defined by any ServiceEntry` });
      return;
    }
    if (d.subset !== undefined && !(subsetsByHost.get(host)?.has(d.subset) ?? false)) {
      errors.push({
        resource: r,
        path: [...base, 'subset'],
        message: subsetsByHost.has(host)
          ? `subset "${d.subset}" is not defined by any DestinationRule for host ${host}`
          : `subset "${d.subset}" needs a DestinationRule for host ${host}, and there is none`,
      });
    }
    if (d.port !== undefined) {
      const ports = portsOf(ses);
      if (!ports.has(d.port.number)) errors.push({ resource: r, path: [...base, 'port', 'number'], message: `service ${host} has no port ${d.port.number} (${describePorts(ports)})` });
    }
  };

  /** Checks a Gateway API reference to a mesh service (backendRef or parentRef) and its port. */
  const checkRef = (r: HTTPRoute | GRPCRoute, kind: MeshRefKind, ref: { name: string; namespace?: string; port?: number }, base: PathSegment[], what: string): string[] => {
    if (kind !== 'Service' && kind !== 'ServiceEntry' && kind !== 'Hostname') return [];
    const ns = ref.namespace ?? r.metadata.namespace;
    if (kind === 'ServiceEntry' && lookup(ns, ref.name) === undefined) {
      errors.push({ resource: r, path: [...base, 'name'], message: `${what} names ServiceEntry ${ns}/${ref.name}, which does not exist` });
      return [];
    }
    const hosts = refHosts(kind, ref, r.metadata.namespace, lookup);
    const ses = hosts.flatMap((h) => servicesFor(h, services));
    if (ses.length === 0) {
      errors.push({ resource: r, path: [...base, 'name'], message: `${what} host "${hosts.join(', ')}" is not defined by any ServiceEntry` });
      return [];
    }
    if (ref.port !== undefined) {
      const ports = portsOf(ses);
      if (!ports.has(ref.port)) errors.push({ resource: r, path: [...base, 'port'], message: `service ${hosts.join(', ')} has no port ${ref.port} (${describePorts(ports)})` });
    }
    return hosts;
  };

  const checkBackend = (r: HTTPRoute | GRPCRoute, ref: BackendObjectReference, base: PathSegment[], what: string): void => {
    checkRef(r, backendRefKind(ref), ref, base, what);
  };

  /**
   * Checks a parentRef: its service, then its `port` / `sectionName` (Gateway API: the service
   * port number / name; both set: one port must match both) against the ServiceEntry ports.
   */
  const checkParent = (r: HTTPRoute | GRPCRoute, ref: ParentReference, base: PathSegment[]): void => {
    const hosts = checkRef(r, parentRefKind(ref), { name: ref.name, ...(ref.namespace === undefined ? {} : { namespace: ref.namespace }) }, base, 'parentRef');
    if (hosts.length === 0) return;
    const ports: ParentPort[] = [];
    for (const se of hosts.flatMap((h) => servicesFor(h, services))) {
      for (const p of se.spec.ports ?? []) if (!ports.some((o) => o.number === p.number)) ports.push({ number: p.number, name: p.name });
    }
    const problem = parentRefPortProblem(ref, hosts.join(', '), ports);
    if (problem === undefined) return;
    const field = ref.sectionName !== undefined && !ports.some((p) => p.name === ref.sectionName) ? 'sectionName' : 'port';
    errors.push({ resource: r, path: [...base, field], message: `parentRef: ${problem}` });
  };

  const vsByHost = new Map<string, VirtualService>();
  const virtualServices = resources.filter((r): r is VirtualService => r.kind === 'VirtualService').sort(comparePrecedence);
  for (const vs of virtualServices) {
    (vs.spec.hosts ?? []).forEach((h, i) => {
      const host = resolveShortHost(h, vs.metadata.namespace);
      const first = vsByHost.get(host);
      if (first === undefined) {
        vsByHost.set(host, vs);
        return;
      }
      // Istio's analyzer reports this as IST0109 (ConflictingMeshGatewayVirtualServiceHosts):
      // sidecars do not merge VirtualServices, one wins.
      if (first.metadata.namespace === vs.metadata.namespace || (vs.spec.exportTo ?? ['*']).includes('*')) {
        warnings.push({
          resource: vs,
          path: ['spec', 'hosts', i],
          message: `host ${host} is also routed by VirtualService ${first.metadata.namespace}/${first.metadata.name}: sidecars do not merge VirtualServices; for a proxy that sees both, one in its own namespace wins, else one in the service's namespace, else the oldest`,
        });
      }
    });
  }
  const references = options.references !== false;
  if (references) {
    // Rules for hosts that no service defines apply to nothing: probably a typo.
    for (const vs of virtualServices) {
      (vs.spec.hosts ?? []).forEach((h, i) => {
        const host = resolveShortHost(h, vs.metadata.namespace);
        if (host !== '*' && !host.startsWith('*') && servicesFor(host, services).length === 0) {
          warnings.push({ resource: vs, path: ['spec', 'hosts', i], message: `host "${h}" names no ServiceEntry host: these routes apply to no service yet` });
        }
      });
    }
    for (const dr of destinationRules) {
      const host = resolveShortHost(dr.spec.host, dr.metadata.namespace);
      if (!host.startsWith('*') && servicesFor(host, services).length === 0) {
        warnings.push({ resource: dr, path: ['spec', 'host'], message: `host "${dr.spec.host}" names no ServiceEntry host: this rule applies to no service yet` });
      }
    }
  }
  for (const r of references ? resources : []) {
    if (r.kind === 'VirtualService') {
      (r.spec.http ?? []).forEach((h, i) => {
        const at: PathSegment[] = ['spec', 'http', i];
        (h.route ?? []).forEach((d, j) => checkDestination(r, d.destination, [...at, 'route', j, 'destination']));
        if (h.mirror !== undefined) checkDestination(r, h.mirror, [...at, 'mirror']);
        (h.mirrors ?? []).forEach((m, j) => checkDestination(r, m.destination, [...at, 'mirrors', j, 'destination']));
      });
      (r.spec.tcp ?? []).forEach((t, i) => (t.route ?? []).forEach((d, j) => checkDestination(r, d.destination, ['spec', 'tcp', i, 'route', j, 'destination'])));
    } else if (r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute') {
      (r.spec.parentRefs ?? []).forEach((ref, i) => checkParent(r, ref, ['spec', 'parentRefs', i]));
      (r.spec.rules ?? []).forEach((rule, i) => {
        const at: PathSegment[] = ['spec', 'rules', i];
        const filters = (list: readonly { type: string; requestMirror?: { backendRef: BackendObjectReference } }[] | undefined, base: PathSegment[]): void => {
          (list ?? []).forEach((f, k) => {
            if (f.requestMirror !== undefined) checkBackend(r, f.requestMirror.backendRef, [...base, k, 'requestMirror', 'backendRef'], 'mirror backendRef');
          });
        };
        filters(rule.filters, [...at, 'filters']);
        (rule.backendRefs ?? []).forEach((b, j) => {
          checkBackend(r, b, [...at, 'backendRefs', j], 'backendRef');
          filters(b.filters, [...at, 'backendRefs', j, 'filters']);
        });
      });
    }
  }

  // A VirtualService and a Gateway API route for one host: Skiff uses the VirtualService.
  for (const r of resources) {
    if (r.kind !== 'HTTPRoute' && r.kind !== 'GRPCRoute') continue;
    for (const host of routeTargetHosts(r, lookup)) {
      const vs = vsByHost.get(host);
      if (vs === undefined) continue;
      const where = vs.origin?.file !== undefined ? ` (${vs.origin.file}${vs.origin.line ? `:${vs.origin.line}` : ''})` : '';
      warnings.push({
        resource: r,
        path: ['spec', 'parentRefs'],
        message: `host ${host} is also routed by VirtualService ${vs.metadata.namespace}/${vs.metadata.name}${where}: Istio does not define which wins; Skiff uses the VirtualService and ignores this ${r.kind} for that host`,
      });
    }
  }
  return { errors, warnings };
}
