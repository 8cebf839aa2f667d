/** Pieces shared by the route definitions: error responses and security requirements. */
import { ProblemSchema } from './schemas.js';

const DESCRIPTIONS: Record<number, string> = {
  400: 'invalid request: bad YAML/JSON, a schema error (errors[] names each field path and line), or a bad parameter',
  401: 'no or invalid credentials',
  403: 'the credentials do not allow this (namespace scope, agent identity)',
  404: 'no such object or kind',
  409: 'stale resourceVersion, or the object is defined by another source',
  410: 'the requested resourceVersion is too old (events compacted); list again',
  413: 'request body too large',
  415: 'unsupported content type',
};

/** `responses` entries for the given error statuses, all `application/problem+json`. */
export function problems(...codes: number[]) {
  const out: Record<number, { description: string; content: { 'application/problem+json': { schema: typeof ProblemSchema } } }> = {};
  for (const code of codes) out[code] = { description: DESCRIPTIONS[code] ?? 'error', content: { 'application/problem+json': { schema: ProblemSchema } } };
  return out;
}

/** Either an admin bearer token or a client SVID. */
export const SECURITY: Record<string, string[]>[] = [{ adminToken: [] }, { svid: [] }];
