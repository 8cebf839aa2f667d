/**
 * Parses multi-document YAML (or JSON) text into validated mesh resources, with every error and
 * warning located by file, line and JSON path (DESIGN.md §3):
 *
 *   mesh/payments.yaml:14 spec.ports[0].number: expected integer 1-65535, got "http"
 *
 * YAML is read with the `yaml` library (YAML 1.2 core schema, duplicate keys are errors), so JSON
 * input works too. A document may hold one resource, an array of resources, or a Kubernetes
 * `kind: List` with `items`. Empty documents are skipped. Each resource is checked by its kind's
 * zod schema (`schemas.ts`); a resource with any error is left out of `resources`.
 */
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { z } from 'zod';
import { DRY_RUN_ANNOTATION } from './authz-attributes.js';
import { describeValue, formatPath, type PathSegment, type ResourceLocator } from './issues.js';
import { KIND_SCHEMAS, PLANNED_KINDS } from './schemas.js';
import type { MeshKind, MeshResource, ResourceIssue, ResourceOrigin } from './types.js';
import { resourceWarnings } from './warnings.js';
import { lineOfPath } from './yaml-lines.js';

export { formatIssue } from './issues.js';

export type { ResourceLocator } from './issues.js';

/** What {@link parseResources} found. */
export interface ParseResult {
  /** Valid resources in document order, each with `origin` set. */
  resources: MeshResource[];
  warnings: ResourceIssue[];
  errors: ResourceIssue[];
  /** Locates a path inside one of `resources` (for set-level checks in `validate.ts`). */
  locate: ResourceLocator;
}

/** Options for {@link parseResources}. */
export interface ParseOrigin {
  /** Put on each resource's `origin.source`; default `file`. */
  source?: ResourceOrigin['source'];
}

const KIND_NAMES = Object.keys(KIND_SCHEMAS).join(', ');

function isMeshKind(kind: string): kind is MeshKind {
  return Object.hasOwn(KIND_SCHEMAS, kind);
}

/** The `expected` of a zod type issue in the words of a message. */
function expectedName(expected: string): string {
  if (expected === 'int') return 'integer';
  if (expected === 'record') return 'object';
  return expected;
}

/** Message for a zod issue, in Skiff's wording (`expected X, got Y`); pass it as `safeParse`'s `error`. */
export const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined
        ? `required field is missing (expected ${expectedName(iss.expected)})`
        : `expected ${expectedName(iss.expected)}, got ${describeValue(iss.input)}`;
    case 'invalid_value':
      return `expected ${iss.values.map((v) => String(v)).join('|')}, got ${describeValue(iss.input)}`;
    case 'too_small':
      return `expected ${iss.origin === 'array' ? 'at least' : '>='} ${String(iss.minimum)}, got ${describeValue(iss.input)}`;
    case 'too_big':
      return `expected ${iss.origin === 'array' ? 'at most' : '<='} ${String(iss.maximum)}, got ${describeValue(iss.input)}`;
    default:
      return undefined;
  }
};

/** Fields Kubernetes fills in on the server: a hint helps when YAML was exported with `kubectl get -o yaml`. */
const SERVER_POPULATED = new Set(['status', 'uid', 'generation', 'managedFields', 'selfLink', 'ownerReferences', 'finalizers', 'generateName', 'deletionTimestamp', 'deletionGracePeriodSeconds']);

function unknownFieldMessage(key: string, parent: readonly PathSegment[]): string {
  const last = parent[parent.length - 1];
  const topLevel = parent.length === 0 || typeof last === 'number' || last === 'items';
  const serverField = (topLevel && key === 'status') || (last === 'metadata' && SERVER_POPULATED.has(key));
  return serverField ? `unknown field "${key}" (filled in by a Kubernetes API server; remove it)` : `unknown field "${key}"`;
}

/**
 * The issues of a failed zod parse (made with {@link errorMap}) as located messages: one per issue,
 * one per unknown key, paths prefixed with `base`.
 */
export function schemaIssues(error: z.ZodError, base: readonly PathSegment[] = []): { path: PathSegment[]; message: string }[] {
  const out: { path: PathSegment[]; message: string }[] = [];
  for (const iss of error.issues) {
    const path = [...base, ...iss.path.filter((s): s is string | number => typeof s !== 'symbol')];
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) out.push({ path: [...path, key], message: unknownFieldMessage(key, path) });
    } else if (iss.code === 'invalid_key') {
      out.push({ path, message: iss.issues.map((i) => i.message).join('; ') });
    } else {
      out.push({ path, message: iss.message });
    }
  }
  return out;
}

/** Turns the first line of a `yaml` library error message into ours, without its code frame. */
function yamlMessage(message: string): string {
  return (message.split(/ at line \d+, column \d+/)[0] ?? message).trim();
}

/**
 * Parses `text` (the content of `file`) into resources. Never throws: every problem becomes an
 * entry in `errors` (with line and JSON path) or `warnings`.
 */
export function parseResources(text: string, file: string, origin: ParseOrigin = {}): ParseResult {
  const source = origin.source ?? 'file';
  const lineCounter = new LineCounter();
  const resources: MeshResource[] = [];
  const warnings: ResourceIssue[] = [];
  const errors: ResourceIssue[] = [];
  const where = new Map<MeshResource, { doc: Document; base: PathSegment[] }>();
  const locate: ResourceLocator = (resource, path) => {
    const w = where.get(resource);
    return w ? lineOfPath(w.doc, lineCounter, [...w.base, ...path]) : undefined;
  };

  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: true });
  const docs = Array.isArray(parsed) ? parsed : [];
  for (const doc of docs) {
    for (const w of doc.warnings) {
      warnings.push({ file, line: w.linePos?.[0].line ?? 0, path: '', message: yamlMessage(w.message) });
    }
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        errors.push({ file, line: e.linePos?.[0].line ?? 0, path: '', message: `invalid YAML: ${yamlMessage(e.message)}` });
      }
      continue;
    }
    const issueAt = (list: ResourceIssue[], path: PathSegment[], message: string): void => {
      list.push({ file, line: lineOfPath(doc, lineCounter, path), path: formatPath(path), message });
    };
    let data: unknown;
    try {
      data = doc.toJS();
    } catch (err) {
      issueAt(errors, [], `invalid YAML: ${(err as Error).message}`);
      continue;
    }
    if (data === null || data === undefined) continue;

    const items: { value: unknown; base: PathSegment[] }[] = [];
    if (Array.isArray(data)) {
      data.forEach((value: unknown, i) => items.push({ value, base: [i] }));
    } else if (isObject(data) && data['kind'] === 'List' && Array.isArray(data['items'])) {
      (data['items'] as unknown[]).forEach((value, i) => items.push({ value, base: ['items', i] }));
    } else {
      items.push({ value: data, base: [] });
    }

    for (const { value, base } of items) {
      if (!isObject(value)) {
        issueAt(errors, base, `expected a resource (an object with apiVersion, kind, metadata and spec), got ${describeValue(value)}`);
        continue;
      }
      const kind = value['kind'];
      if (typeof kind !== 'string' || kind === '') {
        issueAt(errors, [...base, 'kind'], kind === undefined ? `kind is required (one of ${KIND_NAMES})` : `expected a kind, got ${describeValue(kind)}`);
        continue;
      }
      if (!isMeshKind(kind)) {
        const why = PLANNED_KINDS.has(kind) ? `kind "${kind}" is not supported yet` : `unknown kind "${kind}"`;
        issueAt(errors, [...base, 'kind'], `${why} (supported: ${KIND_NAMES})`);
        continue;
      }
      const { apiVersions, schema } = KIND_SCHEMAS[kind];
      const apiVersion = value['apiVersion'];
      if (typeof apiVersion !== 'string' || !apiVersions.includes(apiVersion)) {
        const expected = `expected ${apiVersions.join(', ')}`;
        issueAt(
          errors,
          [...base, 'apiVersion'],
          apiVersion === undefined
            ? `apiVersion is required for kind ${kind} (${expected})`
            : `apiVersion ${describeValue(apiVersion)} is not supported for kind ${kind} (${expected})`,
        );
        continue;
      }
      const result = schema.safeParse(value, { error: errorMap });
      if (!result.success) {
        for (const iss of schemaIssues(result.error, base)) issueAt(errors, iss.path, iss.message);
        continue;
      }
      if (kind !== 'AuthorizationPolicy' && result.data.metadata.annotations?.[DRY_RUN_ANNOTATION] !== undefined) {
        // Istio `checkDryRunAnnotation`: only AuthorizationPolicy supports it.
        issueAt(errors, [...base, 'metadata', 'annotations', DRY_RUN_ANNOTATION], `${kind} does not support the ${DRY_RUN_ANNOTATION} annotation: remove it`);
        continue;
      }
      const resource = { ...result.data, origin: { source, file, line: lineOfPath(doc, lineCounter, base) } } as MeshResource;
      resources.push(resource);
      where.set(resource, { doc, base });
      for (const w of resourceWarnings(resource)) issueAt(warnings, [...base, ...w.path], w.message);
    }
  }
  return { resources, warnings, errors, locate };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
