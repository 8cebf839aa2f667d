/** `skiff policy check` and `skiff policy lint`, run in-process through commander and as a child process. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { registerPolicy } from './policy.js';

const ISSUER = 'https://issuer.example';
const JWKS_URI = 'https://issuer.example/jwks.json';

function mesh(jwks: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: demo, labels: {app: web}}
spec: {address: 198.18.0.10, serviceAccount: web}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: web, namespace: demo}
spec:
  workloadSelector: {labels: {app: web}}
  ingress:
  - port: {number: 8080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:9080
  - port: {number: 5432, protocol: TCP, name: db}
    defaultEndpoint: 127.0.0.1:5433
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/demo/sa/client"]}}]
    to: [{operation: {methods: ["GET"]}}]
  - from: [{source: {requestPrincipals: ["${ISSUER}/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: demo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"], ports: ["8080"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: demo}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules:
  - to: [{operation: {paths: ["/ext/*"]}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: demo}
spec:
  jwtRules:
  - issuer: ${ISSUER}
    jwksUri: ${JWKS_URI}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: inline, namespace: other}
spec:
  jwtRules:
  - issuer: https://inline.example
    jwks: '${jwks}'
`;
}

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `skiff <args>` in-process; returns the exit code the command set and its output. */
async function skiff(...args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const program = new Command('skiff');
  registerPolicy(program, { out: (t) => void (out += t), err: (t) => void (err += t) });
  const before = process.exitCode;
  try {
    process.exitCode = undefined;
    await program.parseAsync(['node', 'skiff', ...args]);
    return { code: typeof process.exitCode === 'number' ? process.exitCode : 0, out, err };
  } finally {
    process.exitCode = before;
  }
}

void describe('skiff policy', () => {
  let dir: string;
  let meshDir: string;
  let token: string;
  let jwksFile: string;
  let meshConfig: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-policy-'));
    meshDir = path.join(dir, 'mesh');
    await fs.mkdir(meshDir);
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    await fs.writeFile(path.join(meshDir, 'mesh.yaml'), mesh(jwks));
    jwksFile = path.join(dir, 'jwks.json');
    await fs.writeFile(jwksFile, jwks);
    token = await new SignJWT({ iss: ISSUER, sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setExpirationTime('1h').sign(privateKey);
    meshConfig = path.join(dir, 'mesh-config.yaml');
    await fs.writeFile(meshConfig, 'extensionProviders:\n- name: opa\n  envoyExtAuthzHttp: {service: opa.security.svc, port: 8181}\n');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const check = (...args: string[]) => skiff('policy', 'check', '-f', meshDir, '--to', 'demo/web', ...args);

  void it('check prints ALLOW and the deciding rule', async () => {
    const r = await check('--port', '8080', '--from', 'cluster.local/ns/demo/sa/client');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^ALLOW allowed-by-allow\n/);
    assert.match(r.out, /rule: ALLOW policy demo\/allow-client rules\[0\]/);
    assert.match(r.out, /destination: demo\/web 198\.18\.0\.10:8080 HTTP/);
  });

  void it('check prints DENY with the DENY policy and rule, exit code 0', async () => {
    const r = await check('--port', '8080', '--from', 'cluster.local/ns/demo/sa/client', '--path', '/admin/users');
    assert.equal(r.code, 0);
    assert.match(r.out, /^DENY \(403\) denied-by-deny\n/);
    assert.match(r.out, /rule: DENY policy demo\/deny-admin rules\[0\]/);
  });

  void it('check denies when no ALLOW rule matches', async () => {
    const r = await check('--port', '8080', '--from', 'cluster.local/ns/demo/sa/client', '--method', 'POST');
    assert.match(r.out, /^DENY \(403\) no-allow-match\n/);
  });

  void it('check reads the port protocol from the Sidecar and warns about HTTP-only fields on TCP', async () => {
    const r = await check('--port', '5432', '--from', 'cluster.local/ns/demo/sa/client', '--mesh-config', meshConfig);
    assert.match(r.out, /^DENY \(403\) no-allow-match\n/);
    assert.match(r.out, /warning: CUSTOM policy demo\/ext: provider opa is an HTTP authorizer, which does not apply to TCP port 5432/);
    assert.match(r.out, /destination: demo\/web 198\.18\.0\.10:5432 TCP/);
    assert.match(r.out, /warning: ALLOW policy demo\/allow-client: rules\[0\] uses HTTP-only attributes \(rules\[0\]\.to\[0\]\.operation\.methods\) and never matches on TCP port 5432/);
  });

  void it('check validates a token with keys from --jwks-file', async () => {
    const r = await check('--port', '8080', '--jwt', token, '--method', 'DELETE', '--jwks-file', `${JWKS_URI}=${jwksFile}`);
    assert.match(r.out, /^ALLOW allowed-by-allow\n/);
    assert.match(r.out, /rules\[1\]/);
    assert.match(r.out, new RegExp(`request principal: ${ISSUER}/alice`));
  });

  void it('check refuses a token when the jwksUri keys are unknown (401)', async () => {
    const r = await check('--port', '8080', '--jwt', token);
    assert.match(r.out, /^DENY \(401\) jwt-invalid\n/);
    assert.match(r.out, /warning: no keys for issuer/);
  });

  void it('check asks the CUSTOM provider through --ext-authz', async () => {
    const args = ['--port', '8080', '--from', 'cluster.local/ns/demo/sa/client', '--path', '/ext/x', '--mesh-config', meshConfig];
    assert.match((await check(...args, '--ext-authz', 'deny')).out, /^DENY \(403\) custom-denied\n\s+destination.*\n\s+rule: CUSTOM policy demo\/ext rules\[0\]/);
    assert.match((await check(...args, '--ext-authz', 'allow')).out, /^ALLOW allowed-by-allow\n/);
    assert.match((await check(...args)).out, /warning: pass --ext-authz allow\|deny/);
  });

  void it('check --json prints the decision as JSON', async () => {
    const r = await check('--port', '8080', '--json');
    const parsed = JSON.parse(r.out) as { destination: { workload: string; port: number }; decision: { allowed: boolean; status: string } };
    assert.equal(parsed.destination.workload, 'demo/web');
    assert.equal(parsed.destination.port, 8080);
    assert.equal(parsed.decision.allowed, false);
    assert.equal(parsed.decision.status, 'no-allow-match');
  });

  void it('check exits 2 on usage errors', async () => {
    for (const [args, message] of [
      [['--port', '8080', '--to', 'demo'], /--to: expected <namespace>\/<workloadEntry>/],
      [['--to', 'demo/nope'], /--to: no WorkloadEntry demo\/nope .*\(known: demo\/web\)/],
      [['--port', '70000'], /--port: expected a port 1-65535/],
      [[], /several inbound ports \(5432, 8080\): pass --port/],
      [['--port', '8080', '--header', 'novalue'], /--header: expected name=value/],
      [['--port', '8080', '--source-ip', 'x'], /--source-ip: expected an IP address/],
      [['--port', '8080', '--protocol', 'udp'], /--protocol: expected http or tcp/],
    ] as const) {
      const r = await check(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
      assert.equal(r.out, '');
    }
    const missing = await skiff('policy', 'check', '-f', meshDir);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--to <namespace\/workloadEntry> is required/);
  });

  void it('check exits 1 on an invalid configuration, naming file and line', async () => {
    const bad = path.join(dir, 'bad');
    await fs.mkdir(bad, { recursive: true });
    await fs.writeFile(path.join(bad, 'ap.yaml'), 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: demo}\nspec:\n  action: REJECT\n');
    const r = await skiff('policy', 'check', '-f', bad, '--to', 'demo/web');
    assert.equal(r.code, 1);
    assert.match(r.err, /error: .*ap\.yaml:5 spec\.action: expected ALLOW\|DENY\|AUDIT\|CUSTOM, got "REJECT"/);
  });

  void it('lint prints Istio translation warnings with file, line and field', async () => {
    const r = await skiff('policy', 'lint', '-f', meshDir);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /warning: .*mesh\.yaml:\d+ spec\.rules\[0\]: rule uses HTTP-only attributes \(to\[0\]\.operation\.methods\) and never matches on TCP ports \(demo\/web:5432\)/);
    assert.match(r.out, /warning: .*mesh\.yaml:\d+ spec\.provider\.name: no mesh config given: cannot check that extension provider "opa" exists/);
    assert.match(r.out, /warning: .*mesh\.yaml:\d+ metadata\.name: RequestAuthentication applies to no WorkloadEntry \(namespace other\)/);
    assert.match(r.out, /7 resources, 0 errors, \d+ warnings\n$/);
    const withMesh = await skiff('policy', 'lint', '-f', meshDir, '--mesh-config', meshConfig);
    assert.match(withMesh.out, /provider "opa" is an HTTP authorizer: the policy does not apply to TCP ports \(demo\/web:5432\)/);
  });

  void it('lint exits 1 on errors and warns about a CUSTOM provider missing from the mesh config', async () => {
    const bad = path.join(dir, 'lint-bad');
    await fs.mkdir(bad, { recursive: true });
    await fs.writeFile(
      path.join(bad, 'ap.yaml'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: demo}\nspec:\n  rules:\n  - from:\n    - source:\n        ipBlocks: ["10.0.0.0/40"]\n',
    );
    const r = await skiff('policy', 'lint', '-f', bad);
    assert.equal(r.code, 1);
    assert.match(r.out, /error: .*ap\.yaml:8 spec\.rules\[0\]\.from\[0\]\.source\.ipBlocks\[0\]: bad CIDR range "10\.0\.0\.0\/40"/);

    const custom = path.join(dir, 'lint-custom');
    await fs.mkdir(custom, { recursive: true });
    await fs.writeFile(path.join(custom, 'ap.yaml'), 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: demo}\nspec:\n  action: CUSTOM\n  provider: {name: nope}\n  rules: [{}]\n');
    const c = await skiff('policy', 'lint', '-f', custom, '--mesh-config', meshConfig);
    assert.equal(c.code, 0);
    assert.match(c.out, /ap\.yaml:6 spec\.provider\.name: extension provider "nope" is not defined in the mesh config: requests this policy matches are denied/);
  });

  void it('an unknown option exits 2 (child process)', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
    const program = "import { Command } from 'commander'; import { registerPolicy } from './src/cli/policy.ts'; const p = new Command('skiff'); registerPolicy(p); await p.parseAsync(process.argv);";
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program, 'x', 'policy', 'check', '-f', meshDir, '--bogus'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /unknown option '--bogus'/);
  });
});
