/**
 * Kind names in URLs and on the command line, as `kubectl` accepts them: the kind
 * (`WorkloadEntry`, any case), its lower-case plural (`workloadentries`) or Istio's short name
 * (`we`, `wg`, `se`, `pa`, `ap`, `ra`, `dr`, `vs`; `sidecar`, `httproute` and `grpcroute` have none).
 */
import { KIND_SCHEMAS } from '../resources/schemas.js';
import type { MeshKind } from '../resources/types.js';

const SHORT_NAMES: Partial<Record<MeshKind, string>> = {
  WorkloadEntry: 'we',
  WorkloadGroup: 'wg',
  ServiceEntry: 'se',
  PeerAuthentication: 'pa',
  AuthorizationPolicy: 'ap',
  RequestAuthentication: 'ra',
  DestinationRule: 'dr',
  VirtualService: 'vs',
};

/** Every kind the API stores. */
export const API_KINDS = Object.keys(KIND_SCHEMAS) as MeshKind[];

/** The lower-case plural of a kind (`workloadentries`, `sidecars`). */
export function pluralOf(kind: MeshKind): string {
  const lower = kind.toLowerCase();
  return lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : `${lower}s`;
}

const BY_NAME = new Map<string, MeshKind>();
for (const kind of API_KINDS) {
  BY_NAME.set(kind.toLowerCase(), kind);
  BY_NAME.set(pluralOf(kind), kind);
  const short = SHORT_NAMES[kind];
  if (short) BY_NAME.set(short, kind);
}

/** Every accepted spelling, for documentation and error messages. */
export const KIND_SPELLINGS: readonly string[] = [...BY_NAME.keys()].sort();

/** The kind a URL segment or CLI argument names, or undefined. */
export function resolveKind(name: string): MeshKind | undefined {
  return BY_NAME.get(name.toLowerCase());
}
