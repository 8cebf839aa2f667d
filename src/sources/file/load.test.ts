import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { formatIssue } from '../../resources/issues.js';
import { loadDirectory } from './load.js';

function workload(name: string, address: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: ${name}\n  namespace: demo\nspec:\n  address: ${address}\n`;
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
