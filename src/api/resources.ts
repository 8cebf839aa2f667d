/**
 * Resource routes: `POST /v1/apply`, `GET/PUT/DELETE /v1/namespaces/{namespace}/{kind}/{name}`
 * and `GET /v1/{kind}`. They serve the resources the store holds (written through the API, later
 * also auto-registered ones); `GET /v1/workloads` and `/v1/services` show every source.
 *
 * Optimistic concurrency: a body with `metadata.resourceVersion` (PUT, apply) or a DELETE with
 * `?resourceVersion=` is applied only if the stored object still has that version (else 409).
 * An apply is one store transaction: every document or none.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { resourceKey, type MeshKind, type MeshResource } from '../resources/types.js';
import { LabelSelectorError, parseLabelSelector } from '../store/label-selector.js';
import type { PutWrite } from '../store/types.js';
import { actorOf, requireAdmin, requireNamespace, visibleNamespaces, type ApiEnv } from './auth.js';
import type { ApiDeps } from './deps.js';
import { badRequest, forbidden, notFound } from './errors.js';
import { resolveKind } from './kinds.js';
import { problems, SECURITY } from './openapi-common.js';
import {
  checkMeshReferences,
  checkNotOwnedElsewhere,
  checkResourceMediaType,
  declaresNamespace,
  elsewhereHint,
  meshWarnings,
  parseResourceBody,
  warningHeaders,
  warningList,
  wireForm,
} from './resource-body.js';
import { ApplyResultSchema, DeleteQuerySchema, KindParams, ListQuerySchema, ObjectParams, RESOURCE_REF, ResourceListSchema } from './schemas.js';

const RESOURCE_BODY = {
  required: true,
  description: 'YAML or JSON; validated like files (errors name the field path and line)',
  content: {
    'application/yaml': { schema: { type: 'string' as const, description: 'one or more YAML documents' } },
    'application/json': { schema: RESOURCE_REF },
  },
};

const applyRoute = createRoute({
  method: 'post',
  path: '/v1/apply',
  tags: ['resources'],
  summary: 'Create or update every resource of a multi-document YAML or JSON body, all or nothing',
  security: SECURITY,
  request: {
    body: {
      ...RESOURCE_BODY,
      content: {
        'application/yaml': { schema: { type: 'string' as const, description: 'YAML documents separated by ---, a list, or a kind: List' } },
        'application/json': { schema: { oneOf: [RESOURCE_REF, { type: 'array' as const, items: RESOURCE_REF }] } },
      },
    },
  },
  responses: {
    200: { description: 'every document was applied', content: { 'application/json': { schema: ApplyResultSchema } } },
    ...problems(400, 401, 403, 409, 413, 415),
  },
});

const getRoute = createRoute({
  method: 'get',
  path: '/v1/namespaces/{namespace}/{kind}/{name}',
  tags: ['resources'],
  summary: 'Read one resource',
  security: SECURITY,
  request: { params: ObjectParams },
  responses: {
    200: { description: 'the resource, with metadata.resourceVersion', content: { 'application/json': { schema: RESOURCE_REF } } },
    ...problems(400, 401, 403, 404),
  },
});

const putRoute = createRoute({
  method: 'put',
  path: '/v1/namespaces/{namespace}/{kind}/{name}',
  tags: ['resources'],
  summary: 'Create or replace one resource (with metadata.resourceVersion: only if unchanged since)',
  security: SECURITY,
  request: { params: ObjectParams, body: RESOURCE_BODY },
  responses: {
    200: { description: 'replaced (or unchanged)', content: { 'application/json': { schema: RESOURCE_REF } } },
    201: { description: 'created', content: { 'application/json': { schema: RESOURCE_REF } } },
    ...problems(400, 401, 403, 404, 409, 413, 415),
  },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v1/namespaces/{namespace}/{kind}/{name}',
  tags: ['resources'],
  summary: 'Delete one resource',
  security: SECURITY,
  request: { params: ObjectParams, query: DeleteQuerySchema },
  responses: {
    200: { description: 'deleted; the body is its last state', content: { 'application/json': { schema: RESOURCE_REF } } },
    ...problems(400, 401, 403, 404, 409),
  },
});

const listRoute = createRoute({
  method: 'get',
  path: '/v1/{kind}',
  tags: ['resources'],
  summary: 'List resources of a kind, by namespace and label selector, in pages',
  security: SECURITY,
  request: { params: KindParams, query: ListQuerySchema },
  responses: {
    200: { description: 'a page of resources', content: { 'application/json': { schema: ResourceListSchema } } },
    ...problems(400, 401, 403, 404),
  },
});

function kindOf(name: string): MeshKind {
  const kind = resolveKind(name);
  if (!kind) throw notFound(`unknown kind "${name}"`);
  return kind;
}

/**
 * A JSON response with `Warning` headers. Typed `never` for @hono/zod-openapi: its typed responses
 * cannot express the `$ref` resource bodies and repeated headers these routes send.
 */
function json(c: Context<ApiEnv>, body: unknown, status: 200 | 201, warnings: string[] = []): never {
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/json', ...(warnings.length > 0 ? { warning: warnings } : {}) }) as never;
}

/** Registers the resource routes on `app`. Register them after every static `/v1/<name>` route. */
export function registerResourceRoutes(app: OpenAPIHono<ApiEnv>, deps: ApiDeps): void {
  const { store, registry } = deps;

  app.openapi(applyRoute, async (c) => {
    checkResourceMediaType(c.req.header('content-type'));
    const principal = c.get('principal');
    const body = parseResourceBody(await c.req.text());
    const admin = requireAdmin(principal);
    const outside = [...new Set(body.resources.map((r) => r.metadata.namespace))].filter((ns) => admin.namespaces !== undefined && !admin.namespaces.includes(ns));
    if (outside.length > 0) {
      throw forbidden(`admin token ${admin.tokenId} is scoped to namespaces ${admin.namespaces?.join(', ') ?? ''}; the body writes to ${outside.join(', ')}; nothing was applied`);
    }
    const snapshot = registry.current();
    checkNotOwnedElsewhere(snapshot, body.resources.map(resourceKey));
    checkMeshReferences(body, snapshot);
    const warnings = meshWarnings(body, snapshot);
    const writes: PutWrite[] = body.resources.map((resource) => ({
      op: 'put',
      resource,
      ...(resource.metadata.resourceVersion !== undefined ? { expectedVersion: resource.metadata.resourceVersion } : {}),
    }));
    const result = await store.resources.write(writes, actorOf(principal));
    return json(
      c,
      {
        resourceVersion: String(result.revision),
        items: result.outcomes.map((o) => ({ kind: o.kind, namespace: o.namespace, name: o.name, action: o.action, resourceVersion: o.resourceVersion })),
        warnings: warningList(warnings),
      },
      200,
      warningHeaders(warnings),
    );
  });

  app.openapi(getRoute, async (c) => {
    const { namespace, kind: kindName, name } = c.req.valid('param');
    const kind = kindOf(kindName);
    requireNamespace(c.get('principal'), namespace);
    const r = await store.resources.get(kind, namespace, name);
    if (!r) throw notFound(`${kind} ${namespace}/${name} not found${elsewhereHint(registry.current(), `${kind}/${namespace}/${name}`)}`);
    return json(c, wireForm(r), 200);
  });

  app.openapi(putRoute, async (c) => {
    const { namespace, kind: kindName, name } = c.req.valid('param');
    const kind = kindOf(kindName);
    const principal = c.get('principal');
    requireNamespace(principal, namespace);
    checkResourceMediaType(c.req.header('content-type'));
    const text = await c.req.text();
    const body = parseResourceBody(text);
    if (body.resources.length !== 1) throw badRequest(`PUT takes exactly one resource; the body holds ${body.resources.length} (use POST /v1/apply for several)`);
    const resource = body.resources[0] as MeshResource;
    const at = (path: string[]) => {
      const line = body.locate(resource, path);
      return line ? { line } : {};
    };
    if (resource.kind !== kind) throw badRequest(`the body is a ${resource.kind}, the URL names ${kind}`, [{ path: 'kind', message: `expected ${kind}, got "${resource.kind}"`, ...at(['kind']) }]);
    if (resource.metadata.name !== name) {
      throw badRequest(`the body names ${resource.metadata.name}, the URL ${name}`, [{ path: 'metadata.name', message: `expected "${name}" (from the URL), got "${resource.metadata.name}"`, ...at(['metadata', 'name']) }]);
    }
    if (resource.metadata.namespace !== namespace) {
      if (declaresNamespace(text)) {
        throw badRequest(`the body is in namespace ${resource.metadata.namespace}, the URL in ${namespace}`, [
          { path: 'metadata.namespace', message: `expected "${namespace}" (from the URL), got "${resource.metadata.namespace}"`, ...at(['metadata', 'namespace']) },
        ]);
      }
      resource.metadata.namespace = namespace;
    }
    const snapshot = registry.current();
    checkNotOwnedElsewhere(snapshot, [resourceKey(resource)]);
    checkMeshReferences(body, snapshot);
    const warnings = meshWarnings(body, snapshot);
    const expected = resource.metadata.resourceVersion;
    const result = await store.resources.write([{ op: 'put', resource, ...(expected !== undefined ? { expectedVersion: expected } : {}) }], actorOf(principal));
    const outcome = result.outcomes[0]!;
    return json(c, wireForm(outcome.object), outcome.action === 'created' ? 201 : 200, warningHeaders(warnings));
  });

  app.openapi(deleteRoute, async (c) => {
    const { namespace, kind: kindName, name } = c.req.valid('param');
    const { resourceVersion } = c.req.valid('query');
    const kind = kindOf(kindName);
    const principal = c.get('principal');
    requireNamespace(principal, namespace);
    const key = `${kind}/${namespace}/${name}`;
    const existing = await store.resources.get(kind, namespace, name);
    if (!existing) {
      checkNotOwnedElsewhere(registry.current(), [key]);
      throw notFound(`${kind} ${namespace}/${name} not found`);
    }
    const result = await store.resources.write(
      [{ op: 'delete', kind, namespace, name, ...(resourceVersion !== undefined ? { expectedVersion: resourceVersion } : {}) }],
      actorOf(principal),
    );
    return json(c, wireForm(result.outcomes[0]!.object), 200);
  });

  app.openapi(listRoute, async (c) => {
    const kind = kindOf(c.req.valid('param').kind);
    const q = c.req.valid('query');
    const namespaces = visibleNamespaces(c.get('principal'), q.namespace);
    let labelSelector;
    try {
      labelSelector = q.labelSelector !== undefined ? parseLabelSelector(q.labelSelector) : undefined;
    } catch (err) {
      if (err instanceof LabelSelectorError) throw badRequest(err.message, [{ path: 'query.labelSelector', message: err.message }]);
      throw err;
    }
    const page = await store.resources.list({
      kind,
      ...(namespaces !== undefined ? { namespaces } : {}),
      ...(labelSelector !== undefined ? { labelSelector } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      ...(q.continue !== undefined ? { continue: q.continue } : {}),
    });
    return json(
      c,
      { kind: 'List', metadata: { resourceVersion: String(page.revision), ...(page.continue !== undefined ? { continue: page.continue } : {}) }, items: page.items.map(wireForm) },
      200,
    );
  });
}
