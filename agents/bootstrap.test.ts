import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { UnknownFieldError } from '../src/xds/protos/loader.js';
import { buildSidecarBootstrap, envoyBootstrapJson, sdsCluster, sidecarNodeId, writeEnvoyBootstrap, type SidecarBootstrapParams } from './bootstrap.js';
import { findEnvoy } from './envoy-path.js';
import { shortTempDir } from './testing.js';

const run = promisify(execFile);

const params: SidecarBootstrapParams = {
  namespace: 'shop',
  serviceAccount: 'web',
  workloadName: 'vm-a',
  workloadIp: '198.18.0.10',
  labels: { app: 'web', version: 'v1' },
  clusterId: 'skiff',
  controlPlane: 'cp.mesh.internal:15012',
  controlPlaneSpiffeId: 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane',
  sdsSocketPath: '/tmp/sk-test/sds.sock',
  adminPort: 15000,
};

/** Runs `envoy --mode validate -c file`; returns exit code and combined output. */
async function envoyValidate(file: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(findEnvoy(), ['--mode', 'validate', '-c', file, '--use-dynamic-base-id', '--log-level', 'error'], { timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

void describe('sidecar Envoy bootstrap', () => {
  let dir: string;
  before(async () => {
    dir = await shortTempDir();
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  void it('names the node the Istio way and carries the identity metadata the control plane checks', () => {
    const json = JSON.parse(envoyBootstrapJson(buildSidecarBootstrap(params))) as {
      node: { id: string; cluster: string; metadata: Record<string, unknown> };
      admin: { address: { socketAddress: { address: string; portValue: number } } };
    };
    assert.equal(json.node.id, 'sidecar~198.18.0.10~vm-a.shop~shop.svc.cluster.local');
    assert.equal(sidecarNodeId(params), json.node.id);
    assert.equal(json.node.cluster, 'web.shop');
    assert.deepEqual(
      { ...json.node.metadata, SKIFF_VERSION: undefined },
      { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'web', WORKLOAD_NAME: 'vm-a', LABELS: { app: 'web', version: 'v1' }, CLUSTER_ID: 'skiff', INSTANCE_IPS: '198.18.0.10', SKIFF_VERSION: undefined },
    );
    assert.equal(typeof json.node.metadata['SKIFF_VERSION'], 'string');
    assert.deepEqual(json.admin.address.socketAddress, { address: '127.0.0.1', portValue: 15000 });
  });

  void it('checks the control plane by its SPIFFE ID with the SDS certificates, and writes Durations as proto3 JSON', () => {
    const text = envoyBootstrapJson(buildSidecarBootstrap(params));
    const json = JSON.parse(text) as { staticResources: { clusters: Record<string, unknown>[] } };
    const xds = json.staticResources.clusters.find((c) => c['name'] === 'xds-grpc') as Record<string, unknown>;
    assert.equal(xds['type'], 'STRICT_DNS');
    assert.equal(xds['connectTimeout'], '1s');
    const tlsCtx = (xds['transportSocket'] as { typedConfig: Record<string, unknown> }).typedConfig;
    assert.equal(tlsCtx['sni'], 'cp.mesh.internal');
    const common = tlsCtx['commonTlsContext'] as {
      tlsCertificateSdsSecretConfigs: { name: string; sdsConfig: { apiConfigSource: { grpcServices: { envoyGrpc: { clusterName: string } }[] } } }[];
      combinedValidationContext: { defaultValidationContext: unknown; validationContextSdsSecretConfig: { name: string } };
    };
    assert.equal(common.tlsCertificateSdsSecretConfigs[0]?.name, 'default');
    assert.equal(common.tlsCertificateSdsSecretConfigs[0]?.sdsConfig.apiConfigSource.grpcServices[0]?.envoyGrpc.clusterName, 'sds-grpc');
    assert.equal(common.combinedValidationContext.validationContextSdsSecretConfig.name, 'ROOTCA');
    assert.deepEqual(common.combinedValidationContext.defaultValidationContext, {
      matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane' } }],
    });
    // An IP control plane: STATIC cluster and no SNI (RFC 6066 forbids IP literals there).
    const byIp = JSON.parse(envoyBootstrapJson(buildSidecarBootstrap({ ...params, controlPlane: '127.0.0.1:15012' }))) as typeof json;
    const xdsIp = byIp.staticResources.clusters.find((c) => c['name'] === 'xds-grpc') as Record<string, unknown>;
    assert.equal(xdsIp['type'], 'STATIC');
    assert.equal((xdsIp['transportSocket'] as { typedConfig: Record<string, unknown> }).typedConfig['sni'], undefined);
  });

  void it('is accepted by Envoy 1.40 itself (--mode validate), for a DNS and an IP control plane', async () => {
    for (const controlPlane of ['cp.mesh.internal:15012', '127.0.0.1:15012', '[::1]:15012']) {
      const file = path.join(dir, 'bootstrap.json');
      await writeEnvoyBootstrap(file, buildSidecarBootstrap({ ...params, controlPlane }));
      assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
      const res = await envoyValidate(file);
      assert.equal(res.code, 0, res.output);
      assert.match(res.output, /OK/);
    }
  });

  void it('uses state-of-the-world ADS by default and delta ADS (DELTA_GRPC) with xdsMode delta, which Envoy accepts', async () => {
    const apiType = (p: SidecarBootstrapParams) =>
      (JSON.parse(envoyBootstrapJson(buildSidecarBootstrap(p))) as { dynamicResources: { adsConfig: { apiType: string } } }).dynamicResources.adsConfig.apiType;
    assert.equal(apiType(params), 'GRPC');
    assert.equal(apiType({ ...params, xdsMode: 'sotw' }), 'GRPC');
    assert.equal(apiType({ ...params, xdsMode: 'delta' }), 'DELTA_GRPC');
    const file = path.join(dir, 'delta.json');
    await writeEnvoyBootstrap(file, buildSidecarBootstrap({ ...params, xdsMode: 'delta' }));
    const res = await envoyValidate(file);
    assert.equal(res.code, 0, res.output);
  });

  void it('Envoy --mode validate does reject a broken bootstrap (so the check above means something)', async () => {
    const file = path.join(dir, 'broken.json');
    const broken = buildSidecarBootstrap(params);
    (broken['dynamicResources'] as { adsConfig: { grpcServices: { envoyGrpc: { clusterName: string } }[] } }).adsConfig.grpcServices[0]!.envoyGrpc.clusterName = 'no-such-cluster';
    await writeEnvoyBootstrap(file, broken);
    const res = await envoyValidate(file);
    assert.notEqual(res.code, 0);
  });

  void it('refuses a misspelt field before writing, naming its path', async () => {
    const bad = { ...buildSidecarBootstrap(params), staticResources: { clusters: [{ ...sdsCluster('/tmp/x.sock'), conectTimeout: { seconds: 1 } }] } };
    const file = path.join(dir, 'bad.json');
    await assert.rejects(writeEnvoyBootstrap(file, bad), (err: unknown) => err instanceof UnknownFieldError && /staticResources\.clusters\[0\]\.conectTimeout/.test(err.message));
    await assert.rejects(fs.stat(file), { code: 'ENOENT' });
  });

  void it('refuses a control plane address that is not host:port', () => {
    assert.throws(() => buildSidecarBootstrap({ ...params, controlPlane: 'cp.mesh.internal' }), /not host:port/);
  });
});
