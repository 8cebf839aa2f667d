/**
 * Selection and precedence helpers for the push context. Label matching itself is
 * `resources/selectors.ts` (Istio's semantics), re-exported here.
 */
export { matchesSelector as selectorMatches, workloadLabels } from '../resources/selectors.js';

/** Whether a selector is present and non-empty (a workload-level policy rather than a namespace-wide one). */
export function hasLabels(selector: Readonly<Record<string, string>> | undefined): boolean {
  return selector !== undefined && Object.keys(selector).length > 0;
}

/**
 * Orders resources oldest first: by `metadata.creationTimestamp` (a resource without one counts as
 * newer than every resource with one), then by namespace and name. Istio resolves conflicts between
 * equally specific policies by taking the oldest.
 */
export function oldestFirst<T extends { metadata: { name: string; namespace: string; creationTimestamp?: string } }>(a: T, b: T): number {
  const ta = timestamp(a.metadata.creationTimestamp);
  const tb = timestamp(b.metadata.creationTimestamp);
  if (ta !== tb) return ta - tb;
  if (a.metadata.namespace !== b.metadata.namespace) return a.metadata.namespace < b.metadata.namespace ? -1 : 1;
  if (a.metadata.name !== b.metadata.name) return a.metadata.name < b.metadata.name ? -1 : 1;
  return 0;
}

function timestamp(s: string | undefined): number {
  if (!s) return Number.POSITIVE_INFINITY;
  const t = Date.parse(s);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}
