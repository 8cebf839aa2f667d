/**
 * The Consul source against the Consul test server (test/helpers/consul-server.ts) with the real
 * `consul` client: initial sync, changes, index churn that changes nothing, services that go away,
 * outages, HTTP 500 and invalid JSON, bad instances and services, index resets, rate limits and
 * back-off, ACL tokens, namespaces, several addresses and TLS with a client certificate.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { CertificateAuthority } from '../../ca/index.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../../observability/metrics.js';
import { isHealthy, type MeshResource, type WorkloadEntry } from '../../resources/types.js';
import { startConsulTestServer, type ConsulTestServer } from '../../../test/helpers/consul-server.js';
import { resolveConsulConfig, type ConsulConfigInput, type ConsulSourceConfig } from './config.js';
import { createConsulSource, type ConsulSource } from './source.js';

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function captureLogger(): { logger: Logger; lines: LogLine[]; warnings: () => string[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Registers an instance of `name` on the test server's agent with a TTL check in `status`. */
async function register(server: ConsulTestServer, name: string, id: string, address: string, opts: { tags?: string[]; meta?: Record<string, string>; status?: string; port?: number } = {}): Promise<void> {
  await server.put('/v1/agent/service/register', {
    Name: name,
    ID: id,
    Address: address,
    Port: opts.port ?? 8080,
    Tags: opts.tags ?? ['mesh'],
    Meta: opts.meta ?? { 'skiff-protocol': 'http' },
    Check: { CheckID: `ttl:${id}`, TTL: '1h', Status: opts.status ?? 'passing' },
  });
}

interface Harness {
  source: ConsulSource;
  updates: MeshResource[][];
  last(): MeshResource[];
  workloads(): WorkloadEntry[];
  log: ReturnType<typeof captureLogger>;
  metrics: ControlPlaneMetrics;
}

async function fastConfig(input: ConsulConfigInput): Promise<ConsulSourceConfig> {
  const config = (await resolveConsulConfig({ wait: '5s', ...input }))!;
  config.retry = { initialMs: 100, maxMs: 400 };
  config.rateLimit = { burst: 2, intervalMs: 100 };
  return config;
}

function harness(config: ConsulSourceConfig): Harness {
  const updates: MeshResource[][] = [];
  const log = captureLogger();
  const metrics = createControlPlaneMetrics();
  const source = createConsulSource({ config, logger: log.logger, metrics, onUpdate: (r) => void updates.push(r) });
  const last = (): MeshResource[] => updates[updates.length - 1] ?? [];
  return { source, updates, last, workloads: () => last().filter((r): r is WorkloadEntry => r.kind === 'WorkloadEntry'), log, metrics };
}

async function metricValue(metrics: ControlPlaneMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const json = await metrics.registry.getMetricsAsJSON();
  const m = json.find((x) => x.name === name);
  const v = (m?.values ?? []).find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val));
  return v?.value ?? 0;
}

describe('Consul source: following the catalog', () => {
  let server: ConsulTestServer;
  let h: Harness;
  before(async () => {
    server = await startConsulTestServer();
    await register(server, 'web', 'web-1', '10.0.0.1');
    await register(server, 'web', 'web-2', '10.0.0.2');
    await register(server, 'batch', 'batch-1', '10.0.0.9', { tags: [] });
    h = harness(await fastConfig({ addresses: [server.url], tags: ['mesh'] }));
    await h.source.start();
  });
  after(async () => {
    await h.source.stop();
    await server.close();
  });

  it('syncs at start: a ServiceEntry and two WorkloadEntries for the tagged service only; `consul` and untagged services are left out', () => {
    assert.equal(h.source.status().synced, true);
    const keys = h.last().map((r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`);
    assert.equal(keys.length, 3, keys.join());
    assert.ok(keys.includes('ServiceEntry/default/consul-web'));
    assert.equal(h.workloads().length, 2);
    assert.ok(h.workloads().every(isHealthy));
    assert.deepEqual(h.source.readiness(), { ok: true });
    assert.deepEqual(
      h.source.status().services.map((s) => [s.name, s.instances]),
      [['web', 2]],
    );
  });

  it('follows with one blocking query on the services list and one per chosen service', async () => {
    await until('both watches blocked', () => server.blockedQueries().length === 2);
    assert.deepEqual(server.blockedQueries(), ['/v1/catalog/services', '/v1/health/service/web']);
    const health = server.requests.filter((r) => r.path === '/v1/health/service/web');
    assert.ok(health.length >= 2);
    assert.equal(health[0]!.query['index'], undefined, 'the first query carries no index');
    assert.match(health[health.length - 1]!.query['index'] ?? '', /^[1-9][0-9]*$/);
    assert.equal(health[health.length - 1]!.query['wait'], '5s');
  });

  it('an instance turning critical is delivered as unhealthy at once; passing again, healthy', async () => {
    const n = h.updates.length;
    await server.put('/v1/agent/check/fail/ttl:web-2?note=down');
    await until('an update', () => h.updates.length > n);
    const web2 = h.workloads().find((w) => w.spec.address === '10.0.0.2')!;
    assert.equal(isHealthy(web2), false);
    assert.equal(web2.status?.conditions?.[0]?.reason, 'Critical');
    await server.put('/v1/agent/check/pass/ttl:web-2');
    await until('healthy again', () => h.workloads().every(isHealthy));
  });

  it('a new instance is delivered', async () => {
    await register(server, 'web', 'web-3', '10.0.0.3');
    await until('three web instances', () => h.workloads().length === 3);
  });

  it("index churn that changes nothing Skiff maps (another service, a check's output, an identical re-registration) delivers nothing", async () => {
    await until('quiet', () => server.blockedQueries().length === 2);
    const n = h.updates.length;
    const unchangedBefore = await metricValue(h.metrics, 'skiff_consul_queries_total', { endpoint: 'health', outcome: 'unchanged' });
    const listBefore = await metricValue(h.metrics, 'skiff_consul_queries_total', { endpoint: 'services', outcome: 'unchanged' });
    for (let i = 0; i < 3; i++) {
      await register(server, 'batch', `batch-${i + 2}`, `10.0.1.${i}`, { tags: [] });
      await server.put(`/v1/agent/service/deregister/batch-${i + 2}`);
      await server.put(`/v1/agent/check/pass/ttl:web-1?note=${encodeURIComponent(`ok at run ${i}`)}`);
      await sleep(150);
    }
    await register(server, 'web', 'web-1', '10.0.0.1');
    await until('the source saw the churn', async () => (await metricValue(h.metrics, 'skiff_consul_queries_total', { endpoint: 'health', outcome: 'unchanged' })) >= unchangedBefore + 3);
    await sleep(300);
    assert.equal(h.updates.length, n, 'nothing was delivered');
    assert.ok((await metricValue(h.metrics, 'skiff_consul_queries_total', { endpoint: 'services', outcome: 'unchanged' })) > listBefore);
  });

  it('a service that disappears from the catalog: its resources go and its watch stops', async () => {
    await register(server, 'cache', 'cache-1', '10.0.2.1');
    await until('cache mapped', () => h.last().some((r) => r.metadata.name === 'consul-cache'));
    await until('cache watched', () => server.blockedQueries().includes('/v1/health/service/cache'));
    await server.put('/v1/agent/service/deregister/cache-1');
    await until('cache gone', () => !h.last().some((r) => r.metadata.name.startsWith('consul-cache') || r.metadata.name.startsWith('cache-')));
    await until('cache no longer watched', () => !server.blockedQueries().includes('/v1/health/service/cache') && !h.source.status().services.some((s) => s.name === 'cache'));
    const seen = server.requests.filter((r) => r.path === '/v1/health/service/cache').length;
    await sleep(400);
    assert.equal(server.requests.filter((r) => r.path === '/v1/health/service/cache').length, seen, 'no more queries for a gone service');
    assert.ok(h.log.lines.some((l) => l.msg === 'consul service "cache" is gone from the catalog: stopped watching it'));
  });

  it('an index that goes backwards (a snapshot restore) restarts from index 0 and delivers the restored catalog', async () => {
    const snap = server.snapshot();
    await register(server, 'web', 'web-4', '10.0.0.4');
    await until('four web instances', () => h.workloads().length === 4);
    await until('the web watch waiting', () => server.blockedQueries().includes('/v1/health/service/web'));
    const before = server.requests.length;
    server.restore(snap); // wakes the waiting query with the (lower) restored index
    await until('back to three', () => h.workloads().length === 3);
    await until('a query without index after the reset', () =>
      server.requests.slice(before).some((r) => r.path === '/v1/health/service/web' && r.query['index'] === undefined),
    );
  });
});

describe('Consul source: outages and bad answers keep the last known catalog', () => {
  let server: ConsulTestServer;
  let h: Harness;
  beforeEach(async () => {
    server = await startConsulTestServer();
    await register(server, 'web', 'web-1', '10.0.0.1');
    await register(server, 'web', 'web-2', '10.0.0.2');
    h = harness(await fastConfig({ addresses: [server.url] }));
    await h.source.start();
    assert.equal(h.workloads().length, 2);
  });
  afterEach(async () => {
    await h.source.stop();
    await server.close();
  });

  it('Consul unreachable: nothing is deleted, the source is stale (metric, readiness detail, one warning), then catches up', async () => {
    const n = h.updates.length;
    await server.stop();
    await until('stale', () => h.source.status().stale);
    assert.equal(await metricValue(h.metrics, 'skiff_consul_stale'), 1);
    const ready = h.source.readiness();
    assert.equal(ready.ok, true, 'a stale source keeps the control plane ready');
    assert.match(ready.detail ?? '', /^stale for \d+ s \(GET .* (ECONNRESET|ECONNREFUSED)\): serving the last known 3 resources from Consul$/);
    // The catalog changes while Skiff cannot see it.
    await server.put('/v1/agent/check/fail/ttl:web-1');
    await register(server, 'web', 'web-3', '10.0.0.3');
    await sleep(1200); // several retries
    assert.equal(h.updates.length, n, 'no update while Consul is unreachable: the last instances stay');
    const staleLines = h.log.warnings().filter((m) => m.startsWith('Consul source is stale'));
    assert.equal(staleLines.length, 1, `one line per state change: ${JSON.stringify(staleLines)}`);
    assert.match(staleLines[0]!, /(ECONNRESET|ECONNREFUSED); keeping the last known 3 resources from Consul/);
    await server.start();
    await until('caught up', () => h.workloads().length === 3 && !h.source.status().stale);
    assert.equal(isHealthy(h.workloads().find((w) => w.spec.address === '10.0.0.1')!), false);
    assert.equal(await metricValue(h.metrics, 'skiff_consul_stale'), 0);
    assert.ok(h.log.lines.some((l) => l.level === 30 && /^Consul answers again after \d+\.\d s: the Consul source is current$/.test(l.msg)));
    assert.deepEqual(h.source.readiness(), { ok: true });
  });

  it('HTTP 500 on one service: stale with the status and message, resources kept; recovers when Consul does', async () => {
    const clear = server.injectFault({ path: '/v1/health/service/web', status: 500, body: 'rpc error making call: No cluster leader' });
    await server.put('/v1/agent/check/fail/ttl:web-2'); // wakes the watch into the fault
    await until('stale', () => h.source.status().stale);
    assert.match(h.source.status().lastError ?? '', /^GET \/v1\/health\/service\/web on http:\/\/127\.0\.0\.1:\d+: HTTP 500: rpc error making call: No cluster leader$/);
    assert.equal(h.source.status().services[0]?.error, h.source.status().lastError);
    assert.ok(h.workloads().every(isHealthy), 'the last known state is kept');
    clear();
    await until('recovered', () => !h.source.status().stale && h.workloads().some((w) => !isHealthy(w)));
  });

  it('invalid JSON from Consul: stale with a clear reason, then recovers', async () => {
    const clear = server.injectFault({ path: '/v1/catalog/services', body: '{"web": [', contentType: 'application/json' });
    await register(server, 'api', 'api-1', '10.0.3.1'); // wakes the services-list watch
    await until('stale', () => h.source.status().stale);
    assert.match(h.source.status().lastError ?? '', /^GET \/v1\/catalog\/services on http:\/\/127\.0\.0\.1:\d+: the answer is not valid JSON \(/);
    assert.equal(h.workloads().length, 2);
    clear();
    await until('recovered with the new service', () => !h.source.status().stale && h.last().some((r) => r.metadata.name === 'consul-api'));
  });

  it('a body of the wrong shape (not a list) is an error too', async () => {
    server.injectFault({ path: '/v1/health/service/web', body: '{"not": "a list"}', contentType: 'application/json', index: String(server.index() + 1), times: 1 });
    await server.put('/v1/agent/check/fail/ttl:web-2');
    await until('stale', () => h.source.status().stale);
    assert.match(h.source.status().lastError ?? '', /expected a JSON array of service instances, got an object/);
    await until('recovered', () => !h.source.status().stale);
  });
});

describe('Consul source: bad input skips the bad part, logs it once, serves the rest', () => {
  let server: ConsulTestServer;
  let h: Harness;
  before(async () => {
    server = await startConsulTestServer();
    await register(server, 'web', 'good', '10.0.0.1');
    await register(server, 'web', 'bogus', '10.0.0.2', { meta: { 'skiff-protocol': 'bogus' } });
    await register(server, 'web', 'badport', '10.0.0.3', { meta: { 'skiff-protocol': 'http', 'skiff-service-port': 'http' } });
    await register(server, 'Web_API', 'api-1', '10.0.0.4');
    await register(server, 'ok', 'ok-1', '10.0.0.5');
    h = harness(await fastConfig({ addresses: [server.url] }));
    await h.source.start();
  });
  after(async () => {
    await h.source.stop();
    await server.close();
  });

  it('serves the good instance of web and the ok service', () => {
    assert.deepEqual(h.workloads().map((w) => w.spec.address).sort(), ['10.0.0.1', '10.0.0.5']);
  });

  it('logs one clear line per problem: the instance, node, meta key and value; the service name', () => {
    const w = h.log.warnings();
    assert.ok(w.some((m) => /^consul service "web": instance "bogus" on node "consul-test-server": meta skiff-protocol="bogus" is not a protocol .*: instance skipped$/.test(m)), w.join('\n'));
    assert.ok(w.some((m) => /^consul service "web": instance "badport" on node "consul-test-server": meta skiff-service-port="http" is not a port number 1-65535: instance skipped$/.test(m)), w.join('\n'));
    assert.ok(w.some((m) => /^consul service "Web_API": service name "Web_API" is not a valid host label .*: service skipped$/.test(m)), w.join('\n'));
    assert.ok(!server.requests.some((r) => r.path === '/v1/health/service/Web_API'), 'an unusable service is not watched');
  });

  it('does not repeat a line while the problem stays, and counts skipped instances', async () => {
    const before = h.log.warnings().length;
    for (let i = 0; i < 3; i++) await server.put(`/v1/agent/check/pass/ttl:good?note=${i}`);
    await register(server, 'web', 'bogus', '10.0.0.2', { meta: { 'skiff-protocol': 'bogus' } });
    await sleep(500);
    assert.equal(h.log.warnings().length, before);
    assert.equal(await metricValue(h.metrics, 'skiff_consul_instances', { state: 'skipped' }), 2);
    assert.equal(await metricValue(h.metrics, 'skiff_consul_instances', { state: 'mapped' }), 2);
  });

  it('an entry of the wrong shape skips that instance only', async () => {
    const entries = (await (await fetch(`${server.url}/v1/health/service/web`)).json()) as Record<string, unknown>[];
    const broken = [{ ...entries[0], Service: { ...(entries[0]!['Service'] as object), Port: 'eighty' } }, ...entries.slice(1)];
    server.injectFault({ path: '/v1/health/service/web', body: JSON.stringify(broken), contentType: 'application/json', index: String(server.index() + 1000) });
    await server.put('/v1/agent/check/pass/ttl:good?note=wake');
    await until('the broken entry reported', () => h.log.warnings().some((m) => /entry 0 \(node "consul-test-server", service ID "badport"\): Service\.Port: .*skipped/.test(m)));
    server.clearFaults();
  });
});

describe('Consul source: never a busy loop', () => {
  let server: ConsulTestServer;
  let source: ConsulSource | undefined;
  beforeEach(async () => {
    server = await startConsulTestServer();
    await register(server, 'web', 'web-1', '10.0.0.1');
  });
  afterEach(async () => {
    await source?.stop();
    await server.close();
  });

  it('an answer with X-Consul-Index 0 is followed by index 1, and an always-answering server is polled at the rate limit', async () => {
    const config = await fastConfig({ addresses: [server.url] });
    config.rateLimit = { burst: 2, intervalMs: 500 };
    source = createConsulSource({ config, logger: silentLogger(), onUpdate: () => {} });
    await source.start();
    server.injectFault({ path: '/v1/health/service/web', index: '0' });
    await server.put('/v1/agent/check/pass/ttl:web-1?note=wake');
    const from = server.requests.length;
    await sleep(2000);
    const queries = server.requests.slice(from).filter((r) => r.path === '/v1/health/service/web');
    assert.ok(queries.length >= 2, `${queries.length} queries`);
    assert.ok(queries.length <= 2 + Math.ceil(2000 / 500) + 1, `${queries.length} queries in 2 s: not rate limited`);
    assert.ok(queries.slice(1).every((q) => q.query['index'] === '1'), JSON.stringify(queries.map((q) => q.query['index'])));
  });

  it('failing queries back off (jittered, growing), they do not spin', async () => {
    const config = await fastConfig({ addresses: [server.url] });
    config.retry = { initialMs: 200, maxMs: 2000 };
    source = createConsulSource({ config, logger: silentLogger(), onUpdate: () => {} });
    server.injectFault({ path: '/v1/*', status: 500, body: 'boom' });
    void source.start(100);
    await sleep(3000);
    const list = server.requests.filter((r) => r.path === '/v1/catalog/services');
    // 200 ms doubling (each in [d/2, d]): at most 1 + 5 attempts fit in 3 s.
    assert.ok(list.length >= 2 && list.length <= 7, `${list.length} attempts in 3 s`);
    const gaps = list.slice(1).map((r, i) => r.at - list[i]!.at);
    assert.ok(gaps.every((g) => g >= 90), `gaps ${gaps.join(', ')}`);
  });
});

describe('Consul source: tokens, namespaces, several addresses, TLS', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-consul-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('sends the ACL token from the token file; without it Consul refuses (403) and the source says so', async () => {
    const server = await startConsulTestServer({ aclToken: 'b3a9c2f0-token' });
    try {
      await register(server, 'web', 'web-1', '10.0.0.1');
      const tokenFile = path.join(tmp, 'token');
      fs.writeFileSync(tokenFile, 'b3a9c2f0-token\n', { mode: 0o600 });
      const h = harness(await fastConfig({ addresses: [server.url], tokenFile }));
      await h.source.start();
      assert.equal(h.workloads().length, 1);
      await h.source.stop();
      const anon = harness(await fastConfig({ addresses: [server.url] }));
      await anon.source.start(500);
      await until('stale', () => anon.source.status().stale);
      assert.match(anon.source.status().lastError ?? '', /HTTP 403: Permission denied/);
      assert.ok(!anon.log.lines.some((l) => JSON.stringify(l).includes('b3a9c2f0-token')));
      assert.ok(!h.log.lines.some((l) => JSON.stringify(l).includes('b3a9c2f0-token')), 'the token is never logged');
      await anon.source.stop();
    } finally {
      await server.close();
    }
  });

  it('reads the configured Consul namespace (X-Consul-Namespace) only', async () => {
    const server = await startConsulTestServer();
    try {
      await server.put('/v1/agent/service/register', { Name: 'billing', ID: 'b-1', Address: '10.0.0.1', Port: 80, Namespace: 'team-1' });
      await register(server, 'web', 'web-1', '10.0.0.2');
      const h = harness(await fastConfig({ addresses: [server.url], namespace: 'team-1' }));
      await h.source.start();
      assert.deepEqual(h.workloads().map((w) => w.metadata.labels?.['skiff.dev/consul-service']), ['billing']);
      await h.source.stop();
    } finally {
      await server.close();
    }
  });

  it('fails over to the next address when one does not answer', async () => {
    const server = await startConsulTestServer();
    const dead = await startConsulTestServer();
    const deadUrl = dead.url;
    await dead.close();
    try {
      await register(server, 'web', 'web-1', '10.0.0.1');
      const h = harness(await fastConfig({ addresses: [deadUrl, server.url] }));
      await h.source.start(3000);
      await until('synced through the second address', () => h.workloads().length === 1);
      assert.equal(h.source.status().address, server.url);
      await h.source.stop();
    } finally {
      await server.close();
    }
  });

  it('talks HTTPS with a private CA and a client certificate', async () => {
    const ca = await CertificateAuthority.loadOrCreate({ dataDir: path.join(tmp, 'ca'), trustDomain: 'cluster.local', logger: silentLogger() });
    // Only a DNS name: the connection to 127.0.0.1 verifies because the source checks --consul-tls-server-name.
    const serverCert = await ca.issueServingCert({ spiffeId: 'spiffe://cluster.local/ns/consul/sa/server', dnsNames: ['consul.test'], ipAddresses: [], ttlSeconds: 3600 });
    const clientCert = await ca.issueServingCert({ spiffeId: 'spiffe://cluster.local/ns/skiff-system/sa/skiff', dnsNames: ['skiff.test'], ipAddresses: [], ttlSeconds: 3600 });
    const server = await startConsulTestServer({ tls: { cert: serverCert.certChainPem, key: serverCert.keyPem, ca: ca.trustBundlePem(), requireClientCert: true } });
    try {
      await register(server, 'web', 'web-1', '10.0.0.1');
      const files = { caFile: path.join(tmp, 'ca.pem'), certFile: path.join(tmp, 'client.pem'), keyFile: path.join(tmp, 'client-key.pem') };
      fs.writeFileSync(files.caFile, ca.trustBundlePem());
      fs.writeFileSync(files.certFile, clientCert.certChainPem);
      fs.writeFileSync(files.keyFile, clientCert.keyPem, { mode: 0o600 });
      assert.match(server.url, /^https:/);
      const h = harness(await fastConfig({ addresses: [server.url], ...files, tlsServerName: 'consul.test' }));
      await h.source.start();
      assert.equal(h.workloads().length, 1);
      await h.source.stop();
      // Without the server name the certificate (DNS name consul.test only) does not match 127.0.0.1.
      const noName = harness(await fastConfig({ addresses: [server.url], caFile: files.caFile, certFile: files.certFile, keyFile: files.keyFile }));
      await noName.source.start(500);
      await until('stale', () => noName.source.status().stale);
      assert.match(noName.source.status().lastError ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
      await noName.source.stop();
      // Without the client certificate the TLS handshake fails: a clear, stale source.
      const noCert = harness(await fastConfig({ addresses: [server.url], caFile: files.caFile }));
      await noCert.source.start(500);
      await until('stale', () => noCert.source.status().stale);
      assert.match(noCert.source.status().lastError ?? '', /GET \/v1\/catalog\/services on https:\/\/127\.0\.0\.1:\d+: /);
      await noCert.source.stop();
    } finally {
      await server.close();
    }
  });
});
