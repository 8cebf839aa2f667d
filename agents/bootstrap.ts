/**
 * The Envoy bootstrap for a VM sidecar (`envoy.config.bootstrap.v3.Bootstrap`; DESIGN.md §6):
 *
 * - node id in Istio's form `sidecar~<ip>~<name>.<ns>~<ns>.svc.cluster.local`, cluster
 *   `<serviceAccount>.<ns>`, metadata NAMESPACE, SERVICE_ACCOUNT, LABELS, WORKLOAD_NAME,
 *   CLUSTER_ID, INSTANCE_IPS and SKIFF_VERSION (the control plane checks these against the
 *   client certificate);
 * - admin on 127.0.0.1 only;
 * - static cluster `sds-grpc`: the agent's SDS server on its Unix socket, HTTP/2;
 * - static cluster `xds-grpc`: the control plane over mTLS, with the SDS secrets `default` and
 *   `ROOTCA` and the control plane's SPIFFE ID as the only accepted URI SAN;
 * - ADS over `xds-grpc` for CDS and LDS: state of the world (`api_type: GRPC`) or, with
 *   `xdsMode: 'delta'`, incremental (`api_type: DELTA_GRPC`).
 * - the `envoy.bootstrap.internal_listener` extension, which the HBONE listeners and clusters the
 *   control plane sends rely on (internal listeners).
 *
 * Objects are built in protobufjs object form (camelCase, `Any` as `{'@type', ...}`, Durations as
 * `{seconds, nanos}`), checked with `encodeStrict` (so a misspelt field fails), then written as the
 * proto3 JSON Envoy reads (Durations as `"1.5s"`).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { bootstrapProtoRoot, duration, encodeStrict, typeNameOf } from '../src/xds/protos/loader.js';
import { splitHostPort } from './config.js';
import { writeFileAtomic } from './files.js';

/** The static cluster that reaches the agent's SDS server. */
export const SDS_CLUSTER = 'sds-grpc';
/** The static cluster that reaches the control plane (ADS). */
export const XDS_CLUSTER = 'xds-grpc';

const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** A bootstrap (or part of one) in protobufjs object form. */
export type EnvoyConfigObject = Record<string, unknown>;

/** Identity and addresses a sidecar bootstrap is built from. */
export interface SidecarBootstrapParams {
  namespace: string;
  serviceAccount: string;
  workloadName: string;
  workloadIp: string;
  labels: Record<string, string>;
  clusterId: string;
  /** Control plane `host:port` (TLS, ADS). */
  controlPlane: string;
  /** The control plane's SPIFFE ID, the only URI SAN accepted on `xds-grpc`. */
  controlPlaneSpiffeId: string;
  /** Absolute path of the SDS Unix socket. */
  sdsSocketPath: string;
  /** Envoy admin port on 127.0.0.1. */
  adminPort: number;
  /** Reported as node metadata SKIFF_VERSION (default: this package's version). */
  skiffVersion?: string;
  /** ADS flavour: `sotw` (default, `GRPC`) or `delta` (`DELTA_GRPC`). */
  xdsMode?: 'sotw' | 'delta';
}

/** Istio's sidecar node id: `sidecar~<ip>~<workloadName>.<namespace>~<namespace>.svc.cluster.local`. */
export function sidecarNodeId(p: Pick<SidecarBootstrapParams, 'workloadIp' | 'workloadName' | 'namespace'>): string {
  return `sidecar~${p.workloadIp}~${p.workloadName}.${p.namespace}~${p.namespace}.svc.cluster.local`;
}

/** An `SdsSecretConfig` fetching secret `name` from the agent over `sds-grpc` (waits for it indefinitely). */
export function sdsSecretConfig(name: string): EnvoyConfigObject {
  return {
    name,
    sdsConfig: {
      apiConfigSource: {
        apiType: 'GRPC',
        transportApiVersion: 'V3',
        grpcServices: [{ envoyGrpc: { clusterName: SDS_CLUSTER } }],
        setNodeOnFirstMessageOnly: true,
      },
      resourceApiVersion: 'V3',
      initialFetchTimeout: duration(0),
    },
  };
}

/** `typed_extension_protocol_options` selecting HTTP/2 upstream (gRPC clusters). */
function http2Options(http2ProtocolOptions: EnvoyConfigObject = {}): EnvoyConfigObject {
  return {
    [HTTP_PROTOCOL_OPTIONS]: { '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`, explicitHttpConfig: { http2ProtocolOptions } },
  };
}

/** The static `sds-grpc` cluster: HTTP/2 to the agent's SDS server on a Unix socket (pipe). */
export function sdsCluster(socketPath: string): EnvoyConfigObject {
  return {
    name: SDS_CLUSTER,
    type: 'STATIC',
    connectTimeout: duration(1000),
    loadAssignment: { clusterName: SDS_CLUSTER, endpoints: [{ lbEndpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }] },
    typedExtensionProtocolOptions: http2Options(),
  };
}

/**
 * The static `xds-grpc` cluster: HTTP/2 over mTLS to the control plane, presenting SDS `default`,
 * validating with SDS `ROOTCA` and the control plane's SPIFFE ID. SNI is the host when it is a DNS
 * name (RFC 6066 forbids IP literals in SNI).
 */
export function xdsCluster(controlPlane: string, controlPlaneSpiffeId: string): EnvoyConfigObject {
  const hp = splitHostPort(controlPlane);
  if (!hp) throw new Error(`control plane address ${JSON.stringify(controlPlane)} is not host:port`);
  const isIp = net.isIP(hp.host) !== 0;
  return {
    name: XDS_CLUSTER,
    type: isIp ? 'STATIC' : 'STRICT_DNS',
    connectTimeout: duration(1000),
    loadAssignment: {
      clusterName: XDS_CLUSTER,
      endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: hp.host, portValue: hp.port } } } }] }],
    },
    typedExtensionProtocolOptions: http2Options({ connectionKeepalive: { interval: duration(30_000), timeout: duration(10_000) } }),
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: {
        '@type': UPSTREAM_TLS,
        ...(isIp ? {} : { sni: hp.host }),
        commonTlsContext: {
          alpnProtocols: ['h2'],
          tlsCertificateSdsSecretConfigs: [sdsSecretConfig('default')],
          combinedValidationContext: {
            defaultValidationContext: { matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: { exact: controlPlaneSpiffeId } }] },
            validationContextSdsSecretConfig: sdsSecretConfig('ROOTCA'),
          },
        },
      },
    },
  };
}

/** Builds the sidecar bootstrap (object form, not yet validated; see {@link envoyBootstrapJson}). */
export function buildSidecarBootstrap(p: SidecarBootstrapParams): EnvoyConfigObject {
  const ads = { ads: {}, resourceApiVersion: 'V3' };
  return {
    node: {
      id: sidecarNodeId(p),
      cluster: `${p.serviceAccount}.${p.namespace}`,
      metadata: {
        NAMESPACE: p.namespace,
        SERVICE_ACCOUNT: p.serviceAccount,
        WORKLOAD_NAME: p.workloadName,
        LABELS: { ...p.labels },
        CLUSTER_ID: p.clusterId,
        INSTANCE_IPS: p.workloadIp,
        SKIFF_VERSION: p.skiffVersion ?? skiffVersion(),
      },
    },
    admin: { address: { socketAddress: { address: '127.0.0.1', portValue: p.adminPort } } },
    bootstrapExtensions: [
      { name: 'envoy.bootstrap.internal_listener', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener' } },
    ],
    staticResources: { clusters: [sdsCluster(p.sdsSocketPath), xdsCluster(p.controlPlane, p.controlPlaneSpiffeId)] },
    dynamicResources: {
      adsConfig: {
        apiType: p.xdsMode === 'delta' ? 'DELTA_GRPC' : 'GRPC',
        transportApiVersion: 'V3',
        grpcServices: [{ envoyGrpc: { clusterName: XDS_CLUSTER } }],
        setNodeOnFirstMessageOnly: true,
      },
      cdsConfig: ads,
      ldsConfig: ads,
    },
  };
}

/**
 * Validates a bootstrap object against `envoy.config.bootstrap.v3.Bootstrap` (unknown fields throw
 * `UnknownFieldError` naming the path) and returns the proto3 JSON text Envoy reads.
 */
export function envoyBootstrapJson(bootstrap: EnvoyConfigObject): string {
  // In the agent binary this root is loaded for this call only and dropped afterwards (memory).
  const root = bootstrapProtoRoot();
  encodeStrict(BOOTSTRAP_TYPE, bootstrap, root);
  return `${JSON.stringify(toProtoJson(root.lookupType(BOOTSTRAP_TYPE), bootstrap), null, 2)}\n`;
}

/** Validates and writes the bootstrap to `file` (atomically, mode 0600). */
export async function writeEnvoyBootstrap(file: string, bootstrap: EnvoyConfigObject): Promise<void> {
  await writeFileAtomic(file, envoyBootstrapJson(bootstrap));
}

/**
 * Converts protobufjs object form to proto3 JSON where they differ for hand-built configs:
 * `google.protobuf.Duration` `{seconds, nanos}` becomes `"<s>.<frac>s"`. Walks messages, repeated
 * and map fields, and `Any` payloads by their `@type`.
 */
export function toProtoJson(type: protobuf.Type, obj: unknown): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return obj;
  const record = obj as Record<string, unknown>;
  const name = type.fullName.slice(1);
  if (name === 'google.protobuf.Duration') return durationJson(record);
  if (name === 'google.protobuf.Any') {
    const url = record['@type'];
    if (typeof url !== 'string') return obj;
    const inner = type.root.lookupType(typeNameOf(url));
    const { '@type': _t, ...rest } = record;
    return { '@type': url, ...(toProtoJson(inner, rest) as object) };
  }
  if (name === 'google.protobuf.Struct' || name === 'google.protobuf.Value') return obj;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    const field = type.fields[key] ?? type.fields[key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())];
    field?.resolve();
    const ft = field?.resolvedType;
    if (!(ft instanceof protobuf.Type) || value === null || value === undefined) {
      out[key] = value;
    } else if (field?.map) {
      out[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toProtoJson(ft, v)]));
    } else if (field?.repeated && Array.isArray(value)) {
      out[key] = value.map((v) => toProtoJson(ft, v));
    } else {
      out[key] = toProtoJson(ft, value);
    }
  }
  return out;
}

function durationJson(d: Record<string, unknown>): string {
  const seconds = Number(d['seconds'] ?? 0);
  const nanos = Number(d['nanos'] ?? 0);
  if (nanos === 0) return `${seconds}s`;
  return `${seconds}.${String(Math.abs(nanos)).padStart(9, '0').replace(/0+$/, '')}s`;
}

let cachedVersion: string | undefined;

/** This package's version from its package.json (found from the source or the compiled tree), else `dev`. */
export function skiffVersion(): string {
  if (cachedVersion) return cachedVersion;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'skiff' && pkg.version) return (cachedVersion = pkg.version);
    }
    dir = path.dirname(dir);
  }
  return (cachedVersion = 'dev');
}
