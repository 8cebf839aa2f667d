/**
 * The agent's SDS server: `envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets` (state
 * of the world xDS over gRPC) on a Unix socket, serving the two secrets Istio's agent serves
 * (DESIGN.md §6):
 *
 * - `default`: `tls_certificate` with the SVID chain and private key inline (the key never leaves
 *   the VM: the socket is mode 0600 in a 0700 directory);
 * - `ROOTCA`: `validation_context.trusted_ca` with the trust bundle inline.
 *
 * Protocol (Envoy's xDS protocol doc, "ACK/NACK and resource type instance version"): a request
 * without a nonce (a new stream or a changed subscription) is answered with the requested secrets;
 * a request echoing the last nonce is an ACK, or a NACK when it carries `error_detail` (logged,
 * never answered by a resend); a request with an older nonce is stale and ignored. Each update with
 * new content (a content-hash version) is pushed to every stream.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../src/observability/logger.js';
import { encodeAny, messageType, TypeUrl, type EncodedAny } from '../src/xds/protos/loader.js';
import { ensurePrivateDir } from './files.js';

/** The socket file name inside the socket directory. */
export const SDS_SOCKET_NAME = 'sds.sock';
/** Istio's name of the workload certificate secret. */
export const SECRET_DEFAULT = 'default';
/** Istio's name of the trust bundle secret. */
export const SECRET_ROOTCA = 'ROOTCA';
/** gRPC path of the SotW SDS stream. */
export const STREAM_SECRETS_PATH = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';

/** The material behind the two secrets (PEM). */
export interface SdsSecrets {
  /** Leaf then intermediates. */
  certChainPem: string;
  /** PKCS#8 or SEC1 private key of the leaf. */
  keyPem: string;
  /** Trust bundle. */
  rootsPem: string;
}

/** An ACK or NACK received from a proxy. */
export interface SdsEvent {
  kind: 'ack' | 'nack';
  /** For an ACK the accepted version; for a NACK the version the proxy still uses. */
  version: string;
  nonce: string;
  resourceNames: string[];
  /** NACK `error_detail.message`. */
  message?: string;
  nodeId?: string;
}

/** A running SDS server. */
export interface SdsServer {
  /** Absolute path of the Unix socket. */
  readonly socketPath: string;
  /** Replaces the secrets; streams get the new version unless the content is unchanged. */
  update(secrets: SdsSecrets): void;
  /** Content-hash version of the current secrets, undefined before the first update. */
  version(): string | undefined;
  /** Registers a listener for ACKs and NACKs; returns an unsubscribe function. */
  onEvent(listener: (event: SdsEvent) => void): () => void;
  /** Ends all streams, stops the server and removes the socket file. */
  stop(): Promise<void>;
}

/** Options of {@link startSdsServer}. */
export interface SdsServerOptions {
  /** Directory for `sds.sock` (created 0700); `<dir>/sds.sock` must be shorter than 108 bytes. */
  socketDir: string;
  logger: Logger;
  /** Initial secrets; streams opened before the first update wait for it. */
  secrets?: SdsSecrets;
}

interface DecodedRequest {
  versionInfo?: string;
  node?: { id?: string };
  resourceNames?: string[];
  typeUrl?: string;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string };
}

interface CurrentSecrets {
  version: string;
  byName: Map<string, EncodedAny>;
}

/** Encodes the two secrets as `envoy.extensions.transport_sockets.tls.v3.Secret` Anys. */
export function encodeSecrets(secrets: SdsSecrets): Map<string, EncodedAny> {
  return new Map([
    [
      SECRET_DEFAULT,
      encodeAny(TypeUrl.Secret, {
        name: SECRET_DEFAULT,
        tlsCertificate: {
          certificateChain: { inlineBytes: Buffer.from(secrets.certChainPem) },
          privateKey: { inlineBytes: Buffer.from(secrets.keyPem) },
        },
      }),
    ],
    [SECRET_ROOTCA, encodeAny(TypeUrl.Secret, { name: SECRET_ROOTCA, validationContext: { trustedCa: { inlineBytes: Buffer.from(secrets.rootsPem) } } })],
  ]);
}

/**
 * Starts the SDS server on `unix:<socketDir>/sds.sock` (a stale socket file is replaced). Throws
 * when the path is too long for a Unix socket or the socket cannot be bound.
 */
export async function startSdsServer(opts: SdsServerOptions): Promise<SdsServer> {
  const socketPath = path.resolve(opts.socketDir, SDS_SOCKET_NAME);
  if (Buffer.byteLength(socketPath) >= 108) {
    throw new Error(`SDS socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes; Unix socket paths must be shorter than 108 bytes`);
  }
  await ensurePrivateDir(opts.socketDir);
  await removeStaleSocket(socketPath);

  const log = opts.logger.child({ component: 'sds' });
  const Request = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const Response = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const listeners = new Set<(e: SdsEvent) => void>();
  const streams = new Set<SecretStream>();
  let current: CurrentSecrets | undefined;

  const emit = (event: SdsEvent): void => {
    for (const l of listeners) {
      try {
        l(event);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'SDS event listener failed');
      }
    }
  };

  const setSecrets = (secrets: SdsSecrets): boolean => {
    const byName = encodeSecrets(secrets);
    const hash = crypto.createHash('sha256');
    for (const [name, any] of byName) hash.update(name).update(any.value);
    const version = hash.digest('hex').slice(0, 16);
    if (current?.version === version) return false;
    current = { version, byName };
    return true;
  };
  if (opts.secrets) setSecrets(opts.secrets);

  class SecretStream {
    private nonceCounter = 0;
    private lastNonce: string | undefined;
    private names: string[] | undefined;
    private sentKey: string | undefined;
    private nodeId: string | undefined;
    private warnedMissing = new Set<string>();

    constructor(private readonly call: grpc.ServerDuplexStream<DecodedRequest, Buffer>) {}

    onRequest(req: DecodedRequest): void {
      if (req.node?.id) this.nodeId = req.node.id;
      if (req.typeUrl && req.typeUrl !== TypeUrl.Secret) {
        log.warn({ typeUrl: req.typeUrl, nodeId: this.nodeId }, 'SDS request for another type ignored');
        return;
      }
      const nonce = req.responseNonce ?? '';
      const names = [...(req.resourceNames ?? [])].sort();
      if (nonce && nonce !== this.lastNonce) {
        log.debug({ nonce, nodeId: this.nodeId }, 'stale SDS request ignored');
        return;
      }
      this.names = names;
      if (nonce) {
        if (req.errorDetail && (req.errorDetail.code || req.errorDetail.message)) {
          log.warn({ nodeId: this.nodeId, nonce, version: req.versionInfo ?? '', names, error: req.errorDetail.message ?? '' }, 'SDS NACK: proxy rejected secrets');
          emit({ kind: 'nack', version: req.versionInfo ?? '', nonce, resourceNames: names, message: req.errorDetail.message ?? '', ...(this.nodeId ? { nodeId: this.nodeId } : {}) });
          return;
        }
        log.debug({ nodeId: this.nodeId, nonce, version: req.versionInfo ?? '', names }, 'SDS ACK');
        emit({ kind: 'ack', version: req.versionInfo ?? '', nonce, resourceNames: names, ...(this.nodeId ? { nodeId: this.nodeId } : {}) });
        this.push(); // sends only when the subscription or the version changed
        return;
      }
      this.sentKey = undefined; // a request without nonce always gets an answer
      this.push();
    }

    private key(): string {
      return `${current?.version ?? ''}|${(this.names ?? []).join(',')}`;
    }

    /** Sends the current secrets for the subscribed names, if anything changed since the last send. */
    push(): void {
      if (!current || this.names === undefined) return;
      const key = this.key();
      if (key === this.sentKey) return;
      const wanted = this.names.length ? this.names : [...current.byName.keys()];
      const resources: EncodedAny[] = [];
      for (const name of wanted) {
        const any = current.byName.get(name);
        if (any) resources.push(any);
        else if (!this.warnedMissing.has(name)) {
          this.warnedMissing.add(name);
          log.warn({ nodeId: this.nodeId, name }, 'SDS request for an unknown secret; only "default" and "ROOTCA" are served');
        }
      }
      if (resources.length === 0) return;
      const nonce = `${++this.nonceCounter}`;
      // google.protobuf.Any comes from protobufjs' built-in descriptor, whose field is `type_url`
      // (not camelCased like the loaded .proto files): `typeUrl` would be dropped silently.
      const anys = resources.map((r) => ({ type_url: r.typeUrl, value: r.value }));
      const bytes = Response.encode(Response.fromObject({ versionInfo: current.version, resources: anys, typeUrl: TypeUrl.Secret, nonce })).finish();
      this.lastNonce = nonce;
      this.sentKey = key;
      this.call.write(Buffer.from(bytes));
      log.debug({ nodeId: this.nodeId, version: current.version, nonce, names: wanted }, 'SDS response sent');
    }

    end(): void {
      this.call.end();
    }
  }

  const definition: grpc.ServiceDefinition = {
    StreamSecrets: {
      path: STREAM_SECRETS_PATH,
      requestStream: true,
      responseStream: true,
      requestSerialize: (v: object) => Buffer.from(Request.encode(Request.fromObject(v)).finish()),
      requestDeserialize: (b: Buffer) => Request.toObject(Request.decode(b), { arrays: true }) as DecodedRequest,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  };

  const server = new grpc.Server();
  server.addService(definition, {
    StreamSecrets: (call: grpc.ServerDuplexStream<DecodedRequest, Buffer>) => {
      const stream = new SecretStream(call);
      streams.add(stream);
      call.on('data', (req: DecodedRequest) => {
        try {
          stream.onRequest(req);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'SDS request handling failed');
          call.destroy(err as Error);
        }
      });
      const done = (): void => {
        streams.delete(stream);
      };
      call.on('end', () => {
        done();
        call.end();
      });
      call.on('error', done);
      call.on('close', done);
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  await fs.chmod(socketPath, 0o600);
  log.info({ socketPath }, 'SDS server listening');

  return {
    socketPath,
    update(secrets) {
      if (!setSecrets(secrets)) return;
      log.info({ version: current?.version, streams: streams.size }, 'SDS secrets updated');
      for (const s of streams) s.push();
    },
    version: () => current?.version,
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      for (const s of streams) s.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await fs.rm(socketPath, { force: true });
    },
  };
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  try {
    const st = await fs.lstat(socketPath);
    if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
    await fs.rm(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
