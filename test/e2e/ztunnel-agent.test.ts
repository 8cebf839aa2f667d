/**
 * `skiff agent --proxy ztunnel` end to end (issue 6 §3): the real control plane (`skiff serve`)
 * and the real agent CLI, with a ztunnel binary configured by path.
 *
 * The ztunnel binary: when `SKIFF_ZTUNNEL_BIN` names a built istio/ztunnel, the agent runs it
 * inside a lab VM (network namespace on 198.18.49.0/24, root needed) and the test waits for its
 * readiness endpoint (both xDS types received), then sends HBONE traffic to the VM's app through
 * it (mTLS with another mesh identity, CONNECT on 15008; ztunnel fetches its certificate from
 * Skiff's CA with the session token to serve it). Otherwise
 * the agent runs test/helpers/ztunnel-standin.ts, a stand-in that behaves like ztunnel's
 * documented start-up: it reads the environment the agent sets, re-reads the AUTH_TOKEN file for
 * every certificate request and every delta xDS stream (reconnecting every second), and logs
 * what it got. The assertions are what an operator sees: the workload registered with tunnel
 * protocol HBONE, a certificate issued with the bearer token, the token file (0600) rewritten
 * before the token expires and the new token accepted after the old one expired, a clean stop,
 * and a clear one-line error when the binary is missing or not executable.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import http2 from 'node:http2';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { createCertificate } from '../../agents/ca-client.js';
import { CREATE_SESSION_TOKEN_PATH, decodeSessionToken, encodeCreateSessionTokenRequest } from '../../src/xds/protos/skiff/session.js';
import { canCreateNetns, createLab, type Lab } from '../helpers/netns.js';
import { ProcessGroup, type Proc } from '../helpers/processes.js';
import { REPO, SKIFF, createToken, eventually, startControlPlaneProc, startEcho, type ControlPlaneProc } from '../helpers/skiff.js';

const REAL_ZTUNNEL = process.env['SKIFF_ZTUNNEL_BIN'];
const useReal = REAL_ZTUNNEL !== undefined && REAL_ZTUNNEL !== '' && canCreateNetns();
const TTL_SECONDS = 12;

const MESH = `
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: web, namespace: shop}
spec:
  metadata:
    labels: {app: web}
  template:
    serviceAccount: web
    ports: {http: 8080}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: shop}
spec:
  hosts: [web.shop.svc.cluster.local]
  addresses: [10.96.49.1]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
`;

/** `exp` claim of a JWT (seconds). */
function expOf(token: string): number {
  return (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number }).exp;
}

/**
 * HBONE as a peer proxy speaks it (Istio's HBONE: HTTP/2 CONNECT over mTLS to port 15008,
 * `:authority` the destination `<ip>:<port>`), with a client SVID for `shop/client` from Skiff's
 * CA, then one HTTP/1.1 GET through the tunnel. Returns the server's SANs and the raw response.
 */
async function hboneGet(cp: ControlPlaneProc, host: string, vmIp: string, authority: string): Promise<{ peer: string; response: string }> {
  const bundle = fs.readFileSync(path.join(cp.dataDir, 'trust-bundle.pem'));
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://cluster.local/ns/shop/sa/client' }], true)] });
  const pkcs8 = Buffer.from(await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
  const creds = grpc.credentials.createSsl(bundle, null, null, { checkServerIdentity: (_n, cert) => tls.checkServerIdentity(host, cert) });
  const chain = await createCertificate({ address: `${host}:${cp.grpcPort}`, credentials: creds, csrPem: csr.toString('pem'), token: createToken(cp.dataDir, 'shop', 'client') });
  return await new Promise((resolve, reject) => {
    let peer = '';
    const session = http2.connect(`https://${vmIp}:15008`, {
      key: keyPem,
      cert: chain.slice(0, -1).join('\n'),
      ca: bundle,
      ALPNProtocols: ['h2'],
      checkServerIdentity: (_h, cert) => {
        peer = cert.subjectaltname ?? '';
        return undefined; // the chain is verified against the bundle; the SAN is asserted by the caller
      },
    });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error('HBONE request timed out'));
    }, 20_000);
    session.on('error', (e: Error) => reject(e));
    const req = session.request({ ':method': 'CONNECT', ':authority': authority });
    req.on('response', (h) => {
      if (h[':status'] !== 200) {
        clearTimeout(timer);
        session.close();
        reject(new Error(`CONNECT answered ${String(h[':status'])}`));
        return;
      }
      req.write('GET /hbone HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n');
      let response = '';
      req.on('data', (d: Buffer) => (response += d.toString()));
      req.on('end', () => {
        clearTimeout(timer);
        session.close();
        resolve({ peer, response });
      });
    });
    req.on('error', (e: Error) => reject(e));
  });
}

/** Runs the agent CLI to its exit and returns its exit code and output. */
function runAgentToExit(args: string[]): Promise<{ code: number | null; output: string }> {
  const [cmd, ...pre] = SKIFF as [string, ...string[]];
  const child = spawn(cmd, [...pre, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

void describe(`skiff agent --proxy ztunnel (${useReal ? `real ztunnel ${REAL_ZTUNNEL}` : 'ztunnel stand-in'})`, { timeout: 180_000 }, () => {
  const group = new ProcessGroup();
  let tmp: string;
  let cp: ControlPlaneProc;
  let lab: Lab | undefined;
  let host = '127.0.0.1';
  let vmIp = '127.0.0.1';
  let ztunnelPath: string;
  let stateDir: string;
  let agent: Proc;

  const baseArgs = (extra: string[]): string[] => [
    'agent',
    '--proxy', 'ztunnel',
    '--control-plane', `${host}:${cp.grpcPort}`,
    '--root-cert', path.join(cp.dataDir, 'trust-bundle.pem'),
    '--namespace', 'shop',
    '--service-account', 'web',
    '--workload-group', 'shop/web',
    '--workload-ip', vmIp,
    '--readiness-port', '0',
    ...extra,
  ];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-zt-'));
    fs.mkdirSync(path.join(tmp, 'config'));
    fs.writeFileSync(path.join(tmp, 'config', 'mesh.yaml'), MESH);
    if (useReal) {
      lab = createLab(['vm'], 49);
      host = lab.hostIp;
      vmIp = lab.vms['vm']?.ip ?? '';
      ztunnelPath = REAL_ZTUNNEL;
      startEcho(group, 'web', `${vmIp}:8080`, { lab, vm: 'vm' });
    } else {
      ztunnelPath = path.join(tmp, 'ztunnel');
      const script = path.join(REPO, 'test', 'helpers', 'ztunnel-standin.ts');
      fs.writeFileSync(ztunnelPath, `#!/bin/sh\ncd ${JSON.stringify(REPO)} || exit 1\nSTANDIN_RECONNECT_MS=1000 exec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(script)}\n`, { mode: 0o755 });
    }
    cp = await startControlPlaneProc(group, { configDir: path.join(tmp, 'config'), dataDir: path.join(tmp, 'data'), address: host, extraArgs: ['--registration-grace-period', '1s'] });
    stateDir = path.join(tmp, 'state');
  });

  after(async () => {
    const dump = process.env['SKIFF_E2E_DUMP'];
    if (dump) fs.writeFileSync(dump, `----- control plane -----\n${cp.proc.output()}\n----- agent -----\n${(agent as Proc | undefined)?.output() ?? ''}`);
    await group.stopAll();
    lab?.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  void it('refuses to start with one clear line when the ztunnel binary is missing or not executable', async () => {
    const missing = await runAgentToExit(baseArgs(['--ztunnel-path', path.join(tmp, 'no-ztunnel'), '--token-file', path.join(tmp, 'none'), '--state-dir', path.join(tmp, 's1')]));
    assert.equal(missing.code, 1);
    assert.match(missing.output, /^skiff: invalid agent config: ztunnelPath: the ztunnel binary \S+no-ztunnel does not exist \(from flag --ztunnel-path\)$/m);
    assert.doesNotMatch(missing.output, /^\s+at /m, 'no stack trace');
    const notExec = path.join(tmp, 'ztunnel-noexec');
    fs.writeFileSync(notExec, '#!/bin/sh\n', { mode: 0o644 });
    const refused = await runAgentToExit(baseArgs(['--ztunnel-path', notExec, '--token-file', path.join(tmp, 'none'), '--state-dir', path.join(tmp, 's2')]));
    assert.equal(refused.code, 1);
    assert.match(refused.output, /ztunnelPath: the ztunnel binary \S+ztunnel-noexec is not executable \(mode 0644\)/);
    assert.doesNotMatch(refused.output, /^\s+at /m);
  });

  void it('runs ztunnel in dedicated mode, registered with HBONE, on a session token kept fresh', async () => {
    const tokenFile = path.join(tmp, 'bootstrap-token');
    fs.writeFileSync(tokenFile, createToken(cp.dataDir, 'shop', 'web', ['--single-use', '--workload-group', 'shop/web']), { mode: 0o600 });
    const args = baseArgs(['--ztunnel-path', ztunnelPath, '--token-file', tokenFile, '--state-dir', stateDir, '--socket-dir', path.join(tmp, 'sock'), '--session-token-ttl', `${TTL_SECONDS}s`, '--log-level', 'debug']);
    const [cmd, ...pre] = SKIFF as [string, ...string[]];
    const child = lab ? lab.spawnIn('vm', cmd, [...pre, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(cmd, [...pre, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    agent = group.add('agent', child);
    await agent.waitFor(/agent running with ztunnel/, 60_000);

    // The files ztunnel reads: root and session token, private.
    const sessionFile = path.join(stateDir, 'ztunnel', 'session-token');
    assert.equal(fs.statSync(sessionFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(stateDir, 'ztunnel', 'root', 'root-cert.pem')).mode & 0o777, 0o600);
    const first = fs.readFileSync(sessionFile, 'utf8');
    assert.notEqual(first, fs.readFileSync(tokenFile, 'utf8').trim(), 'never the bootstrap token');
    const firstExp = expOf(first);
    assert.ok(firstExp - Date.now() / 1000 <= TTL_SECONDS + 1, 'short-lived');

    // The environment DESIGN.md §7 names.
    const envLine = /"env":(\{[^}]*\})/.exec(agent.output())?.[1];
    assert.ok(envLine, 'agent logs the ztunnel environment');
    const env = JSON.parse(envLine) as Record<string, string>;
    assert.equal(env['PROXY_MODE'], 'dedicated');
    assert.match(env['PROXY_WORKLOAD_INFO'] ?? '', /^shop\/web-[^/]+\/web$/);
    assert.equal(env['XDS_ADDRESS'], `https://${host}:${cp.grpcPort}`);
    assert.equal(env['CA_ADDRESS'], `https://${host}:${cp.grpcPort}`);
    assert.equal(env['AUTH_TOKEN'], sessionFile);
    assert.equal(env['XDS_ROOT_CA'], path.join(stateDir, 'ztunnel', 'root', 'root-cert.pem'));
    assert.equal(env['CA_ROOT_CA'], env['XDS_ROOT_CA']);
    assert.equal(env['CLUSTER_ID'], 'skiff');

    if (useReal) {
      // Ready = both xDS types answered and the workload certificate obtained (ztunnel's own rule).
      await eventually('ztunnel ready', async () => {
        try {
          return lab?.execIn('vm', 'curl', ['-sf', `http://${vmIp}:15021/healthz/ready`]) !== undefined;
        } catch {
          return false;
        }
      }, 90_000, 1000);
    } else {
      // The stand-in got a certificate with the bearer token, and its own workload says HBONE.
      await agent.waitFor(/stream=\d+ certificate issued URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/, 30_000);
      await agent.waitFor(/stream=\d+ xds ready token_exp=\d+ own_workload=skiff\/networking\.istio\.io\/WorkloadEntry\/shop\/web-\S+ tunnel=HBONE/, 30_000);
    }
    if (useReal) {
      // HBONE through the real ztunnel: mTLS with another mesh identity, CONNECT to the app.
      const answer = await hboneGet(cp, host, vmIp, `${vmIp}:8080`);
      assert.match(answer.peer, /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/);
      assert.match(answer.response, /^HTTP\/1\.1 200 OK[\s\S]*"app":"web"/);
    }
    const proxies = (await (await fetch(`http://${host}:${cp.monitoringPort}/debug/proxies`)).json()) as { nodeId: string; spiffeId: string }[];
    assert.ok(proxies.some((p) => p.nodeId.startsWith(`ztunnel~${vmIp}~web-`) && p.spiffeId === 'spiffe://cluster.local/ns/shop/sa/web'), JSON.stringify(proxies));

    // Rewritten before expiry (at half life), with a later expiry.
    const second = await eventually('session token rewritten', async () => {
      const now = fs.readFileSync(sessionFile, 'utf8');
      return now !== first ? now : undefined;
    }, TTL_SECONDS * 1000, 200);
    assert.ok(Date.now() / 1000 < firstExp, 'rewritten before the old token expired');
    assert.ok(expOf(second) > firstExp);
    assert.equal(fs.statSync(sessionFile).mode & 0o777, 0o600);

    // After the first token expired, new streams still authenticate: the refreshed token is accepted.
    await new Promise((r) => setTimeout(r, Math.max(0, firstExp * 1000 - Date.now() + 1500)));
    if (!useReal) {
      const accepted = await eventually('a stream with a refreshed token', async () => {
        const exps = [...agent.output().matchAll(/xds ready token_exp=(\d+)/g)].map((m) => Number(m[1]));
        return exps.find((e) => e > firstExp && Date.now() / 1000 > firstExp);
      }, 20_000, 250);
      assert.ok(accepted > firstExp);
      assert.doesNotMatch(agent.output(), /xds stream failed \(ended UNAUTHENTICATED/);
    }
  });

  void it('issues session tokens only to a caller presenting its SVID', async () => {
    const client = new grpc.Client(`${host}:${cp.grpcPort}`, grpc.credentials.createSsl(fs.readFileSync(path.join(cp.dataDir, 'trust-bundle.pem'))));
    try {
      const err = await new Promise<grpc.ServiceError | undefined>((resolve) => {
        client.makeUnaryRequest(CREATE_SESSION_TOKEN_PATH, encodeCreateSessionTokenRequest, decodeSessionToken, { ttlSeconds: 60 }, new grpc.Metadata(), (e) => resolve(e ?? undefined));
      });
      assert.equal(err?.code, grpc.status.UNAUTHENTICATED);
      assert.match(err.details, /needs your current SVID/);
    } finally {
      client.close();
    }
  });

  void it("revoking the VM's bootstrap token revokes its session tokens too", async () => {
    const bootstrap = fs.readFileSync(path.join(tmp, 'bootstrap-token'), 'utf8').trim();
    const jti = (JSON.parse(Buffer.from(bootstrap.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti: string }).jti;
    const [cmd, ...pre] = SKIFF as [string, ...string[]];
    execFileSync(cmd, [...pre, 'token', 'revoke', '--data-dir', cp.dataDir, '--', jti], { cwd: REPO, stdio: 'ignore' });
    const mark = agent.output().length;
    // The open streams are closed; ztunnel reconnects with the token file and is refused.
    const refused = useReal ? /token \S+ was revoked/ : /xds stream failed \(ended UNAUTHENTICATED: token refused: token \S+ was revoked/;
    await eventually('a refused stream', async () => refused.test(agent.output().slice(mark)), 30_000, 250);
  });

  void it('stops ztunnel with the agent', async () => {
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
    if (!useReal) assert.match(agent.output(), /received SIGTERM, draining/);
    assert.match(agent.output(), /ztunnel stopped/);
  });
});
