/**
 * The ztunnel translator (DESIGN.md §1, §7): a pure function from the registry snapshot to the
 * two resource types ztunnel watches, for the whole mesh (every ztunnel gets the same set):
 *
 * - `type.googleapis.com/istio.workload.Address`: Workloads (named by uid, aliases
 *   `<network>/<IP>`) and Services (named `<namespace>/<hostname>`), see `addresses.ts`;
 *   each Workload lists the selector-scoped policies that apply to it.
 * - `type.googleapis.com/istio.security.Authorization`: policies named `<namespace>/<name>`, from
 *   the modules in `policies/` (AuthorizationPolicy, PeerAuthentication).
 *
 * Each resource is encoded once (strictly, against Skiff's `istio/*.proto`) with a content-hash
 * version; both type maps are always present, possibly empty.
 */
import { createHash } from 'node:crypto';
import { ROOT_NAMESPACE } from '../../resources/types.js';
import type { MeshSnapshot } from '../../registry/types.js';
import { encodeAny, TypeUrl } from '../../xds/protos/loader.js';
import type { ResourcesByType, VersionedResource } from '../../xds/types.js';
import { serviceAddresses, workloadAddresses, type AddressOptions } from './addresses.js';
import { ZTUNNEL_POLICY_MODULES, type ZtunnelPolicyContext, type ZtunnelPolicyModule } from './policies/index.js';

export {
  AMBIENT_REDIRECTION_ANNOTATION,
  AUTO_REGISTRATION_GROUP_ANNOTATION,
  TUNNEL_LABEL,
  serviceEntryEndpointUid,
  tunnelOf,
  workloadEntryUid,
  type AddressEntry,
  type ServiceMessage,
  type WorkloadMessage,
} from './addresses.js';
export { ipBytes, ipText, parseCidr } from './ip.js';
export * from './policies/index.js';

/** Encodes `message` as `typeUrl` and versions it by content (the first 16 hex digits of its SHA-256). */
function versioned(typeUrl: string, name: string, message: object): VersionedResource {
  const resource = encodeAny(typeUrl, message);
  return { name, version: createHash('sha256').update(resource.value).digest('hex').slice(0, 16), resource };
}

/** Options of {@link translateZtunnel}. */
export interface ZtunnelTranslateOptions {
  /** Default `cluster.local`. */
  trustDomain?: string;
  /** Cluster id in workload uids and `cluster_id`; default `skiff`. */
  clusterId?: string;
  /** Default network (`''`). */
  network?: string;
  /** Root namespace of mesh-wide policies; default `skiff-system`. */
  rootNamespace?: string;
}

/** What {@link translateZtunnel} returns. */
export interface ZtunnelTranslation {
  /** Address and Authorization resources by name (both types always present). */
  resources: ResourcesByType;
  /** Problems with input resources, one sentence each naming the resource, sorted. */
  warnings: string[];
}

/**
 * Translates the mesh for ztunnel. `modules` defaults to {@link ZTUNNEL_POLICY_MODULES}; they run
 * in ascending `order`. Throws `UnknownFieldError` if a builder produced a field Skiff's protos
 * lack (a bug, caught by the golden tests).
 */
export function translateZtunnel(snapshot: MeshSnapshot, options: ZtunnelTranslateOptions = {}, modules: readonly ZtunnelPolicyModule[] = ZTUNNEL_POLICY_MODULES): ZtunnelTranslation {
  const warnings = new Set<string>();
  const warn = (m: string): void => void warnings.add(m);
  const opts: AddressOptions = { trustDomain: options.trustDomain ?? 'cluster.local', clusterId: options.clusterId ?? 'skiff', network: options.network ?? '' };
  const ctx: ZtunnelPolicyContext = { snapshot, rootNamespace: options.rootNamespace ?? ROOT_NAMESPACE, warn };
  const ordered = [...modules].sort((a, b) => a.order - b.order);

  const authorizations = new Map<string, VersionedResource>();
  for (const module of ordered) {
    for (const a of module.authorizations(ctx)) {
      const name = `${a.namespace}/${a.name}`;
      if (authorizations.has(name)) {
        warn(`${module.name} ${name}: an Authorization with this name already exists for ztunnel; the first one is kept`);
        continue;
      }
      authorizations.set(name, versioned(TypeUrl.Authorization, name, a));
    }
  }

  const addresses = new Map<string, VersionedResource>();
  const put = (name: string, aliases: string[], message: object): void => {
    const r = versioned(TypeUrl.Address, name, message);
    if (aliases.length > 0) r.aliases = aliases;
    addresses.set(name, r);
  };
  for (const entry of workloadAddresses(snapshot, opts, warn)) {
    if (addresses.has(entry.name)) continue;
    if (entry.selectorTarget && 'workload' in entry.address) {
      const target = entry.selectorTarget;
      const keys = ordered.flatMap((m) => m.workloadPolicies(ctx, target));
      if (keys.length > 0) entry.address.workload.authorizationPolicies = [...new Set(keys)];
    }
    put(entry.name, entry.aliases, entry.address);
  }
  for (const entry of serviceAddresses(snapshot, opts, warn)) {
    if (addresses.has(entry.name)) {
      warn(`service ${entry.name} has the name of a workload uid; not sent to ztunnel`);
      continue;
    }
    put(entry.name, entry.aliases, entry.address);
  }
  return {
    resources: new Map([
      [TypeUrl.Address, addresses],
      [TypeUrl.Authorization, authorizations],
    ]),
    warnings: [...warnings].sort(),
  };
}
