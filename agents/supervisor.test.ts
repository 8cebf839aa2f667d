import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../src/observability/logger.js';
import { envoyBootstrapJson } from './bootstrap.js';
import { findEnvoy } from './envoy-path.js';
import { EnvoySupervisor } from './supervisor.js';
import { freePort, shortTempDir } from './testing.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The /dev/shm region of the running Envoy, from the base id it wrote next to its bootstrap. */
async function hotRestartMemory(bootstrapPath: string): Promise<string | undefined> {
  for (let i = 0; i < 50; i++) {
    const text = await fs.readFile(`${bootstrapPath}.base-id`, 'utf8').catch(() => '');
    if (text.trim()) return `/dev/shm/envoy_shared_memory_${Number(text.trim()) * 10}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

void describe('Envoy supervisor (real Envoy)', () => {
  let dir: string;
  let bootstrapPath: string;
  let adminPort: number;

  before(async () => {
    dir = await shortTempDir();
    adminPort = await freePort();
    bootstrapPath = path.join(dir, 'envoy.json');
    const bootstrap = { node: { id: 'supervisor-test', cluster: 'test' }, admin: { address: { socketAddress: { address: '127.0.0.1', portValue: adminPort } } } };
    await fs.writeFile(bootstrapPath, envoyBootstrapJson(bootstrap), { mode: 0o600 });
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  void it('restarts Envoy after kill -9 and stops it on stop()', async () => {
    const sup = new EnvoySupervisor({ envoyPath: findEnvoy(), bootstrapPath, adminPort, logger: silentLogger(), drainSeconds: 0, restartInitialMs: 200 });
    try {
      sup.start();
      await sup.ready(30_000);
      const first = sup.pid();
      assert.ok(first && alive(first));
      const shm = await hotRestartMemory(bootstrapPath);
      assert.ok(shm && existsSync(shm), 'Envoy holds its hot restart shared memory under the name the supervisor cleans');
      assert.equal(sup.adminUrl, `http://127.0.0.1:${adminPort}`);

      process.kill(first, 'SIGKILL');
      const second = await until('a restarted Envoy', () => {
        const pid = sup.pid();
        return pid !== undefined && pid !== first ? pid : undefined;
      });
      await sup.ready(30_000);
      assert.equal(sup.restarts, 1);
      assert.ok(!alive(first), 'the killed Envoy is gone');

      const shm2 = await hotRestartMemory(bootstrapPath);
      await sup.stop();
      assert.ok(!existsSync(shm), 'the killed Envoy left no shared memory behind');
      assert.ok(shm2 && !existsSync(shm2), 'the stopped Envoy left no shared memory behind');
      assert.equal(sup.pid(), undefined);
      assert.ok(!alive(second), 'stop() ended Envoy');
      await assert.rejects(fetch(`${sup.adminUrl}/ready`), 'the admin port is closed');
    } finally {
      await sup.stop();
    }
  });

  void it('backs off between restarts of an Envoy that keeps failing, and stop() ends the loop', async () => {
    const badBootstrap = path.join(dir, 'bad.json');
    await fs.writeFile(badBootstrap, '{"admin": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": "not a port"}}}}');
    const sup = new EnvoySupervisor({ envoyPath: findEnvoy(), bootstrapPath: badBootstrap, adminPort, logger: silentLogger(), drainSeconds: 0, restartInitialMs: 100, restartMaxMs: 400 });
    const started = Date.now();
    sup.start();
    await until('three restarts', () => (sup.restarts >= 3 ? true : undefined), 20_000);
    // delays 100 + 200 + 400 ms at least before the third restart
    assert.ok(Date.now() - started >= 700, 'restart delays grow');
    await sup.stop();
    const count = sup.restarts;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(sup.restarts, count, 'no restart after stop()');
    await assert.rejects(sup.ready(1000), /stopped/);
  });

  void it('reports a missing Envoy binary through its restart loop instead of crashing the agent', async () => {
    const sup = new EnvoySupervisor({ envoyPath: path.join(dir, 'no-such-envoy'), bootstrapPath, adminPort, logger: silentLogger(), restartInitialMs: 50 });
    sup.start();
    await until('a restart attempt', () => (sup.restarts >= 1 ? true : undefined), 5000);
    await sup.stop();
  });
});
