/**
 * The agent's readiness endpoint (DESIGN.md §5, port 15021): `GET /healthz/ready`, Istio's path
 * on the same port, answers 200 once the VM's Envoy can serve mesh traffic and 503 (with the
 * reason) until then. Load balancers, the Ansible roles' rollout gate (`ansible/`) and operators
 * use it.
 *
 * Envoy is ready when all of these hold (the checks Istio's pilot-agent makes, plus the
 * certificate, which Skiff's agent serves itself):
 *
 * - `config`: Envoy accepted configuration from the control plane: the admin `/stats` counters
 *   `cluster_manager.cds.update_success` and `listener_manager.lds.update_success` are > 0
 *   (Envoy goes LIVE without config when the initial fetch times out, so LIVE alone is not enough);
 * - `envoy`: the admin `/ready` answers 200 `LIVE` and `listener_manager.workers_started` is 1;
 * - `certificate`: the admin `/certs` lists a certificate whose URI SAN is the workload's SPIFFE ID
 *   and which has not expired;
 * - `sds`: Envoy ACKed both SDS secrets, `default` and `ROOTCA`, from this agent.
 *
 * After {@link ReadinessServer.markDraining} (the agent is stopping) the answer is 503 `draining`,
 * so traffic moves away while Envoy drains. Every check runs on each request, so a restarted Envoy
 * is not ready again until it has its config and certificate again.
 */
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../src/observability/logger.js';
import { localHttpRequest } from './local-http.js';
import type { SdsEvent, SdsServer } from './sds.js';

/** The readiness path, as Istio's sidecar agent serves it on 15021. */
export const READINESS_PATH = '/healthz/ready';
/** The SDS secrets Envoy must have ACKed (Istio's names, agents/sds.ts). */
export const REQUIRED_SECRETS = ['default', 'ROOTCA'] as const;

/** One named condition of the report. */
export interface ReadinessCheck {
  name: 'config' | 'envoy' | 'certificate' | 'sds' | 'draining';
  ok: boolean;
  /** What was seen, e.g. `cds updates: 1 successful, 0 rejected; lds updates: 1 successful, 0 rejected`. */
  detail: string;
}

/** The body of every readiness answer (JSON). */
export interface ReadinessReport {
  ready: boolean;
  checks: ReadinessCheck[];
}

/** Something that can say whether the proxy is ready. */
export type ReadinessProbe = () => Promise<ReadinessReport>;

/** Options of {@link envoyReadinessProbe}. */
export interface EnvoyReadinessOptions {
  /** Envoy's admin base URL, `http://127.0.0.1:<adminPort>`. */
  adminUrl: string;
  /** The SPIFFE ID the certificate Envoy holds must carry (`spiffe://<td>/ns/<ns>/sa/<sa>`). */
  spiffeId: string;
  /** Names of the SDS secrets Envoy has ACKed so far. */
  ackedSecrets: () => ReadonlySet<string>;
  /** Per admin request (default 1000 ms). */
  timeoutMs?: number;
  /** Clock for the expiry check (tests). */
  now?: () => number;
}

const STATS_FILTER = '^(listener_manager\\.workers_started|cluster_manager\\.cds\\.update_(success|rejected)|listener_manager\\.lds\\.update_(success|rejected))$';

/** Parses Envoy's text `/stats` output (`name: value` lines) into a map of numeric values. */
export function parseEnvoyStats(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^:\s]+):\s*(-?\d+)\s*$/.exec(line);
    if (m?.[1] && m[2] !== undefined) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** The part of Envoy's admin `/certs` JSON that the certificate check reads. */
interface CertsBody {
  certificates?: {
    cert_chain?: { subject_alt_names?: { uri?: string }[]; expiration_time?: string; serial_number?: string }[];
  }[];
}

/** Checks the `config` and `envoy` conditions from `/stats` counters and the `/ready` answer. */
export function envoyStateChecks(stats: Map<string, number>, ready: { status: number; body: string }): ReadinessCheck[] {
  const n = (k: string): number => stats.get(k) ?? 0;
  const cds = { ok: n('cluster_manager.cds.update_success'), rejected: n('cluster_manager.cds.update_rejected') };
  const lds = { ok: n('listener_manager.lds.update_success'), rejected: n('listener_manager.lds.update_rejected') };
  const counts = `cds updates: ${cds.ok} successful, ${cds.rejected} rejected; lds updates: ${lds.ok} successful, ${lds.rejected} rejected`;
  let config: ReadinessCheck;
  if (cds.ok > 0 && lds.ok > 0) config = { name: 'config', ok: true, detail: counts };
  else if (cds.rejected > 0 || lds.rejected > 0) config = { name: 'config', ok: false, detail: `config received from the control plane, but rejected: ${counts}` };
  else if (cds.ok === 0 && lds.ok === 0) config = { name: 'config', ok: false, detail: `config not received from the control plane (is it running and reachable?): ${counts}` };
  else config = { name: 'config', ok: false, detail: `config not fully received from the control plane: ${counts}` };
  const live = ready.status === 200 && ready.body === 'LIVE';
  const workers = n('listener_manager.workers_started') === 1;
  const envoy: ReadinessCheck = live && workers
    ? { name: 'envoy', ok: true, detail: 'LIVE, workers started' }
    : { name: 'envoy', ok: false, detail: live ? 'LIVE, but workers have not started' : `admin /ready: ${ready.status} ${ready.body}` };
  return [config, envoy];
}

/** Checks that `/certs` holds an unexpired certificate for `spiffeId`. */
export function certificateCheck(body: CertsBody, spiffeId: string, now: number): ReadinessCheck {
  const chains = (body.certificates ?? []).flatMap((c) => c.cert_chain ?? []);
  const mine = chains.filter((c) => (c.subject_alt_names ?? []).some((s) => s.uri === spiffeId));
  const valid = mine.find((c) => c.expiration_time !== undefined && Date.parse(c.expiration_time) > now);
  if (valid) return { name: 'certificate', ok: true, detail: `${spiffeId} serial ${valid.serial_number ?? '?'} until ${valid.expiration_time ?? '?'}` };
  if (mine.length > 0) return { name: 'certificate', ok: false, detail: `the certificate for ${spiffeId} has expired` };
  return { name: 'certificate', ok: false, detail: `Envoy holds no certificate for ${spiffeId} yet` };
}

/** Checks that Envoy ACKed every secret in {@link REQUIRED_SECRETS}. */
export function sdsCheck(acked: ReadonlySet<string>): ReadinessCheck {
  const missing = REQUIRED_SECRETS.filter((s) => !acked.has(s));
  return missing.length === 0
    ? { name: 'sds', ok: true, detail: `ACKed ${REQUIRED_SECRETS.join(', ')}` }
    : { name: 'sds', ok: false, detail: `waiting for Envoy to ACK SDS secret(s) ${missing.join(', ')}` };
}

async function fetchText(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const res = await localHttpRequest(url, { timeoutMs });
  return { status: res.status, body: res.body.trim() };
}

/**
 * A probe of a local Envoy through its admin API (see the module comment for the conditions).
 * An unreachable admin endpoint (Envoy starting or restarting) makes every Envoy check fail with
 * the error as detail; the probe itself never throws.
 */
export function envoyReadinessProbe(opts: EnvoyReadinessOptions): ReadinessProbe {
  const timeoutMs = opts.timeoutMs ?? 1000;
  const now = opts.now ?? Date.now;
  return async () => {
    const checks: ReadinessCheck[] = [];
    try {
      const [stats, ready, certs] = await Promise.all([
        fetchText(`${opts.adminUrl}/stats?filter=${encodeURIComponent(STATS_FILTER)}`, timeoutMs),
        fetchText(`${opts.adminUrl}/ready`, timeoutMs),
        fetchText(`${opts.adminUrl}/certs`, timeoutMs),
      ]);
      checks.push(...envoyStateChecks(parseEnvoyStats(stats.body), ready));
      let body: CertsBody = {};
      try {
        body = JSON.parse(certs.body) as CertsBody;
      } catch {
        // not JSON: treated as no certificates
      }
      checks.push(certificateCheck(body, opts.spiffeId, now()));
    } catch (err) {
      const detail = `Envoy admin ${opts.adminUrl} unreachable: ${(err as Error).message}`;
      checks.push({ name: 'config', ok: false, detail }, { name: 'envoy', ok: false, detail }, { name: 'certificate', ok: false, detail });
    }
    checks.push(sdsCheck(opts.ackedSecrets()));
    return { ready: checks.every((c) => c.ok), checks };
  };
}

/**
 * Collects the names of secrets ACKed on SDS events (pass it to `SdsServer.onEvent`). A NACK
 * does not remove a name: Envoy keeps the secret it accepted before.
 */
export function ackTracker(): { onEvent: (event: SdsEvent) => void; acked: () => ReadonlySet<string> } {
  const acked = new Set<string>();
  return {
    onEvent: (event) => {
      if (event.kind === 'ack') for (const name of event.resourceNames) acked.add(name);
    },
    acked: () => acked,
  };
}

/** Options of {@link startReadinessServer}. */
export interface ReadinessServerOptions {
  /** Address to bind (the workload IP, 127.0.0.1, or 0.0.0.0). */
  host: string;
  /** TCP port (15021 by default in the agent's config; 0 picks a free port, for tests). */
  port: number;
  probe: ReadinessProbe;
  logger: Logger;
}

/** A listening readiness endpoint. */
export interface ReadinessServer {
  /** `http://<host>:<port>` as bound (IPv6 in brackets). */
  readonly url: string;
  /** The bound port. */
  readonly port: number;
  /** From now on every answer is 503 `draining` (the agent is stopping). */
  markDraining: () => void;
  /** Runs the probe once (what the next request would get). */
  report: () => Promise<ReadinessReport>;
  /** Closes the listener and open connections. */
  stop: () => Promise<void>;
}

/**
 * Serves `GET /healthz/ready` (also `HEAD`): 200 with a {@link ReadinessReport} when ready, 503
 * with the report when not, 404 for other paths, 405 for other methods. Rejects when the address
 * cannot be bound (for example `EADDRINUSE`), with the address in the message.
 */
export async function startReadinessServer(opts: ReadinessServerOptions): Promise<ReadinessServer> {
  const log = opts.logger.child({ component: 'readiness' });
  let draining = false;
  let lastReady: boolean | undefined;
  const report = async (): Promise<ReadinessReport> => {
    if (draining) return { ready: false, checks: [{ name: 'draining', ok: false, detail: 'the agent is stopping' }] };
    return opts.probe();
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://readiness');
    if (url.pathname !== READINESS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; readiness is at ${READINESS_PATH}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    report().then(
      (r) => {
        if (r.ready !== lastReady) {
          lastReady = r.ready;
          if (r.ready) log.info('proxy ready');
          else log.info({ failing: r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`) }, 'proxy not ready');
        }
        const body = JSON.stringify(r) + '\n';
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`readiness check failed: ${(err as Error).message}\n`);
      },
    );
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`readiness endpoint cannot listen on ${opts.host}:${opts.port}: ${err.code ?? err.message} (choose another readinessPort or readinessAddress; readinessPort 0 turns the endpoint off)`));
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const url = `http://${net.isIPv6(opts.host) ? `[${opts.host}]` : opts.host}:${port}`;
  log.info({ url: `${url}${READINESS_PATH}` }, 'readiness endpoint listening');
  return {
    url,
    port,
    markDraining: () => {
      draining = true;
    },
    report,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Options of {@link startEnvoyReadiness}. */
export interface EnvoyReadinessServerOptions {
  host: string;
  port: number;
  /** Envoy's admin base URL. */
  adminUrl: string;
  /** The workload's SPIFFE ID. */
  spiffeId: string;
  /** The agent's SDS server, whose ACKs the `sds` check counts. */
  sds: Pick<SdsServer, 'onEvent'>;
  logger: Logger;
}

/**
 * The agent's wiring in one call: tracks SDS ACKs from `sds`, probes Envoy through its admin API
 * and serves the result on `host:port`. `stop()` also stops listening to SDS events.
 */
export async function startEnvoyReadiness(opts: EnvoyReadinessServerOptions): Promise<ReadinessServer> {
  const acks = ackTracker();
  const unsubscribe = opts.sds.onEvent(acks.onEvent);
  let server: ReadinessServer;
  try {
    server = await startReadinessServer({
      host: opts.host,
      port: opts.port,
      logger: opts.logger,
      probe: envoyReadinessProbe({ adminUrl: opts.adminUrl, spiffeId: opts.spiffeId, ackedSecrets: acks.acked }),
    });
  } catch (err) {
    unsubscribe();
    throw err;
  }
  return {
    ...server,
    stop: async () => {
      unsubscribe();
      await server.stop();
    },
  };
}
