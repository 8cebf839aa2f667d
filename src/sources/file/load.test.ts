import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { formatIssue } from '../../resources/issues.js';
import { createLoadCache, loadDirectory, type LoadCache, type LoadResult } from './load.js';

function workload(name: string, address: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: ${name}\n  namespace: demo\nspec:\n  address: ${address}\n`;
}

function service(name: string, host: string, port = 8080): string {
  return `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: ${name}\n  namespace: demo\nspec:\n  hosts: [${host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n    - {name: http, number: ${port}, protocol: HTTP}\n  workloadSelector:\n    labels: {app: ${name}}\n`;
}

function route(name: string, host: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ${name}\n  namespace: demo\nspec:\n  hosts: [${host}]\n  http:\n    - route:\n        - destination: {host: ${host}, port: {number: 8080}}\n`;
}

void describe('loadDirectory', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'skiff-load-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void it('reads *.yaml, *.yml and *.json recursively in sorted order, skipping hidden and other files', async () => {
    const root = path.join(dir, 'tree');
    await mkdir(path.join(root, 'b-dir'), { recursive: true });
    await mkdir(path.join(root, '.hidden'), { recursive: true });
    await writeFile(path.join(root, 'z.yaml'), workload('z', '10.0.0.26'));
    await writeFile(path.join(root, 'a.yml'), workload('a', '10.0.0.1'));
    await writeFile(path.join(root, 'b-dir', 'c.json'), JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'c', namespace: 'demo' }, spec: { address: '10.0.0.3' } }));
    await writeFile(path.join(root, '.hidden', 'h.yaml'), 'not: [valid');
    await writeFile(path.join(root, '.#a.yaml'), 'not: [valid');
    await writeFile(path.join(root, 'README.md'), '# not config');
    await symlink(path.join(root, 'a.yml'), path.join(root, 'link.yaml'));

    const r = await loadDirectory(root);
    // link.yaml points at a.yml: same resource twice, reported as a duplicate naming both files.
    assert.deepEqual(r.errors.map(formatIssue), [
      `${path.join(root, 'link.yaml')}:4 metadata.name: duplicate WorkloadEntry demo/a: also defined at ${path.join(root, 'a.yml')}:1`,
    ]);
    assert.deepEqual(r.resources.map((x) => [x.metadata.name, x.origin?.file]), [
      ['a', path.join(root, 'a.yml')],
      ['c', path.join(root, 'b-dir', 'c.json')],
      ['a', path.join(root, 'link.yaml')],
      ['z', path.join(root, 'z.yaml')],
    ]);
  });

  void it('loads a single file and runs the set-level checks', async () => {
    const file = path.join(dir, 'one.yaml');
    await writeFile(
      file,
      `${workload('vm', '10.0.0.1')}---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: svc, namespace: demo}\nspec:\n  hosts: [svc.demo.svc]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  workloadSelector: {labels: {app: none}}\n`,
    );
    const r = await loadDirectory(file);
    assert.deepEqual(r.errors, []);
    assert.equal(r.resources.length, 2);
    assert.deepEqual(r.warnings.map(formatIssue), [`${file}:16 spec.workloadSelector: selects no WorkloadEntry in namespace demo yet: the service has no endpoints`]);
  });

  void it('reports a missing directory as an error, not an exception', async () => {
    const r = await loadDirectory(path.join(dir, 'missing'));
    assert.deepEqual(r.errors.map(formatIssue), [`${path.join(dir, 'missing')}: cannot read config: no such file or directory`]);
  });

  void it('loads the example mesh without errors or warnings', async () => {
    const r = await loadDirectory(fileURLToPath(new URL('../../../examples/basic', import.meta.url)));
    assert.deepEqual(r.errors.map(formatIssue), []);
    assert.deepEqual(r.warnings.map(formatIssue), []);
    assert.ok(r.resources.some((x) => x.kind === 'PeerAuthentication' && x.metadata.namespace === 'skiff-system'));
  });
});

void describe('loadDirectory with a LoadCache (incremental reloads)', () => {
  let dir: string;
  let cache: LoadCache;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'skiff-load-cache-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A fresh directory and cache for one test. */
  async function fresh(name: string): Promise<string> {
    const d = path.join(dir, name);
    await mkdir(d);
    cache = createLoadCache();
    return d;
  }

  /** Loads with the cache and checks the result equals a load without it (the cache changes nothing but speed). */
  async function load(d: string): Promise<LoadResult> {
    const cached = await loadDirectory(d, cache);
    assert.deepEqual(cached, await loadDirectory(d), 'a cached load differs from a full load');
    return cached;
  }

  const addresses = (r: LoadResult): (string | undefined)[] => r.resources.map((x) => (x.kind === 'WorkloadEntry' ? x.spec.address : undefined));

  void it('sees a same-size edit and a change back to the previous content', async () => {
    const d = await fresh('revert');
    const file = path.join(d, 'a.yaml');
    await writeFile(file, workload('a', '10.0.0.1'));
    await writeFile(path.join(d, 'b.yaml'), workload('b', '10.0.0.2'));
    assert.deepEqual(addresses(await load(d)), ['10.0.0.1', '10.0.0.2']);
    // Same size, written right after the last read (a timestamp check could miss it).
    await writeFile(file, workload('a', '10.0.0.9'));
    assert.deepEqual(addresses(await load(d)), ['10.0.0.9', '10.0.0.2']);
    await writeFile(file, workload('a', '10.0.0.1'));
    assert.deepEqual(addresses(await load(d)), ['10.0.0.1', '10.0.0.2']);
  });

  void it('gives back the same resource objects for unchanged files', async () => {
    const d = await fresh('identity');
    await writeFile(path.join(d, 'a.yaml'), workload('a', '10.0.0.1'));
    await writeFile(path.join(d, 'b.yaml'), workload('b', '10.0.0.2'));
    const first = await loadDirectory(d, cache);
    await writeFile(path.join(d, 'b.yaml'), workload('b', '10.0.0.3'));
    const second = await loadDirectory(d, cache);
    assert.equal(second.resources[0], first.resources[0], 'a.yaml was not changed');
    assert.notEqual(second.resources[1], first.resources[1]);
    assert.deepEqual(addresses(second), ['10.0.0.1', '10.0.0.3']);
  });

  void it('names the new file after a rename, in resources and in set-level issues', async () => {
    const d = await fresh('rename');
    await writeFile(path.join(d, 'a.yaml'), service('svc', 'svc.demo.svc'));
    const before = await load(d);
    assert.deepEqual(before.warnings.map(formatIssue), [`${path.join(d, 'a.yaml')}:12 spec.workloadSelector: selects no WorkloadEntry in namespace demo yet: the service has no endpoints`]);
    await rename(path.join(d, 'a.yaml'), path.join(d, 'z.yaml'));
    const after = await load(d);
    assert.deepEqual(after.resources.map((x) => x.origin?.file), [path.join(d, 'z.yaml')]);
    assert.deepEqual(after.warnings.map(formatIssue), [`${path.join(d, 'z.yaml')}:12 spec.workloadSelector: selects no WorkloadEntry in namespace demo yet: the service has no endpoints`]);
    assert.deepEqual([...cache.files.keys()], [path.join(d, 'z.yaml')], 'the old name is dropped from the cache');
    // Unchanged now: the warning's line comes from the cached file.
    assert.deepEqual((await load(d)).warnings, after.warnings);
  });

  void it('drops the resources of a deleted file (and the duplicate they caused)', async () => {
    const d = await fresh('delete');
    await writeFile(path.join(d, 'a.yaml'), workload('a', '10.0.0.1'));
    await writeFile(path.join(d, 'copy.yaml'), workload('a', '10.0.0.1'));
    const dup = await load(d);
    assert.deepEqual(dup.errors.map(formatIssue), [`${path.join(d, 'copy.yaml')}:4 metadata.name: duplicate WorkloadEntry demo/a: also defined at ${path.join(d, 'a.yaml')}:1`]);
    await unlink(path.join(d, 'copy.yaml'));
    const r = await load(d);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.resources.map((x) => x.origin?.file), [path.join(d, 'a.yaml')]);
    const kept = r.resources[0];
    await unlink(path.join(d, 'a.yaml'));
    assert.deepEqual(await load(d), { resources: [], warnings: [], errors: [] });
    // Put back as it was (a directory emptied mid-deploy): served from the cache, same content.
    await writeFile(path.join(d, 'a.yaml'), workload('a', '10.0.0.1'));
    const back = await load(d);
    assert.equal(back.resources[0], kept);
    await writeFile(path.join(d, 'a.yaml'), workload('a', '10.0.0.2'));
    assert.deepEqual(addresses(await load(d)), ['10.0.0.2']);
  });

  void it('does not keep an invalid edit once it is reverted, nor a good parse once a file turns invalid', async () => {
    const d = await fresh('invalid');
    const file = path.join(d, 's.yaml');
    const good = service('svc', 'svc.demo.svc');
    await writeFile(file, good);
    await writeFile(path.join(d, 'w.yaml'), workload('w', '10.0.0.1').replace('address: 10.0.0.1', 'address: 10.0.0.1\n  labels: {app: svc}'));
    const first = await load(d);
    assert.deepEqual(first.errors, []);
    // Same size: the port number becomes a string.
    await writeFile(file, good.replace('number: 8080', 'number: 80x0'));
    const bad = await load(d);
    assert.deepEqual(bad.errors.map(formatIssue), [`${file}:11 spec.ports[0].number: expected integer 1-65535, got "80x0"`]);
    assert.deepEqual(bad.resources.map((x) => x.kind), ['WorkloadEntry'], 'the invalid ServiceEntry is left out');
    await writeFile(file, good);
    const again = await load(d);
    assert.deepEqual(again.errors, []);
    assert.deepEqual(again.resources.map((x) => x.kind), ['ServiceEntry', 'WorkloadEntry']);
    // Invalid YAML, then fixed.
    await writeFile(file, 'key: [unclosed\n');
    assert.match((await load(d)).errors.map(formatIssue).join('\n'), /s\.yaml:\d+: invalid YAML/);
    await writeFile(file, good);
    assert.deepEqual((await load(d)).errors, []);
  });

  void it('rejects an edit that breaks a reference from an unchanged file, located in that file', async () => {
    const d = await fresh('reference');
    await writeFile(path.join(d, 'routes.yaml'), route('r', 'svc.demo.svc'));
    await writeFile(path.join(d, 'services.yaml'), service('svc', 'svc.demo.svc'));
    assert.deepEqual((await load(d)).errors, []);
    // routes.yaml is unchanged (its resources come from the cache); the service loses its host.
    await writeFile(path.join(d, 'services.yaml'), service('svc', 'other.demo.svc'));
    const broken = await load(d);
    assert.deepEqual(broken.errors.map(formatIssue), [`${path.join(d, 'routes.yaml')}:10 spec.http[0].route[0].destination.host: host "svc.demo.svc" is not defined by any ServiceEntry`]);
    // And a port the service no longer has.
    await writeFile(path.join(d, 'services.yaml'), service('svc', 'svc.demo.svc', 9090));
    assert.deepEqual((await load(d)).errors.map(formatIssue), [`${path.join(d, 'routes.yaml')}:10 spec.http[0].route[0].destination.port.number: service svc.demo.svc has no port 8080 (it has 9090)`]);
    await writeFile(path.join(d, 'services.yaml'), service('svc', 'svc.demo.svc'));
    assert.deepEqual((await load(d)).errors, []);
  });

  void it('reports a dangling symlink, and loads cleanly once it is gone', async () => {
    const d = await fresh('unreadable');
    await writeFile(path.join(d, 'a.yaml'), workload('a', '10.0.0.1'));
    await load(d);
    // A dangling symlink is listed but cannot be read.
    await symlink(path.join(d, 'missing.yaml'), path.join(d, 'b.yaml'));
    assert.deepEqual((await load(d)).errors.map(formatIssue), [`${path.join(d, 'b.yaml')}: cannot read: no such file or directory`]);
    await unlink(path.join(d, 'b.yaml'));
    assert.deepEqual((await load(d)).errors, []);
  });
});
