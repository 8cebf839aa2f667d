/**
 * A tiny HTTP echo app used by the demo and the end-to-end tests as "the workload's app".
 * It answers every request with JSON: which app answered, the method, path, and the request
 * headers (so a caller can see `x-forwarded-client-cert`, the peer identity Envoy forwarded).
 *
 * Usage: node --import tsx examples/apps/echo.ts --listen 127.0.0.1:9082 --name backend-1
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { listen: { type: 'string', default: '127.0.0.1:9080' }, name: { type: 'string', default: 'echo' } },
});
const listen = values.listen ?? '127.0.0.1:9080';
const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));
const name = values.name ?? 'echo';

const server = http.createServer((req, res) => {
  const body = JSON.stringify({ app: name, method: req.method, path: req.url, headers: req.headers });
  res.writeHead(200, { 'content-type': 'application/json', 'x-app': name });
  res.end(body);
});
server.listen(port, host, () => {
  process.stdout.write(`echo ${name} listening on ${host}:${port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
