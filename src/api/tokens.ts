/**
 * Bootstrap token routes: `POST /v1/tokens` (issue), `GET /v1/tokens` (list, never the token
 * text), `DELETE /v1/tokens/{jti}` (revoke). Tokens go through the control plane's
 * `TokenAuthority`, whose state is the store, so tokens made here and by `skiff token create` on
 * the host are one set. A revocation is durable before the response; the CA refuses the token
 * from then on, and the control plane (subscribed to the store's revocations) closes the xDS
 * streams of proxies whose certificates descend from it.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { SpiffeIdError } from '../identity/spiffe.js';
import type { TokenRecord } from '../store/types.js';
import { actorOf, requireNamespace, visibleNamespaces, type ApiEnv } from './auth.js';
import type { ApiDeps } from './deps.js';
import { badRequest, notFound } from './errors.js';
import { problems, SECURITY } from './openapi-common.js';
import { CreatedTokenSchema, JtiParams, TokenCreateSchema, TokenInfoSchema, TokenListQuerySchema, TokenListSchema } from './schemas.js';

const createTokenRoute = createRoute({
  method: 'post',
  path: '/v1/tokens',
  tags: ['tokens'],
  summary: 'Issue a bootstrap token bound to one workload identity',
  security: SECURITY,
  request: { body: { required: true, content: { 'application/json': { schema: TokenCreateSchema } } } },
  responses: {
    201: { description: 'the token (shown once)', content: { 'application/json': { schema: CreatedTokenSchema } } },
    ...problems(400, 401, 403, 413, 415),
  },
});

const listTokensRoute = createRoute({
  method: 'get',
  path: '/v1/tokens',
  tags: ['tokens'],
  summary: 'List issued bootstrap tokens (never the token text)',
  security: SECURITY,
  request: { query: TokenListQuerySchema },
  responses: {
    200: { description: 'newest first', content: { 'application/json': { schema: TokenListSchema } } },
    ...problems(400, 401, 403),
  },
});

const revokeTokenRoute = createRoute({
  method: 'delete',
  path: '/v1/tokens/{jti}',
  tags: ['tokens'],
  summary: 'Revoke a bootstrap token: the CA refuses it and its certificates, their xDS streams are closed',
  security: SECURITY,
  request: { params: JtiParams },
  responses: {
    200: { description: 'revoked (also when it already was)', content: { 'application/json': { schema: TokenInfoSchema } } },
    ...problems(400, 401, 403, 404),
  },
});

/** The API view of a token record at time `now` (ms). */
export function tokenInfo(r: TokenRecord, now: number) {
  const status: 'active' | 'expired' | 'revoked' | 'used' = r.revokedAt ? 'revoked' : r.usedAt && r.singleUse ? 'used' : r.expiresAt.getTime() <= now ? 'expired' : 'active';
  return {
    jti: r.jti,
    spiffeId: r.spiffeId,
    namespace: r.namespace,
    serviceAccount: r.serviceAccount,
    ...(r.group !== undefined ? { workloadGroup: r.group } : {}),
    singleUse: r.singleUse,
    audiences: r.audiences,
    issuedAt: r.issuedAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    createdBy: r.createdBy,
    status,
    ...(r.revokedAt ? { revokedAt: r.revokedAt.toISOString() } : {}),
    ...(r.revokedBy !== undefined ? { revokedBy: r.revokedBy } : {}),
    ...(r.usedAt ? { usedAt: r.usedAt.toISOString() } : {}),
  };
}

/** Registers the token routes on `app`. */
export function registerTokenRoutes(app: OpenAPIHono<ApiEnv>, deps: ApiDeps): void {
  const now = deps.now ?? Date.now;

  app.openapi(createTokenRoute, async (c) => {
    const body = c.req.valid('json');
    const principal = c.get('principal');
    requireNamespace(principal, body.namespace);
    let created;
    try {
      created = await deps.tokens.create({
        namespace: body.namespace,
        serviceAccount: body.serviceAccount,
        ttlSeconds: body.ttlSeconds,
        singleUse: body.singleUse,
        ...(body.workloadGroup !== undefined ? { group: body.workloadGroup } : {}),
        ...(body.audience !== undefined ? { audience: body.audience } : {}),
        createdBy: actorOf(principal),
      });
    } catch (err) {
      if (err instanceof RangeError || err instanceof SpiffeIdError) {
        const path = /WorkloadGroup/.test(err.message) ? 'body.workloadGroup' : /TTL/.test(err.message) ? 'body.ttlSeconds' : 'body';
        throw badRequest(err.message, [{ path, message: err.message }]);
      }
      throw err;
    }
    const group = body.workloadGroup === undefined ? undefined : body.workloadGroup.includes('/') ? body.workloadGroup : `${body.namespace}/${body.workloadGroup}`;
    return c.json(
      { token: created.token, jti: created.jti, spiffeId: created.spiffeId, expiresAt: created.expiresAt.toISOString(), singleUse: body.singleUse, ...(group ? { workloadGroup: group } : {}) },
      201,
    );
  });

  app.openapi(listTokensRoute, async (c) => {
    const namespaces = visibleNamespaces(c.get('principal'), c.req.valid('query').namespace);
    const records = await deps.store.tokens.list(namespaces !== undefined ? { namespaces } : {});
    const t = now();
    return c.json({ items: records.map((r) => tokenInfo(r, t)) }, 200);
  });

  app.openapi(revokeTokenRoute, async (c) => {
    const { jti } = c.req.valid('param');
    const principal = c.get('principal');
    const record = await deps.store.tokens.get(jti);
    if (!record) throw notFound(`no token with jti ${jti} was issued by this control plane`);
    requireNamespace(principal, record.namespace);
    await deps.tokens.revoke(jti, record.expiresAt, actorOf(principal));
    const after = (await deps.store.tokens.get(jti)) ?? record;
    return c.json(tokenInfo(after, now()), 200);
  });
}
