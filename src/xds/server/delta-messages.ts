/**
 * Delta (incremental) xDS messages on the wire (envoy/service/discovery/v3/discovery.proto):
 * decoding `DeltaDiscoveryRequest` and encoding `DeltaDiscoveryResponse` around resources that are
 * already encoded `Any`s (written as they are, never re-encoded), plus the gRPC method definition
 * of `AggregatedDiscoveryService/DeltaAggregatedResources` (envoy/service/discovery/v3/ads.proto).
 * The same messages are what ztunnel speaks (its proto/xds.proto uses these field numbers).
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import { messageType, type EncodedAny } from '../protos/loader.js';
import type { XdsNode } from '../types.js';
import { decodeNode, nodeToObject, type NodeObject } from './node.js';

/** gRPC path of the delta ADS method. */
export const ADS_DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

/** A decoded `envoy.service.discovery.v3.DeltaDiscoveryRequest` (absent strings are `''`). */
export interface DeltaDiscoveryRequestMessage {
  /** Present on the first request of a stream, maybe later. */
  node: XdsNode | undefined;
  typeUrl: string;
  /** Names (or aliases) to add to the subscription; `*` is the wildcard. */
  resourceNamesSubscribe: string[];
  /** Names (or aliases) to drop from the subscription; `*` drops the wildcard. */
  resourceNamesUnsubscribe: string[];
  /** On a type's first request of a stream: name → version of every resource the client holds. */
  initialResourceVersions: Record<string, string>;
  /** Nonce of the response this request ACKs or NACKs; `''` on spontaneous requests. */
  responseNonce: string;
  /** Set on a NACK: `google.rpc.Status` code and message from the client. */
  errorDetail: { code: number; message: string } | undefined;
}

/** One resource of a `DeltaDiscoveryResponse` (`envoy.service.discovery.v3.Resource`). */
export interface DeltaResource {
  name: string;
  version: string;
  aliases?: readonly string[];
  resource: EncodedAny;
}

/** The fields of a `DeltaDiscoveryResponse` the server sends. */
export interface DeltaDiscoveryResponseMessage {
  systemVersionInfo: string;
  resources: readonly DeltaResource[];
  typeUrl: string;
  removedResources: readonly string[];
  nonce: string;
}

/** What the server's deserializer yields: a request, or why the bytes are not one. */
export type IncomingDeltaRequest = { ok: true; request: DeltaDiscoveryRequestMessage } | { ok: false; error: string };

interface DeltaRequestObject {
  node?: NodeObject;
  typeUrl?: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string };
}

/** `google.protobuf.Any` as protobufjs' built-in any.proto holds it (snake_case `type_url`). */
interface AnyObject {
  type_url?: string;
  value?: Uint8Array;
}

interface ResourceObject {
  name?: string;
  version?: string;
  aliases?: string[];
  resource?: AnyObject;
}

interface DeltaResponseObject {
  systemVersionInfo?: string;
  resources?: ResourceObject[];
  typeUrl?: string;
  removedResources?: string[];
  nonce?: string;
}

const requestType = () => messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const responseType = () => messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes a `DeltaDiscoveryRequest`. Throws on bytes that are not one (or unusable node metadata). */
export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): DeltaDiscoveryRequestMessage {
  const type = requestType();
  const obj = type.toObject(type.decode(bytes), { defaults: false, arrays: true, objects: true, longs: String }) as DeltaRequestObject;
  return {
    node: obj.node ? decodeNode(obj.node) : undefined,
    typeUrl: obj.typeUrl ?? '',
    resourceNamesSubscribe: obj.resourceNamesSubscribe ?? [],
    resourceNamesUnsubscribe: obj.resourceNamesUnsubscribe ?? [],
    initialResourceVersions: { ...(obj.initialResourceVersions ?? {}) },
    responseNonce: obj.responseNonce ?? '',
    errorDetail: obj.errorDetail ? { code: obj.errorDetail.code ?? 0, message: obj.errorDetail.message ?? '' } : undefined,
  };
}

/** Encodes a `DeltaDiscoveryRequest` (for xDS clients and tests); `errorDetail` makes it a NACK. */
export function encodeDeltaDiscoveryRequest(req: Partial<DeltaDiscoveryRequestMessage>): Buffer {
  const type = requestType();
  const obj: Record<string, unknown> = {
    typeUrl: req.typeUrl ?? '',
    resourceNamesSubscribe: req.resourceNamesSubscribe ?? [],
    resourceNamesUnsubscribe: req.resourceNamesUnsubscribe ?? [],
    initialResourceVersions: req.initialResourceVersions ?? {},
    responseNonce: req.responseNonce ?? '',
  };
  if (req.node) obj['node'] = nodeToObject(req.node);
  if (req.errorDetail) obj['errorDetail'] = { code: req.errorDetail.code, message: req.errorDetail.message };
  return toBuffer(type.encode(type.fromObject(obj)).finish());
}

/**
 * Encodes a `DeltaDiscoveryResponse`. Each resource's `Any` is written as it is (type URL and
 * bytes), so a resource encoded once is the same bytes on every stream.
 */
export function encodeDeltaDiscoveryResponse(resp: DeltaDiscoveryResponseMessage): Buffer {
  const plain: DeltaResponseObject = {
    systemVersionInfo: resp.systemVersionInfo,
    resources: resp.resources.map((r) => ({
      name: r.name,
      version: r.version,
      ...(r.aliases && r.aliases.length > 0 ? { aliases: [...r.aliases] } : {}),
      resource: { type_url: r.resource.typeUrl, value: r.resource.value },
    })),
    typeUrl: resp.typeUrl,
    removedResources: [...resp.removedResources],
    nonce: resp.nonce,
  };
  return toBuffer(responseType().encode(plain).finish());
}

/** Decodes a `DeltaDiscoveryResponse` (for xDS clients and tests); resources stay encoded. */
export function decodeDeltaDiscoveryResponse(bytes: Uint8Array): DeltaDiscoveryResponseMessage {
  const type = responseType();
  const obj = type.toObject(type.decode(bytes), { defaults: false, arrays: true, longs: String }) as DeltaResponseObject;
  return {
    systemVersionInfo: obj.systemVersionInfo ?? '',
    resources: (obj.resources ?? []).map((r) => {
      const out: DeltaResource = {
        name: r.name ?? '',
        version: r.version ?? '',
        resource: { typeUrl: r.resource?.type_url ?? '', value: r.resource?.value ?? new Uint8Array() },
      };
      if (r.aliases && r.aliases.length > 0) out.aliases = r.aliases;
      return out;
    }),
    typeUrl: obj.typeUrl ?? '',
    removedResources: obj.removedResources ?? [],
    nonce: obj.nonce ?? '',
  };
}

/** The server-side deserializer: never throws, so a bad message becomes a clear stream error. */
function deserializeIncoming(bytes: Buffer): IncomingDeltaRequest {
  try {
    return { ok: true, request: decodeDeltaDiscoveryRequest(bytes) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The grpc-js method definition of `DeltaAggregatedResources` (a bidirectional stream of
 * `DeltaDiscoveryRequest` in, `DeltaDiscoveryResponse` out) as the server uses it.
 */
export function adsDeltaMethod(): MethodDefinition<IncomingDeltaRequest, DeltaDiscoveryResponseMessage> {
  return {
    path: ADS_DELTA_PATH,
    requestStream: true,
    responseStream: true,
    originalName: 'deltaAggregatedResources',
    requestSerialize: (req) => (req.ok ? encodeDeltaDiscoveryRequest(req.request) : Buffer.alloc(0)),
    requestDeserialize: deserializeIncoming,
    responseSerialize: encodeDeltaDiscoveryResponse,
    responseDeserialize: decodeDeltaDiscoveryResponse,
  };
}
