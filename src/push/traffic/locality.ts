/**
 * Locality-aware load balancing for one proxy: endpoint priorities (failover) and locality weights
 * (distribute) from a DestinationRule's `localityLbSetting`, as Istio computes them per proxy
 * (https://istio.io/latest/docs/reference/config/networking/destination-rule/#LocalityLoadBalancerSetting,
 * https://istio.io/latest/docs/tasks/traffic-management/locality-load-balancing/ and pilot's
 * `loadbalancer.ApplyLocalityLoadBalancer`):
 *
 * - The setting is the rule's, else the mesh default, which is enabled in Istio's default mesh
 *   config; `enabled: false` turns it off.
 * - `distribute` (when a `from` matches the proxy's locality): each `to` locality pattern gets its
 *   percentage, split over the matching localities by their endpoint weights (rounded up);
 *   localities no `to` matches lose their endpoints.
 * - Otherwise failover, only when the cluster has outlier detection (without it Envoy never sees an
 *   endpoint fail, so Istio leaves priorities alone): `failoverPriority` labels first (endpoints
 *   matching the proxy on the first k labels and not the next get priority n-k), then within each
 *   of those the locality rank: same region/zone/subzone 0, same region+zone 1, same region 2,
 *   other 3; a `failover` entry whose `from` is the proxy's region makes other regions except its
 *   `to` rank 4. The combined ranks are renumbered 0..N without gaps. Missing locality parts
 *   compare as empty strings (so an endpoint without locality ranks 0 for a proxy without one).
 * - Envoy's locality-weighted LB is turned on for `distribute`, and for failover with explicit
 *   `failover` or `failoverPriority` (Istio's rule; default failover needs priorities only).
 */
import type { EndpointIR, LocalityIR } from '../../ir/types.js';
import type { LocalityLbSetting } from '../../resources/traffic-types.js';

/** Istio's topology labels added to workload and endpoint labels (used by `failoverPriority`). */
export const LOCALITY_LABELS = {
  region: 'topology.kubernetes.io/region',
  zone: 'topology.kubernetes.io/zone',
  subZone: 'topology.istio.io/subzone',
  network: 'topology.istio.io/network',
} as const;

/** An endpoint with the labels `failoverPriority` compares (workload labels plus topology labels). */
export interface LabeledEndpoint {
  endpoint: EndpointIR;
  labels: Readonly<Record<string, string>>;
}

/** The proxy side of the computation: its locality and labels (topology labels added by {@link withTopologyLabels}). */
export interface LocalityClient {
  locality?: LocalityIR;
  labels: Readonly<Record<string, string>>;
}

/** What {@link applyLocalityLb} decided for one cluster. */
export interface LocalityLbResult {
  /** The endpoints kept (with `priority` set when failover applies). */
  endpoints: EndpointIR[];
  /** Whether priorities or weights were applied at all. */
  applied: boolean;
  /** Envoy's locality-weighted LB on. */
  weighted: boolean;
  /**
   * `distribute`: the weight of each kept locality, by `region/zone/subzone`. Failover with
   * locality-weighted LB: `{}` (each locality group weighs the sum of its endpoint weights, Istio's
   * default locality weight).
   */
  localityWeights?: Record<string, number>;
}

/** `region/zone/subzone` with missing parts empty: the key of `LoadAssignmentIR.localityWeights`. */
export function localityKey(l: LocalityIR | undefined): string {
  return `${l?.region ?? ''}/${l?.zone ?? ''}/${l?.subZone ?? ''}`;
}

/** `labels` plus Istio's topology labels for `locality` and `network` (existing labels win). */
export function withTopologyLabels(labels: Readonly<Record<string, string>>, locality: LocalityIR | undefined, network?: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (locality?.region) out[LOCALITY_LABELS.region] = locality.region;
  if (locality?.zone) out[LOCALITY_LABELS.zone] = locality.zone;
  if (locality?.subZone) out[LOCALITY_LABELS.subZone] = locality.subZone;
  if (network) out[LOCALITY_LABELS.network] = network;
  return { ...out, ...labels };
}

/** Istio's `LbPriority`: 0 same region/zone/subzone, 1 same region and zone, 2 same region, 3 otherwise. */
export function localityRank(proxy: LocalityIR | undefined, endpoint: LocalityIR | undefined): 0 | 1 | 2 | 3 {
  if ((proxy?.region ?? '') !== (endpoint?.region ?? '')) return 3;
  if ((proxy?.zone ?? '') !== (endpoint?.zone ?? '')) return 2;
  if ((proxy?.subZone ?? '') !== (endpoint?.subZone ?? '')) return 1;
  return 0;
}

/**
 * Istio's `LocalityMatch`: `rule` is `region[/zone[/subzone]]`, each part may be `*`; a missing
 * zone or subzone matches anything.
 */
export function localityMatches(l: LocalityIR | undefined, rule: string): boolean {
  const [region = '', zone = '', subZone = ''] = rule.split('/');
  const regionOk = region === '*' || (l?.region ?? '') === region;
  const zoneOk = zone === '*' || zone === '' || (l?.zone ?? '') === zone;
  const subZoneOk = subZone === '*' || subZone === '' || (l?.subZone ?? '') === subZone;
  return regionOk && zoneOk && subZoneOk;
}

/**
 * The effective setting: the rule's, else the mesh default (`{}` = enabled, Istio's default mesh
 * config); undefined when `enabled: false`.
 */
export function effectiveLocalitySetting(rule: LocalityLbSetting | undefined, mesh: LocalityLbSetting | undefined = {}): LocalityLbSetting | undefined {
  const s = rule ?? mesh;
  if (s === undefined || s.enabled === false) return undefined;
  return s;
}

/**
 * Applies `setting` (already {@link effectiveLocalitySetting}) to `endpoints` for `client`.
 * `outlierDetection`: the cluster has outlier detection (failover needs it). Returns new endpoint
 * objects (the inputs are not changed).
 */
export function applyLocalityLb(endpoints: readonly LabeledEndpoint[], client: LocalityClient, setting: LocalityLbSetting | undefined, outlierDetection: boolean): LocalityLbResult {
  const copy = endpoints.map((e) => ({ endpoint: { ...e.endpoint }, labels: e.labels }));
  const plain = (): EndpointIR[] => copy.map((e) => e.endpoint);
  if (!setting) return { endpoints: plain(), applied: false, weighted: false };
  const distribute = (setting.distribute ?? []).filter((d) => d.from !== undefined && d.to !== undefined);
  if (distribute.length > 0) {
    const rule = distribute.find((d) => localityMatches(client.locality, d.from ?? ''));
    if (!rule) return { endpoints: plain(), applied: false, weighted: false };
    return distributeWeights(copy.map((e) => e.endpoint), rule.to ?? {});
  }
  if (!outlierDetection) return { endpoints: plain(), applied: false, weighted: false };
  const failover = setting.failover ?? [];
  const failoverPriority = setting.failoverPriority ?? [];
  const labelRank = new Map<LabeledEndpoint, number>();
  const useLabels = failoverPriority.length > 0 && Object.keys(client.labels).length > 0;
  if (useLabels) {
    const names: string[] = [];
    const overrides = new Map<string, string>();
    for (const entry of failoverPriority) {
      const eq = entry.indexOf('=');
      const name = eq >= 0 ? entry.slice(0, eq) : entry;
      names.push(name);
      if (eq >= 0) overrides.set(name, entry.slice(eq + 1));
    }
    for (const e of copy) {
      let rank = 0;
      for (let j = 0; j < names.length; j++) {
        const name = names[j]!;
        const want = overrides.get(name) ?? client.labels[name];
        if (want !== e.labels[name]) {
          rank = names.length - j;
          break;
        }
      }
      labelRank.set(e, rank);
    }
  }
  // With failoverPriority, Istio applies the locality ranks on top of the label ranks only when
  // `failover` is also set (and skips the label ranks when the proxy has no labels).
  const useLocality = failoverPriority.length === 0 || failover.length > 0;
  const raw = new Map<LabeledEndpoint, number>();
  for (const e of copy) {
    let rank = 0;
    if (useLocality) {
      rank = localityRank(client.locality, e.endpoint.locality);
      if (rank === 3) {
        const entry = failover.find((f) => f.from === (client.locality?.region ?? ''));
        if (entry && e.endpoint.locality?.region !== entry.to) rank = 4;
      }
    }
    raw.set(e, (labelRank.get(e) ?? 0) * 5 + rank);
  }
  const levels = [...new Set(raw.values())].sort((a, b) => a - b);
  for (const e of copy) {
    const p = levels.indexOf(raw.get(e) ?? 0);
    if (p > 0) e.endpoint.priority = p;
    else delete e.endpoint.priority;
  }
  const weighted = failover.length > 0 || failoverPriority.length > 0;
  const result: LocalityLbResult = { endpoints: plain(), applied: true, weighted };
  if (weighted) result.localityWeights = {};
  return result;
}

/**
 * Istio's `applyLocalityWeights`: for each `to` pattern (in order), the localities it matches that
 * no earlier pattern took share its percentage in proportion to their endpoint weights (rounded
 * up); localities that no pattern matches lose their endpoints.
 */
function distributeWeights(endpoints: EndpointIR[], to: Readonly<Record<string, number>>): LocalityLbResult {
  const localityTotal = new Map<string, { locality: LocalityIR | undefined; total: number }>();
  for (const ep of endpoints) {
    const key = localityKey(ep.locality);
    const entry = localityTotal.get(key) ?? { locality: ep.locality, total: 0 };
    entry.total += ep.weight ?? 1;
    localityTotal.set(key, entry);
  }
  const unmatched = new Set(localityTotal.keys());
  const weights: Record<string, number> = {};
  for (const [pattern, percent] of Object.entries(to)) {
    const matched = [...unmatched].filter((k) => localityMatches(localityTotal.get(k)?.locality, pattern));
    const total = matched.reduce((sum, k) => sum + (localityTotal.get(k)?.total ?? 0), 0);
    for (const k of matched) {
      unmatched.delete(k);
      const w = total > 0 ? ((localityTotal.get(k)?.total ?? 0) * percent) / total : 0;
      if (w > 0) weights[k] = Math.ceil(w);
    }
  }
  const kept = endpoints.filter((ep) => weights[localityKey(ep.locality)] !== undefined);
  return { endpoints: kept, applied: true, weighted: true, localityWeights: weights };
}
