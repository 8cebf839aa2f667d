/**
 * ClusterLoadAssignments (envoy/config/endpoint/v3/endpoint.proto) for outbound EDS clusters:
 * endpoints grouped by locality (in order of first appearance), each with its weight when set.
 */
import type { LoadAssignmentIR, LocalityIR } from '../../ir/types.js';
import { socketAddress } from './common.js';
import { hboneLbEndpoint } from './hbone.js';
import type { ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints } from './envoy-types.js';

function localityKey(l: LocalityIR | undefined): string {
  return l ? `${l.region ?? ''}/${l.zone ?? ''}/${l.subZone ?? ''}` : '';
}

/** The ClusterLoadAssignment of one outbound cluster (no `endpoints` when it has none). */
export function clusterLoadAssignment(la: LoadAssignmentIR): ClusterLoadAssignment {
  const groups = new Map<string, LocalityLbEndpoints>();
  for (const ep of la.endpoints) {
    const key = localityKey(ep.locality);
    let group = groups.get(key);
    if (!group) {
      group = { lbEndpoints: [] };
      if (ep.locality) group.locality = { ...ep.locality };
      groups.set(key, group);
    }
    const lb: LbEndpoint = ep.hbone ? hboneLbEndpoint(la.clusterName, ep.ip, ep.port) : { endpoint: { address: socketAddress(ep.ip, ep.port) } };
    if (ep.weight !== undefined) lb.loadBalancingWeight = { value: ep.weight };
    group.lbEndpoints.push(lb);
  }
  const cla: ClusterLoadAssignment = { clusterName: la.clusterName };
  if (groups.size > 0) cla.endpoints = [...groups.values()];
  return cla;
}
