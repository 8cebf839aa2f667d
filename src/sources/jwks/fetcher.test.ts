import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { pino, type Logger } from 'pino';
import { createJwksFetcher, type JwksFetcher } from './index.js';

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, lines };
}

async function jwks(): Promise<string> {
  const { publicKey } = await generateKeyPair('ES256');
  return JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] });
}

/** Waits until `cond()` holds (checked every 10 ms); fails after 5 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

void describe('JWKS fetcher against a real HTTP server', () => {
  let server: http.Server;
  let base: string;
  /** What the server answers, per path. */
  const routes = new Map<string, { status: number; body: string } | 'hang'>();
  const hits = new Map<string, number>();
  const fetchers: JwksFetcher[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const path = req.url ?? '/';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const route = routes.get(path);
      if (route === 'hang') return; // never answers
      const r = route ?? { status: 404, body: 'not found' };
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const f of fetchers) f.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const make = (opts: { refreshIntervalMs?: number; timeoutMs?: number; retryInitialMs?: number } = {}) => {
    const { logger, lines } = capturingLogger();
    const f = createJwksFetcher({ logger, ...opts });
    fetchers.push(f);
    return { f, lines };
  };

  void it('fetches a tracked jwksUri and announces the keys once', async () => {
    const keys = await jwks();
    routes.set('/a', { status: 200, body: keys });
    const { f } = make();
    const changes: string[] = [];
    f.onChange((uri) => changes.push(uri));
    f.track([`${base}/a`]);
    await f.refresh();
    assert.equal(f.get(`${base}/a`), keys);
    assert.deepEqual(changes, [`${base}/a`]);
    // The same keys served with other formatting are no change.
    routes.set('/a', { status: 200, body: JSON.stringify(JSON.parse(keys), null, 2) });
    await f.refresh();
    assert.deepEqual(changes, [`${base}/a`]);
  });

  void it('announces rotated keys and refreshes on its own', async () => {
    routes.set('/rot', { status: 200, body: await jwks() });
    const { f } = make({ refreshIntervalMs: 30 });
    const changes: string[] = [];
    f.onChange((uri) => changes.push(uri));
    f.track([`${base}/rot`]);
    await until(() => changes.length === 1, 'the first keys');
    const rotated = await jwks();
    routes.set('/rot', { status: 200, body: rotated });
    await until(() => changes.length === 2, 'the rotated keys');
    assert.equal(f.get(`${base}/rot`), rotated);
  });

  void it('keeps the last good keys when the server fails, logging once per state change', async () => {
    const good = await jwks();
    routes.set('/flaky', { status: 200, body: good });
    const { f, lines } = make({ retryInitialMs: 5 });
    f.track([`${base}/flaky`]);
    await f.refresh();
    for (const bad of [
      { status: 500, body: 'oops' },
      { status: 200, body: 'not json' },
      { status: 200, body: '{"keys":[{"kty":"RSA"}]}' },
    ]) {
      routes.set('/flaky', bad);
      await f.refresh();
      await f.refresh();
      assert.equal(f.get(`${base}/flaky`), good, `keys kept after ${bad.body}`);
    }
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, 'one warning for the whole failing period');
    assert.match(warnings[0]!.msg, /fetching JWKS failed/);
    routes.set('/flaky', { status: 200, body: good });
    await until(() => lines.some((l) => l.level === 30 && l.msg === 'fetching JWKS works again'), 'the recovery');
  });

  void it('times out a server that does not answer and has no keys to offer', async () => {
    routes.set('/hang', 'hang');
    const { f, lines } = make({ timeoutMs: 100 });
    f.track([`${base}/hang`]);
    await f.refresh();
    assert.equal(f.get(`${base}/hang`), undefined);
    const warning = lines.find((l) => l.level === 40) as { err?: string } | undefined;
    assert.match(warning?.err ?? '', /timed out after 100 ms/);
  });

  void it('forgets a URI that is no longer tracked', async () => {
    routes.set('/b', { status: 200, body: await jwks() });
    const { f } = make();
    f.track([`${base}/b`]);
    await f.refresh();
    assert.ok(f.get(`${base}/b`));
    f.track([]);
    assert.equal(f.get(`${base}/b`), undefined);
  });

  void it('fetches nothing after stop', async () => {
    routes.set('/c', { status: 200, body: await jwks() });
    const { f } = make();
    f.stop();
    f.track([`${base}/c`]);
    await f.refresh();
    assert.equal(f.get(`${base}/c`), undefined);
    assert.equal(hits.get('/c'), undefined);
  });
});
