/**
 * One run of a workload probe on the VM, as Istio's agent runs a WorkloadGroup `probe` (a
 * networking.istio.io ReadinessProbe) against the app, with Kubernetes' meaning of success:
 *
 * - `httpGet`: a GET to `<scheme>://<host>:<port><path>` (host default `127.0.0.1`, path `/`,
 *   scheme HTTP; HTTPS certificates are not verified, as Kubernetes does not); a status 200-399
 *   is a success, anything else (or no answer within the timeout) a failure. Redirects are not
 *   followed. `httpHeaders` are sent (a `Host` header overrides the host sent).
 * - `tcpSocket`: a TCP connection to `<host>:<port>` that opens within the timeout.
 * - `exec`: the command (no shell) exits 0 within the timeout; otherwise it is killed.
 *
 * Also the agent's probe configuration schema (the `probe:` block of the agent config, the same
 * shape as Istio's ReadinessProbe) and the defaults Istio's agent fills in (`fillInDefaults` in
 * istio `pkg/istio-agent/health`): timeout 1 s, period 10 s, success and failure thresholds 1.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { z } from 'zod';
import type { ProbeMessage } from '../src/xds/protos/registration.js';

export type { ProbeMessage } from '../src/xds/protos/registration.js';

/** The verdict of one probe run. */
export interface ProbeResult {
  healthy: boolean;
  /** What happened, e.g. `HTTP GET http://127.0.0.1:9081/healthz: status 500`. */
  message: string;
}

/** A probe with every default filled in (times in ms). */
export interface ResolvedProbe {
  initialDelayMs: number;
  timeoutMs: number;
  periodMs: number;
  successThreshold: number;
  failureThreshold: number;
  method: NonNullable<Pick<ProbeMessage, 'httpGet' | 'tcpSocket' | 'exec'>>;
}

/** Fills in Istio's agent defaults; throws when the probe has no method the agent runs. */
export function resolveProbe(p: ProbeMessage): ResolvedProbe {
  const method = p.httpGet ? { httpGet: p.httpGet } : p.tcpSocket ? { tcpSocket: p.tcpSocket } : p.exec ? { exec: p.exec } : undefined;
  if (!method) throw new Error('the probe has no check method (httpGet, tcpSocket or exec)');
  return {
    initialDelayMs: Math.max(0, p.initialDelaySeconds ?? 0) * 1000,
    timeoutMs: (p.timeoutSeconds || 1) * 1000,
    periodMs: (p.periodSeconds || 10) * 1000,
    successThreshold: p.successThreshold || 1,
    failureThreshold: p.failureThreshold || 1,
    method,
  };
}

/** A human description of what a probe checks (for logs). */
export function describeProbe(method: ResolvedProbe['method']): string {
  if (method.httpGet) {
    const h = method.httpGet;
    return `HTTP GET ${(h.scheme || 'HTTP').toLowerCase()}://${hostForUrl(h.host || '127.0.0.1')}:${h.port}${h.path || '/'}`;
  }
  if (method.tcpSocket) return `TCP connect ${hostForUrl(method.tcpSocket.host || '127.0.0.1')}:${method.tcpSocket.port}`;
  return `exec ${JSON.stringify(method.exec?.command ?? [])}`;
}

function hostForUrl(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host;
}

/** Runs the probe once; never throws (every problem is a failed result). */
export function runProbe(method: ResolvedProbe['method'], timeoutMs: number): Promise<ProbeResult> {
  if (method.httpGet) return httpProbe(method.httpGet, timeoutMs);
  if (method.tcpSocket) return tcpProbe(method.tcpSocket, timeoutMs);
  if (method.exec) return execProbe(method.exec.command, timeoutMs);
  return Promise.resolve({ healthy: false, message: 'the probe has no check method' });
}

function httpProbe(h: NonNullable<ProbeMessage['httpGet']>, timeoutMs: number): Promise<ProbeResult> {
  const what = describeProbe({ httpGet: h });
  const secure = (h.scheme || 'HTTP').toUpperCase() === 'HTTPS';
  const headers: Record<string, string> = { 'user-agent': 'skiff-probe', accept: '*/*', connection: 'close' };
  for (const header of h.httpHeaders ?? []) headers[header.name.toLowerCase()] = header.value ?? '';
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const options: https.RequestOptions = {
      host: h.host || '127.0.0.1',
      port: h.port,
      path: h.path || '/',
      method: 'GET',
      headers,
      agent: false,
      ...(secure ? { rejectUnauthorized: false } : {}),
    };
    const req = (secure ? https : http).request(options, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish({ healthy: status >= 200 && status < 400, message: `${what}: status ${status}` });
    });
    const timer = setTimeout(() => finish({ healthy: false, message: `${what}: no answer within ${timeoutMs} ms` }), timeoutMs);
    req.on('error', (err) => finish({ healthy: false, message: `${what}: ${err.message}` }));
    req.end();
  });
}

function tcpProbe(t: NonNullable<ProbeMessage['tcpSocket']>, timeoutMs: number): Promise<ProbeResult> {
  const what = describeProbe({ tcpSocket: t });
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const sock = net.connect({ host: t.host || '127.0.0.1', port: t.port });
    const timer = setTimeout(() => finish({ healthy: false, message: `${what}: not connected within ${timeoutMs} ms` }), timeoutMs);
    sock.once('connect', () => finish({ healthy: true, message: `${what}: connected` }));
    sock.once('error', (err) => finish({ healthy: false, message: `${what}: ${err.message}` }));
  });
}

/** Longest command output kept in a failure message. */
const MAX_OUTPUT = 512;

function execProbe(command: string[], timeoutMs: number): Promise<ProbeResult> {
  const what = describeProbe({ exec: { command } });
  const [file, ...args] = command;
  if (!file) return Promise.resolve({ healthy: false, message: `${what}: empty command` });
  return new Promise((resolve) => {
    let output = '';
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (d: Buffer): void => {
      if (output.length < MAX_OUTPUT) output += d.toString('utf8');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ healthy: false, message: `${what}: still running after ${timeoutMs} ms (killed)` });
    }, timeoutMs);
    child.once('error', (err) => finish({ healthy: false, message: `${what}: ${err.message}` }));
    child.once('close', (code, signal) => {
      const out = output.trim().slice(0, MAX_OUTPUT);
      const tail = out ? `: ${out}` : '';
      if (code === 0) finish({ healthy: true, message: `${what}: exit 0${tail}` });
      else finish({ healthy: false, message: `${what}: ${signal ? `killed by ${signal}` : `exit ${code}`}${tail}` });
    });
  });
}

const seconds = z.number({ error: 'expected a whole number of seconds' }).int('expected a whole number of seconds').min(0, 'expected 0 or more');
const port = z.number({ error: 'expected a port 1-65535' }).int('expected a port 1-65535').min(1, 'expected a port 1-65535').max(65535, 'expected a port 1-65535');
const host = z.string().min(1, 'expected a host').optional();

/**
 * The agent's `probe:` setting (config file, or `SKIFF_PROBE` as JSON): Istio's ReadinessProbe
 * shape with httpGet, tcpSocket or exec (exactly one). Used to report health for a static
 * WorkloadEntry; a WorkloadGroup's own probe, when it has one, takes precedence.
 */
export const probeConfigSchema = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  },
  z
    .strictObject(
      {
        initialDelaySeconds: seconds.optional(),
        timeoutSeconds: seconds.optional(),
        periodSeconds: seconds.optional(),
        successThreshold: seconds.optional(),
        failureThreshold: seconds.optional(),
        httpGet: z
          .strictObject({
            path: z.string().startsWith('/', 'expected a path starting with "/"').optional(),
            port,
            host,
            scheme: z.enum(['HTTP', 'HTTPS'], { error: 'expected HTTP or HTTPS' }).optional(),
            httpHeaders: z.array(z.strictObject({ name: z.string().regex(/^[-A-Za-z0-9]+$/, "expected a header name (letters, digits, '-')"), value: z.string().optional() })).optional(),
          })
          .optional(),
        tcpSocket: z.strictObject({ host, port }).optional(),
        exec: z.strictObject({ command: z.array(z.string()).min(1, 'expected the command and its arguments') }).optional(),
      },
      { error: 'expected a probe: {httpGet: {port, path}} or {tcpSocket: {port}} or {exec: {command}}, with optional periodSeconds, timeoutSeconds, ...' },
    )
    .refine((p) => [p.httpGet, p.tcpSocket, p.exec].filter((m) => m !== undefined).length === 1, 'expected exactly one of httpGet, tcpSocket and exec'),
);
