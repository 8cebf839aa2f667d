/**
 * Proves that real Envoy (1.40, `--mode validate`) accepts what the translator produces for every
 * golden case: our guard against NACKs. Each case goes into a static bootstrap
 * (`envoy-bootstrap.ts`), written as binary protobuf (`.pb`), and Envoy must exit 0. A control
 * test breaks one route and checks that Envoy does refuse it, so a pass means something.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { findEnvoy } from '../../agents/envoy-path.js';
import { encodeStrict } from '../../src/xds/protos/loader.js';
import { staticBootstrap, type Json } from './envoy-bootstrap.js';
import { caseNames, runCase } from './envoy-cases.js';

function runEnvoy(envoy: string, config: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(envoy, ['--mode', 'validate', '-c', config, '--disable-hot-restart', '--log-level', 'warn'], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, output: `${stdout}\n${stderr}` });
    });
  });
}

/**
 * The MUTUAL TLS golden case (`dr-tls-mutual-external`) names certificate files by path, and
 * `envoy --mode validate` really reads them: a throwaway self-signed certificate and key are made
 * here with openssl (git-ignored, never committed).
 */
function ensureExternalTlsFiles(): void {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'envoy', 'dr-tls-mutual-external.files');
  const key = path.join(dir, 'client.key');
  const cert = path.join(dir, 'client.pem');
  const ca = path.join(dir, 'ca.pem');
  if (fs.existsSync(key) && fs.existsSync(cert) && fs.existsSync(ca)) return;
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=external.example.com'], { stdio: 'ignore' });
  fs.chmodSync(key, 0o600);
  fs.copyFileSync(cert, ca);
}

void describe('real Envoy accepts the translated configuration', () => {
  const envoy = findEnvoy();
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-envoy-validate-'));
    ensureExternalTlsFiles();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  void test('the Envoy binary is there', () => {
    assert.ok(envoy === 'envoy' || fs.existsSync(envoy), `Envoy binary ${envoy} (run npm run setup)`);
  });
  void test('control: Envoy refuses a route to a cluster that does not exist', async () => {
    const c = runCase('sidecar-egress-two-services-one-port');
    const bootstrap = staticBootstrap(c, path.join(dir, 'sds.sock'));
    const listeners = (bootstrap['staticResources'] as Json)['listeners'] as Json[];
    const outbound = listeners.find((l) => l['name'] === '127.0.0.1_9080');
    assert.ok(outbound);
    const chain = (outbound['filterChains'] as Json[])[0]!;
    const hcm = (chain['filters'] as Json[])[0]!['typedConfig'] as Json;
    const vhost = ((hcm['routeConfig'] as Json)['virtualHosts'] as Json[])[0]!;
    ((vhost['routes'] as Json[])[0]!['route'] as Json)['cluster'] = 'outbound|9080||missing.demo.svc.cluster.local';
    const file = path.join(dir, 'control.pb');
    fs.writeFileSync(file, encodeStrict('envoy.config.bootstrap.v3.Bootstrap', bootstrap));
    const { code, output } = await runEnvoy(envoy, file);
    assert.notEqual(code, 0, 'Envoy accepted a route to a missing cluster');
    assert.match(output, /missing\.demo\.svc\.cluster\.local/);
  });
  void test('control: Envoy refuses an RBAC filter with a malformed regex (so RBAC configs are really checked)', async () => {
    const c = runCase('authz-deny-by-namespace');
    const bootstrap = staticBootstrap(c, path.join(dir, 'sds.sock'));
    const listeners = (bootstrap['staticResources'] as Json)['listeners'] as Json[];
    const inbound = listeners.find((l) => l['name'] === '198.18.0.1_8080');
    assert.ok(inbound);
    const hcm = (((inbound['filterChains'] as Json[])[0]!['filters'] as Json[])[0]!['typedConfig'] as Json);
    const rbac = (hcm['httpFilters'] as Json[]).find((f) => f['name'] === 'envoy.filters.http.rbac');
    assert.ok(rbac, 'the case has an HTTP RBAC filter');
    const text = JSON.stringify(rbac['typedConfig']);
    assert.match(text, /\.\*\/ns\/dev\/\.\*/);
    rbac['typedConfig'] = JSON.parse(text.replace('.*/ns/dev/.*', '.*/ns/(dev/.*')) as Json;
    const file = path.join(dir, 'control-rbac.pb');
    fs.writeFileSync(file, encodeStrict('envoy.config.bootstrap.v3.Bootstrap', bootstrap));
    const { code, output } = await runEnvoy(envoy, file);
    assert.notEqual(code, 0, 'Envoy accepted a malformed RBAC regex');
    assert.match(output, /regex|missing \)/i);
  });
  for (const name of caseNames()) {
    void test(name, async () => {
      const c = runCase(name);
      const file = path.join(dir, `${name}.pb`);
      fs.writeFileSync(file, encodeStrict('envoy.config.bootstrap.v3.Bootstrap', staticBootstrap(c, path.join(dir, 'sds.sock'))));
      const { code, output } = await runEnvoy(envoy, file);
      assert.equal(code, 0, `envoy --mode validate rejected ${name}:\n${output}`);
    });
  }
});
