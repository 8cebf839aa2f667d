/**
 * Durability of acknowledged writes (issue 4 §4): the real control plane (`skiff serve`) takes
 * 1,000 concurrent writes through its API — single PUTs and three-document applies — and is
 * killed with SIGKILL partway. After a restart on the same data dir, every write that got a 2xx
 * is present and intact, nothing present is corrupted, and no apply is half-applied.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ProcessGroup } from '../helpers/processes.js';
import { startControlPlaneWithApi } from '../helpers/api-proc.js';

const TOTAL = 1000;
/** SIGKILL once this many answers have arrived. */
const KILL_AFTER = 300;
const APPLY_MEMBERS = 3;

interface Expected {
  address: string;
  labels: Record<string, string>;
}

interface Op {
  kind: 'put' | 'apply';
  /** name → what was sent. */
  objects: Map<string, Expected>;
  status?: number;
}

function weDoc(name: string, e: Expected): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${name}
  namespace: durable
  labels: ${JSON.stringify(e.labels)}
spec:
  address: ${e.address}
  serviceAccount: writer
`;
}

function buildOps(): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const a = Math.floor(i / 256);
    const b = i % 256;
    if (i % 4 === 3) {
      const objects = new Map<string, Expected>();
      for (let k = 0; k < APPLY_MEMBERS; k++) objects.set(`batch-${i}-${k}`, { address: `10.${a}.${b}.${k + 1}`, labels: { batch: String(i), member: String(k) } });
      ops.push({ kind: 'apply', objects });
    } else {
      ops.push({ kind: 'put', objects: new Map([[`put-${i}`, { address: `10.${a}.${b}.100`, labels: { op: String(i) } }]]) });
    }
  }
  return ops;
}

describe('durability: acknowledged writes survive kill -9', () => {
  let root: string;
  const group = new ProcessGroup();

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-durable-'));
    fs.mkdirSync(path.join(root, 'mesh'));
  });
  after(async () => {
    await group.stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('every 2xx write is present and intact after a restart; no apply is half-applied', async (t) => {
    const dataDir = path.join(root, 'data');
    const first = await startControlPlaneWithApi(group, { configDir: path.join(root, 'mesh'), dataDir });
    const auth = { authorization: `Bearer ${first.adminToken}` };
    const ops = buildOps();
    let answered = 0;
    let killed = false;
    await Promise.allSettled(
      ops.map(async (op) => {
        try {
          const res =
            op.kind === 'put'
              ? await (() => {
                  const [name, e] = [...op.objects][0]!;
                  return fetch(`${first.apiUrl}/v1/namespaces/durable/workloadentries/${name}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/yaml' }, body: weDoc(name, e) });
                })()
              : await fetch(`${first.apiUrl}/v1/apply`, {
                  method: 'POST',
                  headers: { ...auth, 'content-type': 'application/yaml' },
                  body: [...op.objects].map(([name, e]) => weDoc(name, e)).join('---\n'),
                });
          op.status = res.status;
          await res.arrayBuffer().catch(() => undefined);
        } finally {
          answered++;
          if (answered === KILL_AFTER && !killed) {
            killed = true;
            first.cp.proc.child.kill('SIGKILL');
          }
        }
      }),
    );
    await first.cp.proc.exited;
    assert.equal(first.cp.proc.child.signalCode, 'SIGKILL');

    const acked = ops.filter((o) => o.status !== undefined && o.status >= 200 && o.status < 300);
    const refused = ops.filter((o) => o.status !== undefined && (o.status < 200 || o.status >= 300));
    assert.deepEqual(refused.map((o) => o.status), [], 'no write was refused by the API before the kill');
    assert.ok(acked.length >= KILL_AFTER - 50, `at least most answers before the kill were 2xx (${acked.length})`);
    assert.ok(acked.length < TOTAL, `the kill came partway (${acked.length} of ${TOTAL} acknowledged)`);
    t.diagnostic(`${acked.length} of ${TOTAL} writes acknowledged before SIGKILL`);

    const second = await startControlPlaneWithApi(group, { configDir: path.join(root, 'mesh'), dataDir });
    const stored = new Map<string, { metadata: { labels?: Record<string, string> }; spec: { address?: string; serviceAccount?: string } }>();
    let cont: string | undefined;
    do {
      const res = await fetch(`${second.apiUrl}/v1/workloadentries?namespace=durable&limit=1000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`, {
        headers: { authorization: `Bearer ${second.adminToken}` },
      });
      assert.equal(res.status, 200);
      const page = (await res.json()) as { metadata: { continue?: string }; items: { metadata: { name: string; labels?: Record<string, string> }; spec: { address?: string } }[] };
      for (const item of page.items) stored.set(item.metadata.name, item);
      cont = page.metadata.continue;
    } while (cont);
    assert.equal(second.adminToken, first.adminToken, 'the admin token survived too');
    t.diagnostic(`${stored.size} objects stored after the restart (${acked.reduce((n, o) => n + o.objects.size, 0)} acknowledged)`);

    const intact = (name: string, e: Expected) => {
      const got = stored.get(name);
      return got !== undefined && got.spec.address === e.address && got.spec.serviceAccount === 'writer' && JSON.stringify(got.metadata.labels) === JSON.stringify(e.labels);
    };
    for (const op of acked) for (const [name, e] of op.objects) assert.ok(intact(name, e), `acknowledged ${name} is present and intact`);
    let partial = 0;
    for (const op of ops) {
      const present = [...op.objects].filter(([name]) => stored.has(name));
      for (const [name, e] of present) assert.ok(intact(name, e), `${name} is intact`);
      if (present.length !== 0 && present.length !== op.objects.size) partial++;
    }
    assert.equal(partial, 0, 'no multi-document apply is half-applied');
    const known = new Set(ops.flatMap((o) => [...o.objects.keys()]));
    assert.deepEqual([...stored.keys()].filter((n) => !known.has(n)), [], 'nothing else appeared');

    const db = new Database(path.join(dataDir, 'skiff.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
  });
});
