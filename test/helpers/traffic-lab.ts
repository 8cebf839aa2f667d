/**
 * A lab for traffic management end-to-end tests (issue 8 §3): one control plane on the host side
 * of the lab bridge (198.18.<subnet>.1), a client VM running the real `skiff agent` and Envoy
 * sidecar, and four backend VMs, each its own network namespace, running a small HTTPS server
 * (test/helpers/traffic-backend.ts) that terminates Istio mTLS with its own X.509-SVID — so the
 * client's sidecar talks ISTIO_MUTUAL to them exactly as to another sidecar, while the lab keeps
 * to one Envoy process.
 *
 *   VM       labels                               locality            services
 *   client   app=client                           region1/zone-a      (caller)
 *   v1       app=web, version=v1                  -                   web, web-v1
 *   v2       app=web, version=v2                  -                   web, web-v2
 *   za       app=geo                              region1/zone-a      geo
 *   zb       app=geo, mirror=yes                  region1/zone-b      geo, mirror
 *
 * The client's Sidecar binds its egress listener to the client VM's own address (port 8080), so
 * the test process on the host sends requests straight into the client's Envoy, which routes them
 * by Host header. Envoy's admin port (the VM's 127.0.0.1:15000) is forwarded to
 * `<clientIp>:15900` for `/config_dump`, `/clusters` and `/stats`.
 *
 * Traffic resources are applied as an operator would: written into the control plane's config
 * directory (`traffic.yaml`, tmp file + rename); `apply()` then waits on `/debug/syncz` until the
 * registry moved and the client's proxy ACKed the configuration computed from it.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { issueSvid, waitForSync, type SyncStatus } from './authz-lab.js';
import { createLab, type Lab } from './netns.js';
import { ProcessGroup, type Proc } from './processes.js';
import { REPO, createToken, eventually, startAgentProc, startControlPlaneProc, type ControlPlaneProc } from './skiff.js';

/** Namespace of every workload and service in the lab. */
export const NS = 'traffic';
/** The service with subsets v1 and v2 (VMs `v1`, `v2`). */
export const WEB = `web.${NS}.svc.cluster.local`;
/** The service with one endpoint per zone (VMs `za` in zone-a, `zb` in zone-b). */
export const GEO = `geo.${NS}.svc.cluster.local`;
/** Services of one version each (Gateway API backends: the Gateway API has no subsets). */
export const WEB_V1 = `web-v1.${NS}.svc.cluster.local`;
/** See {@link WEB_V1}. */
export const WEB_V2 = `web-v2.${NS}.svc.cluster.local`;
/** The mirror target (VM `zb`). */
export const MIRROR = `mirror.${NS}.svc.cluster.local`;
/** The port every service uses, and the client's egress port. */
export const PORT = 8080;
/** Envoy admin, forwarded from the client VM's 127.0.0.1:15000. */
export const ADMIN_FORWARD_PORT = 15900;
/** The backend control port on each backend VM's address. */
export const CONTROL_PORT = 9999;
/** Backend VM names. */
export const BACKENDS = ['v1', 'v2', 'za', 'zb'] as const;
/** One backend VM's name. */
export type BackendName = (typeof BACKENDS)[number];

/** What the client saw for one request through its sidecar. */
export interface Reply {
  /** HTTP status; 0 when there was no HTTP response. */
  status: number;
  /** The backend VM that answered (its `x-backend` header), if any. */
  backend?: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Milliseconds from sending to the end of the response. */
  ms: number;
  /** Why there was no response. */
  error?: string;
}

/** The JSON a backend answers with. */
export interface BackendAnswer {
  backend: string;
  method: string;
  path: string;
  host: string;
  headers: Record<string, string>;
  /** The caller's SPIFFE ID from its client certificate. */
  peer?: string;
}

/** One request from the host into the client's sidecar. */
export interface RequestSpec {
  host: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Run-time behaviour of a backend (see traffic-backend.ts). */
export interface BackendBehaviour {
  failPercent?: number;
  failStatus?: number;
  delayMs?: number;
}

/** Counters of a backend since its last reset. */
export interface BackendStats {
  total: number;
  mirrored: number;
  failed: number;
  paths: Record<string, number>;
}

/** A running traffic lab. */
export interface TrafficLab {
  lab: Lab;
  cp: ControlPlaneProc;
  clientIp: string;
  ips: Record<BackendName, string>;
  /** The directory `skiff serve --config-dir` watches. */
  meshDir: string;
  /** Writes `traffic.yaml` and waits until the client's proxy ACKed the result. */
  apply(yaml: string): Promise<SyncStatus>;
  /** Writes `traffic.yaml` without waiting (for input the control plane must reject). */
  writeTraffic(yaml: string): string;
  request(spec: RequestSpec): Promise<Reply>;
  /** A client holding one keep-alive connection to the sidecar, reused for every request. */
  keepAliveClient(): { request(spec: RequestSpec): Promise<Reply>; close(): void };
  /**
   * `count` requests, at most `concurrency` at a time, over the lab's shared keep-alive pool, or
   * over connections opened for this burst when `freshConnections` is set.
   */
  burst(spec: RequestSpec, count: number, concurrency: number, opts?: { freshConnections?: boolean }): Promise<Reply[]>;
  configure(backend: BackendName, b: BackendBehaviour): Promise<void>;
  /** Resets every backend's behaviour and counters. */
  resetBackends(): Promise<void>;
  stats(backend: BackendName): Promise<BackendStats>;
  /** GET on the client Envoy's admin API; returns the body. */
  admin(pathAndQuery: string): Promise<string>;
  /** Sum of the client Envoy's counters `cluster.<cluster>.<stat>`. */
  clusterStat(cluster: string, stat: string): Promise<number>;
  syncz(): Promise<SyncStatus>;
  /** The control plane's output since the lab started. */
  controlPlaneLog(): string;
  logs(): string;
  stop(): Promise<void>;
}

/** Istio's outbound cluster name. */
export const clusterName = (host: string, subset = '', port = PORT): string => `outbound|${port}|${subset}|${host}`;

/** The static mesh: services, WorkloadEntries (with localities) and the client's Sidecar. */
export function meshYaml(clientIp: string, ips: Record<BackendName, string>): string {
  const we = (name: string, ip: string, sa: string, labels: string, locality?: string) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: ${NS}}
spec:
  address: ${ip}
  serviceAccount: ${sa}
  labels: {${labels}}
${locality ? `  locality: ${locality}\n` : ''}---
`;
  const se = (name: string, host: string, selector: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${NS}}
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: ${PORT}, protocol: HTTP}]
  workloadSelector: {labels: {${selector}}}
---
`;
  return (
    se('web', WEB, 'app: web') +
    se('geo', GEO, 'app: geo') +
    se('mirror', MIRROR, 'mirror: "yes"') +
    se('web-v1', WEB_V1, 'app: web, version: v1') +
    se('web-v2', WEB_V2, 'app: web, version: v2') +
    we('client-1', clientIp, 'client', 'app: client', 'region1/zone-a') +
    we('web-v1', ips.v1, 'web', 'app: web, version: v1') +
    we('web-v2', ips.v2, 'web', 'app: web, version: v2') +
    we('geo-a', ips.za, 'geo', 'app: geo', 'region1/zone-a') +
    we('geo-b', ips.zb, 'geo', 'app: geo, mirror: "yes"', 'region1/zone-b') +
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: client}}
  egress:
    - bind: ${clientIp}
      port: {number: ${PORT}, protocol: HTTP, name: http-egress}
      hosts: ["${NS}/*"]
`
  );
}

const SA_OF: Record<BackendName, string> = { v1: 'web', v2: 'web', za: 'geo', zb: 'geo' };

function writeAtomic(file: string, text: string, mode?: number): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text, mode === undefined ? undefined : { mode });
  fs.renameSync(tmp, file);
}

function send(agent: http.Agent, ip: string, spec: RequestSpec): Promise<Reply> {
  return new Promise((resolve) => {
    const started = Date.now();
    let settled = false;
    const done = (r: Omit<Reply, 'ms'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...r, ms: Date.now() - started });
    };
    const req = http.request({
      host: ip,
      port: PORT,
      method: spec.method ?? 'GET',
      path: spec.path ?? '/',
      agent,
      setHost: false,
      headers: { host: spec.host, ...spec.headers },
    });
    req.setTimeout(spec.timeoutMs ?? 10_000, () => req.destroy(new Error('timeout')));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const backend = res.headers['x-backend'];
        done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ...(typeof backend === 'string' ? { backend } : {}) });
      });
      res.on('error', (err) => done({ status: 0, headers: {}, body: '', error: err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ status: 0, headers: {}, body: '', error: err.code ?? err.message }));
    req.end();
  });
}

/** Parses a backend's JSON answer; undefined when the body is not one. */
export function answerOf(r: Reply): BackendAnswer | undefined {
  try {
    const o = JSON.parse(r.body) as BackendAnswer;
    return typeof o.backend === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Counts replies by `backend` (or `status <n>` when no backend answered with 200). */
export function tally(replies: Reply[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const k = r.status === 200 && r.backend ? r.backend : `status ${r.status}${r.error ? ` ${r.error}` : ''}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Options of {@link startTrafficLab}. */
export interface TrafficLabOptions {
  /** Third octet of 198.18.<subnet>.0/24 (distinct per test file). */
  subnet: number;
  /** Initial `traffic.yaml`. */
  traffic?: string;
}

/**
 * Starts the lab; resolves once the client's proxy is synced and a request to `web` through it
 * is answered by a backend. Throws (after tearing everything down) with every process's output.
 */
export async function startTrafficLab(opts: TrafficLabOptions): Promise<TrafficLab> {
  const group = new ProcessGroup();
  const lab = createLab(['client', ...BACKENDS], opts.subnet);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-traffic-'));
  const socketDir = fs.mkdtempSync('/tmp/sk-');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const cleanup = async () => {
    agent.destroy();
    await group.stopAll();
    lab.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(socketDir, { recursive: true, force: true });
  };
  try {
    const clientIp = lab.vms['client']!.ip;
    const ips = Object.fromEntries(BACKENDS.map((b) => [b, lab.vms[b]!.ip])) as Record<BackendName, string>;
    const meshDir = path.join(tmp, 'mesh');
    fs.mkdirSync(meshDir);
    fs.writeFileSync(path.join(meshDir, 'mesh.yaml'), meshYaml(clientIp, ips));
    const trafficFile = path.join(meshDir, 'traffic.yaml');
    fs.writeFileSync(trafficFile, opts.traffic ?? '');
    const dataDir = path.join(tmp, 'data');
    const cp = await startControlPlaneProc(group, { configDir: meshDir, dataDir, address: lab.hostIp });
    const bundleFile = path.join(dataDir, 'trust-bundle.pem');
    const trustBundlePem = fs.readFileSync(bundleFile, 'utf8');

    // The client VM: agent + Envoy, and the admin forwarder.
    const tokenFile = path.join(tmp, 'client.token');
    fs.writeFileSync(tokenFile, createToken(dataDir, NS, 'client', ['--ttl', '10m']), { mode: 0o600 });
    startAgentProc(
      group,
      {
        name: 'client',
        controlPlane: `${lab.hostIp}:${cp.grpcPort}`,
        rootCert: bundleFile,
        tokenFile,
        namespace: NS,
        serviceAccount: 'client',
        workloadName: 'client-1',
        workloadIp: clientIp,
        stateDir: path.join(tmp, 'state-client'),
        socketDir,
        adminPort: 15000,
        labels: { app: 'client' },
        extraArgs: ['--readiness-port', '0'],
      },
      { lab, vm: 'client' },
    );
    const script = path.join(REPO, 'test', 'helpers', 'traffic-backend.ts');
    const waits: Promise<unknown>[] = [];
    const fwd = group.add('admin-forward', lab.spawnIn('client', process.execPath, ['--import', 'tsx', script, 'forward', '--listen', `${clientIp}:${ADMIN_FORWARD_PORT}`, '--target', `127.0.0.1:15000`], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }));
    waits.push(fwd.waitFor(/forwarding/, 60_000));

    // Backends: one SVID per service account, then one HTTPS server per VM.
    const svids = new Map<string, { cert: string; key: string }>();
    for (const sa of new Set(Object.values(SA_OF))) {
      const svid = await issueSvid(cp, trustBundlePem, NS, sa);
      const cert = path.join(tmp, `${sa}.crt`);
      const key = path.join(tmp, `${sa}.key`);
      fs.writeFileSync(cert, svid.certChainPem);
      fs.writeFileSync(key, svid.keyPem, { mode: 0o600 });
      svids.set(sa, { cert, key });
    }
    const backends: Proc[] = [];
    for (const b of BACKENDS) {
      const files = svids.get(SA_OF[b])!;
      const p = group.add(
        `backend-${b}`,
        lab.spawnIn(b, process.execPath, ['--import', 'tsx', script, 'backend', '--name', b, '--listen', `${ips[b]}:${PORT}`, '--control', `${ips[b]}:${CONTROL_PORT}`, '--cert', files.cert, '--key', files.key, '--ca', bundleFile], {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      backends.push(p);
      waits.push(p.waitFor(/listening/, 60_000));
    }
    await Promise.all(waits);

    const control = async (b: BackendName, method: 'GET' | 'POST', p: string, body?: unknown): Promise<unknown> => {
      const res = await fetch(`http://${ips[b]}:${CONTROL_PORT}${p}`, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      if (!res.ok) throw new Error(`backend ${b} ${p}: ${res.status}`);
      return res.json();
    };
    const fetchSyncz = async (): Promise<SyncStatus> => {
      const res = await fetch(`http://${cp.address}:${cp.monitoringPort}/debug/syncz`);
      return (await res.json()) as SyncStatus;
    };
    // What the file holds, and what the control plane last accepted from it.
    let lastText = opts.traffic ?? '';
    let lastApplied = lastText;
    const self: TrafficLab = {
      lab,
      cp,
      clientIp,
      ips,
      meshDir,
      async apply(yaml) {
        const before = (await fetchSyncz()).registryVersion;
        if (yaml === lastText) return fetchSyncz();
        if (yaml === lastApplied) {
          // Back to the serving config after a rejected edit: the registry does not move; the
          // control plane only says the file is valid again.
          const mark = cp.proc.output().length;
          writeAtomic(trafficFile, yaml);
          lastText = yaml;
          await eventually('the control plane to accept the file again', async () => cp.proc.output().slice(mark).includes('config valid again'), 10_000, 50);
          return fetchSyncz();
        }
        writeAtomic(trafficFile, yaml);
        lastText = yaml;
        const status = await waitForSync(cp, before, 20_000);
        lastApplied = yaml;
        return status;
      },
      writeTraffic(yaml) {
        writeAtomic(trafficFile, yaml);
        lastText = yaml;
        return trafficFile;
      },
      request: (spec) => send(agent, clientIp, spec),
      keepAliveClient() {
        const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
        return { request: (spec) => send(one, clientIp, spec), close: () => one.destroy() };
      },
      async burst(spec, count, concurrency, burstOpts) {
        const via = burstOpts?.freshConnections ? new http.Agent({ keepAlive: true, maxSockets: concurrency }) : agent;
        const out: Reply[] = new Array<Reply>(count);
        let next = 0;
        const worker = async () => {
          for (;;) {
            const i = next++;
            if (i >= count) return;
            out[i] = await send(via, clientIp, spec);
          }
        };
        try {
          await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
        } finally {
          if (via !== agent) via.destroy();
        }
        return out;
      },
      async configure(b, behaviour) {
        await control(b, 'POST', '/config', behaviour);
      },
      async resetBackends() {
        await Promise.all(BACKENDS.map(async (b) => {
          await control(b, 'POST', '/config', {});
          await control(b, 'POST', '/reset');
        }));
      },
      stats: async (b) => (await control(b, 'GET', '/stats')) as BackendStats,
      async admin(p) {
        const res = await fetch(`http://${clientIp}:${ADMIN_FORWARD_PORT}${p}`);
        return res.text();
      },
      async clusterStat(cluster, stat) {
        const text = await self.admin(`/stats?filter=${encodeURIComponent(`^cluster\\.${cluster.replace(/[.|]/g, (c) => `\\${c}`)}\\.${stat}$`)}`);
        return text
          .split('\n')
          .map((l) => Number(l.slice(l.lastIndexOf(':') + 1)))
          .filter((n) => Number.isFinite(n))
          .reduce((a, n) => a + n, 0);
      },
      syncz: fetchSyncz,
      controlPlaneLog: () => cp.proc.output(),
      logs: () => group.dump(),
      stop: cleanup,
    };

    await eventually(
      "the client's sidecar synced and routing to web",
      async () => {
        const s = await fetchSyncz();
        if (!s.synced || s.proxies.length === 0) return false;
        const r = await self.request({ host: WEB, path: '/ready', timeoutMs: 3000 });
        return r.status === 200 && r.backend !== undefined;
      },
      90_000,
      300,
    );
    return self;
  } catch (err) {
    const dump = group.dump();
    await cleanup();
    if (err instanceof Error) err.message += `\n${dump}`;
    throw err;
  }
}
