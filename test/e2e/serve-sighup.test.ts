/**
 * `skiff serve` on SIGHUP re-reads its config directory (as Consul re-reads its configuration):
 * the process stays up, logs one line with the outcome, serves an accepted change, keeps the last
 * good configuration on a rejected one, and ignores SIGHUP while stopping.
 *
 * The changes are made where the file watcher does not look today: a ConfigMap-style mount in a
 * subdirectory (`team/mesh.yaml -> ..data/mesh.yaml`) whose `..data` symlink is swapped while the
 * old version stays in place (the watcher follows `..data` only at the top level). The assertions
 * do not depend on that: they check the logged outcome and what is served after the SIGHUP.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProcessGroup } from '../helpers/processes.js';
import { eventually, startControlPlaneProc, type ControlPlaneProc } from '../helpers/skiff.js';

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: demo}
spec:
  hosts: [backend.demo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: backend}}
`;

function workload(name: string, address: string): string {
  return `---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${name}, namespace: demo}\nspec:\n  address: ${address}\n  labels: {app: backend}\n`;
}

void describe('skiff serve: SIGHUP reloads the config directory', () => {
  const group = new ProcessGroup();
  let tmp: string;
  let team: string;
  let cp: ControlPlaneProc;

  /** Writes `..<version>/mesh.yaml` in `team/` and points `team/..data` at it (the old version stays). */
  function publish(version: string, text: string): void {
    fs.mkdirSync(path.join(team, `..${version}`));
    fs.writeFileSync(path.join(team, `..${version}`, 'mesh.yaml'), text);
    fs.symlinkSync(`..${version}`, path.join(team, '..data_tmp'));
    fs.renameSync(path.join(team, '..data_tmp'), path.join(team, '..data'));
  }

  async function served(): Promise<string[]> {
    const res = await fetch(`http://127.0.0.1:${cp.monitoringPort}/debug/registry`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { resources: string[] };
    return body.resources;
  }

  /** Output lines logged after `mark` (an offset into the output), parsed as JSON where they are. */
  function linesAfter(mark: number): Record<string, unknown>[] {
    return cp.proc
      .output()
      .slice(mark)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-sighup-'));
    const configDir = path.join(tmp, 'mesh');
    team = path.join(configDir, 'team');
    fs.mkdirSync(team, { recursive: true });
    publish('v1', SERVICE + workload('a', '10.0.0.1'));
    fs.symlinkSync('..data/mesh.yaml', path.join(team, 'mesh.yaml'));
    cp = await startControlPlaneProc(group, { configDir, dataDir: path.join(tmp, 'data'), address: '127.0.0.1' });
  });

  after(async () => {
    await group.stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  void it('serves a change only SIGHUP picked up, and logs the accepted reload', async () => {
    assert.deepEqual((await served()).filter((r) => r.startsWith('WorkloadEntry/')), ['WorkloadEntry/demo/a']);
    publish('v2', SERVICE + workload('a', '10.0.0.1') + workload('b', '10.0.0.2'));
    const mark = cp.proc.output().length;
    cp.proc.child.kill('SIGHUP');
    await cp.proc.waitFor(/"outcome":"accepted"/, 30_000);
    const line = linesAfter(mark).find((l) => l['outcome'] !== undefined);
    assert.equal(line?.['msg'], 'config files reloaded');
    assert.equal(cp.proc.child.exitCode, null, 'serve is still running');
    await eventually('b to be served', async () => (await served()).includes('WorkloadEntry/demo/b'));
  });

  void it('logs a rejected reload with file:line path: message and keeps the last good config serving', async () => {
    publish('v3', SERVICE + workload('a', '10.0.0.1') + workload('b', '10.0.0.x'));
    const mark = cp.proc.output().length;
    cp.proc.child.kill('SIGHUP');
    await cp.proc.waitFor(/"outcome":"rejected"/, 30_000);
    const line = linesAfter(mark).find((l) => l['outcome'] === 'rejected');
    const issues = line?.['issues'] as string[] | undefined;
    assert.equal(issues?.length, 1);
    assert.match(issues?.[0] ?? '', new RegExp(`^${path.join(team, 'mesh.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+ spec\\.address: `));
    assert.equal(cp.proc.child.exitCode, null, 'serve is still running');
    const resources = await served();
    assert.ok(resources.includes('WorkloadEntry/demo/a') && resources.includes('WorkloadEntry/demo/b'), `still served: ${resources.join(', ')}`);
    const ready = await fetch(`http://127.0.0.1:${cp.monitoringPort}/readyz`);
    assert.equal(ready.status, 200, 'a rejected reload does not make a serving control plane unready');
  });

  void it('ignores SIGHUP while stopping and exits cleanly', async () => {
    const mark = cp.proc.output().length;
    cp.proc.child.kill('SIGTERM');
    await cp.proc.waitFor(/stopping control plane/, 10_000);
    cp.proc.child.kill('SIGHUP');
    assert.equal(await cp.proc.exited, 0);
    assert.equal(cp.proc.child.signalCode, null, 'not killed by SIGHUP');
    assert.equal(linesAfter(mark).filter((l) => l['outcome'] !== undefined).length, 0, 'no reload while stopping');
  });
});
