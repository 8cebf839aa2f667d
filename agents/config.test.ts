import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AgentConfigError, envVarFor, flagFor, loadAgentConfig, workloadGroupRef, workloadSpiffeId } from './config.js';
import { shortTempDir } from './testing.js';

const required = {
  controlPlane: 'cp.mesh.internal:15012',
  rootCertPath: '/etc/skiff/root-cert.pem',
  namespace: 'shop',
  serviceAccount: 'web',
  workloadName: 'vm-a',
  workloadIp: '198.18.0.10',
};

void describe('agent config', () => {
  let dir: string;
  before(async () => {
    dir = await shortTempDir();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  void it('fills documented defaults', () => {
    const c = loadAgentConfig({ env: {}, overrides: required });
    assert.equal(c.trustDomain, 'cluster.local');
    assert.equal(c.clusterId, 'skiff');
    assert.equal(c.stateDir, '/var/lib/skiff-agent');
    assert.equal(c.envoyAdminPort, 15000);
    assert.equal(c.envoyBaseIdDynamic, true);
    assert.equal(c.xdsMode, 'sotw');
    assert.deepEqual(c.labels, {});
    assert.equal(c.certTtlSeconds, undefined);
    assert.ok(c.envoyPath.length > 0);
    assert.equal(workloadSpiffeId(c), 'spiffe://cluster.local/ns/shop/sa/web');
  });

  void it('takes the file, then SKIFF_* environment, then flags, each overriding the one before', async () => {
    const file = path.join(dir, 'agent.yaml');
    await fs.writeFile(file, ['controlPlane: file.example:15012', 'namespace: from-file', 'serviceAccount: web', 'envoyAdminPort: 15001', 'labels:', '  app: web'].join('\n'));
    const c = loadAgentConfig({
      file,
      env: { SKIFF_NAMESPACE: 'from-env', SKIFF_ENVOY_ADMIN_PORT: '15002', SKIFF_ROOT_CERT_PATH: '/r.pem', SKIFF_LABELS: 'app=api,tier=back', SKIFF_ENVOY_BASE_ID_DYNAMIC: 'false' },
      overrides: { namespace: 'from-flag', workloadName: 'vm-a', workloadIp: '10.0.0.1', envoyAdminPort: undefined },
    });
    assert.equal(c.controlPlane, 'file.example:15012');
    assert.equal(c.namespace, 'from-flag');
    assert.equal(c.envoyAdminPort, 15002);
    assert.deepEqual(c.labels, { app: 'api', tier: 'back' });
    assert.equal(c.envoyBaseIdDynamic, false);
    assert.equal(envVarFor('envoyAdminPort'), 'SKIFF_ENVOY_ADMIN_PORT');
    assert.equal(flagFor('envoyAdminPort'), '--envoy-admin-port');
  });

  void it('names every missing required field and how to set it', () => {
    assert.throws(
      () => loadAgentConfig({ env: {}, overrides: { namespace: 'shop' } }),
      (err: unknown) =>
        err instanceof AgentConfigError &&
        ['controlPlane', 'rootCertPath', 'serviceAccount', 'workloadName', 'workloadIp'].every((f) => err.message.includes(`${f}: required`)) &&
        err.message.includes('SKIFF_CONTROL_PLANE') &&
        err.message.includes('--workload-ip'),
    );
  });

  void it('names the field and where a bad value came from', async () => {
    assert.throws(() => loadAgentConfig({ env: { SKIFF_ENVOY_ADMIN_PORT: 'http' }, overrides: required }), /envoyAdminPort: expected an integer port 1-65535 \(from env SKIFF_ENVOY_ADMIN_PORT\)/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, workloadIp: '10.0.0.300' } }), /workloadIp: expected an IPv4 or IPv6 address \(from flag --workload-ip\)/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, controlPlane: 'cp.mesh.internal' } }), /controlPlane: expected host:port/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, namespace: 'Shop_1' } }), /namespace: expected a DNS-1123 label/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, certTtlSeconds: 100 * 24 * 3600 } }), /certTtlSeconds: expected at most 90 days/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, socketDir: `/tmp/${'d'.repeat(100)}` } }), /socketDir: socket path .* shorter than 108 bytes/);
    assert.throws(
      () => loadAgentConfig({ env: {}, overrides: { ...required, rootCertPath: '' }, flagNames: { rootCertPath: '--root-cert' } }),
      /rootCertPath: expected a file path \(from flag --root-cert\)/,
    );
    const file = path.join(dir, 'typo.yaml');
    await fs.writeFile(file, 'namespce: shop\n');
    assert.throws(() => loadAgentConfig({ file, env: {}, overrides: required }), new RegExp(`namespce: unknown setting \\(from ${file.replace(/[/.]/g, '\\$&')}\\)`));
  });

  void it('reports an unreadable or invalid YAML file with its path and line', async () => {
    assert.throws(() => loadAgentConfig({ file: path.join(dir, 'missing.yaml'), env: {}, overrides: required }), /cannot read agent config file .*missing\.yaml/);
    const file = path.join(dir, 'bad.yaml');
    await fs.writeFile(file, 'namespace: shop\nlabels: [a\n');
    assert.throws(() => loadAgentConfig({ file, env: {}, overrides: required }), /bad\.yaml(:\d+)?: invalid YAML/);
    const list = path.join(dir, 'list.yaml');
    await fs.writeFile(list, '- a\n- b\n');
    assert.throws(() => loadAgentConfig({ file: list, env: {}, overrides: required }), /expected a mapping/);
  });

  void it('a WorkloadGroup names the workload instead of workloadName, in the agent namespace', () => {
    const { workloadName: _name, ...rest } = required;
    const c = loadAgentConfig({ env: {}, overrides: { ...rest, workloadGroup: 'web' } });
    assert.equal(c.workloadName, undefined);
    assert.equal(workloadGroupRef(c), 'shop/web');
    assert.equal(workloadGroupRef(loadAgentConfig({ env: { SKIFF_WORKLOAD_GROUP: 'shop/web' }, overrides: rest })), 'shop/web');
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, workloadGroup: 'shop/web' } }), /workloadName: not allowed with workloadGroup: the control plane names the auto-registered WorkloadEntry \(from flag --workload-name\)/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...rest, workloadGroup: 'other/web' } }), /workloadGroup: the WorkloadGroup must be in the agent's namespace shop, got other/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...rest, workloadGroup: 'Shop/Web!' } }), /workloadGroup: expected <namespace>\/<name> of a WorkloadGroup/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: rest }), /workloadName: required, or register into a WorkloadGroup with workloadGroup/);
  });

  void it('reads a probe block from the file and refuses a bad one with its source', async () => {
    const file = path.join(dir, 'probe.yaml');
    await fs.writeFile(file, 'probe:\n  periodSeconds: 5\n  httpGet:\n    port: 8080\n    path: /healthz\n');
    assert.deepEqual(loadAgentConfig({ file, env: {}, overrides: required }).probe, { periodSeconds: 5, httpGet: { port: 8080, path: '/healthz' } });
    assert.throws(() => loadAgentConfig({ env: { SKIFF_PROBE: '{"httpGet":{"port":0}}' }, overrides: required }), /probe\.httpGet\.port: expected a port 1-65535 \(from env SKIFF_PROBE\)/);
  });

  void it('xdsMode is sotw or delta (flag --xds); anything else is refused naming the choices', () => {
    assert.equal(loadAgentConfig({ env: {}, overrides: { ...required, xdsMode: 'delta' } }).xdsMode, 'delta');
    assert.equal(loadAgentConfig({ env: { SKIFF_XDS_MODE: 'delta' }, overrides: required }).xdsMode, 'delta');
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, xdsMode: 'incremental' }, flagNames: { xdsMode: '--xds' } }), /--xds.*expected "sotw" or "delta"|expected "sotw" or "delta".*--xds/s);
  });

  void it('accepts IPv6 control plane addresses in brackets', () => {
    assert.equal(loadAgentConfig({ env: {}, overrides: { ...required, controlPlane: '[fd00::1]:15012' } }).controlPlane, '[fd00::1]:15012');
  });
  void it('proxy ztunnel needs an executable ztunnel binary and names the flag when it is missing', async () => {
    assert.equal(loadAgentConfig({ env: {}, overrides: required }).proxy, 'envoy');
    assert.throws(
      () => loadAgentConfig({ env: {}, overrides: { ...required, proxy: 'ztunnel', ztunnelPath: path.join(dir, 'no-such-ztunnel') } }),
      (err: unknown) => err instanceof AgentConfigError && err.message.includes(`ztunnelPath: the ztunnel binary ${path.join(dir, 'no-such-ztunnel')} does not exist (from flag --ztunnel-path)`),
    );
    const notExec = path.join(dir, 'ztunnel-noexec');
    await fs.writeFile(notExec, '#!/bin/sh\n', { mode: 0o644 });
    await fs.chmod(notExec, 0o644);
    assert.throws(
      () => loadAgentConfig({ env: { SKIFF_ZTUNNEL_PATH: notExec }, overrides: { ...required, proxy: 'ztunnel' } }),
      (err: unknown) => err instanceof AgentConfigError && err.message.includes('is not executable (mode 0644) (from env SKIFF_ZTUNNEL_PATH)'),
    );
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, proxy: 'ztunnel', ztunnelPath: dir } }), /is not a file/);
    const exec = path.join(dir, 'ztunnel-ok');
    await fs.writeFile(exec, '#!/bin/sh\n', { mode: 0o755 });
    const c = loadAgentConfig({ env: {}, overrides: { ...required, proxy: 'ztunnel', ztunnelPath: exec, sessionTokenTtlSeconds: '600' } });
    assert.equal(c.proxy, 'ztunnel');
    assert.equal(c.ztunnelPath, exec);
    assert.equal(c.sessionTokenTtlSeconds, 600);
  });

  void it('refuses an unknown proxy kind and a session token TTL outside 10 s..1 h', () => {
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, proxy: 'linkerd' } }), /proxy: expected "envoy" or "ztunnel" \(from flag --proxy\)/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, sessionTokenTtlSeconds: 5 } }), /sessionTokenTtlSeconds: expected at least 10 seconds/);
    assert.throws(() => loadAgentConfig({ env: {}, overrides: { ...required, sessionTokenTtlSeconds: 7200 } }), /expected at most 3600 seconds/);
  });
});
