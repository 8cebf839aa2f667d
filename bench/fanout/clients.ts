/**
 * Simulated proxies for the fan-out benchmark, run as a separate process (forked by
 * bench/fanout/driver.ts with an IPC channel). Each proxy is one ADS stream over its own mutual-TLS
 * connection, and subscribes like Envoy: CDS and LDS wildcard first, then the EDS names its
 * clusters need and the RDS names its listeners need; every response is ACKed (SotW: version and
 * nonce; delta: nonce) right away. Resources are not decoded beyond their names.
 *
 * The driver talks to this process with {@link ClientCommand} messages and gets
 * {@link ClientEvent}s back. Times are `performance.timeOrigin + performance.now()` (ms since the
 * epoch, sub-millisecond), comparable between processes on one machine.
 *
 * With `record` on, the process keeps what each proxy holds (deduplicated: identical bytes are
 * stored once) so that `dump` can write the snapshots the go-control-plane baseline serves. That
 * costs a copy and a byte comparison per resource per response, so the driver records only in a
 * separate, unmeasured pass: measured passes (Skiff's and the baseline's) run with it off.
 */
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { decodeAny, TypeUrl } from '../../src/xds/protos/loader.js';
import { encodeDiscoveryRequest, ADS_SOTW_PATH } from '../../src/xds/server/messages.js';
import { encodeDeltaDiscoveryRequest, ADS_DELTA_PATH } from '../../src/xds/server/delta-messages.js';
import { edsNameOf, readDeltaResponse, readSotwResponse, resourceName, type AnyView } from './wire.js';

/** One simulated proxy. */
export interface ProxySpec {
  nodeId: string;
  /** Node metadata (NAMESPACE, SERVICE_ACCOUNT, LABELS, WORKLOAD_NAME). */
  metadata: Record<string, unknown>;
  /** Key into {@link ClientsConfig.certs}. */
  cert: string;
}

/** What the process is started with (a JSON file named by argv[2]). */
export interface ClientsConfig {
  mode: 'sotw' | 'delta';
  /** Whether to keep the held resources for `dump`. */
  record: boolean;
  trustBundlePem: string;
  certs: Record<string, { certChainPem: string; keyPem: string }>;
  proxies: ProxySpec[];
}

/** Commands from the driver. */
export type ClientCommand =
  | { cmd: 'connect'; port: number; concurrency: number }
  /** Starts a measurement: from `t0`, watch for `name` (an EDS name) in EDS responses. */
  | { cmd: 'mark'; t0: number; name: string }
  /** Reports the current measurement. */
  | { cmd: 'report' }
  | { cmd: 'dump'; file: string }
  | { cmd: 'close' };

/** One proxy's view of the current measurement. */
export interface ProxyMeasurement {
  /** When the first EDS response carrying the watched name after `t0` was ACKed (ms since epoch). */
  ackedAt: number | undefined;
  /** EDS responses received since `t0`. */
  edsPushes: number;
  /** Responses of any type received since `t0`. */
  pushes: number;
  /** When the last response since `t0` arrived. */
  lastAt: number | undefined;
}

/** Events to the driver. */
export type ClientEvent =
  | { ev: 'synced'; count: number; total: number; at: number; errors: number }
  | { ev: 'report'; proxies: ProxyMeasurement[]; synced: number; errors: string[]; reconnects: number; lastErrors: string[]; rssBytes: number }
  | { ev: 'dumped'; file: string; resources: number }
  | { ev: 'closed' };

const now = (): number => performance.timeOrigin + performance.now();

/** Deduplicated resource store for `dump`: identical (type, name, bytes) share one index. */
class ResourceTable {
  readonly list: { typeUrl: string; name: string; value: Uint8Array }[] = [];
  private readonly byName = new Map<string, number[]>();

  intern(typeUrl: string, name: string, value: Uint8Array): number {
    const key = `${typeUrl}\0${name}`;
    let candidates = this.byName.get(key);
    if (!candidates) {
      candidates = [];
      this.byName.set(key, candidates);
    }
    for (const i of candidates) {
      const have = (this.list[i] as { value: Uint8Array }).value;
      if (have.length === value.length && Buffer.compare(have, value) === 0) return i;
    }
    // The view points into a whole gRPC message: keep a copy of just these bytes.
    this.list.push({ typeUrl, name, value: Uint8Array.from(value) });
    const i = this.list.length - 1;
    candidates.push(i);
    return i;
  }
}

const RDS_CACHE = new Map<string, string[]>();

/** RDS names of an encoded Listener (HCM `rds.route_config_name`), cached per listener bytes. */
function rdsNamesOf(listener: Uint8Array): string[] {
  const key = Buffer.from(listener).toString('base64');
  const cached = RDS_CACHE.get(key);
  if (cached) return cached;
  const names = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const rds = o['rds'] as { routeConfigName?: unknown } | undefined;
      if (rds && typeof rds.routeConfigName === 'string') names.add(rds.routeConfigName);
      for (const x of Object.values(o)) walk(x);
    }
  };
  walk(decodeAny({ typeUrl: TypeUrl.Listener, value: listener }));
  const out = [...names].sort();
  RDS_CACHE.set(key, out);
  return out;
}

type Held = Map<string, Map<string, number>>;

/** One simulated proxy (one stream on its own connection). */
class SimProxy {
  synced = false;
  error: string | undefined;
  m: ProxyMeasurement = { ackedAt: undefined, edsPushes: 0, pushes: 0, lastAt: undefined };
  /** What the proxy holds, by type then name → index in the resource table (record mode). */
  readonly held: Held = new Map();
  private readonly seen = new Set<string>();
  private edsNames: string[] = [];
  private rdsNames: string[] = [];
  /** SotW: last ACKed version and nonce per type. */
  private readonly versions = new Map<string, string>();
  private readonly nonces = new Map<string, string>();
  /** Delta: names of clusters/listeners held, for recomputing EDS/RDS subscriptions. */
  private readonly deltaDeps = new Map<string, Map<string, string[]>>();
  private client: grpc.Client | undefined;
  /** Why the last stream failed (it was reopened). */
  lastError: string | undefined;
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;

  constructor(
    readonly spec: ProxySpec,
    private readonly ctx: Shared,
  ) {}

  start(port: number): void {
    const { certChainPem, keyPem } = this.ctx.config.certs[this.spec.cert] as { certChainPem: string; keyPem: string };
    const creds = grpc.credentials.createSsl(Buffer.from(this.ctx.config.trustBundlePem), Buffer.from(keyPem), Buffer.from(certChainPem));
    this.client = new grpc.Client(`127.0.0.1:${port}`, creds, {
      // Every proxy has its own connection, as every Envoy does.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': -1,
      'grpc.keepalive_time_ms': 60_000,
    });
    this.openStream();
  }

  /** Opens the ADS stream and sends the initial CDS and LDS requests (again after a failure). */
  private openStream(): void {
    if (!this.client || this.ctx.closing) return;
    const delta = this.ctx.config.mode === 'delta';
    const identity = (b: Buffer): Buffer => b;
    // A new stream starts from nothing, as Envoy's does after a reconnect without state.
    this.edsNames = [];
    this.rdsNames = [];
    this.versions.clear();
    this.nonces.clear();
    this.deltaDeps.clear();
    const call = this.client.makeBidiStreamRequest(delta ? ADS_DELTA_PATH : ADS_SOTW_PATH, identity, identity, { waitForReady: true } as grpc.CallOptions);
    this.call = call;
    call.on('data', (buf: Buffer) => {
      try {
        if (delta) this.onDelta(buf);
        else this.onSotw(buf);
      } catch (err) {
        this.fail(`bad response: ${(err as Error).message}`);
      }
    });
    let ended = false;
    const retry = (why: string): void => {
      if (ended || this.ctx.closing) return;
      ended = true;
      this.ctx.reconnects += 1;
      this.lastError = why;
      // Envoy retries a failed ADS stream with backoff; so do we (0.5 to 1.5 s).
      setTimeout(() => this.openStream(), 500 + Math.random() * 1000);
    };
    call.on('error', (err: Error) => retry(err.message));
    call.on('end', () => retry('stream ended'));
    const node = { id: this.spec.nodeId, cluster: '', metadata: this.spec.metadata };
    if (delta) {
      this.send(encodeDeltaDiscoveryRequest({ node, typeUrl: TypeUrl.Cluster }));
      this.send(encodeDeltaDiscoveryRequest({ typeUrl: TypeUrl.Listener }));
    } else {
      this.send(encodeDiscoveryRequest({ node, typeUrl: TypeUrl.Cluster }));
      this.send(encodeDiscoveryRequest({ typeUrl: TypeUrl.Listener }));
    }
  }

  close(): void {
    this.call?.removeAllListeners('error');
    this.call?.on('error', () => {});
    this.call?.cancel();
    this.client?.close();
  }

  private fail(msg: string): void {
    if (this.error === undefined && !this.ctx.closing) {
      this.error = msg;
      this.ctx.errors.push(`${this.spec.nodeId}: ${msg}`);
    }
  }

  private send(buf: Buffer): void {
    this.call?.write(buf);
  }

  private noteResponse(typeUrl: string, names: Iterable<string>): void {
    const t = now();
    this.m.pushes += 1;
    this.m.lastAt = t;
    if (typeUrl !== TypeUrl.ClusterLoadAssignment) return;
    this.m.edsPushes += 1;
    if (this.m.ackedAt === undefined && this.ctx.watch !== undefined) {
      for (const n of names) {
        if (n === this.ctx.watch) {
          this.m.ackedAt = t;
          break;
        }
      }
    }
  }

  private markSeen(typeUrl: string): void {
    this.seen.add(typeUrl);
    if (this.synced) return;
    const need = [TypeUrl.Cluster, TypeUrl.Listener, ...(this.edsNames.length ? [TypeUrl.ClusterLoadAssignment] : []), ...(this.rdsNames.length ? [TypeUrl.RouteConfiguration] : [])];
    if (need.every((t) => this.seen.has(t))) {
      this.synced = true;
      this.ctx.onSynced();
    }
  }

  private record(typeUrl: string, resources: Iterable<{ name: string; any: AnyView }>, replace: boolean, removed: readonly string[] = []): void {
    if (!this.ctx.config.record) return;
    let byName = this.held.get(typeUrl);
    if (!byName || replace) {
      byName = new Map();
      this.held.set(typeUrl, byName);
    }
    for (const r of resources) byName.set(r.name, this.ctx.table.intern(typeUrl, r.name, r.any.value));
    for (const n of removed) byName.delete(n);
  }

  // --- SotW ---

  private onSotw(buf: Buffer): void {
    const resp = readSotwResponse(buf);
    const named = resp.resources.map((any) => ({ name: resourceName(any.value), any }));
    // ACK first (after asking for new EDS/RDS names, as Envoy does), then bookkeeping.
    if (resp.typeUrl === TypeUrl.Cluster) {
      const eds = [...new Set(resp.resources.map((a) => edsNameOf(a.value)).filter((n): n is string => n !== undefined))].sort();
      if (!sameList(eds, this.edsNames)) {
        this.edsNames = eds;
        this.send(encodeDiscoveryRequest({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: eds, versionInfo: this.versions.get(TypeUrl.ClusterLoadAssignment) ?? '', responseNonce: this.nonces.get(TypeUrl.ClusterLoadAssignment) ?? '' }));
      }
    } else if (resp.typeUrl === TypeUrl.Listener) {
      const rds = [...new Set(resp.resources.flatMap((a) => rdsNamesOf(a.value)))].sort();
      if (!sameList(rds, this.rdsNames)) {
        this.rdsNames = rds;
        this.send(encodeDiscoveryRequest({ typeUrl: TypeUrl.RouteConfiguration, resourceNames: rds, versionInfo: this.versions.get(TypeUrl.RouteConfiguration) ?? '', responseNonce: this.nonces.get(TypeUrl.RouteConfiguration) ?? '' }));
      }
    }
    const names = resp.typeUrl === TypeUrl.ClusterLoadAssignment ? this.edsNames : resp.typeUrl === TypeUrl.RouteConfiguration ? this.rdsNames : [];
    this.send(encodeDiscoveryRequest({ typeUrl: resp.typeUrl, versionInfo: resp.versionInfo, responseNonce: resp.nonce, resourceNames: names }));
    this.versions.set(resp.typeUrl, resp.versionInfo);
    this.nonces.set(resp.typeUrl, resp.nonce);
    this.noteResponse(resp.typeUrl, named.map((r) => r.name));
    this.record(resp.typeUrl, named, true);
    this.markSeen(resp.typeUrl);
  }

  // --- delta ---

  private onDelta(buf: Buffer): void {
    const resp = readDeltaResponse(buf);
    const named = resp.resources.filter((r) => r.resource !== undefined).map((r) => ({ name: r.name, any: r.resource as AnyView }));
    if (resp.typeUrl === TypeUrl.Cluster || resp.typeUrl === TypeUrl.Listener) {
      let deps = this.deltaDeps.get(resp.typeUrl);
      if (!deps) {
        deps = new Map();
        this.deltaDeps.set(resp.typeUrl, deps);
      }
      for (const r of named) {
        if (resp.typeUrl === TypeUrl.Cluster) {
          const e = edsNameOf(r.any.value);
          deps.set(r.name, e === undefined ? [] : [e]);
        } else deps.set(r.name, rdsNamesOf(r.any.value));
      }
      for (const n of resp.removed) deps.delete(n);
      const want = [...new Set([...deps.values()].flat())].sort();
      const isCds = resp.typeUrl === TypeUrl.Cluster;
      const have = isCds ? this.edsNames : this.rdsNames;
      if (!sameList(want, have)) {
        const haveSet = new Set(have);
        const wantSet = new Set(want);
        this.send(
          encodeDeltaDiscoveryRequest({
            typeUrl: isCds ? TypeUrl.ClusterLoadAssignment : TypeUrl.RouteConfiguration,
            resourceNamesSubscribe: want.filter((n) => !haveSet.has(n)),
            resourceNamesUnsubscribe: have.filter((n) => !wantSet.has(n)),
          }),
        );
        if (isCds) this.edsNames = want;
        else this.rdsNames = want;
      }
    }
    this.send(encodeDeltaDiscoveryRequest({ typeUrl: resp.typeUrl, responseNonce: resp.nonce }));
    this.noteResponse(resp.typeUrl, named.map((r) => r.name));
    this.record(resp.typeUrl, named, false, resp.removed);
    this.markSeen(resp.typeUrl);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

interface Shared {
  config: ClientsConfig;
  table: ResourceTable;
  errors: string[];
  /** Streams reopened after a failure. */
  reconnects: number;
  watch: string | undefined;
  closing: boolean;
  onSynced: () => void;
}

function emit(e: ClientEvent): void {
  process.send?.(e);
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: clients.ts <config.json>');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as ClientsConfig;
  let syncedCount = 0;
  let lastSyncReport = 0;
  const shared: Shared = {
    config,
    table: new ResourceTable(),
    errors: [],
    reconnects: 0,
    watch: undefined,
    closing: false,
    onSynced: () => {
      syncedCount += 1;
      const t = now();
      if (syncedCount === proxies.length || t - lastSyncReport > 500) {
        lastSyncReport = t;
        emit({ ev: 'synced', count: syncedCount, total: proxies.length, at: t, errors: shared.errors.length });
      }
    },
  };
  const proxies = config.proxies.map((spec) => new SimProxy(spec, shared));

  process.on('message', (raw: unknown) => {
    const msg = raw as ClientCommand;
    switch (msg.cmd) {
      case 'connect': {
        // Open connections a batch at a time (TLS handshakes are the expensive part).
        let next = 0;
        const step = (): void => {
          const end = Math.min(proxies.length, next + msg.concurrency);
          for (; next < end; next++) (proxies[next] as SimProxy).start(msg.port);
          if (next < proxies.length) setTimeout(step, 20);
        };
        step();
        break;
      }
      case 'mark':
        shared.watch = msg.name;
        for (const p of proxies) p.m = { ackedAt: undefined, edsPushes: 0, pushes: 0, lastAt: undefined };
        break;
      case 'report':
        emit({
          ev: 'report',
          proxies: proxies.map((p) => p.m),
          synced: syncedCount,
          errors: shared.errors.slice(0, 20),
          reconnects: shared.reconnects,
          lastErrors: [...new Set(proxies.map((p) => p.lastError).filter((e): e is string => e !== undefined))].slice(0, 5),
          rssBytes: process.memoryUsage().rss,
        });
        break;
      case 'dump': {
        const nodes: Record<string, Record<string, number[]>> = {};
        for (const p of proxies) {
          const byType: Record<string, number[]> = {};
          for (const [t, m] of p.held) byType[t] = [...m.values()];
          nodes[p.spec.nodeId] = byType;
        }
        const resources = shared.table.list.map((r) => ({ typeUrl: r.typeUrl, name: r.name, value: Buffer.from(r.value).toString('base64') }));
        fs.writeFileSync(msg.file, JSON.stringify({ resources, nodes }));
        emit({ ev: 'dumped', file: msg.file, resources: resources.length });
        break;
      }
      case 'close':
        shared.closing = true;
        for (const p of proxies) p.close();
        emit({ ev: 'closed' });
        setTimeout(() => process.exit(0), 200);
        break;
    }
  });
}

main();
