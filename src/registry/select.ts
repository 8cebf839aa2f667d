/**
 * Selection helpers over a {@link MeshSnapshot}, with Istio's label semantics (see
 * `resources/selectors.ts`): a selector matches a WorkloadEntry in the same namespace when all of
 * its labels are among the workload's labels (`spec.labels` overlaid with `metadata.labels`).
 */
import { matchesSelector, workloadLabels } from '../resources/selectors.js';
import type { ServiceEntry, WorkloadEntry } from '../resources/types.js';
import { namespacedName } from './snapshot.js';
import type { MeshSnapshot } from './types.js';

/**
 * The WorkloadEntries in `namespace` whose labels include every `labels` entry, sorted by name.
 * An empty or absent `labels` selects every WorkloadEntry in the namespace.
 */
export function selectWorkloads(
  snapshot: MeshSnapshot,
  namespace: string,
  labels: Readonly<Record<string, string>> | undefined,
): readonly WorkloadEntry[] {
  const inNamespace = snapshot.workloadsByNamespace.get(namespace) ?? [];
  return inNamespace.filter((we) => matchesSelector(labels, workloadLabels(we)));
}

/** The ServiceEntries whose workloadSelector selects `we` (same namespace), sorted by name. */
export function servicesForWorkload(snapshot: MeshSnapshot, we: WorkloadEntry): readonly ServiceEntry[] {
  return snapshot.servicesByWorkload.get(namespacedName(we)) ?? [];
}
