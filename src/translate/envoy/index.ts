/**
 * The Envoy translator: a pure function from a proxy's IR to its xDS resources (Listener,
 * RouteConfiguration, Cluster, ClusterLoadAssignment), each encoded once as `Any` with a content
 * hash version (DESIGN.md §1, §6). Resource names follow Istio.
 */
import type { ProxyIR } from '../../ir/types.js';
import { TypeUrl } from '../../xds/protos/loader.js';
import type { ResourcesByType, VersionedResource } from '../../xds/types.js';
import { externalCluster, inboundCluster, outboundCluster } from './clusters.js';
import { versioned } from './common.js';
import { clusterLoadAssignment } from './endpoints.js';
import { connectOriginate, hboneClusterNames, hboneInbound, withHboneTransportMatch } from './hbone.js';
import { inboundListener, outboundListener } from './listeners.js';
import type { Listener } from './envoy-types.js';
import { POLICY_MODULES, type EnvoyPolicyModule } from './policies/index.js';
import { outboundRouteConfiguration } from './routes.js';

/** What {@link translateEnvoy} returns. */
export interface EnvoyTranslation {
  /** By type URL (all four types always present, possibly empty), then by resource name. */
  resources: ResourcesByType;
  /**
   * Names other resources need, by type URL: every EDS cluster's ClusterLoadAssignment and every
   * listener's RDS RouteConfiguration (checked by the snapshot cache before publishing).
   */
  references: Map<string, Set<string>>;
  /** What the translator could not honour, one sentence each. */
  warnings: string[];
}

/**
 * Translates `ir` (which should pass `validate()`) into Envoy resources. `modules` defaults to
 * {@link POLICY_MODULES}; they run in ascending `order`. Throws `UnknownFieldError` if a builder
 * produced a field the Envoy proto lacks (a bug, caught by the golden tests), or an `Error` when
 * the IR is inconsistent in a way that cannot be rendered.
 */
export function translateEnvoy(ir: ProxyIR, modules: readonly EnvoyPolicyModule[] = POLICY_MODULES): EnvoyTranslation {
  const warnings: string[] = [];
  const warn = (m: string): void => {
    if (!warnings.includes(m)) warnings.push(m);
  };
  const ordered = [...modules].sort((a, b) => a.order - b.order);
  const listeners = new Map<string, VersionedResource>();
  const routes = new Map<string, VersionedResource>();
  const clusters = new Map<string, VersionedResource>();
  const endpoints = new Map<string, VersionedResource>();
  const edsNames = new Set<string>();
  const rdsNames = new Set<string>();

  const put = (map: Map<string, VersionedResource>, typeUrl: string, name: string, message: object): void => {
    if (map.has(name)) throw new Error(`duplicate ${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)} ${name}`);
    map.set(name, versioned(typeUrl, name, message));
  };

  const inboundObjects = new Map<string, Listener>();
  for (const l of ir.inbound) {
    const rendered = inboundListener(l, ir, ordered, warn);
    inboundObjects.set(l.name, rendered);
    put(listeners, TypeUrl.Listener, l.name, rendered);
  }
  // HBONE (hbone.ts): termination in front of the inbound ports, tunnels to HBONE endpoints.
  const hbone = hboneInbound(ir, inboundObjects);
  for (const l of hbone.listeners) put(listeners, TypeUrl.Listener, l.name, l);
  for (const c of hbone.clusters) put(clusters, TypeUrl.Cluster, c.name, c);
  const tunnelled = hboneClusterNames(ir.loadAssignments);
  const clusterIrs = new Map(ir.clusters.map((c) => [c.name, c]));
  for (const l of ir.outbound) {
    put(listeners, TypeUrl.Listener, l.name, outboundListener(l));
    if (l.protocol === 'HTTP' && l.routeConfig) {
      rdsNames.add(l.routeConfig.name);
      put(routes, TypeUrl.RouteConfiguration, l.routeConfig.name, outboundRouteConfiguration(l.routeConfig, clusterIrs));
    }
  }
  for (const c of ir.clusters) {
    if (c.direction === 'inbound') {
      put(clusters, TypeUrl.Cluster, c.name, inboundCluster(c));
    } else if (c.direction === 'external') {
      put(clusters, TypeUrl.Cluster, c.name, externalCluster(c));
    } else {
      edsNames.add(c.name);
      if (tunnelled.has(c.name)) {
        put(clusters, TypeUrl.Cluster, c.name, withHboneTransportMatch(outboundCluster(c, ir.proxy)));
        const origin = connectOriginate(c, ir);
        put(listeners, TypeUrl.Listener, origin.listener.name, origin.listener);
        put(clusters, TypeUrl.Cluster, origin.cluster.name, origin.cluster);
      } else {
        put(clusters, TypeUrl.Cluster, c.name, outboundCluster(c, ir.proxy));
      }
    }
  }
  for (const la of ir.loadAssignments) put(endpoints, TypeUrl.ClusterLoadAssignment, la.clusterName, clusterLoadAssignment(la));

  return {
    resources: new Map([
      [TypeUrl.Listener, listeners],
      [TypeUrl.RouteConfiguration, routes],
      [TypeUrl.Cluster, clusters],
      [TypeUrl.ClusterLoadAssignment, endpoints],
    ]),
    references: new Map([
      [TypeUrl.ClusterLoadAssignment, edsNames],
      [TypeUrl.RouteConfiguration, rdsNames],
    ]),
    warnings,
  };
}

export { POLICY_MODULES, emptySlots, slotFilters, type EnvoyPolicyModule, type FilterSlots, type InboundChainDraft, type InboundListenerDraft } from './policies/index.js';
export { rbacPolicyOf, stringMatcher, headerMatcher, quoteMeta, localizePrincipals, matchNothing, JWT_PAYLOAD_KEY, type RuleContext, type RuleResult } from './policies/rbac-model.js';
export { rbacPolicyName, BAD_CUSTOM_SUFFIX, DRY_RUN_STAT_PREFIX, TCP_RBAC_STAT_PREFIX } from './policies/authorization-policy.js';
export { jwtAuthnFilter, SPACE_DELIMITED_CLAIMS } from './policies/request-authentication.js';
export { EXT_AUTHZ_MATCH_PREFIX, EXT_AUTHZ_SHADOW_STAT_PREFIX } from './policies/ext-authz.js';
export { SDS_CLUSTER, SECRET_CERTIFICATE, SECRET_ROOT_CA, INBOUND_ALPN, upstreamAlpn } from './tls.js';
