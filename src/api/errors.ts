/**
 * The API's one error type, {@link ApiError}, and the one place errors become HTTP responses
 * ({@link problemResponse}): RFC 9457 problem details, `application/problem+json`, with
 * `type`, `title`, `status`, `detail` and, for input errors, `errors: [{path, message, line?}]`
 * naming each offending field by its JSON path (and its line in a YAML/JSON body).
 *
 * Errors of the stages below are mapped here too, so handlers just throw: a {@link StoreError}
 * by its code (conflict → 409, not-found → 404, gone → 410, invalid → 400), hono's
 * `HTTPException` by its status, anything else → 500 (logged, detail withheld).
 */
import { HTTPException } from 'hono/http-exception';
import type { Logger } from '../observability/logger.js';
import { StoreError } from '../store/errors.js';

/** Media type of every error response. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** One field-level problem: `path` is a JSON path (`spec.ports[0].number`, `query.limit`). */
export interface FieldError {
  path: string;
  message: string;
  /** 1-based line in the request body, when the problem is in a YAML/JSON body. */
  line?: number;
}

/** An RFC 9457 problem document as the API sends it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Short machine-readable problem types, published as `https://skiff.dev/problems/<slug>`. */
export type ProblemSlug =
  | 'invalid-request'
  | 'invalid-resources'
  | 'invalid-references'
  | 'unauthenticated'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'gone'
  | 'body-too-large'
  | 'unsupported-media-type'
  | 'internal';

/** Base of the `type` URIs. */
export const PROBLEM_TYPE_BASE = 'https://skiff.dev/problems/';

/** An error with its HTTP status; thrown by handlers and middleware, rendered by {@link problemResponse}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly slug: ProblemSlug,
    message: string,
    readonly errors?: FieldError[],
    /** Extra response headers (e.g. `WWW-Authenticate` on 401). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The problem document of this error. */
  toProblem(): Problem {
    const p: Problem = { type: PROBLEM_TYPE_BASE + this.slug, title: TITLES[this.status] ?? 'Error', status: this.status, detail: this.message };
    if (this.errors && this.errors.length > 0) p.errors = this.errors;
    return p;
  }
}

/** 400 with field errors. */
export function badRequest(detail: string, errors?: FieldError[]): ApiError {
  return new ApiError(400, 'invalid-request', detail, errors);
}

/** 403. */
export function forbidden(detail: string): ApiError {
  return new ApiError(403, 'forbidden', detail);
}

/** 404. */
export function notFound(detail: string): ApiError {
  return new ApiError(404, 'not-found', detail);
}

/** 409. */
export function conflict(detail: string): ApiError {
  return new ApiError(409, 'conflict', detail);
}

const STORE_STATUS: Record<StoreError['code'], { status: number; slug: ProblemSlug }> = {
  conflict: { status: 409, slug: 'conflict' },
  'not-found': { status: 404, slug: 'not-found' },
  gone: { status: 410, slug: 'gone' },
  invalid: { status: 400, slug: 'invalid-request' },
  closed: { status: 503, slug: 'internal' },
};

/** Maps any thrown value to an {@link ApiError} (the one mapping of the API). */
export function toApiError(err: unknown, logger?: Logger): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreError) {
    const m = STORE_STATUS[err.code];
    return new ApiError(m.status, m.slug, err.message);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    if (status === 413) return new ApiError(413, 'body-too-large', err.message || 'request body too large');
    if (status === 415) return new ApiError(415, 'unsupported-media-type', err.message || 'unsupported media type');
    if (status === 401) return new ApiError(401, 'unauthenticated', err.message || 'authentication required');
    if (status === 404) return new ApiError(404, 'not-found', err.message || 'not found');
    if (status >= 400 && status < 500) return new ApiError(status, 'invalid-request', err.message || TITLES[status] || 'bad request');
  }
  logger?.error({ err }, 'API request failed');
  return new ApiError(500, 'internal', 'internal error (see the control plane log)');
}

/** The problem+json response for any thrown value. */
export function problemResponse(err: unknown, logger?: Logger): Response {
  const e = toApiError(err, logger);
  return new Response(JSON.stringify(e.toProblem()), {
    status: e.status,
    headers: { 'content-type': PROBLEM_CONTENT_TYPE, ...(e.headers ?? {}) },
  });
}
