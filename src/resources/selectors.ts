/**
 * Label selector matching as Istio does it for WorkloadEntries (`labels.Instance.SubsetOf`): a
 * selector matches when every one of its labels is present with the same value. An empty or
 * absent selector matches every workload (in the selecting resource's namespace).
 *
 * A WorkloadEntry is matched by its `spec.labels` overlaid with its `metadata.labels` (Istio's
 * `ConvertWorkloadEntry` merges both, metadata taking precedence): see {@link workloadLabels}.
 */
import type { WorkloadEntry } from './types.js';

/** The labels a WorkloadEntry is selected by: `spec.labels` overlaid with `metadata.labels`. */
export function workloadLabels(we: WorkloadEntry): Record<string, string> {
  return { ...(we.spec.labels ?? {}), ...(we.metadata.labels ?? {}) };
}

/** True when every `selector` label is in `labels` with the same value; an empty selector matches all. */
export function matchesSelector(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (selector === undefined) return true;
  for (const [k, v] of Object.entries(selector)) {
    if (labels === undefined || !Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  return true;
}
