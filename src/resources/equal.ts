/**
 * Structural equality for resource data (plain JSON-like values: objects, arrays, strings,
 * numbers, booleans, null). Object key order does not matter and a key whose value is
 * `undefined` counts as absent, so a re-parsed file compares equal to the previous parse.
 */
import type { MeshResource } from './types.js';

/** Deep equality of JSON-like values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  for (const k of ak) {
    if (!Object.hasOwn(bo, k) || !deepEqual(ao[k], bo[k])) return false;
  }
  return true;
}

/**
 * True when two resources have the same apiVersion, kind, metadata, spec and status (their
 * `origin` is ignored). Status counts: a health condition that changes (a WorkloadEntry turning
 * `Healthy=False`) is a change the registry must publish.
 */
export function sameResource(a: MeshResource, b: MeshResource): boolean {
  return a.apiVersion === b.apiVersion && a.kind === b.kind && deepEqual(a.metadata, b.metadata) && deepEqual(a.spec, b.spec) && deepEqual(a.status, b.status);
}

/** True when two lists hold the same resources in the same order (see {@link sameResource}). */
export function sameResourceList(a: readonly MeshResource[], b: readonly MeshResource[]): boolean {
  return a.length === b.length && a.every((r, i) => sameResource(r, b[i]!));
}
