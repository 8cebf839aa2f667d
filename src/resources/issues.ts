/**
 * Rendering of {@link ResourceIssue}s: JSON paths (`spec.ports[0].number`), values in messages,
 * the one-line `file:line path: message` form, and the error thrown when a whole configuration is
 * rejected.
 */
import type { MeshResource, ResourceIssue } from './types.js';

/** One step of a JSON path: an object key or an array index. */
export type PathSegment = string | number;

/**
 * Finds the 1-based source line of `path` inside a parsed resource (see `parseResources`);
 * `undefined` for a resource it does not know.
 */
export type ResourceLocator = (resource: MeshResource, path: readonly PathSegment[]) => number | undefined;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Renders path segments as a JSON path: identifiers joined with `.`, indexes as `[0]`, other keys
 * quoted (`metadata.labels["app.kubernetes.io/name"]`, `spec.portLevelMtls["8080"]`).
 */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Describes a value for a message: strings quoted, `null`, numbers and booleans as written, `an object`, `an array`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * One line: `file:line path: message`; `:line` is left out when the line is unknown (0) and
 * `path: ` when the issue concerns the whole document.
 */
export function formatIssue(issue: ResourceIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}` : issue.file;
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Thrown when a configuration is rejected as a whole; `issues` holds every error found. */
export class ConfigRejectedError extends Error {
  /** Every error, in file order. */
  readonly issues: readonly ResourceIssue[];

  constructor(summary: string, issues: readonly ResourceIssue[]) {
    super(`${summary}:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    this.name = 'ConfigRejectedError';
    this.issues = issues;
  }
}
