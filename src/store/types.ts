/**
 * The durable store (DESIGN.md §2, §9): API-written resources with a resourceVersion, token state,
 * admin tokens, the certificate ledger and an append-only audit log, behind one {@link Store}
 * interface. The embedded default is SQLite (`sqlite.ts`); a PostgreSQL backend implements the
 * same interface, so callers never change. Every method is asynchronous for that reason, even
 * though SQLite answers synchronously.
 *
 * Resource versions follow the Kubernetes model (etcd revisions): one store-wide counter, raised
 * by one per committed write transaction; every object written by a transaction gets the
 * transaction's revision as `metadata.resourceVersion` (a decimal string), and a watch resumes
 * "after revision N". A multi-document apply is one transaction: all of it or none of it.
 *
 * Every write records who did it in the audit log, in the same transaction as the write.
 */
import type { IssuedTokenRecord, TokenStateStore } from '../identity/tokens.js';
import type { MeshKind, MeshResource } from '../resources/types.js';
import type { LabelRequirement } from './label-selector.js';

/** Who or what wrote a resource: the `origin.source` the registry and the API views show. */
export type StoredResourceSource = 'api' | 'auto-registration';

/** Create or replace one resource. */
export interface PutWrite {
  op: 'put';
  /** The resource; `metadata.resourceVersion` is ignored here (use `expectedVersion`). */
  resource: MeshResource;
  /** Default `api`. */
  source?: StoredResourceSource;
  /**
   * Optimistic concurrency: the write succeeds only if the stored object has this
   * resourceVersion (and exists). Undefined: create or replace unconditionally.
   */
  expectedVersion?: string;
}

/** Delete one resource; a missing resource is a `not-found` {@link StoreError}. */
export interface DeleteWrite {
  op: 'delete';
  kind: MeshKind;
  namespace: string;
  name: string;
  /** Optimistic concurrency, as in {@link PutWrite.expectedVersion}. */
  expectedVersion?: string;
}

/** One write of a transaction. */
export type ResourceWrite = PutWrite | DeleteWrite;

/** What a write did to one object. */
export interface WriteOutcome {
  kind: MeshKind;
  namespace: string;
  name: string;
  /** `unchanged`: a put of content equal to the stored one (no new revision for it). */
  action: 'created' | 'updated' | 'unchanged' | 'deleted';
  /** The object's resourceVersion after the write (for `deleted`: the revision of the delete). */
  resourceVersion: string;
  /** The stored object after the write (for `deleted`: its last state). */
  object: MeshResource;
}

/** Result of {@link ResourceStore.write}. */
export interface WriteResult {
  /** The store revision after the transaction (unchanged if nothing changed). */
  revision: number;
  outcomes: WriteOutcome[];
}

/** One change, as a watch delivers it. `DELETED` carries the object's last state. */
export interface ResourceEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The revision of the transaction that made the change. */
  revision: number;
  object: MeshResource;
}

/** Filters and paging of {@link ResourceStore.list}. */
export interface ListQuery {
  kind?: MeshKind;
  /** Only these namespaces (undefined: all). */
  namespaces?: readonly string[];
  /** Every requirement must hold on `metadata.labels` (Kubernetes label selector semantics). */
  labelSelector?: readonly LabelRequirement[];
  /** Page size; undefined: everything. */
  limit?: number;
  /** The `continue` of the previous page. A malformed one is an `invalid` {@link StoreError}. */
  continue?: string;
}

/** A page of objects, in (kind, namespace, name) order. */
export interface ListResult {
  items: MeshResource[];
  /** The store revision when the page was read. */
  revision: number;
  /** Present when more objects follow: pass it as {@link ListQuery.continue}. */
  continue?: string;
}

/** Events after a revision. */
export interface EventsResult {
  events: ResourceEvent[];
  /** The store revision when read; events up to it are included. */
  revision: number;
}

/** API-written resources (and, later, auto-registered WorkloadEntries). */
export interface ResourceStore {
  /** The stored object (with `metadata.resourceVersion` and `origin.source`), or undefined. */
  get(kind: MeshKind, namespace: string, name: string): Promise<MeshResource | undefined>;
  list(query?: ListQuery): Promise<ListResult>;
  /**
   * Applies `writes` in one transaction, durable (fsync'd) when it resolves: all or nothing. A
   * stale `expectedVersion` rejects with `conflict`, a missing object to delete with `not-found`
   * (and nothing is written). Writing the same object twice in one call is `invalid`.
   */
  write(writes: readonly ResourceWrite[], actor: string): Promise<WriteResult>;
  /**
   * Changes after `revision`, oldest first. Rejects with `gone` when events that old were
   * compacted away (the caller lists again and watches from the list's revision).
   */
  eventsSince(revision: number): Promise<EventsResult>;
  /** The current store revision (0 for an empty store). */
  revision(): Promise<number>;
  /**
   * Calls `listener` with every batch of committed changes (one transaction each), in revision
   * order: at once for writes through this store object, and within about a second for writes by
   * other processes sharing the database. Returns the unsubscribe function.
   */
  subscribe(listener: (events: readonly ResourceEvent[]) => void): () => void;
}

/** A recorded bootstrap token and what happened to it. */
export interface TokenRecord extends IssuedTokenRecord {
  revokedAt?: Date;
  revokedBy?: string;
  usedAt?: Date;
}

/** Filter of {@link TokenStore.list}. */
export interface TokenListQuery {
  /** Only tokens for identities in these namespaces (undefined: all). */
  namespaces?: readonly string[];
}

/**
 * Bootstrap token state: the {@link TokenStateStore} a `TokenAuthority` uses, plus listing and
 * revocation notices.
 */
export interface TokenStore extends TokenStateStore {
  /** The record of a token issued through a TokenAuthority on this store; undefined if unknown. */
  get(jti: string): Promise<TokenRecord | undefined>;
  /** Recorded tokens, newest first. Tokens expired more than a week ago are pruned. */
  list(query?: TokenListQuery): Promise<TokenRecord[]>;
  /**
   * Calls `listener` with the `jti`s of revocations as they commit: at once for this store object,
   * within about a second for other processes. Returns the unsubscribe function.
   */
  subscribeRevocations(listener: (jtis: readonly string[]) => void): () => void;
}

/** A stored admin token (never the token itself; the store keeps only its SHA-256). */
export interface AdminTokenRecord {
  /** Public identifier (16 hex digits), shown in listings and audit entries. */
  id: string;
  description?: string;
  /** Namespaces the token may act in; undefined: every namespace. */
  namespaces?: string[];
  createdAt: Date;
  createdBy: string;
  revokedAt?: Date;
}

/** A new admin token's record with the hash of its secret. */
export interface NewAdminToken {
  id: string;
  /** SHA-256 of the token text, lowercase hex. */
  hash: string;
  description?: string;
  namespaces?: string[];
}

/** Admin bearer tokens of the HTTP API. */
export interface AdminTokenStore {
  insert(token: NewAdminToken, actor: string): Promise<AdminTokenRecord>;
  /** The active (not revoked) token whose secret hashes to `hash`. */
  findByHash(hash: string): Promise<AdminTokenRecord | undefined>;
  /** Every token, revoked ones included, oldest first. */
  list(): Promise<AdminTokenRecord[]>;
  /** Resolves false when no active token has this id. */
  revoke(id: string, actor: string): Promise<boolean>;
  /** Number of active tokens. */
  countActive(): Promise<number>;
}

/** A certificate the CA issued, and the bootstrap token it descends from. */
export interface IssuedCertificate {
  /** Serial number, uppercase hex as Node's `X509Certificate.serialNumber` prints it. */
  serial: string;
  spiffeId: string;
  /**
   * The bootstrap token the certificate was issued with, or inherited from the certificate that
   * renewed it; undefined when no token is in its lineage.
   */
  jti?: string;
  notAfter: Date;
}

/** Which certificate came from which bootstrap token, so revoking a token reaches its certificates. */
export interface CertificateLedger {
  record(cert: IssuedCertificate): Promise<void>;
  /** The lineage token of a certificate, if recorded. */
  tokenOf(serial: string): Promise<string | undefined>;
  /** Serials of unexpired certificates descending from `jti`. */
  serialsOf(jti: string): Promise<string[]>;
}

/** One audit log entry. */
export interface AuditEntry {
  /** Increasing; the position in the log. */
  id: number;
  at: Date;
  /** `admin-token:<id>`, `spiffe://...`, `host:<user>`, `control-plane`, ... */
  actor: string;
  /** `resource.create`, `resource.update`, `resource.delete`, `token.create`, `token.revoke`, ... */
  action: string;
  /** What was acted on: `WorkloadEntry/shop/web`, `token/<jti>`, `admin-token/<id>`. */
  target: string;
  /** The store revision of a resource change. */
  revision?: number;
  detail?: Record<string, unknown>;
}

/** The append-only audit log: entries are never changed or removed. */
export interface AuditLog {
  append(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<AuditEntry>;
  /** Entries with id greater than `after` (default 0), oldest first, at most `limit` (default 1000). */
  list(query?: { after?: number; limit?: number }): Promise<AuditEntry[]>;
}

/** The durable store: every part of the control plane's state that is not key material. */
export interface Store {
  readonly resources: ResourceStore;
  readonly tokens: TokenStore;
  readonly adminTokens: AdminTokenStore;
  readonly certificates: CertificateLedger;
  readonly audit: AuditLog;
  /** Where the data lives, for logs (a file path or a database URL without credentials). */
  readonly location: string;
  /** Closes the database; later calls reject. */
  close(): Promise<void>;
}
