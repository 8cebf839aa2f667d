/**
 * The CLI over the API, run as an operator would (`skiff apply/get/delete/token/admin-token` as
 * child processes) against the real API: errors point at `file:line` of the applied files, a
 * namespace-scoped admin token made on the host is refused outside its namespace, and tokens made
 * through `--server` are the control plane's.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startApiHarness, type ApiHarness } from '../helpers/api.js';
import { REPO, SKIFF } from '../helpers/skiff.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking the event loop (the API under test runs in this process). */
function skiff(args: string[], env: Record<string, string> = {}, input?: string): Promise<Run> {
  const [cmd, ...pre] = SKIFF as [string, ...string[]];
  return new Promise((resolve) => {
    const child = execFile(cmd, [...pre, ...args], { cwd: REPO, env: { ...process.env, SKIFF_SERVER: '', SKIFF_ADMIN_TOKEN: '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const we = (name: string, ns: string, address: string) =>
  `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n  labels: {app: cli}\nspec:\n  address: ${address}\n`;

describe('skiff CLI over the API', () => {
  let h: ApiHarness;
  let dir: string;
  let tokenFile: string;
  let server: string[];

  before(async () => {
    h = await startApiHarness();
    dir = fs.mkdtempSync(path.join(h.dataDir, '..', 'cli-'));
    tokenFile = path.join(dir, 'admin-token');
    fs.writeFileSync(tokenFile, h.adminToken + '\n', { mode: 0o600 });
    server = ['--server', h.url, '--token-file', tokenFile];
  });
  after(async () => {
    await h?.close();
  });

  it('apply -f <dir> sends every file as one apply; get lists and prints YAML; delete removes', async () => {
    const mesh = path.join(dir, 'mesh');
    fs.mkdirSync(path.join(mesh, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(mesh, 'a.yaml'), we('cli-a', 'shop', '10.20.0.1'));
    fs.writeFileSync(path.join(mesh, 'sub', 'b.json'), JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'cli-b', namespace: 'shop' }, spec: { address: '10.20.0.2' } }, null, 2));
    const applied = await skiff(['apply', '-f', mesh, ...server]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /WorkloadEntry shop\/cli-a created \(resourceVersion (\d+)\)\nWorkloadEntry shop\/cli-b created \(resourceVersion \1\)/);

    const table = await skiff(['get', 'we', '-n', 'shop', '-l', 'app=cli', ...server]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAMESPACE\s+NAME\s+RESOURCE VERSION\s+AGE\nshop\s+cli-a\s+\d+/);
    assert.doesNotMatch(table.stdout, /cli-b/, 'the label selector filtered');

    const yaml = await skiff(['get', 'workloadentry', 'cli-b', '-n', 'shop', ...server]);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /kind: WorkloadEntry\n[\s\S]*name: cli-b\n[\s\S]*resourceVersion: "\d+"/);
    const reapplied = await skiff(['apply', '-f', '-', ...server], {}, yaml.stdout);
    assert.equal(reapplied.code, 0, reapplied.stderr);
    assert.match(reapplied.stdout, /cli-b unchanged/);

    const views = await skiff(['get', 'workloads', '-o', 'json', ...server]);
    assert.equal(views.code, 0, views.stderr);
    assert.ok((JSON.parse(views.stdout) as { items: { name: string; source: string }[] }).items.some((w) => w.name === 'cli-a' && w.source === 'api'));

    const deleted = await skiff(['delete', 'we', 'cli-a', '-n', 'shop', ...server]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await h.request('GET', '/v1/namespaces/shop/workloadentries/cli-a')).status, 404);
    const again = await skiff(['delete', 'we', 'cli-a', '-n', 'shop', ...server]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /Not Found \(404\): WorkloadEntry shop\/cli-a not found/);
  });

  it('a refused admin token (401) is reported with where the CLI read it from', async () => {
    const stale = path.join(dir, 'stale-token');
    fs.writeFileSync(stale, 'not-a-valid-admin-token\n', { mode: 0o600 });
    const res = await skiff(['get', 'we', '-n', 'shop', '--server', h.url, '--token-file', stale]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /\(401\)/);
    assert.ok(res.stderr.includes(`the admin token came from --token-file ${stale}`), res.stderr);
    assert.ok(!res.stderr.includes('not-a-valid-admin-token'), 'the token itself was printed');
  });

  it('apply errors name the file and line of each field, and nothing is applied', async () => {
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, '1-good.yaml'), we('cli-good', 'shop', '10.21.0.1'));
    fs.writeFileSync(path.join(bad, '2-bad.yaml'), `# a comment line\n${we('cli-bad', 'shop', '10.21.0.999')}`);
    const res = await skiff(['apply', '-f', bad, ...server]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`${path.join(bad, '2-bad.yaml').replace(/[.]/g, '\\.')}:9 spec\\.address: expected an IP address`));
    assert.equal((await h.request('GET', '/v1/namespaces/shop/workloadentries/cli-good')).status, 404);
  });

  it('admin-token create --namespaces on the host makes a token the API confines to those namespaces', async () => {
    const created = await skiff(['admin-token', 'create', '--namespaces', 'shop', '--data-dir', h.dataDir, '--output', path.join(dir, 'shop-token')]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(fs.statSync(path.join(dir, 'shop-token')).mode & 0o777, 0o600);
    const scoped = ['--server', h.url, '--token-file', path.join(dir, 'shop-token')];
    const denied = await skiff(['apply', '-f', '-', ...scoped], {}, we('cli-bank', 'bank', '10.22.0.1'));
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Forbidden \(403\): admin token [0-9a-f]{16} is scoped to namespaces shop; the body writes to bank/);
    const allowed = await skiff(['apply', '-f', '-', ...scoped], {}, we('cli-shop', 'shop', '10.22.0.2'));
    assert.equal(allowed.code, 0, allowed.stderr);
    const list = await skiff(['admin-token', 'list', '--data-dir', h.dataDir]);
    assert.match(list.stdout, /[0-9a-f]{16}\s+shop\s+active/);
  });

  it('token create/list/revoke --server go through the API; SKIFF_ADMIN_TOKEN works instead of a file', async () => {
    const created = await skiff(['token', 'create', '--namespace', 'shop', '--service-account', 'web', '--ttl', '15m', '--single-use', '--server', h.url], { SKIFF_ADMIN_TOKEN: h.adminToken });
    assert.equal(created.code, 0, created.stderr);
    const verified = await h.tokens.verify(created.stdout.trim());
    assert.equal(verified.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
    assert.equal(verified.singleUse, true);
    const list = await skiff(['token', 'list', '-o', 'json', ...server]);
    assert.ok((JSON.parse(list.stdout) as { items: { jti: string; status: string }[] }).items.some((t) => t.jti === verified.jti && t.status === 'active'));
    const revoked = await skiff(['token', 'revoke', verified.jti, ...server]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await assert.rejects(h.tokens.verify(created.stdout.trim()), /revoked/);
    // Without --token-file or SKIFF_ADMIN_TOKEN the CLI falls back to ./.skiff/admin-token (a
    // checkout where skiff serve ran); only without that file is the error certain.
    if (!fs.existsSync(path.join(REPO, '.skiff', 'admin-token'))) {
      const noToken = await skiff(['get', 'we', '--server', h.url]);
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /no admin token: pass --token-file/);
    }
  });
});
