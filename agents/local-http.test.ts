import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { localHttpRequest } from './local-http.js';

let server: http.Server;
let base = '';

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/slow') return; // never answers: the client's timeout must fire
    res.statusCode = req.url === '/ready' ? 200 : 503;
    res.end(`${req.method ?? '?'} ${req.url ?? '?'}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('GET returns the status and the whole body', async () => {
  assert.deepEqual(await localHttpRequest(`${base}/ready`, { timeoutMs: 2000 }), { status: 200, body: 'GET /ready' });
  assert.deepEqual(await localHttpRequest(`${base}/other`, { timeoutMs: 2000 }), { status: 503, body: 'GET /other' });
});

test('sends the given method and query (Envoy admin POST /drain_listeners?graceful)', async () => {
  const res = await localHttpRequest(`${base}/drain_listeners?graceful`, { method: 'POST', timeoutMs: 2000 });
  assert.equal(res.body, 'POST /drain_listeners?graceful');
});

test('rejects when the endpoint does not answer in time', async () => {
  await assert.rejects(localHttpRequest(`${base}/slow`, { timeoutMs: 100 }), /timed out after 100 ms/);
});

test('rejects when nothing listens (Envoy not started yet)', async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(localHttpRequest(`http://127.0.0.1:${port}/ready`, { timeoutMs: 2000 }), /ECONNREFUSED/);
});

test('refuses a URL that is not http:', async () => {
  await assert.rejects(localHttpRequest('https://127.0.0.1:1/ready', { timeoutMs: 100 }), /only http: URLs, got https:/);
});
