/**
 * The HTTP API (DESIGN.md §1 `api/`, issue 4 §1) as a hono app built with @hono/zod-openapi:
 * every route is declared with its zod schemas, which both validate the request and generate the
 * OpenAPI 3.1 document served at `GET /openapi.json` (no authentication needed to read it).
 *
 * Everything under `/v1/` is authenticated (`auth.ts`) and limited to `maxBodyBytes` per request
 * body (413 beyond). Every error is `application/problem+json`, rendered in one place
 * (`errors.ts`). Health and readiness stay on the monitoring port (DESIGN.md §5).
 *
 * Route order matters for hono: the static `/v1/<name>` routes are registered before the
 * `/v1/{kind}` list route so that, e.g., `/v1/tokens` is never read as a kind.
 */
import { createRoute, OpenAPIHono, type z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { formatPath } from '../resources/issues.js';
import { actorOf, authenticate, type ApiEnv } from './auth.js';
import type { ApiDeps } from './deps.js';
import { ApiError, badRequest, notFound, problemResponse, type FieldError } from './errors.js';
import { problems, SECURITY } from './openapi-common.js';
import { registerResourceRoutes } from './resources.js';
import { ResourceSchema, WhoamiSchema } from './schemas.js';
import { registerTokenRoutes } from './tokens.js';
import { registerViewRoutes } from './views.js';
import { registerWatchRoute } from './watch.js';

/** Default request body limit: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const TARGET_PREFIX: Record<string, string> = { json: 'body', query: 'query', param: 'path', header: 'header', cookie: 'cookie', form: 'body' };

/** A zod validation failure of a request part as a 400 with one error per field. */
function validationError(error: z.ZodError, target: string): ApiError {
  const prefix = TARGET_PREFIX[target] ?? target;
  const errors: FieldError[] = [];
  for (const iss of error.issues) {
    const segments = iss.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) errors.push({ path: formatPath([prefix, ...segments, key]), message: `unknown field "${key}"` });
    } else {
      errors.push({ path: formatPath([prefix, ...segments]), message: iss.message });
    }
  }
  const first = errors[0];
  return badRequest(errors.length === 1 && first ? `${first.path}: ${first.message}` : `invalid ${prefix}: ${errors.length} errors`, errors);
}

const openApiRoute = createRoute({
  method: 'get',
  path: '/openapi.json',
  tags: ['meta'],
  summary: 'This OpenAPI 3.1 document',
  responses: { 200: { description: 'the document', content: { 'application/json': { schema: { type: 'object' as const } } } } },
});

const whoamiRoute = createRoute({
  method: 'get',
  path: '/v1/whoami',
  tags: ['meta'],
  summary: 'Who the credentials of this request are',
  security: SECURITY,
  responses: {
    200: { description: 'the authenticated caller', content: { 'application/json': { schema: WhoamiSchema } } },
    ...problems(401),
  },
});

/** Builds the API app. Serve it with `startApiServer` (`server.ts`). */
export function createApiApp(deps: ApiDeps): OpenAPIHono<ApiEnv> {
  const app = new OpenAPIHono<ApiEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });
  app.onError((err) => problemResponse(err, deps.logger));
  app.notFound((c) => problemResponse(notFound(`no route ${c.req.method} ${c.req.path}`)));

  app.openAPIRegistry.registerComponent('securitySchemes', 'adminToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'An admin token (`skiff admin-token create`, or the one printed on first start); may be scoped to namespaces',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'svid', {
    type: 'mutualTLS',
    description: "A node agent's X.509-SVID as TLS client certificate (HTTPS listener only); it may act only for its own identity",
  });
  app.openAPIRegistry.register('Resource', ResourceSchema);

  app.openapi(openApiRoute, (c) =>
    c.json(
      // Typed `never`: the document's own type is not a zod schema.
      app.getOpenAPI31Document({
        openapi: '3.1.0',
        info: {
          title: 'Skiff API',
          version: '1',
          description: 'Resources (Istio shapes) in the durable store, the merged registry view, and bootstrap tokens. Errors are RFC 9457 problem details.',
        },
      }) as never,
      200,
    ),
  );

  const maxSize = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize,
      onError: () => {
        throw new ApiError(413, 'body-too-large', `the request body is larger than ${maxSize} bytes`);
      },
    }),
  );
  app.use('/v1/*', authenticate({ adminTokens: deps.store.adminTokens, ...(deps.mtls ? { mtls: deps.mtls } : {}) }));

  app.openapi(whoamiRoute, (c) => {
    const p = c.get('principal');
    return c.json(
      p.kind === 'admin'
        ? { kind: 'admin' as const, actor: actorOf(p), ...(p.namespaces ? { namespaces: [...p.namespaces] } : {}) }
        : { kind: 'agent' as const, actor: actorOf(p), spiffeId: p.spiffeId },
      200,
    );
  });
  registerViewRoutes(app, deps);
  registerTokenRoutes(app, deps);
  registerWatchRoute(app, deps);
  registerResourceRoutes(app, deps);
  return app;
}
