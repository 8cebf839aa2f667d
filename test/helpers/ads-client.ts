/**
 * A raw SotW ADS client for tests: it speaks
 * `envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources` with
 * DiscoveryRequests built by protobufjs, so a test controls every field (nonce, version,
 * resource names, error_detail) and sees every response exactly as served.
 *
 * Typical use:
 *
 *   const ads = AdsTestClient.connect({ address: '127.0.0.1:15010', node: { id: 'sidecar~...' } });
 *   ads.subscribe(TypeUrl.Cluster);                  // first request: empty nonce and version
 *   const cds = await ads.next(TypeUrl.Cluster);      // the response, resources still encoded
 *   ads.decode(cds);                                  // -> plain objects (decodeAny)
 *   ads.ack(cds);                                     // or ads.nack(cds, 'bad cluster')
 *   assert.deepEqual(await ads.settle(), []);         // nothing else was pushed
 *   ads.close();
 *
 * `settle()` needs no timer: it subscribes to a fresh name of a probe type that no proxy uses,
 * which the server always answers (for a node that has a snapshot), and returns the responses
 * that arrived before that answer. Probe traffic shows up in the server's ACK and push counters
 * under the type `skiff.test.Probe`.
 */
import * as grpc from '@grpc/grpc-js';
import { versionedResource } from '../../src/xds/cache/version.js';
import { decodeAny, encodeAny, TypeUrl } from '../../src/xds/protos/loader.js';
import { ADS_SOTW_PATH, decodeDiscoveryResponse, encodeDiscoveryRequest, type DiscoveryRequestMessage, type DiscoveryResponseMessage } from '../../src/xds/server/messages.js';
import type { VersionedResource, XdsNode } from '../../src/xds/types.js';

/** Type URL the client uses for `settle()` probes. */
export const PROBE_TYPE_URL = 'type.googleapis.com/skiff.test.Probe';

/** Options for {@link AdsTestClient.connect}. */
export interface AdsTestClientOptions {
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

interface Received {
  seq: number;
  response: DiscoveryResponseMessage;
}

interface Waiter {
  typeUrl: string | undefined;
  resolve: (r: DiscoveryResponseMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface TypeView {
  names: string[];
  /** Version of the last response this client ACKed. */
  accepted: string;
  /** Nonce of the last response received. */
  nonce: string;
}

/** A raw ADS client over one stream. Create with {@link AdsTestClient.connect}. */
export class AdsTestClient {
  /** Every response received on the stream, in order (consumed or not). */
  readonly received: DiscoveryResponseMessage[] = [];
  readonly node: XdsNode;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Partial<DiscoveryRequestMessage>, DiscoveryResponseMessage>;
  private readonly inbox: Received[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly views = new Map<string, TypeView>();
  private readonly timeoutMs: number;
  private readonly status: Promise<grpc.StatusObject>;
  private endStatus: grpc.StatusObject | undefined;
  private seq = 0;
  private probes = 0;
  private sentNode = false;

  private constructor(opts: AdsTestClientOptions) {
    this.node = { cluster: '', metadata: {}, ...opts.node };
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.client = new grpc.Client(opts.address, opts.credentials ?? grpc.credentials.createInsecure(), opts.channelOptions);
    this.call = this.client.makeBidiStreamRequest(
      ADS_SOTW_PATH,
      (req: Partial<DiscoveryRequestMessage>) => encodeDiscoveryRequest(req),
      (bytes: Buffer) => decodeDiscoveryResponse(bytes),
      opts.metadata ?? new grpc.Metadata(),
    );
    this.status = new Promise((resolve) => {
      this.call.on('status', (s: grpc.StatusObject) => {
        this.endStatus = s;
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`ADS stream ended (${grpc.status[s.code]}: ${s.details}) while waiting for ${w.typeUrl ?? 'a response'}`));
        }
        resolve(s);
      });
    });
    this.call.on('error', () => {}); // the status above carries it
    this.call.on('data', (response: DiscoveryResponseMessage) => this.deliver(response));
  }

  /** Opens a stream to `opts.address`. Nothing is sent until the first request. */
  static connect(opts: AdsTestClientOptions): AdsTestClient {
    return new AdsTestClient(opts);
  }

  /**
   * Sends a raw request. The node is added to the first request of the stream unless `node` is
   * given explicitly (pass `node: undefined` to send none).
   */
  send(req: Partial<DiscoveryRequestMessage>): void {
    const out: Partial<DiscoveryRequestMessage> = { ...req };
    if (!this.sentNode && !('node' in req)) out.node = this.node;
    this.sentNode = true;
    this.call.write(out);
  }

  /**
   * Subscribes to `typeUrl` with `resourceNames` (empty = wildcard for LDS/CDS). The first call
   * for a type sends empty nonce and version; later calls change the subscription, carrying the
   * latest nonce and the last accepted version, as Envoy does.
   */
  subscribe(typeUrl: string, resourceNames: string[] = []): void {
    const view = this.views.get(typeUrl);
    if (!view) {
      this.views.set(typeUrl, { names: [...resourceNames], accepted: '', nonce: '' });
      this.send({ typeUrl, resourceNames, versionInfo: '', responseNonce: '' });
      return;
    }
    view.names = [...resourceNames];
    this.send({ typeUrl, resourceNames, versionInfo: view.accepted, responseNonce: view.nonce });
  }

  /** ACKs `response` (its version and nonce), keeping or changing the subscribed names. */
  ack(response: DiscoveryResponseMessage, resourceNames?: string[]): void {
    const view = this.viewOf(response.typeUrl);
    if (resourceNames) view.names = [...resourceNames];
    view.accepted = response.versionInfo;
    view.nonce = response.nonce;
    this.send({ typeUrl: response.typeUrl, resourceNames: view.names, versionInfo: response.versionInfo, responseNonce: response.nonce });
  }

  /**
   * NACKs `response`: `error_detail` with `message` (code INTERNAL, as Envoy sends) and the last
   * accepted version.
   */
  nack(response: DiscoveryResponseMessage, message: string, resourceNames?: string[]): void {
    const view = this.viewOf(response.typeUrl);
    if (resourceNames) view.names = [...resourceNames];
    view.nonce = response.nonce;
    this.send({
      typeUrl: response.typeUrl,
      resourceNames: view.names,
      versionInfo: view.accepted,
      responseNonce: response.nonce,
      errorDetail: { code: grpc.status.INTERNAL, message },
    });
  }

  /**
   * The next response not yet taken (of `typeUrl` if given; others stay queued). Rejects after
   * `timeoutMs` naming what did arrive, or when the stream ends.
   */
  next(typeUrl?: string, timeoutMs = this.timeoutMs): Promise<DiscoveryResponseMessage> {
    const i = this.inbox.findIndex((r) => typeUrl === undefined || r.response.typeUrl === typeUrl);
    if (i >= 0) {
      const [taken] = this.inbox.splice(i, 1);
      return Promise.resolve((taken as Received).response);
    }
    if (this.endStatus) {
      return Promise.reject(new Error(`ADS stream already ended (${grpc.status[this.endStatus.code]}: ${this.endStatus.details})`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        typeUrl,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          const seen = this.received.map((r) => `${r.typeUrl.split('/').pop() ?? ''}@${r.versionInfo}`).join(', ');
          reject(new Error(`no ${typeUrl ?? 'response'} within ${timeoutMs} ms; received so far: [${seen}]`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Waits until the server has handled everything sent so far and returns (and takes) the
   * responses that arrived meanwhile and were not taken yet, in order. `[]` means "nothing was
   * pushed". Needs the node to have a snapshot in the server's cache.
   */
  async settle(timeoutMs = this.timeoutMs): Promise<DiscoveryResponseMessage[]> {
    this.subscribe(PROBE_TYPE_URL, [`probe-${++this.probes}`]);
    const probe = this.received.length;
    await this.next(PROBE_TYPE_URL, timeoutMs);
    const probeSeq = this.received.findIndex((r, i) => i >= probe && r.typeUrl === PROBE_TYPE_URL);
    const before: DiscoveryResponseMessage[] = [];
    for (let i = 0; i < this.inbox.length; ) {
      const item = this.inbox[i] as Received;
      if (item.response.typeUrl !== PROBE_TYPE_URL && (probeSeq < 0 || item.seq < probeSeq)) {
        before.push(item.response);
        this.inbox.splice(i, 1);
      } else i++;
    }
    return before;
  }

  /** The final status of the stream (resolves when the server ends it or after `close()`). */
  ended(): Promise<grpc.StatusObject> {
    return this.status;
  }

  /** Decodes every resource of `response` to a plain object (protobufjs JSON form). */
  decode(response: DiscoveryResponseMessage): Array<Record<string, unknown>> {
    return response.resources.map((r) => decodeAny(r));
  }

  /** The resource names in `response`: `name`, or `clusterName` for a ClusterLoadAssignment. */
  names(response: DiscoveryResponseMessage): string[] {
    return this.decode(response).map((r) => {
      const name = r['name'] ?? r['clusterName'];
      return typeof name === 'string' ? name : '';
    });
  }

  /** Half-closes and cancels the stream and closes the channel. */
  close(): void {
    if (!this.endStatus) this.call.cancel();
    this.client.close();
  }

  private viewOf(typeUrl: string): TypeView {
    let view = this.views.get(typeUrl);
    if (!view) {
      view = { names: [], accepted: '', nonce: '' };
      this.views.set(typeUrl, view);
    }
    return view;
  }

  private deliver(response: DiscoveryResponseMessage): void {
    const seq = this.seq++;
    this.received.push(response);
    this.viewOf(response.typeUrl).nonce = response.nonce;
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

/*
 * Small, valid Envoy resources for ADS tests (encoded with the strict encoder, versioned by
 * content). `tag` changes the content, and so the version, without changing the name.
 */

/** An EDS cluster `name` whose ClusterLoadAssignment is `name`. */
export function testCluster(name: string, tag = ''): VersionedResource {
  return versionedResource(
    name,
    encodeAny(TypeUrl.Cluster, {
      name,
      type: 'EDS',
      edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
      connectTimeout: { seconds: 1 + tag.length, nanos: 0 },
    }),
  );
}

/** A ClusterLoadAssignment for `clusterName` with one endpoint per address (port 8080). */
export function testEndpoints(clusterName: string, addresses: string[] = ['127.0.0.1']): VersionedResource {
  return versionedResource(
    clusterName,
    encodeAny(TypeUrl.ClusterLoadAssignment, {
      clusterName,
      endpoints: [{ lbEndpoints: addresses.map((address) => ({ endpoint: { address: { socketAddress: { address, portValue: 8080 } } } })) }],
    }),
  );
}

/** A Listener `name` on 127.0.0.1:`port` (no filter chains: enough for protocol tests). */
export function testListener(name: string, port = 15001): VersionedResource {
  return versionedResource(name, encodeAny(TypeUrl.Listener, { name, address: { socketAddress: { address: '127.0.0.1', portValue: port } } }));
}

/** A RouteConfiguration `name` sending everything to `cluster`. */
export function testRoute(name: string, cluster: string): VersionedResource {
  return versionedResource(
    name,
    encodeAny(TypeUrl.RouteConfiguration, {
      name,
      virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
    }),
  );
}
