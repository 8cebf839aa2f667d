/**
 * Minimal protobuf wire-format reading for the simulated proxies: just enough of
 * `DiscoveryResponse` / `DeltaDiscoveryResponse` (envoy/service/discovery/v3/discovery.proto) and
 * of `Cluster` (envoy/config/cluster/v3/cluster.proto) to ACK like Envoy and to learn the EDS
 * names, without building protobufjs objects for thousands of resources per response. Resource
 * bytes are returned as views into the message buffer (no copies).
 */

/** One length-delimited or varint field met while scanning a message. */
interface Field {
  no: number;
  /** Wire type 0 (varint) value; 0 for other wire types. */
  varint: number;
  /** Wire type 2 payload (a view); undefined for other wire types. */
  bytes: Uint8Array | undefined;
}

function readVarint(buf: Uint8Array, pos: { p: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos.p >= buf.length) throw new Error('truncated varint');
    const b = buf[pos.p++] as number;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

/** Calls `visit` for every top-level field of `buf`. Throws on malformed input. */
export function scanFields(buf: Uint8Array, visit: (f: Field) => void): void {
  const pos = { p: 0 };
  while (pos.p < buf.length) {
    const key = readVarint(buf, pos);
    const no = Math.floor(key / 8);
    const wt = key & 7;
    if (wt === 0) visit({ no, varint: readVarint(buf, pos), bytes: undefined });
    else if (wt === 2) {
      const len = readVarint(buf, pos);
      if (pos.p + len > buf.length) throw new Error('truncated field');
      visit({ no, varint: 0, bytes: buf.subarray(pos.p, pos.p + len) });
      pos.p += len;
    } else if (wt === 1) pos.p += 8;
    else if (wt === 5) pos.p += 4;
    else throw new Error(`unsupported wire type ${wt}`);
  }
}

const utf8 = new TextDecoder();

/** An `Any` (type URL and payload view). */
export interface AnyView {
  typeUrl: string;
  value: Uint8Array;
}

function readAny(buf: Uint8Array): AnyView {
  let typeUrl = '';
  let value: Uint8Array = new Uint8Array();
  scanFields(buf, (f) => {
    if (f.no === 1 && f.bytes) typeUrl = utf8.decode(f.bytes);
    else if (f.no === 2 && f.bytes) value = f.bytes;
  });
  return { typeUrl, value };
}

/** The SotW `DiscoveryResponse` fields a proxy needs. */
export interface SotwResponseView {
  versionInfo: string;
  resources: AnyView[];
  typeUrl: string;
  nonce: string;
}

/** Reads a `DiscoveryResponse`: version_info 1, resources 2, type_url 4, nonce 5. */
export function readSotwResponse(buf: Uint8Array): SotwResponseView {
  const out: SotwResponseView = { versionInfo: '', resources: [], typeUrl: '', nonce: '' };
  scanFields(buf, (f) => {
    if (!f.bytes) return;
    if (f.no === 1) out.versionInfo = utf8.decode(f.bytes);
    else if (f.no === 2) out.resources.push(readAny(f.bytes));
    else if (f.no === 4) out.typeUrl = utf8.decode(f.bytes);
    else if (f.no === 5) out.nonce = utf8.decode(f.bytes);
  });
  return out;
}

/** One `envoy.service.discovery.v3.Resource` of a delta response. */
export interface DeltaResourceView {
  name: string;
  version: string;
  resource: AnyView | undefined;
}

/** The `DeltaDiscoveryResponse` fields a proxy needs. */
export interface DeltaResponseView {
  systemVersionInfo: string;
  resources: DeltaResourceView[];
  typeUrl: string;
  removed: string[];
  nonce: string;
}

/** Reads a `DeltaDiscoveryResponse`: system_version_info 1, resources 2, type_url 4, nonce 5, removed_resources 6. */
export function readDeltaResponse(buf: Uint8Array): DeltaResponseView {
  const out: DeltaResponseView = { systemVersionInfo: '', resources: [], typeUrl: '', removed: [], nonce: '' };
  scanFields(buf, (f) => {
    if (!f.bytes) return;
    if (f.no === 1) out.systemVersionInfo = utf8.decode(f.bytes);
    else if (f.no === 2) {
      const r: DeltaResourceView = { name: '', version: '', resource: undefined };
      // Resource: version 1, resource 2 (Any), name 3.
      scanFields(f.bytes, (g) => {
        if (!g.bytes) return;
        if (g.no === 1) r.version = utf8.decode(g.bytes);
        else if (g.no === 2) r.resource = readAny(g.bytes);
        else if (g.no === 3) r.name = utf8.decode(g.bytes);
      });
      out.resources.push(r);
    } else if (f.no === 4) out.typeUrl = utf8.decode(f.bytes);
    else if (f.no === 5) out.nonce = utf8.decode(f.bytes);
    else if (f.no === 6) out.removed.push(utf8.decode(f.bytes));
  });
  return out;
}

/** Field 1 as a string: the name of a Cluster, Listener, RouteConfiguration and ClusterLoadAssignment. */
export function resourceName(value: Uint8Array): string {
  let name = '';
  scanFields(value, (f) => {
    if (f.no === 1 && f.bytes && name === '') name = utf8.decode(f.bytes);
  });
  return name;
}

/** Cluster.DiscoveryType EDS. */
const EDS = 3;

/**
 * The EDS name a `Cluster` needs, or undefined when it is not an EDS cluster: type (field 2)
 * EDS, name from `eds_cluster_config.service_name` (field 3 → 2), else the cluster name.
 */
export function edsNameOf(cluster: Uint8Array): string | undefined {
  let name = '';
  let type = 0;
  let serviceName = '';
  scanFields(cluster, (f) => {
    if (f.no === 1 && f.bytes) name = utf8.decode(f.bytes);
    else if (f.no === 2) type = f.varint;
    else if (f.no === 3 && f.bytes) {
      scanFields(f.bytes, (g) => {
        if (g.no === 2 && g.bytes) serviceName = utf8.decode(g.bytes);
      });
    }
  });
  if (type !== EDS) return undefined;
  return serviceName || name;
}
