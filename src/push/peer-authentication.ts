/**
 * PeerAuthentication precedence as Istio applies it (https://istio.io/latest/docs/reference/config/security/peer_authentication/):
 * a workload-selector policy in the workload's namespace beats the namespace policy (no selector),
 * which beats the mesh policy (root namespace, no selector), which beats the default PERMISSIVE.
 * Among equally specific policies the oldest wins. `UNSET` inherits from the next less specific
 * level; `portLevelMtls` (workload-selector policies only) overrides per workload port.
 */
import { ROOT_NAMESPACE, resourceKey, type MtlsMode as ResourceMtlsMode, type PeerAuthentication } from '../resources/types.js';
import type { MtlsMode } from '../ir/types.js';
import { hasLabels, oldestFirst, selectorMatches } from './selectors.js';

/** The effective mTLS mode of one port and the policy that decided it. */
export interface EffectiveMtls {
  mode: MtlsMode;
  /** `PeerAuthentication/<ns>/<name>` (with `portLevelMtls[<port>]` when a port override decided) or `default`. */
  source: string;
}

/** The policies that apply to one workload, resolved once; {@link MtlsResolver.forPort} per port. */
export interface MtlsResolver {
  /** The mode for the workload port `port` (the port the proxy listens on for that service). */
  forPort(port: number): EffectiveMtls;
}

/**
 * Resolves the PeerAuthentications of `policies` that apply to a workload in `namespace` with
 * `labels` (`rootNamespace`, default `skiff-system`, holds the mesh-wide policy). Ambiguities (several policies at one level, `portLevelMtls` on a policy without a
 * selector, which Istio rejects) are reported through `warn`.
 */
export function resolvePeerAuthentication(
  policies: readonly PeerAuthentication[],
  namespace: string,
  labels: Readonly<Record<string, string>>,
  warn: (msg: string) => void,
  rootNamespace: string = ROOT_NAMESPACE,
): MtlsResolver {
  const pick = (level: string, list: PeerAuthentication[]): PeerAuthentication | undefined => {
    const sorted = [...list].sort(oldestFirst);
    if (sorted.length > 1) {
      warn(`${sorted.length} ${level} PeerAuthentications apply (${sorted.map(resourceKey).join(', ')}): the oldest, ${resourceKey(sorted[0]!)}, wins`);
    }
    return sorted[0];
  };
  const mesh = pick('mesh-wide', policies.filter((p) => p.metadata.namespace === rootNamespace && !hasLabels(p.spec.selector?.matchLabels)));
  const ns =
    namespace === rootNamespace
      ? undefined
      : pick(`namespace ${namespace}`, policies.filter((p) => p.metadata.namespace === namespace && !hasLabels(p.spec.selector?.matchLabels)));
  const workload = pick(
    'workload-level',
    policies.filter((p) => p.metadata.namespace === namespace && hasLabels(p.spec.selector?.matchLabels) && selectorMatches(p.spec.selector?.matchLabels, labels)),
  );
  for (const p of [mesh, ns]) {
    if (p?.spec.portLevelMtls && Object.keys(p.spec.portLevelMtls).length > 0) {
      warn(`${resourceKey(p)} has portLevelMtls but no selector: ignored (Istio allows port-level mTLS only with a workload selector)`);
    }
  }

  let base: EffectiveMtls = { mode: 'PERMISSIVE', source: 'default' };
  for (const p of [mesh, ns, workload]) {
    const m = setMode(p?.spec.mtls?.mode);
    if (p && m) base = { mode: m, source: resourceKey(p) };
  }
  const portLevel = workload?.spec.portLevelMtls ?? {};
  return {
    forPort(port: number): EffectiveMtls {
      const m = setMode(portLevel[String(port)]?.mode);
      if (workload && m) return { mode: m, source: `${resourceKey(workload)} portLevelMtls[${port}]` };
      return base;
    },
  };
}

function setMode(m: ResourceMtlsMode | undefined): MtlsMode | undefined {
  return m === undefined || m === 'UNSET' ? undefined : m;
}
