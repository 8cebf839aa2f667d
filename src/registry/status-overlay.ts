/**
 * Status overlays: conditions a source reports about resources that another source defines. The
 * registration source uses this to put an agent's health report (Istio's WorkloadEntry condition
 * `type: Healthy`) on a WorkloadEntry that comes from a file or the API, without owning it.
 *
 * An overlay maps a resource key (`Kind/namespace/name`, `resourceKey`) to conditions. Applied to
 * a merged resource, each overlay condition replaces the resource's own condition of the same
 * `type` (other conditions are kept); the result is a new object, the input is not mutated.
 */
import { deepEqual } from '../resources/equal.js';
import type { Condition, MeshResource } from '../resources/types.js';

/** Conditions by resource key (`Kind/namespace/name`). */
export type StatusOverlay = ReadonlyMap<string, readonly Condition[]>;

/** `r` with `conditions` replacing its conditions of the same types; `r` itself when there are none. */
export function withConditions<R extends MeshResource>(r: R, conditions: readonly Condition[]): R {
  if (conditions.length === 0) return r;
  const types = new Set(conditions.map((c) => c.type));
  const kept = (r.status?.conditions ?? []).filter((c) => !types.has(c.type));
  return { ...r, status: { ...r.status, conditions: [...kept, ...conditions] } };
}

/** True when two overlays hold the same keys with equal conditions. */
export function sameOverlay(a: StatusOverlay | undefined, b: StatusOverlay): boolean {
  if (a === undefined || a.size !== b.size) return false;
  for (const [key, conditions] of b) {
    if (!a.has(key) || !deepEqual(a.get(key), conditions)) return false;
  }
  return true;
}
