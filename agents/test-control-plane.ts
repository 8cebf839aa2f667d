/**
 * Test support: the real control plane CA (`src/ca`, `src/identity`) served by a real grpc-js
 * server over TLS on 127.0.0.1, as on port 15012 (client certificates requested, not required).
 * Optionally it also answers ADS with empty CDS/LDS so an Envoy using the agent's bootstrap goes
 * LIVE, recording the identity of each ADS caller. Only tests import this file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../src/ca/index.js';
import { meshServerCredentials } from '../src/ca/credentials.js';
import { createCaService, peerSpiffeIdFromCall } from '../src/ca/service.js';
import { TokenAuthority } from '../src/identity/tokens.js';
import { silentLogger } from '../src/observability/logger.js';
import { createControlPlaneMetrics } from '../src/observability/metrics.js';
import { messageType } from '../src/xds/protos/loader.js';

/** One CreateCertificate call as the server saw it. */
export interface CaCall {
  /** The caller sent `authorization` metadata. */
  token: boolean;
  /** The caller presented a TLS client certificate. */
  clientCert: boolean;
  ok: boolean;
}

/** One ADS stream as the server saw it. */
export interface AdsCaller {
  nodeId: string;
  peerSpiffeId: string | undefined;
}

/** A running test control plane (CA, optionally ADS). */
export interface TestControlPlane {
  /** `127.0.0.1:<port>`. */
  address: string;
  /** The trust bundle file agents verify the control plane with. */
  rootCertPath: string;
  trustBundlePem: string;
  tokens: TokenAuthority;
  calls: CaCall[];
  adsCallers: AdsCaller[];
  /** Writes a bootstrap token for the identity to `file` (mode 0600). */
  writeToken(file: string, namespace: string, serviceAccount: string, opts?: { ttlSeconds?: number; singleUse?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the CA (and a minimal ADS) in `dataDir`, trust domain `cluster.local`, on `port` (default: ephemeral). */
export async function startTestControlPlane(dataDir: string, opts: { ads?: boolean; port?: number } = {}): Promise<TestControlPlane> {
  const logger = silentLogger();
  const trustDomain = 'cluster.local';
  const ca = await CertificateAuthority.loadOrCreate({ dataDir, trustDomain, logger });
  const tokens = await TokenAuthority.open({ dataDir: path.join(dataDir, 'tokens'), trustDomain, logger });
  const trustBundlePem = ca.trustBundlePem();
  const serving = await ca.issueServingCert({ spiffeId: `spiffe://${trustDomain}/ns/skiff-system/sa/skiff-control-plane`, ipAddresses: ['127.0.0.1'] });
  const service = createCaService({ ca, tokens, trustBundlePem, logger, metrics: createControlPlaneMetrics() });
  const calls: CaCall[] = [];
  const adsCallers: AdsCaller[] = [];
  const original = service.implementation['CreateCertificate'] as grpc.handleUnaryCall<unknown, unknown>;
  const server = new grpc.Server();
  server.addService(service.definition, {
    CreateCertificate: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const record: CaCall = { token: call.metadata.get('authorization').length > 0, clientCert: Boolean(call.getAuthContext()?.sslPeerCertificate?.raw), ok: false };
      calls.push(record);
      original(call, (err, value) => {
        record.ok = !err;
        callback(err, value);
      });
    },
  });
  if (opts.ads) {
    const Request = messageType('envoy.service.discovery.v3.DiscoveryRequest');
    const Response = messageType('envoy.service.discovery.v3.DiscoveryResponse');
    server.addService(
      {
        StreamAggregatedResources: {
          path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
          requestStream: true,
          responseStream: true,
          requestSerialize: (v: Buffer) => v,
          requestDeserialize: (b: Buffer) => Request.toObject(Request.decode(b)) as { node?: { id?: string }; typeUrl?: string; responseNonce?: string },
          responseSerialize: (v: object) => Buffer.from(Response.encode(Response.fromObject(v)).finish()),
          responseDeserialize: (b: Buffer) => b,
        },
      },
      {
        StreamAggregatedResources: (call: grpc.ServerDuplexStream<{ node?: { id?: string }; typeUrl?: string; responseNonce?: string }, object>) => {
          let n = 0;
          call.on('data', (req: { node?: { id?: string }; typeUrl?: string; responseNonce?: string }) => {
            if (req.node?.id) adsCallers.push({ nodeId: req.node.id, peerSpiffeId: peerSpiffeIdFromCall(call, trustBundlePem) });
            if (!req.responseNonce) call.write({ versionInfo: '1', typeUrl: req.typeUrl, nonce: String(++n) });
          });
          call.on('end', () => call.end());
          call.on('error', () => undefined);
        },
      },
    );
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, meshServerCredentials({ certChainPem: serving.certChainPem, keyPem: serving.keyPem, trustBundlePem }), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const rootCertPath = path.join(dataDir, 'root-cert.pem');
  await fs.writeFile(rootCertPath, trustBundlePem);
  return {
    address: `127.0.0.1:${port}`,
    rootCertPath,
    trustBundlePem,
    tokens,
    calls,
    adsCallers,
    async writeToken(file, namespace, serviceAccount, o = {}) {
      const created = await tokens.create({ namespace, serviceAccount, ...o });
      await fs.writeFile(file, `${created.token}\n`, { mode: 0o600 });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}
