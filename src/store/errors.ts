/**
 * The store's one error type. The HTTP API maps `code` to a status in one place
 * (`src/api/errors.ts`): `conflict` → 409, `not-found` → 404, `gone` → 410, `invalid` → 400.
 */

/**
 * Why a store call was refused:
 * - `conflict`: a stale or unexpected resourceVersion (optimistic concurrency)
 * - `not-found`: the object to delete or update does not exist
 * - `gone`: events from that revision were compacted; list again and watch from the new revision
 * - `invalid`: a malformed argument (a bad continue token, the same object twice in one write)
 * - `closed`: the store was closed
 */
export type StoreErrorCode = 'conflict' | 'not-found' | 'gone' | 'invalid' | 'closed';

/** A refused store call. `message` names the object and is safe to return to API clients. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}
