/**
 * Shapes shared by the snapshot cache (`xds/cache`) and the xDS server (`xds/server`), and by the
 * code that fills the cache. Resources are held already encoded, so one encoding is shared by
 * every proxy and every stream that sees the same resource.
 */
import { TypeUrl, type EncodedAny } from './protos/loader.js';

/** The `envoy.config.core.v3.Node` fields Skiff uses, decoded from the first request. */
export interface XdsNode {
  /** Istio form: `sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`. */
  id: string;
  cluster: string;
  /** `node.metadata` as plain JSON (NAMESPACE, SERVICE_ACCOUNT, LABELS, WORKLOAD_NAME, CLUSTER_ID...). */
  metadata: Record<string, unknown>;
  userAgentName?: string;
  /** `node.user_agent_version` (Envoy sends its version here, e.g. `1.40.0`). */
  userAgentVersion?: string;
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

/**
 * What one xDS stream asks the cache for, for one type URL (go-control-plane's watch request).
 * The server fills it from a SotW `DiscoveryRequest` and its own per-stream state.
 */
export interface WatchRequest {
  typeUrl: string;
  /**
   * Subscribed resource names. For the wildcard types ({@link WILDCARD_TYPE_URLS}: LDS, CDS) an
   * empty list or one containing `*` means "everything for this node" (xDS protocol, "How the client
   * specifies what resources to return"); for other types only the named resources are returned.
   */
  resourceNames: readonly string[];
  /**
   * The version the stream already holds for this subscription (`''` = nothing yet). The cache
   * answers as soon as its version for the same subscription differs from this one.
   */
  versionInfo: string;
}

/** The cache's answer to a {@link WatchRequest}: the resources of a SotW `DiscoveryResponse`. */
export interface WatchResponse {
  typeUrl: string;
  /** Content hash over the (name, version) pairs of the returned resources. */
  versionInfo: string;
  /** Already-encoded resources, sorted by name; shared between streams, never copied. */
  resources: readonly EncodedAny[];
  /** Names of `resources`, index for index. */
  names: readonly string[];
  /**
   * Names of another type that these resources need, by type URL: with a full CDS answer, the
   * EDS names of the clusters; with a full LDS answer, the RDS names of the listeners (see
   * {@link DEPENDENT_TYPE_URL}). The server uses it to send endpoints right behind clusters.
   */
  requires?: ReadonlyMap<string, readonly string[]>;
}

/**
 * The one narrow interface between the xDS server and the snapshot cache (DESIGN.md §1, after
 * go-control-plane's `ConfigWatcher`). A watch is one-shot: `respond` is called at most once, maybe
 * synchronously from inside `createWatch` when the answer is already known, otherwise later when a
 * new snapshot changes the version. The returned function cancels a watch that has not fired.
 */
export interface ConfigWatcher {
  createWatch(nodeId: string, request: WatchRequest, respond: (response: WatchResponse) => void): () => void;
}

/**
 * Types with a wildcard subscription: Listener and Cluster (xDS protocol: "For Listener and
 * Cluster resource types, there is also a wildcard subscription"). Every SotW response of these
 * types carries the full set the client is subscribed to; a missing resource means "deleted".
 */
export const WILDCARD_TYPE_URLS: ReadonlySet<string> = new Set<string>([TypeUrl.Listener, TypeUrl.Cluster]);

/**
 * Make-before-break order for pushes on one ADS stream (xDS protocol, "Eventual consistency
 * considerations"): clusters, then their endpoints, then listeners, then routes. Other types follow.
 */
export const PUSH_ORDER: readonly string[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];

/**
 * For a type, the type its resources refer to by name: clusters name their
 * ClusterLoadAssignments (EDS), listeners name their RouteConfigurations (RDS).
 */
export const DEPENDENT_TYPE_URL: ReadonlyMap<string, string> = new Map<string, string>([
  [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment],
  [TypeUrl.Listener, TypeUrl.RouteConfiguration],
]);
