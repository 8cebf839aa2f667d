/**
 * The agent's local xDS endpoint (issue 8 §2): a grpc-js server on a Unix socket (or loopback
 * port), reachable only on the VM, that forwards every ADS stream to the control plane over mTLS
 * with the agent's own SVID, as Istio's node agent does with its XDS proxy. grpc-js-xds cannot
 * present a client certificate to its xDS server, so proxyless gRPC applications talk plaintext to
 * this endpoint and the agent carries their streams to the control plane (port 15012, DESIGN.md §5).
 *
 * Both ADS flavours are forwarded unchanged, message by message, as opaque bytes:
 * `envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources` (SotW) and
 * `.../DeltaAggregatedResources` (delta). Nothing is decoded, so nonces, versions, ACKs and NACKs
 * are end to end between the application's xDS client and the control plane. When either side
 * ends, the other is ended with the same status; a downstream cancel cancels the upstream call.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../src/observability/logger.js';

/** Fully qualified ADS method paths (envoy/service/discovery/v3/ads.proto). */
export const ADS_METHODS = {
  sotw: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  delta: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
} as const;

/** Options of {@link startXdsProxy}. */
export interface XdsProxyOptions {
  /**
   * Where to listen: `unix:<absolute path>` (recommended; the socket file is replaced if present
   * and made mode 0660) or `127.0.0.1:<port>` / `[::1]:<port>` (port 0 picks one). Anything that
   * is not a Unix socket or a loopback address is refused: the endpoint has no authentication.
   */
  listen: string;
  /** The control plane's xDS address, `host:port`. */
  upstream: string;
  /**
   * Channel credentials for the control plane, called for every new stream so a renewed SVID is
   * used from the next stream on (mTLS with the agent's SVID).
   */
  credentials: () => grpc.ChannelCredentials;
  /** Extra channel options for the upstream (e.g. a TLS server name override). */
  channelOptions?: grpc.ChannelOptions;
  logger: Logger;
}

/** A running local xDS endpoint. */
export interface XdsProxy {
  /** The address clients use: `unix:///<path>` or `<host>:<port>` with the bound port. */
  readonly address: string;
  /** Streams currently forwarded. */
  activeStreams(): number;
  /** Cancels every forwarded stream and stops listening (removes the socket file). */
  stop(): Promise<void>;
}

/** Thrown for a `listen` address the endpoint refuses (not a Unix socket or loopback). */
export class XdsProxyAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XdsProxyAddressError';
  }
}

const passthrough = (b: Buffer): Buffer => b;

function bidiDefinition(methodPath: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: methodPath,
    requestStream: true,
    responseStream: true,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  };
}

/** Checks `listen` and returns the grpc-js bind address plus the socket path (Unix) if any. */
export function parseListenAddress(listen: string): { bind: string; socketPath?: string } {
  if (listen.startsWith('unix:')) {
    const p = listen.replace(/^unix:(\/\/)?/, '');
    if (!path.isAbsolute(p)) throw new XdsProxyAddressError(`xDS proxy socket ${listen}: expected unix:<absolute path>`);
    if (Buffer.byteLength(p) >= 108) throw new XdsProxyAddressError(`xDS proxy socket ${p}: the path must be shorter than 108 bytes`);
    return { bind: `unix:${p}`, socketPath: p };
  }
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535) {
    throw new XdsProxyAddressError(`xDS proxy address ${listen}: expected unix:<path> or a loopback host:port (the endpoint has no authentication)`);
  }
  return { bind: listen };
}

/**
 * Starts the local xDS endpoint. Resolves once it listens. Throws {@link XdsProxyAddressError}
 * for a non-local address, or the bind error.
 */
export async function startXdsProxy(opts: XdsProxyOptions): Promise<XdsProxy> {
  const { bind, socketPath } = parseListenAddress(opts.listen);
  const log = opts.logger.child({ component: 'xds-proxy' });
  const active = new Set<{ cancel(): void }>();
  const server = new grpc.Server();

  const forward = (methodPath: string) => (down: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const client = new grpc.Client(opts.upstream, opts.credentials(), opts.channelOptions ?? {});
    const up = client.makeBidiStreamRequest(methodPath, passthrough, passthrough, new grpc.Metadata());
    let finished = false;
    const entry = {
      cancel: () => {
        up.cancel();
      },
    };
    active.add(entry);
    const finish = (): void => {
      if (finished) return;
      finished = true;
      active.delete(entry);
      client.close();
    };
    log.debug({ method: methodPath, peer: down.getPeer() }, 'forwarding xDS stream');
    down.on('data', (msg: Buffer) => {
      up.write(msg);
    });
    down.on('end', () => up.end());
    down.on('cancelled', () => {
      up.cancel();
      finish();
    });
    down.on('error', () => {
      up.cancel();
      finish();
    });
    up.on('data', (msg: Buffer) => {
      down.write(msg);
    });
    up.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) down.end();
      else {
        if (status.code !== grpc.status.CANCELLED) log.warn({ code: status.code, details: status.details }, 'control plane ended an xDS stream');
        down.emit('error', { code: status.code, details: status.details, metadata: new grpc.Metadata() });
      }
      finish();
    });
    up.on('error', () => {
      // The status event carries the outcome; this listener keeps the error from being unhandled.
    });
  };

  server.addService(
    { StreamAggregatedResources: bidiDefinition(ADS_METHODS.sotw), DeltaAggregatedResources: bidiDefinition(ADS_METHODS.delta) },
    { StreamAggregatedResources: forward(ADS_METHODS.sotw), DeltaAggregatedResources: forward(ADS_METHODS.delta) },
  );
  if (socketPath) {
    await fs.mkdir(path.dirname(socketPath), { recursive: true });
    await fs.rm(socketPath, { force: true });
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(bind, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  if (socketPath) await fs.chmod(socketPath, 0o660);
  const address = socketPath ? `unix://${socketPath}` : bind.replace(/:\d+$/, `:${port}`);
  log.info({ address, upstream: opts.upstream }, 'local xDS endpoint listening');

  let stopping: Promise<void> | undefined;
  return {
    address,
    activeStreams: () => active.size,
    stop: () => {
      stopping ??= (async () => {
        for (const s of [...active]) s.cancel();
        await new Promise<void>((resolve) => {
          server.tryShutdown(() => resolve());
          setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 2000).unref();
        });
        if (socketPath) await fs.rm(socketPath, { force: true });
      })();
      return stopping;
    },
  };
}
