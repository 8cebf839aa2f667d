/** Errors of the snapshot cache. */
import { typeNameOf } from '../protos/loader.js';

/** One problem found by the consistency check: a resource of `typeUrl` named `name`. */
export interface SnapshotProblem {
  typeUrl: string;
  name: string;
  /** What is wrong, e.g. `referenced but missing`. */
  reason: string;
}

/**
 * Thrown by `SnapshotCache.setSnapshot` when a snapshot fails the consistency check (DESIGN.md
 * §1): a name listed in `references` has no resource of that type (an EDS name a cluster needs,
 * an RDS name a listener needs), or a resource is filed under the wrong type URL or name. The
 * previous snapshot of the node stays published. `typeUrl` and `resourceName` name the first
 * problem; `problems` lists all of them.
 */
export class SnapshotInconsistentError extends Error {
  readonly typeUrl: string;
  readonly resourceName: string;

  constructor(
    readonly nodeId: string,
    readonly problems: readonly SnapshotProblem[],
  ) {
    const first = problems[0];
    const listed = problems
      .slice(0, 5)
      .map((p) => `${typeNameOf(p.typeUrl)} "${p.name}" ${p.reason}`)
      .join('; ');
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    super(`inconsistent snapshot for node "${nodeId}": ${listed}${more}`);
    this.name = 'SnapshotInconsistentError';
    this.typeUrl = first?.typeUrl ?? '';
    this.resourceName = first?.name ?? '';
  }
}
