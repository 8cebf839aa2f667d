import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
// grpc-js-xds's own bootstrap validation (what GRPC_XDS_BOOTSTRAP goes through).
import { validateBootstrapConfig } from '@grpc/grpc-js-xds/build/src/xds-bootstrap.js';
import { shortTempDir } from '../testing.js';
import { buildGrpcBootstrap, CERT_PROVIDER_INSTANCE, GRPC_GENERATOR, PROXYLESS_FILES, SERVER_LISTENER_NAME_TEMPLATE, writeGrpcBootstrap, type GrpcBootstrapParams } from './bootstrap.js';
import { writeProxylessCredentials } from './credentials.js';

const params = (dir: string): GrpcBootstrapParams => ({
  namespace: 'demo',
  serviceAccount: 'client',
  workloadName: 'client-1',
  workloadIp: '198.18.51.2',
  labels: { app: 'client' },
  clusterId: 'skiff',
  xdsAddress: 'unix:///run/skiff-agent/xds.sock',
  credentialsDir: dir,
});

describe('proxyless gRPC bootstrap', () => {
  it('has the local xDS endpoint, Istio node identity with GENERATOR grpc, file_watcher provider and server template', () => {
    const b = buildGrpcBootstrap(params('/var/lib/skiff-agent/proxyless'));
    assert.deepEqual(b.xds_servers, [{ server_uri: 'unix:///run/skiff-agent/xds.sock', channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }]);
    assert.equal(b.node.id, 'sidecar~198.18.51.2~client-1.demo~demo.svc.cluster.local');
    assert.equal(b.node.metadata['GENERATOR'], GRPC_GENERATOR);
    assert.equal(b.node.metadata['NAMESPACE'], 'demo');
    assert.equal(b.node.metadata['SERVICE_ACCOUNT'], 'client');
    assert.equal(b.node.metadata['WORKLOAD_NAME'], 'client-1');
    assert.deepEqual(b.node.metadata['LABELS'], { app: 'client' });
    assert.deepEqual(b.certificate_providers[CERT_PROVIDER_INSTANCE], {
      plugin_name: 'file_watcher',
      config: {
        certificate_file: '/var/lib/skiff-agent/proxyless/cert-chain.pem',
        private_key_file: '/var/lib/skiff-agent/proxyless/key.pem',
        ca_certificate_file: '/var/lib/skiff-agent/proxyless/root-cert.pem',
        refresh_interval: '60s',
      },
    });
    assert.equal(b.server_listener_resource_name_template, SERVER_LISTENER_NAME_TEMPLATE);
  });

  it('is accepted by grpc-js-xds bootstrap validation', () => {
    const validated = validateBootstrapConfig(JSON.parse(JSON.stringify(buildGrpcBootstrap({ ...params('/x'), locality: { zone: 'z1' } }))));
    assert.equal(validated.node.id, 'sidecar~198.18.51.2~client-1.demo~demo.svc.cluster.local');
    assert.equal(validated.node.locality.zone, 'z1');
    assert.equal(validated.serverListenerResourceNameTemplate, 'xds.istio.io/grpc/lds/inbound/%s');
    assert.equal(validated.certificateProviders[CERT_PROVIDER_INSTANCE]?.pluginName, 'file_watcher');
    assert.deepEqual(validated.node.metadata?.fields?.['GENERATOR'], { kind: 'stringValue', stringValue: 'grpc' });
  });

  it('refuses a relative credentials directory', () => {
    assert.throws(() => buildGrpcBootstrap(params('relative/dir')), /absolute/);
  });

  it('writes bootstrap, env file and credentials with mode 0600', async () => {
    const dir = path.join(await shortTempDir(), 'proxyless');
    try {
      await writeProxylessCredentials(dir, { certChainPem: 'CHAIN\n', keyPem: 'KEY\n', rootsPem: 'ROOTS\n' });
      const { bootstrapPath, envPath } = await writeGrpcBootstrap(params(dir));
      for (const f of [bootstrapPath, envPath, ...[PROXYLESS_FILES.certificateChain, PROXYLESS_FILES.privateKey, PROXYLESS_FILES.rootCert].map((n) => path.join(dir, n))]) {
        assert.equal((await fs.stat(f)).mode & 0o777, 0o600, f);
      }
      assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
      assert.equal(await fs.readFile(path.join(dir, PROXYLESS_FILES.privateKey), 'utf8'), 'KEY\n');
      const env = await fs.readFile(envPath, 'utf8');
      assert.match(env, new RegExp(`^GRPC_XDS_BOOTSTRAP=${bootstrapPath}$`, 'm'));
      assert.match(env, /^GRPC_XDS_EXPERIMENTAL_RBAC=true$/m);
      const written = JSON.parse(await fs.readFile(bootstrapPath, 'utf8')) as { node: { id: string } };
      assert.equal(written.node.id, 'sidecar~198.18.51.2~client-1.demo~demo.svc.cluster.local');
    } finally {
      await fs.rm(path.dirname(dir), { recursive: true, force: true });
    }
  });
});
