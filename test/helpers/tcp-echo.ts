/**
 * A TCP echo app for end-to-end tests (the "workload's app" behind a Sidecar ingress port with
 * `protocol: TCP`): every byte received is written back unchanged on the same connection. A caller
 * knows its connection reached the app when its own bytes come back.
 *
 * Usage: node --import tsx test/helpers/tcp-echo.ts --listen 127.0.0.1:9001
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:9001' } } });
const listen = values.listen ?? '127.0.0.1:9001';
const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));

const server = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen(port, host, () => {
  process.stdout.write(`tcp-echo listening on ${host}:${port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
