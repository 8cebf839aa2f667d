/**
 * The Envoy translator's security output on real traffic: a mesh with AuthorizationPolicies (every
 * action), a RequestAuthentication and a CUSTOM provider goes through the real pipeline (parse →
 * snapshot → push context → translate), into a real Envoy (static bootstrap, plaintext inbound
 * chains under PeerAuthentication DISABLE, all on 127.0.0.1), and real HTTP requests and TCP
 * connections check what a user sees: 200, 403 (RBAC or the authorizer), 401 (a bad token),
 * a TCP connection closed by a widened DENY.
 *
 * The end-to-end suite (`test/e2e`) covers the same semantics with mTLS peers, network namespaces
 * and the control plane; this test pins the translator's part on its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findEnvoy } from '../../agents/envoy-path.js';
import { validate } from '../../src/ir/validate.js';
import { buildProxyIR, parseProxyNode } from '../../src/push/index.js';
import { buildSnapshot } from '../../src/registry/index.js';
import { formatIssue, parseResources } from '../../src/resources/parse.js';
import { parseMeshConfig } from '../../src/resources/mesh-config.js';
import { translateEnvoy } from '../../src/translate/envoy/index.js';
import { encodeStrict } from '../../src/xds/protos/loader.js';
import { createTestIssuer, type TestIssuer } from '../helpers/jwt-issuer.js';
import { ProcessGroup, freePort } from '../helpers/processes.js';
import { EXT_AUTHZ_ALLOW, EXT_AUTHZ_HEADER, startExtAuthzStub, type StubServer } from '../helpers/stub-servers.js';
import { staticBootstrap } from './envoy-bootstrap.js';

const ISSUER = 'https://issuer.example.com';

function mesh(httpPort: number, tcpPort: number, appPort: number, tcpAppPort: number, issuer: TestIssuer): string {
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api, namespace: demo}
spec: {address: 127.0.0.1, serviceAccount: api, labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: demo}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
    - {port: {number: ${httpPort}, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:${appPort}"}
    - {port: {number: ${tcpPort}, protocol: TCP, name: tcp}, defaultEndpoint: "127.0.0.1:${tcpAppPort}"}
  egress:
    - hosts: ["~/*"]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: demo}
spec:
  jwtRules:
    - issuer: ${ISSUER}
      audiences: [api]
      jwks: '${issuer.jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-flagged, namespace: skiff-system}
spec:
  action: DENY
  rules:
    - when: [{key: "request.headers[x-deny]", values: ["*"]}]
    - from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]
    - to: [{operation: {ports: ["${tcpPort}"], methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: would-deny-dry, namespace: demo, annotations: {"istio.io/dry-run": "true"}}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/public/dry"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-admin, namespace: demo}
spec:
  action: AUDIT
  rules: [{to: [{operation: {paths: ["/public/admin"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: demo}
spec:
  action: CUSTOM
  provider: {name: stub-authz}
  rules: [{to: [{operation: {paths: ["/ext/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: demo}
spec:
  selector: {matchLabels: {app: api}}
  rules:
    - to: [{operation: {paths: ["/public/*", "/exact", "/ext/*"]}}]
    - from: [{source: {requestPrincipals: ["${ISSUER}/alice"]}}]
      to: [{operation: {paths: ["/private/*"]}}]
    - to: [{operation: {hosts: ["Example.COM"], paths: ["/host-check"]}}]
    - to: [{operation: {ports: ["${tcpPort}"]}}]
`;
}

interface Reply {
  status: number;
  body: string;
}

function get(port: number, target: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method: 'GET', headers: { connection: 'close', ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${target}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sends a line over TCP: `echoed` if it comes back, `closed` if the proxy closes the connection. */
function tcpRoundTrip(port: number): Promise<'echoed' | 'closed'> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('tcp: timeout'));
    }, 5000);
    sock.on('connect', () => sock.write('ping\n'));
    sock.on('data', (d) => {
      got += d.toString();
      if (got.includes('ping')) {
        clearTimeout(timer);
        sock.destroy();
        resolve('echoed');
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(got.includes('ping') ? 'echoed' : 'closed');
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

void describe('translated security config on real Envoy', () => {
  const procs = new ProcessGroup();
  let dir = '';
  let httpPort = 0;
  let tcpPort = 0;
  let issuer: TestIssuer;
  let authz: StubServer | undefined;
  const servers: net.Server[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-authz-traffic-'));
    issuer = await createTestIssuer(ISSUER, 'k1');
    authz = await startExtAuthzStub('127.0.0.1');
    const app = http.createServer((req, res) => res.end(`app saw ${req.url ?? ''}`));
    const echo = net.createServer((s) => s.pipe(s));
    servers.push(app, echo);
    const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as net.AddressInfo).port)));
    const tcpAppPort = await new Promise<number>((r) => echo.listen(0, '127.0.0.1', () => r((echo.address() as net.AddressInfo).port)));
    httpPort = await freePort();
    tcpPort = await freePort();

    const parsed = parseResources(mesh(httpPort, tcpPort, appPort, tcpAppPort, issuer), 'mesh.yaml');
    assert.deepEqual(parsed.errors.map(formatIssue), []);
    const meshConfig = parseMeshConfig(`extensionProviders:\n  - name: stub-authz\n    envoyExtAuthzHttp: {service: 127.0.0.1, port: ${authz.port}, includeRequestHeadersInCheck: [${EXT_AUTHZ_HEADER}]}\n`, 'mesh-config.yaml');
    assert.deepEqual(meshConfig.errors.map(formatIssue), []);
    const proxy = parseProxyNode({ id: 'sidecar~127.0.0.1~api.demo~demo.svc.cluster.local', metadata: { SERVICE_ACCOUNT: 'api', WORKLOAD_NAME: 'api' } }, 'cluster.local');
    const ir = buildProxyIR(buildSnapshot(1, parsed.resources), proxy, { meshConfig: meshConfig.config });
    assert.deepEqual(validate(ir), []);
    const translation = translateEnvoy(ir);
    assert.ok(translation.warnings.some((w) => w.includes('AuthorizationPolicy skiff-system/deny-flagged rules[2] (DENY) uses HTTP-only fields')), translation.warnings.join('\n'));

    const bootstrap = staticBootstrap({ name: 'traffic', ir, validationErrors: [], translation }, path.join(dir, 'sds.sock'));
    const file = path.join(dir, 'envoy.pb');
    fs.writeFileSync(file, encodeStrict('envoy.config.bootstrap.v3.Bootstrap', bootstrap));
    procs.add('envoy', spawn(findEnvoy(), ['-c', file, '--disable-hot-restart', '--use-dynamic-base-id', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    await waitForPort(httpPort, 20_000);
    await waitForPort(tcpPort, 20_000);
  });

  after(async () => {
    await procs.stopAll();
    await authz?.close();
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  void test('an ALLOW path passes; a path no ALLOW rule names is refused with 403', async () => {
    assert.equal((await get(httpPort, '/public/a')).status, 200);
    assert.equal((await get(httpPort, '/other')).status, 403);
  });

  void test('paths match without the query string', async () => {
    const r = await get(httpPort, '/exact?q=/private/x');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'app saw /exact?q=/private/x');
  });

  void test('a mesh-wide DENY on a request header beats the ALLOW', async () => {
    assert.equal((await get(httpPort, '/public/a', { 'x-deny': 'yes' })).status, 403);
  });

  void test('remoteIpBlocks read the client from x-forwarded-for', async () => {
    assert.equal((await get(httpPort, '/public/a', { 'x-forwarded-for': '203.0.113.9' })).status, 403);
    assert.equal((await get(httpPort, '/public/a', { 'x-forwarded-for': '198.51.100.9' })).status, 200);
  });

  void test('AUDIT and a dry-run DENY do not change the decision', async () => {
    assert.equal((await get(httpPort, '/public/admin')).status, 200);
    assert.equal((await get(httpPort, '/public/dry')).status, 200);
  });

  void test('hosts match the Host header whatever its case', async () => {
    assert.equal((await get(httpPort, '/host-check', { host: 'eXample.com' })).status, 200);
    assert.equal((await get(httpPort, '/host-check', { host: 'example.org' })).status, 403);
  });

  void test('JWT: a missing token passes authentication, a bad or expired token is refused with 401, another audience with 403, requestPrincipals need the right subject', async () => {
    assert.equal((await get(httpPort, '/public/a')).status, 200, 'no token, public path');
    assert.equal((await get(httpPort, '/private/a')).status, 403, 'no token, private path');
    const alice = await issuer.sign({ sub: 'alice', aud: 'api' });
    const bob = await issuer.sign({ sub: 'bob', aud: 'api' });
    const wrongAudience = await issuer.sign({ sub: 'alice', aud: 'other' });
    assert.equal((await get(httpPort, '/private/a', { authorization: `Bearer ${alice}` })).status, 200, 'alice');
    assert.equal((await get(httpPort, '/private/a', { authorization: `Bearer ${bob}` })).status, 403, 'bob');
    // Envoy's JWT filter answers a token for another audience with 403 (its only non-401 refusal).
    assert.deepEqual(await get(httpPort, '/public/a', { authorization: `Bearer ${wrongAudience}` }), { status: 403, body: 'Audiences in Jwt are not allowed' }, 'wrong audience');
    assert.equal((await get(httpPort, '/public/a', { authorization: 'Bearer not.a.jwt' })).status, 401, 'garbage token');
    const expired = await issuer.sign({ sub: 'alice', aud: 'api', exp: Math.floor(Date.now() / 1000) - 600 });
    assert.equal((await get(httpPort, '/public/a', { authorization: `Bearer ${expired}` })).status, 401, 'expired token');
  });

  void test('CUSTOM asks the external authorizer only for the paths its rules match', async () => {
    const before = authz?.seen.length ?? 0;
    assert.equal((await get(httpPort, '/public/a')).status, 200);
    assert.equal(authz?.seen.length, before, 'not consulted outside /ext/*');
    const denied = await get(httpPort, '/ext/a');
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'denied by ext-authz');
    assert.equal((await get(httpPort, '/ext/a', { [EXT_AUTHZ_HEADER]: EXT_AUTHZ_ALLOW })).status, 200);
  });

  void test('on the TCP port the DENY rule lost its HTTP-only method: every connection is closed', async () => {
    assert.equal(await tcpRoundTrip(tcpPort), 'closed');
  });
});
