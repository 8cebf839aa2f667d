/**
 * Bootstrap tokens through the API and the CA (issue 4 §4): expired, revoked, single-use
 * replayed, wrong audience and signed by another key are refused by the real CA gRPC service
 * (CreateCertificate over TLS) and shown as such by the API's token routes; the host CLI and the
 * API share one token store; revoking a token cuts off every certificate descending from it
 * (renewals refused) and, in the real control plane, closes their xDS streams at once.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createAdminToken } from '../../src/api/admin-tokens.js';
import { meshChannelCredentials } from '../../src/ca/credentials.js';
import { TokenAuthority } from '../../src/identity/tokens.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startControlPlane, type ControlPlane } from '../../src/cli/serve/control-plane.js';
import { openStore } from '../../src/store/index.js';
import { TypeUrl } from '../../src/xds/protos/loader.js';
import { AdsTestClient } from '../helpers/ads-client.js';
import { requestCertificate, startApiHarness, TD, type ApiHarness } from '../helpers/api.js';
import { REPO, SKIFF } from '../helpers/skiff.js';

const WEB = `spiffe://${TD}/ns/shop/sa/web`;

/** Asserts CreateCertificate was refused with UNAUTHENTICATED and a message matching `why`. */
async function refusedByCa(p: Promise<unknown>, why: RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.message);
    assert.match(err.details, why);
    return true;
  });
}

function leafChain(chain: string[]): string {
  return chain.slice(0, -1).join('');
}

describe('bootstrap tokens: API, host CLI and CA share one store', () => {
  let h: ApiHarness;
  let ca: string;
  const tokenStatus = async (jti: string) => ((await h.request('GET', '/v1/tokens')).json as { items: { jti: string; status: string }[] }).items.find((t) => t.jti === jti)?.status;
  const apiToken = async (body: Record<string, unknown>) => {
    const res = await h.request('POST', '/v1/tokens', { body: { namespace: 'shop', serviceAccount: 'web', ...body } });
    assert.equal(res.status, 201, res.text);
    return res.json as { token: string; jti: string };
  };

  before(async () => {
    h = await startApiHarness({ caService: true });
    ca = h.caAddress!;
  });
  after(async () => {
    await h?.close();
  });

  it('a token from the API gets a certificate; a bootstrap token is no admin token (401 at the API)', async () => {
    const { token } = await apiToken({});
    const { chain } = await requestCertificate(ca, h.trustBundlePem, WEB, { token });
    assert.ok(chain.length >= 2);
    assert.equal((await h.request('GET', '/v1/whoami', { token })).status, 401);
  });

  it('expired: refused by the CA, listed as expired', async () => {
    const past = await TokenAuthority.open({ dataDir: h.dataDir, trustDomain: TD, logger: silentLogger(), state: h.store.tokens, clock: () => new Date(Date.now() - 2 * 3600e3) });
    const { token, jti } = await past.create({ namespace: 'shop', serviceAccount: 'web', ttlSeconds: 60, createdBy: 'test' });
    await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { token }), /bootstrap token refused: token expired/);
    assert.equal(await tokenStatus(jti), 'expired');
  });

  it('revoked through the API: refused by the CA at once', async () => {
    const { token, jti } = await apiToken({});
    assert.equal((await h.request('DELETE', `/v1/tokens/${jti}`)).status, 200);
    await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { token }), new RegExp(`token ${jti} was revoked`));
    assert.equal(await tokenStatus(jti), 'revoked');
  });

  it('single-use: the CA accepts it once and refuses the replay; listed as used', async () => {
    const { token, jti } = await apiToken({ singleUse: true });
    await requestCertificate(ca, h.trustBundlePem, WEB, { token });
    await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { token }), /already used/);
    assert.equal(await tokenStatus(jti), 'used');
  });

  it('wrong audience: a token the API issued for another audience is refused by the CA', async () => {
    const { token } = await apiToken({ audience: 'some-other-ca' });
    await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { token }), /audience is not accepted/);
  });

  it('signed by another key: refused by the CA, unknown to the API (404 on revoke)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-forger-'));
    try {
      const forger = await TokenAuthority.open({ dataDir: dir, trustDomain: TD, logger: silentLogger() });
      const { token, jti } = await forger.create({ namespace: 'shop', serviceAccount: 'web' });
      await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { token }), /signature does not verify/);
      assert.equal((await h.request('DELETE', `/v1/tokens/${jti}`)).status, 404);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('skiff token create on the host and the API share one store: listed by the API, revoked on the host, refused by the CA', async () => {
    const [cmd, ...pre] = SKIFF as [string, ...string[]];
    const run = (args: string[]) => execFileSync(cmd, [...pre, ...args, '--data-dir', h.dataDir], { cwd: REPO, encoding: 'utf8', env: { ...process.env, SKIFF_SERVER: '' } });
    const token = run(['token', 'create', '--namespace', 'shop', '--service-account', 'web', '--ttl', '10m']).trim();
    const { jti } = await h.tokens.verify(token);
    const listed = ((await h.request('GET', '/v1/tokens')).json as { items: { jti: string; createdBy: string }[] }).items.find((t) => t.jti === jti);
    assert.match(listed?.createdBy ?? '', /^host:/);
    assert.match(run(['token', 'list']), new RegExp(`${jti}\\s+${WEB.replace(/[/.]/g, '\\$&')}\\s+active`));
    await requestCertificate(ca, h.trustBundlePem, WEB, { token });
    run(['token', 'revoke', jti]);
    await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { token }), /was revoked/);
  });

  it('revoking a token cuts off its certificates: renewals with them (and with their renewals) are refused', async () => {
    const { token, jti } = await apiToken({});
    const first = await requestCertificate(ca, h.trustBundlePem, WEB, { token });
    const firstSvid = { certChainPem: leafChain(first.chain), keyPem: first.keyPem };
    const renewed = await requestCertificate(ca, h.trustBundlePem, WEB, { svid: firstSvid });
    const renewedSvid = { certChainPem: leafChain(renewed.chain), keyPem: renewed.keyPem };
    // Another token's certificate is not affected.
    const other = await apiToken({});
    const otherCert = await requestCertificate(ca, h.trustBundlePem, WEB, { token: other.token });
    assert.equal((await h.request('DELETE', `/v1/tokens/${jti}`)).status, 200);
    await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { svid: renewedSvid }), new RegExp(`issued with bootstrap token ${jti}, which was revoked`));
    await refusedByCa(requestCertificate(ca, h.trustBundlePem, WEB, { svid: firstSvid }), /which was revoked/);
    await requestCertificate(ca, h.trustBundlePem, WEB, { svid: { certChainPem: leafChain(otherCert.chain), keyPem: otherCert.keyPem } });
  });
});

describe('revoking a token in the running control plane closes the xDS streams of its certificates', () => {
  let root: string;
  let cp: ControlPlane;
  let adminToken: string;
  let api: string;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-revoke-'));
    const dataDir = path.join(root, 'data');
    fs.mkdirSync(path.join(root, 'mesh'), { recursive: true });
    // An admin token made on the host before the first start: nothing is announced on stderr.
    const store = openStore({ dataDir, logger: silentLogger() });
    adminToken = (await createAdminToken(store.adminTokens, {}, 'test')).token;
    await store.close();
    cp = await startControlPlane({
      configDir: path.join(root, 'mesh'),
      dataDir,
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
    api = `http://127.0.0.1:${cp.apiPort}`;
  });
  after(async () => {
    await cp?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function connect(svid: { certChainPem: string; keyPem: string }): Promise<AdsTestClient> {
    return AdsTestClient.connect({
      address: `127.0.0.1:${cp.grpcPort}`,
      node: { id: 'sidecar~127.0.0.1~vm-1.shop~shop.svc.cluster.local', metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'web' } },
      credentials: meshChannelCredentials({ trustBundlePem: cp.trustBundlePem, ...svid }),
    });
  }

  it('the stream ends with UNAVAILABLE, a reconnect is refused, a stream of another token stays', async () => {
    const issue = async () => {
      const res = await fetch(`${api}/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'shop', serviceAccount: 'web' }) });
      assert.equal(res.status, 201);
      return (await res.json()) as { token: string; jti: string };
    };
    const revokedToken = await issue();
    const keptToken = await issue();
    const address = `127.0.0.1:${cp.grpcPort}`;
    const a = await requestCertificate(address, cp.trustBundlePem, WEB, { token: revokedToken.token });
    const b = await requestCertificate(address, cp.trustBundlePem, WEB, { token: keptToken.token });
    const svidA = { certChainPem: leafChain(a.chain), keyPem: a.keyPem };
    const svidB = { certChainPem: leafChain(b.chain), keyPem: b.keyPem };
    const adsA = await connect(svidA);
    const adsB = await connect(svidB);
    try {
      adsA.subscribe(TypeUrl.Cluster);
      adsB.subscribe(TypeUrl.Cluster);
      await adsA.next(TypeUrl.Cluster);
      await adsB.next(TypeUrl.Cluster);

      const res = await fetch(`${api}/v1/tokens/${revokedToken.jti}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } });
      assert.equal(res.status, 200);
      const ended = await adsA.ended();
      assert.equal(ended.code, grpc.status.UNAVAILABLE);
      assert.match(ended.details, /bootstrap token of this certificate was revoked/);

      const again = await connect(svidA);
      try {
        again.subscribe(TypeUrl.Cluster);
        const refused = await again.ended();
        assert.equal(refused.code, grpc.status.PERMISSION_DENIED);
        assert.match(refused.details, new RegExp(`bootstrap token ${revokedToken.jti}, which was revoked`));
      } finally {
        again.close();
      }
      // The other proxy's stream is still served.
      assert.deepEqual(await adsB.settle(), []);
    } finally {
      adsA.close();
      adsB.close();
    }
  });
});
