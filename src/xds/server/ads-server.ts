/**
 * The ADS server, state of the world and delta (DESIGN.md §1, §11, after go-control-plane's
 * split): it owns streams, nonces and subscriptions and only moves bytes; resources and versions
 * live in the cache, reached through the narrow {@link ConfigWatcher} and
 * {@link DeltaConfigWatcher} interfaces. Serves
 * `envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources` and
 * `.../DeltaAggregatedResources` on @grpc/grpc-js; register `service.definition` and
 * `service.implementation` on a `grpc.Server`. Both kinds of stream share the hooks
 * (authorization, open/close, ACK/NACK) and the stream ids. The protocol rules are described in
 * `sotw-stream.ts` and `delta-stream.ts`.
 */
import { status as Status, type ServerDuplexStream, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '../../observability/logger.js';
import type { ConfigWatcher, DeltaConfigWatcher, XdsNode } from '../types.js';
import { adsDeltaMethod, type DeltaDiscoveryResponseMessage, type IncomingDeltaRequest } from './delta-messages.js';
import { DeltaStream } from './delta-stream.js';
import { adsSotwMethod, type DiscoveryResponseMessage, type IncomingRequest } from './messages.js';
import { SotwStream } from './sotw-stream.js';
import type { AdsStreamBase, AuthorizeResult, NackInfo, StreamInfo, StreamMetrics, StreamSink } from './stream-base.js';

/** The server side of one `StreamAggregatedResources` call. */
export type AdsSotwCall = ServerDuplexStream<IncomingRequest, DiscoveryResponseMessage>;
/** The server side of one `DeltaAggregatedResources` call. */
export type AdsDeltaCall = ServerDuplexStream<IncomingDeltaRequest, DeltaDiscoveryResponseMessage>;
/** Either kind of ADS call, as handed to `authorize` (metadata, peer, auth context). */
export type AdsCall = AdsSotwCall | AdsDeltaCall;

/** Options for {@link createAdsServer}. */
export interface AdsServerOptions {
  /**
   * Where resources come from: the snapshot cache, or a fake in tests. Without
   * `createDeltaWatch`, delta streams end with UNIMPLEMENTED.
   */
  cache: ConfigWatcher & Partial<DeltaConfigWatcher>;
  logger: Logger;
  /** Updates `xdsPushes`, `xdsAcks`, `xdsRejects` (by `type`) and `xdsConnections` (`kind=sotw|delta`). */
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

/** Creates the ADS server (SotW and delta) over `opts.cache`. */
export function createAdsServer(opts: AdsServerOptions): AdsServer {
  const log = opts.logger;
  const open = new Map<number, AdsStreamBase<AdsCall, { node: XdsNode | undefined }, unknown>>();
  let nextId = 0;
  const hooks = {
    authorize: opts.authorize,
    onStreamOpen: opts.onStreamOpen,
    onStreamClose: opts.onStreamClose,
    onAck: opts.onAck,
    onNack: opts.onNack,
  };

  function sinkFor<Response>(call: ServerDuplexStream<unknown, Response>): StreamSink<Response> {
    return {
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
    };
  }

  /** Wires a call's events to its stream. */
  function attach<Request>(call: ServerDuplexStream<Request, unknown>, stream: { id: number; isClosed: boolean; receive(r: Request): void; fail(c: Status, m: string): void; shutdown(): void }): void {
    call.on('data', (incoming: Request) => stream.receive(incoming));
    call.on('end', () => {
      // The client half-closed: nothing more will be asked; finish with OK.
      if (!stream.isClosed) stream.fail(Status.OK, 'OK');
    });
    call.on('cancelled', () => stream.shutdown());
    call.on('error', () => stream.shutdown());
    call.on('close', () => stream.shutdown());
  }

  function streamAggregatedResources(call: AdsSotwCall): void {
    const id = ++nextId;
    const stream = new SotwStream<AdsCall>({
      id,
      peer: call.getPeer(),
      call,
      cache: opts.cache,
      logger: log,
      metrics: opts.metrics,
      hooks,
      sink: sinkFor(call),
      onClosed: (s) => open.delete(s.id),
    });
    open.set(id, stream);
    attach(call, stream);
  }

  function deltaAggregatedResources(call: AdsDeltaCall): void {
    const cache = opts.cache;
    const createDeltaWatch = cache.createDeltaWatch;
    if (!createDeltaWatch) {
      call.emit('error', Object.assign(new Error('delta xDS is not served here'), { code: Status.UNIMPLEMENTED, details: 'delta xDS is not served here' }));
      return;
    }
    const id = ++nextId;
    const stream = new DeltaStream<AdsCall>({
      id,
      peer: call.getPeer(),
      call,
      cache: { createDeltaWatch: createDeltaWatch.bind(cache) },
      logger: log,
      metrics: opts.metrics,
      hooks,
      sink: sinkFor(call),
      onClosed: (s) => open.delete(s.id),
    });
    open.set(id, stream);
    attach(call, stream);
  }

  return {
    service: {
      definition: { StreamAggregatedResources: adsSotwMethod(), DeltaAggregatedResources: adsDeltaMethod() },
      implementation: { StreamAggregatedResources: streamAggregatedResources, DeltaAggregatedResources: deltaAggregatedResources },
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
