/**
 * HBONE between Envoy sidecars (issue 6 §4), end to end: a real control plane, VM `a`
 * (frontend) and VM `b` (backend, whose WorkloadEntry says it speaks HBONE with Istio's label
 * `networking.istio.io/tunnel: http`), each in its own network namespace (lab subnet 46) with a
 * real `skiff agent`, Envoy 1.40 and an echo app. a's app calls the backend through its egress
 * port; a's Envoy tunnels the connection in HTTP/2 CONNECT to `<b>:8080` over mTLS on b:15008,
 * checking b's SPIFFE ID; b's Envoy terminates it and delivers to b's app through the same
 * inbound chain and authorization as plain mTLS traffic.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canCreateNetns, createLab, type Lab } from '../helpers/netns.js';
import { ProcessGroup } from '../helpers/processes.js';
import { createToken, eventually, probe, startAgentProc, startControlPlaneProc, startEcho, type ControlPlaneProc } from '../helpers/skiff.js';
import { readSvid } from '../helpers/svid.js';

const NS = 'shop';
const BACKEND_HOST = 'backend.shop.svc.cluster.local';

function meshYaml(ips: { a: string; b: string }, policy = ''): string {
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a-1, namespace: ${NS}}
spec: {address: ${ips.a}, serviceAccount: frontend, labels: {app: frontend}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b-1, namespace: ${NS}, labels: {networking.istio.io/tunnel: http}}
spec: {address: ${ips.b}, serviceAccount: backend, labels: {app: backend}}
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
  egress:
    - bind: 127.0.0.1
      port: {number: 8080, protocol: HTTP, name: http-egress}
      hosts: ["${NS}/${BACKEND_HOST}"]
${policy}`;
}

/** A CONNECT through b's HBONE port from the host, with `svid` as client certificate, then one GET inside. */
function hboneGet(ip: string, authority: string, client: { cert?: string; key?: string; ca: string }): Promise<{ status: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const session = http2.connect(`https://${ip}:15008`, {
      ca: client.ca,
      ...(client.cert ? { cert: client.cert, key: client.key } : {}),
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined, // the SAN is a SPIFFE ID, checked below by the test where it matters
    });
    let status = 0;
    let body: string | undefined;
    let settled = false;
    const done = (error?: string) => {
      if (settled) return;
      settled = true;
      session.destroy();
      // The app closes the connection after its answer; the tunnel may then end with a reset: what
      // was received still counts.
      resolve(body !== undefined && body.length > 0 ? { status, body } : error !== undefined && status !== 200 ? { status, error } : { status, ...(body !== undefined ? { body } : {}) });
    };
    session.on('error', (err: Error) => done(err.message));
    session.setTimeout(5000, () => done('timeout'));
    const req = session.request({ ':method': 'CONNECT', ':authority': authority });
    req.on('error', (err: Error) => done(err.message));
    req.on('close', () => done());
    req.on('response', (headers) => {
      status = Number(headers[':status']);
      if (status !== 200) return done();
      body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.write(`GET /hello HTTP/1.1\r\nHost: ${BACKEND_HOST}\r\nConnection: close\r\n\r\n`);
    });
  });
}

/** One counter of a VM's Envoy, by regular expression on the stat name (sum of matches). */
async function envoyStat(lab: Lab, vm: string, re: string): Promise<number> {
  const [r] = await probe(['http', '--url', `http://127.0.0.1:15000/stats?filter=${encodeURIComponent(re)}`], { lab, vm });
  const text = typeof r?.body === 'string' ? r.body : '';
  return text
    .split('\n')
    .map((l) => Number(l.slice(l.lastIndexOf(':') + 1)))
    .filter((n) => Number.isFinite(n))
    .reduce((a, b) => a + b, 0);
}

const skip = canCreateNetns() || process.env['CI'] ? false : 'needs root and iproute2 to create network namespaces';

describe('HBONE between Envoy sidecars: CONNECT over mTLS on 15008', { skip, timeout: 300_000 }, () => {
  const group = new ProcessGroup();
  let lab: Lab;
  let tmp: string;
  let meshDir: string;
  let cp: ControlPlaneProc;
  const ip = { a: '', b: '' };
  const socketDirs: string[] = [];
  const on = (vm: string) => ({ lab, vm });
  const callBackend = () => probe(['http', '--url', 'http://127.0.0.1:8080/hello', '--host', BACKEND_HOST], on('a'));
  const writeMesh = (policy = '') => {
    const tmpFile = path.join(meshDir, '.mesh.yaml.tmp');
    fs.writeFileSync(tmpFile, meshYaml(ip, policy));
    fs.renameSync(tmpFile, path.join(meshDir, 'mesh.yaml'));
  };
  const bundle = () => fs.readFileSync(path.join(tmp, 'data', 'trust-bundle.pem'), 'utf8');

  before(async () => {
    lab = createLab(['a', 'b'], 46);
    ip.a = lab.vms['a']!.ip;
    ip.b = lab.vms['b']!.ip;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-hbone-'));
    meshDir = path.join(tmp, 'mesh');
    fs.mkdirSync(meshDir);
    writeMesh();
    cp = await startControlPlaneProc(group, { configDir: meshDir, dataDir: path.join(tmp, 'data'), address: lab.hostIp });
    for (const v of [
      { vm: 'a', sa: 'frontend', app: 'frontend', name: 'a-1' },
      { vm: 'b', sa: 'backend', app: 'backend', name: 'b-1' },
    ]) {
      const tokenFile = path.join(tmp, `${v.vm}.token`);
      fs.writeFileSync(tokenFile, createToken(cp.dataDir, NS, v.sa, ['--ttl', '10m']), { mode: 0o600 });
      startEcho(group, v.vm, '127.0.0.1:9080', on(v.vm));
      startAgentProc(
        group,
        {
          name: v.vm,
          controlPlane: `${lab.hostIp}:${cp.grpcPort}`,
          rootCert: path.join(tmp, 'data', 'trust-bundle.pem'),
          tokenFile,
          namespace: NS,
          serviceAccount: v.sa,
          workloadName: v.name,
          workloadIp: ip[v.vm as 'a' | 'b'],
          stateDir: path.join(tmp, `state-${v.vm}`),
          socketDir: socketDirs[socketDirs.push(fs.mkdtempSync('/tmp/sk-')) - 1]!,
          adminPort: 15000,
          labels: { app: v.app },
        },
        on(v.vm),
      );
    }
    await eventually('a request from a to b', async () => (await callBackend())[0]?.status === 200, 90_000, 500);
  });

  after(async () => {
    if (process.exitCode && group) process.stderr.write(group.dump());
    await group.stopAll();
    lab?.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    for (const d of socketDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("a's request reaches b's app through the HBONE tunnel, and b's app sees a's SPIFFE ID", async () => {
    const tunnelsBefore = await envoyStat(lab, 'b', `listener\\.${ip.b.replace(/\./g, '\\.')}_15008\\.downstream_cx_total`);
    const [r] = await callBackend();
    assert.equal(r?.status, 200, JSON.stringify(r));
    const body = r?.body as { app: string; headers: Record<string, string> };
    assert.equal(body.app, 'b');
    assert.match(body.headers['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend$/);
    assert.ok((await envoyStat(lab, 'a', 'connect_originate.*upstream_cx_total')) > 0, "a's Envoy opened HBONE tunnels");
    const tunnels = await envoyStat(lab, 'b', `listener\\.${ip.b.replace(/\./g, '\\.')}_15008\\.downstream_cx_total`);
    assert.ok(tunnels >= tunnelsBefore && tunnels > 0, `b accepted connections on 15008 (${tunnels})`);
    assert.ok((await envoyStat(lab, 'b', 'http\\.hbone_.*downstream_rq_2xx')) > 0, 'b answered CONNECT requests with 2xx');
  });

  it("a's tunnel checks b's SPIFFE ID, and b's HBONE port requires a mesh client certificate", async () => {
    const [dump] = await probe(['http', '--url', 'http://127.0.0.1:15000/config_dump?resource=dynamic_active_clusters&name_regex=connect_originate.*'], on('a'));
    const text = JSON.stringify(dump?.body);
    assert.match(text, /"exact":"spiffe:\/\/cluster\.local\/ns\/shop\/sa\/backend"/, 'the tunnel cluster requires the backend identity');
    const noCert = await hboneGet(ip.b, `${ip.b}:8080`, { ca: bundle() });
    assert.notEqual(noCert.status, 200, `no client certificate: ${JSON.stringify(noCert)}`);
    const svid = readSvid(path.join(tmp, 'state-a'));
    const ok = await hboneGet(ip.b, `${ip.b}:8080`, { ...svid, ca: bundle() });
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.match(ok.body ?? '', /^HTTP\/1\.1 200/);
    assert.match(ok.body ?? '', /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend/);
    const unknown = await hboneGet(ip.b, `${ip.b}:9999`, { ...svid, ca: bundle() });
    assert.equal(unknown.status, 404, 'a CONNECT to a port b does not serve is refused');
  });

  it('authorization applies on the HBONE path: principal and source-IP rules deny, and lifting them allows again', async () => {
    writeMesh(`---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-frontend, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: backend}}
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/frontend]}}]}]
`);
    await eventually('a is denied by principal over HBONE', async () => (await callBackend())[0]?.status === 403);
    writeMesh(`---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: not-from-a, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: backend}}
  action: DENY
  rules: [{from: [{source: {ipBlocks: [${ip.a}/32]}}]}]
`);
    // a is denied under both policies, so "a gets 403" alone cannot tell when the second one is in
    // force: wait until, together, the same identity from another address (the host) is let through
    // (the principal rule is gone) and a is still denied (the address rule saw a's real IP).
    const svid = readSvid(path.join(tmp, 'state-a'));
    await eventually('a denied by its source address while the frontend identity from the host address is allowed', async () => {
      const fromHost = await hboneGet(ip.b, `${ip.b}:8080`, { ...svid, ca: bundle() });
      if (fromHost.status !== 200 || !/^HTTP\/1\.1 200/.test(fromHost.body ?? '')) return false;
      return (await callBackend())[0]?.status === 403;
    });
    writeMesh();
    await eventually('a is allowed again', async () => (await callBackend())[0]?.status === 200);
    const rejects = await cp.metric('skiff_xds_rejects_total');
    assert.equal([...rejects.values()].reduce((x, y) => x + y, 0), 0, `NACKs: ${JSON.stringify([...rejects])}`);
  });
});
