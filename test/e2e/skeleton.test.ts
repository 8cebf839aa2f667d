/**
 * The walking skeleton end to end (issue 2 §7): a real control plane, and simulated VMs `a`, `b`
 * and `c`, each in its own network namespace with a real `skiff agent`, real Envoy 1.40 and an
 * echo app on the VM's localhost. Everything is configured only from the YAML directory.
 * The whole suite runs twice: with Envoy on state-of-the-world ADS (lab subnet 40) and on delta
 * ADS (`skiff agent --xds delta`, lab subnet 45).
 */
import assert from 'node:assert/strict';
import { X509Certificate as X509 } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { canCreateNetns, createLab, type Lab } from '../helpers/netns.js';
import { ProcessGroup } from '../helpers/processes.js';
import {
  createToken,
  eventually,
  probe,
  startAgentProc,
  startControlPlaneProc,
  startEcho,
  type ControlPlaneProc,
  type ProbeResult,
} from '../helpers/skiff.js';
import { readSvid } from '../helpers/svid.js';

const NS = 'shop';
const BACKEND_HOST = 'backend.shop.svc.cluster.local';

function meshYaml(ips: { a: string; b: string; c: string }, opts: { mode: 'STRICT' | 'PERMISSIVE'; withC: boolean }): string {
  const we = (name: string, ip: string, sa: string, app: string) => `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: ${NS}}
spec:
  address: ${ip}
  serviceAccount: ${sa}
  labels: {app: ${app}}
---`;
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec:
  mtls: {mode: ${opts.mode}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: ${NS}}
spec:
  hosts: [${BACKEND_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: backend}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: frontend, namespace: ${NS}}
spec:
  hosts: [frontend.${NS}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: frontend}}
---
${we('a-1', ips.a, 'frontend', 'frontend')}
${we('b-1', ips.b, 'backend', 'backend')}
${opts.withC ? we('c-1', ips.c, 'backend', 'backend') : ''}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: backend, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: backend}}
  ingress:
    - port: {number: 8080, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:9080
  egress:
    - hosts: ["~/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: frontend}}
  ingress:
    - port: {number: 8080, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:9080
  egress:
    - bind: 127.0.0.1
      port: {number: 8080, protocol: HTTP, name: http-egress}
      hosts: ["${NS}/${BACKEND_HOST}"]
`;
}

/** Opens mTLS to `ip:port` with the given client SVID and returns the server's leaf certificate. */
function servedCertificate(ip: string, port: number, client: { cert: string; key: string; ca: string }): Promise<tls.DetailedPeerCertificate> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host: ip,
      port,
      cert: client.cert,
      key: client.key,
      ca: client.ca,
      servername: `outbound_.8080_._.${BACKEND_HOST}`,
      ALPNProtocols: ['istio-http/1.1'],
      rejectUnauthorized: false,
    });
    sock.once('secureConnect', () => {
      const cert = sock.getPeerCertificate(true);
      sock.end();
      resolve(cert);
    });
    sock.once('error', reject);
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
  });
}

// Skipped without root on a developer machine; in CI (CI=true) a missing capability is a failure.
const skip = canCreateNetns() || process.env['CI'] ? false : 'needs root and iproute2 to create network namespaces';

for (const mode of [
  { xds: 'sotw', subnet: 40 },
  { xds: 'delta', subnet: 45 },
] as const) {
  describeSkeleton(mode.xds, mode.subnet);
}

function describeSkeleton(xds: 'sotw' | 'delta', subnet: number): void {
  describe(`walking skeleton (${xds} xDS): two VMs talk through Envoy sidecars with SPIFFE mTLS`, { skip, timeout: 300_000 }, () => {
    const group = new ProcessGroup();
    let lab: Lab;
    let tmp: string;
    let meshDir: string;
    let cp: ControlPlaneProc;
    const ip = { a: '', b: '', c: '' };
    const socketDirs: string[] = [];
    const on = (vm: string) => ({ lab, vm });
    const callBackend = (count = 1, intervalMs = 0) =>
      probe(['http', '--url', 'http://127.0.0.1:8080/hello', '--host', BACKEND_HOST, '--count', String(count), '--interval-ms', String(intervalMs)], on('a'));
    const writeMesh = (mode: 'STRICT' | 'PERMISSIVE', withC: boolean) => {
      const tmpFile = path.join(meshDir, '.mesh.yaml.tmp');
      fs.writeFileSync(tmpFile, meshYaml(ip, { mode, withC }));
      fs.renameSync(tmpFile, path.join(meshDir, 'mesh.yaml'));
    };

    before(async () => {
      lab = createLab(['a', 'b', 'c'], subnet);
      ip.a = lab.vms['a']!.ip;
      ip.b = lab.vms['b']!.ip;
      ip.c = lab.vms['c']!.ip;
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-e2e-'));
      meshDir = path.join(tmp, 'mesh');
      fs.mkdirSync(meshDir);
      writeMesh('STRICT', false);
      cp = await startControlPlaneProc(group, { configDir: meshDir, dataDir: path.join(tmp, 'data'), address: lab.hostIp });
      const rootCert = path.join(tmp, 'data', 'trust-bundle.pem');
      const vms = [
        { vm: 'a', sa: 'frontend', app: 'frontend', name: 'a-1' },
        { vm: 'b', sa: 'backend', app: 'backend', name: 'b-1' },
        { vm: 'c', sa: 'backend', app: 'backend', name: 'c-1' },
      ];
      for (const v of vms) {
        const tokenFile = path.join(tmp, `${v.vm}.token`);
        fs.writeFileSync(tokenFile, createToken(cp.dataDir, NS, v.sa, ['--ttl', '10m']), { mode: 0o600 });
        startEcho(group, v.vm, '127.0.0.1:9080', on(v.vm));
        startAgentProc(
          group,
          {
            name: v.vm,
            controlPlane: `${lab.hostIp}:${cp.grpcPort}`,
            rootCert,
            tokenFile,
            namespace: NS,
            serviceAccount: v.sa,
            workloadName: v.name,
            workloadIp: ip[v.vm as 'a' | 'b' | 'c'],
            stateDir: path.join(tmp, `state-${v.vm}`),
            socketDir: socketDirs[socketDirs.push(fs.mkdtempSync('/tmp/sk-')) - 1]!,
            adminPort: 15000,
            certTtl: '24s',
            labels: { app: v.app },
            extraArgs: xds === 'delta' ? ['--xds', 'delta'] : [],
          },
          on(v.vm),
        );
      }
      await eventually('a request from a to b through the sidecars', async () => {
        const [r] = await callBackend();
        return r?.status === 200;
      }, 90_000, 500);
    });

    after(async () => {
      if (process.exitCode && group) process.stderr.write(group.dump());
      await group.stopAll();
      lab?.destroy();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
      for (const d of socketDirs) fs.rmSync(d, { recursive: true, force: true });
    });

    it("a's app reaches b's app through its egress port, and b sees a's SPIFFE ID in XFCC", async () => {
      const [r] = await callBackend();
      assert.equal(r?.status, 200, JSON.stringify(r));
      const body = r?.body as { app: string; headers: Record<string, string> };
      assert.equal(body.app, 'b');
      const xfcc = body.headers['x-forwarded-client-cert'] ?? '';
      assert.match(xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend(;|,|$)/);
    });

    it("b presents a certificate with exactly one URI SAN, b's SPIFFE ID, living at most 24 h", async () => {
      const cert = await servedCertificate(ip.b, 8080, { ...readSvid(path.join(tmp, 'state-a')), ca: fs.readFileSync(path.join(tmp, 'data', 'trust-bundle.pem'), 'utf8') });
      const sans = (cert.subjectaltname ?? '').split(', ').filter((s) => s.length > 0);
      assert.deepEqual(sans, ['URI:spiffe://cluster.local/ns/shop/sa/backend']);
      const lifetimeMs = Date.parse(cert.valid_to) - Date.parse(cert.valid_from);
      assert.ok(lifetimeMs <= 24 * 3600 * 1000, `lifetime ${lifetimeMs} ms`);
    });

    it('a plaintext TCP connection straight to b fails under STRICT', async () => {
      const [r] = await probe(['tcp', '--target', `${ip.b}:8080`, '--send', `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
      assert.ok(r);
      assert.equal(r.ok, false, `plaintext got an answer under STRICT: ${JSON.stringify(r)}`);
    });

    it('the same plaintext connection succeeds once the mesh policy is PERMISSIVE', async () => {
      writeMesh('PERMISSIVE', false);
      const r = await eventually('plaintext accepted under PERMISSIVE', async () => {
        const [res] = await probe(['tcp', '--target', `${ip.b}:8080`, '--send', `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
        return res?.ok ? res : undefined;
      });
      assert.match(r.received ?? '', /^HTTP\/1\.1 200/);
      // mTLS from a keeps working on the same port.
      const [viaMesh] = await callBackend();
      assert.equal(viaMesh?.status, 200);
      writeMesh('STRICT', false);
      await eventually('plaintext refused again under STRICT', async () => {
        const [res] = await probe(['tcp', '--target', `${ip.b}:8080`, '--send', `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
        return res && !res.ok;
      });
    });

    it('a second WorkloadEntry for the backend service gets traffic without any restart', async () => {
      writeMesh('STRICT', true);
      const seen = await eventually('responses from both b and c', async () => {
        const results = await callBackend(20);
        const apps = new Set(results.filter((x) => x.status === 200).map((x) => (x.body as { app: string }).app));
        return apps.has('b') && apps.has('c') ? apps : undefined;
      });
      assert.deepEqual([...seen].sort(), ['b', 'c']);
    });

    it('certificates rotate with no failed request, and no proxy ever NACKed', async () => {
      const serialBefore = new X509(readSvid(path.join(tmp, 'state-b')).cert).serialNumber;
      // 24 s certificates renew at about 12 s: 30 s of requests spans at least one rotation of every VM.
      const results: ProbeResult[] = await callBackend(200, 150);
      const failed = results.filter((r) => r.status !== 200);
      assert.equal(failed.length, 0, `failed requests during rotation: ${JSON.stringify(failed.slice(0, 3))}`);
      assert.equal(results.length, 200);
      const serialAfter = new X509(readSvid(path.join(tmp, 'state-b')).cert).serialNumber;
      assert.notEqual(serialAfter, serialBefore, "b's certificate was not renewed");
      const cert = await servedCertificate(ip.b, 8080, { ...readSvid(path.join(tmp, 'state-a')), ca: fs.readFileSync(path.join(tmp, 'data', 'trust-bundle.pem'), 'utf8') });
      assert.notEqual(cert.serialNumber.toLowerCase(), serialBefore.toLowerCase(), 'Envoy still serves the old certificate');
      const rejects = await cp.metric('skiff_xds_rejects_total');
      const total = [...rejects.values()].reduce((a, b) => a + b, 0);
      assert.equal(total, 0, `NACKs: ${JSON.stringify([...rejects])}`);
      const acks = await cp.metric('skiff_xds_acks_total');
      assert.ok([...acks.values()].reduce((a, b) => a + b, 0) > 0, 'no ACK was counted');
    });

    it('the control plane stops promptly with proxies connected; restarted on the same ports it serves them again', async () => {
      const { grpcPort, monitoringPort } = cp;
      const started = Date.now();
      cp.proc.child.kill('SIGTERM');
      assert.equal(await cp.proc.exited, 0);
      // A hang check, not a performance assertion: streams are ended instead of waited for.
      assert.ok(Date.now() - started < 10_000, `stopping took ${Date.now() - started} ms`);
      // Envoy keeps its last config while the control plane is away.
      const [during] = await callBackend();
      assert.equal(during?.status, 200);
      cp = await startControlPlaneProc(group, {
        configDir: meshDir,
        dataDir: path.join(tmp, 'data'),
        address: lab.hostIp,
        extraArgs: ['--grpc-port', String(grpcPort), '--monitoring-port', String(monitoringPort)],
      });
      const sync = await eventually('all three proxies reconnected and synced', async () => {
        const res = await fetch(`http://${lab.hostIp}:${cp.monitoringPort}/debug/syncz`);
        const body = (await res.json()) as { synced: boolean; proxies: unknown[] };
        return body.synced && body.proxies.length === 3 ? body : undefined;
      }, 60_000, 500);
      assert.equal(sync.proxies.length, 3);
      const [after] = await callBackend();
      assert.equal(after?.status, 200);
    });

    it(`every proxy's xDS stream is a ${xds} stream (/debug/syncz and the connection gauge)`, async () => {
      const connections = await cp.metric('skiff_xds_connections');
      const kinds = [...connections].filter(([, v]) => v > 0).map(([labels]) => labels);
      assert.ok(kinds.length > 0 && kinds.every((labels) => labels.includes(`kind="${xds}"`)), JSON.stringify([...connections]));
      const res = await fetch(`http://${lab.hostIp}:${cp.monitoringPort}/debug/syncz`);
      const sync = (await res.json()) as { synced: boolean; proxies: { types: { typeUrl: string; sent?: string; acked?: string }[] }[] };
      assert.equal(sync.synced, true, JSON.stringify(sync));
      for (const p of sync.proxies) {
        assert.ok(p.types.length >= 2, JSON.stringify(p));
        // A reconnected SotW stream gets no response for a type it already holds; a delta stream
        // always answers a type's first request, so every type has a (hashed) version there.
        for (const t of p.types) assert.ok(t.sent === t.acked && (xds === 'sotw' || t.sent !== undefined), JSON.stringify(t));
      }
    });
  });
}

