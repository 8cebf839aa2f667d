/**
 * Loads the protobuf definitions Skiff speaks: Envoy's v3 API (from the proto set that
 * `@grpc/grpc-js-xds` ships, with its xds, googleapis and validate dependencies) and Skiff's own
 * `.proto` files for Istio's protocols (this folder).
 *
 * protobufjs silently drops unknown keys in `fromObject`, so every resource Skiff builds goes
 * through {@link encodeStrict}, which first checks every key against the message descriptor
 * (recursing into nested messages and `Any` payloads) and throws {@link UnknownFieldError} on a
 * misspelt field. A typo is therefore a test failure, never a silently missing setting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** Type URLs of the xDS resource types Skiff serves (Envoy's `envoy.config.*.v3` messages). */
export const TypeUrl = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  Address: 'type.googleapis.com/istio.workload.Address',
  Authorization: 'type.googleapis.com/istio.security.Authorization',
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** Envoy proto files loaded; everything they import is resolved from the include dirs. */
const ENVOY_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  // HBONE (issue 6): internal listeners, PROXY protocol into them, the peer identity as filter state.
  'envoy/extensions/transport_sockets/internal_upstream/v3/internal_upstream.proto',
  'envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol.proto',
  'envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto',
  'envoy/extensions/filters/http/set_filter_state/v3/set_filter_state.proto',
  'envoy/extensions/bootstrap/internal_listener/v3/internal_listener.proto',
  // Traffic management (issue 8): per-route fault injection and CORS, Istio's retry host predicate.
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
];

/** Skiff's own proto files, relative to this folder. */
const OWN_FILES = ['istio/ca.proto', 'skiff/registration.proto', 'istio/workload.proto', 'istio/security.proto'];

function includeDirs(): string[] {
  const xdsPkg = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = path.join(xdsPkg, 'deps');
  return [
    ownProtoDir(),
    path.join(deps, 'envoy-api'),
    path.join(deps, 'xds'),
    path.join(deps, 'googleapis'),
    path.join(deps, 'protoc-gen-validate'),
    path.dirname(require.resolve('protobufjs/package.json')), // google/protobuf/descriptor.proto
  ];
}

/**
 * The folder holding Skiff's `.proto` files. From `dist/` (compiled) they are not copied, so
 * fall back to the source tree next to it.
 */
function ownProtoDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  if (fs.existsSync(path.join(here, 'istio'))) return here;
  const fromDist = here.replace(`${path.sep}dist${path.sep}`, path.sep);
  return fromDist;
}

let cached: protobuf.Root | undefined;

/**
 * The proto sets of the single-file agent binary (scripts/build-agent-binary.mjs), each embedded
 * as its own SEA asset ({@link protoAssetName}) so the agent does not keep Envoy's whole API in
 * memory:
 *
 * - `runtime`: what the agent uses while running: SDS (`DiscoveryRequest`/`DiscoveryResponse`,
 *   the `Secret` resource), Istio's CA service and Skiff's registration stream. Inside the binary
 *   {@link protoRoot} holds only these.
 * - `bootstrap`: what validating and writing the Envoy bootstrap needs (`Bootstrap` and the
 *   `typed_config` payloads the agent puts in it). Loaded by {@link bootstrapProtoRoot} for that one
 *   job and not kept.
 *
 * Files are relative to the include dirs (Envoy's API, or this folder for Skiff's own); everything
 * they import comes along.
 */
export const AGENT_PROTO_FILES = {
  runtime: [
    'envoy/service/discovery/v3/discovery.proto',
    'envoy/extensions/transport_sockets/tls/v3/secret.proto',
    'istio/ca.proto',
    'skiff/registration.proto',
  ],
  bootstrap: [
    'envoy/config/bootstrap/v3/bootstrap.proto',
    'envoy/extensions/transport_sockets/tls/v3/tls.proto',
    'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
    'envoy/extensions/bootstrap/internal_listener/v3/internal_listener.proto',
  ],
} as const satisfies Record<string, readonly string[]>;

/** A proto set of the agent binary: a key of {@link AGENT_PROTO_FILES}. */
export type AgentProtoSet = keyof typeof AGENT_PROTO_FILES;

/**
 * Name of the single-executable-application asset holding the pre-built descriptor of one
 * {@link AgentProtoSet} (protobufjs JSON, `Root.toJSON()`), e.g. `skiff-protos-runtime.json`.
 * The single-file agent binary (scripts/build-agent-binary.mjs) embeds them because it has no
 * node_modules to read Envoy's `.proto` files from.
 */
export function protoAssetName(set: AgentProtoSet): string {
  return `skiff-protos-${set}.json`;
}

/** True when running as a Node single executable application (the agent binary). */
function inSea(): boolean {
  try {
    const sea = require('node:sea') as typeof import('node:sea');
    return sea.isSea();
  } catch {
    return false; // Node.js without node:sea (before 20.12)
  }
}

/** The root of one embedded proto set (SEA only), resolved. */
function seaRoot(set: AgentProtoSet): protobuf.Root {
  const sea = require('node:sea') as typeof import('node:sea');
  const root = protobuf.Root.fromJSON(JSON.parse(sea.getAsset(protoAssetName(set), 'utf8')) as protobuf.INamespace);
  root.resolveAll();
  return root;
}

/**
 * Parses the given `.proto` files (relative to the include dirs: Envoy's API and its xds,
 * googleapis and validate dependencies from `@grpc/grpc-js-xds`, and this folder) and everything
 * they import into a new, resolved root. Throws when a file cannot be found or a type not resolved.
 */
export function loadProtoFiles(files: readonly string[]): protobuf.Root {
  const dirs = includeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target; // google/protobuf/*.proto: protobufjs has these built in
  };
  root.loadSync([...files], { keepCase: false });
  root.resolveAll();
  return root;
}

/**
 * Returns the protobuf root with Envoy's and Skiff's definitions, parsed once per process
 * (~120 ms). The root is never mutated after loading. Inside the single-file agent binary it
 * holds only the agent's `runtime` set ({@link AGENT_PROTO_FILES}), from its embedded asset.
 */
export function protoRoot(): protobuf.Root {
  if (cached) return cached;
  cached = inSea() ? seaRoot('runtime') : loadProtoFiles([...ENVOY_FILES, ...OWN_FILES]);
  return cached;
}

/**
 * A root holding `envoy.config.bootstrap.v3.Bootstrap` and the payload types the agent's
 * bootstrap uses. Outside the agent binary this is the shared {@link protoRoot}; inside it, a
 * fresh root from the embedded `bootstrap` set that the caller drops when done (it is large and
 * needed once per start).
 */
export function bootstrapProtoRoot(): protobuf.Root {
  return inSea() ? seaRoot('bootstrap') : protoRoot();
}

/** Looks up a message type by its full name (`envoy.config.listener.v3.Listener`). */
export function messageType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName);
}

/** The message name in a type URL (`type.googleapis.com/<name>`). */
export function typeNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf('/');
  return typeUrl.slice(slash + 1);
}

/** Thrown by {@link encodeStrict} when an object has a key its message type does not define. */
export class UnknownFieldError extends Error {
  constructor(
    readonly typeName: string,
    readonly fieldPath: string,
  ) {
    super(`unknown field ${fieldPath} in ${typeName}`);
    this.name = 'UnknownFieldError';
  }
}

const WELL_KNOWN_LEAVES = new Set([
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.UInt32Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.Int64Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.BytesValue',
  'google.protobuf.Empty',
]);

/**
 * Checks every key of `obj` against `type` (camelCase field names only), recursing
 * into nested messages, repeated and map fields and `Any` values given as `{'@type': url, ...}`.
 * Throws {@link UnknownFieldError} naming the JSON path of the first unknown key.
 */
export function assertKnownFields(type: protobuf.Type, obj: unknown, at = ''): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
  if (type.fullName === '.google.protobuf.Any') {
    const record = obj as Record<string, unknown>;
    const url = record['@type'];
    if (typeof url !== 'string') {
      if ('type_url' in record) return; // already-encoded Any (protobufjs' built-in Any uses snake_case)
      if ('typeUrl' in record) throw new UnknownFieldError('google.protobuf.Any', `${at}.typeUrl (protobufjs' Any reads type_url; typeUrl would be dropped)`);
      throw new UnknownFieldError('google.protobuf.Any', `${at}.@type (missing)`);
    }
    const inner = type.root.lookupType(typeNameOf(url)); // the payload's type from the same proto set
    const { '@type': _ignored, ...rest } = record;
    assertKnownFields(inner, rest, at);
    return;
  }
  if (WELL_KNOWN_LEAVES.has(type.fullName.slice(1))) return;
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    const field = type.fields[key];
    const here = at ? `${at}.${key}` : key;
    if (!field) {
      // protobufjs' fromObject reads only camelCase keys; a snake_case key would vanish silently.
      const hint = type.fields[snakeToCamel(key)] ? ` (write it as ${snakeToCamel(key)})` : '';
      throw new UnknownFieldError(type.fullName.slice(1), here + hint);
    }
    field.resolve();
    const fieldType = field.resolvedType;
    if (!(fieldType instanceof protobuf.Type) || value === undefined || value === null) continue;
    if (field.map) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) assertKnownFields(fieldType, v, `${here}[${k}]`);
    } else if (field.repeated && Array.isArray(value)) {
      value.forEach((item, i) => assertKnownFields(fieldType, item, `${here}[${i}]`));
    } else {
      assertKnownFields(fieldType, value, here);
    }
  }
}

function snakeToCamel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Encodes a plain object (protobufjs object form: camelCase keys, enums by name, `Any` as
 * `{'@type': url, ...fields}`, Durations as `{seconds, nanos}`) as the message `typeName`,
 * after {@link assertKnownFields}, looking `typeName` up in `root` (default {@link protoRoot}).
 * Returns the wire bytes.
 */
export function encodeStrict(typeName: string, obj: object, root: protobuf.Root = protoRoot()): Uint8Array {
  const type = root.lookupType(typeName);
  assertKnownFields(type, obj);
  const message = type.fromObject(obj);
  return type.encode(message).finish();
}

/** An encoded `google.protobuf.Any`: the type URL and the message bytes. */
export interface EncodedAny {
  typeUrl: string;
  value: Uint8Array;
}

/** Encodes `obj` as the message named by `typeUrl` and wraps it as an {@link EncodedAny}. */
export function encodeAny(typeUrl: string, obj: object): EncodedAny {
  return { typeUrl, value: encodeStrict(typeNameOf(typeUrl), obj) };
}

/** Decodes an `Any`'s payload to a plain object (for tests and debug views). */
export function decodeAny(any: EncodedAny): Record<string, unknown> {
  const type = messageType(typeNameOf(any.typeUrl));
  return type.toObject(type.decode(any.value), { longs: Number, enums: String, bytes: String, defaults: false, json: true });
}

/** A `google.protobuf.Duration` in protobufjs object form from milliseconds. */
export function duration(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}
