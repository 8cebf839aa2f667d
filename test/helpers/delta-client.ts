/**
 * A raw delta ADS client for tests: it speaks
 * `envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources` with
 * DeltaDiscoveryRequests built by protobufjs, so a test controls every field (subscribe and
 * unsubscribe names, initial_resource_versions, nonce, error_detail) and sees every response
 * exactly as served. It also keeps what a real client would hold (name → version per type, from
 * the responses it received), for reconnect tests.
 *
 *   const ads = DeltaAdsTestClient.connect({ address, node: { id: 'sidecar~...' } });
 *   ads.subscribe(TypeUrl.Cluster);                  // legacy wildcard: nothing named
 *   const cds = await ads.next(TypeUrl.Cluster);
 *   ads.ack(cds);                                    // or ads.nack(cds, 'bad cluster')
 *   assert.deepEqual(await ads.settle(), []);        // nothing else was pushed
 *
 * `settle()` subscribes to a fresh name of a probe type no proxy uses; the server answers it with
 * that name in `removed_resources` (a subscribed name that does not exist), after everything sent
 * before. Probe traffic shows up in the server's push counter under `skiff.test.Probe`.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeAny } from '../../src/xds/protos/loader.js';
import {
  ADS_DELTA_PATH,
  decodeDeltaDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  type DeltaDiscoveryRequestMessage,
  type DeltaDiscoveryResponseMessage,
} from '../../src/xds/server/delta-messages.js';
import type { XdsNode } from '../../src/xds/types.js';
import { PROBE_TYPE_URL } from './ads-client.js';

export { PROBE_TYPE_URL };

/** Options for {@link DeltaAdsTestClient.connect}. */
export interface DeltaAdsTestClientOptions {
  /** `host:port` of the server. */
  address: string;
  /** Sent on the first request; `cluster` defaults to `''` and `metadata` to `{}`. */
  node: Partial<XdsNode> & { id: string };
  /** Defaults to insecure (plaintext) credentials. */
  credentials?: grpc.ChannelCredentials;
  /** Call metadata (e.g. `authorization: Bearer ...`). */
  metadata?: grpc.Metadata;
  channelOptions?: grpc.ChannelOptions;
  /** Default wait of `next()` and `settle()` in milliseconds (10 s). */
  timeoutMs?: number;
}

/** One decoded resource of a response. */
export interface DecodedDeltaResource {
  name: string;
  version: string;
  aliases: readonly string[];
  typeUrl: string;
  /** The resource message in protobufjs JSON form (`decodeAny`). */
  value: Record<string, unknown>;
}

interface Waiter {
  typeUrl: string | undefined;
  resolve: (r: DeltaDiscoveryResponseMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A raw delta ADS client over one stream. Create with {@link DeltaAdsTestClient.connect}. */
export class DeltaAdsTestClient {
  /** Every response received on the stream, in order (consumed or not). */
  readonly received: DeltaDiscoveryResponseMessage[] = [];
  /** What the client holds, by type URL then name → version (updated as responses arrive). */
  readonly held = new Map<string, Map<string, string>>();
  readonly node: XdsNode;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Partial<DeltaDiscoveryRequestMessage>, DeltaDiscoveryResponseMessage>;
  private readonly inbox: { seq: number; response: DeltaDiscoveryResponseMessage }[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly timeoutMs: number;
  private readonly status: Promise<grpc.StatusObject>;
  private endStatus: grpc.StatusObject | undefined;
  private seq = 0;
  private probes = 0;
  private sentNode = false;

  private constructor(opts: DeltaAdsTestClientOptions) {
    this.node = { cluster: '', metadata: {}, ...opts.node };
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.client = new grpc.Client(opts.address, opts.credentials ?? grpc.credentials.createInsecure(), opts.channelOptions);
    this.call = this.client.makeBidiStreamRequest(
      ADS_DELTA_PATH,
      (req: Partial<DeltaDiscoveryRequestMessage>) => encodeDeltaDiscoveryRequest(req),
      (bytes: Buffer) => decodeDeltaDiscoveryResponse(bytes),
      opts.metadata ?? new grpc.Metadata(),
    );
    this.status = new Promise((resolve) => {
      this.call.on('status', (s: grpc.StatusObject) => {
        this.endStatus = s;
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`delta ADS stream ended (${grpc.status[s.code]}: ${s.details}) while waiting for ${w.typeUrl ?? 'a response'}`));
        }
        resolve(s);
      });
    });
    this.call.on('error', () => {}); // the status above carries it
    this.call.on('data', (response: DeltaDiscoveryResponseMessage) => this.deliver(response));
  }

  /** Opens a stream to `opts.address`. Nothing is sent until the first request. */
  static connect(opts: DeltaAdsTestClientOptions): DeltaAdsTestClient {
    return new DeltaAdsTestClient(opts);
  }

  /**
   * Sends a raw request. The node is added to the first request of the stream unless `node` is
   * given explicitly (pass `node: undefined` to send none).
   */
  send(req: Partial<DeltaDiscoveryRequestMessage>): void {
    const out: Partial<DeltaDiscoveryRequestMessage> = { ...req };
    if (!this.sentNode && !('node' in req)) out.node = this.node;
    this.sentNode = true;
    this.call.write(out);
  }

  /**
   * A spontaneous request (no nonce) subscribing to `names` (none: the legacy wildcard on a
   * type's first request) and optionally unsubscribing others or declaring what the client holds.
   */
  subscribe(typeUrl: string, names: string[] = [], extra: { unsubscribe?: string[]; initialResourceVersions?: Record<string, string>; responseNonce?: string } = {}): void {
    this.send({
      typeUrl,
      resourceNamesSubscribe: names,
      resourceNamesUnsubscribe: extra.unsubscribe ?? [],
      initialResourceVersions: extra.initialResourceVersions ?? {},
      responseNonce: extra.responseNonce ?? '',
    });
  }

  /** A spontaneous request unsubscribing from `names`. */
  unsubscribe(typeUrl: string, names: string[]): void {
    this.send({ typeUrl, resourceNamesUnsubscribe: names });
  }

  /** ACKs `response` (its nonce, nothing else, as ztunnel and Envoy do). */
  ack(response: DeltaDiscoveryResponseMessage): void {
    this.send({ typeUrl: response.typeUrl, responseNonce: response.nonce });
  }

  /** NACKs `response`: its nonce and `error_detail` with `message` (code INTERNAL unless given). */
  nack(response: DeltaDiscoveryResponseMessage, message: string, code: number = grpc.status.INTERNAL): void {
    this.send({ typeUrl: response.typeUrl, responseNonce: response.nonce, errorDetail: { code, message } });
  }

  /**
   * The next response not yet taken (of `typeUrl` if given; others stay queued). Rejects after
   * `timeoutMs` naming what did arrive, or when the stream ends.
   */
  next(typeUrl?: string, timeoutMs = this.timeoutMs): Promise<DeltaDiscoveryResponseMessage> {
    const i = this.inbox.findIndex((r) => typeUrl === undefined || r.response.typeUrl === typeUrl);
    if (i >= 0) {
      const [taken] = this.inbox.splice(i, 1);
      return Promise.resolve(taken!.response);
    }
    if (this.endStatus) return Promise.reject(new Error(`delta ADS stream already ended (${grpc.status[this.endStatus.code]}: ${this.endStatus.details})`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        typeUrl,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          const seen = this.received.map((r) => `${r.typeUrl.split('/').pop() ?? ''}(+${r.resources.length}/-${r.removedResources.length})`).join(', ');
          reject(new Error(`no ${typeUrl ?? 'response'} within ${timeoutMs} ms; received so far: [${seen}]`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Waits until the server has handled everything sent so far and returns (and takes) the
   * responses that arrived meanwhile and were not taken yet, in order; `[]` means "nothing was
   * pushed". Needs the node to have a snapshot in the server's cache.
   */
  async settle(timeoutMs = this.timeoutMs): Promise<DeltaDiscoveryResponseMessage[]> {
    const name = `probe-${++this.probes}`;
    const before = this.received.length;
    this.subscribe(PROBE_TYPE_URL, [name]);
    let probe: DeltaDiscoveryResponseMessage;
    do probe = await this.next(PROBE_TYPE_URL, timeoutMs);
    while (!probe.removedResources.includes(name));
    this.ack(probe);
    const probeSeq = this.received.indexOf(probe, before);
    const out: DeltaDiscoveryResponseMessage[] = [];
    for (let i = 0; i < this.inbox.length; ) {
      const item = this.inbox[i]!;
      if (item.response.typeUrl !== PROBE_TYPE_URL && item.seq < probeSeq) {
        out.push(item.response);
        this.inbox.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** The final status of the stream (resolves when the server ends it or after `close()`). */
  ended(): Promise<grpc.StatusObject> {
    return this.status;
  }

  /** Decodes every resource of `response` (names, versions, aliases and the message). */
  decode(response: DeltaDiscoveryResponseMessage): DecodedDeltaResource[] {
    return response.resources.map((r) => ({ name: r.name, version: r.version, aliases: r.aliases ?? [], typeUrl: r.resource.typeUrl, value: decodeAny(r.resource) }));
  }

  /** Resource names in `response`. */
  names(response: DeltaDiscoveryResponseMessage): string[] {
    return response.resources.map((r) => r.name);
  }

  /** What the client holds of `typeUrl` as a plain object (for `initial_resource_versions`). */
  holds(typeUrl: string): Record<string, string> {
    return Object.fromEntries(this.held.get(typeUrl) ?? []);
  }

  /** Cancels the stream and closes the channel. */
  close(): void {
    if (!this.endStatus) this.call.cancel();
    this.client.close();
  }

  private deliver(response: DeltaDiscoveryResponseMessage): void {
    const seq = this.seq++;
    this.received.push(response);
    let held = this.held.get(response.typeUrl);
    if (!held) {
      held = new Map();
      this.held.set(response.typeUrl, held);
    }
    for (const name of response.removedResources) held.delete(name);
    for (const r of response.resources) held.set(r.name, r.version);
    const i = this.waiters.findIndex((w) => w.typeUrl === undefined || w.typeUrl === response.typeUrl);
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1) as [Waiter];
      clearTimeout(w.timer);
      w.resolve(response);
      return;
    }
    this.inbox.push({ seq, response });
  }
}
