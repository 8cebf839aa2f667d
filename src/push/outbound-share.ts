/**
 * Sharing the outbound part of the push context between proxies (issue 9: "recompute only what
 * changed, share what is equal"). A proxy's outbound listeners, outbound clusters and their
 * ClusterLoadAssignments (what the Sidecar `egress` section, or the default egress, produces) are
 * a function of few inputs:
 *
 *  - the registry snapshot and the root namespace;
 *  - the proxy's namespace (visible services, `exportTo`, VirtualService `sourceNamespace`, the
 *    DestinationRule lookup) and trust domain (endpoint SPIFFE IDs);
 *  - the Sidecar that applies (its egress listeners);
 *  - its locality and network (locality load balancing: priorities and weights);
 *  - of its labels, only those some rule can read on the outbound side: DestinationRule
 *    `workloadSelector` keys, `failoverPriority` labels (after Istio's topology labels are added),
 *    and VirtualService `sourceLabels` keys — plus whether it has labels at all (Istio skips the
 *    `failoverPriority` label ranks for a proxy without labels);
 *  - the addresses the proxy's inbound side already took (an outbound listener yields to them).
 *
 * {@link egressShareKey} folds those inputs into a string; two proxies with the same key get the
 * same outbound part from the same snapshot, so it is built once per key and snapshot and the
 * objects are shared (they are never modified after they are built). Where the key cannot capture
 * an input (an egress `bind` that overlaps the proxy's own address) it is `undefined` and the
 * part is built for that proxy alone.
 */
import { isIP } from 'node:net';
import type { MeshSnapshot } from '../registry/types.js';
import type { LocalityIR } from '../ir/types.js';
import { addressesOverlap } from '../ir/validate.js';
import type { IstioEgressListener } from '../resources/types.js';

/** Label keys the outbound part can read, by snapshot (weakly held). */
const LABEL_KEYS = new WeakMap<MeshSnapshot, ReadonlySet<string>>();

/** Adds to `out` the keys of every `field` object and the label names of every `failoverPriority` list under `value`. */
function collect(value: unknown, field: string, out: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) collect(v, field, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === field && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const key of Object.keys(v)) out.add(key);
    } else if (k === 'failoverPriority' && Array.isArray(v)) {
      // Istio: "<label>" or "<label>=<value>" (the value overrides the proxy's own).
      for (const entry of v) if (typeof entry === 'string') out.add(entry.split('=', 1)[0] ?? entry);
    }
    collect(v, field, out);
  }
}

/**
 * The label keys that can change a proxy's outbound part in `snapshot`: keys of DestinationRule
 * `workloadSelector` (`matchLabels`, or `labels`), DestinationRule `failoverPriority` label names
 * (istio.networking.v1.LocalityLoadBalancerSetting), and VirtualService match `sourceLabels` keys
 * (istio.networking.v1.HTTPMatchRequest, L4MatchAttributes, TLSMatchAttributes). Computed once per
 * snapshot.
 */
export function outboundLabelKeys(snapshot: MeshSnapshot): ReadonlySet<string> {
  const have = LABEL_KEYS.get(snapshot);
  if (have) return have;
  const keys = new Set<string>();
  for (const dr of snapshot.destinationRules) {
    collect(dr.spec.workloadSelector, 'matchLabels', keys);
    collect(dr.spec.workloadSelector, 'labels', keys);
    collect(dr.spec.trafficPolicy, '', keys);
    collect(dr.spec.subsets, '', keys);
  }
  for (const vs of snapshot.virtualServices) collect(vs.spec, 'sourceLabels', keys);
  LABEL_KEYS.set(snapshot, keys);
  return keys;
}

/** `labels` restricted to `keys`, as sorted `[key, value]` pairs. */
function restrict(labels: Readonly<Record<string, string>>, keys: ReadonlySet<string>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const k of keys) {
    const v = labels[k];
    if (v !== undefined) out.push([k, v]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** What {@link egressShareKey} reads of the proxy and of the build so far. */
export interface EgressShareInputs {
  namespace: string;
  rootNamespace: string;
  trustDomain: string;
  /** The proxy's IP (its inbound listeners' address). */
  ip: string;
  /** `namespace/name` of the Sidecar whose egress applies, or '' for the default egress. */
  sidecar: string;
  /** The egress listeners that will be built. */
  egress: readonly IstioEgressListener[];
  /** The proxy's workload labels (VirtualService `sourceLabels`, DestinationRule `workloadSelector`). */
  labels: Readonly<Record<string, string>>;
  /** The locality client: its locality and its labels with Istio's topology labels. */
  locality: { locality?: LocalityIR; labels: Readonly<Record<string, string>> };
  /** Addresses taken before the egress is built (the inbound side). */
  bound: ReadonlyArray<{ address: string; port: number; what: string }>;
}

/**
 * The sharing key of a proxy's outbound part (see the module comment), or `undefined` when it
 * must be built for this proxy alone (an egress bind overlapping the proxy's own address).
 */
export function egressShareKey(snapshot: MeshSnapshot, x: EgressShareInputs): string | undefined {
  for (const e of x.egress) {
    const bind = e.bind ?? '127.0.0.1';
    if (isIP(bind) !== 0 && addressesOverlap(bind, x.ip)) return undefined;
  }
  const keys = outboundLabelKeys(snapshot);
  // Entries at the proxy's own address cannot collide with an egress bind (checked above): only
  // their presence matters, not the address.
  const bound = x.bound.map((b) => (b.address === x.ip ? `$self:${b.port}` : `${b.address}:${b.port}:${b.what}`));
  return JSON.stringify([
    x.namespace,
    x.rootNamespace,
    x.trustDomain,
    x.sidecar,
    x.locality.locality ?? null,
    restrict(x.labels, keys),
    restrict(x.locality.labels, keys),
    Object.keys(x.labels).length > 0,
    Object.keys(x.locality.labels).length > 0,
    bound,
  ]);
}
