import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../src/observability/logger.js';
import { messageType } from '../../src/xds/protos/loader.js';
import { loadAgentConfig } from '../config.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { shortTempDir } from '../testing.js';
import { ADS_METHODS } from '../xds-proxy/forwarder.js';
import { startProxylessAgent, type ProxylessAgent } from './agent.js';

const Request = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const Response = messageType('envoy.service.discovery.v3.DiscoveryResponse');

describe('proxyless agent: SVID files, bootstrap and local xDS endpoint against the real CA', () => {
  let dir: string;
  let cp: TestControlPlane;
  let agent: ProxylessAgent | undefined;

  before(async () => {
    dir = await shortTempDir();
    cp = await startTestControlPlane(path.join(dir, 'cp'), { ads: true });
  });
  after(async () => {
    await agent?.stop();
    await cp.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses settings proxyless mode does not support, naming them', async () => {
    const base = { controlPlane: cp.address, rootCertPath: cp.rootCertPath, namespace: 'demo', serviceAccount: 'client', workloadIp: '127.0.0.1', stateDir: path.join(dir, 'bad'), socketDir: path.join(dir, 'badrun'), proxyless: true };
    const grouped = loadAgentConfig({ env: {}, overrides: { ...base, workloadGroup: 'clients' } });
    await assert.rejects(startProxylessAgent(grouped, { logger: silentLogger() }), /--proxyless: give --workload-name \(WorkloadGroup registration/);
    const ztunnel = loadAgentConfig({ env: {}, overrides: { ...base, workloadName: 'c' } });
    Object.assign(ztunnel, { proxy: 'ztunnel' });
    await assert.rejects(startProxylessAgent(ztunnel, { logger: silentLogger() }), /cannot be combined with --proxy ztunnel/);
  });

  it('forwards an ADS stream from the socket to the control plane as the workload, and rotates the credential files', async () => {
    const tokenPath = path.join(dir, 'token');
    await cp.writeToken(tokenPath, 'demo', 'client');
    const config = loadAgentConfig({
      env: {},
      overrides: {
        controlPlane: cp.address,
        rootCertPath: cp.rootCertPath,
        tokenPath,
        namespace: 'demo',
        serviceAccount: 'client',
        workloadName: 'client-1',
        workloadIp: '127.0.0.1',
        stateDir: path.join(dir, 'state'),
        socketDir: path.join(dir, 'run'),
        certTtlSeconds: 8,
        proxyless: true,
      },
    });
    agent = await startProxylessAgent(config, { logger: silentLogger() });
    assert.equal(agent.xdsAddress, `unix://${path.join(dir, 'run', 'xds.sock')}`);
    assert.equal(agent.env['GRPC_XDS_BOOTSTRAP'], agent.bootstrapPath);
    const bootstrap = JSON.parse(await fs.readFile(agent.bootstrapPath, 'utf8')) as { xds_servers: Array<{ server_uri: string }>; node: { id: string } };
    assert.equal(bootstrap.xds_servers[0]?.server_uri, agent.xdsAddress);

    // An xDS client without any certificate, as grpc-js-xds is: the control plane sees the agent's SVID.
    const client = new grpc.Client(agent.xdsAddress, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest(
      ADS_METHODS.sotw,
      (o: object) => Buffer.from(Request.encode(Request.fromObject(o)).finish()),
      (b: Buffer) => Response.toObject(Response.decode(b)) as { typeUrl?: string; nonce?: string },
    );
    const got = new Promise<{ typeUrl?: string; nonce?: string }>((resolve) => call.once('data', resolve));
    call.on('error', () => undefined);
    call.write({ node: { id: bootstrap.node.id }, typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener', resourceNames: ['echo.demo.svc.cluster.local:50051'] });
    const response = await got;
    assert.equal(response.typeUrl, 'type.googleapis.com/envoy.config.listener.v3.Listener');
    assert.deepEqual(cp.adsCallers.at(-1), { nodeId: 'sidecar~127.0.0.1~client-1.demo~demo.svc.cluster.local', peerSpiffeId: 'spiffe://cluster.local/ns/demo/sa/client' });
    call.end();
    client.close();

    const certFile = path.join(path.dirname(agent.bootstrapPath), 'cert-chain.pem');
    const keyFile = path.join(path.dirname(agent.bootstrapPath), 'key.pem');
    const first = agent.svid();
    assert.equal(await fs.readFile(certFile, 'utf8'), first.certChainPem);
    assert.equal(new crypto.X509Certificate(await fs.readFile(certFile)).subjectAltName, 'URI:spiffe://cluster.local/ns/demo/sa/client');
    assert.equal((await fs.stat(keyFile)).mode & 0o777, 0o600);
    // Renewal at about half of the 8 s lifetime rewrites the files with the new SVID.
    const deadline = first.notAfter.getTime() + 2000;
    let rotated = false;
    while (Date.now() < deadline && !rotated) {
      await new Promise((r) => setTimeout(r, 200));
      const current = agent.svid();
      if (current.serial === first.serial) continue;
      const onDisk = await fs.readFile(certFile, 'utf8');
      rotated = onDisk === current.certChainPem && (await fs.readFile(keyFile, 'utf8')) === current.keyPem;
    }
    assert.ok(rotated, 'the renewed SVID and key were written to the files grpc-js-xds watches');
  });
});
