/**
 * A client run inside a simulated VM's network namespace (`ip netns exec <ns> node --import tsx
 * test/helpers/probe.ts ...`), because a process cannot switch namespaces per socket. It prints
 * one JSON line per attempt, so the test asserts on what a user of that VM would see.
 *
 *   http --url URL [--host H] [--count N] [--interval-ms M]   → {"ok":true,"status":200,"body":{...}}
 *   tcp  --target host:port [--send TEXT]                       → {"ok":false,"error":"ECONNRESET"}
 */
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    host: { type: 'string' },
    count: { type: 'string', default: '1' },
    'interval-ms': { type: 'string', default: '0' },
    target: { type: 'string' },
    send: { type: 'string' },
    'timeout-ms': { type: 'string', default: '3000' },
  },
});

const timeoutMs = Number(values['timeout-ms']);

function emit(o: unknown): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

function httpOnce(url: string, host?: string): Promise<void> {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = http.get(url, { headers: host ? { host } : {}, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON: keep text */
        }
        emit({ ok: true, status: res.statusCode, body, ms: Date.now() - started, at: Date.now() });
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      emit({ ok: false, error: err.code ?? err.message, ms: Date.now() - started, at: Date.now() });
      resolve();
    });
  });
}

function tcpOnce(target: string, send?: string): Promise<void> {
  return new Promise((resolve) => {
    const sep = target.lastIndexOf(':');
    const sock = net.connect({ host: target.slice(0, sep), port: Number(target.slice(sep + 1)) });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (o: Record<string, unknown>) => {
      if (done) return;
      done = true;
      sock.destroy();
      emit(o);
      resolve();
    };
    sock.setTimeout(timeoutMs, () => finish({ ok: false, error: 'timeout', received: Buffer.concat(chunks).toString('utf8') }));
    sock.on('connect', () => {
      if (send) sock.write(send);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => {
      const received = Buffer.concat(chunks).toString('utf8');
      finish({ ok: received.length > 0, received, error: received.length > 0 ? undefined : 'closed' });
    });
    sock.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }));
  });
}

const mode = positionals[0];
if (mode === 'http') {
  const count = Number(values.count);
  const interval = Number(values['interval-ms']);
  for (let i = 0; i < count; i++) {
    await httpOnce(values.url ?? '', values.host);
    if (interval > 0 && i < count - 1) await new Promise((r) => setTimeout(r, interval));
  }
} else if (mode === 'tcp') {
  await tcpOnce(values.target ?? '', values.send);
} else {
  process.stderr.write('usage: probe.ts http|tcp ...\n');
  process.exit(2);
}
