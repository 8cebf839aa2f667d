/**
 * Processes run inside the traffic lab's simulated VMs (test/helpers/traffic-lab.ts), started as
 * `ip netns exec <ns> node --import tsx test/helpers/traffic-backend.ts <mode> ...`:
 *
 *   backend --name N --listen IP:PORT --control IP:PORT --cert F --key F --ca F
 *     An HTTPS server that terminates Istio mTLS itself (the VM's X.509-SVID, client certificate
 *     required and checked against the mesh trust bundle, ALPN `istio-http/1.1`/`istio` as a Skiff
 *     or Istio sidecar would accept), so a backend needs no Envoy of its own. Every answer carries
 *     `x-backend: N` and a JSON body naming the VM, the request line, the headers and the caller's
 *     SPIFFE ID. Behaviour is set at run time over plain HTTP on the control address:
 *       POST /config {"failPercent":50,"failStatus":500,"delayMs":0}  (random share of failures)
 *       GET  /stats  → {"total":n,"mirrored":n,"failed":n,"paths":{...}}
 *       POST /reset  → zero the counters
 *     A request whose Host ends in `-shadow` (Envoy's mirror copy) counts as mirrored.
 *
 *   forward --listen IP:PORT --target IP:PORT
 *     A TCP forwarder, so the test process on the host can reach the VM's Envoy admin port, which
 *     is bound to the VM's 127.0.0.1 only.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string', default: 'backend' },
    listen: { type: 'string' },
    control: { type: 'string' },
    target: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
  },
});

function splitHostPort(s: string | undefined): { host: string; port: number } {
  if (!s) throw new Error('missing host:port');
  const sep = s.lastIndexOf(':');
  return { host: s.slice(0, sep), port: Number(s.slice(sep + 1)) };
}

/** Run-time behaviour of a backend. */
interface Behaviour {
  failPercent: number;
  failStatus: number;
  delayMs: number;
}

function runBackend(): void {
  const name = values.name ?? 'backend';
  const behaviour: Behaviour = { failPercent: 0, failStatus: 500, delayMs: 0 };
  let stats = { total: 0, mirrored: 0, failed: 0, paths: {} as Record<string, number> };

  const server = https.createServer(
    {
      cert: fs.readFileSync(values.cert ?? ''),
      key: fs.readFileSync(values.key ?? ''),
      ca: fs.readFileSync(values.ca ?? ''),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['istio-http/1.1', 'istio', 'http/1.1'],
      keepAliveTimeout: 60_000,
    },
    (req, res) => {
      const host = req.headers.host ?? '';
      const mirrored = host.replace(/:\d+$/, '').endsWith('-shadow');
      stats.total++;
      if (mirrored) stats.mirrored++;
      const p = (req.url ?? '').split('?')[0] ?? '';
      stats.paths[p] = (stats.paths[p] ?? 0) + 1;
      const fail = behaviour.failPercent > 0 && Math.random() * 100 < behaviour.failPercent;
      if (fail) stats.failed++;
      const peer = (req.socket as tls.TLSSocket).getPeerCertificate();
      const san = (peer.subjectaltname ?? '').split(', ').find((s) => s.startsWith('URI:'))?.slice(4);
      const answer = () => {
        const body = JSON.stringify({ backend: name, method: req.method, path: req.url, host, headers: req.headers, peer: san, failed: fail });
        res.writeHead(fail ? behaviour.failStatus : 200, { 'content-type': 'application/json', 'x-backend': name });
        res.end(body);
      };
      req.resume();
      req.on('end', () => {
        if (behaviour.delayMs > 0) setTimeout(answer, behaviour.delayMs);
        else answer();
      });
    },
  );
  const listen = splitHostPort(values.listen);
  server.listen(listen.port, listen.host);

  const control = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, o: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(o));
      };
      if (req.method === 'POST' && req.url === '/config') {
        try {
          const next = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<Behaviour>;
          behaviour.failPercent = next.failPercent ?? 0;
          behaviour.failStatus = next.failStatus ?? 500;
          behaviour.delayMs = next.delayMs ?? 0;
          return reply(200, behaviour);
        } catch (err) {
          return reply(400, { error: (err as Error).message });
        }
      }
      if (req.method === 'POST' && req.url === '/reset') {
        stats = { total: 0, mirrored: 0, failed: 0, paths: {} };
        return reply(200, stats);
      }
      if (req.url === '/stats') return reply(200, stats);
      return reply(404, { error: 'not found' });
    });
  });
  const ctl = splitHostPort(values.control);
  control.listen(ctl.port, ctl.host, () => process.stdout.write(`backend ${name} listening on ${values.listen} control ${values.control}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

function runForward(): void {
  const listen = splitHostPort(values.listen);
  const target = splitHostPort(values.target);
  const server = net.createServer((down) => {
    const up = net.connect(target.port, target.host);
    down.pipe(up).pipe(down);
    const close = () => {
      down.destroy();
      up.destroy();
    };
    down.on('error', close);
    up.on('error', close);
  });
  server.listen(listen.port, listen.host, () => process.stdout.write(`forwarding ${values.listen} to ${values.target}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

const mode = positionals[0];
if (mode === 'backend') runBackend();
else if (mode === 'forward') runForward();
else {
  process.stderr.write('usage: traffic-backend.ts backend|forward ...\n');
  process.exit(2);
}
