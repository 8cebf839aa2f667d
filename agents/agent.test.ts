import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../src/observability/logger.js';
import { startAgent, type Agent } from './agent.js';
import { loadAgentConfig } from './config.js';
import { SVID_FILE } from './svid.js';
import { startTestControlPlane, type TestControlPlane } from './test-control-plane.js';
import { freePort, shortTempDir } from './testing.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Serial numbers of the certificates Envoy currently holds (admin `/certs`). */
async function envoyCertSerials(adminUrl: string): Promise<string[]> {
  const res = await fetch(`${adminUrl}/certs`);
  const body = (await res.json()) as { certificates?: { cert_chain?: { serial_number?: string }[] }[] };
  return (body.certificates ?? []).flatMap((c) => (c.cert_chain ?? []).map((x) => (x.serial_number ?? '').toLowerCase()));
}

void describe('node agent: SVID → SDS → bootstrap → Envoy, against the real CA', () => {
  let dir: string;
  let cp: TestControlPlane;
  let agent: Agent | undefined;

  before(async () => {
    dir = await shortTempDir();
    cp = await startTestControlPlane(path.join(dir, 'cp'), { ads: true });
  });
  after(async () => {
    await agent?.stop();
    await cp.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  void it('Envoy reaches the control plane over mTLS with the SDS-served SVID, gets the renewed SVID, and stops cleanly', async () => {
    const tokenPath = path.join(dir, 'token');
    await cp.writeToken(tokenPath, 'shop', 'web');
    const file = path.join(dir, 'agent.yaml');
    await fs.writeFile(file, ['namespace: shop', 'serviceAccount: web', 'workloadName: vm-a', 'labels:', '  app: web', `rootCertPath: ${cp.rootCertPath}`].join('\n'));
    const config = loadAgentConfig({
      file,
      env: { SKIFF_WORKLOAD_IP: '127.0.0.1', SKIFF_CONTROL_PLANE: cp.address },
      overrides: {
        tokenPath,
        stateDir: path.join(dir, 'state'),
        socketDir: path.join(dir, 'run'),
        envoyAdminPort: await freePort(),
        envoyDrainSeconds: 0,
        certTtlSeconds: 8,
      },
    });
    agent = await startAgent(config, { logger: silentLogger(), supervisor: { restartInitialMs: 200 } });
    await agent.ready(30_000);

    const ads = cp.adsCallers.find((c) => c.nodeId === 'sidecar~127.0.0.1~vm-a.shop~shop.svc.cluster.local');
    assert.ok(ads, `Envoy opened ADS with the Istio node id (saw ${JSON.stringify(cp.adsCallers)})`);
    assert.equal(ads.peerSpiffeId, 'spiffe://cluster.local/ns/shop/sa/web', 'Envoy presented the SVID from SDS as its client certificate');

    const first = agent.svid();
    assert.ok((await envoyCertSerials(agent.envoyAdminUrl)).includes(first.serial), 'Envoy holds the SVID');
    assert.equal((await fs.stat(agent.bootstrapPath)).mode & 0o777, 0o600);

    // Renewal at about half of the 8 s lifetime reaches Envoy through SDS.
    const deadline = first.notAfter.getTime() + 2000;
    let serials: string[] = [];
    while (Date.now() < deadline) {
      const current = agent.svid();
      if (current.serial !== first.serial) {
        serials = await envoyCertSerials(agent.envoyAdminUrl);
        if (serials.includes(current.serial)) break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.notEqual(agent.svid().serial, first.serial, 'the SVID was renewed');
    assert.ok(serials.includes(agent.svid().serial), 'Envoy got the renewed SVID over SDS');

    const envoyPid = agent.envoyPid();
    assert.ok(envoyPid && alive(envoyPid));
    await agent.stop();
    agent = undefined;
    assert.ok(!alive(envoyPid), 'Envoy is gone after stop()');
    await assert.rejects(fs.stat(path.join(dir, 'run', 'sds.sock')), { code: 'ENOENT' }, 'the SDS socket is removed');
    await fs.stat(path.join(dir, 'state', SVID_FILE)); // kept for the next start
  });

  void it('refuses to start with a clear error when there is no SVID and no token, leaving nothing running', async () => {
    const config = loadAgentConfig({
      env: {},
      overrides: {
        controlPlane: cp.address,
        rootCertPath: cp.rootCertPath,
        namespace: 'shop',
        serviceAccount: 'web',
        workloadName: 'vm-b',
        workloadIp: '127.0.0.1',
        tokenPath: path.join(dir, 'missing-token'),
        stateDir: path.join(dir, 'state-b'),
        socketDir: path.join(dir, 'run-b'),
        envoyAdminPort: await freePort(),
      },
    });
    await assert.rejects(startAgent(config, { logger: silentLogger() }), /no valid SVID .* bootstrap token/);
    await assert.rejects(fs.stat(path.join(dir, 'run-b', 'sds.sock')), { code: 'ENOENT' });
  });

  void it('a start waiting for an unreachable control plane can be aborted (SIGTERM during start)', async () => {
    const tokenPath = path.join(dir, 'token-c');
    await cp.writeToken(tokenPath, 'shop', 'web');
    const config = loadAgentConfig({
      env: {},
      overrides: {
        controlPlane: `127.0.0.1:${await freePort()}`, // nothing listens here
        rootCertPath: cp.rootCertPath,
        namespace: 'shop',
        serviceAccount: 'web',
        workloadName: 'vm-c',
        workloadIp: '127.0.0.1',
        tokenPath,
        stateDir: path.join(dir, 'state-c'),
        socketDir: path.join(dir, 'run-c'),
        envoyAdminPort: await freePort(),
      },
    });
    const abort = new AbortController();
    const starting = startAgent(config, { logger: silentLogger(), signal: abort.signal });
    const early = await Promise.race([starting.then(() => 'started', () => 'failed'), new Promise((r) => setTimeout(() => r('waiting'), 1000))]);
    assert.equal(early, 'waiting', 'the agent keeps trying while the control plane is down');
    abort.abort();
    await assert.rejects(starting);
    await assert.rejects(fs.stat(path.join(dir, 'run-c', 'sds.sock')), { code: 'ENOENT' });
  });
});
