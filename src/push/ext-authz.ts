/**
 * Resolves the MeshConfig extension providers that CUSTOM AuthorizationPolicies name to what the
 * ext_authz filter calls, as Istio does (`envoyExtAuthzHttp` / `envoyExtAuthzGrpc`,
 * https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/#MeshConfig-ExtensionProvider):
 * the provider's `service` is a mesh ServiceEntry host (`host` or `namespace/host`, reached through
 * its outbound cluster `outbound|<port>||<host>`) or, Skiff's addition for VMs, an IP literal
 * (reached in plaintext through an external cluster of the same name form). A provider that cannot
 * be used is returned with `error`: the translator then makes its policies deny what they match.
 */
import { isIP } from 'node:net';
import type { ServicePort } from '../resources/types.js';
import type { ExtAuthzProviderIR } from '../ir/types.js';
import type { MeshService } from './services.js';

/** `envoyExtAuthzHttp` of a MeshConfig extension provider (Istio's field names). */
export interface ExtAuthzHttpInput {
  service: string;
  port: number;
  pathPrefix?: string;
  /** A duration (`"10s"`, `"500ms"`, `"1m30s"`); Istio's default is 600 s. */
  timeout?: string;
  includeRequestHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  headersToDownstreamOnAllow?: string[];
  failOpen?: boolean;
  /** An HTTP status code as a string, e.g. `"503"`. */
  statusOnError?: string;
  /** Deprecated in Istio: used when `includeRequestHeadersInCheck` is unset. */
  includeHeadersInCheck?: string[];
  includeRequestBodyInCheck?: RequestBodyInput;
}

/** `includeRequestBodyInCheck`: send (part of) the request body to the authorizer. */
export interface RequestBodyInput {
  maxRequestBytes?: number;
  allowPartialMessage?: boolean;
  packAsBytes?: boolean;
}

/** `envoyExtAuthzGrpc` of a MeshConfig extension provider. */
export interface ExtAuthzGrpcInput {
  service: string;
  port: number;
  timeout?: string;
  failOpen?: boolean;
  statusOnError?: string;
  includeRequestBodyInCheck?: RequestBodyInput;
}

/** The parts of the control plane's MeshConfig the push context reads. */
export interface MeshConfigInput {
  /** Policies here apply mesh-wide; default `skiff-system`. */
  rootNamespace?: string;
  /** Trust domains AuthorizationPolicy principals treat as the local one. */
  trustDomainAliases?: readonly string[];
  extensionProviders?: ReadonlyArray<{ name: string; envoyExtAuthzHttp?: ExtAuthzHttpInput; envoyExtAuthzGrpc?: ExtAuthzGrpcInput }>;
}

/** Istio's default ext_authz check timeout. */
export const DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 600_000;

/** The HTTP status codes Envoy's `envoy.type.v3.StatusCode` defines (what `statusOnError` may be). */
const ENVOY_STATUS_CODES = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411,
  412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/** What the resolver needs from the push context. */
export interface ExtAuthzContext {
  /** The services the proxy can see. */
  services: readonly MeshService[];
  /** Adds (once) the outbound cluster of a service port and returns its name. */
  meshCluster(svc: MeshService, port: ServicePort): string;
  /** Adds (once) a plaintext external cluster to `ip:port` and returns its name. */
  externalCluster(ip: string, port: number, protocol: 'HTTP' | 'HTTP2'): string;
}

/**
 * Parses a duration in Go/protobuf JSON form: one or more `<number><unit>` with units `ns`, `us`,
 * `µs`, `ms`, `s`, `m`, `h` (`"1.5s"`, `"1m30s"`, `"250ms"`). Returns milliseconds, or undefined.
 */
export function parseDurationMs(text: string): number | undefined {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * (unit[m[2] ?? ''] ?? Number.NaN);
    pos = re.lastIndex;
  }
  return pos === text.length && pos > 0 && Number.isFinite(total) ? total : undefined;
}

/**
 * Istio's provider name rule: a DNS-1123 label (lower-case letters, digits, `-`; at most 63; not
 * starting or ending with `-`), since it becomes part of metadata keys and policy names.
 */
export function providerNameProblem(name: string): string | undefined {
  if (name === '') return 'the name is empty';
  if (name.length > 63) return `the name is longer than 63 characters`;
  if (!/^[a-z0-9-]+$/.test(name)) return 'only lower-case letters, digits and "-" are allowed';
  if (name.startsWith('-') || name.endsWith('-')) return 'the name cannot start or end with "-"';
  return undefined;
}

/**
 * Resolves each provider name in `names` (sorted) against `meshConfig`. Never throws: a provider
 * that cannot be used carries `error`.
 */
export function resolveExtAuthzProviders(names: readonly string[], meshConfig: MeshConfigInput | undefined, ctx: ExtAuthzContext): ExtAuthzProviderIR[] {
  const all = meshConfig?.extensionProviders ?? [];
  return [...new Set(names)].sort().map((name) => {
    const base: ExtAuthzProviderIR = {
      name,
      kind: 'http',
      cluster: '',
      host: '',
      port: 0,
      timeoutMs: DEFAULT_EXT_AUTHZ_TIMEOUT_MS,
      failOpen: false,
      includeRequestHeadersInCheck: [],
      includeAdditionalHeadersInCheck: [],
      headersToUpstreamOnAllow: [],
      headersToDownstreamOnDeny: [],
      headersToDownstreamOnAllow: [],
    };
    const fail = (error: string): ExtAuthzProviderIR => ({ ...base, error });
    const matching = all.filter((p) => p.name === name);
    if (matching.length === 0) {
      return fail(`the mesh config has no extension provider named ${JSON.stringify(name)} (known: ${all.map((p) => p.name).join(', ') || 'none'})`);
    }
    if (matching.length > 1) return fail(`the mesh config defines extension provider ${JSON.stringify(name)} ${matching.length} times`);
    const nameProblem = providerNameProblem(name);
    if (nameProblem) return fail(`invalid provider name: ${nameProblem}`);
    const def = matching[0]!;
    const http = def.envoyExtAuthzHttp;
    const grpc = def.envoyExtAuthzGrpc;
    if (!http && !grpc) return fail('it is neither an envoyExtAuthzHttp nor an envoyExtAuthzGrpc provider');
    if (http && grpc) return fail('it sets both envoyExtAuthzHttp and envoyExtAuthzGrpc');
    const spec: ExtAuthzHttpInput | ExtAuthzGrpcInput = (http ?? grpc)!;
    const problems: string[] = [];
    const out: ExtAuthzProviderIR = { ...base, kind: http ? 'http' : 'grpc', host: spec.service, port: spec.port, failOpen: spec.failOpen ?? false };
    if (spec.timeout !== undefined) {
      const ms = parseDurationMs(spec.timeout);
      if (ms === undefined || ms <= 0) problems.push(`timeout ${JSON.stringify(spec.timeout)} is not a positive duration`);
      else out.timeoutMs = ms;
    }
    if (spec.statusOnError !== undefined && spec.statusOnError !== '') {
      const code = /^[0-9]+$/.test(spec.statusOnError) ? Number(spec.statusOnError) : Number.NaN;
      if (!ENVOY_STATUS_CODES.has(code)) problems.push(`statusOnError ${JSON.stringify(spec.statusOnError)} is not an HTTP status Envoy supports`);
      else out.statusOnError = code;
    }
    const body = spec.includeRequestBodyInCheck;
    if (body !== undefined) {
      if (!(Number.isInteger(body.maxRequestBytes) && (body.maxRequestBytes ?? 0) > 0)) {
        problems.push('includeRequestBodyInCheck.maxRequestBytes must be a positive number of bytes');
      } else {
        out.includeRequestBodyInCheck = { maxRequestBytes: body.maxRequestBytes ?? 0, allowPartialMessage: body.allowPartialMessage ?? false, packAsBytes: body.packAsBytes ?? false };
      }
    }
    if (http) {
      if (http.pathPrefix !== undefined && http.pathPrefix !== '') {
        if (!http.pathPrefix.startsWith('/')) problems.push(`pathPrefix must begin with "/", found ${JSON.stringify(http.pathPrefix)}`);
        else out.pathPrefix = http.pathPrefix;
      }
      const lists = {
        includeRequestHeadersInCheck: http.includeRequestHeadersInCheck ?? http.includeHeadersInCheck,
        headersToUpstreamOnAllow: http.headersToUpstreamOnAllow,
        headersToDownstreamOnDeny: http.headersToDownstreamOnDeny,
        headersToDownstreamOnAllow: http.headersToDownstreamOnAllow,
      };
      for (const [field, list] of Object.entries(lists) as Array<[keyof typeof lists, string[] | undefined]>) {
        if ((list ?? []).includes('*')) problems.push(`${field}: a single wildcard "*" is not supported, use a prefix or suffix match`);
        out[field] = [...(list ?? [])];
      }
      out.includeAdditionalHeadersInCheck = Object.entries(http.includeAdditionalHeadersInCheck ?? {})
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([n, value]) => ({ name: n, value }));
    }
    if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) problems.push(`port must be in the range [1, 65535], found: ${spec.port}`);
    if (problems.length > 0) return { ...out, error: problems.join('; ') };
    const resolved = resolveService(spec.service, spec.port, out.kind, ctx);
    if ('error' in resolved) return { ...out, error: resolved.error };
    return { ...out, cluster: resolved.cluster, host: resolved.host };
  });
}

function resolveService(service: string, port: number, kind: 'http' | 'grpc', ctx: ExtAuthzContext): { cluster: string; host: string } | { error: string } {
  if (service === '') return { error: 'service must not be empty' };
  if (isIP(service) !== 0) return { cluster: ctx.externalCluster(service, port, kind === 'grpc' ? 'HTTP2' : 'HTTP'), host: service };
  const slash = service.indexOf('/');
  const namespace = slash === -1 ? undefined : service.slice(0, slash);
  const host = (slash === -1 ? service : service.slice(slash + 1)).toLowerCase();
  const found = ctx.services.filter((s) => s.host.toLowerCase() === host && (namespace === undefined || s.namespace === namespace));
  if (found.length === 0) return { error: `could not find service ${service} among the mesh services this workload can see` };
  if (found.length > 1) return { error: `found ${service} in several namespaces (${found.map((s) => s.namespace).join(', ')}): write <namespace>/<host>` };
  const svc = found[0]!;
  const sp = svc.ports.find((p) => p.number === port);
  if (!sp) return { error: `service ${svc.host} has no port ${port}` };
  return { cluster: ctx.meshCluster(svc, sp), host: svc.host };
}
