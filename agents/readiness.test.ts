import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { silentLogger } from '../src/observability/logger.js';
import { loadAgentConfig } from './config.js';
import {
  ackTracker,
  certificateCheck,
  envoyReadinessProbe,
  envoyStateChecks,
  parseEnvoyStats,
  READINESS_PATH,
  sdsCheck,
  startReadinessServer,
  type ReadinessReport,
  type ReadinessServer,
} from './readiness.js';

const LIVE = { status: 200, body: 'LIVE' };
const SPIFFE = 'spiffe://cluster.local/ns/shop/sa/web';

function stats(text: string): Map<string, number> {
  return parseEnvoyStats(text);
}

void describe('readiness checks (the conditions of Istio’s sidecar readiness probe)', () => {
  void it('reports config missing, partial, rejected, and complete from the CDS/LDS counters', () => {
    const config = (text: string) => envoyStateChecks(stats(text), LIVE)[0]!;
    assert.match(config('').detail, /^config not received from the control plane .*cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected$/);
    assert.match(config('listener_manager.lds.update_success: 1').detail, /^config not fully received/);
    assert.match(config('cluster_manager.cds.update_rejected: 1\nlistener_manager.lds.update_success: 1').detail, /^config received from the control plane, but rejected/);
    const full = config('cluster_manager.cds.update_success: 2\nlistener_manager.lds.update_success: 1');
    assert.equal(full.ok, true);
    assert.equal(full.detail, 'cds updates: 2 successful, 0 rejected; lds updates: 1 successful, 0 rejected');
  });

  void it('needs Envoy LIVE with its workers started', () => {
    const withConfig = 'cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\n';
    assert.equal(envoyStateChecks(stats(withConfig + 'listener_manager.workers_started: 1'), LIVE)[1]!.ok, true);
    assert.deepEqual(envoyStateChecks(stats(withConfig + 'listener_manager.workers_started: 0'), LIVE)[1], { name: 'envoy', ok: false, detail: 'LIVE, but workers have not started' });
    assert.deepEqual(envoyStateChecks(stats(withConfig + 'listener_manager.workers_started: 1'), { status: 503, body: 'PRE_INITIALIZING' })[1], {
      name: 'envoy',
      ok: false,
      detail: 'admin /ready: 503 PRE_INITIALIZING',
    });
  });

  void it("accepts only an unexpired certificate carrying the workload's SPIFFE ID", () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const chain = (uri: string, exp: string) => ({ certificates: [{ cert_chain: [{ subject_alt_names: [{ uri }], expiration_time: exp, serial_number: 'ab' }] }] });
    assert.equal(certificateCheck(chain(SPIFFE, '2030-01-02T00:00:00Z'), SPIFFE, now).ok, true);
    assert.deepEqual(certificateCheck(chain(SPIFFE, '2029-12-31T00:00:00Z'), SPIFFE, now), { name: 'certificate', ok: false, detail: `the certificate for ${SPIFFE} has expired` });
    assert.equal(certificateCheck(chain('spiffe://cluster.local/ns/shop/sa/other', '2030-01-02T00:00:00Z'), SPIFFE, now).ok, false);
    assert.equal(certificateCheck({ certificates: [] }, SPIFFE, now).detail, `Envoy holds no certificate for ${SPIFFE} yet`);
  });

  void it('waits for ACKs of both SDS secrets; a later NACK keeps the accepted secret counted', () => {
    const t = ackTracker();
    assert.equal(sdsCheck(t.acked()).detail, 'waiting for Envoy to ACK SDS secret(s) default, ROOTCA');
    t.onEvent({ kind: 'ack', version: 'v1', nonce: '1', resourceNames: ['default'] });
    t.onEvent({ kind: 'nack', version: 'v1', nonce: '2', resourceNames: ['ROOTCA'], message: 'bad' });
    assert.equal(sdsCheck(t.acked()).detail, 'waiting for Envoy to ACK SDS secret(s) ROOTCA');
    t.onEvent({ kind: 'ack', version: 'v1', nonce: '3', resourceNames: ['ROOTCA'] });
    t.onEvent({ kind: 'nack', version: 'v1', nonce: '4', resourceNames: ['default'], message: 'bad' });
    assert.equal(sdsCheck(t.acked()).ok, true);
  });
});

/** A stand-in for Envoy's admin API that serves fixed bodies in Envoy's formats. */
async function adminStub(bodies: { stats: string; ready: [number, string]; certs: unknown }): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/stats') res.writeHead(200).end(bodies.stats);
    else if (path === '/ready') res.writeHead(bodies.ready[0]).end(bodies.ready[1] + '\n');
    else if (path === '/certs') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(bodies.certs));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}`, close: () => new Promise((r) => server.close(() => r())) };
}

void describe('readiness endpoint', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  async function get(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
    const res = await fetch(url, { method });
    return { status: res.status, body: await res.text() };
  }

  void it('answers 503 with the failing checks until Envoy has config, certificate and SDS ACKs, then 200', async () => {
    const stub = await adminStub({
      stats: 'cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\nlistener_manager.workers_started: 1\n',
      ready: [200, 'LIVE'],
      certs: { certificates: [{ cert_chain: [{ subject_alt_names: [{ uri: SPIFFE }], expiration_time: new Date(Date.now() + 3600_000).toISOString(), serial_number: '01' }] }] },
    });
    closers.push(stub.close);
    const acks = ackTracker();
    const server: ReadinessServer = await startReadinessServer({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      probe: envoyReadinessProbe({ adminUrl: stub.url, spiffeId: SPIFFE, ackedSecrets: acks.acked }),
    });
    closers.push(server.stop);
    const url = `${server.url}${READINESS_PATH}`;

    const before = await get(url);
    assert.equal(before.status, 503);
    const report = JSON.parse(before.body) as ReadinessReport;
    assert.equal(report.ready, false);
    assert.deepEqual(report.checks.filter((c) => !c.ok).map((c) => c.name), ['sds']);

    acks.onEvent({ kind: 'ack', version: 'v1', nonce: '1', resourceNames: ['default'] });
    acks.onEvent({ kind: 'ack', version: 'v1', nonce: '1', resourceNames: ['ROOTCA'] });
    const ready = await get(url);
    assert.equal(ready.status, 200);
    assert.deepEqual((JSON.parse(ready.body) as ReadinessReport).checks.map((c) => [c.name, c.ok]), [
      ['config', true],
      ['envoy', true],
      ['certificate', true],
      ['sds', true],
    ]);
    assert.equal((await get(url, 'HEAD')).status, 200);
    assert.equal((await get(`${server.url}/other`)).status, 404);
    assert.equal((await get(url, 'POST')).status, 405);

    server.markDraining();
    const draining = await get(url);
    assert.equal(draining.status, 503);
    assert.deepEqual(JSON.parse(draining.body), { ready: false, checks: [{ name: 'draining', ok: false, detail: 'the agent is stopping' }] });
  });

  void it('is not ready, and says why, while Envoy admin is unreachable', async () => {
    const server = await startReadinessServer({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      probe: envoyReadinessProbe({ adminUrl: 'http://127.0.0.1:1', spiffeId: SPIFFE, ackedSecrets: () => new Set(['default', 'ROOTCA']) }),
    });
    closers.push(server.stop);
    const res = await get(`${server.url}${READINESS_PATH}`);
    assert.equal(res.status, 503);
    const report = JSON.parse(res.body) as ReadinessReport;
    assert.match(report.checks.find((c) => c.name === 'envoy')?.detail ?? '', /^Envoy admin http:\/\/127\.0\.0\.1:1 unreachable/);
  });

  void it('refuses to start on a port already in use, naming the address', async () => {
    const first = await startReadinessServer({ host: '127.0.0.1', port: 0, logger: silentLogger(), probe: async () => ({ ready: true, checks: [] }) });
    closers.push(first.stop);
    await assert.rejects(
      startReadinessServer({ host: '127.0.0.1', port: first.port, logger: silentLogger(), probe: async () => ({ ready: true, checks: [] }) }),
      new RegExp(`readiness endpoint cannot listen on 127\\.0\\.0\\.1:${first.port}: EADDRINUSE`),
    );
  });
});

void describe('readiness settings of the agent config', () => {
  const required = { controlPlane: 'cp.mesh.internal:15012', rootCertPath: '/r.pem', namespace: 'shop', serviceAccount: 'web', workloadName: 'vm-a', workloadIp: '198.18.0.10' };
  void it('default to port 15021 on the workload IP; 0 turns the endpoint off; bad values are named', () => {
    const c = loadAgentConfig({ env: {}, overrides: required });
    assert.equal(c.readinessPort, 15021);
    assert.equal(c.readinessAddress, undefined);
    assert.equal(loadAgentConfig({ env: { SKIFF_READINESS_PORT: '0' }, overrides: required }).readinessPort, 0);
    assert.throws(() => loadAgentConfig({ env: { SKIFF_READINESS_PORT: '70000' }, overrides: required }), /readinessPort: expected an integer port 0-65535 \(0 turns it off\) \(from env SKIFF_READINESS_PORT\)/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, readinessAddress: 'localhost' } }), /readinessAddress: expected an IPv4 or IPv6 address \(from flag --readiness-address\)/);
  });
});
