/**
 * Protocol conformance for ztunnel: the real control plane (`startControlPlane`, TLS on
 * 127.0.0.1, YAML config dir) against test/helpers/ztunnel-client.ts, a client that behaves like
 * ztunnel's xDS client (delta ADS, bearer token, wildcard Address and Authorization, ACK/NACK,
 * reconnect with initial_resource_versions, on-demand Address). Every response is decoded with
 * the `istio.workload`/`istio.security` messages and checked as ztunnel would; the assertions
 * are on what ztunnel ends up holding.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createAdminToken } from '../../src/api/admin-tokens.js';
import { startControlPlane, type ControlPlane } from '../../src/cli/serve/control-plane.js';
import { openStore } from '../../src/store/index.js';
import { TokenAuthority } from '../../src/identity/tokens.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ADDRESS_TYPE, AUTHORIZATION_TYPE, ZtunnelXdsClient, type ProcessedResponse, type ZtunnelClientOptions } from '../helpers/ztunnel-client.js';
import { eventually } from '../helpers/skiff.js';

const TD = 'cluster.local';
const UID = (name: string) => `skiff/networking.istio.io/WorkloadEntry/shop/${name}`;

function meshYaml(opts: { withC?: boolean; bPort?: number } = {}): string {
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: shop, annotations: {ambient.istio.io/redirection: enabled}}
spec: {address: 127.0.0.11, serviceAccount: frontend, labels: {app: frontend}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b, namespace: shop, labels: {networking.istio.io/tunnel: http}}
spec: {address: 127.0.0.12, serviceAccount: backend, labels: {app: backend}, ports: {http: ${opts.bPort ?? 9080}}}
---
${
  opts.withC
    ? `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: c, namespace: shop}
spec: {address: 127.0.0.13, serviceAccount: backend, labels: {app: backend}}
---`
    : ''
}
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: shop}
spec:
  hosts: [backend.shop.svc.cluster.local]
  addresses: [10.96.1.1]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: backend}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: backend-from-frontend, namespace: shop}
spec:
  selector: {matchLabels: {app: backend}}
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/frontend]}}]}]
`;
}

function writeMesh(dir: string, text: string): void {
  const tmp = path.join(dir, '.mesh.yaml.tmp');
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, 'mesh.yaml'));
}

function workloadOf(r: ProcessedResponse, name: string): Record<string, unknown> | undefined {
  return r.resources.find((x) => x.name === name)?.value['workload'] as Record<string, unknown> | undefined;
}

async function metricTotal(cp: ControlPlane, metric: 'xdsAcks' | 'xdsRejects' | 'xdsPushes', type: string): Promise<number> {
  const { values } = await cp.metrics[metric].get();
  return values.filter((v) => v.labels['type'] === type).reduce((a, v) => a + v.value, 0);
}

void describe('ztunnel protocol conformance (delta ADS, Address and Authorization)', { timeout: 120_000 }, () => {
  let tmp: string;
  let meshDir: string;
  let cp: ControlPlane;
  let session: string;
  let singleUse: string;
  let adminToken: string;
  const clients: ZtunnelXdsClient[] = [];

  const client = (over: Partial<ZtunnelClientOptions> = {}): ZtunnelXdsClient => {
    const c = new ZtunnelXdsClient({
      address: `127.0.0.1:${cp.grpcPort}`,
      rootCaPem: cp.trustBundlePem,
      token: session,
      pod: { name: 'a', namespace: 'shop', ip: '127.0.0.11' },
      ...over,
    });
    clients.push(c);
    return c;
  };

  /** A barrier: asks for a name that does not exist; its removal comes after everything before. */
  let probes = 0;
  const settle = async (c: ZtunnelXdsClient): Promise<void> => {
    await c.demand(`probe/${++probes}`);
  };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-zt-'));
    meshDir = path.join(tmp, 'mesh');
    fs.mkdirSync(meshDir);
    writeMesh(meshDir, meshYaml());
    const store = openStore({ dataDir: path.join(tmp, 'data'), logger: silentLogger() });
    adminToken = (await createAdminToken(store.adminTokens, {}, 'test')).token;
    await store.close();
    cp = await startControlPlane({
      configDir: meshDir,
      dataDir: path.join(tmp, 'data'),
      trustDomain: TD,
      listenAddress: '127.0.0.1',
      grpcPort: 0,
      monitoringPort: 0,
      apiPort: 0,
      dnsNames: [],
      ipAddresses: [],
      tokenAudiences: [],
      logger: silentLogger(),
    });
    const tokens = await TokenAuthority.open({ dataDir: path.join(tmp, 'data'), trustDomain: TD, logger: silentLogger() });
    session = (await tokens.create({ namespace: 'shop', serviceAccount: 'frontend', ttlSeconds: 600 })).token;
    singleUse = (await tokens.create({ namespace: 'shop', serviceAccount: 'frontend', ttlSeconds: 600, singleUse: true })).token;
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await cp?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses a ztunnel without a token, with a single-use bootstrap token, or claiming another namespace', async () => {
    const none = client({ token: undefined });
    none.connect();
    assert.equal((await none.ended()).code, grpc.status.UNAUTHENTICATED);
    const once = client({ token: singleUse });
    once.connect();
    const status = await once.ended();
    assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    assert.match(status.details, /single-use/);
    const liar = client({ pod: { name: 'x', namespace: 'payments', ip: '127.0.0.99' } });
    liar.connect();
    assert.equal((await liar.ended()).code, grpc.status.PERMISSION_DENIED);
    const garbage = client({ token: 'not.a.jwt' });
    garbage.connect();
    assert.equal((await garbage.ended()).code, grpc.status.UNAUTHENTICATED);
  });

  it('wildcard subscription to both types: every resource decodes as ztunnel expects, both are ACKed and the client is ready', async () => {
    const zt = client();
    zt.connect();
    await zt.whenReady();
    const first = zt.responses();
    assert.deepEqual(first.map((r) => r.typeUrl).sort(), [ADDRESS_TYPE, AUTHORIZATION_TYPE].sort());
    assert.ok(first.every((r) => r.nack === undefined && r.removed.length === 0 && r.nonce !== ''), JSON.stringify(first.map((r) => r.nack)));
    const addresses = zt.state.get(ADDRESS_TYPE)!;
    assert.deepEqual([...addresses.keys()].sort(), [UID('a'), UID('b'), 'shop/backend.shop.svc.cluster.local'].sort());
    const a = addresses.get(UID('a'))!.value['workload'] as Record<string, unknown>;
    assert.deepEqual(a['addresses'], [Buffer.from([127, 0, 0, 11]).toString('base64')], 'raw 4-byte address');
    assert.equal(a['tunnelProtocol'], 'HBONE', 'traffic through ztunnel');
    assert.equal(a['serviceAccount'], 'frontend');
    assert.deepEqual(a['authorizationPolicies'], ['skiff-system/istio_converted_static_strict']);
    assert.deepEqual(addresses.get(UID('a'))!.aliases, ['/127.0.0.11']);
    const b = addresses.get(UID('b'))!.value['workload'] as Record<string, unknown>;
    assert.equal(b['nativeTunnel'], true, 'an HBONE-capable sidecar');
    assert.deepEqual(b['services'], { 'shop/backend.shop.svc.cluster.local': { ports: [{ servicePort: 8080, targetPort: 9080 }] } });
    assert.deepEqual(b['authorizationPolicies'], ['shop/backend-from-frontend', 'skiff-system/istio_converted_static_strict']);
    const svc = addresses.get('shop/backend.shop.svc.cluster.local')!.value['service'] as Record<string, unknown>;
    assert.equal(svc['hostname'], 'backend.shop.svc.cluster.local');
    assert.deepEqual([...zt.state.get(AUTHORIZATION_TYPE)!.keys()].sort(), ['shop/backend-from-frontend', 'skiff-system/istio_converted_static_strict']);
    const requests = zt.requests();
    assert.deepEqual(
      requests.slice(2, 4).map((r) => Object.keys(r).sort()),
      [
        ['responseNonce', 'typeUrl'],
        ['responseNonce', 'typeUrl'],
      ],
      'ACKs carry only type_url and response_nonce',
    );
    await eventually('ACKs counted for both types', async () => (await metricTotal(cp, 'xdsAcks', 'istio.workload.Address')) > 0 && (await metricTotal(cp, 'xdsAcks', 'istio.security.Authorization')) > 0);
    await eventually('the ztunnel is synced in /debug/syncz', async () => {
      const res = await fetch(`http://127.0.0.1:${cp.monitoringPort}/debug/syncz`);
      const body = (await res.json()) as { proxies: { nodeId: string; synced: boolean }[] };
      return body.proxies.find((p) => p.nodeId === zt.nodeId)?.synced === true;
    });
    zt.disconnect();
  });

  it('changes arrive as deltas: only a changed workload is sent, a deleted one is removed; a bad resource is NACKed once, not resent', async () => {
    const zt = client({ reject: (typeUrl, name) => (typeUrl === ADDRESS_TYPE && name === UID('c') ? 'test refuses workload c' : undefined) });
    zt.connect();
    await zt.whenReady();
    const rejectsBefore = await metricTotal(cp, 'xdsRejects', 'istio.workload.Address');
    const changed = zt.next((r) => r.typeUrl === ADDRESS_TYPE && r.resources.some((x) => x.name === UID('b')));
    writeMesh(meshDir, meshYaml({ bPort: 9081 }));
    const update = await changed;
    assert.deepEqual(update.resources.map((x) => x.name), [UID('b')], 'only the changed workload');
    assert.deepEqual(workloadOf(update, UID('b'))?.['services'], { 'shop/backend.shop.svc.cluster.local': { ports: [{ servicePort: 8080, targetPort: 9081 }] } });
    const withC = zt.next((r) => r.typeUrl === ADDRESS_TYPE && r.nack !== undefined);
    writeMesh(meshDir, meshYaml({ bPort: 9081, withC: true }));
    const nacked = await withC;
    assert.match(nacked.nack ?? '', /test refuses workload c/);
    await eventually('the NACK counted', async () => (await metricTotal(cp, 'xdsRejects', 'istio.workload.Address')) === rejectsBefore + 1);
    const count = zt.responses().length;
    await settle(zt);
    assert.equal(zt.responses().length, count + 1, 'nothing but the barrier: the rejected resource is not resent');
    assert.equal(zt.known.get(ADDRESS_TYPE)?.has(UID('c')), false, 'a rejected resource is not held');
    const removal = zt.next((r) => r.typeUrl === ADDRESS_TYPE && r.removed.length > 0);
    writeMesh(meshDir, meshYaml({ bPort: 9081 }));
    assert.deepEqual((await removal).removed, [UID('c')]);
    zt.disconnect();
  });

  it('reconnect with initial_resource_versions: the new stream sends only what changed meanwhile and removes what is gone', async () => {
    writeMesh(meshDir, meshYaml({ withC: true }));
    const zt = client();
    zt.connect();
    await zt.whenReady();
    await eventually('c is known', async () => zt.known.get(ADDRESS_TYPE)?.has(UID('c')) === true || (await settle(zt), false));
    zt.disconnect();
    writeMesh(meshDir, meshYaml({ bPort: 9090 }));
    await eventually('the registry saw the change', async () => cp.registry.current().workloadEntries.every((w) => w.metadata.name !== 'c'));
    zt.connect();
    const resync = await zt.next((r) => r.connection === 2 && r.typeUrl === ADDRESS_TYPE);
    const sent = zt.requests().filter((r) => r.node !== undefined || r.initialResourceVersions !== undefined);
    const initial = sent.filter((r) => r.typeUrl === ADDRESS_TYPE).at(-1);
    assert.ok(Object.keys(initial?.initialResourceVersions ?? {}).includes(UID('c')), 'the reconnect declared what it held');
    assert.deepEqual(resync.resources.map((x) => x.name), [UID('b')], 'a, the service and the unchanged ones are not resent');
    assert.deepEqual(resync.removed, [UID('c')]);
    const authz = await zt.next((r) => r.connection === 2 && r.typeUrl === AUTHORIZATION_TYPE).catch(() => undefined);
    assert.ok(authz === undefined || authz.resources.length === 0, 'unchanged policies are not resent');
    zt.disconnect();
  });

  it('revoking the token a ztunnel stream was opened with ends that stream, and the token no longer opens one', async () => {
    const res = await fetch(`http://127.0.0.1:${cp.apiPort}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'shop', serviceAccount: 'frontend' }),
    });
    assert.equal(res.status, 201);
    const issued = (await res.json()) as { token: string; jti: string };
    const revoked = client({ token: issued.token });
    const kept = client();
    revoked.connect();
    kept.connect();
    await revoked.whenReady();
    await kept.whenReady();
    const del = await fetch(`http://127.0.0.1:${cp.apiPort}/v1/tokens/${issued.jti}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(del.status, 200);
    const ended = await revoked.ended();
    assert.equal(ended.code, grpc.status.UNAVAILABLE);
    assert.match(ended.details, /revoked/);
    revoked.connect();
    const refused = await revoked.ended();
    assert.equal(refused.code, grpc.status.UNAUTHENTICATED);
    assert.match(refused.details, /revoked/);
    await settle(kept); // the stream of another token is still served
    kept.disconnect();
    revoked.disconnect();
  });

  it('on-demand: Address starts with nothing, a name or alias is sent when asked, a missing one is removed, and an unsubscribed one is no longer pushed', async () => {
    const zt = client({ onDemand: true });
    zt.connect();
    await zt.whenReady();
    const firstAddress = zt.responses().find((r) => r.typeUrl === ADDRESS_TYPE);
    assert.ok(firstAddress, 'Address is answered even when subscribed to nothing');
    assert.deepEqual(firstAddress.resources, []);
    assert.deepEqual(firstAddress.removed, []);
    const byUid = await zt.demand(UID('a'));
    assert.deepEqual(byUid.resources.map((x) => x.name), [UID('a')]);
    const byAlias = await zt.demand('/127.0.0.12');
    assert.deepEqual(byAlias.resources.map((x) => x.name), [UID('b')]);
    assert.deepEqual(byAlias.resources[0]?.aliases, ['/127.0.0.12']);
    const missing = await zt.demand('/127.0.0.250');
    assert.deepEqual(missing.removed, ['/127.0.0.250']);
    assert.deepEqual(missing.resources, []);
    assert.deepEqual([...zt.state.get(ADDRESS_TYPE)!.keys()].sort(), [UID('a'), UID('b')]);
    // Only subscribed names are pushed: b (by alias) changes and is pushed; after unsubscribing a, a's change is not.
    const pushed = zt.next((r) => r.typeUrl === ADDRESS_TYPE && r.resources.some((x) => x.name === UID('b')));
    writeMesh(meshDir, meshYaml({ bPort: 9091 }));
    assert.deepEqual((await pushed).resources.map((x) => x.name), [UID('b')]);
    zt.undemand(UID('a'));
    await settle(zt);
    const count = zt.responses().length;
    writeMesh(meshDir, meshYaml({ bPort: 9091 }).replace('serviceAccount: frontend', 'serviceAccount: frontend-v2'));
    await eventually('the registry saw the change', async () => cp.registry.current().workloadEntries.some((w) => w.spec.serviceAccount === 'frontend-v2'));
    await settle(zt);
    assert.equal(zt.responses().length, count + 1, 'nothing pushed for an unsubscribed workload');
    zt.disconnect();
  });
});

void describe('ztunnel readiness with an empty mesh', { timeout: 60_000 }, () => {
  let tmp: string;
  let cp: ControlPlane;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-zt-empty-'));
    fs.mkdirSync(path.join(tmp, 'mesh'));
    cp = await startControlPlane({
      configDir: path.join(tmp, 'mesh'),
      dataDir: path.join(tmp, 'data'),
      trustDomain: TD,
      listenAddress: '127.0.0.1',
      grpcPort: 0,
      monitoringPort: 0,
      apiPort: 0,
      dnsNames: [],
      ipAddresses: [],
      tokenAudiences: [],
      logger: silentLogger(),
    });
  });
  after(async () => {
    await cp?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('answers both types with empty responses, so ztunnel becomes ready', async () => {
    const tokens = await TokenAuthority.open({ dataDir: path.join(tmp, 'data'), trustDomain: TD, logger: silentLogger() });
    const token = (await tokens.create({ namespace: 'shop', serviceAccount: 'a', ttlSeconds: 60 })).token;
    const zt = new ZtunnelXdsClient({ address: `127.0.0.1:${cp.grpcPort}`, rootCaPem: cp.trustBundlePem, token, pod: { name: 'a', namespace: 'shop', ip: '127.0.0.11' } });
    try {
      zt.connect();
      await zt.whenReady();
      const responses = zt.responses();
      assert.deepEqual(responses.map((r) => r.typeUrl).sort(), [ADDRESS_TYPE, AUTHORIZATION_TYPE].sort());
      assert.ok(responses.every((r) => r.resources.length === 0 && r.removed.length === 0 && r.nack === undefined));
    } finally {
      zt.disconnect();
    }
  });
});
