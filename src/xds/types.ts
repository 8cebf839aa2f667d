/**
 * Shapes shared by the snapshot cache (`xds/cache`) and the xDS server (`xds/server`), and by the
 * code that fills the cache. Resources are held already encoded, so one encoding is shared by
 * every proxy and every stream that sees the same resource.
 */
import type { EncodedAny } from './protos/loader.js';

/** The `envoy.config.core.v3.Node` fields Skiff uses, decoded from the first request. */
export interface XdsNode {
  /** Istio form: `sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`. */
  id: string;
  cluster: string;
  /** `node.metadata` as plain JSON (NAMESPACE, SERVICE_ACCOUNT, LABELS, WORKLOAD_NAME, CLUSTER_ID...). */
  metadata: Record<string, unknown>;
  userAgentName?: string;
}

/** One named resource with its content-hash version. */
export interface VersionedResource {
  /** The xDS resource name (listener name, cluster name, ...). */
  name: string;
  /** Content hash of `resource.value`. */
  version: string;
  resource: EncodedAny;
}

/** All resources of one node, by type URL then by name. */
export type ResourcesByType = ReadonlyMap<string, ReadonlyMap<string, VersionedResource>>;
