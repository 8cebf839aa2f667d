/**
 * DestinationRule in the push context: which rule applies to a service host for a proxy, and the
 * cluster settings it gives one service port (and subset), as the IR's {@link ClusterTrafficPolicyIR},
 * {@link ClientTlsIR} and ISTIO_MUTUAL overrides.
 *
 * Follows Istio's DestinationRule reference
 * (https://istio.io/latest/docs/reference/config/networking/destination-rule/) and Istio's
 * behaviour in pilot (`PushContext.destinationRule`, `MergeTrafficPolicy`, `applyOutlierDetection`,
 * `applyConnectionPool`, `ApplyRingHashLoadBalancer`):
 *
 * - Lookup: the rules in the proxy's namespace first (any `exportTo` that keeps them visible there:
 *   unset, `*`, `.` or the namespace), then the rules of the service's namespace exported to the
 *   proxy's namespace, then those of the root namespace (`skiff-system`). In each namespace the most
 *   specific host wins: the exact host, else the longest matching wildcard (`*.example.com`, `*`).
 *   Several rules for one host in one namespace are merged as Istio merges them: the oldest is the
 *   base, later ones add subsets with new names and give a `trafficPolicy` only when the base has
 *   none. A rule with a `workloadSelector` applies only to the workloads it selects in its own
 *   namespace, and one that selects the proxy wins over those without a selector.
 * - Merge for one port and subset: the top-level `trafficPolicy`, replaced wholesale by its
 *   `portLevelSettings` entry for the port (Istio: "port level policies do not inherit": the
 *   entry's `loadBalancer`, `connectionPool`, `outlierDetection` and `tls` replace the top-level
 *   ones, unset ones included); then each of those four fields the subset's `trafficPolicy` sets
 *   replaces the merged one; then the subset's own `portLevelSettings` entry replaces all four.
 */
import type { DestinationRule, LocalityLbSetting, Subset, TrafficPolicy, ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection } from '../../resources/traffic-types.js';
import { resourceKey } from '../../resources/types.js';
import type { MeshSnapshot } from '../../registry/types.js';
import type { ClientTlsIR, ClusterTrafficPolicyIR, ConnectionPoolIR, ConsistentHashIR, OutlierDetectionIR, SimpleLbIR } from '../../ir/types.js';
import { parseDurationMs } from '../ext-authz.js';
import { oldestFirst, selectorMatches } from '../selectors.js';

/** Istio's default outlier detection `interval` (10 s). */
export const DEFAULT_OUTLIER_INTERVAL_MS = 10_000;
/** Istio's default outlier detection `baseEjectionTime` (30 s). */
export const DEFAULT_BASE_EJECTION_TIME_MS = 30_000;
/** Istio's default `maxEjectionPercent` (10 %). */
export const DEFAULT_MAX_EJECTION_PERCENT = 10;
/** Istio's default `minHealthPercent` (0 %: Envoy's panic threshold disabled). */
export const DEFAULT_MIN_HEALTH_PERCENT = 0;
/** Istio's (and Envoy's) default ring hash `minimumRingSize`. */
export const DEFAULT_MINIMUM_RING_SIZE = 1024;

/** The DestinationRule that applies to one service host for one proxy (several merged when Istio merges them). */
export interface AppliedDestinationRule {
  /** The rule (the oldest when several were merged). */
  rule: DestinationRule;
  /** `DestinationRule/<ns>/<name>` (joined with ` + ` when merged). */
  source: string;
  trafficPolicy?: TrafficPolicy;
  /** Subsets by name (the first definition of a name wins). */
  subsets: Subset[];
}

/** Who is asking: the proxy's namespace and workload labels. */
export interface DestinationRuleClient {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

/** Finds the DestinationRule for `host` (a service defined in `serviceNamespace`); memoised per host and namespace. */
export type DestinationRuleLookup = (host: string, serviceNamespace: string) => AppliedDestinationRule | undefined;

/**
 * Builds the DestinationRule lookup of one proxy over `snapshot.destinationRulesByHost` (hosts
 * already resolved from short names, lists oldest first). Merge conflicts are reported via `warn`.
 */
export function destinationRuleLookup(snapshot: MeshSnapshot, client: DestinationRuleClient, rootNamespace: string, warn: (msg: string) => void): DestinationRuleLookup {
  const memo = new Map<string, AppliedDestinationRule | undefined>();
  const byHost = snapshot.destinationRulesByHost ?? new Map<string, readonly DestinationRule[]>();
  return (host, serviceNamespace) => {
    const key = `${host.toLowerCase()}|${serviceNamespace}`;
    if (memo.has(key)) return memo.get(key);
    const found = findDestinationRule(byHost, host, serviceNamespace, client, rootNamespace, warn);
    memo.set(key, found);
    return found;
  };
}

/**
 * Istio's lookup order (see the module comment) over `byHost`; undefined when no rule applies.
 * Exported for tests.
 */
export function findDestinationRule(
  byHost: ReadonlyMap<string, readonly DestinationRule[]>,
  host: string,
  serviceNamespace: string,
  client: DestinationRuleClient,
  rootNamespace: string,
  warn: (msg: string) => void,
): AppliedDestinationRule | undefined {
  const namespaces = [client.namespace];
  if (!namespaces.includes(serviceNamespace)) namespaces.push(serviceNamespace);
  if (!namespaces.includes(rootNamespace)) namespaces.push(rootNamespace);
  for (const ns of namespaces) {
    const local = ns === client.namespace;
    const visible = (dr: DestinationRule): boolean => dr.metadata.namespace === ns && (local ? visibleLocally(dr) : exportedTo(dr, client.namespace));
    const candidates = new Map<string, DestinationRule[]>();
    for (const [h, rules] of byHost) {
      if (!hostMatches(h, host)) continue;
      const list = rules.filter(visible);
      if (list.length > 0) candidates.set(h, list);
    }
    const chosenHost = mostSpecificHost([...candidates.keys()], host);
    if (chosenHost === undefined) continue;
    const rules = [...(candidates.get(chosenHost) ?? [])].sort(oldestFirst);
    const withSelector = rules.filter((r) => r.spec.workloadSelector !== undefined);
    const plain = rules.filter((r) => r.spec.workloadSelector === undefined);
    const selecting = local ? withSelector.filter((r) => selectorMatches(selectorLabels(r), client.labels)) : [];
    if (selecting.length > 0) return mergeRules(selecting.slice(0, 1), warn);
    if (plain.length > 0) return mergeRules(plain, warn);
  }
  return undefined;
}

/**
 * The labels of a rule's `workloadSelector`: Istio's field is `matchLabels`
 * (istio.type.v1beta1.WorkloadSelector); `labels` is read too.
 */
function selectorLabels(dr: DestinationRule): Record<string, string> {
  const sel: { labels?: Record<string, string>; matchLabels?: Record<string, string> } | undefined = dr.spec.workloadSelector;
  return sel?.matchLabels ?? sel?.labels ?? {};
}

/** Istio's namespace-local index: unset `exportTo`, `*`, `.` or the rule's own namespace. */
function visibleLocally(dr: DestinationRule): boolean {
  const to = dr.spec.exportTo;
  if (!to || to.length === 0) return true;
  return to.some((t) => t === '*' || t === '.' || t === dr.metadata.namespace);
}

/** Istio's exported index seen from `ns`: unset `exportTo`, `*`, or `ns` named. */
function exportedTo(dr: DestinationRule, ns: string): boolean {
  const to = dr.spec.exportTo;
  if (!to || to.length === 0) return true;
  return to.some((t) => t === '*' || t === ns);
}

/** Whether rule host `pattern` (exact, `*.suffix` or `*`) covers service host `host` (case-insensitive). */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (p === h || p === '*') return true;
  if (p.startsWith('*.')) return h.endsWith(p.slice(1));
  if (p.startsWith('*') && h.startsWith('*')) return h.endsWith(p.slice(1));
  return false;
}

/** Istio's `MostSpecificHostMatch`: the exact host, else the longest wildcard. */
function mostSpecificHost(patterns: readonly string[], host: string): string | undefined {
  const exact = patterns.find((p) => p.toLowerCase() === host.toLowerCase());
  if (exact !== undefined) return exact;
  return [...patterns].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0))[0];
}

/** Istio's `mergeDestinationRule`: the oldest rule is the base; later ones add subsets and a missing trafficPolicy. */
function mergeRules(rules: readonly DestinationRule[], warn: (msg: string) => void): AppliedDestinationRule {
  const base = rules[0]!;
  const out: AppliedDestinationRule = { rule: base, source: resourceKey(base), subsets: [...(base.spec.subsets ?? [])] };
  if (base.spec.trafficPolicy) out.trafficPolicy = base.spec.trafficPolicy;
  for (const other of rules.slice(1)) {
    out.source += ` + ${resourceKey(other)}`;
    for (const s of other.spec.subsets ?? []) {
      if (out.subsets.some((x) => x.name === s.name)) {
        warn(`${resourceKey(other)}: subset ${s.name} of host ${base.spec.host} is already defined by an older DestinationRule: ignored`);
        continue;
      }
      out.subsets.push(s);
    }
    if (other.spec.trafficPolicy) {
      if (out.trafficPolicy) warn(`${resourceKey(other)}: host ${base.spec.host} already has a trafficPolicy from ${resourceKey(base)}: its trafficPolicy is ignored (as Istio)`);
      else out.trafficPolicy = other.spec.trafficPolicy;
    }
  }
  return out;
}

/** The four TrafficPolicy fields Istio merges. */
export interface MergedTrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTlsSettings;
}

function portLevel(policy: TrafficPolicy, port: number): MergedTrafficPolicy | undefined {
  const p = (policy.portLevelSettings ?? []).find((x) => x.port?.number === port);
  if (!p) return undefined;
  const out: MergedTrafficPolicy = {};
  if (p.loadBalancer) out.loadBalancer = p.loadBalancer;
  if (p.connectionPool) out.connectionPool = p.connectionPool;
  if (p.outlierDetection) out.outlierDetection = p.outlierDetection;
  if (p.tls) out.tls = p.tls;
  return out;
}

function topLevel(policy: TrafficPolicy): MergedTrafficPolicy {
  const out: MergedTrafficPolicy = {};
  if (policy.loadBalancer) out.loadBalancer = policy.loadBalancer;
  if (policy.connectionPool) out.connectionPool = policy.connectionPool;
  if (policy.outlierDetection) out.outlierDetection = policy.outlierDetection;
  if (policy.tls) out.tls = policy.tls;
  return out;
}

/**
 * Istio's `MergeTrafficPolicy` for `port`: `original` with its port-level entry, then the fields
 * `subset` sets, then the subset's port-level entry (see the module comment).
 */
export function mergeTrafficPolicy(original: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): MergedTrafficPolicy {
  let merged: MergedTrafficPolicy = original ? (portLevel(original, port) ?? topLevel(original)) : {};
  if (subset) {
    merged = { ...merged, ...topLevel(subset) };
    const p = portLevel(subset, port);
    if (p) merged = p;
  }
  return merged;
}

/** What a DestinationRule gives one outbound cluster. */
export interface ClusterSettings {
  /** Unset when the rule sets none of loadBalancer, connectionPool, outlierDetection for this cluster. */
  policy?: ClusterTrafficPolicyIR;
  /** DISABLE / SIMPLE / MUTUAL. */
  clientTls?: ClientTlsIR;
  /** ISTIO_MUTUAL with an explicit `sni` / `subjectAltNames`. */
  istioMutual?: { sni?: string; subjectAltNames?: string[] };
  /** The locality setting of the merged `loadBalancer` (before the mesh default is applied). */
  localityLbSetting?: LocalityLbSetting;
  /** The subset's labels (endpoints must carry all of them); unset for the whole service. */
  subsetLabels?: Readonly<Record<string, string>>;
  /** The subset was asked for but the rule has no subset of that name. */
  unknownSubset?: boolean;
}

/**
 * The settings `dr` gives port `port` (and `subset`, when not empty) of its host: merged as Istio
 * merges them and converted to the IR (durations in ms, Istio's defaults filled in for outlier
 * detection). `where` prefixes warnings (dropped or unsupported fields).
 */
export function clusterSettings(dr: AppliedDestinationRule, port: number, subset: string, warn: (msg: string) => void): ClusterSettings {
  const out: ClusterSettings = {};
  let subsetDef: Subset | undefined;
  if (subset) {
    subsetDef = dr.subsets.find((s) => s.name === subset);
    if (!subsetDef) {
      out.unknownSubset = true;
      return out;
    }
    out.subsetLabels = subsetDef.labels ?? {};
  }
  const merged = mergeTrafficPolicy(dr.trafficPolicy, subsetDef?.trafficPolicy, port);
  const where = `${dr.source}${subsetDef ? ` subset ${subset}` : ''} port ${port}`;
  const source = `${dr.source}${subsetDef?.trafficPolicy ? ` subsets[${subset}]` : ''}`;
  const policy: ClusterTrafficPolicyIR = { source };
  let any = false;
  const lb = merged.loadBalancer;
  if (lb) {
    const simple = simpleLb(lb.simple);
    if (lb.consistentHash) {
      const ch = consistentHash(lb.consistentHash, where, warn);
      if (ch) {
        policy.consistentHash = ch;
        any = true;
      }
      if (simple) warn(`${where}: loadBalancer sets both simple and consistentHash: consistentHash is used`);
    } else if (simple) {
      policy.simpleLb = simple;
      any = true;
    }
    if (lb.localityLbSetting) out.localityLbSetting = lb.localityLbSetting;
    if (lb.warmupDurationSecs !== undefined) warn(`${where}: loadBalancer.warmupDurationSecs is not implemented: ignored`);
  }
  if (merged.connectionPool) {
    const cp = connectionPool(merged.connectionPool, where, warn);
    if (cp) {
      policy.connectionPool = cp;
      any = true;
    }
  }
  if (merged.outlierDetection) {
    policy.outlierDetection = outlierDetection(merged.outlierDetection, where, warn);
    any = true;
  }
  if (any) out.policy = policy;
  if (merged.tls) {
    const tls = merged.tls;
    if (tls.credentialName) warn(`${where}: tls.credentialName names a Kubernetes secret, which VMs do not have: use caCertificates / clientCertificate / privateKey file paths`);
    if (tls.caCrl) warn(`${where}: tls.caCrl is not implemented: ignored`);
    const mode = tls.mode ?? 'DISABLE';
    if (mode === 'ISTIO_MUTUAL') {
      const over: { sni?: string; subjectAltNames?: string[] } = {};
      if (tls.sni) over.sni = tls.sni;
      if (tls.subjectAltNames && tls.subjectAltNames.length > 0) over.subjectAltNames = [...new Set(tls.subjectAltNames)].sort();
      if (Object.keys(over).length > 0) out.istioMutual = over;
    } else {
      const c: ClientTlsIR = { mode, subjectAltNames: [...(tls.subjectAltNames ?? [])] };
      if (mode !== 'DISABLE') {
        if (tls.sni) c.sni = tls.sni;
        if (tls.caCertificates) c.caCertificates = tls.caCertificates;
        if (tls.insecureSkipVerify) c.insecureSkipVerify = true;
      }
      if (mode === 'MUTUAL') {
        if (tls.clientCertificate) c.clientCertificate = tls.clientCertificate;
        if (tls.privateKey) c.privateKey = tls.privateKey;
        if (!tls.clientCertificate || !tls.privateKey) {
          warn(`${where}: tls mode MUTUAL needs clientCertificate and privateKey: using SIMPLE TLS (no client certificate)`);
          c.mode = 'SIMPLE';
          delete c.clientCertificate;
          delete c.privateKey;
        }
      }
      out.clientTls = c;
    }
  }
  return out;
}

function simpleLb(s: LoadBalancerSettings['simple']): SimpleLbIR | undefined {
  switch (s) {
    case 'LEAST_CONN': // Istio's deprecated alias of LEAST_REQUEST
    case 'LEAST_REQUEST':
      return 'LEAST_REQUEST';
    case 'RANDOM':
    case 'ROUND_ROBIN':
    case 'PASSTHROUGH':
      return s;
    default:
      return undefined;
  }
}

function ms(value: string | undefined, field: string, where: string, warn: (msg: string) => void): number | undefined {
  if (value === undefined) return undefined;
  const v = parseDurationMs(value);
  if (v === undefined) {
    warn(`${where}: ${field} ${JSON.stringify(value)} is not a duration: ignored`);
    return undefined;
  }
  return Math.round(v);
}

function consistentHash(ch: NonNullable<LoadBalancerSettings['consistentHash']>, where: string, warn: (msg: string) => void): ConsistentHashIR | undefined {
  let key: ConsistentHashIR['key'] | undefined;
  if (ch.httpHeaderName) key = { header: ch.httpHeaderName };
  else if (ch.httpCookie) {
    const cookie: { name: string; path?: string; ttlMs?: number } = { name: ch.httpCookie.name };
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    const ttl = ms(ch.httpCookie.ttl, 'httpCookie.ttl', where, warn);
    if (ttl !== undefined) cookie.ttlMs = ttl;
    key = { cookie };
  } else if (ch.useSourceIp) key = { sourceIp: true };
  else if (ch.httpQueryParameterName) key = { queryParameter: ch.httpQueryParameterName };
  if (!key) {
    warn(`${where}: consistentHash names no hash key (httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName): ignored`);
    return undefined;
  }
  const out: ConsistentHashIR = { key };
  if (ch.maglev) {
    out.maglev = true;
    if (ch.maglev.tableSize) out.minimumRingSize = ch.maglev.tableSize;
  } else {
    out.minimumRingSize = ch.ringHash?.minimumRingSize || ch.minimumRingSize || DEFAULT_MINIMUM_RING_SIZE;
  }
  return out;
}

function connectionPool(cp: ConnectionPoolSettings, where: string, warn: (msg: string) => void): ConnectionPoolIR | undefined {
  const out: ConnectionPoolIR = {};
  const tcp = cp.tcp;
  if (tcp) {
    if (tcp.maxConnections && tcp.maxConnections > 0) out.maxConnections = tcp.maxConnections;
    const ct = ms(tcp.connectTimeout, 'tcp.connectTimeout', where, warn);
    if (ct !== undefined) out.connectTimeoutMs = ct;
    if (tcp.tcpKeepalive) {
      const ka: NonNullable<ConnectionPoolIR['tcpKeepalive']> = {};
      if (tcp.tcpKeepalive.probes) ka.probes = tcp.tcpKeepalive.probes;
      const t = ms(tcp.tcpKeepalive.time, 'tcp.tcpKeepalive.time', where, warn);
      if (t !== undefined) ka.timeSeconds = Math.max(1, Math.round(t / 1000));
      const i = ms(tcp.tcpKeepalive.interval, 'tcp.tcpKeepalive.interval', where, warn);
      if (i !== undefined) ka.intervalSeconds = Math.max(1, Math.round(i / 1000));
      out.tcpKeepalive = ka;
    }
    const mcd = ms(tcp.maxConnectionDuration, 'tcp.maxConnectionDuration', where, warn);
    if (mcd !== undefined) out.maxConnectionDurationMs = mcd;
    const idle = ms(tcp.idleTimeout, 'tcp.idleTimeout', where, warn);
    if (idle !== undefined) out.tcpIdleTimeoutMs = idle;
  }
  const http = cp.http;
  if (http) {
    if (http.http1MaxPendingRequests && http.http1MaxPendingRequests > 0) out.http1MaxPendingRequests = http.http1MaxPendingRequests;
    if (http.http2MaxRequests && http.http2MaxRequests > 0) out.http2MaxRequests = http.http2MaxRequests;
    if (http.maxRequestsPerConnection && http.maxRequestsPerConnection > 0) out.maxRequestsPerConnection = http.maxRequestsPerConnection;
    if (http.maxRetries && http.maxRetries > 0) out.maxRetries = http.maxRetries;
    const idle = ms(http.idleTimeout, 'http.idleTimeout', where, warn);
    if (idle !== undefined) out.idleTimeoutMs = idle;
    if (http.maxConcurrentStreams && http.maxConcurrentStreams > 0) out.maxConcurrentStreams = http.maxConcurrentStreams;
    if (http.h2UpgradePolicy === 'UPGRADE') out.h2Upgrade = true;
    if (http.useClientProtocol) out.useClientProtocol = true;
  }
  return Object.keys(out).length > 0 || cp.tcp || cp.http ? out : undefined;
}

function outlierDetection(od: OutlierDetection, where: string, warn: (msg: string) => void): OutlierDetectionIR {
  const out: OutlierDetectionIR = {
    intervalMs: ms(od.interval, 'outlierDetection.interval', where, warn) ?? DEFAULT_OUTLIER_INTERVAL_MS,
    baseEjectionTimeMs: ms(od.baseEjectionTime, 'outlierDetection.baseEjectionTime', where, warn) ?? DEFAULT_BASE_EJECTION_TIME_MS,
    maxEjectionPercent: od.maxEjectionPercent !== undefined && od.maxEjectionPercent > 0 ? od.maxEjectionPercent : DEFAULT_MAX_EJECTION_PERCENT,
    minHealthPercent: od.minHealthPercent !== undefined && od.minHealthPercent >= 0 ? od.minHealthPercent : DEFAULT_MIN_HEALTH_PERCENT,
  };
  if (od.consecutive5xxErrors !== undefined) out.consecutive5xxErrors = od.consecutive5xxErrors;
  if (od.consecutiveGatewayErrors !== undefined) out.consecutiveGatewayErrors = od.consecutiveGatewayErrors;
  if (od.consecutiveErrors !== undefined) {
    // Istio's old meaning of the deprecated field: gateway errors only (5xx ejection off).
    warn(`${where}: outlierDetection.consecutiveErrors is deprecated: read as consecutiveGatewayErrors (use consecutive5xxErrors / consecutiveGatewayErrors)`);
    if (out.consecutiveGatewayErrors === undefined) out.consecutiveGatewayErrors = od.consecutiveErrors;
    if (out.consecutive5xxErrors === undefined) out.consecutive5xxErrors = 0;
  }
  if (od.splitExternalLocalOriginErrors) {
    out.splitExternalLocalOriginErrors = true;
    if (od.consecutiveLocalOriginFailures !== undefined && od.consecutiveLocalOriginFailures > 0) out.consecutiveLocalOriginFailures = od.consecutiveLocalOriginFailures;
  } else if (od.consecutiveLocalOriginFailures !== undefined) {
    warn(`${where}: outlierDetection.consecutiveLocalOriginFailures only counts with splitExternalLocalOriginErrors: ignored`);
  }
  return out;
}
