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
  /** `node.locality` (envoy.config.core.v3.Locality), when the proxy sends a non-empty one. */
  locality?: { region?: string; zone?: string; subZone?: string };
}

/** One named resource with its content-hash version. */
export interface VersionedResource {
  /** The xDS resource name (listener name, cluster name, ...). */
  name: string;
  /** Content hash of `resource.value`. */
  version: string;
  resource: EncodedAny;
  /**
   * Other names the resource answers to in delta xDS (`Resource.aliases`; e.g. `network/IP` for
   * an `istio.workload.Address`). A delta subscription may name an alias instead of the name.
   */
  aliases?: readonly string[];
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

/**
 * What one delta xDS stream asks the cache for, for one type URL (go-control-plane's delta watch
 * with its stream state). The server keeps the subscription and what the client holds; the cache
 * compares them with the node's snapshot (Envoy xDS protocol, "Incremental xDS").
 */
export interface DeltaWatchRequest {
  typeUrl: string;
  /** The client subscribes to `*`: every resource of the type in the node's snapshot. */
  wildcard: boolean;
  /** Names (or aliases) the client subscribed to explicitly, besides the wildcard. */
  subscribed: readonly string[];
  /**
   * Name → version of every resource the client holds (from `initial_resource_versions` and
   * from what the stream sent). A resource is sent when its version differs; a held name that
   * is no longer in the snapshot is reported in `removed`.
   */
  known: ReadonlyMap<string, string>;
  /**
   * Names (or aliases) to answer now even when the client holds their current version: names
   * just subscribed ("the server must still provide those resources"), and a name unsubscribed
   * while the wildcard stays. A forced name that does not exist is reported in `removed`.
   */
  forced: readonly string[];
  /** Answer at once even when nothing is to be added or removed (a type's first request). */
  alwaysRespond: boolean;
}

/** The cache's answer to a {@link DeltaWatchRequest}: one `DeltaDiscoveryResponse`'s content. */
export interface DeltaWatchResponse {
  typeUrl: string;
  /** New, changed and forced resources, sorted by name; shared, never copied. */
  resources: readonly VersionedResource[];
  /** Names for `removed_resources`, sorted: held names gone from the snapshot, missing forced names. */
  removed: readonly string[];
  /** Version of the node's whole set of this type (`system_version_info`, for debugging only). */
  systemVersionInfo: string;
}

/**
 * The delta side of the narrow server/cache interface: like {@link ConfigWatcher.createWatch}, a
 * one-shot watch, answered at once (possibly synchronously) when the snapshot differs from what
 * the stream holds (or `alwaysRespond`), otherwise when a later snapshot does. The returned
 * function cancels a watch that has not fired.
 */
export interface DeltaConfigWatcher {
  createDeltaWatch(nodeId: string, request: DeltaWatchRequest, respond: (response: DeltaWatchResponse) => void): () => void;
}
