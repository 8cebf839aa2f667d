import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import crypto, { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { silentLogger } from '../observability/logger.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../observability/metrics.js';
import { generateKeyAndCsr } from '../identity/csr.js';
import { CONTROL_PLANE_SPIFFE_ID } from '../identity/spiffe.js';
import { TokenAuthority } from '../identity/tokens.js';
import { CertificateAuthority } from './authority.js';
import { MeshCertificateProvider, meshChannelCredentials, meshServerCredentials } from './credentials.js';
import { CREATE_CERTIFICATE_PATH, caServiceDefinition, createCaService, peerSpiffeIdFromCall, type IstioCertificateRequest, type IstioCertificateResponse } from './service.js';

const TD = 'cluster.local';
const ALICE = `spiffe://${TD}/ns/shop/sa/alice`;
const BOB = `spiffe://${TD}/ns/shop/sa/bob`;
const CP_ID = CONTROL_PLANE_SPIFFE_ID(TD);

interface Harness {
  dataDir: string;
  ca: CertificateAuthority;
  tokens: TokenAuthority;
  metrics: ControlPlaneMetrics;
  address: string;
  /** SPIFFE IDs a second test-only method saw via peerSpiffeIdFromCall. */
  stop(): Promise<void>;
}

/** Starts the CA service on 127.0.0.1 (ephemeral port) with real TLS, as the control plane does. */
async function startCaServer(dataDir: string, opts: { caDir?: string; servingDns?: string[]; servingIps?: string[]; trustedNodeAccounts?: string[] } = {}): Promise<Harness> {
  const logger = silentLogger();
  const ca = await CertificateAuthority.loadOrCreate({ dataDir, trustDomain: TD, logger, ...(opts.caDir ? { caDir: opts.caDir } : {}) });
  const tokens = await TokenAuthority.open({ dataDir, trustDomain: TD, logger });
  const metrics = createControlPlaneMetrics();
  const trustBundlePem = ca.trustBundlePem();
  const service = createCaService({ ca, tokens, trustBundlePem, logger, metrics, ...(opts.trustedNodeAccounts ? { trustedNodeAccounts: opts.trustedNodeAccounts } : {}) });
  const serving = await ca.issueServingCert({ spiffeId: CP_ID, dnsNames: opts.servingDns ?? ['localhost'], ipAddresses: opts.servingIps ?? ['127.0.0.1'], ttlSeconds: 3600 });
  const server = new grpc.Server();
  server.addService(service.definition, service.implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', meshServerCredentials({ certChainPem: serving.certChainPem, keyPem: serving.keyPem, trustBundlePem }), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    dataDir,
    ca,
    tokens,
    metrics,
    address: `127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

interface CallOptions {
  token?: string;
  /** Client SVID for mTLS: chain PEM (leaf first) and key. */
  svid?: { certChainPem: string; keyPem: string };
  trustBundlePem: string;
  expectedServerSpiffeId?: string;
  /** Extra call metadata (e.g. ztunnel's `clusterid`). */
  metadata?: Record<string, string>;
}

/** Calls CreateCertificate with a real grpc-js client over TLS; resolves the response or rejects with the ServiceError. */
async function createCertificate(address: string, req: IstioCertificateRequest, opts: CallOptions): Promise<IstioCertificateResponse> {
  const def = caServiceDefinition()['CreateCertificate'] as grpc.MethodDefinition<IstioCertificateRequest, IstioCertificateResponse>;
  const creds = meshChannelCredentials({
    trustBundlePem: opts.trustBundlePem,
    ...(opts.svid ? { certChainPem: opts.svid.certChainPem, keyPem: opts.svid.keyPem } : {}),
    ...(opts.expectedServerSpiffeId ? { expectedServerSpiffeId: opts.expectedServerSpiffeId } : {}),
  });
  const client = new grpc.Client(address, creds);
  const md = new grpc.Metadata();
  if (opts.token !== undefined) md.set('authorization', `Bearer ${opts.token}`);
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  try {
    return await new Promise<IstioCertificateResponse>((resolve, reject) => {
      client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, def.requestSerialize, def.responseDeserialize, req, md, { deadline: Date.now() + 10_000 }, (err, res) =>
        err || !res ? reject(err ?? new Error('empty response')) : resolve(res),
      );
    });
  } finally {
    client.close();
  }
}

async function refusedWith(p: Promise<unknown>, code: grpc.status, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const e = err as grpc.ServiceError;
    assert.equal(e.code, code, `expected ${grpc.status[code]}, got ${grpc.status[e.code]}: ${e.details}`);
    if (re) assert.match(e.details, re);
    return true;
  });
}

function leafSans(chain: string[]): x509.JsonGeneralNames {
  return new x509.X509Certificate(chain[0] ?? '').getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
}

async function outcomeCount(metrics: ControlPlaneMetrics, outcome: string): Promise<number> {
  const m = await metrics.csrSigned.get();
  return m.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('CreateCertificate over gRPC with TLS', () => {
  let root: string;
  let h: Harness;
  let bundle: string;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ca-svc-'));
    h = await startCaServer(path.join(root, 'data'));
    bundle = h.ca.trustBundlePem();
  });
  after(async () => {
    await h.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('a bootstrap token gets an SVID for the token identity: one URI SAN, chain ending with the root', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const res = await createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle, expectedServerSpiffeId: CP_ID });
    assert.deepEqual(leafSans(res.certChain), [{ type: 'url', value: ALICE }]);
    assert.equal(res.certChain.at(-1), bundle);
    const leaf = new x509.X509Certificate(res.certChain[0] ?? '');
    assert.ok(leaf.notAfter.getTime() - leaf.notBefore.getTime() <= 24 * 3600e3);
  });

  it('validity_duration sets the lifetime', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const res = await createCertificate(h.address, { csr: csrPem, validityDuration: 600 }, { token, trustBundlePem: bundle });
    const leaf = new x509.X509Certificate(res.certChain[0] ?? '');
    assert.equal((leaf.notAfter.getTime() - leaf.notBefore.getTime()) / 1000, 600);
  });

  it('a CSR without SANs gets the identity from the token, not from the CSR', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({});
    const res = await createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle });
    assert.deepEqual(leafSans(res.certChain), [{ type: 'url', value: ALICE }]);
  });

  it('RSA 2048 and ECDSA P-256 CSRs are both accepted', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    for (const keyType of ['rsa-2048', 'ecdsa-p256'] as const) {
      const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE, keyType });
      const res = await createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle });
      assert.deepEqual(leafSans(res.certChain), [{ type: 'url', value: ALICE }]);
    }
  });

  it('a CSR asking for another identity than the token is PERMISSION_DENIED', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: BOB });
    const denied = await outcomeCount(h.metrics, 'denied');
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.PERMISSION_DENIED, /sa\/bob.*sa\/alice/);
    assert.equal(await outcomeCount(h.metrics, 'denied'), denied + 1);
  });

  it('a CSR with two SANs is INVALID_ARGUMENT', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({ sans: [{ type: 'url', value: ALICE }, { type: 'url', value: BOB }] });
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.INVALID_ARGUMENT, /at most one SAN/);
  });

  it('a TTL above 90 days is INVALID_ARGUMENT', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 91 * 86400 }, { token, trustBundlePem: bundle }), grpc.status.INVALID_ARGUMENT, /90 days/);
  });

  it('a request that is not a CSR is INVALID_ARGUMENT', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    await refusedWith(createCertificate(h.address, { csr: 'not a csr', validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.INVALID_ARGUMENT);
  });

  it('an expired token is UNAUTHENTICATED with "token expired"', async () => {
    const past = await TokenAuthority.open({ dataDir: h.dataDir, trustDomain: TD, logger: silentLogger(), clock: () => new Date(Date.now() - 2 * 3600e3) });
    const { token } = await past.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 3600 });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    const before = await outcomeCount(h.metrics, 'unauthenticated');
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED, /token expired/);
    assert.equal(await outcomeCount(h.metrics, 'unauthenticated'), before + 1);
  });

  it('a token signed with another key is UNAUTHENTICATED', async () => {
    const forger = await TokenAuthority.open({ dataDir: path.join(root, 'forger'), trustDomain: TD, logger: silentLogger() });
    const { token } = await forger.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED, /signature/);
  });

  it('a token for another audience is UNAUTHENTICATED', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice', audience: 'someone-else' });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED, /audience/);
  });

  it('no token and no client certificate is UNAUTHENTICATED and says what to send', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED, /Bearer.*SVID/);
  });

  it('an authorization header that is not a bearer token is UNAUTHENTICATED', async () => {
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token: '', trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED, /Bearer/);
  });

  it('a single-use token works once; a replay is refused, also after the control plane restarts', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice', singleUse: true });
    const req = { csr: (await generateKeyAndCsr({ spiffeId: ALICE })).csrPem, validityDuration: 0 };
    await createCertificate(h.address, req, { token, trustBundlePem: bundle });
    await refusedWith(createCertificate(h.address, req, { token, trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED, /already used/);
    const restarted = await startCaServer(h.dataDir);
    try {
      await refusedWith(createCertificate(restarted.address, req, { token, trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED, /already used/);
    } finally {
      await restarted.stop();
    }
  });

  it('a single-use token spent on a refused CSR is not consumed', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice', singleUse: true });
    const wrong = await generateKeyAndCsr({ spiffeId: BOB });
    await refusedWith(createCertificate(h.address, { csr: wrong.csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.PERMISSION_DENIED);
    const right = await generateKeyAndCsr({ spiffeId: ALICE });
    await createCertificate(h.address, { csr: right.csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle });
  });

  it('renewal over mTLS with the current SVID works without a token and keeps the identity', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 60 });
    const first = await generateKeyAndCsr({ spiffeId: ALICE });
    const issued = await createCertificate(h.address, { csr: first.csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle });
    const svid = { certChainPem: issued.certChain.slice(0, -1).join(''), keyPem: first.keyPem };
    const second = await generateKeyAndCsr({ spiffeId: ALICE });
    const renewed = await createCertificate(h.address, { csr: second.csrPem, validityDuration: 0 }, { svid, trustBundlePem: bundle, expectedServerSpiffeId: CP_ID });
    assert.deepEqual(leafSans(renewed.certChain), [{ type: 'url', value: ALICE }]);
    assert.notEqual(renewed.certChain[0], issued.certChain[0]);
    // A renewal CSR naming someone else is refused even with a valid SVID.
    const other = await generateKeyAndCsr({ spiffeId: BOB });
    await refusedWith(createCertificate(h.address, { csr: other.csrPem, validityDuration: 0 }, { svid, trustBundlePem: bundle }), grpc.status.PERMISSION_DENIED);
  });

  it('an expired token does not strand a caller that still holds a valid SVID', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const first = await generateKeyAndCsr({ spiffeId: ALICE });
    const issued = await createCertificate(h.address, { csr: first.csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle });
    const past = await TokenAuthority.open({ dataDir: h.dataDir, trustDomain: TD, logger: silentLogger(), clock: () => new Date(Date.now() - 2 * 3600e3) });
    const expired = (await past.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 60 })).token;
    const svid = { certChainPem: issued.certChain[0] ?? '', keyPem: first.keyPem };
    const renewed = await createCertificate(h.address, { csr: (await generateKeyAndCsr({ spiffeId: ALICE })).csrPem, validityDuration: 0 }, { token: expired, svid, trustBundlePem: bundle });
    assert.deepEqual(leafSans(renewed.certChain), [{ type: 'url', value: ALICE }]);
  });

  it('an SVID from another CA is not accepted for renewal', async () => {
    const otherCa = await CertificateAuthority.loadOrCreate({ dataDir: path.join(root, 'other-ca'), trustDomain: TD, logger: silentLogger() });
    const k = await generateKeyAndCsr({ spiffeId: ALICE });
    const foreign = await otherCa.sign(k.csrPem, { spiffeId: ALICE });
    const svid = { certChainPem: foreign[0] ?? '', keyPem: k.keyPem };
    await refusedWith(createCertificate(h.address, { csr: k.csrPem, validityDuration: 0 }, { svid, trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED);
  });

  it('an expired SVID is not accepted for renewal', async () => {
    const pastCa = await CertificateAuthority.loadOrCreate({ dataDir: h.dataDir, trustDomain: TD, logger: silentLogger(), clock: () => new Date(Date.now() - 30 * 60e3) });
    const k = await generateKeyAndCsr({ spiffeId: ALICE });
    const old = await pastCa.sign(k.csrPem, { spiffeId: ALICE, ttlSeconds: 60 });
    const svid = { certChainPem: old[0] ?? '', keyPem: k.keyPem };
    await refusedWith(createCertificate(h.address, { csr: k.csrPem, validityDuration: 0 }, { svid, trustBundlePem: bundle }), grpc.status.UNAUTHENTICATED);
  });

  it('the agent side refuses a server whose certificate is not from the mesh root', async () => {
    const otherCa = await CertificateAuthority.loadOrCreate({ dataDir: path.join(root, 'other-ca-2'), trustDomain: TD, logger: silentLogger() });
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
    await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: otherCa.trustBundlePem() }), grpc.status.UNAVAILABLE);
  });
});

describe('mesh TLS credentials', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ca-cred-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('the agent side accepts the control plane by its SPIFFE ID when the dialed address is not among its SANs', async () => {
    const h = await startCaServer(path.join(root, 'a'), { servingDns: ['cp.internal'], servingIps: [] });
    try {
      const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
      const { csrPem } = await generateKeyAndCsr({ spiffeId: ALICE });
      const bundle = h.ca.trustBundlePem();
      await refusedWith(createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle }), grpc.status.UNAVAILABLE);
      await refusedWith(
        createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle, expectedServerSpiffeId: `spiffe://${TD}/ns/other/sa/impostor` }),
        grpc.status.UNAVAILABLE,
      );
      const res = await createCertificate(h.address, { csr: csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle, expectedServerSpiffeId: CP_ID });
      assert.equal(res.certChain.length, 2);
    } finally {
      await h.stop();
    }
  });

  it('with an Istio cacerts intermediate, issued chains end with its root and renewal over mTLS works', async () => {
    const caDir = path.join(root, 'cacerts');
    const rootPem = await writeCacertsWithIntermediate(caDir);
    const h = await startCaServer(path.join(root, 'b'), { caDir });
    try {
      const bundle = h.ca.trustBundlePem();
      assert.equal(bundle, rootPem);
      const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice' });
      const first = await generateKeyAndCsr({ spiffeId: ALICE });
      const issued = await createCertificate(h.address, { csr: first.csrPem, validityDuration: 0 }, { token, trustBundlePem: bundle, expectedServerSpiffeId: CP_ID });
      assert.equal(issued.certChain.length, 3);
      assert.equal(issued.certChain[2], rootPem);
      const svid = { certChainPem: issued.certChain.slice(0, -1).join(''), keyPem: first.keyPem };
      const renewed = await createCertificate(h.address, { csr: (await generateKeyAndCsr({ spiffeId: ALICE })).csrPem, validityDuration: 0 }, { svid, trustBundlePem: bundle });
      assert.deepEqual(leafSans(renewed.certChain), [{ type: 'url', value: ALICE }]);
    } finally {
      await h.stop();
    }
  });

  it('MeshCertificateProvider.update rotates the serving certificate for new connections', async () => {
    const dataDir = path.join(root, 'rotate');
    const ca = await CertificateAuthority.loadOrCreate({ dataDir, trustDomain: TD, logger: silentLogger() });
    const trustBundlePem = ca.trustBundlePem();
    const first = await ca.issueServingCert({ spiffeId: CP_ID, ipAddresses: ['127.0.0.1'], ttlSeconds: 3600 });
    const provider = new MeshCertificateProvider({ certChainPem: first.certChainPem, keyPem: first.keyPem, trustBundlePem });
    const server = new grpc.Server();
    server.addService(caServiceDefinition(), { CreateCertificate: ((_call: unknown, cb: grpc.sendUnaryData<IstioCertificateResponse>) => cb(null, { certChain: [] })) as grpc.UntypedHandleCall });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', meshServerCredentials(provider), (err, p) => (err ? reject(err) : resolve(p))));
    const servedSerial = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca: trustBundlePem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    try {
      const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;
      assert.equal(await servedSerial(), serialOf(first.certChainPem));
      const second = await ca.issueServingCert({ spiffeId: CP_ID, ipAddresses: ['127.0.0.1'], ttlSeconds: 3600 });
      provider.update({ certChainPem: second.certChainPem, keyPem: second.keyPem, trustBundlePem });
      assert.equal(await servedSerial(), serialOf(second.certChainPem));
    } finally {
      server.forceShutdown();
    }
  });

  it('peerSpiffeIdFromCall gives a handler the verified client SPIFFE ID, and undefined without a client certificate', async () => {
    const dataDir = path.join(root, 'c');
    const logger = silentLogger();
    const ca = await CertificateAuthority.loadOrCreate({ dataDir, trustDomain: TD, logger });
    const bundle = ca.trustBundlePem();
    const serving = await ca.issueServingCert({ spiffeId: CP_ID, ipAddresses: ['127.0.0.1'], ttlSeconds: 3600 });
    const seen: (string | undefined)[] = [];
    const def = caServiceDefinition();
    const server = new grpc.Server();
    server.addService(def, {
      CreateCertificate: ((call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, cb: grpc.sendUnaryData<IstioCertificateResponse>) => {
        seen.push(peerSpiffeIdFromCall(call, bundle));
        cb(null, { certChain: [] });
      }) as grpc.handleUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', meshServerCredentials({ certChainPem: serving.certChainPem, keyPem: serving.keyPem, trustBundlePem: bundle }), (err, p) => (err ? reject(err) : resolve(p)));
    });
    try {
      const k = await generateKeyAndCsr({ spiffeId: ALICE });
      const chain = await ca.sign(k.csrPem, { spiffeId: ALICE });
      const address = `127.0.0.1:${port}`;
      await createCertificate(address, { csr: '', validityDuration: 0 }, { svid: { certChainPem: chain[0] ?? '', keyPem: k.keyPem }, trustBundlePem: bundle });
      await createCertificate(address, { csr: '', validityDuration: 0 }, { trustBundlePem: bundle });
      assert.deepEqual(seen, [ALICE, undefined]);
    } finally {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  });
});

/** An Istio-style cacerts dir: a root and an intermediate signing CA (PKCS#8 key). Returns the root PEM. */
async function writeCacertsWithIntermediate(dir: string): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const subtle = globalThis.crypto.subtle;
  const rootKeys = await subtle.generateKey(alg, true, ['sign', 'verify']);
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=Istio, CN=Root CA',
    notBefore: new Date(Date.now() - 3600e3),
    notAfter: new Date(Date.now() + 365 * 86400e3),
    keys: rootKeys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey)],
  });
  const interKeys = await subtle.generateKey(alg, true, ['sign', 'verify']);
  const inter = await x509.X509CertificateGenerator.create({
    subject: 'O=Istio, CN=Intermediate CA',
    issuer: rootCert.subjectName,
    notBefore: new Date(Date.now() - 3600e3),
    notAfter: new Date(Date.now() + 180 * 86400e3),
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert),
    ],
  });
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', interKeys.privateKey)).toString('base64');
  const rootPem = rootCert.toString('pem') + '\n';
  const interPem = inter.toString('pem') + '\n';
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'ca-cert.pem'), interPem);
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), `-----BEGIN PRIVATE KEY-----\n${(pkcs8.match(/.{1,64}/g) ?? []).join('\n')}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'root-cert.pem'), rootPem);
  fs.writeFileSync(path.join(dir, 'cert-chain.pem'), interPem + rootPem);
  return rootPem;
}

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('CreateCertificate for ztunnel', () => {
  let root: string;
  let h: Harness;
  let bundle: string;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ca-zt-'));
    h = await startCaServer(path.join(root, 'data'), { trustedNodeAccounts: ['istio-system/ztunnel'] });
    bundle = h.ca.trustBundlePem();
  });
  after(async () => {
    await h.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("ztunnel's CSR (OpenSSL/BoringSSL form: ECDSA P-256, empty subject, critical URI SAN) with a bearer token and clusterid gets an SVID, root last", { skip: !hasOpenssl && 'openssl not installed' }, async () => {
    const dir = fs.mkdtempSync(path.join(root, 'csr-'));
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path.join(dir, 'key.pem')]);
    execFileSync('openssl', ['req', '-new', '-key', path.join(dir, 'key.pem'), '-subj', '/', '-addext', `subjectAltName=critical,URI:${ALICE}`, '-sha256', '-out', path.join(dir, 'csr.pem')]);
    const csr = fs.readFileSync(path.join(dir, 'csr.pem'), 'utf8');
    const parsed = new x509.Pkcs10CertificateRequest(csr);
    assert.equal(parsed.subject, '', 'the CSR has an empty subject');
    assert.equal(parsed.getExtension('2.5.29.17')?.critical, true, 'its URI SAN is critical');
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 600 });
    const res = await createCertificate(h.address, { csr, validityDuration: 3600 }, { token, trustBundlePem: bundle, metadata: { clusterid: 'Kubernetes' } });
    assert.deepEqual(leafSans(res.certChain), [{ type: 'url', value: ALICE }]);
    assert.equal(res.certChain.at(-1)?.trim(), bundle.trim(), 'the root bundle is the last element of the chain');
    const leaf = new X509Certificate(res.certChain[0] ?? '');
    assert.ok(leaf.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(path.join(dir, 'key.pem')))), 'issued for the key of the CSR');
  });

  it("the rcgen form of ztunnel's CSR (non-critical URI SAN, empty subject) is accepted too", async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ALICE }], false)] }, globalThis.crypto);
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 600 });
    const res = await createCertificate(h.address, { csr: csr.toString('pem'), validityDuration: 0 }, { token, trustBundlePem: bundle });
    assert.deepEqual(leafSans(res.certChain), [{ type: 'url', value: ALICE }]);
  });

  it('ImpersonatedIdentity is honoured for a trusted node account: the certificate is for the impersonated identity', async () => {
    const { token } = await h.tokens.create({ namespace: 'istio-system', serviceAccount: 'ztunnel', ttlSeconds: 600 });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: BOB });
    const res = await createCertificate(
      h.address,
      { csr: csrPem, validityDuration: 0, metadata: { fields: { ImpersonatedIdentity: { stringValue: BOB } } } },
      { token, trustBundlePem: bundle, metadata: { clusterid: 'Kubernetes' } },
    );
    assert.deepEqual(leafSans(res.certChain), [{ type: 'url', value: BOB }]);
    const wrong = await generateKeyAndCsr({ spiffeId: ALICE });
    await refusedWith(
      createCertificate(h.address, { csr: wrong.csrPem, validityDuration: 0, metadata: { fields: { ImpersonatedIdentity: { stringValue: BOB } } } }, { token, trustBundlePem: bundle }),
      grpc.status.PERMISSION_DENIED,
      /sa\/alice.*sa\/bob|sa\/bob.*sa\/alice/,
    );
    const foreign = await generateKeyAndCsr({});
    await refusedWith(
      createCertificate(h.address, { csr: foreign.csrPem, validityDuration: 0, metadata: { fields: { ImpersonatedIdentity: { stringValue: 'spiffe://other.example/ns/x/sa/y' } } } }, { token, trustBundlePem: bundle }),
      grpc.status.PERMISSION_DENIED,
    );
  });

  it('ImpersonatedIdentity from any other identity is refused with UNAUTHENTICATED, and is not signed', async () => {
    const { token } = await h.tokens.create({ namespace: 'shop', serviceAccount: 'alice', ttlSeconds: 600 });
    const { csrPem } = await generateKeyAndCsr({ spiffeId: BOB });
    const before = await outcomeCount(h.metrics, 'ok');
    await refusedWith(
      createCertificate(h.address, { csr: csrPem, validityDuration: 0, metadata: { fields: { ImpersonatedIdentity: { stringValue: BOB } } } }, { token, trustBundlePem: bundle }),
      grpc.status.UNAUTHENTICATED,
      /impersonation/,
    );
    assert.equal(await outcomeCount(h.metrics, 'ok'), before);
  });

  it('a trusted node account that is not <namespace>/<serviceAccount> is refused when the service is built', async () => {
    const ca = h.ca;
    assert.throws(
      () => createCaService({ ca, tokens: h.tokens, trustBundlePem: bundle, logger: silentLogger(), metrics: h.metrics, trustedNodeAccounts: ['ztunnel'] }),
      /trusted node account "ztunnel": expected <namespace>\/<serviceAccount>/,
    );
  });
});

