/**
 * Self-checks of a {@link ProxyIR}: things that would make a data plane reject the configuration
 * (Envoy NACKs duplicate listener addresses, duplicate domains in a route configuration, ...) or
 * silently drop traffic (a route naming a missing cluster, an EDS cluster without endpoints data).
 */
import { isIP } from 'node:net';
import type { ClusterIR, EndpointAddress, ProxyIR } from './types.js';
import { validateSecurity } from './validate-security.js';

/**
 * Returns every problem found in `ir`, one sentence each; an empty array means the IR is
 * consistent. Checks: names and ports well-formed; listener names unique; no two listeners
 * binding overlapping `address:port` (a wildcard address `0.0.0.0`/`::` overlaps every address of
 * its family); no listener on a local application endpoint (a loop, or a bind conflict); cluster names unique; every
 * cluster a listener or route names exists with the right direction; every outbound cluster has
 * exactly one load assignment and no load assignment names an unknown cluster; route
 * configuration names unique; domains unique within a route configuration; and the security
 * configuration (`validate-security.ts`): AuthorizationPolicy values (CIDRs, ports, `when` keys, no
 * empty strings), CUSTOM policies naming a known extension provider whose cluster exists, JWT rules
 * with a JWKS document.
 */
export function validate(ir: ProxyIR): string[] {
  const errors: string[] = [];
  const clusters = new Map<string, ClusterIR>();
  for (const c of ir.clusters) {
    if (!c.name) errors.push('a cluster has an empty name');
    if (clusters.has(c.name)) errors.push(`duplicate cluster ${c.name}`);
    clusters.set(c.name, c);
    if (!validPort(c.port)) errors.push(`cluster ${c.name}: invalid port ${c.port}`);
    if (c.direction === 'inbound' || c.direction === 'external') checkEndpoint(c.endpoint, `cluster ${c.name} endpoint`, errors);
    else if (!c.tls.sni) errors.push(`cluster ${c.name}: empty SNI`);
  }

  const listeners: Array<{ kind: string; name: string; address: string; port: number }> = [
    ...ir.inbound.map((l) => ({ kind: 'inbound', name: l.name, address: l.address, port: l.port })),
    ...ir.outbound.map((l) => ({ kind: 'outbound', name: l.name, address: l.address, port: l.port })),
  ];
  const names = new Set<string>();
  for (const l of listeners) {
    if (!l.name) errors.push(`an ${l.kind} listener has an empty name`);
    if (names.has(l.name)) errors.push(`duplicate listener name ${l.name}`);
    names.add(l.name);
    if (isIP(l.address) === 0) errors.push(`${l.kind} listener ${l.name}: address ${JSON.stringify(l.address)} is not an IP address`);
    if (!validPort(l.port)) errors.push(`${l.kind} listener ${l.name}: invalid port ${l.port}`);
  }
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const a = listeners[i]!;
      const b = listeners[j]!;
      if (a.port === b.port && addressesOverlap(a.address, b.address)) {
        errors.push(`listeners ${a.name} and ${b.name} both bind ${b.address}:${b.port}`);
      }
    }
  }

  for (const l of ir.inbound) {
    const c = clusters.get(l.cluster);
    if (!c) errors.push(`inbound listener ${l.name} names missing cluster ${l.cluster}`);
    else if (c.direction !== 'inbound') errors.push(`inbound listener ${l.name} names ${c.direction} cluster ${l.cluster}`);
  }

  const appEndpoints = ir.clusters.flatMap((c) => (c.direction === 'inbound' && 'ip' in c.endpoint ? [c.endpoint] : []));
  for (const l of listeners) {
    for (const ep of appEndpoints) {
      if (ep.port === l.port && addressesOverlap(ep.ip, l.address)) {
        errors.push(`${l.kind} listener ${l.name} binds ${l.address}:${l.port}, the local application's endpoint ${ep.ip}:${ep.port}`);
      }
    }
  }
  const routeNames = new Set<string>();
  for (const l of ir.outbound) {
    if (l.protocol === 'TCP') {
      if (l.routeConfig) errors.push(`TCP listener ${l.name} has a route configuration`);
      if (!l.tcpCluster) errors.push(`TCP listener ${l.name} has no cluster`);
      else checkOutboundRef(l.tcpCluster, `outbound listener ${l.name}`, clusters, errors);
      continue;
    }
    if (l.tcpCluster) errors.push(`HTTP listener ${l.name} has a TCP cluster`);
    const rc = l.routeConfig;
    if (!rc) {
      errors.push(`HTTP listener ${l.name} has no route configuration`);
      continue;
    }
    if (!rc.name) errors.push(`HTTP listener ${l.name}: empty route configuration name`);
    if (routeNames.has(rc.name)) errors.push(`duplicate route configuration ${rc.name}`);
    routeNames.add(rc.name);
    const domains = new Set<string>();
    const vhostNames = new Set<string>();
    for (const vh of rc.virtualHosts) {
      if (vhostNames.has(vh.name)) errors.push(`route configuration ${rc.name}: duplicate virtual host ${vh.name}`);
      vhostNames.add(vh.name);
      if (vh.domains.length === 0) errors.push(`route configuration ${rc.name}: virtual host ${vh.name} has no domains`);
      for (const d of vh.domains) {
        const key = d.toLowerCase();
        if (domains.has(key)) errors.push(`route configuration ${rc.name}: domain ${d} appears twice`);
        domains.add(key);
      }
      checkOutboundRef(vh.cluster, `route configuration ${rc.name} virtual host ${vh.name}`, clusters, errors);
    }
  }

  const assigned = new Map<string, number>();
  for (const la of ir.loadAssignments) {
    assigned.set(la.clusterName, (assigned.get(la.clusterName) ?? 0) + 1);
    const c = clusters.get(la.clusterName);
    if (!c) errors.push(`load assignment for unknown cluster ${la.clusterName}`);
    else if (c.direction !== 'outbound') errors.push(`load assignment for ${c.direction} cluster ${la.clusterName}`);
    for (const ep of la.endpoints) {
      if (isIP(ep.ip) === 0) errors.push(`load assignment ${la.clusterName}: endpoint address ${JSON.stringify(ep.ip)} is not an IP address`);
      if (!validPort(ep.port)) errors.push(`load assignment ${la.clusterName}: endpoint ${ep.ip} has invalid port ${ep.port}`);
      if (ep.weight !== undefined && (!Number.isInteger(ep.weight) || ep.weight < 1)) {
        errors.push(`load assignment ${la.clusterName}: endpoint ${ep.ip}:${ep.port} has invalid weight ${ep.weight}`);
      }
    }
  }
  for (const c of ir.clusters) {
    if (c.direction !== 'outbound') continue;
    const n = assigned.get(c.name) ?? 0;
    if (n !== 1) errors.push(`outbound cluster ${c.name} has ${n} load assignments (expected 1)`);
  }
  errors.push(...validateSecurity(ir, clusters));
  return errors;
}

function checkOutboundRef(name: string, where: string, clusters: ReadonlyMap<string, ClusterIR>, errors: string[]): void {
  const c = clusters.get(name);
  if (!c) errors.push(`${where} names missing cluster ${name}`);
  else if (c.direction !== 'outbound') errors.push(`${where} names ${c.direction} cluster ${name}`);
}

function checkEndpoint(ep: EndpointAddress, where: string, errors: string[]): void {
  if ('pipe' in ep) {
    if (!ep.pipe.startsWith('/') && !ep.pipe.startsWith('@')) errors.push(`${where}: Unix socket path ${JSON.stringify(ep.pipe)} is not absolute`);
    return;
  }
  if (isIP(ep.ip) === 0) errors.push(`${where}: ${JSON.stringify(ep.ip)} is not an IP address`);
  if (!validPort(ep.port)) errors.push(`${where}: invalid port ${ep.port}`);
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}

/**
 * Whether two listeners on one port would collide at bind time: equal addresses, or a wildcard
 * address of the same family as the other.
 */
export function addressesOverlap(a: string, b: string): boolean {
  if (a === b) return true;
  const fa = isIP(a);
  const fb = isIP(b);
  if (fa !== fb) return false; // Envoy binds `::` IPv6-only unless ipv4_compat is set (we never set it)
  return a === '0.0.0.0' || b === '0.0.0.0' || a === '::' || b === '::';
}
