/**
 * Admin bearer tokens of the HTTP API. A token is `skiff_` followed by 256 random bits
 * (base64url); the store keeps only its SHA-256 (a random 256-bit secret needs no slow hash) and
 * an id (16 hex digits) that names it in listings and the audit log. A token may be scoped to a
 * list of namespaces.
 *
 * On the first start of a control plane whose store holds no active admin token, one is created,
 * written to `<dataDir>/admin-token` (mode 0600) and announced once (to stderr); `skiff
 * admin-token create` makes more on the control plane's host.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isDns1123Label } from '../resources/names.js';
import type { AdminTokenRecord, AdminTokenStore } from '../store/types.js';

/** Prefix of every admin token (recognisable by secret scanners). */
export const ADMIN_TOKEN_PREFIX = 'skiff_';
/** The file the first admin token is written to, in the data dir. */
export const ADMIN_TOKEN_FILE = 'admin-token';

/** SHA-256 of a token's text, lowercase hex: what the store keeps. */
export function hashAdminToken(token: string): string {
  return crypto.createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new admin token: the secret (show it once) and its record. */
export interface CreatedAdminToken {
  token: string;
  record: AdminTokenRecord;
}

/** Options of {@link createAdminToken}. */
export interface CreateAdminTokenOptions {
  /** Restrict the token to these namespaces (lower-case DNS-1123 labels); undefined: all. */
  namespaces?: string[];
  description?: string;
}

/**
 * Creates and stores an admin token. Throws a `RangeError` for an empty or malformed namespace
 * list.
 */
export async function createAdminToken(store: AdminTokenStore, opts: CreateAdminTokenOptions, actor: string): Promise<CreatedAdminToken> {
  if (opts.namespaces !== undefined) {
    if (opts.namespaces.length === 0) throw new RangeError('a namespace-scoped admin token needs at least one namespace');
    const bad = opts.namespaces.filter((ns) => !isDns1123Label(ns));
    if (bad.length > 0) throw new RangeError(`invalid namespace ${JSON.stringify(bad[0])}: must be a lower-case DNS-1123 label`);
  }
  const token = ADMIN_TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');
  const id = crypto.randomBytes(8).toString('hex');
  const record = await store.insert(
    {
      id,
      hash: hashAdminToken(token),
      ...(opts.namespaces ? { namespaces: [...new Set(opts.namespaces)].sort() } : {}),
      ...(opts.description ? { description: opts.description } : {}),
    },
    actor,
  );
  return { token, record };
}

/**
 * On a store without any active admin token: creates one (all namespaces), writes it to
 * `<dataDir>/admin-token` (mode 0600) and passes it to `announce` once. Returns the file written,
 * or undefined when tokens already existed.
 */
export async function ensureInitialAdminToken(
  store: AdminTokenStore,
  dataDir: string,
  announce: (token: string, file: string) => void,
): Promise<string | undefined> {
  if ((await store.countActive()) > 0) return undefined;
  const { token } = await createAdminToken(store, { description: 'created on first start' }, 'control-plane');
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  announce(token, file);
  return file;
}
