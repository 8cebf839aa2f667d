import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { silentLogger } from '../../observability/logger.js';
import type { MeshResource, WorkloadEntry } from '../../resources/types.js';
import { StoreError } from '../errors.js';
import { parseLabelSelector } from '../label-selector.js';
import type { ResourceEvent, Store } from '../types.js';
import { openSqliteStore, STORE_FILE } from './store.js';

function we(name: string, namespace = 'shop', labels: Record<string, string> = {}, address = '10.0.0.1'): WorkloadEntry {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace, labels }, spec: { address } };
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('SQLite store', () => {
  let dir: string;
  let store: Store;
  const open = (extra: { eventRetention?: number; pollIntervalMs?: number } = {}) =>
    openSqliteStore({ file: path.join(dir, STORE_FILE), logger: silentLogger(), ...extra });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-store-'));
    store = open();
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the database 0600 in WAL mode with synchronous=FULL', () => {
    const file = path.join(dir, STORE_FILE);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
  });

  it('stores objects with a resourceVersion and creationTimestamp, and reports no-op writes as unchanged', async () => {
    const first = await store.resources.write([{ op: 'put', resource: we('web') }], 'test');
    assert.equal(first.revision, 1);
    assert.equal(first.outcomes[0]?.action, 'created');
    const got = await store.resources.get('WorkloadEntry', 'shop', 'web');
    assert.equal(got?.metadata.resourceVersion, '1');
    assert.equal(got?.origin?.source, 'api');
    assert.ok(got?.metadata.creationTimestamp && !Number.isNaN(Date.parse(got.metadata.creationTimestamp)));
    const again = await store.resources.write([{ op: 'put', resource: we('web') }], 'test');
    assert.equal(again.outcomes[0]?.action, 'unchanged');
    assert.equal(again.revision, 1);
    const changed = await store.resources.write([{ op: 'put', resource: we('web', 'shop', {}, '10.0.0.2') }], 'test');
    assert.equal(changed.outcomes[0]?.action, 'updated');
    const after = await store.resources.get('WorkloadEntry', 'shop', 'web');
    assert.equal(after?.metadata.resourceVersion, '2');
    assert.equal(after?.metadata.creationTimestamp, got?.metadata.creationTimestamp, 'creationTimestamp is kept on update');
  });

  it('refuses a stale resourceVersion with conflict and a missing object with not-found', async () => {
    await store.resources.write([{ op: 'put', resource: we('web') }], 'test');
    await store.resources.write([{ op: 'put', resource: we('web', 'shop', {}, '10.0.0.2'), expectedVersion: '1' }], 'test');
    await rejectsWith(store.resources.write([{ op: 'put', resource: we('web', 'shop', {}, '10.0.0.3'), expectedVersion: '1' }], 'test'), 'conflict', /resourceVersion is 2, the write expected 1/);
    await rejectsWith(store.resources.write([{ op: 'put', resource: we('new'), expectedVersion: '5' }], 'test'), 'conflict', /does not exist/);
    await rejectsWith(store.resources.write([{ op: 'delete', kind: 'WorkloadEntry', namespace: 'shop', name: 'nope' }], 'test'), 'not-found');
    await rejectsWith(store.resources.write([{ op: 'delete', kind: 'WorkloadEntry', namespace: 'shop', name: 'web', expectedVersion: '1' }], 'test'), 'conflict');
    assert.equal(((await store.resources.get('WorkloadEntry', 'shop', 'web')) as WorkloadEntry | undefined)?.spec.address, '10.0.0.2');
  });

  it('applies a multi-object write all or nothing', async () => {
    await store.resources.write([{ op: 'put', resource: we('b') }], 'test');
    await rejectsWith(
      store.resources.write(
        [
          { op: 'put', resource: we('a') },
          { op: 'put', resource: we('b', 'shop', {}, '10.9.9.9'), expectedVersion: '99' },
        ],
        'test',
      ),
      'conflict',
    );
    assert.equal(await store.resources.get('WorkloadEntry', 'shop', 'a'), undefined, 'the first object of a failed transaction is not written');
    assert.equal(await store.resources.revision(), 1);
    const ok = await store.resources.write([{ op: 'put', resource: we('a') }, { op: 'put', resource: we('c') }], 'test');
    assert.equal(ok.revision, 2);
    assert.deepEqual(ok.outcomes.map((o) => o.resourceVersion), ['2', '2'], 'objects of one transaction share its revision');
    await rejectsWith(store.resources.write([{ op: 'put', resource: we('d') }, { op: 'put', resource: we('d') }], 'test'), 'invalid', /written twice/);
  });

  it('lists by kind, namespace and label selector, in pages with a continue token', async () => {
    const writes = [];
    for (let i = 0; i < 7; i++) writes.push({ op: 'put' as const, resource: we(`w${i}`, i % 2 ? 'shop' : 'bank', { app: i < 4 ? 'web' : 'db' }) });
    await store.resources.write(writes, 'test');
    const all = await store.resources.list({ kind: 'WorkloadEntry' });
    assert.deepEqual(all.items.map((r) => `${r.metadata.namespace}/${r.metadata.name}`), ['bank/w0', 'bank/w2', 'bank/w4', 'bank/w6', 'shop/w1', 'shop/w3', 'shop/w5']);
    assert.equal(all.continue, undefined);
    assert.deepEqual((await store.resources.list({ namespaces: ['shop'] })).items.map((r) => r.metadata.name), ['w1', 'w3', 'w5']);
    assert.deepEqual((await store.resources.list({ labelSelector: parseLabelSelector('app=web') })).items.map((r) => r.metadata.name), ['w0', 'w2', 'w1', 'w3']);
    const names: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const page = await store.resources.list({ labelSelector: parseLabelSelector('app=db'), limit: 2, ...(cont ? { continue: cont } : {}) });
      names.push(...page.items.map((r) => r.metadata.name));
      cont = page.continue;
      pages++;
    } while (cont);
    assert.deepEqual(names, ['w4', 'w6', 'w5']);
    assert.equal(pages, 2);
    await rejectsWith(store.resources.list({ continue: 'garbage' }), 'invalid', /continue token/);
  });

  it('delivers committed changes to subscribers and replays them from a revision; compacted history is gone', async () => {
    const seen: ResourceEvent[][] = [];
    const unsubscribe = store.resources.subscribe((events) => seen.push([...events]));
    await store.resources.write([{ op: 'put', resource: we('a') }, { op: 'put', resource: we('b') }], 'test');
    await store.resources.write([{ op: 'delete', kind: 'WorkloadEntry', namespace: 'shop', name: 'a' }], 'test');
    unsubscribe();
    assert.deepEqual(seen.map((batch) => batch.map((e) => `${e.revision}:${e.type}:${e.object.metadata.name}`)), [['1:ADDED:a', '1:ADDED:b'], ['2:DELETED:a']]);
    const replay = await store.resources.eventsSince(1);
    assert.deepEqual(replay.events.map((e) => `${e.type}:${e.object.metadata.name}`), ['DELETED:a']);
    assert.equal(replay.revision, 2);

    await store.close();
    store = open({ eventRetention: 2 });
    for (const n of ['c', 'd', 'e']) await store.resources.write([{ op: 'put', resource: we(n) }], 'test');
    await rejectsWith(store.resources.eventsSince(1), 'gone');
    assert.deepEqual((await store.resources.eventsSince(3)).events.map((e) => e.object.metadata.name), ['d', 'e']);
  });

  it('follows commits made by another process on the same file', async () => {
    await store.close();
    store = open({ pollIntervalMs: 20 });
    const seen: string[] = [];
    store.resources.subscribe((events) => seen.push(...events.map((e) => e.object.metadata.name)));
    const revoked: string[] = [];
    store.tokens.subscribeRevocations((jtis) => revoked.push(...jtis));
    const moduleUrl = new URL('./store.ts', import.meta.url).href;
    const loggerUrl = new URL('../../observability/logger.ts', import.meta.url).href;
    const code = `
      const { openSqliteStore } = await import(${JSON.stringify(moduleUrl)});
      const { silentLogger } = await import(${JSON.stringify(loggerUrl)});
      const s = openSqliteStore({ file: process.argv[1], logger: silentLogger() });
      await s.resources.write([{ op: 'put', resource: { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'from-cli', namespace: 'shop' }, spec: { address: '10.1.1.1' } } }], 'host:test');
      await s.tokens.revoke('AAAAAAAAAAAAAAAAAAAAAA', undefined, 'host:test');
      await s.close();`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, path.join(dir, STORE_FILE)], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    const deadline = Date.now() + 5000;
    while ((seen.length === 0 || revoked.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ['from-cli']);
    assert.deepEqual(revoked, ['AAAAAAAAAAAAAAAAAAAAAA']);
    assert.equal(await store.tokens.isRevoked('AAAAAAAAAAAAAAAAAAAAAA'), true);
  });

  it('keeps token state: issued records, one use of a single-use token, revocations, pruning', async () => {
    const now = Date.now();
    const issued = { jti: 'jti-aaaaaaaaaaaaaaaa', spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', namespace: 'shop', serviceAccount: 'web', singleUse: true, audiences: ['skiff-ca'], issuedAt: new Date(now), expiresAt: new Date(now + 3600e3), createdBy: 'test' };
    await store.tokens.recordIssued(issued);
    await store.tokens.recordIssued({ ...issued, jti: 'jti-bbbbbbbbbbbbbbbb', namespace: 'bank', spiffeId: 'spiffe://cluster.local/ns/bank/sa/web', singleUse: false, issuedAt: new Date(now + 1) });
    assert.deepEqual((await store.tokens.list()).map((t) => t.jti), ['jti-bbbbbbbbbbbbbbbb', 'jti-aaaaaaaaaaaaaaaa']);
    assert.deepEqual((await store.tokens.list({ namespaces: ['shop'] })).map((t) => t.jti), ['jti-aaaaaaaaaaaaaaaa']);
    assert.equal(await store.tokens.markUsed(issued.jti, issued.expiresAt, 'spiffe://x'), true);
    assert.equal(await store.tokens.markUsed(issued.jti, issued.expiresAt, 'spiffe://x'), false);
    assert.equal(await store.tokens.isUsed(issued.jti), true);
    assert.equal(await store.tokens.revoke(issued.jti, issued.expiresAt, 'admin'), true);
    assert.equal(await store.tokens.revoke(issued.jti, issued.expiresAt, 'admin'), false);
    const rec = await store.tokens.get(issued.jti);
    assert.equal(rec?.revokedBy, 'admin');
    assert.ok(rec?.usedAt);
    // Revocation of a token the store never saw issued is kept until it would have expired.
    assert.equal(await store.tokens.revoke('jti-unknown-000000000', new Date(now - 60e3), 'admin'), true);
    assert.equal(await store.tokens.isRevoked('jti-unknown-000000000'), true);
    assert.equal(await store.tokens.prune(new Date(now)), 1, 'the expired revocation-only record goes');
    assert.equal(await store.tokens.prune(new Date(now + 2 * 3600e3)), 0, 'issued records are kept a week after expiry');
    assert.equal(await store.tokens.prune(new Date(now + 8 * 24 * 3600e3)), 2);
  });

  it('finds active admin tokens by hash only, records certificate lineage, and keeps an append-only audit log', async () => {
    const rec = await store.adminTokens.insert({ id: '0123456789abcdef', hash: 'a'.repeat(64), namespaces: ['shop'] }, 'host:root');
    assert.deepEqual(rec.namespaces, ['shop']);
    assert.equal((await store.adminTokens.findByHash('a'.repeat(64)))?.id, '0123456789abcdef');
    assert.equal(await store.adminTokens.countActive(), 1);
    assert.equal(await store.adminTokens.revoke('0123456789abcdef', 'host:root'), true);
    assert.equal(await store.adminTokens.findByHash('a'.repeat(64)), undefined);
    assert.equal(await store.adminTokens.countActive(), 0);

    await store.certificates.record({ serial: 'AB01', spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', jti: 'jti-1', notAfter: new Date(Date.now() + 3600e3) });
    await store.certificates.record({ serial: 'AB02', spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', notAfter: new Date(Date.now() + 3600e3) });
    assert.equal(await store.certificates.tokenOf('AB01'), 'jti-1');
    assert.equal(await store.certificates.tokenOf('AB02'), undefined);
    assert.deepEqual(await store.certificates.serialsOf('jti-1'), ['AB01']);

    await store.resources.write([{ op: 'put', resource: we('web') }], 'admin-token:0123456789abcdef');
    const log = await store.audit.list();
    assert.deepEqual(log.map((e) => `${e.actor} ${e.action} ${e.target}`), [
      'host:root admin-token.create admin-token/0123456789abcdef',
      'host:root admin-token.revoke admin-token/0123456789abcdef',
      'admin-token:0123456789abcdef resource.create WorkloadEntry/shop/web',
    ]);
    assert.equal(log[2]?.revision, 1);
    const db = new Database(path.join(dir, STORE_FILE));
    try {
      assert.throws(() => db.prepare('DELETE FROM audit_log').run(), /append-only/);
      assert.throws(() => db.prepare("UPDATE audit_log SET actor = 'someone else'").run(), /append-only/);
    } finally {
      db.close();
    }
  });

  it('certificate records written concurrently all land, share a few commits, and survive a reopen', async () => {
    const notAfter = new Date(Date.now() + 3600e3);
    const n = 200;
    const serials = Array.from({ length: n }, (_, i) => `C0${i.toString(16).toUpperCase().padStart(4, '0')}`);
    await Promise.all(serials.map((serial, i) => store.certificates.record({ serial, spiffeId: `spiffe://cluster.local/ns/shop/sa/w${i}`, jti: 'jti-batch', notAfter })));
    // One commit per record would append at least one WAL frame per record (each frame: a 24-byte
    // header and a page); grouped, the 200 rows fill a handful of pages.
    const db = new Database(path.join(dir, STORE_FILE), { readonly: true });
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    const frames = (fs.statSync(path.join(dir, `${STORE_FILE}-wal`)).size - 32) / (24 + pageSize);
    assert.ok(frames < n / 4, `${frames} WAL frames for ${n} records: they were not committed together`);
    await store.close();
    store = open();
    assert.deepEqual(await store.certificates.serialsOf('jti-batch'), [...serials].sort());
    assert.equal(await store.certificates.tokenOf(serials[n - 1] ?? ''), 'jti-batch');
  });

  it('a record whose promise resolved survives kill -9 of the process right after', async () => {
    const script = path.join(dir, 'record.mts');
    const storeModule = new URL('./store.js', import.meta.url).href;
    fs.writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(storeModule)};
const store = openSqliteStore({ file: process.argv[2], logger: { debug() {}, info() {}, warn() {}, error() {} } });
const notAfter = new Date(Date.now() + 3600e3);
await Promise.all(Array.from({ length: 50 }, (_, i) => store.certificates.record({ serial: 'K' + i, spiffeId: 'spiffe://cluster.local/ns/shop/sa/k', jti: 'jti-kill', notAfter })));
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, path.join(dir, 'killed.db')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const other = openSqliteStore({ file: path.join(dir, 'killed.db'), logger: silentLogger() });
    try {
      assert.equal((await other.certificates.serialsOf('jti-kill')).length, 50);
    } finally {
      await other.close();
    }
  });

  it('a failed group commit rejects exactly the records in it; the next commit is unaffected', async () => {
    const notAfter = new Date(Date.now() + 3600e3);
    // Another connection makes any transaction holding serial BAD fail (and roll back).
    const db = new Database(path.join(dir, STORE_FILE));
    db.exec("CREATE TRIGGER refuse_bad BEFORE INSERT ON certificates WHEN NEW.serial = 'BAD' BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END");
    db.close();
    const first = ['F1', 'BAD', 'F2'].map((serial) => store.certificates.record({ serial, spiffeId: 'spiffe://cluster.local/ns/shop/sa/f', jti: 'jti-f', notAfter }));
    const firstOutcomes = Promise.allSettled(first);
    await new Promise((resolve) => setImmediate(resolve)); // the first group commits on this turn
    const second = ['S1', 'S2'].map((serial) => store.certificates.record({ serial, spiffeId: 'spiffe://cluster.local/ns/shop/sa/s', jti: 'jti-s', notAfter }));
    for (const outcome of await firstOutcomes) {
      assert.equal(outcome.status, 'rejected');
      assert.match(String(outcome.status === 'rejected' ? outcome.reason : ''), /refused by test trigger/);
    }
    await Promise.all(second);
    assert.deepEqual(await store.certificates.serialsOf('jti-f'), [], 'the failed commit was rolled back whole');
    assert.deepEqual(await store.certificates.serialsOf('jti-s'), ['S1', 'S2']);
  });

  it('a malformed certificate record is refused with invalid and does not fail the records around it', async () => {
    const notAfter = new Date(Date.now() + 3600e3);
    const good = store.certificates.record({ serial: 'G1', spiffeId: 'spiffe://cluster.local/ns/shop/sa/g', jti: 'jti-g', notAfter });
    const bad = store.certificates.record({ serial: 'G2', spiffeId: 'spiffe://cluster.local/ns/shop/sa/g', jti: 'jti-g', notAfter: new Date(Number.NaN) });
    await rejectsWith(bad, 'invalid', /G2: notAfter must be a valid Date/);
    await rejectsWith(store.certificates.record({ serial: '', spiffeId: 'x', notAfter }), 'invalid', /serial/);
    await good;
    assert.deepEqual(await store.certificates.serialsOf('jti-g'), ['G1']);
  });

  it('close() commits queued certificate records before closing; records after close are refused', async () => {
    const pending = store.certificates.record({ serial: 'Q1', spiffeId: 'spiffe://cluster.local/ns/shop/sa/q', jti: 'jti-q', notAfter: new Date(Date.now() + 3600e3) });
    await store.close();
    await pending;
    await rejectsWith(store.certificates.record({ serial: 'Q2', spiffeId: 'spiffe://cluster.local/ns/shop/sa/q', notAfter: new Date() }), 'closed');
    store = open();
    assert.equal(await store.certificates.tokenOf('Q1'), 'jti-q');
  });

  it('keeps everything across a reopen', async () => {
    await store.resources.write([{ op: 'put', resource: we('web', 'shop', { app: 'web' }) }], 'test');
    await store.close();
    store = open();
    const got = (await store.resources.get('WorkloadEntry', 'shop', 'web')) as MeshResource;
    assert.deepEqual(got.metadata.labels, { app: 'web' });
    assert.equal(await store.resources.revision(), 1);
  });
});
