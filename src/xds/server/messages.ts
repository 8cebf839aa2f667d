/**
 * SotW xDS messages on the wire (envoy/service/discovery/v3/discovery.proto): decoding
 * `DiscoveryRequest` with protobufjs and encoding `DiscoveryResponse` around resources that are
 * already encoded `Any`s (their bytes are copied into the response, never re-encoded), plus the
 * gRPC method definition of `AggregatedDiscoveryService/StreamAggregatedResources`
 * (envoy/service/discovery/v3/ads.proto) for @grpc/grpc-js.
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import { messageType, TypeUrl, type EncodedAny } from '../protos/loader.js';
import type { XdsNode } from '../types.js';
import { decodeNode, nodeToObject, type NodeObject } from './node.js';

/** gRPC path of the SotW ADS method. */
export const ADS_SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/** A decoded `envoy.service.discovery.v3.DiscoveryRequest` (absent strings are `''`). */
export interface DiscoveryRequestMessage {
  /** Version of the most recent response the client accepted for this type (`''` at first). */
  versionInfo: string;
  /** Present on the first request of a stream (`set_node_on_first_message_only`), maybe later. */
  node: XdsNode | undefined;
  resourceNames: string[];
  typeUrl: string;
  /** Nonce of the response this request answers (`''` on a type's first request). */
  responseNonce: string;
  /** Set on a NACK: `google.rpc.Status` code and message from the client. */
  errorDetail: { code: number; message: string } | undefined;
}

/** The fields of a `DiscoveryResponse` the server sends. */
export interface DiscoveryResponseMessage {
  versionInfo: string;
  resources: readonly EncodedAny[];
  typeUrl: string;
  nonce: string;
}

/** What the server's deserializer yields: a request, or why the bytes are not one. */
export type IncomingRequest = { ok: true; request: DiscoveryRequestMessage } | { ok: false; error: string };

interface RequestObject {
  versionInfo?: string;
  node?: NodeObject;
  resourceNames?: string[];
  typeUrl?: string;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string };
}

/**
 * `google.protobuf.Any` as protobufjs holds it: its built-in any.proto keeps the snake_case
 * field name `type_url` (a `typeUrl` key would be dropped silently).
 */
interface AnyObject {
  type_url?: string;
  value?: Uint8Array;
}

interface ResponseObject {
  versionInfo?: string;
  resources?: AnyObject[];
  typeUrl?: string;
  nonce?: string;
}

const requestType = () => messageType('envoy.service.discovery.v3.DiscoveryRequest');
const responseType = () => messageType('envoy.service.discovery.v3.DiscoveryResponse');

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes a `DiscoveryRequest`. Throws on bytes that are not one (or on unusable node metadata). */
export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequestMessage {
  const type = requestType();
  const obj = type.toObject(type.decode(bytes), { defaults: false, arrays: true, enums: String, longs: String }) as RequestObject;
  return {
    versionInfo: obj.versionInfo ?? '',
    node: obj.node ? decodeNode(obj.node) : undefined,
    resourceNames: obj.resourceNames ?? [],
    typeUrl: obj.typeUrl ?? '',
    responseNonce: obj.responseNonce ?? '',
    errorDetail: obj.errorDetail ? { code: obj.errorDetail.code ?? 0, message: obj.errorDetail.message ?? '' } : undefined,
  };
}

/** Encodes a `DiscoveryRequest` (for xDS clients and tests); `errorDetail` makes it a NACK. */
export function encodeDiscoveryRequest(req: Partial<DiscoveryRequestMessage>): Buffer {
  const type = requestType();
  const obj: Record<string, unknown> = {
    versionInfo: req.versionInfo ?? '',
    resourceNames: req.resourceNames ?? [],
    typeUrl: req.typeUrl ?? '',
    responseNonce: req.responseNonce ?? '',
  };
  if (req.node) obj['node'] = nodeToObject(req.node);
  if (req.errorDetail) obj['errorDetail'] = { code: req.errorDetail.code, message: req.errorDetail.message };
  return toBuffer(type.encode(type.fromObject(obj)).finish());
}

/**
 * Encodes a `DiscoveryResponse`. The resources are written as they are (type URL and bytes), so
 * a resource encoded once by the translator is the same bytes on every stream.
 */
export function encodeDiscoveryResponse(resp: DiscoveryResponseMessage): Buffer {
  // Everything but the nonce (field 5, written last) is encoded once per resources array for the
  // types whose answers the snapshot cache shares between streams (named EDS and RDS answers from
  // shared type maps). CDS and LDS answers are per proxy (their maps hold its inbound side too):
  // caching those would keep a copy of each proxy's answer for as long as its snapshot lives.
  let prefix = PREFIXES.get(resp.resources);
  if (!prefix || prefix.versionInfo !== resp.versionInfo || prefix.typeUrl !== resp.typeUrl) {
    const plain: ResponseObject = {
      versionInfo: resp.versionInfo,
      // protobufjs' encoder reads own `type_url`/`value` fields: the bytes are written as they are.
      resources: resp.resources.map((r) => ({ type_url: r.typeUrl, value: r.value })),
      typeUrl: resp.typeUrl,
    };
    prefix = { versionInfo: resp.versionInfo, typeUrl: resp.typeUrl, bytes: responseType().encode(plain).finish() };
    if (SHARED_ANSWER_TYPES.has(resp.typeUrl)) PREFIXES.set(resp.resources, prefix);
  }
  if (resp.nonce === '') return toBuffer(prefix.bytes);
  const nonce = Buffer.from(resp.nonce, 'utf8');
  const out = Buffer.allocUnsafe(prefix.bytes.length + 1 + varintLength(nonce.length) + nonce.length);
  out.set(prefix.bytes, 0);
  let at = prefix.bytes.length;
  out[at++] = NONCE_TAG;
  for (let n = nonce.length; ; n >>>= 7) {
    if (n < 0x80) {
      out[at++] = n;
      break;
    }
    out[at++] = (n & 0x7f) | 0x80;
  }
  out.set(nonce, at);
  return out;
}

/** Types whose answers are shared between streams (see {@link encodeDiscoveryResponse}). */
const SHARED_ANSWER_TYPES: ReadonlySet<string> = new Set([TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration]);

/** Tag of `DiscoveryResponse.nonce`: field 5, wire type 2 (length-delimited). */
const NONCE_TAG = (5 << 3) | 2;

/** Encoded `DiscoveryResponse` fields 1-4 by resources array (see {@link encodeDiscoveryResponse}). */
const PREFIXES = new WeakMap<readonly EncodedAny[], { versionInfo: string; typeUrl: string; bytes: Uint8Array }>();

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n >>>= 7;
    len += 1;
  }
  return len;
}

/** Decodes a `DiscoveryResponse` (for xDS clients and tests); resources stay encoded. */
export function decodeDiscoveryResponse(bytes: Uint8Array): DiscoveryResponseMessage {
  const type = responseType();
  const obj = type.toObject(type.decode(bytes), { defaults: false, arrays: true, longs: String }) as ResponseObject;
  return {
    versionInfo: obj.versionInfo ?? '',
    resources: (obj.resources ?? []).map((r) => ({ typeUrl: r.type_url ?? '', value: r.value ?? new Uint8Array() })),
    typeUrl: obj.typeUrl ?? '',
    nonce: obj.nonce ?? '',
  };
}

/** The server-side deserializer: never throws, so a bad message becomes a clear stream error. */
function deserializeIncoming(bytes: Buffer): IncomingRequest {
  try {
    return { ok: true, request: decodeDiscoveryRequest(bytes) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The grpc-js method definition of `StreamAggregatedResources` (a bidirectional stream of
 * `DiscoveryRequest` in, `DiscoveryResponse` out) as the server uses it.
 */
export function adsSotwMethod(): MethodDefinition<IncomingRequest, DiscoveryResponseMessage> {
  return {
    path: ADS_SOTW_PATH,
    requestStream: true,
    responseStream: true,
    originalName: 'streamAggregatedResources',
    requestSerialize: (req) => (req.ok ? encodeDiscoveryRequest(req.request) : Buffer.alloc(0)),
    requestDeserialize: deserializeIncoming,
    responseSerialize: encodeDiscoveryResponse,
    responseDeserialize: decodeDiscoveryResponse,
  };
}
