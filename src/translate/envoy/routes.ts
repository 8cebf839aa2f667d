/**
 * Route configurations (envoy/config/route/v3/route.proto): the RDS ones of outbound HTTP listeners
 * and the inline one of each inbound HTTP listener. Every route matches `/` and goes to one
 * cluster with no route timeout (Istio's default: no timeout unless a VirtualService sets one).
 */
import type { InboundListenerIR, RouteConfigIR } from '../../ir/types.js';
import { duration } from '../../xds/protos/loader.js';
import type { RouteConfiguration, VirtualHost } from './envoy-types.js';

function vhost(name: string, domains: string[], cluster: string): VirtualHost {
  return { name, domains, routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: duration(0) } }] };
}

/**
 * The RouteConfiguration served over RDS for an outbound HTTP listener: one virtual host per
 * service. `validateClusters` is off so a route that briefly names a cluster Envoy has not yet
 * received does not NACK the whole configuration (Istio does the same).
 */
export function outboundRouteConfiguration(rc: RouteConfigIR): RouteConfiguration {
  return {
    name: rc.name,
    virtualHosts: rc.virtualHosts.map((vh) => vhost(vh.name, vh.domains, vh.cluster)),
    validateClusters: { value: false },
  };
}

/**
 * The inline route configuration of an inbound HTTP listener (Istio's names): `inbound|<port>||`
 * with the one virtual host `inbound|http|<port>` matching every Host, to the inbound cluster.
 */
export function inboundRouteConfiguration(l: InboundListenerIR): RouteConfiguration {
  return {
    name: l.cluster,
    virtualHosts: [vhost(`inbound|http|${l.port}`, ['*'], l.cluster)],
    validateClusters: { value: false },
  };
}
