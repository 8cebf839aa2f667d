/**
 * Turns a golden case's translated resources into a static Envoy bootstrap for `envoy --mode
 * validate`: the resources are decoded from the exact bytes a proxy would receive; RDS route
 * configurations are inlined with `validate_clusters` on (so Envoy checks every routed cluster
 * exists); EDS clusters become STATIC with their ClusterLoadAssignment inline; an `sds-grpc`
 * cluster (a Unix socket, as the node agent's bootstrap defines it) is added.
 */
import assert from 'node:assert/strict';
import { decodeAny, duration, TypeUrl } from '../../src/xds/protos/loader.js';
import { SDS_CLUSTER } from '../../src/translate/envoy/index.js';
import type { EnvoyCase } from './envoy-cases.js';

/** A decoded message in protobufjs JSON object form. */
export type Json = Record<string, unknown>;

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function decodedOf(c: EnvoyCase, typeUrl: string): Json[] {
  return [...(c.translation.resources.get(typeUrl)?.values() ?? [])].map((r) => decodeAny(r.resource));
}

/** The case's resources as a static `envoy.config.bootstrap.v3.Bootstrap` in protobufjs object form. */
export function staticBootstrap(c: EnvoyCase, sdsSocket: string): Json {
  const routes = new Map(decodedOf(c, TypeUrl.RouteConfiguration).map((r) => [r['name'] as string, r]));
  const assignments = new Map(decodedOf(c, TypeUrl.ClusterLoadAssignment).map((a) => [a['clusterName'] as string, a]));
  const listeners = decodedOf(c, TypeUrl.Listener);
  for (const l of listeners) {
    for (const chain of (l['filterChains'] ?? []) as Json[]) {
      for (const f of (chain['filters'] ?? []) as Json[]) {
        const cfg = f['typedConfig'] as Json;
        if (cfg['@type'] !== HCM_TYPE) continue;
        const rds = cfg['rds'] as Json | undefined;
        const rc = (rds ? routes.get(rds['routeConfigName'] as string) : (cfg['routeConfig'] as Json | undefined)) ?? undefined;
        assert.ok(rc, `listener ${String(l['name'])}: route configuration ${String(rds?.['routeConfigName'])} exists`);
        delete cfg['rds'];
        cfg['routeConfig'] = { ...rc, validateClusters: { value: true } };
      }
    }
  }
  const clusters = decodedOf(c, TypeUrl.Cluster).map((cl) => {
    if (cl['type'] !== 'EDS') return cl;
    const cla = assignments.get(cl['name'] as string);
    assert.ok(cla, `cluster ${String(cl['name'])}: ClusterLoadAssignment exists`);
    const { edsClusterConfig: _eds, ...rest } = cl;
    return { ...rest, type: 'STATIC', loadAssignment: cla };
  });
  clusters.push({
    name: SDS_CLUSTER,
    type: 'STATIC',
    connectTimeout: duration(1000),
    loadAssignment: { clusterName: SDS_CLUSTER, endpoints: [{ lbEndpoints: [{ endpoint: { address: { pipe: { path: sdsSocket } } } }] }] },
    typedExtensionProtocolOptions: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  });
  return {
    node: { id: c.ir.proxy.nodeId, cluster: 'skiff-validate' },
    // HBONE uses internal listeners; the agent's bootstrap enables the extension the same way.
    bootstrapExtensions: [{ name: 'envoy.bootstrap.internal_listener', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener' } }],
    staticResources: { listeners, clusters },
  };
}
