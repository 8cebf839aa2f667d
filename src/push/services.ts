/**
 * Mesh services as a proxy sees them: one per ServiceEntry host (Istio treats each host of a
 * ServiceEntry as its own service), filtered by `exportTo`, with their endpoints. ServiceEntries of
 * one namespace that define the same host (say one from a file and one from Consul) are one
 * service whose endpoints are the union of theirs.
 */
import { isIP } from 'node:net';
import { isHealthy, resourceKey, type ServiceEntry, type ServicePort } from '../resources/types.js';
import type { EndpointIR, LocalityIR } from '../ir/types.js';
import { endpointPort, endpointsOfService } from '../registry/endpoints.js';
import type { MeshSnapshot } from '../registry/types.js';
import { oldestFirst } from './selectors.js';
import { spiffeIdOf } from './node.js';

/** One service: a host of a ServiceEntry. */
export interface MeshService {
  /** The host as written in the ServiceEntry. */
  host: string;
  /** The ServiceEntry's namespace. */
  namespace: string;
  /** The ServiceEntry that defines the service (the one chosen when several define the host). */
  entry: ServiceEntry;
  /**
   * Every ServiceEntry merged into this service: `entry` first, then the other visible ones of the
   * same namespace that define the host (from any source: files, the API, Consul), whose endpoints
   * join the service's. Absent means `[entry]`.
   */
  entries?: readonly ServiceEntry[];
  /** `entry`'s ports, then the ports of the other `entries` with numbers `entry` does not have. */
  ports: readonly ServicePort[];
}

/**
 * The services visible from `proxyNamespace`, sorted by host then namespace. `exportTo` is honoured
 * (unset or `*`: everyone; `.`: the ServiceEntry's namespace; `~`: nobody; else namespace names).
 * When several visible ServiceEntries define one host, the one in the proxy's namespace wins, else
 * the oldest; the others of the winner's namespace are merged into it (as Istio merges
 * ServiceEntries with one host in one namespace): their endpoints join, their ports are added, and
 * a port number they define differently (name, protocol or targetPort) is reported through `warn`
 * as a conflict, keeping the winner's definition. ServiceEntries of other namespaces are reported
 * and left out.
 */
export function visibleServices(snapshot: MeshSnapshot, proxyNamespace: string, warn: (msg: string) => void): MeshService[] {
  // Snapshots are immutable and every proxy of a namespace sees the same services: computed once
  // per (snapshot, namespace), warnings replayed (issue 9: shared mesh-wide work computed once).
  let byNamespace = VISIBLE.get(snapshot);
  if (!byNamespace) {
    byNamespace = new Map();
    VISIBLE.set(snapshot, byNamespace);
  }
  let memo = byNamespace.get(proxyNamespace);
  if (!memo) {
    const warnings: string[] = [];
    memo = { services: computeVisibleServices(snapshot, proxyNamespace, (m) => warnings.push(m)), warnings };
    byNamespace.set(proxyNamespace, memo);
  }
  for (const w of memo.warnings) warn(w);
  return [...memo.services];
}

/** {@link visibleServices} results by snapshot (weakly held: dropped with the snapshot). */
const VISIBLE = new WeakMap<MeshSnapshot, Map<string, { services: readonly MeshService[]; warnings: readonly string[] }>>();

function computeVisibleServices(snapshot: MeshSnapshot, proxyNamespace: string, warn: (msg: string) => void): MeshService[] {
  const byHost = new Map<string, ServiceEntry[]>();
  for (const se of snapshot.serviceEntries) {
    if (!exportedTo(se, proxyNamespace)) continue;
    for (const host of se.spec.hosts) {
      const key = host.toLowerCase();
      const list = byHost.get(key) ?? [];
      if (!list.includes(se)) list.push(se);
      byHost.set(key, list);
    }
  }
  const out: MeshService[] = [];
  for (const [key, entries] of byHost) {
    const sorted = [...entries].sort((a, b) => {
      const own = Number(b.metadata.namespace === proxyNamespace) - Number(a.metadata.namespace === proxyNamespace);
      return own !== 0 ? own : oldestFirst(a, b);
    });
    const chosen = sorted[0]!;
    const merged = sorted.filter((se) => se.metadata.namespace === chosen.metadata.namespace);
    const others = sorted.filter((se) => se.metadata.namespace !== chosen.metadata.namespace);
    if (others.length > 0) {
      warn(`host ${key} is defined by ${sorted.map(resourceKey).join(', ')}: using ${merged.map(resourceKey).join(' + ')}`);
    }
    const host = chosen.spec.hosts.find((h) => h.toLowerCase() === key) ?? key;
    const ports = mergePorts(key, merged, warn);
    const svc: MeshService = { host, namespace: chosen.metadata.namespace, entry: chosen, ports };
    if (merged.length > 1) svc.entries = merged;
    out.push(svc);
  }
  return out.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
}

/** `resourceKey` and, when known, the source (`ServiceEntry/shop/web (file)`), for conflict messages. */
function describeEntry(se: ServiceEntry): string {
  return se.origin?.source ? `${resourceKey(se)} (${se.origin.source})` : resourceKey(se);
}

/** Merged ports of ServiceEntries defining one host: the first entry's, then new numbers from the others. */
function mergePorts(host: string, entries: readonly ServiceEntry[], warn: (msg: string) => void): ServicePort[] {
  const ports: ServicePort[] = [];
  const owner = new Map<number, { port: ServicePort; se: ServiceEntry }>();
  for (const se of entries) {
    for (const p of se.spec.ports ?? []) {
      const prior = owner.get(p.number);
      if (!prior) {
        owner.set(p.number, { port: p, se });
        ports.push(p);
        continue;
      }
      const proto = (x: ServicePort): string => (x.protocol ?? '').toUpperCase();
      if (prior.port.name !== p.name || proto(prior.port) !== proto(p) || (prior.port.targetPort ?? p.number) !== (p.targetPort ?? p.number)) {
        const show = (x: ServicePort): string => `${x.name}/${x.protocol ?? 'unset'}${x.targetPort !== undefined ? ` targetPort ${x.targetPort}` : ''}`;
        warn(
          `conflict: host ${host} port ${p.number} is ${show(prior.port)} in ${describeEntry(prior.se)} but ${show(p)} in ${describeEntry(se)}: using ${describeEntry(prior.se)}'s; the endpoints of both are served`,
        );
      }
    }
  }
  return ports;
}

function exportedTo(se: ServiceEntry, ns: string): boolean {
  const to = se.spec.exportTo;
  if (!to || to.length === 0) return true;
  return to.some((t) => t === '*' || t === ns || (t === '.' && se.metadata.namespace === ns));
}

/**
 * The endpoints of `svc` on `port` (from the registry's `endpointsOfService`: the selected
 * WorkloadEntries, then the ServiceEntry's inline `endpoints`, for every ServiceEntry merged into
 * the service), each with its address, workload port (`ports[<port name>]` ?? `targetPort` ??
 * `number`, with the port as *that* ServiceEntry defines it), weight, locality and SPIFFE ID
 * (`spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount ?? default>`). A merged ServiceEntry
 * without a port of that number contributes nothing to it; a WorkloadEntry two of them select is
 * one endpoint. Endpoints whose address is not an IP are skipped and reported through `warn`
 * (only STATIC resolution is supported); WorkloadEntries whose `Healthy` condition is False are
 * left out (they leave EDS).
 */
export function serviceEndpoints(snapshot: MeshSnapshot, svc: MeshService, port: ServicePort, trustDomain: string, warn: (msg: string) => void): EndpointIR[] {
  return labeledServiceEndpoints(snapshot, svc, port, trustDomain, warn).map((e) => e.endpoint);
}

/**
 * {@link serviceEndpoints} with each endpoint's labels (the WorkloadEntry's or the inline
 * endpoint's) and network, which DestinationRule subsets select on and `failoverPriority` compares.
 */
export function labeledServiceEndpoints(
  snapshot: MeshSnapshot,
  svc: MeshService,
  port: ServicePort,
  trustDomain: string,
  warn: (msg: string) => void,
): Array<{ endpoint: EndpointIR; labels: Readonly<Record<string, string>>; network?: string }> {
  const out: Array<{ endpoint: EndpointIR; labels: Readonly<Record<string, string>>; network?: string }> = [];
  const seen = new Set<string>();
  for (const entry of svc.entries ?? [svc.entry]) {
    const entryPort = entry === svc.entry ? port : entry.spec.ports?.find((p) => p.number === port.number);
    if (!entryPort) continue;
    let inline = 0;
    for (const e of endpointsOfService(snapshot, entry)) {
      const source = e.workloadEntry ? resourceKey(e.workloadEntry) : `${resourceKey(entry)}#endpoints[${inline++}]`;
      if (seen.has(source)) continue;
      seen.add(source);
      if (e.workloadEntry && !isHealthy(e.workloadEntry)) continue; // an unhealthy workload leaves EDS
      if (isIP(e.address) === 0) {
        warn(`${source} has no IP address (${JSON.stringify(e.address)}): not an endpoint of ${svc.host} (only STATIC resolution is supported)`);
        continue;
      }
      const ep: EndpointIR = { ip: e.address, port: endpointPort(e, entryPort), spiffeId: spiffeIdOf(trustDomain, e.namespace, e.serviceAccount), source };
      if (e.weight !== undefined && e.weight > 0) ep.weight = e.weight;
      const locality = parseLocality(e.locality);
      if (locality) ep.locality = locality;
      out.push({ endpoint: ep, labels: e.labels, ...(e.network !== undefined ? { network: e.network } : {}) });
    }
  }
  return out;
}

/** Parses Istio's `region/zone/subzone` locality; undefined when empty. */
export function parseLocality(s: string | undefined): LocalityIR | undefined {
  if (!s) return undefined;
  const [region, zone, subZone] = s.split('/');
  const out: LocalityIR = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.subZone = subZone;
  return Object.keys(out).length ? out : undefined;
}
