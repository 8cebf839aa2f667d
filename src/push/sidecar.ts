/**
 * Which Sidecar resource configures a workload, by Istio's rules
 * (https://istio.io/latest/docs/reference/config/networking/sidecar/): a Sidecar in the workload's
 * namespace whose `workloadSelector` matches it, else the namespace's Sidecar without a selector,
 * else the root namespace's Sidecar without a selector. Among several candidates of one kind the
 * oldest wins (Istio leaves this undefined; Skiff reports it).
 */
import { ROOT_NAMESPACE, resourceKey, type Sidecar } from '../resources/types.js';
import { hasLabels, oldestFirst, selectorMatches } from './selectors.js';

/**
 * Returns the Sidecar that applies to a workload in `namespace` with `labels`, or undefined
 * (`rootNamespace`, default `skiff-system`, holds the mesh-wide default Sidecar).
 */
export function selectSidecar(
  sidecars: readonly Sidecar[],
  namespace: string,
  labels: Readonly<Record<string, string>>,
  warn: (msg: string) => void,
  rootNamespace: string = ROOT_NAMESPACE,
): Sidecar | undefined {
  const levels: Array<[string, Sidecar[]]> = [
    [
      'workload-selector',
      sidecars.filter((s) => s.metadata.namespace === namespace && hasLabels(s.spec.workloadSelector?.labels) && selectorMatches(s.spec.workloadSelector?.labels, labels)),
    ],
    [`namespace ${namespace}`, sidecars.filter((s) => s.metadata.namespace === namespace && !hasLabels(s.spec.workloadSelector?.labels))],
    ['root-namespace', sidecars.filter((s) => s.metadata.namespace === rootNamespace && !hasLabels(s.spec.workloadSelector?.labels))],
  ];
  for (const [level, list] of levels) {
    if (list.length === 0) continue;
    const sorted = [...list].sort(oldestFirst);
    if (sorted.length > 1) warn(`${sorted.length} ${level} Sidecars apply (${sorted.map(resourceKey).join(', ')}): using the oldest, ${resourceKey(sorted[0]!)}`);
    return sorted[0];
  }
  return undefined;
}
