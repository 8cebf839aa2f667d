/**
 * The SQLite schema of the store, versioned with `PRAGMA user_version`: each entry of
 * {@link MIGRATIONS} moves the database from version `i` to `i + 1`, in one transaction.
 *
 * Times are integer milliseconds since the epoch. Resource objects are stored as JSON without
 * `metadata.resourceVersion` (the `revision` column holds it) and without `origin` (the `source`
 * column holds it). `audit_log` refuses UPDATE and DELETE by trigger: it is append-only.
 */

/** DDL per schema version; never edit a released entry, append a new one. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO meta (key, value) VALUES ('revision', 0), ('compacted_revision', 0), ('revocation_seq', 0);

  CREATE TABLE resources (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    revision INTEGER NOT NULL,
    object TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
  ) WITHOUT ROWID;
  CREATE INDEX resources_namespace ON resources (namespace, kind, name);

  CREATE TABLE resource_events (
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
    source TEXT NOT NULL,
    object TEXT NOT NULL,
    PRIMARY KEY (revision, seq)
  ) WITHOUT ROWID;

  CREATE TABLE tokens (
    jti TEXT PRIMARY KEY,
    spiffe_id TEXT,
    namespace TEXT,
    service_account TEXT,
    grp TEXT,
    single_use INTEGER,
    audiences TEXT,
    issued_at INTEGER,
    expires_at INTEGER,
    created_by TEXT,
    revoked_at INTEGER,
    revoked_by TEXT,
    revocation_seq INTEGER,
    used_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX tokens_revocation_seq ON tokens (revocation_seq) WHERE revocation_seq IS NOT NULL;
  CREATE INDEX tokens_expires_at ON tokens (expires_at);

  CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    description TEXT,
    namespaces TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
  ) WITHOUT ROWID;

  CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    spiffe_id TEXT NOT NULL,
    jti TEXT,
    not_after INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX certificates_jti ON certificates (jti) WHERE jti IS NOT NULL;

  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    revision INTEGER,
    detail TEXT
  );
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  `,
];
