import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../src/observability/logger.js';
import { decodeAny, messageType, TypeUrl } from '../src/xds/protos/loader.js';
import { envoyBootstrapJson, sdsCluster, sdsSecretConfig } from './bootstrap.js';
import { findEnvoy } from './envoy-path.js';
import { startSdsServer, STREAM_SECRETS_PATH, type SdsEvent, type SdsServer } from './sds.js';
import { EnvoySupervisor } from './supervisor.js';
import { createTestCa, freePort, shortTempDir, type TestCa, type TestSvid } from './testing.js';

const DiscoveryRequest = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const DiscoveryResponse = messageType('envoy.service.discovery.v3.DiscoveryResponse');

interface Response {
  versionInfo: string;
  nonce: string;
  typeUrl: string;
  resources: { type_url: string; value: Uint8Array }[];
}

/** Decodes one `Any` of a response (the built-in Any descriptor names its field `type_url`). */
function secret(any: { type_url: string; value: Uint8Array }): Record<string, unknown> {
  assert.equal(any.type_url, TypeUrl.Secret);
  return decodeAny({ typeUrl: any.type_url, value: any.value });
}

/** A real grpc-js SDS client over the Unix socket that collects responses. */
function sdsClient(socketPath: string) {
  const client = new grpc.Client(`unix:${socketPath}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(
    STREAM_SECRETS_PATH,
    (v: object) => Buffer.from(DiscoveryRequest.encode(DiscoveryRequest.fromObject(v)).finish()),
    (b: Buffer) => DiscoveryResponse.toObject(DiscoveryResponse.decode(b), { arrays: true, defaults: true }) as Response,
  );
  const received: Response[] = [];
  const waiters: (() => void)[] = [];
  call.on('data', (r: Response) => {
    received.push(r);
    waiters.splice(0).forEach((w) => w());
  });
  call.on('error', () => undefined);
  return {
    received,
    send: (v: object) => call.write(v),
    async next(count: number, timeoutMs = 5000): Promise<Response> {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for response ${count}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
      return received[count - 1]!;
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}

function secretsOf(svid: TestSvid) {
  return { certChainPem: svid.certChainPem, keyPem: svid.keyPem, rootsPem: svid.rootsPem };
}

const quiet = async (ms: number) => new Promise((r) => setTimeout(r, ms));

void describe('SDS server protocol (real grpc-js client over the Unix socket)', () => {
  let dir: string;
  let ca: TestCa;
  let sds: SdsServer;
  const events: SdsEvent[] = [];

  before(async () => {
    dir = await shortTempDir();
    ca = await createTestCa();
    sds = await startSdsServer({ socketDir: path.join(dir, 's'), logger: silentLogger(), secrets: secretsOf(await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/a/sa/one' })) });
    sds.onEvent((e) => events.push(e));
  });
  after(async () => {
    await sds.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  void it('keeps the socket private: 0600 in a 0700 directory', async () => {
    assert.equal((await fs.stat(sds.socketPath)).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.dirname(sds.socketPath))).mode & 0o777, 0o700);
  });

  void it('answers default and ROOTCA, is silent after an ACK, pushes a rotation, ignores stale nonces and does not resend after a NACK', async () => {
    const c = sdsClient(sds.socketPath);
    try {
      c.send({ node: { id: 'sidecar~10.0.0.1~vm.a~a.svc.cluster.local' }, typeUrl: TypeUrl.Secret, resourceNames: ['default', 'ROOTCA'] });
      const first = await c.next(1);
      assert.equal(first.typeUrl, TypeUrl.Secret);
      assert.equal(first.versionInfo, sds.version());
      const secrets = first.resources.map(secret);
      const byName = new Map(secrets.map((s) => [s['name'], s]));
      const tlsCert = byName.get('default')?.['tlsCertificate'] as { certificateChain: { inlineBytes: string }; privateKey: { inlineBytes: string } };
      const chainPem = Buffer.from(tlsCert.certificateChain.inlineBytes, 'base64').toString();
      assert.match(new crypto.X509Certificate(chainPem).subjectAltName ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/a\/sa\/one/);
      assert.ok(byName.get('ROOTCA')?.['validationContext'], 'ROOTCA has a validation context');

      // ACK: no new response.
      c.send({ typeUrl: TypeUrl.Secret, resourceNames: ['default', 'ROOTCA'], versionInfo: first.versionInfo, responseNonce: first.nonce });
      await quiet(300);
      assert.equal(c.received.length, 1);
      assert.ok(events.some((e) => e.kind === 'ack' && e.version === first.versionInfo));

      // Rotation: a new version is pushed on the open stream.
      const rotated = secretsOf(await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/a/sa/one' }));
      sds.update(rotated);
      const second = await c.next(2);
      assert.notEqual(second.versionInfo, first.versionInfo);
      assert.notEqual(second.nonce, first.nonce);

      // The same content again: nothing is pushed.
      sds.update({ ...rotated });
      await quiet(300);
      assert.equal(c.received.length, 2);

      // A request echoing an old nonce is stale: ignored.
      const n = c.received.length;
      c.send({ typeUrl: TypeUrl.Secret, resourceNames: ['default'], versionInfo: first.versionInfo, responseNonce: first.nonce });
      await quiet(300);
      assert.equal(c.received.length, n);

      // NACK of the latest response: logged as an event, not answered.
      c.send({ typeUrl: TypeUrl.Secret, resourceNames: ['default', 'ROOTCA'], versionInfo: first.versionInfo, responseNonce: second.nonce, errorDetail: { code: 3, message: 'bad key' } });
      await quiet(300);
      assert.equal(c.received.length, n);
      assert.ok(events.some((e) => e.kind === 'nack' && e.message === 'bad key'));
    } finally {
      c.close();
    }
  });

  void it('answers a changed subscription only with the secrets asked for', async () => {
    const c = sdsClient(sds.socketPath);
    try {
      c.send({ node: { id: 'n' }, typeUrl: TypeUrl.Secret, resourceNames: ['ROOTCA'] });
      const first = await c.next(1);
      assert.deepEqual(first.resources.map((r) => secret(r)['name']), ['ROOTCA']);
      c.send({ typeUrl: TypeUrl.Secret, resourceNames: ['ROOTCA', 'default'], versionInfo: first.versionInfo, responseNonce: first.nonce });
      const second = await c.next(2);
      assert.deepEqual(second.resources.map((r) => secret(r)['name']).sort(), ['ROOTCA', 'default']);
    } finally {
      c.close();
    }
  });

  void it('refuses a socket path of 108 bytes or more with a clear error', async () => {
    await assert.rejects(startSdsServer({ socketDir: `/tmp/${'x'.repeat(110)}`, logger: silentLogger() }), /shorter than 108 bytes/);
  });
});

void describe('SDS with a real Envoy', () => {
  let dir: string;
  let sds: SdsServer;
  let envoy: EnvoySupervisor;
  let ca: TestCa;
  let port: number;
  const spiffeId = 'spiffe://cluster.local/ns/shop/sa/web';

  before(async () => {
    dir = await shortTempDir();
    ca = await createTestCa();
    sds = await startSdsServer({ socketDir: dir, logger: silentLogger(), secrets: secretsOf(await ca.issue({ spiffeId })) });
    port = await freePort();
    const adminPort = await freePort();
    const bootstrap = {
      node: { id: 'sds-test', cluster: 'sds-test' },
      admin: { address: { socketAddress: { address: '127.0.0.1', portValue: adminPort } } },
      staticResources: {
        clusters: [sdsCluster(sds.socketPath)],
        listeners: [
          {
            name: 'tls',
            address: { socketAddress: { address: '127.0.0.1', portValue: port } },
            filterChains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typedConfig: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                      statPrefix: 'tls',
                      routeConfig: { virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, directResponse: { status: 200, body: { inlineString: 'ok' } } }] }] },
                      httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                    },
                  },
                ],
                transportSocket: {
                  name: 'envoy.transport_sockets.tls',
                  typedConfig: {
                    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                    commonTlsContext: { tlsCertificateSdsSecretConfigs: [sdsSecretConfig('default')] },
                  },
                },
              },
            ],
          },
        ],
      },
    };
    const bootstrapPath = path.join(dir, 'envoy.json');
    await fs.writeFile(bootstrapPath, envoyBootstrapJson(bootstrap), { mode: 0o600 });
    envoy = new EnvoySupervisor({ envoyPath: findEnvoy(), bootstrapPath, adminPort, logger: silentLogger(), drainSeconds: 0 });
    envoy.start();
    await envoy.ready(30_000);
  });
  after(async () => {
    await envoy?.stop();
    await sds?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** One TLS handshake with Envoy, verifying the chain against the test root; returns the served leaf. */
  function handshake(): Promise<tls.PeerCertificate> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.rootPem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] }, () => {
        const cert = socket.getPeerCertificate();
        socket.end();
        resolve(cert);
      });
      socket.setTimeout(3000, () => socket.destroy(new Error('handshake timeout')));
      socket.once('error', reject);
    });
  }

  async function firstHandshake(timeoutMs = 20_000): Promise<tls.PeerCertificate> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await handshake();
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await quiet(100);
      }
    }
  }

  void it('serves the SVID to Envoy, and a rotation reaches new connections with no failed connection', async () => {
    const initial = await firstHandshake();
    assert.equal(initial.subjectaltname, `URI:${spiffeId}`);

    const acked = new Promise<string>((resolve) => sds.onEvent((e) => e.kind === 'ack' && e.version === sds.version() && resolve(e.version)));
    const next = await ca.issue({ spiffeId });
    const serials: string[] = [];
    let failures = 0;
    let rotated = false;
    const loop = (async () => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        try {
          const cert = await handshake();
          serials.push(cert.serialNumber.toLowerCase());
          if (cert.serialNumber.toLowerCase() === next.serial) {
            rotated = true;
            // a few more connections after the switch, all on the new certificate
            for (let i = 0; i < 5; i++) serials.push((await handshake()).serialNumber.toLowerCase());
            return;
          }
        } catch {
          failures++;
        }
      }
    })();
    await quiet(200);
    sds.update(secretsOf(next));
    await loop;
    assert.equal(await acked, sds.version(), 'Envoy ACKed the rotated secret');
    assert.ok(rotated, 'a new connection saw the new serial');
    assert.equal(failures, 0, 'no connection failed during the rotation');
    const firstNew = serials.indexOf(next.serial);
    assert.ok(serials.slice(firstNew).every((s) => s === next.serial), 'after the switch only the new certificate is served');
  });
});
