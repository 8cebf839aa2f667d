/**
 * ClusterLoadAssignments (envoy/config/endpoint/v3/endpoint.proto) for outbound EDS clusters:
 * endpoints grouped by locality and failover priority (groups in order of first appearance), each
 * endpoint with its weight when set. A group carries `priority` when it is above 0 and, when the
 * load assignment has `localityWeights` (locality-weighted load balancing, see
 * src/push/traffic/locality.ts), a `load_balancing_weight`: the locality's weight from
 * `localityWeights` (DestinationRule `distribute`), else the sum of the group's endpoint weights
 * (Istio's locality weight, an endpoint without a weight counting 1).
 */
import type { LoadAssignmentIR, LocalityIR } from '../../ir/types.js';
import { socketAddress } from './common.js';
import { hboneLbEndpoint } from './hbone.js';
import type { ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints } from './envoy-types.js';

function localityKey(l: LocalityIR | undefined): string {
  return `${l?.region ?? ''}/${l?.zone ?? ''}/${l?.subZone ?? ''}`;
}

/** The ClusterLoadAssignment of one outbound cluster (no `endpoints` when it has none). */
export function clusterLoadAssignment(la: LoadAssignmentIR): ClusterLoadAssignment {
  const groups = new Map<string, { group: LocalityLbEndpoints; locality: string; weight: number }>();
  for (const ep of la.endpoints) {
    const locality = localityKey(ep.locality);
    const priority = ep.priority ?? 0;
    const key = `${locality}|${priority}`;
    let entry = groups.get(key);
    if (!entry) {
      const group: LocalityLbEndpoints = { lbEndpoints: [] };
      if (ep.locality) group.locality = { ...ep.locality };
      if (priority > 0) group.priority = priority;
      entry = { group, locality, weight: 0 };
      groups.set(key, entry);
    }
    const lb: LbEndpoint = ep.hbone ? hboneLbEndpoint(la.clusterName, ep.ip, ep.port) : { endpoint: { address: socketAddress(ep.ip, ep.port) } };
    if (ep.weight !== undefined) lb.loadBalancingWeight = { value: ep.weight };
    entry.group.lbEndpoints.push(lb);
    entry.weight += ep.weight ?? 1;
  }
  const cla: ClusterLoadAssignment = { clusterName: la.clusterName };
  if (groups.size > 0) {
    cla.endpoints = [...groups.values()].map(({ group, locality, weight }) => {
      if (la.localityWeights) group.loadBalancingWeight = { value: la.localityWeights[locality] ?? weight };
      return group;
    });
  }
  return cla;
}
