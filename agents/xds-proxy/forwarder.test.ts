import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../src/observability/logger.js';
import { controlPlaneCredentials, uriSans } from '../ca-client.js';
import { createTestCa, shortTempDir, type TestCa, type TestSvid } from '../testing.js';
import { ADS_METHODS, parseListenAddress, startXdsProxy, XdsProxyAddressError, type XdsProxy } from './forwarder.js';

const CP_ID = 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane';
const AGENT_ID = 'spiffe://cluster.local/ns/demo/sa/client';
const pass = (b: Buffer): Buffer => b;

/** A stand-in control plane: mTLS (client certificate required), echoes each ADS message upper-cased. */
async function startUpstream(ca: TestCa): Promise<{ address: string; peers: string[]; streams: grpc.ServerDuplexStream<Buffer, Buffer>[]; server: grpc.Server }> {
  const serving = await ca.issue({ spiffeId: CP_ID, ips: ['127.0.0.1'] });
  const server = new grpc.Server();
  const peers: string[] = [];
  const streams: grpc.ServerDuplexStream<Buffer, Buffer>[] = [];
  const def = (p: string): grpc.MethodDefinition<Buffer, Buffer> => ({ path: p, requestStream: true, responseStream: true, requestSerialize: pass, requestDeserialize: pass, responseSerialize: pass, responseDeserialize: pass });
  const handler = (tag: string) => (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const cert = call.getAuthContext().sslPeerCertificate;
    peers.push(cert ? (uriSans(cert)[0] ?? '') : '');
    streams.push(call);
    call.on('data', (m: Buffer) => call.write(Buffer.from(`${tag}:${m.toString().toUpperCase()}`)));
    call.on('end', () => call.end());
  };
  server.addService({ S: def(ADS_METHODS.sotw), D: def(ADS_METHODS.delta) }, { S: handler('sotw'), D: handler('delta') });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(ca.rootPem), [{ private_key: Buffer.from(serving.keyPem), cert_chain: Buffer.from(serving.certChainPem) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, peers, streams, server };
}

function openStream(address: string, method: string): { call: grpc.ClientDuplexStream<Buffer, Buffer>; client: grpc.Client; received: string[]; status: Promise<grpc.StatusObject> } {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(method, pass, pass);
  const received: string[] = [];
  call.on('data', (m: Buffer) => received.push(m.toString()));
  call.on('error', () => undefined);
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return { call, client, received, status };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('local xDS endpoint (forwarder)', () => {
  let ca: TestCa;
  let svid: TestSvid;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let dir: string;
  let proxy: XdsProxy;

  before(async () => {
    ca = await createTestCa();
    svid = await ca.issue({ spiffeId: AGENT_ID });
    upstream = await startUpstream(ca);
    dir = await shortTempDir();
    proxy = await startXdsProxy({
      listen: `unix:${path.join(dir, 'xds.sock')}`,
      upstream: upstream.address,
      credentials: () => controlPlaneCredentials({ rootsPem: ca.rootPem, controlPlaneSpiffeId: CP_ID, client: { keyPem: svid.keyPem, certChainPem: svid.certChainPem } }),
      logger: silentLogger(),
    });
  });
  after(async () => {
    await proxy.stop();
    upstream.server.forceShutdown();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('forwards SotW and delta streams both ways, presenting the agent SVID upstream', async () => {
    for (const [method, tag] of [[ADS_METHODS.sotw, 'sotw'], [ADS_METHODS.delta, 'delta']] as const) {
      const s = openStream(proxy.address, method);
      s.call.write(Buffer.from('hello'));
      s.call.write(Buffer.from('again'));
      await until(() => s.received.length === 2, 'two responses');
      assert.deepEqual(s.received, [`${tag}:HELLO`, `${tag}:AGAIN`]);
      s.call.end();
      assert.equal((await s.status).code, grpc.status.OK);
      s.client.close();
    }
    assert.deepEqual(upstream.peers.slice(-2), [AGENT_ID, AGENT_ID], 'the control plane sees the agent SVID identity');
  });

  it('the socket file is not world-accessible', async () => {
    const st = await fs.stat(path.join(dir, 'xds.sock'));
    assert.equal(st.mode & 0o007, 0);
  });

  it('closes the downstream stream with the upstream status when the control plane ends it', async () => {
    const before = upstream.streams.length;
    const s = openStream(proxy.address, ADS_METHODS.sotw);
    s.call.write(Buffer.from('x'));
    await until(() => upstream.streams.length === before + 1, 'the upstream stream');
    upstream.streams.at(-1)?.emit('error', { code: grpc.status.UNAVAILABLE, details: 'control plane going away' });
    const status = await s.status;
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.match(status.details, /going away/);
    s.client.close();
    await until(() => proxy.activeStreams() === 0, 'the forwarded stream to be released');
  });

  it('cancels the upstream stream when the application cancels', async () => {
    const before = upstream.streams.length;
    const s = openStream(proxy.address, ADS_METHODS.sotw);
    s.call.write(Buffer.from('x'));
    await until(() => upstream.streams.length === before + 1, 'the upstream stream');
    const up = upstream.streams.at(-1);
    const cancelled = new Promise<void>((resolve) => up?.on('cancelled', () => resolve()));
    s.call.cancel();
    await cancelled;
    s.client.close();
    await until(() => proxy.activeStreams() === 0, 'the forwarded stream to be released');
  });

  it('a stream is refused by the control plane without a client certificate (why the agent forwards)', async () => {
    const bare = await startXdsProxy({
      listen: '127.0.0.1:0',
      upstream: upstream.address,
      credentials: () => controlPlaneCredentials({ rootsPem: ca.rootPem, controlPlaneSpiffeId: CP_ID }),
      logger: silentLogger(),
    });
    try {
      const s = openStream(bare.address, ADS_METHODS.sotw);
      s.call.write(Buffer.from('x'));
      const status = await s.status;
      assert.equal(status.code, grpc.status.UNAVAILABLE);
      s.client.close();
    } finally {
      await bare.stop();
    }
  });

  it('refuses to listen on a non-local address', () => {
    assert.throws(() => parseListenAddress('0.0.0.0:15010'), XdsProxyAddressError);
    assert.throws(() => parseListenAddress('198.18.51.2:15010'), /loopback/);
    assert.throws(() => parseListenAddress('unix:relative.sock'), /absolute/);
    assert.deepEqual(parseListenAddress('127.0.0.1:0'), { bind: '127.0.0.1:0' });
    assert.deepEqual(parseListenAddress('unix:///run/skiff-agent/xds.sock'), { bind: 'unix:/run/skiff-agent/xds.sock', socketPath: '/run/skiff-agent/xds.sock' });
  });
});
