/**
 * {@link TokenStore} on SQLite: one `tokens` row per `jti` holds what was issued (when it was
 * recorded), whether it was used (single-use tokens) and whether it was revoked. A revocation
 * also takes the next `meta.revocation_seq`, so followers (this process and others) can find the
 * revocations they have not seen yet.
 */
import type { IssuedTokenRecord } from '../../identity/tokens.js';
import type { TokenListQuery, TokenRecord, TokenStore } from '../types.js';
import type { SqliteContext } from './context.js';

/** Issued-token records are kept this long after the token expired (for listings). */
export const TOKEN_RECORD_RETENTION_MS = 7 * 24 * 3600 * 1000;

interface TokenRow {
  jti: string;
  spiffe_id: string | null;
  namespace: string | null;
  service_account: string | null;
  grp: string | null;
  single_use: number | null;
  audiences: string | null;
  issued_at: number | null;
  expires_at: number | null;
  created_by: string | null;
  revoked_at: number | null;
  revoked_by: string | null;
  revocation_seq: number | null;
  used_at: number | null;
}

function toRecord(row: TokenRow): TokenRecord | undefined {
  if (row.spiffe_id === null || row.namespace === null || row.service_account === null || row.issued_at === null || row.expires_at === null) return undefined;
  const rec: TokenRecord = {
    jti: row.jti,
    spiffeId: row.spiffe_id,
    namespace: row.namespace,
    serviceAccount: row.service_account,
    singleUse: row.single_use === 1,
    audiences: row.audiences ? (JSON.parse(row.audiences) as string[]) : [],
    issuedAt: new Date(row.issued_at),
    expiresAt: new Date(row.expires_at),
    createdBy: row.created_by ?? 'unknown',
  };
  if (row.grp !== null) rec.group = row.grp;
  if (row.revoked_at !== null) rec.revokedAt = new Date(row.revoked_at);
  if (row.revoked_by !== null) rec.revokedBy = row.revoked_by;
  if (row.used_at !== null) rec.usedAt = new Date(row.used_at);
  return rec;
}

/** The SQLite token store; see the module comment. */
export class SqliteTokenStore implements TokenStore {
  private readonly listeners = new Set<(jtis: readonly string[]) => void>();
  private notifiedSeq: number;
  private readonly stmt;

  constructor(private readonly ctx: SqliteContext) {
    const db = ctx.db;
    this.stmt = {
      seq: db.prepare<[], { value: number }>("SELECT value FROM meta WHERE key = 'revocation_seq'"),
      setSeq: db.prepare<[number]>("UPDATE meta SET value = ? WHERE key = 'revocation_seq'"),
      get: db.prepare<[string], TokenRow>('SELECT * FROM tokens WHERE jti = ?'),
      issue: db.prepare<[string, string, string, string, string | null, number, string, number, number, string]>(
        'INSERT INTO tokens (jti, spiffe_id, namespace, service_account, grp, single_use, audiences, issued_at, expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (jti) DO UPDATE SET spiffe_id = excluded.spiffe_id, namespace = excluded.namespace, service_account = excluded.service_account, grp = excluded.grp, ' +
          'single_use = excluded.single_use, audiences = excluded.audiences, issued_at = excluded.issued_at, expires_at = excluded.expires_at, created_by = excluded.created_by',
      ),
      use: db.prepare<[string, number, number]>(
        'INSERT INTO tokens (jti, expires_at, used_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO UPDATE SET used_at = excluded.used_at WHERE tokens.used_at IS NULL',
      ),
      revoke: db.prepare<[string, number | null, number, string, number]>(
        'INSERT INTO tokens (jti, expires_at, revoked_at, revoked_by, revocation_seq) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT (jti) DO UPDATE SET revoked_at = excluded.revoked_at, revoked_by = excluded.revoked_by, revocation_seq = excluded.revocation_seq, ' +
          'expires_at = COALESCE(tokens.expires_at, excluded.expires_at) WHERE tokens.revoked_at IS NULL',
      ),
      revokedAfter: db.prepare<[number], { jti: string; revocation_seq: number }>(
        'SELECT jti, revocation_seq FROM tokens WHERE revocation_seq > ? ORDER BY revocation_seq',
      ),
      prune: db.prepare<[number, number]>(
        // Used/revoked state goes once the token can no longer verify; issued records a week later.
        'DELETE FROM tokens WHERE expires_at IS NOT NULL AND ((spiffe_id IS NULL AND expires_at < ?) OR expires_at < ?)',
      ),
    };
    this.notifiedSeq = this.stmt.seq.get()?.value ?? 0;
  }

  async recordIssued(r: IssuedTokenRecord): Promise<void> {
    this.ctx.assertOpen();
    this.ctx.db
      .transaction(() => {
        this.stmt.issue.run(
          r.jti,
          r.spiffeId,
          r.namespace,
          r.serviceAccount,
          r.group ?? null,
          r.singleUse ? 1 : 0,
          JSON.stringify(r.audiences),
          r.issuedAt.getTime(),
          r.expiresAt.getTime(),
          r.createdBy,
        );
        this.ctx.audit({ actor: r.createdBy, action: 'token.create', target: `token/${r.jti}`, detail: { spiffeId: r.spiffeId, singleUse: r.singleUse, expiresAt: r.expiresAt.toISOString(), ...(r.group ? { group: r.group } : {}) } });
      })
      .immediate();
  }

  async get(jti: string): Promise<TokenRecord | undefined> {
    this.ctx.assertOpen();
    const row = this.stmt.get.get(jti);
    return row ? toRecord(row) : undefined;
  }

  async list(query: TokenListQuery = {}): Promise<TokenRecord[]> {
    this.ctx.assertOpen();
    const params: string[] = [];
    let sql = 'SELECT * FROM tokens WHERE spiffe_id IS NOT NULL';
    if (query.namespaces !== undefined) {
      if (query.namespaces.length === 0) return [];
      sql += ` AND namespace IN (${query.namespaces.map(() => '?').join(', ')})`;
      params.push(...query.namespaces);
    }
    sql += ' ORDER BY issued_at DESC, jti';
    return this.ctx.db
      .prepare<string[], TokenRow>(sql)
      .all(...params)
      .map(toRecord)
      .filter((r): r is TokenRecord => r !== undefined);
  }

  async isRevoked(jti: string): Promise<boolean> {
    this.ctx.assertOpen();
    return (this.stmt.get.get(jti)?.revoked_at ?? null) !== null;
  }

  async isUsed(jti: string): Promise<boolean> {
    this.ctx.assertOpen();
    return (this.stmt.get.get(jti)?.used_at ?? null) !== null;
  }

  async markUsed(jti: string, expiresAt: Date, actor: string): Promise<boolean> {
    this.ctx.assertOpen();
    return this.ctx.db
      .transaction(() => {
        const changed = this.stmt.use.run(jti, expiresAt.getTime(), this.ctx.now()).changes === 1;
        if (changed) this.ctx.audit({ actor, action: 'token.use', target: `token/${jti}` });
        return changed;
      })
      .immediate();
  }

  async revoke(jti: string, expiresAt: Date | undefined, actor: string): Promise<boolean> {
    this.ctx.assertOpen();
    const fresh = this.ctx.db
      .transaction(() => {
        const seq = (this.stmt.seq.get()?.value ?? 0) + 1;
        const changed = this.stmt.revoke.run(jti, expiresAt ? expiresAt.getTime() : null, this.ctx.now(), actor, seq).changes === 1;
        if (!changed) return false;
        this.stmt.setSeq.run(seq);
        this.ctx.audit({ actor, action: 'token.revoke', target: `token/${jti}` });
        return true;
      })
      .immediate();
    if (fresh) this.ctx.committed();
    return fresh;
  }

  async prune(now: Date): Promise<number> {
    this.ctx.assertOpen();
    const t = now.getTime();
    // 5 s of clock tolerance, as TokenAuthority allows on `exp`.
    return this.stmt.prune.run(t - 5000, t - TOKEN_RECORD_RETENTION_MS).changes;
  }

  subscribeRevocations(listener: (jtis: readonly string[]) => void): () => void {
    if (this.listeners.size === 0) this.notifiedSeq = Math.max(this.notifiedSeq, this.stmt.seq.get()?.value ?? 0);
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** True while someone listens for revocations. */
  hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  /** Delivers revocations committed since the last delivery. */
  dispatch(): void {
    if (this.listeners.size === 0) {
      this.notifiedSeq = this.stmt.seq.get()?.value ?? 0;
      return;
    }
    const rows = this.stmt.revokedAfter.all(this.notifiedSeq);
    if (rows.length === 0) return;
    this.notifiedSeq = rows[rows.length - 1]!.revocation_seq;
    const jtis = rows.map((r) => r.jti);
    for (const listener of [...this.listeners]) listener(jtis);
  }
}
