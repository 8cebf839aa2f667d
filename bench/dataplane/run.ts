/**
 * Data-plane benchmark (issue 9 §1): HTTP requests per second and p50/p99 latency, measured with
 * `wrk` (Debian package, `--latency`), through
 * - `skiff`: two Skiff sidecars: the real `skiff agent` + real Envoy on VM `c` (client, Sidecar
 *   egress bound to its address) and VM `s` (server, Sidecar ingress), STRICT mTLS, and an
 *   AuthorizationPolicy ALLOWing the client's principal on the server;
 * - `minimal`: a hand-written static Envoy pair (`minimal-envoy.ts`): same Envoy binary, same mTLS
 *   with the same SVIDs (issued by the same control plane CA), router only;
 * - `direct`: wrk straight to the backend.
 * The backend is `backend.go` (Go net/http, 3-byte body), listening on VM `s`. VMs are network
 * namespaces on a bridge, 198.18.50.0/24 (test/helpers/netns.ts); wrk runs inside VM `c`. The
 * three setups are measured in interleaved repetitions (direct, minimal, skiff, then again) so
 * load from other processes hits each alike; the JSON gives the median per setup and the ratio of
 * `skiff` to `minimal` (the target: within 10% in rps and p99).
 *
 * Needs root (network namespaces), `go` (to build the backend), `wrk`, and Envoy
 * (`.venv/envoy-path`, `npm run setup`).
 * Run: `node --import tsx bench/dataplane/run.ts [--seconds 8] [--reps 3] [--connections 16]`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { issueSvid } from '../../test/helpers/authz-lab.js';
import { canCreateNetns, createLab, type Lab } from '../../test/helpers/netns.js';
import { ProcessGroup } from '../../test/helpers/processes.js';
import { REPO, createToken, startAgentProc, startControlPlaneProc } from '../../test/helpers/skiff.js';
import { machineInfo, round, argValue } from '../machine.js';
import { minimalClientBootstrap, minimalServerBootstrap } from './minimal-envoy.js';

const NS = 'bench';
const HOST = `web.${NS}.svc.cluster.local`;
const PORT = 8080;
const APP_PORT = 9080;
const MINIMAL_CLIENT_PORT = 18080;
const MINIMAL_SERVER_PORT = 18443;
const SUBNET = 50;

/** The mesh: one service, two WorkloadEntries, their Sidecars, STRICT mTLS, an ALLOW policy. */
function meshYaml(cIp: string, sIp: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: ${NS}}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: ${PORT}, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-1, namespace: ${NS}}
spec: {address: ${cIp}, serviceAccount: client, labels: {app: client}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-1, namespace: ${NS}}
spec: {address: ${sIp}, serviceAccount: web, labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: client}}
  egress:
    - bind: ${cIp}
      port: {number: ${PORT}, protocol: HTTP, name: http-egress}
      hosts: ["${NS}/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: web, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: web}}
  ingress:
    - port: {number: ${PORT}, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:${APP_PORT}
  egress:
    - hosts: ["${NS}/*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-allow-client, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
    - from: [{source: {principals: [cluster.local/ns/${NS}/sa/client]}}]
`;
}

/** One HTTP GET from the host; resolves the status (0 on a connection error). */
function get(ip: string, port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: ip, port, path: '/', headers: { host }, agent: false, timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function waitFor200(what: string, ip: string, port: number, host: string, timeoutMs: number, logs: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = await get(ip, port, host);
    if (last === 200) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: no 200 within ${timeoutMs} ms (last status ${last})\n${logs()}`);
}

/** wrk's results: requests/s and latency percentiles (ms), plus errors. */
interface WrkResult {
  requestsPerSecond: number;
  latencyMs: { p50: number; p75: number; p90: number; p99: number };
  requests: number;
  non2xx: number;
  socketErrors: number;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 'ms') return v;
  if (unit === 's') return v * 1000;
  if (unit === 'm') return v * 60_000;
  throw new Error(`unknown wrk unit ${unit}`);
}

/** Parses `wrk --latency` output. Throws if a field is missing. */
function parseWrk(text: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const total = /(\d+) requests in/.exec(text);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    if (!m?.[1] || !m[2]) throw new Error(`wrk output has no ${p}% latency:\n${text}`);
    return round(toMs(m[1], m[2]), 3);
  };
  if (!rps?.[1] || !total?.[1]) throw new Error(`unexpected wrk output:\n${text}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requestsPerSecond: round(Number(rps[1])),
    latencyMs: { p50: pct('50'), p75: pct('75'), p90: pct('90'), p99: pct('99') },
    requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0,
  };
}

/** Runs wrk inside VM `vm` against `url` with a Host header. */
function runWrk(lab: Lab, vm: string, url: string, host: string, seconds: number, connections: number): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${host}`, url];
  const child = lab.spawnIn(vm, 'wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out}`));
      try {
        resolve(parseWrk(out));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function summary(runs: WrkResult[]): Record<string, unknown> {
  return {
    requestsPerSecond: round(median(runs.map((r) => r.requestsPerSecond))),
    latencyMs: {
      p50: round(median(runs.map((r) => r.latencyMs.p50)), 3),
      p99: round(median(runs.map((r) => r.latencyMs.p99)), 3),
    },
    runs: runs.map((r) => ({ rps: r.requestsPerSecond, p50: r.latencyMs.p50, p99: r.latencyMs.p99, non2xx: r.non2xx, socketErrors: r.socketErrors })),
  };
}

/** Fetches an Envoy admin endpoint inside VM `vm` (admin listens on the VM's 127.0.0.1). */
function adminGet(lab: Lab, vm: string, port: number, pathAndQuery: string): string {
  return lab.execIn(vm, 'curl', ['-s', `http://127.0.0.1:${port}${pathAndQuery}`]);
}

/** What of Skiff's generated config can cost per request: filters, access logs, protocols. */
function describeSkiffConfig(configDump: string): Record<string, unknown> {
  // Leave out the bootstrap (its node metadata lists every extension Envoy was built with).
  const dump = JSON.parse(configDump) as { configs?: { '@type'?: string }[] };
  const text = JSON.stringify((dump.configs ?? []).filter((c) => !String(c['@type']).endsWith('BootstrapConfigDump')));
  const names = (kind: string) => [...new Set([...text.matchAll(new RegExp(`"name":"(envoy\\.filters\\.${kind}\\.[a-z0-9_.]+)"`, 'g'))].map((m) => m[1]))];
  return {
    httpFilters: names('http'),
    networkFilters: names('network'),
    listenerFilters: names('listener'),
    accessLogs: (text.match(/"access_log"/g) ?? []).length,
    http2ProtocolOptions: (text.match(/"http2_protocol_options"/g) ?? []).length,
    tracing: /"tracing"/.test(text),
    configBytes: text.length,
  };
}

/** Saves an Envoy config dump when `SKIFF_BENCH_KEEP_CONFIG=<dir>` is set (to compare configs). */
function keepConfig(name: string, text: string): void {
  const dir = process.env['SKIFF_BENCH_KEEP_CONFIG'];
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.json`), text);
}

async function main(): Promise<void> {
  const seconds = argValue('--seconds', 8);
  const reps = argValue('--reps', 3);
  const connections = argValue('--connections', 16);
  if (!canCreateNetns()) throw new Error('the data-plane benchmark needs root and `ip netns` (network namespaces)');
  const envoy = fs.readFileSync(path.join(REPO, '.venv', 'envoy-path'), 'utf8').trim();
  const machine = machineInfo();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-dp-'));
  const socketDir = fs.mkdtempSync('/tmp/sk-');
  const group = new ProcessGroup();
  let lab: Lab | undefined;
  try {
    const backendBin = path.join(tmp, 'backend');
    const go = fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
    execFileSync(go, ['build', '-o', backendBin, path.join(REPO, 'bench', 'dataplane', 'backend.go')], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, GOFLAGS: '-mod=mod', GO111MODULE: 'off' } });
    lab = createLab(['c', 's'], SUBNET);
    const theLab = lab;
    const cIp = lab.vms['c']?.ip ?? '';
    const sIp = lab.vms['s']?.ip ?? '';
    const meshDir = path.join(tmp, 'mesh');
    fs.mkdirSync(meshDir);
    fs.writeFileSync(path.join(meshDir, 'mesh.yaml'), meshYaml(cIp, sIp));
    const dataDir = path.join(tmp, 'data');
    const cp = await startControlPlaneProc(group, { configDir: meshDir, dataDir, address: lab.hostIp });
    const trustBundleFile = path.join(dataDir, 'trust-bundle.pem');
    const trustBundlePem = fs.readFileSync(trustBundleFile, 'utf8');

    group.add('backend', lab.spawnIn('s', backendBin, ['-listen', `0.0.0.0:${APP_PORT}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
    for (const [vm, sa, app, ip] of [
      ['c', 'client', 'client', cIp],
      ['s', 'web', 'web', sIp],
    ] as const) {
      const tokenFile = path.join(tmp, `${vm}.token`);
      fs.mkdirSync(path.join(socketDir, vm));
      fs.writeFileSync(tokenFile, createToken(dataDir, NS, sa, ['--ttl', '10m']), { mode: 0o600 });
      startAgentProc(
        group,
        {
          name: vm,
          controlPlane: `${lab.hostIp}:${cp.grpcPort}`,
          rootCert: trustBundleFile,
          tokenFile,
          namespace: NS,
          serviceAccount: sa,
          workloadName: `${app}-1`,
          workloadIp: ip,
          stateDir: path.join(tmp, `state-${vm}`),
          socketDir: path.join(socketDir, vm),
          adminPort: 15000,
          labels: { app },
        },
        { lab, vm },
      );
    }
    await waitFor200('direct backend', sIp, APP_PORT, HOST, 30_000, () => group.dump());
    await waitFor200('skiff sidecars', cIp, PORT, HOST, 120_000, () => group.dump());

    // The minimal pair, with SVIDs for the same identities from the same CA.
    const files = (name: string, svid: { certChainPem: string; keyPem: string }) => {
      const certChainFile = path.join(tmp, `${name}-chain.pem`);
      const keyFile = path.join(tmp, `${name}-key.pem`);
      fs.writeFileSync(certChainFile, svid.certChainPem);
      fs.writeFileSync(keyFile, svid.keyPem, { mode: 0o600 });
      return { certChainFile, keyFile, trustBundleFile, adminPort: 15100 };
    };
    const clientSvid = files('client', await issueSvid(cp, trustBundlePem, NS, 'client'));
    const serverSvid = files('web', await issueSvid(cp, trustBundlePem, NS, 'web'));
    const clientBootstrap = path.join(tmp, 'minimal-client.json');
    const serverBootstrap = path.join(tmp, 'minimal-server.json');
    fs.writeFileSync(clientBootstrap, minimalClientBootstrap({ ...clientSvid, listenIp: cIp, listenPort: MINIMAL_CLIENT_PORT, serverIp: sIp, serverPort: MINIMAL_SERVER_PORT, sni: `outbound_.${PORT}_._.${HOST}` }));
    fs.writeFileSync(serverBootstrap, minimalServerBootstrap({ ...serverSvid, listenIp: sIp, listenPort: MINIMAL_SERVER_PORT, appIp: '127.0.0.1', appPort: APP_PORT }));
    const envoyArgs = (file: string) => ['-c', file, '--disable-hot-restart', '--log-level', 'warn'];
    group.add('minimal-server', lab.spawnIn('s', envoy, envoyArgs(serverBootstrap), { stdio: ['ignore', 'pipe', 'pipe'] }));
    group.add('minimal-client', lab.spawnIn('c', envoy, envoyArgs(clientBootstrap), { stdio: ['ignore', 'pipe', 'pipe'] }));
    await waitFor200('minimal Envoy pair', cIp, MINIMAL_CLIENT_PORT, HOST, 30_000, () => group.dump());

    const setups = {
      direct: `http://${sIp}:${APP_PORT}/`,
      minimal: `http://${cIp}:${MINIMAL_CLIENT_PORT}/`,
      skiff: `http://${cIp}:${PORT}/`,
    } as const;
    const runs: Record<keyof typeof setups, WrkResult[]> = { direct: [], minimal: [], skiff: [] };
    // Warm-up: connections, TLS sessions, Envoy's worker threads.
    for (const url of Object.values(setups)) await runWrk(theLab, 'c', url, HOST, 2, connections);
    for (let r = 0; r < reps; r++) {
      for (const [name, url] of Object.entries(setups) as [keyof typeof setups, string][]) {
        const res = await runWrk(theLab, 'c', url, HOST, seconds, connections);
        process.stderr.write(`${name} #${r + 1}: ${res.requestsPerSecond} rps, p50 ${res.latencyMs.p50} ms, p99 ${res.latencyMs.p99} ms${res.non2xx ? `, ${res.non2xx} non-2xx` : ''}\n`);
        runs[name].push(res);
      }
    }
    const dumps = {
      client: adminGet(theLab, 'c', 15000, '/config_dump'),
      server: adminGet(theLab, 's', 15000, '/config_dump'),
      minimalClient: adminGet(theLab, 'c', 15100, '/config_dump'),
      minimalServer: adminGet(theLab, 's', 15100, '/config_dump'),
    };
    for (const [name, text] of Object.entries(dumps)) keepConfig(name, text);
    const configNotes = { client: describeSkiffConfig(dumps.client), server: describeSkiffConfig(dumps.server) };
    const med = (name: keyof typeof setups) => ({
      rps: median(runs[name].map((x) => x.requestsPerSecond)),
      p50: median(runs[name].map((x) => x.latencyMs.p50)),
      p99: median(runs[name].map((x) => x.latencyMs.p99)),
    });
    const skiff = med('skiff');
    const minimal = med('minimal');
    const direct = med('direct');
    const result = {
      benchmark: 'dataplane',
      date: new Date().toISOString(),
      machine,
      command: 'node --import tsx bench/dataplane/run.ts',
      loadGenerator: `wrk -t1 -c${connections} -d${seconds}s --latency (Debian wrk), inside VM c (network namespace)`,
      backend: 'Go net/http (bench/dataplane/backend.go), 3-byte body, on VM s',
      envoy: execFileSync(envoy, ['--version'], { encoding: 'utf8' }).trim().split('\n').pop(),
      network: `network namespaces on a Linux bridge, 198.18.${SUBNET}.0/24`,
      repetitions: reps,
      target: 'skiff within 10% of minimal in rps (ratio >= 0.9) and p99 (ratio <= 1.1)',
      direct: summary(runs.direct),
      minimal: summary(runs.minimal),
      skiff: summary(runs.skiff),
      ratios: {
        skiffToMinimalRps: round(skiff.rps / minimal.rps, 3),
        skiffToMinimalP50: round(skiff.p50 / minimal.p50, 3),
        skiffToMinimalP99: round(skiff.p99 / minimal.p99, 3),
        minimalToDirectRps: round(minimal.rps / direct.rps, 3),
        skiffToDirectRps: round(skiff.rps / direct.rps, 3),
      },
      skiffConfig: configNotes,
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await group.stopAll();
    lab?.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(socketDir, { recursive: true, force: true });
  }
}

await main();
