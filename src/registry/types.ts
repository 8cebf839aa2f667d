/**
 * The registry's public shapes: an immutable, versioned view of every resource from every source,
 * with the indexes the push context needs. A change produces a new {@link MeshSnapshot} and a
 * {@link ChangeEvent}; consumers never mutate a snapshot.
 */
import type {
  AuthorizationPolicy,
  MeshResource,
  PeerAuthentication,
  RequestAuthentication,
  ServiceEntry,
  Sidecar,
  WorkloadEntry,
  WorkloadGroup,
} from '../resources/types.js';
import type { DestinationRule, GRPCRoute, HTTPRoute, VirtualService } from '../resources/traffic-types.js';

/**
 * An immutable, indexed snapshot of the mesh. The lists are in the order each field states; the
 * maps are for lookups: only `byKey` iterates in a defined order (key order), the other maps'
 * iteration order is not meaningful (a snapshot derived from the previous one edits them in place).
 */
export interface MeshSnapshot {
  /** Increases by one with every published change. */
  readonly version: number;
  readonly resources: readonly MeshResource[];
  readonly workloadEntries: readonly WorkloadEntry[];
  /** Every WorkloadGroup, sorted by `namespace/name` (look one up with `byKey`). */
  readonly workloadGroups: readonly WorkloadGroup[];
  readonly serviceEntries: readonly ServiceEntry[];
  readonly sidecars: readonly Sidecar[];
  readonly peerAuthentications: readonly PeerAuthentication[];
  /** Every AuthorizationPolicy, sorted by `namespace/name`. */
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  /** Every RequestAuthentication, sorted by `namespace/name`. */
  readonly requestAuthentications: readonly RequestAuthentication[];
  /** ServiceEntry by each of its hosts. */
  readonly servicesByHost: ReadonlyMap<string, ServiceEntry>;
  /** WorkloadEntry by `namespace/name`. */
  readonly workloadsByName: ReadonlyMap<string, WorkloadEntry>;
  /** WorkloadEntries by address. */
  readonly workloadsByAddress: ReadonlyMap<string, readonly WorkloadEntry[]>;
  /** Every DestinationRule, in precedence order (see `destinationRulesByHost`). */
  readonly destinationRules: readonly DestinationRule[];
  /** Every VirtualService, in precedence order (creationTimestamp, then `namespace/name`). */
  readonly virtualServices: readonly VirtualService[];
  /** Every HTTPRoute, in precedence order (creationTimestamp, then `namespace/name`). */
  readonly httpRoutes: readonly HTTPRoute[];
  /** Every GRPCRoute, in precedence order (creationTimestamp, then `namespace/name`). */
  readonly grpcRoutes: readonly GRPCRoute[];
  /**
   * DestinationRules by `spec.host`, short names resolved to `<name>.<ns>.svc.cluster.local`
   * (`resolveShortHost`); wildcard hosts (`*.example.com`) are keys as written. Each list is
   * sorted oldest first (creationTimestamp; a missing one counts as oldest), then by
   * `namespace/name`: Istio's precedence, the first rule for a host wins.
   */
  readonly destinationRulesByHost: ReadonlyMap<string, readonly DestinationRule[]>;
  /** VirtualServices by each of their `spec.hosts` (short names resolved), sorted as above. */
  readonly virtualServicesByHost: ReadonlyMap<string, readonly VirtualService[]>;
  /**
   * HTTPRoutes by each mesh host their parentRefs target (`routeTargetHosts`: Service,
   * ServiceEntry and Hostname parents; Gateway parents are not indexed), sorted as above.
   */
  readonly httpRoutesByHost: ReadonlyMap<string, readonly HTTPRoute[]>;
  /** GRPCRoutes by each mesh host their parentRefs target, sorted as above. */
  readonly grpcRoutesByHost: ReadonlyMap<string, readonly GRPCRoute[]>;
  /** Every resource by its key `Kind/namespace/name` (`resourceKey`); iterates in key order. */
  readonly byKey: ReadonlyMap<string, MeshResource>;
  /** WorkloadEntries by namespace. */
  readonly workloadsByNamespace: ReadonlyMap<string, readonly WorkloadEntry[]>;
  /**
   * WorkloadEntries each ServiceEntry selects (its `workloadSelector`, in its own namespace), by the
   * ServiceEntry's `namespace/name`. A ServiceEntry without workloadSelector has no entry (its
   * inline `endpoints` are not WorkloadEntries; see `endpointsOfService`).
   */
  readonly workloadsByService: ReadonlyMap<string, readonly WorkloadEntry[]>;
  /** ServiceEntries whose workloadSelector selects each WorkloadEntry, by the WorkloadEntry's `namespace/name`. */
  readonly servicesByWorkload: ReadonlyMap<string, readonly ServiceEntry[]>;
  /** Sidecars by namespace. */
  readonly sidecarsByNamespace: ReadonlyMap<string, readonly Sidecar[]>;
  /** PeerAuthentications by namespace; the root namespace (`skiff-system`) holds the mesh-wide ones. */
  readonly peerAuthenticationsByNamespace: ReadonlyMap<string, readonly PeerAuthentication[]>;
  /**
   * AuthorizationPolicies by namespace, sorted by name; the root namespace holds the mesh-wide ones
   * (and those whose selector applies in every namespace).
   */
  readonly authorizationPoliciesByNamespace: ReadonlyMap<string, readonly AuthorizationPolicy[]>;
  /** RequestAuthentications by namespace, sorted by name; the root namespace holds the mesh-wide ones. */
  readonly requestAuthenticationsByNamespace: ReadonlyMap<string, readonly RequestAuthentication[]>;
}

/** What changed between two snapshots, by resource key `Kind/namespace/name`. */
export interface ChangeEvent {
  readonly from: number;
  readonly to: number;
  readonly changedKeys: ReadonlySet<string>;
  readonly changedKinds: ReadonlySet<string>;
}
