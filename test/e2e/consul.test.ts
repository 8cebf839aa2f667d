/**
 * Consul catalog discovery end to end (issue 5 §3): the Consul test server (test/helpers/
 * consul-server.ts) runs on the host; a real control plane follows it (`--consul-address`); VMs in
 * network namespaces run real agents, real Envoy and an echo app:
 *
 *   client  — calls web.service.consul through its sidecar's egress listener 127.0.0.1:8080
 *   w1, w2, w3 — instances of the Consul service `web` (w3 registers later)
 *   f1      — an instance of the same host defined in the mesh YAML (files and Consul, one mesh)
 *
 * Lab subnet 198.18.43.0/24.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startConsulTestServer, type ConsulTestServer } from '../helpers/consul-server.js';
import { canCreateNetns, createLab, type Lab } from '../helpers/netns.js';
import { ProcessGroup } from '../helpers/processes.js';
import { createToken, eventually, probe, startAgentProc, startControlPlaneProc, startEcho, type ControlPlaneProc } from '../helpers/skiff.js';

const NS = 'shop';
const HOST = 'web.service.consul';
const CLUSTER = `outbound|8080||${HOST}`;

function meshYaml(f1Ip: string): string {
  return `
# Every proxy in the namespace: inbound on <vm ip>:8080 to the app on 127.0.0.1:9080, outbound to
# the web service on 127.0.0.1:8080.
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ${NS}}
spec:
  ingress:
    - port: {number: 8080, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:9080
  egress:
    - bind: 127.0.0.1
      port: {number: 8080, protocol: HTTP, name: http-egress}
      hosts: ["${NS}/${HOST}"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web-static, namespace: ${NS}}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: web-static}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: f1, namespace: ${NS}}
spec: {address: ${f1Ip}, serviceAccount: web, labels: {app: web-static}}
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Skipped without root on a developer machine; in CI (CI=true) a missing capability is a failure.
const skip = canCreateNetns() || process.env['CI'] ? false : 'needs root and iproute2 to create network namespaces';

describe('Consul catalog discovery: Consul services reach the mesh through real Envoy sidecars', { skip, timeout: 300_000 }, () => {
  const group = new ProcessGroup();
  let lab: Lab;
  let consul: ConsulTestServer;
  let cp: ControlPlaneProc;
  let tmp: string;
  const socketDirs: string[] = [];
  const ip = (vm: string): string => lab.vms[vm]!.ip;
  const on = (vm: string) => ({ lab, vm });
  const callWeb = (count = 1, intervalMs = 0) => probe(['http', '--url', 'http://127.0.0.1:8080/hello', '--host', HOST, '--count', String(count), '--interval-ms', String(intervalMs)], on('client'));
  const appsAnswering = async (count = 24): Promise<Set<string>> =>
    new Set((await callWeb(count)).filter((r) => r.status === 200).map((r) => (r.body as { app: string }).app));

  /** The endpoint IPs of the web cluster in the client's Envoy (its admin API, inside the VM). */
  const envoyEndpoints = (): Set<string> => {
    let text = '';
    try {
      text = lab.execIn('client', 'curl', ['-s', '--max-time', '2', 'http://127.0.0.1:15000/clusters']);
    } catch {
      return new Set();
    }
    const out = new Set<string>();
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${CLUSTER}::`)) continue;
      const m = /^([0-9.]+):\d+::/.exec(line.slice(CLUSTER.length + 2));
      if (m) out.add(m[1]!);
    }
    return out;
  };
  /** Milliseconds from `change()` until Envoy's endpoints satisfy `ok` (throws after 15 s). */
  const timeUntilEnvoy = async (change: () => Promise<void>, ok: (eps: Set<string>) => boolean): Promise<number> => {
    const started = Date.now();
    await change();
    while (Date.now() - started < 15_000) {
      if (ok(envoyEndpoints())) return Date.now() - started;
      await sleep(25);
    }
    throw new Error(`Envoy endpoints never changed as expected: ${[...envoyEndpoints()].join(', ')}`);
  };
  const register = (vm: string, id: string, extra: { meta?: Record<string, string>; address?: string; name?: string; tags?: string[] } = {}) =>
    consul.put('/v1/agent/service/register', {
      Name: extra.name ?? 'web',
      ID: id,
      Address: extra.address ?? ip(vm),
      Port: 8080,
      Tags: extra.tags ?? ['mesh', 'version=v1'],
      Meta: extra.meta ?? { 'skiff-protocol': 'http', 'skiff-namespace': NS, 'skiff-service-account': 'web' },
      Check: { CheckID: `ttl:${id}`, Name: `${id} alive`, TTL: '10m', Status: 'passing' },
    });
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

  before(async () => {
    lab = createLab(['client', 'w1', 'w2', 'w3', 'f1'], 43);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-e2e-consul-'));
    const meshDir = path.join(tmp, 'mesh');
    fs.mkdirSync(meshDir);
    fs.writeFileSync(path.join(meshDir, 'mesh.yaml'), meshYaml(ip('f1')));

    consul = await startConsulTestServer({ host: '127.0.0.1' });
    await register('w1', 'web-1');
    await register('w2', 'web-2');
    // Bad input next to good input: an instance with a bogus protocol, a service whose name cannot
    // be a host, and a service without the mesh tag (used for churn below).
    await register('w1', 'web-bogus', { address: '198.18.43.99', meta: { 'skiff-protocol': 'bogus', 'skiff-namespace': NS } });
    await register('w1', 'api-1', { name: 'Web_API', address: '198.18.43.98' });
    await register('w1', 'batch-1', { name: 'batch', address: '198.18.43.97', tags: [] });

    cp = await startControlPlaneProc(group, {
      configDir: meshDir,
      dataDir: path.join(tmp, 'data'),
      address: lab.hostIp,
      extraArgs: ['--consul-address', consul.url, '--consul-tag', 'mesh', '--consul-wait', '30s'],
    });
    const rootCert = path.join(tmp, 'data', 'trust-bundle.pem');
    const vms: { vm: string; sa: string; labels: Record<string, string> }[] = [
      { vm: 'client', sa: 'client', labels: { app: 'client' } },
      { vm: 'w1', sa: 'web', labels: {} },
      { vm: 'w2', sa: 'web', labels: {} },
      { vm: 'w3', sa: 'web', labels: {} },
      { vm: 'f1', sa: 'web', labels: { app: 'web-static' } },
    ];
    for (const v of vms) {
      const tokenFile = path.join(tmp, `${v.vm}.token`);
      fs.writeFileSync(tokenFile, createToken(cp.dataDir, NS, v.sa, ['--ttl', '10m']), { mode: 0o600 });
      if (v.vm !== 'client') startEcho(group, v.vm, '127.0.0.1:9080', on(v.vm));
      startAgentProc(
        group,
        {
          name: v.vm,
          controlPlane: `${lab.hostIp}:${cp.grpcPort}`,
          rootCert,
          tokenFile,
          namespace: NS,
          serviceAccount: v.sa,
          workloadName: v.vm,
          workloadIp: ip(v.vm),
          stateDir: path.join(tmp, `state-${v.vm}`),
          socketDir: socketDirs[socketDirs.push(fs.mkdtempSync('/tmp/skc-')) - 1]!,
          adminPort: 15000,
          labels: v.labels,
        },
        on(v.vm),
      );
    }
    await eventually('answers from w1, w2 and f1 through the client sidecar', async () => {
      const apps = await appsAnswering();
      return apps.has('w1') && apps.has('w2') && apps.has('f1') ? apps : undefined;
    }, 120_000, 500);
  });

  after(async () => {
    if (process.exitCode && group) process.stderr.write(group.dump());
    await group.stopAll();
    await consul?.close();
    lab?.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    for (const d of socketDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('serves Consul instances and the file-defined instance of the same host as one service', async () => {
    const apps = await appsAnswering(30);
    assert.deepEqual([...apps].sort(), ['f1', 'w1', 'w2']);
    assert.deepEqual([...envoyEndpoints()].sort(), [ip('f1'), ip('w1'), ip('w2')].sort());
    const [r] = await callWeb();
    const xfcc = (r?.body as unknown as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] ?? '';
    assert.match(xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/client/, 'mTLS from the client sidecar to the Consul instance');
    const status = (await (await fetch(`http://${lab.hostIp}:${cp.monitoringPort}/debug/consul`)).json()) as { synced: boolean; stale: boolean; services: { name: string; instances: number; skipped: number }[] };
    assert.equal(status.synced, true);
    assert.equal(status.stale, false);
    assert.deepEqual(status.services.map((x) => [x.name, x.instances, x.skipped]), [['web', 2, 1]]);
  });

  it('bad input is logged clearly and skipped; the rest is served', () => {
    const out = cp.proc.output();
    assert.match(out, /consul service \\"web\\": instance \\"web-bogus\\" on node \\"consul-test-server\\": meta skiff-protocol=\\"bogus\\" is not a protocol .*: instance skipped/);
    assert.match(out, /consul service \\"Web_API\\": service name \\"Web_API\\" is not a valid host label .*: service skipped/);
    assert.ok(!envoyEndpoints().has('198.18.43.99'));
  });

  it('an instance turning critical leaves Envoy\'s endpoints within 2 s, and comes back when passing', async (t) => {
    const ms = await timeUntilEnvoy(() => consul.put('/v1/agent/check/fail/ttl:web-2?note=disk%20full'), (eps) => !eps.has(ip('w2')) && eps.has(ip('w1')));
    t.diagnostic(`w2 left Envoy's endpoints ${ms} ms after its check turned critical`);
    assert.ok(ms <= 2000, `w2 left Envoy's endpoints after ${ms} ms`);
    const apps = await appsAnswering(20);
    assert.ok(!apps.has('w2'), `w2 still answered: ${[...apps].join()}`);
    await timeUntilEnvoy(() => consul.put('/v1/agent/check/pass/ttl:web-2'), (eps) => eps.has(ip('w2')));
  });

  it('a new instance joins Envoy\'s endpoints within 2 s and gets traffic', async (t) => {
    const ms = await timeUntilEnvoy(() => register('w3', 'web-3'), (eps) => eps.has(ip('w3')));
    t.diagnostic(`w3 joined Envoy's endpoints ${ms} ms after its registration`);
    assert.ok(ms <= 2000, `w3 joined Envoy's endpoints after ${ms} ms`);
    await eventually('w3 answers', async () => (await appsAnswering()).has('w3'), 30_000, 250);
  });

  it("an unrelated service's churn (and check output churn) causes no xDS push", async () => {
    // Quiet first: no push for 2 s.
    let pushesBefore = sum(await cp.metric('skiff_xds_pushes_total'));
    await eventually('no pushes for 2 s', async () => {
      await sleep(2000);
      const now = sum(await cp.metric('skiff_xds_pushes_total'));
      const quiet = now === pushesBefore;
      pushesBefore = now;
      return quiet;
    }, 30_000, 0);
    const answersBefore = sum(await cp.metric('skiff_consul_queries_total'));
    for (let i = 0; i < 5; i++) {
      await register('w1', `batch-${i + 2}`, { name: 'batch', address: `198.18.43.${200 + i}`, tags: [] });
      await consul.put(`/v1/agent/service/deregister/batch-${i + 2}`);
      await consul.put(`/v1/agent/check/pass/ttl:web-1?note=${encodeURIComponent(`load ${i}`)}`);
      await sleep(200);
    }
    await register('w1', 'web-1'); // the same registration again: the index moves, nothing else
    await sleep(2500); // longer than the registry's debounce (at most 1 s) and a push
    assert.ok(sum(await cp.metric('skiff_consul_queries_total')) >= answersBefore + 5, 'the control plane saw the churn');
    const pushesAfter = sum(await cp.metric('skiff_xds_pushes_total'));
    assert.equal(pushesAfter, pushesBefore, `xDS pushes went from ${pushesBefore} to ${pushesAfter}`);
  });

  it('Consul stopped for 30 s: requests keep succeeding, the source is stale, and a change after Consul returns is picked up', async () => {
    await consul.stop();
    const stoppedAt = Date.now();
    const requests = callWeb(64, 470); // ~30 s of requests
    const ready = await eventually('readyz reports the stale Consul source', async () => {
      const res = await fetch(`http://${lab.hostIp}:${cp.monitoringPort}/readyz`);
      const body = (await res.json()) as { ready: boolean; checks: { name: string; ok: boolean; detail?: string }[] };
      const c = body.checks.find((x) => x.name === 'consul');
      return res.status === 200 && c?.detail?.startsWith('stale for') ? { body, c } : undefined;
    }, 20_000, 250);
    assert.equal(ready.body.ready, true, 'a stale Consul keeps the control plane ready');
    assert.equal(ready.c.ok, true);
    assert.equal(sum(await cp.metric('skiff_consul_stale')), 1);
    const results = await requests;
    if (Date.now() - stoppedAt < 30_000) await sleep(30_000 - (Date.now() - stoppedAt));
    const failed = results.filter((r) => r.status !== 200);
    assert.equal(failed.length, 0, `failed during the outage: ${JSON.stringify(failed.slice(0, 3))}`);
    assert.equal(results.length, 64);
    assert.deepEqual([...envoyEndpoints()].sort(), [ip('f1'), ip('w1'), ip('w2'), ip('w3')].sort(), 'no endpoint was dropped');

    await consul.start();
    await consul.put('/v1/agent/service/deregister/web-1');
    await eventually('w1 leaves Envoy after Consul returned', async () => !envoyEndpoints().has(ip('w1')), 20_000, 100);
    await eventually('no longer stale', async () => sum(await cp.metric('skiff_consul_stale')) === 0, 20_000, 250);
    const out = cp.proc.output();
    assert.equal(out.match(/Consul source is stale/g)?.length, 1, 'one line when it became stale');
    assert.equal(out.match(/Consul answers again after/g)?.length, 1, 'one line when it caught up');
    const apps = await appsAnswering(20);
    assert.ok(!apps.has('w1') && apps.has('w2'), [...apps].join());
  });
});
