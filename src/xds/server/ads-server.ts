/**
 * The ADS server, state of the world (DESIGN.md §1, §11, after go-control-plane's split): it
 * owns streams, nonces and subscriptions and only moves bytes; resources and versions live in
 * the cache, reached through the narrow {@link ConfigWatcher} interface. Serves
 * `envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources` on
 * @grpc/grpc-js; register `service.definition` and `service.implementation` on a `grpc.Server`.
 * The protocol rules are described in `sotw-stream.ts`.
 */
import { status as Status, type ServerDuplexStream, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '../../observability/logger.js';
import type { ConfigWatcher, XdsNode } from '../types.js';
import { adsSotwMethod, type DiscoveryResponseMessage, type IncomingRequest } from './messages.js';
import { SotwStream, type AuthorizeResult, type NackInfo, type StreamInfo, type StreamMetrics } from './sotw-stream.js';

/** The server side of one `StreamAggregatedResources` call, as handed to `authorize`. */
export type AdsCall = ServerDuplexStream<IncomingRequest, DiscoveryResponseMessage>;

/** Options for {@link createAdsServer}. */
export interface AdsServerOptions {
  /** Where resources come from: the snapshot cache, or a fake in tests. */
  cache: ConfigWatcher;
  logger: Logger;
  /** Updates `xdsPushes`, `xdsAcks`, `xdsRejects` (by `type`) and `xdsConnections` (`kind=sotw`). */
  metrics: StreamMetrics;
  /**
   * Decides, on the stream's first request (the one carrying the node), whether the node may
   * connect; `{ok: false, code, message}` ends the stream with that gRPC status. The call gives
   * access to the peer certificate (`call.getAuthContext()`) and metadata. A thrown error ends
   * the stream with UNAVAILABLE.
   */
  authorize?: (node: XdsNode, call: AdsCall) => Promise<AuthorizeResult>;
  /** Awaited after authorization and before the first watch opens: compute the node's snapshot. */
  onStreamOpen?: (node: XdsNode, stream: StreamInfo) => void | Promise<void>;
  /** Called once for every stream whose `onStreamOpen` ran, after the stream closed. */
  onStreamClose?: (node: XdsNode, stream: StreamInfo) => void | Promise<void>;
  /** The client accepted `versionInfo` of `typeUrl`. */
  onAck?: (node: XdsNode, typeUrl: string, versionInfo: string) => void;
  /** The client rejected a response (already logged as a warning and counted). */
  onNack?: (node: XdsNode, typeUrl: string, nack: NackInfo) => void;
}

/** The ADS server: a gRPC service to register, and its streams. */
export interface AdsServer {
  /** Pass both to `grpc.Server.addService(definition, implementation)`. */
  service: { definition: ServiceDefinition; implementation: UntypedServiceImplementation };
  /** Debug view of the open streams. */
  streams(): StreamInfo[];
  /**
   * Ends every open stream for which `predicate` is true with UNAVAILABLE and `reason` (e.g. a
   * revoked identity; the proxy reconnects and is authorized afresh). Returns how many.
   */
  closeStreams(predicate: (stream: StreamInfo) => boolean, reason?: string): number;
}

/** Creates the SotW ADS server over `opts.cache`. */
export function createAdsServer(opts: AdsServerOptions): AdsServer {
  const log = opts.logger;
  const open = new Map<number, SotwStream<AdsCall>>();
  let nextId = 0;
  const method = adsSotwMethod();

  function streamAggregatedResources(call: AdsCall): void {
    const id = ++nextId;
    const stream: SotwStream<AdsCall> = new SotwStream<AdsCall>({
      id,
      peer: call.getPeer(),
      call,
      cache: opts.cache,
      logger: log,
      metrics: opts.metrics,
      hooks: {
        authorize: opts.authorize,
        onStreamOpen: opts.onStreamOpen,
        onStreamClose: opts.onStreamClose,
        onAck: opts.onAck,
        onNack: opts.onNack,
      },
      sink: {
        send: (response) => {
          call.write(response);
        },
        close: (code, message) => {
          if (code === Status.OK) {
            call.end();
            return;
          }
          // grpc-js turns an 'error' event on a server stream into the call's final status.
          call.emit('error', Object.assign(new Error(message), { code, details: message }));
        },
      },
      onClosed: (s) => {
        open.delete(s.id);
      },
    });
    open.set(id, stream);
    call.on('data', (incoming: IncomingRequest) => stream.receive(incoming));
    call.on('end', () => {
      // The client half-closed: nothing more will be asked; finish with OK.
      if (!stream.isClosed) stream.fail(Status.OK, 'OK');
    });
    call.on('cancelled', () => stream.shutdown());
    call.on('error', () => stream.shutdown());
    call.on('close', () => stream.shutdown());
  }

  return {
    service: {
      definition: { StreamAggregatedResources: method },
      implementation: { StreamAggregatedResources: streamAggregatedResources },
    },
    streams() {
      return [...open.values()].map((s) => s.info());
    },
    closeStreams(predicate, reason = 'stream closed by the control plane') {
      let n = 0;
      for (const stream of [...open.values()]) {
        if (stream.isClosed || !predicate(stream.info())) continue;
        stream.fail(Status.UNAVAILABLE, reason);
        n++;
      }
      if (n > 0) log.info({ streams: n, reason }, 'closed xDS streams');
      return n;
    },
  };
}
