/**
 * Canonical JSON of stored resources: object keys sorted, `undefined` members dropped, so two
 * objects with the same content serialise to the same text (used to detect no-op writes).
 */

/** `JSON.stringify` with object keys in sorted order at every level. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj).sort()) {
    if (obj[key] !== undefined) out[key] = sortKeys(obj[key]);
  }
  return out;
}
