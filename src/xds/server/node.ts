/**
 * `envoy.config.core.v3.Node` (envoy/config/core/v3/base.proto) to and from {@link XdsNode}:
 * the identity an xDS client sends in its first `DiscoveryRequest`. `metadata` is a
 * `google.protobuf.Struct`, turned into plain JSON here (Istio's NAMESPACE, SERVICE_ACCOUNT,
 * LABELS, WORKLOAD_NAME, CLUSTER_ID keys live there).
 *
 * The input is protobufjs object form (`Type.toObject(message)`, camelCase keys).
 */
import type { XdsNode } from '../types.js';

/** `google.protobuf.Value` in protobufjs object form (one member of the `kind` oneof set). */
export interface ValueObject {
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructObject;
  listValue?: { values?: ValueObject[] };
}

/** `google.protobuf.Struct` in protobufjs object form. */
export interface StructObject {
  fields?: Record<string, ValueObject>;
}

/** The `envoy.config.core.v3.Node` fields Skiff reads, in protobufjs object form. */
export interface NodeObject {
  id?: string;
  cluster?: string;
  metadata?: StructObject;
  userAgentName?: string;
  userAgentVersion?: string;
  locality?: { region?: string; zone?: string; subZone?: string };
}

/** Nesting deeper than this in node metadata is refused (a guard against hostile input). */
const MAX_DEPTH = 32;

/** Thrown when node metadata cannot be represented (too deep, or not JSON). */
export class NodeMetadataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeMetadataError';
  }
}

function valueToJson(value: ValueObject, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new NodeMetadataError(`node metadata nested deeper than ${MAX_DEPTH} levels`);
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.numberValue !== undefined) return value.numberValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.structValue !== undefined) return structFields(value.structValue, depth + 1);
  if (value.listValue !== undefined) return (value.listValue.values ?? []).map((v) => valueToJson(v, depth + 1));
  return null; // null_value, or a Value with no kind set
}

function structFields(struct: StructObject, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(struct.fields ?? {})) out[key] = valueToJson(value, depth);
  return out;
}

/**
 * A `google.protobuf.Struct` as plain JSON: string, number, bool, null, nested objects and
 * arrays. Throws {@link NodeMetadataError} past 32 levels of nesting.
 */
export function structToJson(struct: StructObject | undefined | null): Record<string, unknown> {
  return struct ? structFields(struct, 0) : {};
}

function jsonToValue(value: unknown, at: string, depth: number): ValueObject {
  if (depth > MAX_DEPTH) throw new NodeMetadataError(`${at}: nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) return { nullValue: 'NULL_VALUE' };
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'number':
      return { numberValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'object':
      if (Array.isArray(value)) return { listValue: { values: value.map((v, i) => jsonToValue(v, `${at}[${i}]`, depth + 1)) } };
      return { structValue: jsonToStructAt(value as Record<string, unknown>, at, depth + 1) };
    default:
      throw new NodeMetadataError(`${at}: ${typeof value} is not a JSON value`);
  }
}

function jsonToStructAt(obj: Record<string, unknown>, at: string, depth: number): StructObject {
  const fields: Record<string, ValueObject> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    fields[key] = jsonToValue(value, at ? `${at}.${key}` : key, depth);
  }
  return { fields };
}

/**
 * Plain JSON as a `google.protobuf.Struct` in protobufjs object form (`undefined` members are
 * skipped). Throws {@link NodeMetadataError} on a value JSON cannot hold (function, bigint, ...).
 */
export function jsonToStruct(obj: Record<string, unknown>): StructObject {
  return jsonToStructAt(obj, '', 0);
}

/** Decodes a `Node` (protobufjs object form) into an {@link XdsNode}; absent strings become `''`, an empty locality is dropped. */
export function decodeNode(node: NodeObject): XdsNode {
  const out: XdsNode = { id: node.id ?? '', cluster: node.cluster ?? '', metadata: structToJson(node.metadata) };
  if (node.userAgentName) out.userAgentName = node.userAgentName;
  if (node.userAgentVersion) out.userAgentVersion = node.userAgentVersion;
  const l = node.locality;
  if (l && (l.region || l.zone || l.subZone)) {
    out.locality = {};
    if (l.region) out.locality.region = l.region;
    if (l.zone) out.locality.zone = l.zone;
    if (l.subZone) out.locality.subZone = l.subZone;
  }
  return out;
}

/** An {@link XdsNode} as a `Node` in protobufjs object form, ready for `Type.fromObject`. */
export function nodeToObject(node: XdsNode): NodeObject {
  const out: NodeObject = { id: node.id, cluster: node.cluster, metadata: jsonToStruct(node.metadata) };
  if (node.userAgentName !== undefined) out.userAgentName = node.userAgentName;
  if (node.userAgentVersion !== undefined) out.userAgentVersion = node.userAgentVersion;
  if (node.locality !== undefined) out.locality = { ...node.locality };
  return out;
}
