import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../../observability/logger.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../../observability/metrics.js';
import { ConfigRejectedError } from '../../resources/issues.js';
import type { MeshResource } from '../../resources/types.js';
import { createFileSource, type FileSource } from './source.js';

function workload(name: string, address: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: ${name}\n  namespace: demo\nspec:\n  address: ${address}\n  labels: {app: ${name}}\n`;
}

function service(host: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: svc\n  namespace: demo\nspec:\n  hosts: [${host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n    - {name: http, number: 8080, protocol: HTTP}\n`;
}

const ROUTE = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\n  namespace: demo\nspec:\n  hosts: [svc.demo.svc]\n  http:\n    - route:\n        - destination: {host: svc.demo.svc}\n';

/** Polls `cond` every 20 ms; fails (instead of hanging) after `timeoutMs`. */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function counter(metrics: ControlPlaneMetrics, name: 'configAccepted' | 'configRejected'): Promise<number> {
  const m = await metrics[name].get();
  return m.values.find((v) => v.labels['source'] === 'file')?.value ?? 0;
}

void describe('file source', () => {
  let dir: string;
  let source: FileSource | undefined;
  let updates: MeshResource[][];
  let metrics: ControlPlaneMetrics;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'skiff-file-source-'));
    updates = [];
    metrics = createControlPlaneMetrics();
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  function start(debounceMs = 50, extra: { dir?: string; targetCheckMs?: number } = {}): Promise<void> {
    source = createFileSource({ dir: extra.dir ?? dir, logger: silentLogger(), metrics, debounceMs, targetCheckMs: extra.targetCheckMs, onUpdate: (r) => updates.push(r) });
    return source.start();
  }

  const addressesOf = (rs: readonly MeshResource[] | undefined): (string | undefined)[] | undefined =>
    rs?.map((r) => (r.kind === 'WorkloadEntry' ? `${r.metadata.name}=${r.spec.address}` : undefined));

  void it('loads the directory on start and reloads on change', async () => {
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.1'));
    await start();
    assert.equal(updates.length, 1);
    assert.deepEqual(updates[0]?.map((r) => r.metadata.name), ['a']);
    assert.equal(source?.lastError(), undefined);

    await mkdir(path.join(dir, 'more'));
    await writeFile(path.join(dir, 'more', 'b.yml'), workload('b', '10.0.0.2'));
    await waitFor(() => updates.length === 2, 'the reload after adding b.yml');
    assert.deepEqual(updates[1]?.map((r) => r.metadata.name), ['a', 'b']);

    await unlink(path.join(dir, 'a.yaml'));
    await waitFor(() => updates.length === 3, 'the reload after removing a.yaml');
    assert.deepEqual(updates[2]?.map((r) => r.metadata.name), ['b']);
    assert.equal(await counter(metrics, 'configAccepted'), 3);
  });

  void it('rejects a bad edit as a whole, keeps the last good set, and recovers when it is fixed', async () => {
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.1'));
    await writeFile(path.join(dir, 'b.yaml'), workload('b', '10.0.0.2'));
    await start(300);
    assert.equal(updates.length, 1);

    // One good change and one bad file in the same burst: nothing of it is applied.
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.11'));
    await writeFile(
      path.join(dir, 'b.yaml'),
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: b, namespace: demo}\nspec:\n  hosts: [b.demo.svc]\n  ports:\n  - name: http\n    number: http\n',
    );
    await waitFor(() => source?.lastError() !== undefined, 'the rejected reload');
    assert.equal(source?.lastError(), `${path.join(dir, 'b.yaml')}:8 spec.ports[0].number: expected integer 1-65535, got "http"`);
    assert.equal(updates.length, 1, 'onUpdate is not called for a rejected reload');
    assert.equal(await counter(metrics, 'configRejected'), 1);

    await writeFile(path.join(dir, 'b.yaml'), workload('b', '10.0.0.12'));
    await waitFor(() => updates.length === 2, 'the reload after the fix');
    assert.equal(source?.lastError(), undefined);
    const addresses = updates[1]?.map((r) => (r.kind === 'WorkloadEntry' ? r.spec.address : undefined));
    assert.deepEqual(addresses, ['10.0.0.11', '10.0.0.12']);
  });

  void it('coalesces a burst of writes into one update', async () => {
    await start(300);
    assert.deepEqual(updates, [[]]);
    for (let i = 0; i < 20; i++) await writeFile(path.join(dir, `w${String(i).padStart(2, '0')}.yaml`), workload(`w${i}`, `10.0.1.${i + 1}`));
    await waitFor(() => updates.length === 2, 'the reload after the burst');
    // Give a second reload every chance to happen: it must not.
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(updates.length, 2);
    assert.equal(updates[1]?.length, 20);
  });

  void it('start() rejects an invalid initial configuration, naming every issue', async () => {
    await writeFile(path.join(dir, 'a.yaml'), 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\n');
    await writeFile(path.join(dir, 'b.yaml'), 'key: [unclosed\n');
    await assert.rejects(start(), (err: unknown) => {
      assert.ok(err instanceof ConfigRejectedError);
      assert.equal(err.issues.length, 2);
      assert.match(err.message, /a\.yaml:2 kind: unknown kind "Gateway"/);
      assert.match(err.message, /b\.yaml:\d+: invalid YAML/);
      return true;
    });
    assert.equal(updates.length, 0);
    assert.equal(await counter(metrics, 'configRejected'), 1);
  });

  void it('start() rejects a missing directory', async () => {
    const missing = path.join(dir, 'nope');
    source = createFileSource({ dir: missing, logger: silentLogger(), onUpdate: (r) => updates.push(r) });
    await assert.rejects(source.start(), /nope: cannot read config: no such file or directory/);
  });

  void it('refuses a reload that would remove every resource (a directory caught mid-deploy)', async () => {
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.1'));
    await start();
    assert.equal(updates.length, 1);
    await unlink(path.join(dir, 'a.yaml'));
    await waitFor(() => source?.lastError() !== undefined, 'the empty reload to be refused');
    assert.match(source?.lastError() ?? '', /no resources found \(the serving config has 1\)/);
    assert.equal(updates.length, 1, 'the mesh was torn down');
    assert.equal(await counter(metrics, 'configRejected'), 1);
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.1'));
    await waitFor(() => source?.lastError() === undefined, 'the restored file to be accepted');
    assert.equal(updates.length, 1, 'restoring the same content is no change');
  });

  void it('rejects an edit that breaks a reference from an unchanged file, and accepts its fix', async () => {
    await writeFile(path.join(dir, 'routes.yaml'), ROUTE);
    await writeFile(path.join(dir, 'services.yaml'), service('svc.demo.svc'));
    await start();
    assert.equal(updates.length, 1);
    // Only services.yaml changes; the VirtualService in routes.yaml now points at nothing.
    await writeFile(path.join(dir, 'services.yaml'), service('xyz.demo.svc'));
    await waitFor(() => source?.lastError() !== undefined, 'the rejected reload');
    assert.equal(source?.lastError(), `${path.join(dir, 'routes.yaml')}:10 spec.http[0].route[0].destination.host: host "svc.demo.svc" is not defined by any ServiceEntry`);
    assert.equal(updates.length, 1, 'the previous configuration keeps serving');
    await writeFile(path.join(dir, 'services.yaml'), service('svc.demo.svc'));
    await waitFor(() => source?.lastError() === undefined, 'the fixed reload');
    assert.equal(updates.length, 1, 'the fix restores the served content: no update');
    assert.equal(await source?.reload(), true);
  });

  void it('rejects a same-size invalid edit and serves the old content again after its revert', async () => {
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.1'));
    await writeFile(path.join(dir, 'b.yaml'), workload('b', '10.0.0.2'));
    await start();
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.x'));
    await waitFor(() => source?.lastError() !== undefined, 'the rejected reload');
    assert.match(source?.lastError() ?? '', /a\.yaml:7 spec\.address: /);
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.1'));
    await waitFor(() => source?.lastError() === undefined, 'the reverted file to be accepted');
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.3'));
    await waitFor(() => updates.length === 2, 'the next real change');
    assert.deepEqual(updates[1]?.map((r) => (r.kind === 'WorkloadEntry' ? r.spec.address : undefined)), ['10.0.0.3', '10.0.0.2']);
    assert.equal(await counter(metrics, 'configRejected'), 1);
  });

  void it('follows a renamed file: same resources from the new file, and a later error names it', async () => {
    await writeFile(path.join(dir, 'a.yaml'), workload('a', '10.0.0.1'));
    await start();
    assert.equal(updates[0]?.[0]?.origin?.file, path.join(dir, 'a.yaml'));
    await rename(path.join(dir, 'a.yaml'), path.join(dir, 'renamed.yaml'));
    assert.equal(await source?.reload(), true);
    await waitFor(() => updates.length === 2, 'the renamed file to be delivered');
    assert.deepEqual(addressesOf(updates[1]), ['a=10.0.0.1'], 'a rename changes no resource');
    assert.equal(updates[1]?.[0]?.origin?.file, path.join(dir, 'renamed.yaml'), 'origin names the file as it is now');
    assert.equal(await source?.reload(), true);
    assert.equal(updates.length, 2, 'nothing more to deliver');
    await writeFile(path.join(dir, 'renamed.yaml'), 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a, namespace: demo}\nspec: {address: 10.0.0.1, weight: -1}\n');
    assert.equal(await source?.reload(), false);
    assert.match(source?.lastError() ?? '', new RegExp(`^${path.join(dir, 'renamed.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4 spec\\.weight: `));
    await unlink(path.join(dir, 'renamed.yaml'));
    await writeFile(path.join(dir, 'b.yaml'), workload('b', '10.0.0.2'));
    assert.equal(await source?.reload(), true);
    assert.deepEqual(updates.at(-1)?.map((r) => r.metadata.name), ['b'], 'the deleted file\'s resources are gone');
  });

  void it('reloads when a Kubernetes ConfigMap mount swaps its ..data symlink, reading each file once', async () => {
    // kubelet's atomic writer: files are symlinks through ..data, which points at a timestamped directory.
    const version = async (name: string, files: Record<string, string>): Promise<void> => {
      await mkdir(path.join(dir, name));
      for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, name, file), text);
    };
    const swap = async (name: string): Promise<void> => {
      await symlink(name, path.join(dir, '..data_tmp'));
      await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    };
    await version('..2026_11_29_10_00_00.1', { 'a.yaml': workload('a', '10.0.0.1') });
    await symlink('..2026_11_29_10_00_00.1', path.join(dir, '..data'));
    await symlink('..data/a.yaml', path.join(dir, 'a.yaml'));
    // The periodic target check is off: the swap must be seen through the watch alone.
    await start(50, { targetCheckMs: 0 });
    assert.deepEqual(addressesOf(updates[0]), ['a=10.0.0.1'], 'a.yaml is read once, not again under ..data');

    // Swap with the old version left in place (chokidar alone misses this one).
    await version('..2026_11_29_10_05_00.2', { 'a.yaml': workload('a', '10.0.0.2') });
    await swap('..2026_11_29_10_05_00.2');
    await waitFor(() => updates.length === 2, 'the reload after the ..data swap');
    assert.deepEqual(addressesOf(updates[1]), ['a=10.0.0.2']);
    assert.equal(updates[1]?.[0]?.origin?.file, path.join(dir, 'a.yaml'));

    // A new key: kubelet adds its top-level symlink after the swap, then removes the old versions.
    await version('..2026_11_29_10_10_00.3', { 'a.yaml': workload('a', '10.0.0.3'), 'b.yaml': workload('b', '10.0.0.4') });
    await swap('..2026_11_29_10_10_00.3');
    await symlink('..data/b.yaml', path.join(dir, 'b.yaml'));
    await rm(path.join(dir, '..2026_11_29_10_00_00.1'), { recursive: true });
    await rm(path.join(dir, '..2026_11_29_10_05_00.2'), { recursive: true });
    await waitFor(() => addressesOf(updates.at(-1))?.join() === 'a=10.0.0.3,b=10.0.0.4', 'the reload after the second swap');
    assert.equal(source?.lastError(), undefined);
  });

  void it('follows a directory symlink that is re-pointed, and watches the new target', async () => {
    await mkdir(path.join(dir, 'v1'));
    await mkdir(path.join(dir, 'v2'));
    await writeFile(path.join(dir, 'v1', 'a.yaml'), workload('a', '10.0.0.1'));
    await writeFile(path.join(dir, 'v2', 'a.yaml'), workload('a', '10.0.0.2'));
    const current = path.join(dir, 'current');
    await symlink('v1', current);
    await start(50, { dir: current, targetCheckMs: 50 });
    assert.deepEqual(addressesOf(updates[0]), ['a=10.0.0.1']);

    // `ln -sfn v2 current`, atomically: a new symlink renamed over the old one.
    await symlink('v2', path.join(dir, 'current.tmp'));
    await rename(path.join(dir, 'current.tmp'), current);
    await waitFor(() => updates.length === 2, 'the reload after re-pointing the symlink');
    assert.deepEqual(addressesOf(updates[1]), ['a=10.0.0.2']);

    // An edit in the new target is seen: the watch moved with the symlink.
    await writeFile(path.join(dir, 'v2', 'b.yaml'), workload('b', '10.0.0.3'));
    await waitFor(() => updates.length === 3, 'the reload after an edit in the new target');
    assert.deepEqual(addressesOf(updates[2]), ['a=10.0.0.2', 'b=10.0.0.3']);
  });

  void it('watches a config directory replaced at the same path (rm -rf and copy, or a rename swap), and SIGHUP-style reload() re-watches it', async () => {
    const conf = path.join(dir, 'conf');
    await mkdir(conf);
    await writeFile(path.join(conf, 'a.yaml'), workload('a', '10.0.0.1'));
    await start(50, { dir: conf, targetCheckMs: 50 });
    assert.deepEqual(addressesOf(updates[0]), ['a=10.0.0.1']);

    // rm -rf, then a fresh copy at the same path: a new inode the old watch does not see.
    await rm(conf, { recursive: true, force: true });
    await mkdir(conf);
    await writeFile(path.join(conf, 'a.yaml'), workload('a', '10.0.0.2'));
    await waitFor(() => updates.some((u) => addressesOf(u)?.join() === 'a=10.0.0.2'), 'the reload after the directory was replaced');
    // Later edits in the new directory are seen: the watch moved to it.
    await writeFile(path.join(conf, 'b.yaml'), workload('b', '10.0.0.3'));
    await waitFor(() => updates.some((u) => addressesOf(u)?.join() === 'a=10.0.0.2,b=10.0.0.3'), 'an edit in the replaced directory');

    // A rename swap: mv conf conf.old && mv conf.new conf.
    const next = path.join(dir, 'conf.new');
    await mkdir(next);
    await writeFile(path.join(next, 'a.yaml'), workload('a', '10.0.0.4'));
    await rename(conf, path.join(dir, 'conf.old'));
    await rename(next, conf);
    await waitFor(() => updates.some((u) => addressesOf(u)?.join() === 'a=10.0.0.4'), 'the reload after the rename swap');
    await writeFile(path.join(conf, 'c.yaml'), workload('c', '10.0.0.5'));
    await waitFor(() => updates.some((u) => addressesOf(u)?.join() === 'a=10.0.0.4,c=10.0.0.5'), 'an edit after the rename swap');
  });

  void it('reload() re-watches a replaced directory even with the periodic check off', async () => {
    const conf = path.join(dir, 'conf2');
    await mkdir(conf);
    await writeFile(path.join(conf, 'a.yaml'), workload('a', '10.0.0.1'));
    await start(50, { dir: conf, targetCheckMs: 0 });
    await rm(conf, { recursive: true, force: true });
    await mkdir(conf);
    await writeFile(path.join(conf, 'a.yaml'), workload('a', '10.0.0.2'));
    assert.equal(await source?.reload(), true);
    assert.deepEqual(addressesOf(updates.at(-1)), ['a=10.0.0.2']);
    await writeFile(path.join(conf, 'b.yaml'), workload('b', '10.0.0.3'));
    await waitFor(() => addressesOf(updates.at(-1))?.join() === 'a=10.0.0.2,b=10.0.0.3', 'an edit after reload() re-watched the new directory');
  });
});
