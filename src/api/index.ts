/**
 * The HTTP API (issue 4): {@link createApiApp} builds the hono app, {@link startApiServer} serves
 * it, `admin-tokens.ts` makes admin tokens, `auth.ts` holds the authorization checks the later
 * registration and health routes reuse.
 */
export { createApiApp, DEFAULT_MAX_BODY_BYTES } from './app.js';
export { startApiServer, type ApiServer, type ApiServerOptions, type ApiTlsOptions } from './server.js';
export type { ApiDeps, WorkloadHealth } from './deps.js';
export { ADMIN_TOKEN_FILE, ADMIN_TOKEN_PREFIX, createAdminToken, ensureInitialAdminToken, hashAdminToken, type CreatedAdminToken } from './admin-tokens.js';
export { actorOf, authorizeIdentity, requireAdmin, requireNamespace, visibleNamespaces, type Principal, type AdminPrincipal, type AgentPrincipal, type WorkloadIdentity } from './auth.js';
export { ApiError, PROBLEM_CONTENT_TYPE, type Problem, type FieldError } from './errors.js';
export { resolveKind, pluralOf, API_KINDS, KIND_SPELLINGS } from './kinds.js';
export { tokenInfo } from './tokens.js';
export { startControlPlaneApi, type ControlPlaneApiOptions } from './control-plane-api.js';
