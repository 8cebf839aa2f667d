/**
 * The endpoints of a ServiceEntry: the WorkloadEntries its `workloadSelector` selects in its own
 * namespace, then its inline `endpoints` (Istio allows one or the other). Addresses are IPs: the
 * resource schemas reject anything else.
 */
import type { ServiceEntry, ServicePort, WorkloadEntry } from '../resources/types.js';
import { namespacedName } from './snapshot.js';
import type { MeshSnapshot } from './types.js';

/** One endpoint of a service. */
export interface ServiceEndpoint {
  /** IPv4 or IPv6 address. */
  address: string;
  /** Namespace of the workload (the ServiceEntry's namespace for inline endpoints). */
  namespace: string;
  /** `serviceAccount`, `default` when unset: with `namespace` it makes the SPIFFE ID. */
  serviceAccount: string;
  /** Port name → port number on this endpoint (`ports` of the WorkloadEntry or inline endpoint). */
  ports: Readonly<Record<string, number>>;
  labels: Readonly<Record<string, string>>;
  weight?: number;
  locality?: string;
  network?: string;
  /** The WorkloadEntry this endpoint is; undefined for an inline endpoint. */
  workloadEntry?: WorkloadEntry;
}

/**
 * The endpoints of `se`: selected WorkloadEntries (sorted by name), then inline endpoints in
 * document order. Endpoints without an address are left out.
 */
export function endpointsOfService(snapshot: MeshSnapshot, se: ServiceEntry): ServiceEndpoint[] {
  const out: ServiceEndpoint[] = [];
  for (const we of snapshot.workloadsByService.get(namespacedName(se)) ?? []) {
    if (!we.spec.address) continue;
    out.push({
      address: we.spec.address,
      namespace: we.metadata.namespace,
      serviceAccount: we.spec.serviceAccount || 'default',
      ports: we.spec.ports ?? {},
      labels: { ...(we.spec.labels ?? {}), ...(we.metadata.labels ?? {}) },
      ...(we.spec.weight !== undefined ? { weight: we.spec.weight } : {}),
      ...(we.spec.locality !== undefined ? { locality: we.spec.locality } : {}),
      ...(we.spec.network !== undefined ? { network: we.spec.network } : {}),
      workloadEntry: we,
    });
  }
  for (const ep of se.spec.endpoints ?? []) {
    if (!ep.address) continue;
    out.push({
      address: ep.address,
      namespace: se.metadata.namespace,
      serviceAccount: ep.serviceAccount || 'default',
      ports: ep.ports ?? {},
      labels: ep.labels ?? {},
      ...(ep.weight !== undefined ? { weight: ep.weight } : {}),
      ...(ep.locality !== undefined ? { locality: ep.locality } : {}),
      ...(ep.network !== undefined ? { network: ep.network } : {}),
    });
  }
  return out;
}

/**
 * The port an endpoint serves `port` on: its `ports[port.name]`, else `port.targetPort`, else
 * `port.number` (Istio's WorkloadEntry `ports` semantics).
 */
export function endpointPort(endpoint: Pick<ServiceEndpoint, 'ports'>, port: ServicePort): number {
  return endpoint.ports[port.name] ?? port.targetPort ?? port.number;
}
