/**
 * Which policies apply to a workload, as Istio decides it for a sidecar
 * (`pilot/pkg/model/policyattachment.go` `ShouldAttachPolicy`, and the "Authorization policy
 * scope" section of https://istio.io/latest/docs/reference/config/security/authorization-policy/):
 *
 * - a policy in the workload's namespace without selector applies to every workload there;
 * - a policy in the root namespace without selector applies to every workload in the mesh;
 * - a selector (`matchLabels`) narrows either to the workloads whose labels include it — for a
 *   root-namespace policy in every namespace;
 * - a policy with `targetRef`/`targetRefs` never applies to a sidecar (those attach to waypoints
 *   and gateways).
 *
 * PeerAuthentication has its own precedence (`effectiveMtlsMode`, Istio `ComposePeerAuthentication`).
 */
import { matchesSelector } from '../resources/selectors.js';
import type { LabelSelector, MtlsMode, PeerAuthentication } from '../resources/types.js';

/** The parts of a policy that decide its scope. */
export interface ScopedPolicy {
  metadata: { namespace: string; name: string };
  spec: { selector?: LabelSelector; targetRef?: unknown; targetRefs?: readonly unknown[] };
}

/** True when `policy` applies to a workload in `namespace` with `labels`. */
export function policyApplies(policy: ScopedPolicy, namespace: string, labels: Readonly<Record<string, string>>, rootNamespace: string): boolean {
  if (policy.spec.targetRef !== undefined || (policy.spec.targetRefs?.length ?? 0) > 0) return false;
  const ns = policy.metadata.namespace;
  if (ns !== namespace && ns !== rootNamespace) return false;
  return matchesSelector(policy.spec.selector?.matchLabels, labels);
}

/** `namespace/name` of a policy. */
export function policyKey(p: { metadata: { namespace: string; name: string } }): string {
  return `${p.metadata.namespace}/${p.metadata.name}`;
}

/** Sorts policies by namespace, then name (the order decisions are reported in). */
export function byKey<T extends { metadata: { namespace: string; name: string } }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => {
    const ka = policyKey(a);
    const kb = policyKey(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** The effective mTLS mode of one port, and which policy set it. */
export interface EffectiveMtls {
  mode: Exclude<MtlsMode, 'UNSET'>;
  /** `namespace/name` of the deciding policy, or `default` (PERMISSIVE when nothing applies). */
  source: string;
}

function olderFirst(a: PeerAuthentication, b: PeerAuthentication): number {
  const ta = a.metadata.creationTimestamp ? Date.parse(a.metadata.creationTimestamp) : Number.POSITIVE_INFINITY;
  const tb = b.metadata.creationTimestamp ? Date.parse(b.metadata.creationTimestamp) : Number.POSITIVE_INFINITY;
  if (ta !== tb) return ta - tb;
  const ka = policyKey(a);
  const kb = policyKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * The effective PeerAuthentication mode for `port` of a workload (Istio `ComposePeerAuthentication`,
 * https://istio.io/latest/docs/concepts/security/#peer-authentication): the mesh policy (root
 * namespace, no selector), then the namespace policy, then the workload policy (a selector, not in
 * the root namespace) override one another unless UNSET; the oldest wins among equals; a
 * workload policy's `portLevelMtls` entry for the port wins last (UNSET inherits). Nothing:
 * PERMISSIVE.
 */
export function effectiveMtlsMode(
  policies: readonly PeerAuthentication[],
  namespace: string,
  labels: Readonly<Record<string, string>>,
  port: number,
  rootNamespace: string,
): EffectiveMtls {
  let mesh: PeerAuthentication | undefined;
  let ns: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  for (const pa of [...policies].sort(olderFirst)) {
    const pns = pa.metadata.namespace;
    if (pns !== namespace && pns !== rootNamespace) continue;
    const selector = pa.spec.selector?.matchLabels;
    const hasSelector = selector !== undefined && Object.keys(selector).length > 0;
    if (!matchesSelector(selector, labels)) continue;
    if (!hasSelector) {
      if (pns === rootNamespace) mesh ??= pa;
      else ns ??= pa;
    } else if (pns !== rootNamespace) {
      workload ??= pa;
    }
  }
  let out: EffectiveMtls = { mode: 'PERMISSIVE', source: 'default' };
  for (const pa of [mesh, ns, workload]) {
    const mode = pa?.spec.mtls?.mode;
    if (pa && mode !== undefined && mode !== 'UNSET') out = { mode, source: policyKey(pa) };
  }
  const portMode = workload?.spec.portLevelMtls?.[String(port)];
  if (workload && portMode !== undefined) {
    const m = portMode.mode;
    out = m === undefined || m === 'UNSET' ? { mode: out.mode, source: `${policyKey(workload)} portLevelMtls[${port}]` } : { mode: m, source: `${policyKey(workload)} portLevelMtls[${port}]` };
  }
  return out;
}
