/**
 * The control plane's mesh config: the subset of Istio's `MeshConfig`
 * (https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/) Skiff reads, with the same
 * field names, so the `mesh` section of an Istio install can be copied over:
 *
 * ```yaml
 * rootNamespace: skiff-system        # default skiff-system
 * trustDomain: cluster.local         # default: the control plane's trust domain
 * trustDomainAliases: [old.example]
 * extensionProviders:
 * - name: my-ext-authz
 *   envoyExtAuthzHttp:
 *     service: ext-authz.security.svc.cluster.local   # [<namespace>/]<host>
 *     port: 8000
 *     includeRequestHeadersInCheck: [x-user]
 * - name: my-grpc-authz
 *   envoyExtAuthzGrpc: {service: 10.0.0.7, port: 9000, timeout: 0.5s}
 * ```
 *
 * Only the ext_authz providers (`envoyExtAuthzHttp`, `envoyExtAuthzGrpc`) are supported: they back
 * AuthorizationPolicy `action: CUSTOM` (`provider.name`). A provider's `service` is, as in Istio,
 * `[<namespace>/]<hostname>` naming a mesh service (a ServiceEntry host); on VMs it may also be an
 * IP address literal (Istio's validation accepts one too) for an authorizer outside the mesh.
 *
 * Validation follows Istio's `ValidateExtensionProviderEnvoyExtAuthzHTTP`/`...GRPC`
 * (`pkg/config/validation/agent/extensionprovider.go`): service and port required, `statusOnError`
 * an HTTP status Envoy knows, `pathPrefix` starting with `/`. The file is strict: an unknown
 * field is an error naming file, line and path.
 */
import { promises as fs } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { describeValue, formatPath, type PathSegment } from './issues.js';
import { fqdnProblem, isDns1123Label, isIpAddress } from './names.js';
import { errorMap, schemaIssues } from './parse.js';
import { checkedString, fail, portNumberSchema } from './schema-common.js';
import { durationSchema } from './security-schemas.js';
import { ROOT_NAMESPACE, type ResourceIssue } from './types.js';
import { lineOfPath } from './yaml-lines.js';

/** Istio `EnvoyExternalAuthorizationRequestBody`. */
export interface ExtAuthzRequestBody {
  maxRequestBytes?: number;
  allowPartialMessage?: boolean;
  packAsBytes?: boolean;
}

/** Istio `MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider`. */
export interface EnvoyExtAuthzHttpProvider {
  /** `[<namespace>/]<hostname>` of a mesh service, or an IP address. */
  service: string;
  port: number;
  /** Path prefix for the check request (`/check` + original path). */
  pathPrefix?: string;
  /** Go-style duration (`0.5s`, `600s`); Istio's default is 600 s. */
  timeout?: string;
  includeRequestHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  headersToDownstreamOnAllow?: string[];
  failOpen?: boolean;
  /** HTTP status sent when the authorizer cannot be reached; Istio's default `403`. */
  statusOnError?: string;
  clearRouteCache?: boolean;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
  /** Deprecated in Istio: read as `includeRequestHeadersInCheck`. */
  includeHeadersInCheck?: string[];
}

/** Istio `MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider`. */
export interface EnvoyExtAuthzGrpcProvider {
  service: string;
  port: number;
  timeout?: string;
  failOpen?: boolean;
  statusOnError?: string;
  clearRouteCache?: boolean;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
}

/** Istio `MeshConfig.ExtensionProvider` (ext_authz kinds only); exactly one kind is set. */
export interface ExtensionProvider {
  name: string;
  envoyExtAuthzHttp?: EnvoyExtAuthzHttpProvider;
  envoyExtAuthzGrpc?: EnvoyExtAuthzGrpcProvider;
}

/** The mesh config Skiff reads. */
export interface MeshConfig {
  /** Policies in this namespace apply mesh-wide; default `skiff-system`. */
  rootNamespace: string;
  trustDomain?: string;
  /** Trust domains treated as the local one in AuthorizationPolicy principals. */
  trustDomainAliases?: string[];
  extensionProviders: ExtensionProvider[];
}

/** The mesh config used when no file is given. */
export const DEFAULT_MESH_CONFIG: Readonly<MeshConfig> = Object.freeze({ rootNamespace: ROOT_NAMESPACE, extensionProviders: [] });

/** Result of {@link loadMeshConfig}: the config is {@link DEFAULT_MESH_CONFIG} when `errors` is not empty. */
export interface MeshConfigLoadResult {
  config: MeshConfig;
  errors: ResourceIssue[];
  warnings: ResourceIssue[];
}

/** The HTTP statuses Envoy's `envoy.type.v3.StatusCode` names (besides 0, "Empty"). */
const ENVOY_STATUS_CODES = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409,
  410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/** Problem with a provider `service` (Istio `validateExtensionProviderService`). */
export function providerServiceProblem(service: string): string | undefined {
  if (service === '') return 'service must not be empty';
  const parts = service.split('/');
  if (parts.length === 1) {
    if (isIpAddress(service) || fqdnProblem(service) === undefined) return undefined;
    return `invalid service ${describeValue(service)}: expected [<namespace>/]<hostname> or an IP address`;
  }
  const [ns = '', host = ''] = parts;
  if (parts.length !== 2 || !isDns1123Label(ns) || (fqdnProblem(host) !== undefined && !isIpAddress(host))) {
    return `invalid service ${describeValue(service)}: expected [<namespace>/]<hostname> or an IP address`;
  }
  return undefined;
}

const serviceSchema = checkedString(providerServiceProblem);
const statusOnErrorSchema = checkedString((v) =>
  v === '' || (/^[0-9]{3}$/.test(v) && ENVOY_STATUS_CODES.has(Number(v))) ? undefined : `unsupported statusOnError ${describeValue(v)}: expected an HTTP status such as "403" or "503"`,
);
const headerListSchema = z.array(checkedString((v) => (v === '' ? 'empty value not allowed' : undefined)));
const requestBodySchema = z.strictObject({
  maxRequestBytes: z.number().int().min(0).max(4294967295).optional(),
  allowPartialMessage: z.boolean().optional(),
  packAsBytes: z.boolean().optional(),
});

const httpProviderSchema = z.strictObject({
  service: serviceSchema,
  port: portNumberSchema,
  pathPrefix: checkedString((v) => (v === '' || v.startsWith('/') ? undefined : `pathPrefix should begin with "/", got ${describeValue(v)}`)).optional(),
  timeout: durationSchema.optional(),
  includeRequestHeadersInCheck: headerListSchema.optional(),
  includeAdditionalHeadersInCheck: z.record(z.string(), z.string()).optional(),
  headersToUpstreamOnAllow: headerListSchema.optional(),
  headersToDownstreamOnDeny: headerListSchema.optional(),
  headersToDownstreamOnAllow: headerListSchema.optional(),
  failOpen: z.boolean().optional(),
  statusOnError: statusOnErrorSchema.optional(),
  clearRouteCache: z.boolean().optional(),
  includeRequestBodyInCheck: requestBodySchema.optional(),
  includeHeadersInCheck: headerListSchema.optional(),
});

const grpcProviderSchema = z.strictObject({
  service: serviceSchema,
  port: portNumberSchema,
  timeout: durationSchema.optional(),
  failOpen: z.boolean().optional(),
  statusOnError: statusOnErrorSchema.optional(),
  clearRouteCache: z.boolean().optional(),
  includeRequestBodyInCheck: requestBodySchema.optional(),
});

/** Istio's other provider kinds: named in the error so a copied Istio config gets a clear message. */
const OTHER_PROVIDER_KINDS = [
  'zipkin',
  'lightstep',
  'datadog',
  'stackdriver',
  'opencensus',
  'skywalking',
  'opentelemetry',
  'prometheus',
  'envoyFileAccessLog',
  'envoyHttpAls',
  'envoyTcpAls',
  'envoyOtelAls',
  'sds',
];

const providerSchema = z
  .object({
    name: checkedString((v) => (v === '' ? 'name must not be empty' : undefined)),
    envoyExtAuthzHttp: httpProviderSchema.optional(),
    envoyExtAuthzGrpc: grpcProviderSchema.optional(),
  })
  .catchall(z.unknown())
  .superRefine((p, ctx) => {
    for (const key of Object.keys(p)) {
      if (key === 'name' || key === 'envoyExtAuthzHttp' || key === 'envoyExtAuthzGrpc') continue;
      fail(
        ctx,
        [key],
        OTHER_PROVIDER_KINDS.includes(key)
          ? `extension provider kind "${key}" is not supported (Skiff supports envoyExtAuthzHttp and envoyExtAuthzGrpc)`
          : `unknown field "${key}"`,
      );
    }
    const kinds = (p.envoyExtAuthzHttp ? 1 : 0) + (p.envoyExtAuthzGrpc ? 1 : 0);
    if (kinds === 0 && Object.keys(p).length === 1) fail(ctx, [], 'an extension provider needs envoyExtAuthzHttp or envoyExtAuthzGrpc');
    if (kinds > 1) fail(ctx, ['envoyExtAuthzGrpc'], 'only one of envoyExtAuthzHttp or envoyExtAuthzGrpc may be set');
  })
  .transform((p): ExtensionProvider => {
    const out: ExtensionProvider = { name: p.name };
    if (p.envoyExtAuthzHttp) out.envoyExtAuthzHttp = p.envoyExtAuthzHttp;
    if (p.envoyExtAuthzGrpc) out.envoyExtAuthzGrpc = p.envoyExtAuthzGrpc;
    return out;
  });

const meshConfigSchema = z
  .strictObject({
    rootNamespace: checkedString((v) => (isDns1123Label(v) ? undefined : `invalid rootNamespace ${describeValue(v)}: must be a DNS-1123 label`)).default(ROOT_NAMESPACE),
    trustDomain: checkedString((v) => (v !== '' && !v.includes('/') && !v.includes(':') ? undefined : `invalid trustDomain ${describeValue(v)}`)).optional(),
    trustDomainAliases: z.array(checkedString((v) => (v !== '' && !v.includes('/') ? undefined : `invalid trust domain alias ${describeValue(v)}`))).optional(),
    extensionProviders: z.array(providerSchema).default([]),
  })
  .superRefine((mc, ctx) => {
    const seen = new Map<string, number>();
    mc.extensionProviders.forEach((p, i) => {
      const first = seen.get(p.name);
      if (first !== undefined) fail(ctx, ['extensionProviders', i, 'name'], `extension provider "${p.name}" is already defined by extensionProviders[${first}]`);
      else seen.set(p.name, i);
    });
  });

// The parsed shape must be MeshConfig (a mismatch fails type checking here).
const _mcCheck: z.ZodType<MeshConfig, unknown> = meshConfigSchema;

/** Warnings for a valid config: fields parsed but not implemented, deprecated fields. */
function meshConfigWarnings(config: MeshConfig): { path: PathSegment[]; message: string }[] {
  const out: { path: PathSegment[]; message: string }[] = [];
  config.extensionProviders.forEach((p, i) => {
    const kind = p.envoyExtAuthzHttp ? 'envoyExtAuthzHttp' : 'envoyExtAuthzGrpc';
    const spec = p.envoyExtAuthzHttp ?? p.envoyExtAuthzGrpc;
    const at: PathSegment[] = ['extensionProviders', i, kind];
    if (spec?.includeRequestBodyInCheck !== undefined) out.push({ path: [...at, 'includeRequestBodyInCheck'], message: 'includeRequestBodyInCheck is not implemented yet: the body is not sent to the authorizer' });
    if (spec?.clearRouteCache !== undefined) out.push({ path: [...at, 'clearRouteCache'], message: 'clearRouteCache is not implemented yet' });
    if (p.envoyExtAuthzHttp?.headersToDownstreamOnAllow !== undefined) {
      out.push({ path: [...at, 'headersToDownstreamOnAllow'], message: 'headersToDownstreamOnAllow is not implemented yet' });
    }
    if (p.envoyExtAuthzHttp?.includeHeadersInCheck !== undefined) {
      out.push({ path: [...at, 'includeHeadersInCheck'], message: 'includeHeadersInCheck is deprecated (Istio): use includeRequestHeadersInCheck; it is read as such' });
    }
  });
  return out;
}

/**
 * Parses mesh config text (YAML or JSON; `file` names it in messages). An empty document is the
 * default config. Never throws; on any error `config` is {@link DEFAULT_MESH_CONFIG}.
 */
export function parseMeshConfig(text: string, file: string): MeshConfigLoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const errors: ResourceIssue[] = [];
  const warnings: ResourceIssue[] = [];
  const at = (path: PathSegment[], message: string): ResourceIssue => ({ file, line: lineOfPath(doc, lineCounter, path), path: formatPath(path), message });
  const fallback = (): MeshConfigLoadResult => ({ config: { ...DEFAULT_MESH_CONFIG, extensionProviders: [] }, errors, warnings });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) errors.push({ file, line: e.linePos?.[0].line ?? 0, path: '', message: `invalid YAML: ${e.message.split('\n')[0] ?? e.message}` });
    return fallback();
  }
  const data: unknown = doc.toJS() ?? {};
  const result = meshConfigSchema.safeParse(data, { error: errorMap });
  if (!result.success) {
    for (const iss of schemaIssues(result.error)) errors.push(at(iss.path, iss.message));
    return fallback();
  }
  const config = result.data;
  for (const w of meshConfigWarnings(config)) warnings.push(at(w.path, w.message));
  for (const p of config.extensionProviders) {
    const http = p.envoyExtAuthzHttp;
    if (http?.includeHeadersInCheck !== undefined && http.includeRequestHeadersInCheck === undefined) {
      http.includeRequestHeadersInCheck = http.includeHeadersInCheck;
    }
  }
  return { config, errors, warnings };
}

/**
 * Reads and parses a mesh config file (see {@link parseMeshConfig}). A missing or unreadable file
 * is an error in the result, never a rejection.
 */
export async function loadMeshConfig(file: string): Promise<MeshConfigLoadResult> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    return { config: { ...DEFAULT_MESH_CONFIG, extensionProviders: [] }, errors: [{ file, line: 0, path: '', message: `cannot read mesh config: ${why}` }], warnings: [] };
  }
  return parseMeshConfig(text, file);
}

/** The extension provider named `name`, or undefined. */
export function findExtensionProvider(config: Pick<MeshConfig, 'extensionProviders'>, name: string): ExtensionProvider | undefined {
  return config.extensionProviders.find((p) => p.name === name);
}
