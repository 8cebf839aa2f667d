/**
 * `GET /v1/workloads` and `GET /v1/services`: the merged registry view of every source (files,
 * the API store, Consul, auto-registration), each item naming its `source` (from
 * `origin.source`) and, for workloads and endpoints, its health. Read from the registry's current
 * snapshot, so they show exactly what the proxies are being configured from.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { spiffeId as makeSpiffeId } from '../identity/spiffe.js';
import { endpointsOfService } from '../registry/endpoints.js';
import { isHealthy, type MeshResource, type WorkloadEntry } from '../resources/types.js';
import { visibleNamespaces, type ApiEnv } from './auth.js';
import type { ApiDeps, WorkloadHealth } from './deps.js';
import { problems, SECURITY } from './openapi-common.js';
import { ServiceListSchema, ViewQuerySchema, WorkloadListSchema } from './schemas.js';

const workloadsRoute = createRoute({
  method: 'get',
  path: '/v1/workloads',
  tags: ['registry'],
  summary: 'Every workload of every source, with its source and health',
  security: SECURITY,
  request: { query: ViewQuerySchema },
  responses: {
    200: { description: 'the merged view', content: { 'application/json': { schema: WorkloadListSchema } } },
    ...problems(400, 401, 403),
  },
});

const servicesRoute = createRoute({
  method: 'get',
  path: '/v1/services',
  tags: ['registry'],
  summary: 'Every service of every source, with its endpoints and their health',
  security: SECURITY,
  request: { query: ViewQuerySchema },
  responses: {
    200: { description: 'the merged view', content: { 'application/json': { schema: ServiceListSchema } } },
    ...problems(400, 401, 403),
  },
});

type Source = 'file' | 'api' | 'consul' | 'auto-registration';

function sourceOf(r: MeshResource): Source {
  return r.origin?.source ?? 'file';
}

function locationOf(r: MeshResource): { location?: string } {
  const o = r.origin;
  if (!o?.file) return {};
  return { location: o.line ? `${o.file}:${o.line}` : o.file };
}

function versionOf(r: MeshResource): { resourceVersion?: string } {
  return r.metadata.resourceVersion !== undefined ? { resourceVersion: r.metadata.resourceVersion } : {};
}

function spiffeIdOf(trustDomain: string | undefined, we: WorkloadEntry): { spiffeId?: string } {
  if (!trustDomain) return {};
  try {
    return { spiffeId: makeSpiffeId(trustDomain, we.metadata.namespace, we.spec.serviceAccount || 'default') };
  } catch {
    return {};
  }
}

/** Registers the two views on `app`. */
export function registerViewRoutes(app: OpenAPIHono<ApiEnv>, deps: ApiDeps): void {
  // Istio's WorkloadEntry health condition (agents' probes, Consul checks): False → unhealthy.
  const health = deps.health ?? ((we: WorkloadEntry): WorkloadHealth => (isHealthy(we) ? 'healthy' : 'unhealthy'));
  const trustDomain = deps.mtls?.trustDomain;
  const inScope = (namespaces: readonly string[] | undefined, ns: string) => namespaces === undefined || namespaces.includes(ns);

  app.openapi(workloadsRoute, (c) => {
    const namespaces = visibleNamespaces(c.get('principal'), c.req.valid('query').namespace);
    const snapshot = deps.registry.current();
    const items = snapshot.workloadEntries
      .filter((we) => inScope(namespaces, we.metadata.namespace))
      .map((we) => ({
        namespace: we.metadata.namespace,
        name: we.metadata.name,
        ...(we.spec.address !== undefined ? { address: we.spec.address } : {}),
        serviceAccount: we.spec.serviceAccount || 'default',
        ...spiffeIdOf(trustDomain, we),
        labels: { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) },
        ports: we.spec.ports ?? {},
        ...(we.spec.network !== undefined ? { network: we.spec.network } : {}),
        ...(we.spec.locality !== undefined ? { locality: we.spec.locality } : {}),
        ...(we.spec.weight !== undefined ? { weight: we.spec.weight } : {}),
        source: sourceOf(we),
        ...locationOf(we),
        ...versionOf(we),
        health: health(we),
      }));
    return c.json({ registryVersion: snapshot.version, items }, 200);
  });

  app.openapi(servicesRoute, (c) => {
    const namespaces = visibleNamespaces(c.get('principal'), c.req.valid('query').namespace);
    const snapshot = deps.registry.current();
    const items = snapshot.serviceEntries
      .filter((se) => inScope(namespaces, se.metadata.namespace))
      .map((se) => ({
        namespace: se.metadata.namespace,
        name: se.metadata.name,
        hosts: se.spec.hosts,
        ports: (se.spec.ports ?? []).map((p) => ({ name: p.name, number: p.number, ...(p.protocol !== undefined ? { protocol: p.protocol } : {}) })),
        source: sourceOf(se),
        ...locationOf(se),
        ...versionOf(se),
        endpoints: endpointsOfService(snapshot, se).map((ep) => ({
          address: ep.address,
          ...(ep.workloadEntry ? { workload: `${ep.workloadEntry.metadata.namespace}/${ep.workloadEntry.metadata.name}` } : {}),
          health: ep.workloadEntry ? health(ep.workloadEntry) : ('healthy' as const),
        })),
      }));
    return c.json({ registryVersion: snapshot.version, items }, 200);
  });
}
