import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConsulConfigError, consulConfigFromFlags, normalizeConsulAddress, resolveConsulConfig } from './config.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-consul-config-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string, mode = 0o644): string => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text, { mode });
  return p;
};

describe('Consul source config', () => {
  it('normalises addresses: host:port, bare host (8500), http(s) URLs (https defaults to 8501), IPv6', () => {
    assert.equal(normalizeConsulAddress('127.0.0.1:8500'), 'http://127.0.0.1:8500');
    assert.equal(normalizeConsulAddress('consul.internal'), 'http://consul.internal:8500');
    assert.equal(normalizeConsulAddress('https://consul.internal'), 'https://consul.internal:8501');
    assert.equal(normalizeConsulAddress('http://[::1]:18500/'), 'http://[::1]:18500');
    assert.throws(() => normalizeConsulAddress('ftp://x'), /--consul-address: "ftp:\/\/x": only http and https are supported/);
    assert.throws(() => normalizeConsulAddress('http://x:8500/v1'), /give only scheme, host and port/);
    assert.throws(() => normalizeConsulAddress('http://:80'), ConsulConfigError);
  });

  it('is off without an address, and says so when other Consul settings are given', async () => {
    assert.equal(await consulConfigFromFlags({}), undefined);
    await assert.rejects(consulConfigFromFlags({ consulTag: ['mesh'] }), /Consul settings \(tags\) are given but no --consul-address/);
  });

  it('applies defaults and reads the token file (trimmed)', async () => {
    const token = file('token', '  6f1c-token \n', 0o600);
    const config = await consulConfigFromFlags({ consulAddress: ['127.0.0.1:8500', 'https://c2:8501'], consulTokenFile: token, consulTag: ['mesh', 'mesh'] });
    assert.deepEqual(config, {
      addresses: ['http://127.0.0.1:8500', 'https://c2:8501'],
      token: '6f1c-token',
      mapping: { hostTemplate: '{service}.service.consul', defaultNamespace: 'default', defaultServiceAccount: 'default', warningIsHealthy: true, tags: ['mesh'] },
      waitSeconds: 60,
      retry: { initialMs: 250, maxMs: 5000 },
      rateLimit: { burst: 2, intervalMs: 1000 },
    });
  });

  it('reads a consul: section from a file; flags win; relative paths are relative to the file', async () => {
    file('file-token', 'from-file');
    const yaml = file(
      'consul.yaml',
      `consul:
  addresses: [consul-a:8500]
  tokenFile: file-token
  datacenter: dc2
  namespace: team-1
  partition: part-1
  tags: [mesh]
  filter: 'Service.Meta.env == "prod"'
  hostTemplate: '{service}.{datacenter}.consul'
  defaultNamespace: fleet
  defaultServiceAccount: vm
  warningIsHealthy: false
  wait: 5m
`,
    );
    const config = await consulConfigFromFlags({ consulConfig: yaml, consulDatacenter: 'dc3', consulWarningIsHealthy: 'true' });
    assert.equal(config?.token, 'from-file');
    assert.deepEqual(config?.addresses, ['http://consul-a:8500']);
    assert.equal(config?.datacenter, 'dc3', 'the flag wins');
    assert.equal(config?.namespace, 'team-1');
    assert.equal(config?.partition, 'part-1');
    assert.equal(config?.filter, 'Service.Meta.env == "prod"');
    assert.equal(config?.waitSeconds, 300);
    assert.deepEqual(config?.mapping, { hostTemplate: '{service}.{datacenter}.consul', defaultNamespace: 'fleet', defaultServiceAccount: 'vm', warningIsHealthy: true, tags: ['mesh'] });
  });

  it('rejects a file with an unknown key or a wrong type, naming the file and the key', async () => {
    await assert.rejects(consulConfigFromFlags({ consulConfig: file('bad1.yaml', 'consul:\n  adresses: [x]\n') }), /bad1\.yaml: consul: unknown field "adresses"/);
    await assert.rejects(consulConfigFromFlags({ consulConfig: file('bad2.yaml', 'consul:\n  warningIsHealthy: maybe\n') }), /bad2\.yaml: consul\.warningIsHealthy: /);
    await assert.rejects(consulConfigFromFlags({ consulConfig: path.join(tmp, 'missing.yaml') }), /--consul-config .*missing\.yaml: cannot read/);
  });

  it('rejects bad settings with the flag name', async () => {
    const a = ['127.0.0.1:8500'];
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulTokenFile: path.join(tmp, 'nope') }), /--consul-token-file: cannot read .*nope: ENOENT/);
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulTokenFile: file('empty', '\n') }), /--consul-token-file: .*empty must hold exactly one token/);
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulServiceHostTemplate: '{name}.consul' }), /--consul-service-host-template: unknown placeholder \{name\}/);
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulDefaultNamespace: 'Shop' }), /--consul-default-namespace: "Shop" is not a lower-case DNS label/);
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulDefaultServiceAccount: 'a/b' }), /--consul-default-service-account/);
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulWarningIsHealthy: 'sometimes' }), /--consul-warning-is-healthy: expected true or false/);
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulWait: '20m' }), /--consul-wait: expected a duration from 1s to 10m/);
    await assert.rejects(consulConfigFromFlags({ consulAddress: a, consulCaFile: file('ca.pem', 'x') }), /TLS settings are given but no --consul-address uses https:\/\//);
    await assert.rejects(consulConfigFromFlags({ consulAddress: ['https://c:8501'], consulCertFile: file('c.pem', 'x') }), /--consul-cert-file and --consul-key-file go together/);
    await assert.rejects(resolveConsulConfig({ addresses: ['https://c:8501'], caFile: path.join(tmp, 'nothing.pem') }), /--consul-ca-file: cannot read/);
  });

  it('never puts the token in an error message', async () => {
    const bad = file('two-tokens', 'secret-one secret-two');
    await assert.rejects(consulConfigFromFlags({ consulAddress: ['c:8500'], consulTokenFile: bad }), (err: Error) => !err.message.includes('secret'));
  });
});
