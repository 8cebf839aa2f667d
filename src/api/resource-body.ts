/**
 * Reading resources from a request body: multi-document YAML or JSON, parsed and validated exactly
 * as the file source does (`parseResources` + `validateResourceSet`), with every error carrying
 * its JSON path and body line. Also the wire form of stored objects and conflict checks against
 * the other registry sources.
 */
import { parseAllDocuments } from 'yaml';
import { formatIssue } from '../resources/issues.js';
import { parseResources } from '../resources/parse.js';
import { ROOT_NAMESPACE, resourceKey, type MeshResource, type ResourceIssue } from '../resources/types.js';
import { lintPolicies } from '../policy/index.js';
import { validateResourceSet } from '../resources/validate.js';
import type { MeshSnapshot } from '../registry/types.js';
import { ApiError, conflict, type FieldError } from './errors.js';

/** The `file` of issues found in a request body. */
export const REQUEST_BODY = 'request body';

/** Media types a resource body may have (or none). */
const RESOURCE_MEDIA_TYPES = /^(application\/(json|yaml|x-yaml|merge-patch\+json)|text\/(yaml|x-yaml|plain))(\s*;.*)?$/i;

/** Throws 415 unless `contentType` is YAML, JSON, plain text or absent. */
export function checkResourceMediaType(contentType: string | undefined): void {
  if (contentType === undefined || contentType.trim() === '') return;
  if (!RESOURCE_MEDIA_TYPES.test(contentType.trim())) {
    throw new ApiError(415, 'unsupported-media-type', `content-type ${contentType} is not accepted: send application/yaml or application/json`);
  }
}

function fieldErrors(issues: readonly ResourceIssue[]): FieldError[] {
  return issues.map((i) => ({ path: i.path, message: i.message, ...(i.line > 0 ? { line: i.line } : {}) }));
}

/** Resources of a body and the warnings found while parsing them. */
export interface ParsedBody {
  resources: MeshResource[];
  warnings: ResourceIssue[];
  locate: ReturnType<typeof parseResources>['locate'];
}

/**
 * Parses a body into resources (origin `api`). Throws a 400 `invalid-resources` {@link ApiError}
 * listing every error (bad YAML, unknown kind, schema errors with path and line, a resource
 * defined twice), or for a body without any resource.
 */
export function parseResourceBody(text: string): ParsedBody {
  const parsed = parseResources(text, REQUEST_BODY, { source: 'api' });
  const set = validateResourceSet(parsed.resources, parsed.locate);
  const errors = [...parsed.errors, ...set.errors];
  if (errors.length > 0) {
    const detail = errors.length === 1 ? formatIssue(errors[0]!) : `${errors.length} errors in the request body; see errors`;
    throw new ApiError(400, 'invalid-resources', detail, fieldErrors(errors));
  }
  if (parsed.resources.length === 0) throw new ApiError(400, 'invalid-resources', 'the request body holds no resource');
  return { resources: parsed.resources, warnings: parsed.warnings, locate: parsed.locate };
}

/** True when the body's first document sets `metadata.namespace`. */
export function declaresNamespace(text: string): boolean {
  const doc = parseAllDocuments(text);
  const first = Array.isArray(doc) ? doc[0] : undefined;
  const value = first?.getIn(['metadata', 'namespace']);
  return value !== undefined && value !== null;
}

/**
 * Set-level warnings about `incoming` as part of the whole mesh: the registry's resources with the
 * incoming ones replacing theirs (a ServiceEntry selecting no workload, a Sidecar egress host
 * naming no service...). Only warnings about the incoming resources are returned, and only the
 * registry resources those checks look at are passed along (WorkloadEntries in the namespaces of
 * incoming ServiceEntries; ServiceEntries and Sidecars when Sidecars come in; for the policy lint,
 * see `policyLintContext`), so a write costs what it touches, not the size of the mesh.
 */
export function meshWarnings(incoming: ParsedBody, snapshot: MeshSnapshot): ResourceIssue[] {
  const keys = new Set(incoming.resources.map(resourceKey));
  const seNamespaces = new Set(incoming.resources.filter((r) => r.kind === 'ServiceEntry').map((r) => r.metadata.namespace));
  const sidecarNamespaces = new Set(incoming.resources.filter((r) => r.kind === 'Sidecar').map((r) => r.metadata.namespace));
  const context: MeshResource[] = [];
  for (const ns of seNamespaces) context.push(...(snapshot.workloadsByNamespace.get(ns) ?? []));
  if (sidecarNamespaces.size > 0) {
    context.push(...snapshot.serviceEntries);
    for (const ns of sidecarNamespaces) context.push(...(snapshot.sidecarsByNamespace.get(ns) ?? []));
  }
  const merged = [...context.filter((r) => !keys.has(resourceKey(r))), ...incoming.resources];
  const { warnings } = validateResourceSet(merged, incoming.locate);
  // Istio's translation warnings for security policies (HTTP-only fields on TCP ports, CUSTOM
  // providers, ...) against the workloads they would apply to — the same as `skiff policy lint`.
  const policyWarnings = incoming.resources.some((r) => r.kind === 'AuthorizationPolicy' || r.kind === 'RequestAuthentication')
    ? lintPolicies([...policyLintContext(incoming, snapshot).filter((r) => !keys.has(resourceKey(r))), ...incoming.resources], { rootNamespace: ROOT_NAMESPACE, locate: incoming.locate })
    : [];
  return [...incoming.warnings, ...[...warnings, ...policyWarnings].filter((w) => w.file === REQUEST_BODY)];
}

/**
 * The registry resources `lintPolicies` needs for its findings about the incoming resources (the
 * only ones reported): a policy applies to the WorkloadEntries of its own namespace (all of them
 * when it is in the root namespace), whose inbound ports come from the Sidecars of their namespace
 * and the root namespace and the ServiceEntries of their namespace; an incoming WorkloadEntry is
 * checked against the CUSTOM policies of its namespace and the root namespace. So: the
 * WorkloadEntries, ServiceEntries, Sidecars and AuthorizationPolicies of the namespaces the
 * incoming resources are in, and the root namespace's Sidecars and AuthorizationPolicies — or the
 * whole mesh when an incoming policy is mesh-wide. Findings about other resources are not
 * reported, so leaving them out changes nothing, and a write costs what it touches (linting every
 * workload of an 11,000-resource mesh took seconds).
 */
function policyLintContext(incoming: ParsedBody, snapshot: MeshSnapshot): readonly MeshResource[] {
  const namespaces = new Set(incoming.resources.map((r) => r.metadata.namespace));
  if (namespaces.has(ROOT_NAMESPACE)) return snapshot.resources;
  const context: MeshResource[] = [];
  for (const ns of namespaces) {
    context.push(...(snapshot.workloadsByNamespace.get(ns) ?? []), ...(snapshot.sidecarsByNamespace.get(ns) ?? []), ...(snapshot.authorizationPoliciesByNamespace.get(ns) ?? []));
  }
  context.push(...snapshot.serviceEntries.filter((se) => namespaces.has(se.metadata.namespace)));
  context.push(...(snapshot.sidecarsByNamespace.get(ROOT_NAMESPACE) ?? []), ...(snapshot.authorizationPoliciesByNamespace.get(ROOT_NAMESPACE) ?? []));
  return context;
}

/** Kinds whose references (destination hosts, subsets, ports, parentRefs) are checked against the mesh. */
const TRAFFIC_KINDS: ReadonlySet<string> = new Set(['DestinationRule', 'VirtualService', 'HTTPRoute', 'GRPCRoute', 'ServiceEntry']);

/**
 * Checks the references of incoming traffic resources against the whole mesh (the registry's
 * ServiceEntries and DestinationRules, with the incoming resources replacing theirs): a VirtualService or HTTPRoute destination
 * host no ServiceEntry defines, a subset no DestinationRule defines, a port the service lacks.
 * A body alone cannot be checked this way (its ServiceEntry may live in a file or Consul). Throws a
 * 422 `invalid-references` {@link ApiError} listing each error with path and line; nothing is
 * written then, so the last good configuration keeps serving.
 */
export function checkMeshReferences(incoming: ParsedBody, snapshot: MeshSnapshot): void {
  if (!incoming.resources.some((r) => TRAFFIC_KINDS.has(r.kind))) return;
  const keys = new Set(incoming.resources.map(resourceKey));
  // Errors about the incoming resources (the only ones reported) depend on the mesh's
  // ServiceEntries (hosts, ports, ServiceEntry parentRefs) and DestinationRules (subsets) only;
  // the 10,000 WorkloadEntries of a large mesh are not looked at, so they are not passed.
  const context: MeshResource[] = [...snapshot.serviceEntries, ...snapshot.destinationRules];
  const merged = [...context.filter((r) => !keys.has(resourceKey(r))), ...incoming.resources];
  const { errors } = validateResourceSet(merged, incoming.locate, { references: true });
  const own = errors.filter((e) => e.file === REQUEST_BODY);
  if (own.length === 0) return;
  const detail = own.length === 1 ? formatIssue(own[0]!) : `${own.length} references in the request body do not resolve; see errors`;
  throw new ApiError(422, 'invalid-references', `${detail}; nothing was applied`, fieldErrors(own));
}

/** Warnings as field errors (path, message, line). */
export function warningList(warnings: readonly ResourceIssue[]): FieldError[] {
  return fieldErrors(warnings);
}

/** `Warning` header values (RFC 7234 §5.5 form Kubernetes uses: `299 - "text"`). */
export function warningHeaders(warnings: readonly ResourceIssue[]): string[] {
  return warnings.slice(0, 20).map((w) => `299 - ${JSON.stringify(formatIssue(w).replace(/[^\x20-\x7e]/g, '?'))}`);
}

/** Where a resource of another source is defined, for messages. */
function describeOrigin(r: MeshResource): string {
  const o = r.origin;
  if (!o) return 'another source';
  if (o.file) return `the ${o.source} source (${o.line ? `${o.file}:${o.line}` : o.file})`;
  return `the ${o.source} source`;
}

/**
 * Throws 409 when a key is already defined by a source other than the store (files, Consul):
 * that source would win in the registry, so the API write could never take effect.
 */
export function checkNotOwnedElsewhere(snapshot: MeshSnapshot, keys: Iterable<string>): void {
  for (const key of keys) {
    const existing = snapshot.byKey.get(key);
    const source = existing?.origin?.source;
    if (existing && source !== undefined && source !== 'api' && source !== 'auto-registration') {
      throw conflict(`${key} is defined by ${describeOrigin(existing)}; change it there (the API manages only resources it created)`);
    }
  }
}

/** A hint for a 404 when the object exists in another source. */
export function elsewhereHint(snapshot: MeshSnapshot, key: string): string {
  const existing = snapshot.byKey.get(key);
  const source = existing?.origin?.source;
  if (!existing || source === 'api' || source === 'auto-registration') return '';
  return ` (it is defined by ${describeOrigin(existing)}; GET /v1/workloads and /v1/services show every source)`;
}

/** The wire form of a stored object: no `origin` (not part of the resource shape). */
export function wireForm(r: MeshResource): MeshResource {
  const { origin: _origin, ...rest } = r;
  return rest;
}
