/**
 * The smaller parts of the SQLite store: admin tokens (by SHA-256 of the secret), the certificate
 * ledger (serial → lineage token) and the append-only audit log.
 */
import type { AdminTokenRecord, AdminTokenStore, AuditEntry, AuditLog, CertificateLedger, IssuedCertificate, NewAdminToken } from '../types.js';
import { StoreError } from '../errors.js';
import type { SqliteContext } from './context.js';
import { GroupCommit } from './group-commit.js';

interface AdminTokenRow {
  id: string;
  hash: string;
  description: string | null;
  namespaces: string | null;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
}

function toAdminRecord(row: AdminTokenRow): AdminTokenRecord {
  const rec: AdminTokenRecord = { id: row.id, createdAt: new Date(row.created_at), createdBy: row.created_by };
  if (row.description !== null) rec.description = row.description;
  if (row.namespaces !== null) rec.namespaces = JSON.parse(row.namespaces) as string[];
  if (row.revoked_at !== null) rec.revokedAt = new Date(row.revoked_at);
  return rec;
}

/** {@link AdminTokenStore} on SQLite. */
export class SqliteAdminTokenStore implements AdminTokenStore {
  private readonly stmt;

  constructor(private readonly ctx: SqliteContext) {
    const db = ctx.db;
    this.stmt = {
      insert: db.prepare<[string, string, string | null, string | null, number, string]>(
        'INSERT INTO admin_tokens (id, hash, description, namespaces, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      byHash: db.prepare<[string], AdminTokenRow>('SELECT * FROM admin_tokens WHERE hash = ? AND revoked_at IS NULL'),
      byId: db.prepare<[string], AdminTokenRow>('SELECT * FROM admin_tokens WHERE id = ?'),
      all: db.prepare<[], AdminTokenRow>('SELECT * FROM admin_tokens ORDER BY created_at, id'),
      revoke: db.prepare<[number, string]>('UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM admin_tokens WHERE revoked_at IS NULL'),
    };
  }

  async insert(t: NewAdminToken, actor: string): Promise<AdminTokenRecord> {
    this.ctx.assertOpen();
    return this.ctx.db
      .transaction(() => {
        this.stmt.insert.run(t.id, t.hash, t.description ?? null, t.namespaces ? JSON.stringify(t.namespaces) : null, this.ctx.now(), actor);
        this.ctx.audit({ actor, action: 'admin-token.create', target: `admin-token/${t.id}`, detail: { namespaces: t.namespaces ?? '*' } });
        return toAdminRecord(this.stmt.byId.get(t.id)!);
      })
      .immediate();
  }

  async findByHash(hash: string): Promise<AdminTokenRecord | undefined> {
    this.ctx.assertOpen();
    const row = this.stmt.byHash.get(hash);
    return row ? toAdminRecord(row) : undefined;
  }

  async list(): Promise<AdminTokenRecord[]> {
    this.ctx.assertOpen();
    return this.stmt.all.all().map(toAdminRecord);
  }

  async revoke(id: string, actor: string): Promise<boolean> {
    this.ctx.assertOpen();
    return this.ctx.db
      .transaction(() => {
        const changed = this.stmt.revoke.run(this.ctx.now(), id).changes === 1;
        if (changed) this.ctx.audit({ actor, action: 'admin-token.revoke', target: `admin-token/${id}` });
        return changed;
      })
      .immediate();
  }

  async countActive(): Promise<number> {
    this.ctx.assertOpen();
    return this.stmt.count.get()?.n ?? 0;
  }
}

/**
 * {@link CertificateLedger} on SQLite; rows of expired certificates are pruned as new ones are
 * recorded. Rows recorded together are written by one durable transaction ({@link GroupCommit}):
 * each `record` resolves once the commit holding its row is on disk.
 */
export class SqliteCertificateLedger implements CertificateLedger {
  private readonly stmt;
  private lastPrune = 0;
  private readonly batches: GroupCommit<IssuedCertificate>;

  constructor(private readonly ctx: SqliteContext) {
    const db = ctx.db;
    this.stmt = {
      record: db.prepare<[string, string, string | null, number]>(
        'INSERT INTO certificates (serial, spiffe_id, jti, not_after) VALUES (?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET spiffe_id = excluded.spiffe_id, jti = excluded.jti, not_after = excluded.not_after',
      ),
      tokenOf: db.prepare<[string], { jti: string | null }>('SELECT jti FROM certificates WHERE serial = ?'),
      serialsOf: db.prepare<[string, number], { serial: string }>('SELECT serial FROM certificates WHERE jti = ? AND not_after >= ? ORDER BY serial'),
      prune: db.prepare<[number]>('DELETE FROM certificates WHERE not_after < ?'),
    };
    const writeBatch = db.transaction((rows: readonly IssuedCertificate[]) => {
      for (const cert of rows) this.stmt.record.run(cert.serial, cert.spiffeId, cert.jti ?? null, cert.notAfter.getTime());
      const now = this.ctx.now();
      if (now - this.lastPrune > 3600_000) {
        this.stmt.prune.run(now);
        this.lastPrune = now;
      }
    });
    this.batches = new GroupCommit((rows) => writeBatch.immediate(rows));
  }

  /**
   * Records an issued certificate; resolves once it is durable (see the class comment). Rejects
   * with StoreError `invalid` for a malformed record (before it joins a batch, so it cannot fail
   * anyone else's commit) and `closed` after the store was closed.
   */
  record(cert: IssuedCertificate): Promise<void> {
    try {
      this.ctx.assertOpen();
      checkIssuedCertificate(cert);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.batches.submit({ serial: cert.serial, spiffeId: cert.spiffeId, ...(cert.jti !== undefined ? { jti: cert.jti } : {}), notAfter: cert.notAfter });
  }

  /** Commits every queued record now (the store calls it before closing the database). */
  flush(): void {
    this.batches.flush();
  }

  async tokenOf(serial: string): Promise<string | undefined> {
    this.ctx.assertOpen();
    return this.stmt.tokenOf.get(serial)?.jti ?? undefined;
  }

  async serialsOf(jti: string): Promise<string[]> {
    this.ctx.assertOpen();
    return this.stmt.serialsOf.all(jti, this.ctx.now()).map((r) => r.serial);
  }
}

function checkIssuedCertificate(cert: IssuedCertificate): void {
  if (typeof cert?.serial !== 'string' || cert.serial === '') throw new StoreError('invalid', 'certificate record: serial must be a non-empty string');
  if (typeof cert.spiffeId !== 'string' || cert.spiffeId === '') throw new StoreError('invalid', `certificate ${cert.serial}: spiffeId must be a non-empty string`);
  if (cert.jti !== undefined && typeof cert.jti !== 'string') throw new StoreError('invalid', `certificate ${cert.serial}: jti must be a string when set`);
  if (!(cert.notAfter instanceof Date) || !Number.isFinite(cert.notAfter.getTime())) throw new StoreError('invalid', `certificate ${cert.serial}: notAfter must be a valid Date`);
}

interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  revision: number | null;
  detail: string | null;
}

/** {@link AuditLog} on SQLite (append-only, enforced by triggers). */
export class SqliteAuditLog implements AuditLog {
  private readonly stmt;

  constructor(private readonly ctx: SqliteContext) {
    this.stmt = { list: ctx.db.prepare<[number, number], AuditRow>('SELECT * FROM audit_log WHERE id > ? ORDER BY id LIMIT ?') };
  }

  async append(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<AuditEntry> {
    this.ctx.assertOpen();
    return this.ctx.db.transaction(() => this.ctx.audit(entry)).immediate();
  }

  async list(query: { after?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    this.ctx.assertOpen();
    return this.stmt.list.all(query.after ?? 0, query.limit ?? 1000).map((row) => {
      const e: AuditEntry = { id: row.id, at: new Date(row.at), actor: row.actor, action: row.action, target: row.target };
      if (row.revision !== null) e.revision = row.revision;
      if (row.detail !== null) e.detail = JSON.parse(row.detail) as Record<string, unknown>;
      return e;
    });
  }
}
