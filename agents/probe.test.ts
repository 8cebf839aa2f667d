import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../src/observability/logger.js';
import { HealthChecker, type HealthVerdict } from './health.js';
import { probeConfigSchema, resolveProbe, runProbe } from './probe.js';
import { createTestCa, freePort } from './testing.js';

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}
function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
  }

void describe('probes against real local servers (Kubernetes success rules)', () => {
  let app: http.Server;
  let appPort: number;
  let status = 200;
  const seen: http.IncomingHttpHeaders[] = [];
  let tls: https.Server;
  let tlsPort: number;

  before(async () => {
    app = http.createServer((req, res) => {
      seen.push(req.headers);
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000).unref();
      if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
        return void res.end();
      }
      res.writeHead(status);
      res.end('body');
    });
    appPort = await listen(app);
    const ca = await createTestCa();
    const cert = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/app', ips: ['127.0.0.1'] });
    tls = https.createServer({ cert: cert.certChainPem, key: cert.keyPem }, (_req, res) => res.end('secure'));
    tlsPort = await listen(tls);
  });
  after(async () => {
    app.closeAllConnections();
    await close(app);
    tls.closeAllConnections();
    await close(tls);
  });

  void it('httpGet: 2xx and 3xx are healthy, 5xx is not; headers and the path are sent', async () => {
    status = 200;
    const ok = await runProbe({ httpGet: { port: appPort, path: '/healthz', httpHeaders: [{ name: 'X-Probe', value: 'yes' }, { name: 'Host', value: 'app.local' }] } }, 1000);
    assert.deepEqual(ok, { healthy: true, message: `HTTP GET http://127.0.0.1:${appPort}/healthz: status 200` });
    assert.equal(seen.at(-1)?.['x-probe'], 'yes');
    assert.equal(seen.at(-1)?.host, 'app.local');
    assert.equal((await runProbe({ httpGet: { port: appPort, path: '/redirect' } }, 1000)).healthy, true, 'a redirect counts as success and is not followed');
    status = 503;
    assert.deepEqual(await runProbe({ httpGet: { port: appPort } }, 1000), { healthy: false, message: `HTTP GET http://127.0.0.1:${appPort}/: status 503` });
    status = 200;
  });

  void it('httpGet: no answer within the timeout, or nothing listening, is unhealthy', async () => {
    const slow = await runProbe({ httpGet: { port: appPort, path: '/slow' } }, 200);
    assert.deepEqual(slow, { healthy: false, message: `HTTP GET http://127.0.0.1:${appPort}/slow: no answer within 200 ms` });
    const closed = await freePort();
    const refused = await runProbe({ httpGet: { port: closed } }, 1000);
    assert.equal(refused.healthy, false);
    assert.match(refused.message, /ECONNREFUSED/);
  });

  void it('httpGet with scheme HTTPS does not verify the certificate (as Kubernetes)', async () => {
    assert.deepEqual(await runProbe({ httpGet: { port: tlsPort, scheme: 'HTTPS' } }, 2000), { healthy: true, message: `HTTP GET https://127.0.0.1:${tlsPort}/: status 200` });
  });

  void it('tcpSocket: an open port is healthy, a closed one is not', async () => {
    assert.deepEqual(await runProbe({ tcpSocket: { port: appPort } }, 1000), { healthy: true, message: `TCP connect 127.0.0.1:${appPort}: connected` });
    const r = await runProbe({ tcpSocket: { port: await freePort() } }, 1000);
    assert.equal(r.healthy, false);
  });

  void it('exec: exit 0 is healthy; another exit code, a missing program or a timeout is not', async () => {
    assert.equal((await runProbe({ exec: { command: [process.execPath, '-e', 'process.exit(0)'] } }, 5000)).healthy, true);
    const failed = await runProbe({ exec: { command: [process.execPath, '-e', 'console.log("disk full"); process.exit(3)'] } }, 5000);
    assert.equal(failed.healthy, false);
    assert.match(failed.message, /exit 3: disk full$/);
    assert.match((await runProbe({ exec: { command: ['/nonexistent/skiff-check'] } }, 1000)).message, /ENOENT/);
    const hung = await runProbe({ exec: { command: [process.execPath, '-e', 'setTimeout(() => {}, 10000)'] } }, 300);
    assert.equal(hung.healthy, false);
    assert.match(hung.message, /still running after 300 ms \(killed\)/);
  });
});

void describe('HealthChecker: thresholds and timing with real timers', () => {
  let app: http.Server;
  let port: number;
  let status = 200;
  before(async () => {
    app = http.createServer((_req, res) => {
      res.writeHead(status);
      res.end();
    });
    port = await listen(app);
  });
  after(async () => {
    app.closeAllConnections();
    await close(app);
  });

  /** Waits until `pred` holds, polling every 5 ms (at most `ms`). */
  async function until(pred: () => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error('condition not reached');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  void it('needs failureThreshold failures to turn unhealthy and successThreshold successes to recover', async () => {
    const changes: HealthVerdict[] = [];
    status = 200;
    // One probe "second" is 20 ms here: period 1 → 20 ms.
    const checker = new HealthChecker({
      probe: { periodSeconds: 1, timeoutSeconds: 1, successThreshold: 2, failureThreshold: 3, httpGet: { port, path: '/healthz' } },
      logger: silentLogger(),
      onChange: (v) => changes.push(v),
      secondMs: 20,
    });
    checker.start();
    try {
      await until(() => changes.length === 1);
      assert.equal(changes[0]?.healthy, true);
      assert.ok(checker.completedRuns() >= 2, 'two successes were needed');
      status = 500;
      const failingFrom = checker.completedRuns();
      await until(() => changes.length === 2);
      assert.equal(changes[1]?.healthy, false);
      assert.match(changes[1]?.message ?? '', /status 500/);
      assert.ok(checker.completedRuns() - failingFrom >= 3, 'three failures were needed');
      status = 200;
      await until(() => changes.length === 3);
      assert.equal(changes[2]?.healthy, true);
      assert.equal(checker.verdict()?.healthy, true);
    } finally {
      checker.stop();
    }
  });

  void it('a single failure below the threshold changes nothing; the first probe waits for initialDelaySeconds', async () => {
    const changes: HealthVerdict[] = [];
    status = 200;
    let runs = 0;
    const results = [true, false, true, true, true, true];
    const started = Date.now();
    let firstAt = 0;
    const checker = new HealthChecker({
      probe: { initialDelaySeconds: 5, periodSeconds: 1, failureThreshold: 2, tcpSocket: { port } },
      logger: silentLogger(),
      onChange: (v) => changes.push(v),
      secondMs: 20,
      run: () => {
        if (runs === 0) firstAt = Date.now();
        const healthy = results[Math.min(runs++, results.length - 1)]!;
        return Promise.resolve({ healthy, message: healthy ? 'ok' : 'bad' });
      },
    });
    checker.start();
    try {
      await until(() => runs >= 5);
      assert.ok(firstAt - started >= 90, `first probe after ${firstAt - started} ms, expected about 100 ms`);
      assert.deepEqual(changes, [{ healthy: true, message: 'ok' }], 'one failure under failureThreshold 2 is not a change');
    } finally {
      checker.stop();
    }
    const after = runs;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(runs, after, 'no probe runs after stop()');
  });

  void it("fills in Istio's agent defaults", () => {
    assert.deepEqual(resolveProbe({ tcpSocket: { port: 80 } }), { initialDelayMs: 0, timeoutMs: 1000, periodMs: 10_000, successThreshold: 1, failureThreshold: 1, method: { tcpSocket: { port: 80 } } });
    assert.throws(() => resolveProbe({ periodSeconds: 1 }), /no check method/);
  });
});

void describe('agent probe config', () => {
  void it('accepts the ReadinessProbe shape, also as JSON text (SKIFF_PROBE)', () => {
    assert.deepEqual(probeConfigSchema.parse({ httpGet: { port: 8080, path: '/healthz' }, periodSeconds: 2 }), { httpGet: { port: 8080, path: '/healthz' }, periodSeconds: 2 });
    assert.deepEqual(probeConfigSchema.parse('{"tcpSocket":{"port":5432}}'), { tcpSocket: { port: 5432 } });
  });

  void it('refuses bad probes with the field and reason', () => {
    const issues = (v: unknown): string[] => {
      const r = probeConfigSchema.safeParse(v);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    assert.deepEqual(issues({ httpGet: { port: 8080 }, tcpSocket: { port: 1 } }), [': expected exactly one of httpGet, tcpSocket and exec']);
    assert.deepEqual(issues({ httpGet: { port: 0 } }), ['httpGet.port: expected a port 1-65535']);
    assert.deepEqual(issues({ httpGet: { port: 80, path: 'health' } }), ['httpGet.path: expected a path starting with "/"']);
    assert.deepEqual(issues({ exec: { command: [] } }), ['exec.command: expected the command and its arguments']);
    assert.deepEqual(issues({ tcpSocket: { port: 80 }, periodSeconds: -1 }), ['periodSeconds: expected 0 or more']);
    assert.equal(issues({ tcpSocket: { port: 80 }, perodSeconds: 1 }).length, 1);
  });
});
