/**
 * The zod schemas of the HTTP API: they validate requests (through @hono/zod-openapi) and the
 * OpenAPI 3.1 document at `/openapi.json` is generated from them. Resource bodies are validated by
 * `parseResources` with the kinds' own zod schemas (`src/resources/schemas.ts`, so errors carry
 * the body's line numbers as the file source's do); those same schemas are published as the
 * `WorkloadEntry`, `ServiceEntry`, ... components that the resource routes reference.
 */
import { z } from '@hono/zod-openapi';
import { MAX_TOKEN_TTL_SECONDS } from '../identity/tokens.js';
import { isDns1123Label, isDns1123Subdomain } from '../resources/names.js';
import { KIND_SCHEMAS } from '../resources/schemas.js';
import { API_KINDS, KIND_SPELLINGS } from './kinds.js';

/** One field-level problem. */
export const FieldErrorSchema = z
  .object({
    path: z.string().openapi({ description: 'JSON path of the offending field, e.g. spec.ports[0].number or query.limit', example: 'spec.ports[0].number' }),
    message: z.string(),
    line: z.number().int().optional().openapi({ description: '1-based line in the request body (YAML/JSON bodies)' }),
  })
  .openapi('FieldError');

/** RFC 9457 problem details (every error response). */
export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'https://skiff.dev/problems/conflict' }),
    title: z.string().openapi({ example: 'Conflict' }),
    status: z.number().int().openapi({ example: 409 }),
    detail: z.string(),
    errors: z.array(FieldErrorSchema).optional(),
  })
  .openapi('Problem');

/** The resource kinds as OpenAPI components, generated from the schemas that validate them. */
export const KIND_COMPONENTS = API_KINDS.map((kind) => KIND_SCHEMAS[kind].schema.openapi(kind));

/** Any resource: one of the kinds. */
export const ResourceSchema = z.union(KIND_COMPONENTS as unknown as [z.ZodTypeAny, z.ZodTypeAny, ...z.ZodTypeAny[]]).openapi('Resource', {
  description: 'A mesh resource in the Istio shape (apiVersion, kind, metadata, spec)',
});

/** `$ref` to {@link ResourceSchema}, for bodies validated by `parseResources` instead of a zod validator. */
export const RESOURCE_REF = { $ref: '#/components/schemas/Resource' } as const;

const KIND_DESCRIPTION = `a kind (any case), its lower-case plural or short name: ${KIND_SPELLINGS.join(', ')}`;

const namespaceParam = z
  .string()
  .refine(isDns1123Label, 'must be a lower-case DNS-1123 label')
  .openapi({ param: { name: 'namespace', in: 'path' }, example: 'shop' });
const kindParam = z.string().min(1).openapi({ param: { name: 'kind', in: 'path' }, description: KIND_DESCRIPTION, example: 'workloadentries' });
const nameParam = z
  .string()
  .refine(isDns1123Subdomain, 'must be a lower-case DNS-1123 subdomain')
  .openapi({ param: { name: 'name', in: 'path' }, example: 'web-1' });

/** Path of one resource. */
export const ObjectParams = z.object({ namespace: namespaceParam, kind: kindParam, name: nameParam });
/** Path of a kind. */
export const KindParams = z.object({ kind: kindParam });

const revisionString = z.string().regex(/^\d+$/, 'must be a resourceVersion (a decimal number)');

/** `GET /v1/{kind}` query. */
export const ListQuerySchema = z.object({
  namespace: z.string().refine(isDns1123Label, 'must be a lower-case DNS-1123 label').optional().openapi({ description: 'only this namespace' }),
  labelSelector: z.string().optional().openapi({ description: 'Kubernetes label selector on metadata.labels, e.g. app=web,tier!=db', example: 'app=web' }),
  limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ description: 'page size (1-1000); default: everything' }),
  continue: z.string().optional().openapi({ description: 'the continue value of the previous page' }),
});

/** `DELETE` query: an optional precondition. */
export const DeleteQuerySchema = z.object({
  resourceVersion: revisionString.optional().openapi({ description: 'delete only if the object still has this resourceVersion (else 409)' }),
});

/** `GET /v1/watch` query. */
export const WatchQuerySchema = z.object({
  resourceVersion: revisionString.optional().openapi({
    description: 'send changes after this resourceVersion; without it, every current object is sent as ADDED, then a BOOKMARK, then changes',
  }),
  kind: z.string().optional().openapi({ description: KIND_DESCRIPTION }),
  namespace: z.string().refine(isDns1123Label, 'must be a lower-case DNS-1123 label').optional(),
});

/** `GET /v1/workloads` and `/v1/services` query. */
export const ViewQuerySchema = z.object({
  namespace: z.string().refine(isDns1123Label, 'must be a lower-case DNS-1123 label').optional(),
});

/** A list of resources. */
export const ResourceListSchema = z
  .object({
    kind: z.literal('List'),
    metadata: z.object({ resourceVersion: z.string(), continue: z.string().optional() }),
    items: z.array(ResourceSchema),
  })
  .openapi('ResourceList');

/** What `POST /v1/apply` did. */
export const ApplyResultSchema = z
  .object({
    resourceVersion: z.string().openapi({ description: 'the store revision after the apply' }),
    items: z.array(
      z.object({
        kind: z.string(),
        namespace: z.string(),
        name: z.string(),
        action: z.enum(['created', 'updated', 'unchanged']),
        resourceVersion: z.string(),
      }),
    ),
    warnings: z.array(FieldErrorSchema),
  })
  .openapi('ApplyResult');

/** `POST /v1/tokens` body. */
export const TokenCreateSchema = z
  .strictObject({
    namespace: z.string().refine(isDns1123Label, 'must be a lower-case DNS-1123 label').openapi({ example: 'shop' }),
    serviceAccount: z.string().refine(isDns1123Subdomain, 'must be a lower-case DNS-1123 subdomain').openapi({ example: 'web' }),
    workloadGroup: z.string().optional().openapi({ description: 'bind the token to a WorkloadGroup: <name> or <namespace>/<name> (in the token namespace)' }),
    ttlSeconds: z.number().int().min(1).max(MAX_TOKEN_TTL_SECONDS).default(3600).openapi({ description: 'lifetime in seconds (default 3600, at most 30 days)' }),
    singleUse: z.boolean().default(false).openapi({ description: 'the CA accepts the token once' }),
    audience: z.string().min(1).optional().openapi({ description: 'aud claim (default skiff-ca)' }),
  })
  .openapi('TokenCreateRequest');

/** A newly created bootstrap token (the only time the token text is returned). */
export const CreatedTokenSchema = z
  .object({
    token: z.string().openapi({ description: 'the JWT; a secret, shown once' }),
    jti: z.string(),
    spiffeId: z.string(),
    expiresAt: z.string(),
    singleUse: z.boolean(),
    workloadGroup: z.string().optional(),
  })
  .openapi('CreatedToken');

/** A recorded bootstrap token (never the token text). */
export const TokenInfoSchema = z
  .object({
    jti: z.string(),
    spiffeId: z.string(),
    namespace: z.string(),
    serviceAccount: z.string(),
    workloadGroup: z.string().optional(),
    singleUse: z.boolean(),
    audiences: z.array(z.string()),
    issuedAt: z.string(),
    expiresAt: z.string(),
    createdBy: z.string(),
    status: z.enum(['active', 'expired', 'revoked', 'used']),
    revokedAt: z.string().optional(),
    revokedBy: z.string().optional(),
    usedAt: z.string().optional(),
  })
  .openapi('TokenInfo');

/** `GET /v1/tokens`. */
export const TokenListSchema = z.object({ items: z.array(TokenInfoSchema) }).openapi('TokenList');

/** `GET /v1/tokens` query. */
export const TokenListQuerySchema = z.object({
  namespace: z.string().refine(isDns1123Label, 'must be a lower-case DNS-1123 label').optional(),
});

/** `DELETE /v1/tokens/{jti}` path. */
export const JtiParams = z.object({
  jti: z
    .string()
    .regex(/^[A-Za-z0-9_-]{16,64}$/, 'must be a token jti (16-64 base64url characters)')
    .openapi({ param: { name: 'jti', in: 'path' } }),
});

/** Where a registry item came from. */
const SourceSchema = z.enum(['file', 'api', 'consul', 'auto-registration']);
/** Health of a workload. */
export const HealthSchema = z.enum(['healthy', 'unhealthy', 'unknown']);

/** One workload of the merged registry view. */
export const WorkloadViewSchema = z
  .object({
    namespace: z.string(),
    name: z.string(),
    address: z.string().optional(),
    serviceAccount: z.string(),
    spiffeId: z.string().optional(),
    labels: z.record(z.string(), z.string()),
    ports: z.record(z.string(), z.number()),
    network: z.string().optional(),
    locality: z.string().optional(),
    weight: z.number().optional(),
    source: SourceSchema,
    location: z.string().optional().openapi({ description: 'file:line for file resources' }),
    resourceVersion: z.string().optional(),
    health: HealthSchema,
  })
  .openapi('WorkloadView');

/** One service of the merged registry view. */
export const ServiceViewSchema = z
  .object({
    namespace: z.string(),
    name: z.string(),
    hosts: z.array(z.string()),
    ports: z.array(z.object({ name: z.string(), number: z.number(), protocol: z.string().optional() })),
    source: SourceSchema,
    location: z.string().optional(),
    resourceVersion: z.string().optional(),
    endpoints: z.array(
      z.object({
        address: z.string(),
        workload: z.string().optional().openapi({ description: 'namespace/name of the WorkloadEntry; absent for inline endpoints' }),
        health: HealthSchema,
      }),
    ),
  })
  .openapi('ServiceView');

/** `GET /v1/workloads`. */
export const WorkloadListSchema = z.object({ registryVersion: z.number().int(), items: z.array(WorkloadViewSchema) }).openapi('WorkloadList');
/** `GET /v1/services`. */
export const ServiceListSchema = z.object({ registryVersion: z.number().int(), items: z.array(ServiceViewSchema) }).openapi('ServiceList');

/** `GET /v1/whoami`. */
export const WhoamiSchema = z
  .object({
    kind: z.enum(['admin', 'agent']),
    actor: z.string().openapi({ description: 'how the caller appears in the audit log' }),
    namespaces: z.array(z.string()).optional().openapi({ description: 'admin tokens scoped to namespaces' }),
    spiffeId: z.string().optional(),
  })
  .openapi('Whoami');
