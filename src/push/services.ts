/**
 * Mesh services as a proxy sees them: one per ServiceEntry host (Istio treats each host of a
 * ServiceEntry as its own service), filtered by `exportTo`, with their endpoints.
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
  entry: ServiceEntry;
  ports: readonly ServicePort[];
}

/**
 * The services visible from `proxyNamespace`, sorted by host then namespace. `exportTo` is honoured
 * (unset or `*`: everyone; `.`: the ServiceEntry's namespace; `~`: nobody; else namespace names).
 * When several visible ServiceEntries define one host, the one in the proxy's namespace wins, else
 * the oldest, and the others are reported through `warn`.
 */
export function visibleServices(snapshot: MeshSnapshot, proxyNamespace: string, warn: (msg: string) => void): MeshService[] {
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
    if (sorted.length > 1) {
      warn(`host ${key} is defined by ${sorted.map(resourceKey).join(', ')}: using ${resourceKey(chosen)}`);
    }
    const host = chosen.spec.hosts.find((h) => h.toLowerCase() === key) ?? key;
    out.push({ host, namespace: chosen.metadata.namespace, entry: chosen, ports: chosen.spec.ports ?? [] });
  }
  return out.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
}

function exportedTo(se: ServiceEntry, ns: string): boolean {
  const to = se.spec.exportTo;
  if (!to || to.length === 0) return true;
  return to.some((t) => t === '*' || t === ns || (t === '.' && se.metadata.namespace === ns));
}

/**
 * The endpoints of `svc` on `port` (from the registry's `endpointsOfService`: the selected
 * WorkloadEntries, then the ServiceEntry's inline `endpoints`), each with its address, workload
 * port (`ports[<port name>]` ?? `targetPort` ?? `number`), weight, locality and SPIFFE ID
 * (`spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount ?? default>`). Endpoints whose address
 * is not an IP are skipped and reported through `warn` (only STATIC resolution is supported);
 * WorkloadEntries whose `Healthy` condition is False are left out (they leave EDS).
 */
export function serviceEndpoints(snapshot: MeshSnapshot, svc: MeshService, port: ServicePort, trustDomain: string, warn: (msg: string) => void): EndpointIR[] {
  const out: EndpointIR[] = [];
  let inline = 0;
  for (const e of endpointsOfService(snapshot, svc.entry)) {
    const source = e.workloadEntry ? resourceKey(e.workloadEntry) : `${resourceKey(svc.entry)}#endpoints[${inline++}]`;
    if (e.workloadEntry && !isHealthy(e.workloadEntry)) continue; // an unhealthy workload leaves EDS
    if (isIP(e.address) === 0) {
      warn(`${source} has no IP address (${JSON.stringify(e.address)}): not an endpoint of ${svc.host} (only STATIC resolution is supported)`);
      continue;
    }
    const ep: EndpointIR = { ip: e.address, port: endpointPort(e, port), spiffeId: spiffeIdOf(trustDomain, e.namespace, e.serviceAccount), source };
    if (e.weight !== undefined && e.weight > 0) ep.weight = e.weight;
    const locality = parseLocality(e.locality);
    if (locality) ep.locality = locality;
    out.push(ep);
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
