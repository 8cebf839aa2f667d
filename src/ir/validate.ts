/**
 * Self-checks of a {@link ProxyIR}: things that would make a data plane reject the configuration
 * (Envoy NACKs duplicate listener addresses, duplicate domains in a route configuration, ...) or
 * silently drop traffic (a route naming a missing cluster, an EDS cluster without endpoints data).
 */
import { isIP } from 'node:net';
import { RE2JS } from 're2js';
import type { ClusterIR, EndpointAddress, LoadAssignmentIR, ProxyIR, RouteIR, StringMatchIR } from './types.js';
import { validateSecurity } from './validate-security.js';

/**
 * Returns every problem found in `ir`, one sentence each; an empty array means the IR is
 * consistent. Checks: names and ports well-formed; listener names unique; no two listeners
 * binding overlapping `address:port` (a wildcard address `0.0.0.0`/`::` overlaps every address of
 * its family); no listener on a local application endpoint (a loop, or a bind conflict); cluster names unique; every
 * cluster a listener or route names exists with the right direction; every outbound cluster has
 * exactly one load assignment and no load assignment names an unknown cluster; route
 * configuration names unique; domains unique within a route configuration; and the security
 * routes of virtual hosts and TCP weighted clusters (`validateRoutes`), and the security
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
      if (l.tcpWeightedClusters) {
        for (const c of l.tcpWeightedClusters) {
          checkOutboundRef(c.cluster, `outbound listener ${l.name} weighted cluster`, clusters, errors);
          if (!Number.isInteger(c.weight) || c.weight < 0) errors.push(`outbound listener ${l.name}: weight ${c.weight} of ${c.cluster} is not an integer ≥ 0`);
        }
        if (l.tcpWeightedClusters.reduce((n, c) => n + c.weight, 0) <= 0) errors.push(`outbound listener ${l.name}: weighted clusters sum to 0`);
      }
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
      if (vh.routes) validateRoutes(vh.routes, `route configuration ${rc.name} virtual host ${vh.name}`, clusters, errors);
    }
  }

  const assigned = new Map<string, number>();
  for (const la of ir.loadAssignments) {
    assigned.set(la.clusterName, (assigned.get(la.clusterName) ?? 0) + 1);
    const c = clusters.get(la.clusterName);
    if (!c) errors.push(`load assignment for unknown cluster ${la.clusterName}`);
    else if (c.direction !== 'outbound') errors.push(`load assignment for ${c.direction} cluster ${la.clusterName}`);
    errors.push(...endpointErrors(la));
  }
  for (const c of ir.clusters) {
    if (c.direction !== 'outbound') continue;
    const n = assigned.get(c.name) ?? 0;
    if (n !== 1) errors.push(`outbound cluster ${c.name} has ${n} load assignments (expected 1)`);
  }
  errors.push(...validateSecurity(ir, clusters));
  errors.push(...validateClusterTraffic(ir));
  return errors;
}

/** {@link endpointErrors} by load assignment: a load assignment shared between proxies is checked once. */
const ENDPOINT_ERRORS = new WeakMap<LoadAssignmentIR, readonly string[]>();

/** Problems of a load assignment's endpoints (addresses, ports, weights). */
function endpointErrors(la: LoadAssignmentIR): readonly string[] {
  const have = ENDPOINT_ERRORS.get(la);
  if (have) return have;
  const errors: string[] = [];
  for (const ep of la.endpoints) {
    if (isIP(ep.ip) === 0) errors.push(`load assignment ${la.clusterName}: endpoint address ${JSON.stringify(ep.ip)} is not an IP address`);
    if (!validPort(ep.port)) errors.push(`load assignment ${la.clusterName}: endpoint ${ep.ip} has invalid port ${ep.port}`);
    if (ep.weight !== undefined && (!Number.isInteger(ep.weight) || ep.weight < 1)) {
      errors.push(`load assignment ${la.clusterName}: endpoint ${ep.ip}:${ep.port} has invalid weight ${ep.weight}`);
    }
  }
  ENDPOINT_ERRORS.set(la, errors);
  return errors;
}

/**
 * Checks of the DestinationRule-derived fields (things Envoy would refuse or silently misread):
 * upstream TLS files present for SIMPLE/MUTUAL; one load balancer kind; a prime Maglev table size
 * (Envoy requires one); positive limits and durations; percentages within 0-100; endpoint
 * priorities that are integers from 0 without gaps (Envoy's rule for `LocalityLbEndpoints.priority`);
 * positive integer locality weights, present whenever the cluster turns on locality-weighted load
 * balancing (Envoy gives a locality without a weight no traffic).
 */
export function validateClusterTraffic(ir: ProxyIR): string[] {
  const errors: string[] = [];
  const weighted = new Set<string>();
  const positive = (v: number | undefined): boolean => v === undefined || (Number.isInteger(v) && v > 0);
  for (const c of ir.clusters) {
    if (c.direction !== 'outbound') continue;
    const where = `cluster ${c.name}`;
    const tls = c.clientTls;
    if (tls) {
      if (tls.mode === 'MUTUAL' && (!tls.clientCertificate || !tls.privateKey)) errors.push(`${where}: tls MUTUAL needs clientCertificate and privateKey files`);
      for (const [field, value] of [['caCertificates', tls.caCertificates], ['clientCertificate', tls.clientCertificate], ['privateKey', tls.privateKey]] as const) {
        if (value !== undefined && value.trim() === '') errors.push(`${where}: tls ${field} is an empty file path`);
      }
      if (tls.subjectAltNames.some((s) => s === '')) errors.push(`${where}: tls subjectAltNames has an empty entry`);
    }
    const p = c.trafficPolicy;
    if (!p) continue;
    if (p.simpleLb && p.consistentHash) errors.push(`${where}: both simple load balancing ${p.simpleLb} and a consistent hash`);
    const ch = p.consistentHash;
    if (ch) {
      if (!positive(ch.minimumRingSize)) errors.push(`${where}: ${ch.maglev ? 'Maglev table size' : 'minimum ring size'} ${ch.minimumRingSize} is not a positive integer`);
      else if (ch.maglev && ch.minimumRingSize !== undefined && !isPrime(ch.minimumRingSize)) errors.push(`${where}: Maglev table size ${ch.minimumRingSize} is not a prime number (Envoy requires one)`);
      const k = ch.key;
      const name = 'header' in k ? k.header : 'cookie' in k ? k.cookie.name : 'queryParameter' in k ? k.queryParameter : 'source-ip';
      if (name === '') errors.push(`${where}: consistent hash key has an empty name`);
    }
    const cp = p.connectionPool;
    if (cp) {
      for (const [field, v] of Object.entries(cp)) {
        if (typeof v === 'number' && !(Number.isInteger(v) && v > 0)) errors.push(`${where}: connectionPool ${field} ${v} is not a positive integer`);
      }
      const ka = cp.tcpKeepalive;
      if (ka && (!positive(ka.probes) || !positive(ka.timeSeconds) || !positive(ka.intervalSeconds))) errors.push(`${where}: tcpKeepalive values must be positive integers`);
    }
    const od = p.outlierDetection;
    if (od) {
      if (!(od.intervalMs > 0) || !(od.baseEjectionTimeMs > 0)) errors.push(`${where}: outlierDetection interval and baseEjectionTime must be positive`);
      for (const [field, v] of [['maxEjectionPercent', od.maxEjectionPercent], ['minHealthPercent', od.minHealthPercent]] as const) {
        if (!(v >= 0 && v <= 100)) errors.push(`${where}: outlierDetection ${field} ${v} is not within 0-100`);
      }
      for (const [field, v] of [['consecutive5xxErrors', od.consecutive5xxErrors], ['consecutiveGatewayErrors', od.consecutiveGatewayErrors], ['consecutiveLocalOriginFailures', od.consecutiveLocalOriginFailures]] as const) {
        if (v !== undefined && !(Number.isInteger(v) && v >= 0)) errors.push(`${where}: outlierDetection ${field} ${v} is not a non-negative integer`);
      }
    }
    if (p.locality?.weighted) weighted.add(c.name);
  }
  for (const la of ir.loadAssignments) {
    const priorities = new Set<number>();
    for (const ep of la.endpoints) {
      const pr = ep.priority ?? 0;
      if (!Number.isInteger(pr) || pr < 0) errors.push(`load assignment ${la.clusterName}: endpoint ${ep.ip}:${ep.port} has invalid priority ${pr}`);
      else priorities.add(pr);
    }
    const max = Math.max(-1, ...priorities);
    for (let i = 0; i <= max; i++) {
      if (!priorities.has(i)) {
        errors.push(`load assignment ${la.clusterName}: priorities skip ${i} (Envoy needs 0..N without gaps)`);
        break;
      }
    }
    for (const [key, w] of Object.entries(la.localityWeights ?? {})) {
      if (!(Number.isInteger(w) && w > 0)) errors.push(`load assignment ${la.clusterName}: locality ${key} has invalid weight ${w}`);
    }
    if (weighted.has(la.clusterName) && la.localityWeights === undefined) {
      errors.push(`load assignment ${la.clusterName}: the cluster uses locality-weighted load balancing but has no locality weights (its localities would get no traffic)`);
    }
  }
  return errors;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

/**
 * Route checks (src/ir/traffic.ts): names unique within the virtual host; forward actions name
 * existing outbound clusters with integer weights ≥ 0 summing to more than 0; mirrors name
 * existing outbound clusters; percentages within 0-100; HTTP statuses 200-599 (redirects 301, 302,
 * 303, 307, 308); delays ≥ 1 ms; timeouts and retry counts integers ≥ 0; every regex compiles
 * under RE2 (Envoy's `safe_regex`).
 */
function validateRoutes(routes: readonly RouteIR[], where: string, clusters: ReadonlyMap<string, ClusterIR>, errors: string[]): void {
  const names = new Set<string>();
  const pct = (p: number, what: string, at: string): void => {
    if (!Number.isFinite(p) || p < 0 || p > 100) errors.push(`${at}: ${what} ${p} is not a percentage (0-100)`);
  };
  const regex = (m: StringMatchIR | undefined, what: string, at: string): void => {
    if (m && 'regex' in m) checkRegex(m.regex, what, at, errors);
  };
  for (const r of routes) {
    const at = `${where} route ${r.name}`;
    if (!r.name) errors.push(`${where}: a route has an empty name`);
    if (names.has(r.name)) errors.push(`${where}: duplicate route name ${r.name}`);
    names.add(r.name);
    regex(r.match.path, 'path', at);
    for (const h of r.match.headers) {
      if (!h.name) errors.push(`${at}: a header match has an empty name`);
      regex(h.match, `header ${h.name}`, at);
    }
    for (const q of r.match.queryParams) regex(q.match, `query parameter ${q.name}`, at);
    const a = r.action;
    if (a.kind === 'forward') {
      if (a.clusters.length === 0) errors.push(`${at}: forwards to no cluster`);
      for (const c of a.clusters) {
        checkOutboundRef(c.cluster, at, clusters, errors);
        if (!Number.isInteger(c.weight) || c.weight < 0) errors.push(`${at}: weight ${c.weight} of ${c.cluster} is not an integer ≥ 0`);
      }
      if (a.clusters.length > 0 && a.clusters.reduce((n, c) => n + c.weight, 0) <= 0) errors.push(`${at}: cluster weights sum to 0`);
    } else if (a.kind === 'redirect') {
      if (![301, 302, 303, 307, 308].includes(a.status)) errors.push(`${at}: redirect status ${a.status} is not 301, 302, 303, 307 or 308`);
      if (a.port !== undefined && !validPort(a.port)) errors.push(`${at}: redirect port ${a.port} is invalid`);
    } else if (!Number.isInteger(a.status) || a.status < 200 || a.status > 599) {
      errors.push(`${at}: direct response status ${a.status} is not 200-599`);
    }
    if (r.rewrite?.regex) checkRegex(r.rewrite.regex.pattern, 'rewrite regex', at, errors);
    if (r.timeoutMs !== undefined && (!Number.isInteger(r.timeoutMs) || r.timeoutMs < 0)) errors.push(`${at}: timeout ${r.timeoutMs} ms is not an integer ≥ 0`);
    if (r.retries) {
      if (!Number.isInteger(r.retries.attempts) || r.retries.attempts < 0) errors.push(`${at}: retry attempts ${r.retries.attempts} is not an integer ≥ 0`);
      if (r.retries.perTryTimeoutMs !== undefined && (!Number.isInteger(r.retries.perTryTimeoutMs) || r.retries.perTryTimeoutMs < 1)) errors.push(`${at}: per-try timeout ${r.retries.perTryTimeoutMs} ms is not an integer ≥ 1`);
      if (r.retries.attempts > 0 && !r.retries.retryOn) errors.push(`${at}: retries without retryOn conditions`);
      for (const code of r.retries.retriableStatusCodes) if (!Number.isInteger(code) || code < 100 || code > 599) errors.push(`${at}: retriable status ${code} is not an HTTP status`);
    }
    if (r.fault?.delay) {
      if (!Number.isInteger(r.fault.delay.fixedDelayMs) || r.fault.delay.fixedDelayMs < 1) errors.push(`${at}: fault delay ${r.fault.delay.fixedDelayMs} ms is not an integer ≥ 1`);
      pct(r.fault.delay.percent, 'fault delay percentage', at);
    }
    if (r.fault?.abort) {
      const { httpStatus, grpcStatus } = r.fault.abort;
      if (httpStatus === undefined && grpcStatus === undefined) errors.push(`${at}: fault abort without a status`);
      if (httpStatus !== undefined && (!Number.isInteger(httpStatus) || httpStatus < 200 || httpStatus > 599)) errors.push(`${at}: fault abort status ${httpStatus} is not 200-599`);
      if (grpcStatus !== undefined && (!Number.isInteger(grpcStatus) || grpcStatus < 0 || grpcStatus > 16)) errors.push(`${at}: fault abort gRPC status ${grpcStatus} is not 0-16`);
      pct(r.fault.abort.percent, 'fault abort percentage', at);
    }
    for (const m of r.mirrors) {
      checkOutboundRef(m.cluster, `${at} mirror`, clusters, errors);
      pct(m.percent, 'mirror percentage', at);
    }
    for (const o of r.cors?.allowOrigins ?? []) regex(o, 'CORS origin', at);
  }
}

function checkRegex(pattern: string, what: string, at: string, errors: string[]): void {
  try {
    RE2JS.compile(pattern);
  } catch (e) {
    errors.push(`${at}: ${what} regex ${JSON.stringify(pattern)} is not valid RE2: ${e instanceof Error ? e.message : String(e)}`);
  }
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
