/**
 * A lab for security end-to-end tests (issue 3 §4): one simulated VM `b` (namespace `shop`,
 * service account `backend`, labels `app: backend, version: v1`) running the real `skiff agent`,
 * real Envoy, the HTTP echo app behind Sidecar ingress port 8080 (HTTP) and a TCP echo app behind
 * ingress port 9000 (TCP). The test process is the client: it speaks from the host side of the lab
 * bridge, choosing its source address among extra addresses added to the bridge, and, for a peer
 * identity, presents a real X.509-SVID issued by the running control plane's CA (bootstrap token +
 * CSR over `istio.v1.auth.IstioCertificateService/CreateCertificate`).
 *
 * Policies are applied the way an operator would: by writing YAML into the control plane's config
 * directory (tmp file + rename), then waiting on `/debug/syncz` until the registry version moved
 * and every proxy ACKed the config computed from it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { controlPlaneCredentials, createCertificate } from '../../agents/ca-client.js';
import { CONTROL_PLANE_SPIFFE_ID } from '../../src/identity/spiffe.js';
import { generateKeyAndCsr } from '../../src/identity/csr.js';
import { createLab, type Lab } from './netns.js';
import { ProcessGroup } from './processes.js';
import { REPO, createToken, startAgentProc, startControlPlaneProc, startEcho, type ControlPlaneProc } from './skiff.js';

/** The destination workload's namespace. */
export const NS = 'shop';
/** The destination workload's service host. */
export const BACKEND_HOST = `backend.${NS}.svc.cluster.local`;
/** Sidecar ingress port of the HTTP echo app (behind it: 127.0.0.1:9080). */
export const HTTP_PORT = 8080;
/** Sidecar ingress port of the TCP echo app (behind it: 127.0.0.1:9001). */
export const TCP_PORT = 9000;
/** Labels of the destination workload `b`. */
export const B_LABELS: Readonly<Record<string, string>> = { app: 'backend', version: 'v1' };
/** Istio's upstream SNI for a port of the backend service (`outbound_.<port>_._.<host>`). */
export const backendSni = (port: number): string => `outbound_.${port}_._.${BACKEND_HOST}`;

/** A workload identity the test process can present: SPIFFE ID, certificate chain (leaf first), key. */
export interface Svid {
  spiffeId: string;
  certChainPem: string;
  /** Secret: never log it. */
  keyPem: string;
}

/** One HTTP/1.1 request sent straight to b's inbound port. */
export interface HttpCall {
  /** Source address to bind (one of the host's addresses on the lab bridge). */
  localAddress: string;
  /** Present this SVID over mTLS (ALPN `istio-http/1.1`); plaintext when absent. */
  svid?: Svid;
  /** TLS SNI (mTLS only); default Istio's SNI for port 8080 of the backend service. */
  sni?: string;
  method: string;
  /** Request target as sent, query included. */
  path: string;
  /** The Host header, sent as given (case preserved). */
  host: string;
  headers: Record<string, string>;
}

/** What a client saw: an HTTP status (with body), or no HTTP response at all. */
export type HttpOutcome = { kind: 'response'; status: number; body: string } | { kind: 'no-response'; error: string };

/** One TCP connection to b's TCP port that sends a line and waits for it to come back. */
export interface TcpCall {
  localAddress: string;
  svid?: Svid;
  sni?: string;
}

/** `echoed`: the bytes came back; `closed`: the connection ended first; `timeout`: neither in time. */
export type TcpOutcome = { kind: 'echoed' } | { kind: 'closed'; error?: string } | { kind: 'timeout' };

/**
 * The request as b's echo app saw it (examples/apps/echo.ts answers with JSON), or undefined when
 * `body` is not an answer of app `b`. Its `x-forwarded-client-cert` header tells whether the
 * request came over mTLS and from which peer (Envoy sets it on mTLS chains, removes it otherwise).
 */
export function echoedRequest(body: string): { path: string; headers: Record<string, string> } | undefined {
  try {
    const parsed = JSON.parse(body) as { app?: string; path?: string; headers?: Record<string, string> };
    return parsed.app === 'b' ? { path: parsed.path ?? '', headers: parsed.headers ?? {} } : undefined;
  } catch {
    return undefined;
  }
}

/** True when `xfcc` (an `x-forwarded-client-cert` value) names `spiffeId` as the client's URI SAN. */
export function xfccNames(xfcc: string | undefined, spiffeId: string): boolean {
  return (xfcc ?? '').split(/[;,]/).some((part) => part === `URI=${spiffeId}`);
}

/** `/debug/syncz` of the control plane (src/cli/serve/syncz.ts). */
export interface SyncStatus {
  registryVersion: number;
  synced: boolean;
  proxies: { nodeId: string; synced: boolean; computedVersion: number; types: { typeUrl: string; sent?: string; acked?: string; pending: boolean; nack?: string }[] }[];
}

/** Options of {@link startSecurityLab}. */
export interface SecurityLabOptions {
  /** Third octet of 198.18.<subnet>.0/24; distinct per test file. */
  subnet: number;
  /** Base mesh-wide PeerAuthentication (root namespace, no selector) in `mesh.yaml`; none when undefined. */
  meshMtls?: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  /** Identities to issue SVIDs for, keyed by a short name. */
  identities: Record<string, { namespace: string; serviceAccount: string }>;
  /** Runs once the lab network exists, before the control plane starts; may return MeshConfig YAML. */
  prepare?: (hostIp: string) => Promise<{ meshConfig?: string } | undefined>;
  /** Extra `skiff serve` flags. */
  serveArgs?: string[];
}

/** A running lab; `stop()` tears everything down. */
export interface SecurityLab {
  lab: Lab;
  cp: ControlPlaneProc;
  /** The host's main address on the bridge (control plane, test servers). */
  hostIp: string;
  /** b's address. */
  bIp: string;
  /** Extra host addresses on the bridge, used as client source addresses. */
  clients: { c1: string; c2: string };
  trustBundlePem: string;
  identities: Record<string, Svid>;
  /** Writes `policies.yaml` atomically and waits until the proxies run it; no-op when the text is unchanged. */
  apply(yaml: string): Promise<void>;
  http(call: HttpCall): Promise<HttpOutcome>;
  tcp(call: TcpCall): Promise<TcpOutcome>;
  syncz(): Promise<SyncStatus>;
  /** Tail of every process's output, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

/** The static part of the mesh: services, b's WorkloadEntry and Sidecar, and the base PeerAuthentication. */
export function baseMeshYaml(bIp: string, meshMtls?: 'STRICT' | 'PERMISSIVE' | 'DISABLE'): string {
  const pa = meshMtls
    ? `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec:
  mtls: {mode: ${meshMtls}}
---
`
    : '';
  return `${pa}apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: ${NS}}
spec:
  hosts: [${BACKEND_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
    - {name: http, number: ${HTTP_PORT}, protocol: HTTP}
    - {name: tcp, number: ${TCP_PORT}, protocol: TCP}
  workloadSelector: {labels: {app: backend}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b-1, namespace: ${NS}}
spec:
  address: ${bIp}
  serviceAccount: backend
  labels: {app: backend, version: v1}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: backend, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: backend}}
  ingress:
    - port: {number: ${HTTP_PORT}, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:9080
    - port: {number: ${TCP_PORT}, protocol: TCP, name: tcp}
      defaultEndpoint: 127.0.0.1:9001
  egress:
    - hosts: ["~/*"]
`;
}

/** The Linux interface that holds `address` (the lab bridge for the lab's host address). */
function interfaceOf(address: string): string {
  const out = execFileSync('ip', ['-o', '-4', 'addr', 'show', 'to', `${address}/32`], { encoding: 'utf8' });
  const dev = out.trim().split(/\s+/)[1];
  if (!dev) throw new Error(`no interface holds ${address}`);
  return dev;
}

/** Issues an SVID for `namespace/serviceAccount` from the running control plane's CA. */
export async function issueSvid(cp: ControlPlaneProc, trustBundlePem: string, namespace: string, serviceAccount: string): Promise<Svid> {
  const spiffeId = `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`;
  const token = createToken(cp.dataDir, namespace, serviceAccount, ['--ttl', '10m']);
  const { keyPem, csrPem } = await generateKeyAndCsr({ spiffeId });
  const chain = await createCertificate({
    address: `${cp.address}:${cp.grpcPort}`,
    credentials: controlPlaneCredentials({ rootsPem: trustBundlePem, controlPlaneSpiffeId: CONTROL_PLANE_SPIFFE_ID('cluster.local'), host: cp.address }),
    csrPem,
    token,
  });
  // The response ends with the root bundle; a client sends its leaf and intermediates.
  const certChainPem = chain.length > 1 ? chain.slice(0, -1).join('') : chain.join('');
  return { spiffeId, certChainPem, keyPem };
}

function tlsSocket(host: string, port: number, localAddress: string, svid: Svid, ca: string, sni: string, alpn: string): tls.TLSSocket {
  return tls.connect({
    socket: net.connect({ host, port, localAddress }),
    cert: svid.certChainPem,
    key: svid.keyPem,
    ca,
    servername: sni,
    ALPNProtocols: [alpn],
    // The chain is verified against the trust bundle; the server's identity is a SPIFFE URI SAN,
    // which Node's host name check does not know, and is not what these tests are about.
    checkServerIdentity: () => undefined,
  });
}

/** Sends one HTTP/1.1 request to `ip:port` (plaintext, or mTLS with the call's SVID). */
export function sendHttp(ip: string, port: number, call: HttpCall, trustBundlePem: string, timeoutMs = 5000): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: HttpOutcome) => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
    const req = http.request({
      host: ip,
      port,
      method: call.method,
      path: call.path,
      localAddress: call.localAddress,
      setHost: false,
      headers: { host: call.host, connection: 'close', ...call.headers },
      // Node uses `createConnection` only when no agent is given; plaintext gets a fresh agent.
      ...(call.svid
        ? { createConnection: () => tlsSocket(ip, port, call.localAddress, call.svid!, trustBundlePem, call.sni ?? backendSni(port), 'istio-http/1.1') }
        : { agent: false }),
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ kind: 'response', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => done({ kind: 'no-response', error: err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'no-response', error: err.code ?? err.message }));
    req.end();
  });
}

/** Opens a TCP connection (plaintext or mTLS with ALPN `istio`), sends a line, waits for it to come back. */
export function sendTcp(ip: string, port: number, call: TcpCall, trustBundlePem: string, timeoutMs = 5000): Promise<TcpOutcome> {
  const payload = `ping-${Math.random().toString(36).slice(2)}\n`;
  return new Promise((resolve) => {
    let received = '';
    let settled = false;
    const socket: net.Socket = call.svid
      ? tlsSocket(ip, port, call.localAddress, call.svid, trustBundlePem, call.sni ?? backendSni(port), 'istio')
      : net.connect({ host: ip, port, localAddress: call.localAddress });
    const done = (o: TcpOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    socket.once(call.svid ? 'secureConnect' : 'connect', () => socket.write(payload));
    socket.on('data', (d: Buffer) => {
      received += d.toString('utf8');
      if (received.includes(payload)) done({ kind: 'echoed' });
    });
    socket.on('end', () => done({ kind: 'closed' }));
    socket.on('close', () => done({ kind: 'closed' }));
    socket.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'closed', error: err.code ?? err.message }));
  });
}

/** Reads `/debug/syncz`. */
async function fetchSyncz(cp: ControlPlaneProc): Promise<SyncStatus> {
  const res = await fetch(`http://${cp.address}:${cp.monitoringPort}/debug/syncz`);
  if (!res.ok) throw new Error(`/debug/syncz answered ${res.status}`);
  return (await res.json()) as SyncStatus;
}

/**
 * Waits until the registry version is above `before` and every proxy is synced (its config was
 * computed from that version and ACKed). Throws at once on a NACK, and after `timeoutMs`.
 */
export async function waitForSync(cp: ControlPlaneProc, before: number, timeoutMs = 15_000): Promise<SyncStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: SyncStatus | undefined;
  for (;;) {
    last = await fetchSyncz(cp);
    const nacks = last.proxies.flatMap((p) => p.types.filter((t) => t.nack).map((t) => `${p.nodeId} ${t.typeUrl}: ${t.nack}`));
    if (nacks.length > 0) throw new Error(`a proxy NACKed the configuration:\n${nacks.join('\n')}`);
    if (last.registryVersion > before && last.synced && last.proxies.length > 0) return last;
    if (Date.now() > deadline) throw new Error(`configuration not synced within ${timeoutMs} ms (registry version stayed at or below ${before}?): ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/**
 * Starts the lab: network, control plane (`--config-dir` holding `mesh.yaml` and an empty
 * `policies.yaml`), b's agent + Envoy + apps, SVIDs for `opts.identities`; resolves once b's
 * proxy is synced and answers a plaintext or mTLS request.
 */
export async function startSecurityLab(opts: SecurityLabOptions): Promise<SecurityLab> {
  const group = new ProcessGroup();
  const lab = createLab(['b'], opts.subnet);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-sec-'));
  const socketDir = fs.mkdtempSync('/tmp/sk-');
  const cleanup = async () => {
    await group.stopAll();
    lab.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(socketDir, { recursive: true, force: true });
  };
  try {
    const bIp = lab.vms['b']!.ip;
    const prefix = lab.hostIp.slice(0, lab.hostIp.lastIndexOf('.'));
    const clients = { c1: `${prefix}.100`, c2: `${prefix}.101` };
    const bridge = interfaceOf(lab.hostIp);
    for (const ip of Object.values(clients)) execFileSync('ip', ['addr', 'add', `${ip}/32`, 'dev', bridge]);

    const prepared = await opts.prepare?.(lab.hostIp);
    const meshDir = path.join(tmp, 'mesh');
    fs.mkdirSync(meshDir);
    fs.writeFileSync(path.join(meshDir, 'mesh.yaml'), baseMeshYaml(bIp, opts.meshMtls));
    const policiesFile = path.join(meshDir, 'policies.yaml');
    fs.writeFileSync(policiesFile, '');
    const serveArgs = [...(opts.serveArgs ?? [])];
    if (prepared?.meshConfig !== undefined) {
      const meshConfigFile = path.join(tmp, 'meshconfig.yaml');
      fs.writeFileSync(meshConfigFile, prepared.meshConfig);
      serveArgs.push('--mesh-config', meshConfigFile);
    }
    const dataDir = path.join(tmp, 'data');
    const cp = await startControlPlaneProc(group, { configDir: meshDir, dataDir, address: lab.hostIp, extraArgs: serveArgs });
    const trustBundlePem = fs.readFileSync(path.join(dataDir, 'trust-bundle.pem'), 'utf8');

    const tokenFile = path.join(tmp, 'b.token');
    fs.writeFileSync(tokenFile, createToken(dataDir, NS, 'backend', ['--ttl', '10m']), { mode: 0o600 });
    const on = { lab, vm: 'b' };
    startEcho(group, 'b', '127.0.0.1:9080', on);
    group.add('app-b-tcp', lab.spawnIn('b', process.execPath, ['--import', 'tsx', path.join(REPO, 'test', 'helpers', 'tcp-echo.ts'), '--listen', '127.0.0.1:9001'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }));
    startAgentProc(
      group,
      {
        name: 'b',
        controlPlane: `${lab.hostIp}:${cp.grpcPort}`,
        rootCert: path.join(dataDir, 'trust-bundle.pem'),
        tokenFile,
        namespace: NS,
        serviceAccount: 'backend',
        workloadName: 'b-1',
        workloadIp: bIp,
        stateDir: path.join(tmp, 'state-b'),
        socketDir,
        adminPort: 15000,
        labels: { ...B_LABELS },
      },
      on,
    );

    const identities: Record<string, Svid> = {};
    await Promise.all(
      Object.entries(opts.identities).map(async ([name, id]) => {
        identities[name] = await issueSvid(cp, trustBundlePem, id.namespace, id.serviceAccount);
      }),
    );

    let lastText = '';
    const self: SecurityLab = {
      lab,
      cp,
      hostIp: lab.hostIp,
      bIp,
      clients,
      trustBundlePem,
      identities,
      async apply(yaml) {
        if (yaml === lastText) return;
        const before = (await fetchSyncz(cp)).registryVersion;
        writeAtomic(policiesFile, yaml);
        lastText = yaml;
        await waitForSync(cp, before);
      },
      http: (call) => sendHttp(bIp, HTTP_PORT, call, trustBundlePem),
      tcp: (call) => sendTcp(bIp, TCP_PORT, call, trustBundlePem),
      syncz: () => fetchSyncz(cp),
      logs: () => group.dump(),
      stop: cleanup,
    };

    // Ready: b's proxy is connected and synced, and its app answers through Envoy.
    const deadline = Date.now() + 90_000;
    for (;;) {
      const s = await fetchSyncz(cp).catch(() => undefined);
      if (s && s.synced && s.proxies.length > 0) {
        const probe = opts.meshMtls === 'STRICT'
          ? await self.http({ localAddress: clients.c1, svid: Object.values(identities)[0], method: 'GET', path: '/ready', host: BACKEND_HOST, headers: {} })
          : await self.http({ localAddress: clients.c1, method: 'GET', path: '/ready', host: BACKEND_HOST, headers: {} });
        if (probe.kind === 'response' && probe.status === 200) break;
      }
      if (Date.now() > deadline) throw new Error(`b's sidecar did not become ready within 90 s\n${group.dump()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return self;
  } catch (err) {
    const dump = group.dump();
    await cleanup();
    if (err instanceof Error) err.message += `\n${dump}`;
    throw err;
  }
}
