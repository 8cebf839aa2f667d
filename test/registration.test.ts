/**
 * The registration stream end to end without VMs: the control plane's registration service
 * (as `skiff serve` wires it) on a real grpc-js server with the mesh's TLS credentials, the
 * agent's RegistrationClient with real SVIDs from the real CA, and a real registry.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { controlPlaneCredentials } from '../agents/ca-client.js';
import { RegistrationClient, RegistrationRefusedError } from '../agents/registration.js';
import { CertificateAuthority } from '../src/ca/index.js';
import { meshServerCredentials } from '../src/ca/credentials.js';
import { startRegistration, type RunningRegistration } from '../src/cli/serve/registration.js';
import { silentLogger } from '../src/observability/logger.js';
import { createRegistry, type Registry } from '../src/registry/index.js';
import { isHealthy, type MeshResource, type WorkloadEntry } from '../src/resources/types.js';
import { peerIp } from '../src/sources/registration/index.js';
import { encodeAgentReport, REGISTRATION_CONNECT_PATH } from '../src/xds/protos/registration.js';
import { eventually } from './helpers/skiff.js';

const TD = 'cluster.local';
const CP_ID = `spiffe://${TD}/ns/skiff-system/sa/skiff-control-plane`;
const GRACE_MS = 600;

const mesh: MeshResource[] = [
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadGroup',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: { metadata: { labels: { app: 'reviews' } }, template: { serviceAccount: 'reviews', ports: { http: 8080 } }, probe: { periodSeconds: 1, httpGet: { port: 9081, path: '/healthz' } } },
    origin: { source: 'file' },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: 'db-1', namespace: 'shop' },
    spec: { address: '10.0.0.9', serviceAccount: 'db' },
    origin: { source: 'file' },
  },
];

interface ControlPlaneUnderTest {
  registry: Registry;
  registration: RunningRegistration;
  server: grpc.Server;
  port: number;
  stop(): void;
}

void describe('registration stream: agent client ↔ control plane over mTLS', () => {
  let tmp: string;
  let ca: CertificateAuthority;
  let cp: ControlPlaneUnderTest;
  const clients: RegistrationClient[] = [];

  async function startControlPlane(port = 0): Promise<ControlPlaneUnderTest> {
    const registry = createRegistry({ logger: silentLogger(), quietMs: 5, maxWaitMs: 50 });
    registry.setSource('file', mesh);
    registry.flush();
    const registration = startRegistration({
      registry,
      trustDomain: TD,
      gracePeriodMs: GRACE_MS,
      trustBundlePem: ca.trustBundlePem(),
      intermediatesPem: ca.intermediatesPemBundle(),
      logger: silentLogger(),
    });
    const serving = await ca.issueServingCert({ spiffeId: CP_ID, ipAddresses: ['127.0.0.1'] });
    const server = new grpc.Server();
    server.addService(registration.service.definition, registration.service.implementation);
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, meshServerCredentials({ certChainPem: serving.certChainPem, keyPem: serving.keyPem, trustBundlePem: ca.trustBundlePem() }), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    return {
      registry,
      registration,
      server,
      port: bound,
      stop: () => {
        registration.stop();
        registry.close();
        server.forceShutdown();
      },
    };
  }

  /** A client for `namespace/serviceAccount` with an SVID from the mesh CA (none: no client certificate). */
  async function client(register: ConstructorParameters<typeof RegistrationClient>[0]['register'], identity?: { ns: string; sa: string }): Promise<RegistrationClient> {
    const svid = identity ? await ca.issueServingCert({ spiffeId: `spiffe://${TD}/ns/${identity.ns}/sa/${identity.sa}` }) : undefined;
    const c = new RegistrationClient({
      address: `127.0.0.1:${cp.port}`,
      credentials: () =>
        controlPlaneCredentials({ rootsPem: ca.trustBundlePem(), controlPlaneSpiffeId: CP_ID, host: '127.0.0.1', ...(svid ? { client: { keyPem: svid.keyPem, certChainPem: svid.certChainPem } } : {}) }),
      register,
      logger: silentLogger(),
      retryInitialMs: 50,
      retryMaxMs: 200,
    });
    clients.push(c);
    return c;
  }

  const entry = (name: string): WorkloadEntry | undefined => cp.registry.current().workloadsByName.get(`shop/${name}`);
  const AUTO = 'reviews-127-0-0-5';

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-reg-'));
    ca = await CertificateAuthority.loadOrCreate({ dataDir: tmp, trustDomain: TD, logger: silentLogger() });
    cp = await startControlPlane();
  });

  after(() => {
    for (const c of clients) c.stop();
    cp.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  void it('reads the peer address grpc-js reports', () => {
    assert.equal(peerIp('198.18.44.3:51234'), '198.18.44.3');
    assert.equal(peerIp('[fd00::5]:51234'), 'fd00::5');
    assert.equal(peerIp('[::ffff:10.0.0.7]:1'), '10.0.0.7');
    assert.equal(peerIp('unix:/tmp/x'), undefined);
  });

  void it("registers into the group with its SVID: gets the entry's name and the group's probe; health moves it in and out", async () => {
    const c = await client({ workloadGroup: 'shop/reviews', address: '127.0.0.5', labels: { version: 'v2' } }, { ns: 'shop', sa: 'reviews' });
    const status = await c.start();
    assert.equal(status.workloadName, AUTO);
    assert.deepEqual(status.probe, { periodSeconds: 1, httpGet: { port: 9081, path: '/healthz', httpHeaders: [] } });
    assert.deepEqual(status.labels, { app: 'reviews', version: 'v2' });
    const we = await eventually('the auto-registered entry in the registry', async () => entry(AUTO));
    assert.equal(we.spec.address, '127.0.0.5');
    assert.equal(we.origin?.source, 'auto-registration');
    assert.equal(isHealthy(we), false, 'not healthy before its first probe');
    c.report({ healthy: true, message: 'status 200' });
    await eventually('healthy', async () => (entry(AUTO) && isHealthy(entry(AUTO)!) ? true : undefined));
    c.report({ healthy: false, message: 'status 500' });
    await eventually('unhealthy', async () => (entry(AUTO) && !isHealthy(entry(AUTO)!) ? true : undefined));
    c.report({ healthy: true, message: 'status 200' });
    await eventually('healthy again', async () => (entry(AUTO) && isHealthy(entry(AUTO)!) ? true : undefined));

    // The control plane restarts on the same port: the agent reconnects with back-off and
    // registers again with its current verdict, so the workload comes back healthy.
    cp.stop();
    cp = await startControlPlane(cp.port);
    const back = await eventually('the entry re-registered after the restart', async () => entry(AUTO), 10_000, 50);
    assert.equal(isHealthy(back), true);
    await c.leave('test done');
    await eventually('the entry gone after leave', async () => (entry(AUTO) ? undefined : true));
  });

  void it('another identity cannot register into the group: PERMISSION_DENIED, nothing registered', async () => {
    const c = await client({ workloadGroup: 'shop/reviews', address: '127.0.0.6' }, { ns: 'shop', sa: 'ratings' });
    await assert.rejects(c.start(), (err: unknown) => err instanceof RegistrationRefusedError && err.code === grpc.status.PERMISSION_DENIED && /may not register into WorkloadGroup shop\/reviews/.test(err.message));
    await sleep(50);
    assert.equal(entry('reviews-127-0-0-6'), undefined);
  });

  void it('a caller without a client certificate is refused: UNAUTHENTICATED', async () => {
    const c = await client({ workloadGroup: 'shop/reviews', address: '127.0.0.7' });
    await assert.rejects(c.start(), (err: unknown) => err instanceof RegistrationRefusedError && err.code === grpc.status.UNAUTHENTICATED);
  });

  void it('a stream that ends without leave keeps the entry for the grace period; a reconnect within it keeps it without a gap', async () => {
    const seen: boolean[] = [];
    const unsubscribe = cp.registry.subscribe((s) => seen.push(s.workloadsByName.has(`shop/${AUTO}`)));
    const c1 = await client({ workloadGroup: 'shop/reviews', address: '127.0.0.5' }, { ns: 'shop', sa: 'reviews' });
    await c1.start();
    c1.report({ healthy: true, message: 'ok' });
    await eventually('healthy', async () => (entry(AUTO) && isHealthy(entry(AUTO)!) ? true : undefined));
    c1.stop(); // the agent dies: no leave
    await sleep(GRACE_MS / 3);
    assert.ok(entry(AUTO), 'kept during the grace period');
    const c2 = await client({ workloadGroup: 'shop/reviews', address: '127.0.0.5' }, { ns: 'shop', sa: 'reviews' });
    await c2.start();
    await sleep(GRACE_MS * 1.5);
    assert.ok(entry(AUTO), 'still there after the grace period: the agent came back in time');
    assert.equal(isHealthy(entry(AUTO)!), true, 'its health was kept');
    const firstSeen = seen.indexOf(true);
    assert.ok(firstSeen >= 0);
    assert.deepEqual(seen.slice(firstSeen).filter((x) => !x), [], 'no snapshot ever lacked the entry (no flap)');

    c2.stop();
    const stoppedAt = Date.now();
    await eventually('removed after the grace period', async () => (entry(AUTO) ? undefined : true), 5000, 20);
    assert.ok(Date.now() - stoppedAt >= GRACE_MS * 0.9, `removed after ${Date.now() - stoppedAt} ms, before the grace period`);
    unsubscribe();
  });

  /** Opens a raw stream with the given client identity, writes `frames` and returns the final status. */
  async function rawStream(frames: Buffer[], identity: { ns: string; sa: string }): Promise<grpc.StatusObject> {
    const svid = await ca.issueServingCert({ spiffeId: `spiffe://${TD}/ns/${identity.ns}/sa/${identity.sa}` });
    const raw = new grpc.Client(
      `127.0.0.1:${cp.port}`,
      controlPlaneCredentials({ rootsPem: ca.trustBundlePem(), controlPlaneSpiffeId: CP_ID, host: '127.0.0.1', client: { keyPem: svid.keyPem, certChainPem: svid.certChainPem } }),
    );
    try {
      return await new Promise<grpc.StatusObject>((resolve) => {
        const call = raw.makeBidiStreamRequest(REGISTRATION_CONNECT_PATH, (b: Buffer) => b, (b: Buffer) => b);
        call.on('data', () => undefined);
        call.on('error', () => undefined);
        call.on('status', resolve);
        for (const f of frames) call.write(f);
      });
    } finally {
      raw.close();
    }
  }

  void it('a stream that reports health before registering, or sends undecodable bytes, is ended with a clear status', async () => {
    const early = await rawStream([encodeAgentReport({ health: { healthy: true } })], { ns: 'shop', sa: 'reviews' });
    assert.equal(early.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(early.details, 'register before reporting health');
    const garbage = await rawStream([Buffer.from([0xff, 0xff, 0xff])], { ns: 'shop', sa: 'reviews' });
    assert.equal(garbage.code, grpc.status.INVALID_ARGUMENT);
    assert.match(garbage.details, /^malformed AgentReport: cannot decode AgentReport/);
    const empty = await rawStream([encodeAgentReport({})], { ns: 'shop', sa: 'reviews' });
    assert.equal(empty.code, grpc.status.INVALID_ARGUMENT);
    const missing = await rawStream([encodeAgentReport({ register: { workloadGroup: 'shop/nope', address: '127.0.0.5' } })], { ns: 'shop', sa: 'reviews' });
    assert.deepEqual([missing.code, missing.details], [grpc.status.NOT_FOUND, 'WorkloadGroup shop/nope does not exist']);
  });

  void it('an agent reports health for its static WorkloadEntry; another identity may not', async () => {
    const other = await client({ workloadEntry: 'shop/db-1' }, { ns: 'shop', sa: 'reviews' });
    await assert.rejects(other.start(), (err: unknown) => err instanceof RegistrationRefusedError && err.code === grpc.status.PERMISSION_DENIED);
    const c = await client({ workloadEntry: 'shop/db-1', address: '10.0.0.9' }, { ns: 'shop', sa: 'db' });
    const status = await c.start();
    assert.equal(status.workloadName, 'db-1');
    assert.equal(status.probe, undefined);
    c.report({ healthy: false, message: 'connect ECONNREFUSED' });
    const we = await eventually('db-1 unhealthy', async () => (entry('db-1') && !isHealthy(entry('db-1')!) ? entry('db-1') : undefined));
    assert.equal(we.origin?.source, 'file', 'still the file source entry');
    assert.equal(we.status?.conditions?.[0]?.message, 'connect ECONNREFUSED');
    c.report({ healthy: true, message: 'ok' });
    await eventually('db-1 healthy', async () => (entry('db-1') && isHealthy(entry('db-1')!) ? true : undefined));
    await c.leave('maintenance');
    const left = await eventually('db-1 out after leave', async () => (entry('db-1') && !isHealthy(entry('db-1')!) ? entry('db-1') : undefined));
    assert.equal(left.status?.conditions?.[0]?.reason, 'AgentLeft');
  });
});
