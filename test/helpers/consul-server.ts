/**
 * A Consul HTTP API test server for the endpoints Skiff's Consul source uses and the ones tests use
 * to drive it, written from Consul's published API documentation
 * (https://developer.hashicorp.com/consul/api-docs): no Consul server can be installed here.
 *
 * Read endpoints (with Consul's JSON field names and casing):
 *   GET  /v1/catalog/services                service name → tags (union over instances)
 *   GET  /v1/catalog/service/<name>           ServiceNode list
 *   GET  /v1/health/service/<name>[?passing]  {Node, Service, Checks} list
 *   GET  /v1/catalog/datacenters, /v1/status/leader, /v1/status/peers
 * Write endpoints:
 *   PUT  /v1/agent/service/register[?replace-existing-checks], /v1/agent/service/deregister/<id>
 *   PUT  /v1/agent/service/maintenance/<id>?enable=&reason=
 *   PUT  /v1/agent/check/pass|warn|fail/<id>[?note=], /v1/agent/check/update/<id>
 *   PUT  /v1/catalog/register, /v1/catalog/deregister
 *
 * Blocking queries (https://developer.hashicorp.com/consul/api-docs/features/blocking): every read
 * of the catalog and health endpoints returns `X-Consul-Index`; with `?index=N` it waits until the
 * index of what it reads exceeds N, or until `wait` (default 5m, at most 10m, plus up to wait/16
 * of jitter) passes and then answers with the unchanged data and index. Indexes come from one
 * Raft-like counter that only grows (except across {@link ConsulTestServer.restore}, which models
 * a snapshot restore: indexes go back and every blocked query is woken, as in Consul). A service's
 * index moves on any write touching its instances, their checks or their nodes, and is kept after
 * its last instance goes, so a watcher sees the removal. The services list index moves only with
 * service registrations. A check update that changes nothing (same status and output) writes
 * nothing; re-registering a service always writes (an idempotent write, which Consul's docs warn
 * may move the index without changing the result).
 *
 * Also: `dc` (another datacenter answers 500 "No path to datacenter"), namespaces (`ns` query
 * parameter, `X-Consul-Namespace` header or body `Namespace`; default `default`), `filter` (see
 * `consul-filter.ts`), `tag`, ACL tokens (`X-Consul-Token`, `Authorization: Bearer`, `?token=`;
 * a wrong or missing token answers 403), optional TLS with client certificates, stop/start on the
 * same port with the same state (an outage), and injected faults (HTTP 500, invalid JSON, a fixed
 * `X-Consul-Index`). Partitions are accepted and ignored. Health checks never run: their status is
 * whatever the last write set (the initial status, default `critical`, then the TTL endpoints).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { FilterError, parseFilter, type Filter } from './consul-filter.js';

/** Options of {@link startConsulTestServer}. */
export interface ConsulTestServerOptions {
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port (default 0 = ephemeral; the same port is reused by `start()` after `stop()`). */
  port?: number;
  datacenter?: string;
  /** The agent's node, on which `/v1/agent/*` registers services. */
  nodeName?: string;
  nodeAddress?: string;
  /** `/v1/status/leader` answer (default `<nodeAddress>:8300`). */
  leader?: string;
  /** When set, every request must present this ACL token. */
  aclToken?: string;
  /** Serve HTTPS; with `ca` and `requireClientCert` a client certificate signed by `ca` is required. */
  tls?: { cert: string; key: string; ca?: string; requireClientCert?: boolean };
  /** The first Raft index (default 10). */
  startIndex?: number;
}

type StringMap = Record<string, string>;
interface ServiceAddress {
  address: string;
  port: number;
}

interface NodeRecord {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: StringMap | null;
  Meta: StringMap;
  CreateIndex: number;
  ModifyIndex: number;
}

interface ServiceRecord {
  Node: string;
  ID: string;
  Service: string;
  Tags: string[];
  Address: string;
  TaggedAddresses: Record<string, ServiceAddress>;
  Meta: StringMap;
  Port: number;
  Weights: { Passing: number; Warning: number };
  EnableTagOverride: boolean;
  Kind: string;
  Namespace: string;
  CreateIndex: number;
  ModifyIndex: number;
}

interface CheckRecord {
  Node: string;
  CheckID: string;
  Name: string;
  Status: string;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  Type: string;
  Namespace: string;
  Definition: Record<string, unknown>;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Everything the server knows; `snapshot()`/`restore()` copy it whole. */
interface State {
  raft: number;
  nodes: Map<string, NodeRecord>;
  /** Key `node\0serviceID`. */
  services: Map<string, ServiceRecord>;
  /** Key `node\0checkID`. */
  checks: Map<string, CheckRecord>;
  servicesIndex: number;
  /** Per service name: the index of the last write touching it. */
  serviceIndex: Map<string, number>;
}

/** An opaque copy of the server state (see {@link ConsulTestServer.snapshot}). */
export interface ConsulSnapshot {
  readonly state: unknown;
}

/** A canned answer instead of the real one (see {@link ConsulTestServer.injectFault}). */
export interface ConsulFault {
  /** Request paths it applies to: an exact path (`/v1/health/service/web`), a prefix ending in `*`, or a RegExp. */
  path: string | RegExp;
  /** How many requests it answers (default: until cleared). */
  times?: number;
  /** HTTP status (default 200). */
  status?: number;
  /** Raw body; when absent the real body is rendered. */
  body?: string;
  /** Content-Type of `body` (default `text/plain; charset=utf-8`, or application/json for the real body). */
  contentType?: string;
  /** Answer at once (no blocking) with this `X-Consul-Index` value. */
  index?: string;
}

/** A request the server saw. */
export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  at: number;
}

/** A running test server. */
export interface ConsulTestServer {
  /** `http(s)://host:port`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly datacenter: string;
  readonly nodeName: string;
  /** Requests seen so far (oldest first). */
  readonly requests: SeenRequest[];
  /** The current Raft index. */
  index(): number;
  /** Paths of the blocking queries waiting right now. */
  blockedQueries(): string[];
  /** Adds a fault; returns a function that removes it. */
  injectFault(fault: ConsulFault): () => void;
  clearFaults(): void;
  /** Copies the whole state (indexes included). */
  snapshot(): ConsulSnapshot;
  /** Puts a snapshot back: indexes may go backwards; every blocked query answers at once. */
  restore(s: ConsulSnapshot): void;
  /** Stops listening and cuts every connection (blocked queries included); the state is kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
  /**
   * PUTs `body` as JSON to `path` (with the ACL token), through a second, plain-HTTP listener that
   * stays up while the API port is stopped: the catalog can change during an outage. Rejects on non-2xx.
   */
  put(path: string, body?: unknown): Promise<void>;
}

const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;
const SERVICE_MAINT_PREFIX = '_service_maintenance:';
const DEFAULT_SERVICE_MAINT_REASON = 'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';
const CHECK_STATUSES = new Set(['passing', 'warning', 'critical']);

/** An HTTP error answered as Consul does: a status and a plain-text body. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Parses a Go duration (`10s`, `5m`, `1m30s`, `250ms`); undefined when invalid. */
export function parseGoDuration(text: string): number | undefined {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /([0-9]+(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * (unit[m[2] ?? ''] ?? Number.NaN);
    pos = re.lastIndex;
  }
  return pos === text.length && pos > 0 && Number.isFinite(total) ? total : undefined;
}

/** Keys of a request body compared as Consul's decoder does: case-insensitive, `_` ignored (snake_case). */
function norm(k: string): string {
  return k.toLowerCase().replace(/_/g, '');
}

/** `obj[name]` with Consul's lenient key matching (`Name`, `name`, `NAME`, `na_me`). */
function field(obj: Record<string, unknown>, ...names: string[]): unknown {
  const wanted = new Set(names.map(norm));
  for (const [k, v] of Object.entries(obj)) if (wanted.has(norm(k))) return v;
  return undefined;
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, `Request decode failed: ${what} must be an object`);
  return v as Record<string, unknown>;
}

function asString(v: unknown, what: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new HttpError(400, `Request decode failed: ${what} must be a string`);
  return v;
}

function asStringMap(v: unknown, what: string): StringMap {
  const o = asObject(v, what);
  const out: StringMap = {};
  for (const [k, val] of Object.entries(o)) out[k] = asString(val, `${what}.${k}`);
  return out;
}

function asStringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new HttpError(400, `Request decode failed: ${what} must be a list of strings`);
  return [...(v as string[])];
}

function asPort(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new HttpError(400, `Request decode failed: ${what} must be an integer`);
  return v;
}

/** Consul's service meta rules (`structs.ValidateServiceMetadata`). */
function validateMeta(meta: StringMap, what: string): void {
  const keys = Object.keys(meta);
  if (keys.length > 64) throw new HttpError(400, `Invalid ${what}: Node metadata cannot contain more than 64 key/value pairs`);
  for (const k of keys) {
    if (k === '') throw new HttpError(400, `Invalid ${what}: Key cannot be blank`);
    if (!/^[a-zA-Z0-9_-]+$/.test(k)) throw new HttpError(400, `Invalid ${what}: Key contains invalid characters`);
    if (k.length > 128) throw new HttpError(400, `Invalid ${what}: Key is too long (limit: 128 characters)`);
    if (k.startsWith('consul-')) throw new HttpError(400, `Invalid ${what}: Key prefix 'consul-' is reserved for internal use`);
    if ((meta[k] ?? '').length > 512) throw new HttpError(400, `Invalid ${what}: Value is too long (limit: 512 characters)`);
  }
}

function taggedServiceAddresses(v: unknown): Record<string, ServiceAddress> {
  const o = asObject(v, 'TaggedAddresses');
  const out: Record<string, ServiceAddress> = {};
  for (const [k, val] of Object.entries(o)) {
    const a = asObject(val, `TaggedAddresses.${k}`);
    out[k] = { address: asString(field(a, 'address'), 'address'), port: asPort(field(a, 'port'), 'port') };
  }
  return out;
}

function key(node: string, id: string): string {
  return `${node}\u0000${id}`;
}

function uuidFor(name: string): string {
  const h = crypto.createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function copyState(s: State): State {
  return structuredClone(s);
}

/** Starts a Consul test server (see the module comment). */
export async function startConsulTestServer(opts: ConsulTestServerOptions = {}): Promise<ConsulTestServer> {
  const host = opts.host ?? '127.0.0.1';
  const datacenter = opts.datacenter ?? 'dc1';
  const nodeName = opts.nodeName ?? 'consul-test-server';
  const nodeAddress = opts.nodeAddress ?? host;
  const leader = opts.leader ?? `${nodeAddress}:8300`;
  const scheme = opts.tls ? 'https' : 'http';

  let state: State = {
    raft: opts.startIndex ?? 10,
    nodes: new Map(),
    services: new Map(),
    checks: new Map(),
    servicesIndex: 0,
    serviceIndex: new Map(),
  };
  const waiters = new Set<() => void>();
  /** Counts restores: a blocked query answers when a restore happened after it started. */
  let restores = 0;
  const faults: (ConsulFault & { left: number })[] = [];
  const requests: SeenRequest[] = [];
  const blocked = new Map<object, string>();
  const sockets = new Set<Socket>();

  const wake = (): void => {
    for (const w of [...waiters]) w();
  };
  const write = (): number => {
    state.raft += 1;
    return state.raft;
  };
  const touchService = (name: string, idx: number): void => {
    state.serviceIndex.set(name, idx);
  };
  const servicesOnNode = (node: string): ServiceRecord[] => [...state.services.values()].filter((s) => s.Node === node);

  /** Creates or updates a node; bumps the services on it when something changed. */
  function upsertNode(n: { Node: string; Address: string; ID?: string; TaggedAddresses?: StringMap | null; Meta?: StringMap }): void {
    const existing = state.nodes.get(n.Node);
    const next: NodeRecord = {
      ID: n.ID || existing?.ID || uuidFor(`node:${n.Node}`),
      Node: n.Node,
      Address: n.Address,
      Datacenter: datacenter,
      TaggedAddresses: n.TaggedAddresses === undefined ? (existing?.TaggedAddresses ?? null) : n.TaggedAddresses,
      Meta: n.Meta ?? existing?.Meta ?? {},
      CreateIndex: existing?.CreateIndex ?? 0,
      ModifyIndex: existing?.ModifyIndex ?? 0,
    };
    if (existing && JSON.stringify({ ...existing, CreateIndex: 0, ModifyIndex: 0 }) === JSON.stringify({ ...next, CreateIndex: 0, ModifyIndex: 0 })) return;
    const idx = write();
    next.CreateIndex = existing?.CreateIndex ?? idx;
    next.ModifyIndex = idx;
    state.nodes.set(n.Node, next);
    for (const s of servicesOnNode(n.Node)) touchService(s.Service, idx);
  }

  function upsertService(s: Omit<ServiceRecord, 'CreateIndex' | 'ModifyIndex'>): number {
    const k = key(s.Node, s.ID);
    const existing = state.services.get(k);
    const idx = write();
    state.services.set(k, { ...s, CreateIndex: existing?.CreateIndex ?? idx, ModifyIndex: idx });
    state.servicesIndex = idx;
    touchService(s.Service, idx);
    if (existing && existing.Service !== s.Service) touchService(existing.Service, idx);
    // Checks carry the service's name and tags.
    for (const c of state.checks.values()) {
      if (c.Node === s.Node && c.ServiceID === s.ID) {
        c.ServiceName = s.Service;
        c.ServiceTags = [...s.Tags];
      }
    }
    return idx;
  }

  function upsertCheck(c: Omit<CheckRecord, 'CreateIndex' | 'ModifyIndex'>): void {
    const k = key(c.Node, c.CheckID);
    const existing = state.checks.get(k);
    if (existing && existing.Status === c.Status && existing.Output === c.Output && existing.Notes === c.Notes && existing.Name === c.Name && existing.ServiceID === c.ServiceID) return;
    const idx = write();
    state.checks.set(k, { ...c, CreateIndex: existing?.CreateIndex ?? idx, ModifyIndex: idx });
    touchForCheck(c, idx);
  }

  function touchForCheck(c: { Node: string; ServiceID: string }, idx: number): void {
    if (c.ServiceID) {
      const svc = state.services.get(key(c.Node, c.ServiceID));
      if (svc) touchService(svc.Service, idx);
    } else {
      for (const s of servicesOnNode(c.Node)) touchService(s.Service, idx);
    }
  }

  function removeService(node: string, id: string): boolean {
    const svc = state.services.get(key(node, id));
    if (!svc) return false;
    const idx = write();
    state.services.delete(key(node, id));
    for (const [k, c] of state.checks) if (c.Node === node && c.ServiceID === id) state.checks.delete(k);
    state.servicesIndex = idx;
    touchService(svc.Service, idx);
    return true;
  }

  function removeCheck(node: string, checkId: string): boolean {
    const c = state.checks.get(key(node, checkId));
    if (!c) return false;
    const idx = write();
    state.checks.delete(key(node, checkId));
    touchForCheck(c, idx);
    return true;
  }

  /** A check as a request body describes it (agent or catalog form). */
  function checkFromBody(raw: unknown, node: string, svc: ServiceRecord | undefined, defaultId: string, defaultName: string, namespace: string, idFromName: boolean): Omit<CheckRecord, 'CreateIndex' | 'ModifyIndex'> {
    const c = asObject(raw, 'Check');
    const status = asString(field(c, 'Status'), 'Check.Status') || 'critical';
    if (!CHECK_STATUSES.has(status)) throw new HttpError(400, `Invalid check status: "${status}"`);
    const definition: Record<string, unknown> = {};
    for (const k of ['HTTP', 'TCP', 'GRPC', 'Interval', 'Timeout', 'TTL', 'DeregisterCriticalServiceAfter', 'Args']) {
      const v = field(c, k, k === 'Args' ? 'ScriptArgs' : k);
      if (v !== undefined) definition[k] = v;
    }
    const nested = field(c, 'Definition');
    if (nested !== undefined) Object.assign(definition, asObject(nested, 'Check.Definition'));
    const type = field(c, 'TTL') !== undefined ? 'ttl' : field(c, 'HTTP') !== undefined ? 'http' : field(c, 'TCP') !== undefined ? 'tcp' : field(c, 'Args', 'ScriptArgs') !== undefined ? 'script' : '';
    const name = asString(field(c, 'Name'), 'Check.Name');
    const serviceId = svc?.ID ?? asString(field(c, 'ServiceID'), 'Check.ServiceID');
    const target = svc ?? (serviceId ? state.services.get(key(node, serviceId)) : undefined);
    return {
      Node: node,
      // The catalog defaults a check's ID to its name; the agent names a service's checks service:<id>[:n].
      CheckID: asString(field(c, 'CheckID', 'ID'), 'Check.CheckID') || (idFromName ? name : '') || defaultId,
      Name: name || defaultName,
      Status: status,
      Notes: asString(field(c, 'Notes'), 'Check.Notes'),
      Output: asString(field(c, 'Output'), 'Check.Output'),
      ServiceID: serviceId,
      ServiceName: target?.Service ?? '',
      ServiceTags: target ? [...target.Tags] : [],
      Type: type,
      Namespace: namespace,
      Definition: definition,
    };
  }

  /** A service instance as a request body describes it. `nameKey` is `Name` (agent) or `Service` (catalog). */
  function serviceFromBody(body: Record<string, unknown>, node: string, nameKey: 'Name' | 'Service', namespace: string): Omit<ServiceRecord, 'CreateIndex' | 'ModifyIndex'> {
    const name = asString(field(body, nameKey), nameKey);
    if (!name) throw new HttpError(400, 'Missing service name');
    const meta = asStringMap(field(body, 'Meta'), 'Meta');
    validateMeta(meta, 'Service Meta');
    const weights = asObject(field(body, 'Weights'), 'Weights');
    return {
      Node: node,
      ID: asString(field(body, 'ID'), 'ID') || name,
      Service: name,
      Tags: asStringList(field(body, 'Tags'), 'Tags'),
      Address: asString(field(body, 'Address'), 'Address'),
      TaggedAddresses: taggedServiceAddresses(field(body, 'TaggedAddresses')),
      Meta: meta,
      Port: asPort(field(body, 'Port'), 'Port'),
      Weights: {
        Passing: asPort(field(weights, 'Passing'), 'Weights.Passing') || 1,
        Warning: asPort(field(weights, 'Warning'), 'Weights.Warning') || 1,
      },
      EnableTagOverride: field(body, 'EnableTagOverride') === true,
      Kind: asString(field(body, 'Kind'), 'Kind'),
      Namespace: asString(field(body, 'Namespace'), 'Namespace') || namespace,
    };
  }

  // The agent's own node, its serfHealth check and the `consul` service, as on a Consul server.
  upsertNode({ Node: nodeName, Address: nodeAddress, TaggedAddresses: { lan: nodeAddress, wan: nodeAddress }, Meta: { 'consul-network-segment': '' } });
  upsertService({
    Node: nodeName,
    ID: 'consul',
    Service: 'consul',
    Tags: [],
    Address: '',
    TaggedAddresses: {},
    Meta: {},
    Port: 8300,
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    Kind: '',
    Namespace: 'default',
  });
  upsertCheck({
    Node: nodeName,
    CheckID: 'serfHealth',
    Name: 'Serf Health Status',
    Status: 'passing',
    Notes: '',
    Output: 'Agent alive and reachable',
    ServiceID: '',
    ServiceName: '',
    ServiceTags: [],
    Type: '',
    Namespace: 'default',
    Definition: {},
  });

  // ----- rendering (Consul's JSON shapes) -----

  const nodeJson = (n: NodeRecord) => ({
    ID: n.ID,
    Node: n.Node,
    Address: n.Address,
    Datacenter: n.Datacenter,
    TaggedAddresses: n.TaggedAddresses,
    Meta: n.Meta,
    CreateIndex: n.CreateIndex,
    ModifyIndex: n.ModifyIndex,
  });
  const serviceJson = (s: ServiceRecord) => {
    const out: Record<string, unknown> = { Kind: s.Kind, ID: s.ID, Service: s.Service, Tags: s.Tags, Address: s.Address };
    if (Object.keys(s.TaggedAddresses).length > 0) out['TaggedAddresses'] = s.TaggedAddresses;
    Object.assign(out, {
      Meta: s.Meta,
      Port: s.Port,
      Weights: s.Weights,
      EnableTagOverride: s.EnableTagOverride,
      Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
      Connect: {},
      Namespace: s.Namespace,
      CreateIndex: s.CreateIndex,
      ModifyIndex: s.ModifyIndex,
    });
    return out;
  };
  const checkJson = (c: CheckRecord) => ({
    Node: c.Node,
    CheckID: c.CheckID,
    Name: c.Name,
    Status: c.Status,
    Notes: c.Notes,
    Output: c.Output,
    ServiceID: c.ServiceID,
    ServiceName: c.ServiceName,
    ServiceTags: c.ServiceTags,
    Type: c.Type,
    Namespace: c.Namespace,
    Definition: c.Definition,
    CreateIndex: c.CreateIndex,
    ModifyIndex: c.ModifyIndex,
  });
  const serviceNodeJson = (s: ServiceRecord) => {
    const n = state.nodes.get(s.Node)!;
    const out: Record<string, unknown> = {
      ID: n.ID,
      Node: n.Node,
      Address: n.Address,
      Datacenter: n.Datacenter,
      TaggedAddresses: n.TaggedAddresses,
      NodeMeta: n.Meta,
      ServiceKind: s.Kind,
      ServiceID: s.ID,
      ServiceName: s.Service,
      ServiceTags: s.Tags,
      ServiceAddress: s.Address,
      ServiceWeights: s.Weights,
      ServiceMeta: s.Meta,
      ServicePort: s.Port,
      ServiceEnableTagOverride: s.EnableTagOverride,
      ServiceProxy: { DestinationServiceName: '', DestinationServiceID: '', LocalServiceAddress: '', LocalServicePort: 0, Config: null, Upstreams: null },
      ServiceConnect: { Native: false, Proxy: null },
      Namespace: s.Namespace,
      CreateIndex: s.CreateIndex,
      ModifyIndex: s.ModifyIndex,
    };
    if (Object.keys(s.TaggedAddresses).length > 0) out['ServiceTaggedAddresses'] = s.TaggedAddresses;
    return out;
  };
  const instancesOf = (name: string, ns: string): ServiceRecord[] =>
    [...state.services.values()]
      .filter((s) => s.Service === name && s.Namespace === ns)
      .sort((a, b) => (a.Node < b.Node ? -1 : a.Node > b.Node ? 1 : a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0));
  const checksOf = (s: ServiceRecord): CheckRecord[] => {
    const all = [...state.checks.values()].filter((c) => c.Node === s.Node && (c.ServiceID === s.ID || c.ServiceID === ''));
    // The documented order: the instance's own checks, then the node's.
    return [...all.filter((c) => c.ServiceID !== '').sort(byCheckId), ...all.filter((c) => c.ServiceID === '').sort(byCheckId)];
  };
  const byCheckId = (a: CheckRecord, b: CheckRecord): number => (a.CheckID < b.CheckID ? -1 : a.CheckID > b.CheckID ? 1 : 0);
  const serviceIndexOf = (name: string): number => Math.max(1, state.serviceIndex.get(name) ?? state.servicesIndex);

  // ----- request handling -----

  function send(res: http.ServerResponse, status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }
  const sendJson = (res: http.ServerResponse, value: unknown, headers: Record<string, string> = {}): void => send(res, 200, JSON.stringify(value), 'application/json', headers);
  const sendError = (res: http.ServerResponse, err: HttpError): void => send(res, err.status, err.message, 'text/plain; charset=utf-8');

  function namespaceOf(req: http.IncomingMessage, q: URLSearchParams): string {
    return q.get('ns') || (typeof req.headers['x-consul-namespace'] === 'string' ? req.headers['x-consul-namespace'] : '') || 'default';
  }

  function checkAcl(req: http.IncomingMessage, q: URLSearchParams): void {
    if (opts.aclToken === undefined) return;
    const auth = req.headers['authorization'];
    const bearer = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const given = (typeof req.headers['x-consul-token'] === 'string' ? req.headers['x-consul-token'] : undefined) ?? bearer ?? q.get('token') ?? undefined;
    if (given === undefined || given === '') throw new HttpError(403, 'Permission denied');
    if (given !== opts.aclToken) throw new HttpError(403, 'ACL not found');
  }

  function checkDatacenter(q: URLSearchParams): void {
    const dc = q.get('dc');
    if (dc && dc !== datacenter) throw new HttpError(500, 'No path to datacenter');
  }

  function filterOf(q: URLSearchParams): Filter | undefined {
    const text = q.get('filter');
    if (text === null || text === '') return undefined;
    try {
      return parseFilter(text);
    } catch (err) {
      throw new HttpError(400, `Failed to create boolean expression evaluator: ${(err as FilterError).message}`);
    }
  }

  /** Answers a blocking read: at once without `index`, else when `indexOf()` passes it or `wait` ends. */
  function blockingRead(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams, path: string, indexOf: () => number, render: () => unknown): void {
    const rawIndex = q.get('index');
    let clientIndex = 0n;
    if (rawIndex !== null && rawIndex !== '') {
      if (!/^[0-9]+$/.test(rawIndex)) throw new HttpError(400, `Invalid index: ${rawIndex}`);
      clientIndex = BigInt(rawIndex);
    }
    let waitMs = DEFAULT_WAIT_MS;
    const rawWait = q.get('wait');
    if (rawWait !== null && rawWait !== '') {
      const parsed = parseGoDuration(rawWait);
      if (parsed === undefined) throw new HttpError(400, `Invalid wait time: ${rawWait}`);
      waitMs = Math.min(parsed, MAX_WAIT_MS);
    }
    const answer = (): void => {
      const headers = { 'X-Consul-Index': String(indexOf()), 'X-Consul-Knownleader': 'true', 'X-Consul-Lastcontact': '0', 'X-Consul-Effective-Consistency': 'leader' };
      sendJson(res, render(), headers);
    };
    const restoredAt = restores;
    const changed = (): boolean => BigInt(indexOf()) > clientIndex || restores !== restoredAt;
    if (clientIndex === 0n || changed()) {
      answer();
      return;
    }
    const token = {};
    blocked.set(token, path);
    const done = (): void => {
      waiters.delete(check);
      blocked.delete(token);
      clearTimeout(timer);
    };
    const check = (): void => {
      if (!changed()) return;
      done();
      answer();
    };
    // Consul adds up to wait/16 of random extra time.
    const timer = setTimeout(() => {
      done();
      answer();
    }, waitMs + Math.floor(Math.random() * (waitMs / 16)));
    waiters.add(check);
    res.on('close', done);
  }

  async function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return {};
    try {
      return asObject(JSON.parse(text) as unknown, 'body');
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, `Request decode failed: ${(err as Error).message}`);
    }
  }

  function agentService(id: string, ns: string): ServiceRecord {
    const svc = state.services.get(key(nodeName, id));
    if (!svc || svc.Namespace !== ns) throw new HttpError(404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
    return svc;
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const q = url.searchParams;
    const path = url.pathname;
    const method = req.method ?? 'GET';
    checkAcl(req, q);
    const ns = namespaceOf(req, q);

    const read = (m: RegExp): RegExpExecArray | null => (method === 'GET' ? m.exec(path) : null);
    const put = (m: RegExp): RegExpExecArray | null => (method === 'PUT' ? m.exec(path) : null);
    let m: RegExpExecArray | null;

    if (read(/^\/v1\/status\/leader$/)) return sendJson(res, leader);
    if (read(/^\/v1\/status\/peers$/)) return sendJson(res, [leader]);
    if (read(/^\/v1\/catalog\/datacenters$/)) return sendJson(res, [datacenter]);
    if (read(/^\/v1\/catalog\/services$/)) {
      checkDatacenter(q);
      const filter = filterOf(q);
      return blockingRead(req, res, q, path, () => Math.max(1, state.servicesIndex), () => {
        const out: Record<string, string[]> = {};
        const names = [...new Set([...state.services.values()].filter((s) => s.Namespace === ns).map((s) => s.Service))].sort();
        for (const name of names) {
          const instances = instancesOf(name, ns).filter((s) => !filter || filter.evaluate(serviceNodeJson(s)));
          if (instances.length === 0) continue;
          out[name] = [...new Set(instances.flatMap((s) => s.Tags))].sort();
        }
        return out;
      });
    }
    if ((m = read(/^\/v1\/catalog\/service\/([^/]+)$/))) {
      checkDatacenter(q);
      const name = decodeURIComponent(m[1]!);
      const filter = filterOf(q);
      const tags = q.getAll('tag');
      return blockingRead(req, res, q, path, () => serviceIndexOf(name), () =>
        instancesOf(name, ns)
          .filter((s) => tags.every((t) => s.Tags.includes(t)))
          .map(serviceNodeJson)
          .filter((e) => !filter || filter.evaluate(e)),
      );
    }
    if ((m = read(/^\/v1\/health\/service\/([^/]+)$/))) {
      checkDatacenter(q);
      const name = decodeURIComponent(m[1]!);
      const filter = filterOf(q);
      const tags = q.getAll('tag');
      const passingOnly = q.has('passing') && q.get('passing') !== 'false';
      return blockingRead(req, res, q, path, () => serviceIndexOf(name), () =>
        instancesOf(name, ns)
          .filter((s) => tags.every((t) => s.Tags.includes(t)))
          .map((s) => ({ s, checks: checksOf(s) }))
          .filter(({ checks }) => !passingOnly || checks.every((c) => c.Status === 'passing'))
          .map(({ s, checks }) => ({ Node: nodeJson(state.nodes.get(s.Node)!), Service: serviceJson(s), Checks: checks.map(checkJson) }))
          .filter((e) => !filter || filter.evaluate(e)),
      );
    }

    if (put(/^\/v1\/agent\/service\/register$/)) {
      const body = await readBody(req);
      const svc = serviceFromBody(body, nodeName, 'Name', ns);
      const checks = [...(field(body, 'Check') !== undefined ? [field(body, 'Check')] : []), ...((field(body, 'Checks') as unknown[] | undefined) ?? [])];
      const replace = q.has('replace-existing-checks') && q.get('replace-existing-checks') !== 'false';
      upsertService(svc);
      const record = state.services.get(key(nodeName, svc.ID))!;
      const made = checks.map((c, i) =>
        checkFromBody(c, nodeName, record, checks.length > 1 ? `service:${svc.ID}:${i + 1}` : `service:${svc.ID}`, `Service '${svc.Service}' check`, svc.Namespace, false),
      );
      if (replace) {
        for (const c of [...state.checks.values()]) {
          if (c.Node === nodeName && c.ServiceID === svc.ID && !c.CheckID.startsWith(SERVICE_MAINT_PREFIX) && !made.some((x) => x.CheckID === c.CheckID)) removeCheck(nodeName, c.CheckID);
        }
      }
      for (const c of made) upsertCheck(c);
      wake();
      return send(res, 200, '', 'text/plain; charset=utf-8');
    }
    if ((m = put(/^\/v1\/agent\/service\/deregister\/(.+)$/))) {
      const id = decodeURIComponent(m[1]!);
      if (removeService(nodeName, id)) wake();
      return send(res, 200, '', 'text/plain; charset=utf-8');
    }
    if ((m = put(/^\/v1\/agent\/service\/maintenance\/(.+)$/))) {
      const id = decodeURIComponent(m[1]!);
      const enable = q.get('enable');
      if (enable !== 'true' && enable !== 'false') throw new HttpError(400, 'Missing value for enable');
      const svc = agentService(id, ns);
      const checkId = `${SERVICE_MAINT_PREFIX}${svc.ID}`;
      if (enable === 'true') {
        upsertCheck({
          Node: nodeName,
          CheckID: checkId,
          Name: 'Service Maintenance Mode',
          Status: 'critical',
          Notes: q.get('reason') || DEFAULT_SERVICE_MAINT_REASON,
          Output: '',
          ServiceID: svc.ID,
          ServiceName: svc.Service,
          ServiceTags: [...svc.Tags],
          Type: 'maintenance',
          Namespace: svc.Namespace,
          Definition: {},
        });
      } else {
        removeCheck(nodeName, checkId);
      }
      wake();
      return send(res, 200, '', 'text/plain; charset=utf-8');
    }
    if ((m = put(/^\/v1\/agent\/check\/(pass|warn|fail|update)\/(.+)$/))) {
      const checkId = decodeURIComponent(m[2]!);
      const existing = state.checks.get(key(nodeName, checkId));
      if (!existing) throw new HttpError(404, `Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`);
      let status: string;
      let output: string;
      if (m[1] === 'update') {
        const body = await readBody(req);
        status = asString(field(body, 'Status'), 'Status');
        output = asString(field(body, 'Output'), 'Output');
        if (!CHECK_STATUSES.has(status)) throw new HttpError(400, `Invalid check status: "${status}"`);
      } else {
        status = m[1] === 'pass' ? 'passing' : m[1] === 'warn' ? 'warning' : 'critical';
        output = q.get('note') ?? '';
      }
      upsertCheck({ ...existing, Status: status, Output: output });
      wake();
      return send(res, 200, '', 'text/plain; charset=utf-8');
    }
    if (put(/^\/v1\/catalog\/register$/)) {
      const body = await readBody(req);
      const node = asString(field(body, 'Node'), 'Node');
      if (!node) throw new HttpError(400, 'Must provide node');
      const address = asString(field(body, 'Address'), 'Address');
      const dc = asString(field(body, 'Datacenter'), 'Datacenter');
      if (dc && dc !== datacenter) throw new HttpError(500, 'No path to datacenter');
      const skipNodeUpdate = field(body, 'SkipNodeUpdate') === true && state.nodes.has(node);
      if (!skipNodeUpdate) {
        if (!address) throw new HttpError(400, 'Must provide address if SkipNodeUpdate is not set');
        const nodeMeta = asStringMap(field(body, 'NodeMeta'), 'NodeMeta');
        validateMeta(nodeMeta, 'Node Meta');
        const tagged = field(body, 'TaggedAddresses');
        upsertNode({ Node: node, Address: address, ID: asString(field(body, 'ID'), 'ID'), TaggedAddresses: tagged === undefined || tagged === null ? null : asStringMap(tagged, 'TaggedAddresses'), Meta: nodeMeta });
      }
      const bodyNs = asString(field(body, 'Namespace'), 'Namespace') || ns;
      const rawService = field(body, 'Service');
      let record: ServiceRecord | undefined;
      if (rawService !== undefined && rawService !== null) {
        const svc = serviceFromBody(asObject(rawService, 'Service'), node, 'Service', bodyNs);
        upsertService(svc);
        record = state.services.get(key(node, svc.ID));
      }
      const checks = [...(field(body, 'Check') ? [field(body, 'Check')] : []), ...((field(body, 'Checks') as unknown[] | undefined) ?? [])];
      for (const raw of checks) {
        const c = asObject(raw, 'Check');
        const serviceId = asString(field(c, 'ServiceID'), 'Check.ServiceID');
        const target = serviceId ? state.services.get(key(node, serviceId)) : undefined;
        if (serviceId && !target) throw new HttpError(500, `Unknown service ID "${serviceId}" for check`);
        const made = checkFromBody(c, node, target ?? (record && record.ID === serviceId ? record : undefined), '', '', bodyNs, true);
        if (!made.CheckID) throw new HttpError(400, 'Missing check ID');
        upsertCheck(made);
      }
      wake();
      return sendJson(res, true);
    }
    if (put(/^\/v1\/catalog\/deregister$/)) {
      const body = await readBody(req);
      const node = asString(field(body, 'Node'), 'Node');
      if (!node) throw new HttpError(400, 'Must provide node');
      const serviceId = asString(field(body, 'ServiceID'), 'ServiceID');
      const checkId = asString(field(body, 'CheckID'), 'CheckID');
      if (serviceId) removeService(node, serviceId);
      else if (checkId) removeCheck(node, checkId);
      else if (state.nodes.has(node)) {
        for (const s of servicesOnNode(node)) removeService(node, s.ID);
        for (const c of [...state.checks.values()]) if (c.Node === node) removeCheck(node, c.CheckID);
        state.nodes.delete(node);
        write();
      }
      wake();
      return sendJson(res, true);
    }
    const known = /^\/v1\/(status|catalog|health|agent)\//.test(path);
    throw new HttpError(known ? 405 : 404, known ? `method ${method} not allowed` : '404 page not found');
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://consul.invalid');
    requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), at: Date.now() });
    const fault = faults.find((f) => f.left > 0 && (typeof f.path === 'string' ? (f.path.endsWith('*') ? url.pathname.startsWith(f.path.slice(0, -1)) : url.pathname === f.path) : f.path.test(url.pathname)));
    if (fault) {
      fault.left--;
      if (fault.body !== undefined) {
        send(res, fault.status ?? 200, fault.body, fault.contentType ?? 'text/plain; charset=utf-8', fault.index !== undefined ? { 'X-Consul-Index': fault.index } : {});
        return;
      }
      if (fault.index !== undefined) {
        // The real body, at once, with a fixed index (a misbehaving server).
        url.searchParams.delete('index');
        const original = res.writeHead.bind(res) as (status: number, headers: Record<string, string | number>) => http.ServerResponse;
        (res as unknown as { writeHead: typeof original }).writeHead = (status, headers) => original(fault.status ?? status, { ...headers, 'X-Consul-Index': fault.index! });
      }
    }
    route(req, res, url).catch((err: unknown) => {
      if (err instanceof HttpError) sendError(res, err);
      else sendError(res, new HttpError(500, (err as Error).message));
    });
  }

  const server: http.Server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.ca, requestCert: opts.tls.requireClientCert === true, rejectUnauthorized: opts.tls.requireClientCert === true }, handle)
    : http.createServer(handle);
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  let port = opts.port ?? 0;
  let listening = false;
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        listening = true;
        resolve();
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (!listening) return resolve();
      listening = false;
      for (const w of [...waiters]) waiters.delete(w);
      blocked.clear();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      sockets.clear();
    });
  await listen();
  // The operator's side: always reachable, also while the API port is stopped (an outage between
  // Skiff and Consul, not of Consul itself), so tests can change the catalog during an outage.
  const admin = http.createServer(handle);
  const adminPort = await new Promise<number>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(0, host, () => resolve((admin.address() as AddressInfo).port));
  });

  const api: ConsulTestServer = {
    get url() {
      return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    },
    host,
    get port() {
      return port;
    },
    datacenter,
    nodeName,
    requests,
    index: () => state.raft,
    blockedQueries: () => [...blocked.values()].sort(),
    injectFault(fault) {
      const f = { ...fault, left: fault.times ?? Number.POSITIVE_INFINITY };
      faults.push(f);
      return () => {
        const i = faults.indexOf(f);
        if (i >= 0) faults.splice(i, 1);
      };
    },
    clearFaults() {
      faults.length = 0;
    },
    snapshot: () => ({ state: copyState(state) }),
    restore(s) {
      state = copyState(s.state as State);
      restores++;
      wake();
    },
    stop,
    start: listen,
    async close() {
      await stop();
      await new Promise<void>((resolve) => {
        admin.close(() => resolve());
        admin.closeAllConnections();
      });
    },
    async put(path, body) {
      const res = await putJson(`http://${host.includes(':') ? `[${host}]` : host}:${adminPort}${path}`, body, opts.aclToken);
      if (res.status < 200 || res.status > 299) throw new Error(`PUT ${path}: HTTP ${res.status}: ${res.body}`);
    },
  };
  return api;
}

/** A PUT to the admin listener (plain HTTP, always up). */
function putJson(url: string, body: unknown, token: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    if (token !== undefined) headers['x-consul-token'] = token;
    const req = http.request({ method: 'PUT', hostname: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
