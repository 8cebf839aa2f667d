/**
 * A test client that behaves like ztunnel's xDS client, written from the documented protocol
 * (Envoy's "Incremental xDS" and ztunnel's published `proto/xds.proto`, `workload.proto`,
 * `authorization.proto`) to check a control plane the way an unmodified ztunnel would use it:
 *
 * - one `DeltaAggregatedResources` stream over TLS, with `authorization: Bearer <token>` and
 *   `clusterid` metadata on the call;
 * - node id `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, metadata NAME, NAMESPACE,
 *   INSTANCE_IPS, NODE_NAME;
 * - on (re)connect, one request per type: `istio.workload.Address` and
 *   `istio.security.Authorization`, both a wildcard (nothing named); with `onDemand`, Address
 *   subscribes and unsubscribes `*` together ("subscribe to nothing"); each carries
 *   `initial_resource_versions` with what the client holds;
 * - every response is decoded resource by resource with the `istio.workload.Address` /
 *   `istio.security.Authorization` messages and checked (names, raw address lengths); a resource
 *   that does not decode or check, or that `reject` refuses, is rejected: the response is NACKed
 *   with `error_detail.message` and the rejected resources are not held (so a reconnect asks
 *   for them again). Otherwise it is ACKed with just `type_url` and `response_nonce`;
 * - ready once a response of each non-on-demand type was ACKed;
 * - `demand(name)` subscribes to one Address (on-demand) and resolves when a response carries that
 *   name as a resource or a removal.
 *
 * Every response and every request is recorded in `log` for assertions.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeAny, TypeUrl } from '../../src/xds/protos/loader.js';
import {
  ADS_DELTA_PATH,
  decodeDeltaDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  type DeltaDiscoveryRequestMessage,
  type DeltaDiscoveryResponseMessage,
} from '../../src/xds/server/delta-messages.js';

export const ADDRESS_TYPE = TypeUrl.Address;
export const AUTHORIZATION_TYPE = TypeUrl.Authorization;

/** Options of {@link ZtunnelXdsClient}. */
export interface ZtunnelClientOptions {
  /** `host:port` of the control plane (TLS). */
  address: string;
  /** PEM roots ztunnel verifies the control plane with (XDS_ROOT_CA). */
  rootCaPem: string;
  /** The bearer token (AUTH_TOKEN file content); undefined sends no authorization metadata. */
  token: string | undefined;
  /** `clusterid` metadata (ztunnel's CLUSTER_ID); default `Kubernetes`. */
  clusterId?: string;
  /** The workload this ztunnel serves in dedicated mode. */
  pod: { name: string; namespace: string; ip: string };
  /** XDS_ON_DEMAND: Address starts subscribed to nothing. */
  onDemand?: boolean;
  /** Extra channel options (e.g. a TLS server name override). */
  channelOptions?: grpc.ChannelOptions;
  /** Refuses a decoded resource with a reason (for NACK tests); return undefined to accept. */
  reject?: (typeUrl: string, name: string, resource: Record<string, unknown>) => string | undefined;
}

/** One decoded, checked resource of a response. */
export interface ZtunnelResource {
  name: string;
  version: string;
  aliases: string[];
  /** The decoded message (protobufjs JSON form; bytes as base64). */
  value: Record<string, unknown>;
}

/** A response as the client processed it. */
export interface ProcessedResponse {
  typeUrl: string;
  nonce: string;
  resources: ZtunnelResource[];
  removed: string[];
  /** The NACK message sent, if the response was rejected. */
  nack?: string;
  /** Which stream (1 = first connection) it came on. */
  connection: number;
}

type Logged = { dir: 'out'; request: Partial<DeltaDiscoveryRequestMessage>; connection: number } | { dir: 'in'; response: ProcessedResponse };

/** Checks a decoded resource the way ztunnel's handlers would accept it; returns a problem or undefined. */
export function checkResource(typeUrl: string, name: string, value: Record<string, unknown>): string | undefined {
  const bytesLen = (b64: unknown) => (typeof b64 === 'string' ? Buffer.from(b64, 'base64').length : -1);
  if (typeUrl === ADDRESS_TYPE) {
    const w = value['workload'] as Record<string, unknown> | undefined;
    const s = value['service'] as Record<string, unknown> | undefined;
    if ((w === undefined) === (s === undefined)) return 'Address must carry exactly one of workload and service';
    if (w) {
      if (w['uid'] !== name) return `workload uid ${String(w['uid'])} is not the resource name ${name}`;
      const addrs = (w['addresses'] as unknown[] | undefined) ?? [];
      if (addrs.length === 0 && !w['hostname']) return 'workload has neither addresses nor hostname';
      for (const a of addrs) if (![4, 16].includes(bytesLen(a))) return `workload address of ${bytesLen(a)} bytes`;
      for (const key of Object.keys((w['services'] as Record<string, unknown> | undefined) ?? {})) if (!/^[^/]+\/.+/.test(key)) return `services key ${key} is not namespace/hostname`;
    } else if (s) {
      if (`${String(s['namespace'])}/${String(s['hostname'])}` !== name) return `service ${String(s['namespace'])}/${String(s['hostname'])} is not the resource name ${name}`;
      for (const a of (s['addresses'] as Record<string, unknown>[] | undefined) ?? []) if (![4, 16].includes(bytesLen(a['address']))) return 'service address is not 4 or 16 bytes';
    }
    return undefined;
  }
  if (typeUrl === AUTHORIZATION_TYPE) {
    if (`${String(value['namespace'])}/${String(value['name'])}` !== name) return `authorization ${String(value['namespace'])}/${String(value['name'])} is not the resource name ${name}`;
    return undefined;
  }
  return `unknown type ${typeUrl}`;
}

/** A ztunnel-like delta xDS client; see the module comment. */
export class ZtunnelXdsClient {
  /** Requests sent and responses processed, in order. */
  readonly log: Logged[] = [];
  /** What the client holds: type URL → name → version (rejected resources excluded). */
  readonly known = new Map<string, Map<string, string>>([
    [ADDRESS_TYPE, new Map()],
    [AUTHORIZATION_TYPE, new Map()],
  ]);
  /** The decoded resources the client holds, by type URL then name. */
  readonly state = new Map<string, Map<string, ZtunnelResource>>([
    [ADDRESS_TYPE, new Map()],
    [AUTHORIZATION_TYPE, new Map()],
  ]);
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<Partial<DeltaDiscoveryRequestMessage>, DeltaDiscoveryResponseMessage> | undefined;
  private connection = 0;
  private expect = new Set<string>();
  private readyResolve: (() => void) | undefined;
  private readonly ready: Promise<void>;
  private readonly waiters: { test: (r: ProcessedResponse) => boolean; resolve: (r: ProcessedResponse) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private statusOf: Promise<grpc.StatusObject> | undefined;

  constructor(private readonly opts: ZtunnelClientOptions) {
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    this.expect = new Set(opts.onDemand ? [AUTHORIZATION_TYPE] : [ADDRESS_TYPE, AUTHORIZATION_TYPE]);
  }

  /** Istio's ztunnel node id. */
  get nodeId(): string {
    const { ip, name, namespace } = this.opts.pod;
    return `ztunnel~${ip}~${name}.${namespace}~${namespace}.svc.cluster.local`;
  }

  /** Opens a stream (a reconnect after `disconnect()`), sending the initial requests. */
  connect(): void {
    this.connection += 1;
    const connection = this.connection;
    const creds = grpc.credentials.createSsl(Buffer.from(this.opts.rootCaPem));
    this.client = new grpc.Client(this.opts.address, creds, this.opts.channelOptions);
    const md = new grpc.Metadata();
    if (this.opts.token !== undefined) md.set('authorization', `Bearer ${this.opts.token}`);
    md.set('clusterid', this.opts.clusterId ?? 'Kubernetes');
    const call = this.client.makeBidiStreamRequest(ADS_DELTA_PATH, encodeDeltaDiscoveryRequest, decodeDeltaDiscoveryResponse, md);
    this.call = call;
    this.statusOf = new Promise((resolve) => call.on('status', resolve));
    call.on('error', () => {});
    call.on('data', (r: DeltaDiscoveryResponseMessage) => this.handle(r, connection));
    const node = {
      id: this.nodeId,
      cluster: '',
      metadata: { NAME: this.opts.pod.name, NAMESPACE: this.opts.pod.namespace, INSTANCE_IPS: this.opts.pod.ip, NODE_NAME: '' },
    };
    for (const typeUrl of [ADDRESS_TYPE, AUTHORIZATION_TYPE]) {
      const onDemand = this.opts.onDemand === true && typeUrl === ADDRESS_TYPE;
      this.write({
        typeUrl,
        node,
        resourceNamesSubscribe: onDemand ? ['*'] : [],
        resourceNamesUnsubscribe: onDemand ? ['*'] : [],
        initialResourceVersions: Object.fromEntries(this.known.get(typeUrl) ?? []),
      });
    }
  }

  /** Resolves once a response of each type expected at start was ACKed. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** The final status of the current stream. */
  ended(): Promise<grpc.StatusObject> {
    return this.statusOf ?? Promise.reject(new Error('not connected'));
  }

  /** Subscribes to one Address by name or alias and resolves with the response that answers it. */
  demand(name: string, timeoutMs = 10_000): Promise<ProcessedResponse> {
    const answered = this.next((r) => r.typeUrl === ADDRESS_TYPE && (r.removed.includes(name) || r.resources.some((x) => x.name === name || x.aliases.includes(name))), timeoutMs);
    const held = this.known.get(ADDRESS_TYPE) as Map<string, string>;
    if (!held.has(name)) held.set(name, ''); // pending: claims no version, so the server always sends it
    this.write({ typeUrl: ADDRESS_TYPE, resourceNamesSubscribe: [name] });
    return answered;
  }

  /** Drops an on-demand subscription. */
  undemand(name: string): void {
    this.known.get(ADDRESS_TYPE)?.delete(name);
    this.write({ typeUrl: ADDRESS_TYPE, resourceNamesUnsubscribe: [name] });
  }

  /** The next processed response matching `test` (responses already processed are not seen). */
  next(test: (r: ProcessedResponse) => boolean = () => true, timeoutMs = 10_000): Promise<ProcessedResponse> {
    return new Promise((resolve, reject) => {
      const waiter = {
        test,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`no matching response within ${timeoutMs} ms; got: ${JSON.stringify(this.responses().map((r) => ({ t: r.typeUrl.split('.').pop(), n: r.resources.map((x) => x.name), rm: r.removed })))}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Every processed response so far. */
  responses(): ProcessedResponse[] {
    return this.log.flatMap((l) => (l.dir === 'in' ? [l.response] : []));
  }

  /** Every request sent so far. */
  requests(): Partial<DeltaDiscoveryRequestMessage>[] {
    return this.log.flatMap((l) => (l.dir === 'out' ? [l.request] : []));
  }

  /** Closes the current stream (the held resources stay, for a reconnect). */
  disconnect(): void {
    this.call?.cancel();
    this.client?.close();
    this.call = undefined;
    this.client = undefined;
  }

  private write(request: Partial<DeltaDiscoveryRequestMessage>): void {
    this.log.push({ dir: 'out', request, connection: this.connection });
    this.call?.write(request);
  }

  private handle(raw: DeltaDiscoveryResponseMessage, connection: number): void {
    const resources: ZtunnelResource[] = [];
    const rejected: string[] = [];
    for (const r of raw.resources) {
      let value: Record<string, unknown>;
      try {
        if (r.resource.typeUrl !== raw.typeUrl) throw new Error(`resource type ${r.resource.typeUrl} in a ${raw.typeUrl} response`);
        value = decodeAny(r.resource);
      } catch (err) {
        rejected.push(`${r.name}: ${(err as Error).message}`);
        continue;
      }
      const problem = checkResource(raw.typeUrl, r.name, value) ?? this.opts.reject?.(raw.typeUrl, r.name, value);
      if (problem) {
        rejected.push(`${r.name}: ${problem}`);
        continue;
      }
      resources.push({ name: r.name, version: r.version, aliases: [...(r.aliases ?? [])], value });
    }
    const known = this.known.get(raw.typeUrl);
    const state = this.state.get(raw.typeUrl);
    for (const name of raw.removedResources) {
      known?.delete(name);
      state?.delete(name);
    }
    for (const r of resources) {
      known?.set(r.name, r.version);
      state?.set(r.name, r);
    }
    const processed: ProcessedResponse = { typeUrl: raw.typeUrl, nonce: raw.nonce, resources, removed: [...raw.removedResources], connection };
    if (rejected.length > 0) processed.nack = rejected.join('; ');
    this.log.push({ dir: 'in', response: processed });
    // ztunnel's Status carries only the message (code 0) on a NACK.
    this.write({ typeUrl: raw.typeUrl, responseNonce: raw.nonce, ...(processed.nack ? { errorDetail: { code: 0, message: processed.nack } } : {}) });
    if (!processed.nack && this.expect.delete(raw.typeUrl) && this.expect.size === 0) this.readyResolve?.();
    for (const w of [...this.waiters]) {
      if (!w.test(processed)) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      w.resolve(processed);
    }
  }
}
