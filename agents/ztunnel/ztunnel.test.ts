import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { ZtunnelBinaryError, ZtunnelProxy, ZtunnelSupervisor, ztunnelBinaryProblem, ztunnelEnvironment } from './index.js';

void describe('ztunnel mode pieces', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ztu-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  void it("builds ztunnel's dedicated-mode environment and passes nothing else of the agent's", () => {
    const env = ztunnelEnvironment({
      namespace: 'shop',
      serviceAccount: 'web',
      workloadName: 'web-1',
      workloadIp: '198.18.49.2',
      controlPlane: '198.18.49.1:15012',
      clusterId: 'skiff',
      rootCertFile: '/var/lib/skiff-agent/ztunnel/root-cert.pem',
      tokenFile: '/var/lib/skiff-agent/ztunnel/session-token',
      logLevel: 'warn',
      inherit: { PATH: '/usr/bin', SKIFF_TOKEN_PATH: '/secret', HOME: '/root' },
    });
    assert.equal(env['SERVICE_ACCOUNT'], undefined, 'would turn on ztunnel shared-mode self identity');
    assert.equal(env['NODE_NAME'], undefined, 'would hide node-less workloads from dedicated mode');
    assert.deepEqual(
      env,
      {
        PATH: '/usr/bin',
        PROXY_MODE: 'dedicated',
        PROXY_WORKLOAD_INFO: 'shop/web-1/web',
        XDS_ADDRESS: 'https://198.18.49.1:15012',
        CA_ADDRESS: 'https://198.18.49.1:15012',
        XDS_ROOT_CA: '/var/lib/skiff-agent/ztunnel/root-cert.pem',
        CA_ROOT_CA: '/var/lib/skiff-agent/ztunnel/root-cert.pem',
        AUTH_TOKEN: '/var/lib/skiff-agent/ztunnel/session-token',
        CLUSTER_ID: 'skiff',
        INSTANCE_IP: '198.18.49.2',
        POD_NAME: 'web-1',
        POD_NAMESPACE: 'shop',
        ENABLE_ORIG_SRC: 'false',
        RUST_LOG: 'warn',
      },
    );
  });

  void it('says why a binary cannot run', () => {
    assert.match(ztunnelBinaryProblem(path.join(dir, 'nope')) ?? '', /does not exist$/);
    assert.match(ztunnelBinaryProblem(dir) ?? '', /is not a file$/);
    const f = path.join(dir, 'plain');
    fs.writeFileSync(f, 'x', { mode: 0o600 });
    assert.match(ztunnelBinaryProblem(f) ?? '', /is not executable \(mode 0600\)$/);
    const proxy = new ZtunnelProxy({
      ztunnelPath: f,
      stateDir: dir,
      controlPlane: '127.0.0.1:1',
      rootCertPath: f,
      controlPlaneSpiffeId: 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane',
      namespace: 'shop',
      serviceAccount: 'web',
      workloadIp: '127.0.0.1',
      clusterId: 'skiff',
      logLevel: 'info',
      sessionTokenTtlSeconds: 60,
      svid: () => {
        throw new Error('not needed');
      },
      logger: silentLogger(),
    });
    assert.throws(() => proxy.checkBinary(), (err: unknown) => err instanceof ZtunnelBinaryError && /cannot run ztunnel: .* is not executable/.test(err.message));
  });

  void it('runs ztunnel with exactly its environment, restarts it with back-off, and stops it with SIGTERM', async () => {
    const out = path.join(dir, 'runs');
    const bin = path.join(dir, 'fake-ztunnel');
    // Exits at once twice (crash), then stays up until SIGTERM, recording its environment each run.
    fs.writeFileSync(
      bin,
      `#!/bin/sh\necho "$PROXY_MODE $PROXY_WORKLOAD_INFO \${SKIFF_SECRET:-none}" >> ${JSON.stringify(out)}\nn=$(wc -l < ${JSON.stringify(out)})\n[ "$n" -lt 3 ] && exit 3\ntrap 'echo term >> ${JSON.stringify(out)}; exit 0' TERM\nwhile true; do sleep 0.1; done\n`,
      { mode: 0o755 },
    );
    process.env['SKIFF_SECRET'] = 'leak';
    const sup = new ZtunnelSupervisor({ ztunnelPath: bin, env: { PATH: process.env['PATH'] ?? '', PROXY_MODE: 'dedicated', PROXY_WORKLOAD_INFO: 'shop/web-1/web' }, logger: silentLogger(), restartInitialMs: 50, restartMaxMs: 200 });
    try {
      sup.start();
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (!fs.existsSync(out) || fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length < 3)) await new Promise((r) => setTimeout(r, 50));
      assert.equal(sup.restarts, 2);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(sup.pid() !== undefined);
    } finally {
      delete process.env['SKIFF_SECRET'];
      await sup.stop();
    }
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    assert.deepEqual(lines, ['dedicated shop/web-1/web none', 'dedicated shop/web-1/web none', 'dedicated shop/web-1/web none', 'term']);
    assert.equal(sup.pid(), undefined);
  });
});
