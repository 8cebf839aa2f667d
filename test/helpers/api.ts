/**
 * The HTTP API for tests, composed from the real parts the control plane uses: the SQLite store in
 * a temp data dir, the token authority on it, a registry fed by the real file source (a temp
 * config dir) and the store source, the hono app served on 127.0.0.1 (ephemeral port), optionally
 * over HTTPS with a serving certificate from the real CA, and optionally the real CA gRPC service
 * (CreateCertificate over TLS) on the same store.
 */
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createAdminToken } from '../../src/api/admin-tokens.js';
import { createApiApp } from '../../src/api/app.js';
import type { ApiDeps } from '../../src/api/deps.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { meshChannelCredentials, meshServerCredentials } from '../../src/ca/credentials.js';
import { CREATE_CERTIFICATE_PATH, caServiceDefinition, createCaService, type IstioCertificateRequest, type IstioCertificateResponse } from '../../src/ca/service.js';
import { generateKeyAndCsr } from '../../src/identity/csr.js';
import { CONTROL_PLANE_SPIFFE_ID } from '../../src/identity/spiffe.js';
import { TokenAuthority } from '../../src/identity/tokens.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createControlPlaneMetrics } from '../../src/observability/metrics.js';
import { createRegistry, type Registry } from '../../src/registry/index.js';
import { createFileSource, type FileSource } from '../../src/sources/file/index.js';
import { createStoreSource, type StoreSource } from '../../src/sources/store/index.js';
import { openStore, type Store } from '../../src/store/index.js';

/** The trust domain of every harness. */
export const TD = 'cluster.local';

/** An answer of the API as a test sees it. */
export interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body (undefined when the body is not JSON). */
  json: unknown;
}

/** Options of one request. `token: null` sends no Authorization header. */
export interface ApiRequestOptions {
  token?: string | null;
  body?: string | object;
  contentType?: string;
  headers?: Record<string, string>;
}

/** A client SVID for mTLS requests. */
export interface ClientSvid {
  certChainPem: string;
  keyPem: string;
  spiffeId: string;
}

/** A running API with its parts. */
export interface ApiHarness {
  url: string;
  dataDir: string;
  configDir: string;
  /** An admin token for every namespace. */
  adminToken: string;
  store: Store;
  tokens: TokenAuthority;
  registry: Registry;
  ca: CertificateAuthority;
  trustBundlePem: string;
  /** `host:port` of the CA gRPC service, when started with `caService: true`. */
  caAddress?: string;
  request(method: string, urlPath: string, opts?: ApiRequestOptions): Promise<ApiAnswer>;
  /** A request over HTTPS presenting `svid` (harness started with `tls: true`). */
  requestWithSvid(method: string, urlPath: string, svid: ClientSvid | undefined, opts?: ApiRequestOptions): Promise<ApiAnswer>;
  /** Issues an SVID for `spiffe://cluster.local/ns/<ns>/sa/<sa>` from the harness CA. */
  issueSvid(namespace: string, serviceAccount: string): Promise<ClientSvid>;
  /** Publishes pending registry changes now. */
  flush(): void;
  close(): Promise<void>;
}

/** Options of {@link startApiHarness}. */
export interface ApiHarnessOptions {
  /** Files to put in the config dir (name → YAML) before the file source starts. */
  configFiles?: Record<string, string>;
  maxBodyBytes?: number;
  eventRetention?: number;
  /** Serve HTTPS with a CA-issued serving certificate and accept client SVIDs. */
  tls?: boolean;
  /** Also start the CA gRPC service on the same store. */
  caService?: boolean;
  health?: ApiDeps['health'];
}

/** Starts the harness; close it in `after()`. */
export async function startApiHarness(opts: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-api-'));
  const dataDir = path.join(root, 'data');
  const configDir = path.join(root, 'mesh');
  fs.mkdirSync(configDir, { recursive: true });
  for (const [name, text] of Object.entries(opts.configFiles ?? {})) fs.writeFileSync(path.join(configDir, name), text);
  const logger = silentLogger();
  const store = openStore({ dataDir, logger, ...(opts.eventRetention !== undefined ? { eventRetention: opts.eventRetention } : {}) });
  const ca = await CertificateAuthority.loadOrCreate({ dataDir, trustDomain: TD, logger });
  const trustBundlePem = ca.trustBundlePem();
  const tokens = await TokenAuthority.open({ dataDir, trustDomain: TD, logger, state: store.tokens });
  const registry = createRegistry({ logger, quietMs: 1, maxWaitMs: 5 });
  const fileSource: FileSource = createFileSource({ dir: configDir, logger, onUpdate: (rs) => registry.setSource('file', rs), debounceMs: 10, maxWaitMs: 50 });
  await fileSource.start();
  const storeSource: StoreSource = createStoreSource({ resources: store.resources, logger, onUpdate: (rs) => registry.setSource('api', rs) });
  await storeSource.start();
  registry.flush();
  const { token: adminToken } = await createAdminToken(store.adminTokens, { description: 'test harness' }, 'test');

  let serving: { certChainPem: string; keyPem: string } | undefined;
  if (opts.tls) serving = await ca.issueServingCert({ spiffeId: CONTROL_PLANE_SPIFFE_ID(TD), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ttlSeconds: 3600 });
  const app = createApiApp({
    store,
    registry,
    tokens,
    logger,
    ...(opts.tls ? { mtls: { trustBundlePem, trustDomain: TD, intermediatesPem: ca.intermediatesPemBundle() } } : {}),
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    ...(opts.health ? { health: opts.health } : {}),
    watchHeartbeatMs: 200,
  });
  const server: ApiServer = await startApiServer({
    fetch: app.fetch,
    hostname: '127.0.0.1',
    port: 0,
    logger,
    ...(serving ? { tls: { ...serving, caPem: trustBundlePem } } : {}),
  });

  let grpcServer: grpc.Server | undefined;
  let caAddress: string | undefined;
  if (opts.caService) {
    const service = createCaService({ ca, tokens, trustBundlePem, logger, metrics: createControlPlaneMetrics(), certificates: store.certificates });
    const grpcServing = serving ?? (await ca.issueServingCert({ spiffeId: CONTROL_PLANE_SPIFFE_ID(TD), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ttlSeconds: 3600 }));
    grpcServer = new grpc.Server();
    grpcServer.addService(service.definition, service.implementation);
    const port = await new Promise<number>((resolve, reject) => {
      grpcServer!.bindAsync('127.0.0.1:0', meshServerCredentials({ ...grpcServing, trustBundlePem }), (err, p) => (err ? reject(err) : resolve(p)));
    });
    caAddress = `127.0.0.1:${port}`;
  }

  const request = async (method: string, urlPath: string, o: ApiRequestOptions = {}): Promise<ApiAnswer> => {
    if (opts.tls) return httpsRequest(server.url, method, urlPath, trustBundlePem, undefined, o, adminToken);
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const token = o.token === undefined ? adminToken : o.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      headers['content-type'] = o.contentType ?? (typeof o.body === 'string' ? 'application/yaml' : 'application/json');
    }
    const res = await fetch(server.url + urlPath, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: parseJson(text) };
  };

  return {
    url: server.url,
    dataDir,
    configDir,
    adminToken,
    store,
    tokens,
    registry,
    ca,
    trustBundlePem,
    ...(caAddress ? { caAddress } : {}),
    request,
    requestWithSvid: (method, urlPath, svid, o = {}) => httpsRequest(server.url, method, urlPath, trustBundlePem, svid, { token: null, ...o }, adminToken),
    issueSvid: async (namespace, serviceAccount) => {
      const spiffeId = `spiffe://${TD}/ns/${namespace}/sa/${serviceAccount}`;
      const { csrPem, keyPem } = await generateKeyAndCsr({ spiffeId });
      const chain = await ca.sign(csrPem, { spiffeId, ttlSeconds: 3600 });
      return { certChainPem: chain.slice(0, -1).join(''), keyPem, spiffeId };
    },
    flush: () => registry.flush(),
    close: async () => {
      await server.close();
      if (grpcServer) await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
      storeSource.stop();
      await fileSource.stop();
      registry.close();
      await store.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function httpsRequest(base: string, method: string, urlPath: string, caPem: string, svid: ClientSvid | undefined, o: ApiRequestOptions, adminToken: string): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  const token = o.token === undefined ? adminToken : o.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    headers['content-type'] = o.contentType ?? (typeof o.body === 'string' ? 'application/yaml' : 'application/json');
  }
  return new Promise((resolve, reject) => {
    const req = https.request(
      base + urlPath,
      { method, headers, ca: caPem, ...(svid ? { cert: svid.certChainPem, key: svid.keyPem } : {}), agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve({ status: res.statusCode ?? 0, headers: h, text, json: parseJson(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Calls CreateCertificate on `address` with a bootstrap token and/or a client SVID; resolves the chain or rejects with the gRPC error. */
export async function requestCertificate(
  address: string,
  trustBundlePem: string,
  spiffeId: string,
  auth: { token?: string; svid?: { certChainPem: string; keyPem: string } },
): Promise<{ chain: string[]; keyPem: string }> {
  const { csrPem, keyPem } = await generateKeyAndCsr({ spiffeId });
  const def = caServiceDefinition()['CreateCertificate'] as grpc.MethodDefinition<IstioCertificateRequest, IstioCertificateResponse>;
  const client = new grpc.Client(address, meshChannelCredentials({ trustBundlePem, ...(auth.svid ?? {}) }));
  const md = new grpc.Metadata();
  if (auth.token !== undefined) md.set('authorization', `Bearer ${auth.token}`);
  try {
    const res = await new Promise<IstioCertificateResponse>((resolve, reject) => {
      client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, def.requestSerialize, def.responseDeserialize, { csr: csrPem, validityDuration: 3600 }, md, { deadline: Date.now() + 10_000 }, (err, r) =>
        err || !r ? reject(err ?? new Error('empty response')) : resolve(r),
      );
    });
    return { chain: res.certChain, keyPem };
  } finally {
    client.close();
  }
}

/** Reads server-sent events from `url` until `until` returns true for the events so far (or `timeoutMs`). */
export async function readSse(
  url: string,
  token: string,
  until: (events: SseEvent[]) => boolean,
  opts: { headers?: Record<string, string>; timeoutMs?: number; onOpen?: () => Promise<void> } = {},
): Promise<SseEvent[]> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), opts.timeoutMs ?? 10_000);
  const events: SseEvent[] = [];
  try {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...(opts.headers ?? {}) }, signal: ctrl.signal });
    if (res.status !== 200 || !res.body) throw new Error(`watch answered ${res.status}: ${await res.text()}`);
    const opened = opts.onOpen?.();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    while (!until(events)) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let sep: number;
      while ((sep = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const ev: SseEvent = { event: 'message', id: '', data: '', comment: false };
        const lines = block.split('\n');
        if (lines.every((l) => l.startsWith(':'))) continue;
        for (const line of lines) {
          if (line.startsWith('event: ')) ev.event = line.slice(7);
          else if (line.startsWith('id: ')) ev.id = line.slice(4);
          else if (line.startsWith('data: ')) ev.data += line.slice(6);
        }
        events.push(ev);
      }
    }
    await opened;
    await reader.cancel().catch(() => undefined);
    return events;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
}

/** One server-sent event. */
export interface SseEvent {
  event: string;
  id: string;
  data: string;
  comment: boolean;
}
