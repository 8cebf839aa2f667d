/**
 * zod schemas for the traffic management kinds: DestinationRule and VirtualService
 * (networking.istio.io v1/v1beta1/v1alpha3, with the rules of Istio's `ValidateDestinationRule`
 * and `ValidateVirtualService` in `pkg/config/validation`) and HTTPRoute / GRPCRoute
 * (gateway.networking.k8s.io v1/v1beta1, with the constraints of the Gateway API CRDs and the
 * GAMMA mesh rules: a mesh route attaches to a Service, ServiceEntry or Hostname).
 *
 * Every object is strict: an unknown field is an error at its path. Beyond the structure:
 * durations must parse (Istio: at least 1 ms, ms precision; Gateway API: its own
 * `^([0-9]{1,5}(h|m|s|ms)){1,4}$` form, where 0 means "no timeout"), every regex must compile
 * under RE2 (Envoy's `safe_regex`: no lookarounds, no backreferences), weights of a VirtualService
 * route with several destinations must all be set and sum to 100, and `retryOn` may only hold
 * values Envoy knows (`x-envoy-retry-on`, `x-envoy-retry-grpc-on`) or HTTP status codes.
 *
 * References to other resources (hosts, subsets, ports) are checked over the whole set in
 * `traffic-validate.ts`; fields parsed but not implemented are warnings there too.
 */
import { STATUS_CODES } from 'node:http';
import { RE2JS } from 're2js';
import { z } from 'zod';
import { describeValue, type PathSegment } from './issues.js';
import { isDns1123Label, wildcardDomainProblem } from './names.js';
import { checkedString, fail, labelSelectorSchema, labelsSchema, metadataSchema, portNumberSchema, selectorLabelsSchema, type RefineContext } from './schema-common.js';
import { durationSchema } from './security-schemas.js';
import { backendRefKind, parentRefKind } from './traffic-hosts.js';
import type {
  DestinationRule,
  GRPCRoute,
  HTTPRoute,
  StringMatch,
  VirtualService,
} from './traffic-types.js';

/** apiVersions accepted for DestinationRule and VirtualService (DESIGN.md §3). */
export const ISTIO_TRAFFIC_API_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;
/** apiVersions accepted for HTTPRoute and GRPCRoute (DESIGN.md §3). */
export const GATEWAY_API_VERSIONS = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'] as const;

/**
 * Runs a whole-object check only when the object parsed cleanly, so a typo (an unknown field)
 * is reported alone rather than with the semantic errors it causes.
 */
const WHEN_STRUCTURALLY_VALID = { when: (payload: { issues: readonly unknown[] }): boolean => payload.issues.length === 0 };

// ---------------------------------------------------------------------------------------------
// Value checks

/** Problem with an RE2 regular expression (Envoy's `safe_regex` dialect), or undefined when it compiles. */
export function re2Problem(regex: string): string | undefined {
  try {
    RE2JS.compile(regex);
    return undefined;
  } catch (err) {
    return `invalid RE2 regular expression ${describeValue(regex)}: ${(err as Error).message}`;
  }
}

/** A string that must compile as an RE2 regex. */
const re2Schema = checkedString(re2Problem);

/** Gateway API `Duration` (GEP-2257): `^([0-9]{1,5}(h|m|s|ms)){1,4}$`; `0s` allowed. */
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const gatewayDurationSchema = checkedString((v) =>
  GATEWAY_DURATION.test(v) ? undefined : `invalid duration ${describeValue(v)} (Gateway API form: e.g. "10s", "500ms", "1h30m")`,
);

/** Milliseconds of a Gateway API duration (valid per {@link GATEWAY_DURATION}). */
export function gatewayDurationMs(v: string): number {
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of v.matchAll(/([0-9]+)(ms|h|m|s)/g)) total += Number(m[1]) * (unit[m[2] ?? ''] ?? 0);
  return total;
}

/** `x-envoy-retry-on` values (Envoy router filter, `config/route/v3` RetryPolicy.retry_on). */
export const ENVOY_HTTP_RETRY_ON: readonly string[] = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
];
/** `x-envoy-retry-grpc-on` values. */
export const ENVOY_GRPC_RETRY_ON: readonly string[] = ['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'];

/**
 * Problem with an Istio `retryOn` list: comma-separated Envoy retry conditions, or HTTP status
 * codes (Istio turns those into `retriable-status-codes`), which must be registered codes.
 */
export function retryOnProblem(retryOn: string): string | undefined {
  for (const raw of retryOn.split(',')) {
    const v = raw.trim();
    if (v === '') return `empty retryOn entry in ${describeValue(retryOn)}`;
    if (/^[0-9]+$/.test(v)) {
      if (STATUS_CODES[Number(v)] === undefined) return `${v} is not a valid HTTP status code`;
      continue;
    }
    if (!ENVOY_HTTP_RETRY_ON.includes(v) && !ENVOY_GRPC_RETRY_ON.includes(v)) {
      return `unknown retryOn value ${describeValue(v)} (expected HTTP status codes or ${[...ENVOY_HTTP_RETRY_ON, ...ENVOY_GRPC_RETRY_ON].join(', ')})`;
    }
  }
  return undefined;
}

/** Istio host: a FQDN, short name or `*`-prefixed wildcard (no IPs checked here). */
const hostSchema = checkedString((v) => {
  if (v === '') return 'host must not be empty';
  if (v === '*') return undefined;
  return wildcardDomainProblem(v);
});

/** `exportTo` list (Istio `validateExportTo`). */
function exportToSchema() {
  return z.array(z.string()).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((e, i) => {
      if (e !== '.' && e !== '*' && e !== '~' && !isDns1123Label(e)) fail(ctx, [i], `invalid exportTo value ${describeValue(e)}: expected ".", "*", "~" or a namespace`);
      else if (seen.has(e)) fail(ctx, [i], `duplicate exportTo entry ${describeValue(e)}`);
      seen.add(e);
    });
    if (list.length > 1 && (seen.has('*') || seen.has('~'))) fail(ctx, [], 'exportTo "*" or "~" cannot be combined with other entries');
  });
}

const percentValue = z.number().min(0).max(100);
const percentSchema = z.strictObject({ value: percentValue.optional() });
const nonNegInt = z.number().int().min(0);
const int32 = z.number().int().min(0).max(2147483647);

// ---------------------------------------------------------------------------------------------
// DestinationRule

const httpCookieSchema = z.strictObject({
  name: checkedString((v) => (v === '' ? 'cookie name must not be empty' : undefined)),
  path: z.string().optional(),
  ttl: durationSchema.optional(),
  attributes: z.array(z.strictObject({ name: z.string(), value: z.string().optional() })).optional(),
});

const consistentHashSchema = z
  .strictObject({
    httpHeaderName: z.string().optional(),
    httpCookie: httpCookieSchema.optional(),
    useSourceIp: z.boolean().optional(),
    httpQueryParameterName: z.string().optional(),
    ringHash: z.strictObject({ minimumRingSize: nonNegInt.optional() }).optional(),
    maglev: z.strictObject({ tableSize: nonNegInt.optional() }).optional(),
    minimumRingSize: nonNegInt.optional(),
  })
  .superRefine((ch, ctx) => {
    const keys = (['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const).filter((k) => ch[k] !== undefined && ch[k] !== false);
    if (keys.length !== 1) fail(ctx, [], `exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName must be set, got ${keys.length === 0 ? 'none' : keys.join(', ')}`);
    const algos = (['ringHash', 'maglev', 'minimumRingSize'] as const).filter((k) => ch[k] !== undefined);
    if (algos.length > 1) fail(ctx, [], `only one of ringHash, maglev, minimumRingSize may be set, got ${algos.join(', ')}`);
    if (ch.maglev?.tableSize !== undefined && !isPrime(ch.maglev.tableSize)) fail(ctx, ['maglev', 'tableSize'], `maglev tableSize must be a prime number, got ${ch.maglev.tableSize}`);
  }, WHEN_STRUCTURALLY_VALID);

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

const localityLbSchema = z
  .strictObject({
    distribute: z.array(z.strictObject({ from: z.string().optional(), to: z.record(z.string(), z.number().int().min(0).max(100)).optional() })).optional(),
    failover: z.array(z.strictObject({ from: z.string().optional(), to: z.string().optional() })).optional(),
    failoverPriority: z.array(z.string()).optional(),
    enabled: z.boolean().optional(),
  })
  .superRefine((l, ctx) => {
    if ((l.distribute?.length ?? 0) > 0 && (l.failover?.length ?? 0) > 0) fail(ctx, [], 'distribute and failover cannot both be set');
    (l.distribute ?? []).forEach((d, i) => {
      const sum = Object.values(d.to ?? {}).reduce((a, b) => a + b, 0);
      if (sum !== 100) fail(ctx, ['distribute', i, 'to'], `weights must sum to 100, got ${sum}`);
    });
    (l.failover ?? []).forEach((f, i) => {
      if (f.from !== undefined && f.from === f.to) fail(ctx, ['failover', i, 'to'], 'failover from and to must differ');
    });
  }, WHEN_STRUCTURALLY_VALID);

const loadBalancerSchema = z
  .strictObject({
    simple: z.enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']).optional(),
    consistentHash: consistentHashSchema.optional(),
    localityLbSetting: localityLbSchema.optional(),
    warmupDurationSecs: durationSchema.optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.simple !== undefined && lb.consistentHash !== undefined) fail(ctx, [], 'simple and consistentHash cannot both be set');
  }, WHEN_STRUCTURALLY_VALID);

const connectionPoolSchema = z.strictObject({
  tcp: z
    .strictObject({
      maxConnections: int32.optional(),
      connectTimeout: durationSchema.optional(),
      tcpKeepalive: z.strictObject({ probes: nonNegInt.optional(), time: durationSchema.optional(), interval: durationSchema.optional() }).optional(),
      maxConnectionDuration: durationSchema.optional(),
      idleTimeout: durationSchema.optional(),
    })
    .optional(),
  http: z
    .strictObject({
      http1MaxPendingRequests: int32.optional(),
      http2MaxRequests: int32.optional(),
      maxRequestsPerConnection: int32.optional(),
      maxRetries: int32.optional(),
      idleTimeout: durationSchema.optional(),
      h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
      useClientProtocol: z.boolean().optional(),
      maxConcurrentStreams: int32.optional(),
    })
    .optional(),
});

const outlierDetectionSchema = z.strictObject({
  splitExternalLocalOriginErrors: z.boolean().optional(),
  consecutiveLocalOriginFailures: nonNegInt.optional(),
  consecutiveGatewayErrors: nonNegInt.optional(),
  consecutive5xxErrors: nonNegInt.optional(),
  consecutiveErrors: nonNegInt.optional(),
  interval: durationSchema.optional(),
  baseEjectionTime: durationSchema.optional(),
  maxEjectionPercent: z.number().int().min(0).max(100).optional(),
  minHealthPercent: z.number().int().min(0).max(100).optional(),
});

const clientTlsSchema = z
  .strictObject({
    mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
    clientCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
    credentialName: z.string().optional(),
    subjectAltNames: z.array(z.string()).optional(),
    sni: z.string().optional(),
    insecureSkipVerify: z.boolean().optional(),
    caCrl: z.string().optional(),
  })
  .superRefine((tls, ctx) => {
    // Istio `validateTLS`.
    if ((tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'DISABLE') && tls.credentialName) fail(ctx, ['credentialName'], `credentialName cannot be set with mode ${tls.mode}`);
    if (tls.mode === 'MUTUAL' && !tls.credentialName) {
      if (!tls.clientCertificate) fail(ctx, ['clientCertificate'], 'clientCertificate is required with mode MUTUAL (or set credentialName)');
      if (!tls.privateKey) fail(ctx, ['privateKey'], 'privateKey is required with mode MUTUAL (or set credentialName)');
    }
  }, WHEN_STRUCTURALLY_VALID);

const portSelectorSchema = z.strictObject({ number: portNumberSchema });

const portTrafficPolicySchema = z.strictObject({
  port: portSelectorSchema.optional(),
  loadBalancer: loadBalancerSchema.optional(),
  connectionPool: connectionPoolSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  tls: clientTlsSchema.optional(),
});

const trafficPolicySchema = z
  .strictObject({
    loadBalancer: loadBalancerSchema.optional(),
    connectionPool: connectionPoolSchema.optional(),
    outlierDetection: outlierDetectionSchema.optional(),
    tls: clientTlsSchema.optional(),
    portLevelSettings: z.array(portTrafficPolicySchema).optional(),
    tunnel: z.strictObject({ protocol: z.string().optional(), targetHost: z.string(), targetPort: portNumberSchema }).optional(),
    proxyProtocol: z.strictObject({ version: z.enum(['V1', 'V2']).optional() }).optional(),
  })
  .superRefine((tp, ctx) => {
    const seen = new Set<number>();
    (tp.portLevelSettings ?? []).forEach((p, i) => {
      if (p.port === undefined) fail(ctx, ['portLevelSettings', i, 'port'], 'port is required');
      else if (seen.has(p.port.number)) fail(ctx, ['portLevelSettings', i, 'port', 'number'], `duplicate port ${p.port.number} in portLevelSettings`);
      else seen.add(p.port.number);
    });
  }, WHEN_STRUCTURALLY_VALID);

const subsetSchema = z.strictObject({
  name: checkedString((v) => (isDns1123Label(v) ? undefined : `invalid subset name ${describeValue(v)}: must be a DNS-1123 label`)),
  labels: labelsSchema.optional(),
  trafficPolicy: trafficPolicySchema.optional(),
});

/** networking.istio.io DestinationRule spec (Istio `ValidateDestinationRule`). */
export const destinationRuleSpecSchema = z
  .strictObject({
    host: hostSchema,
    trafficPolicy: trafficPolicySchema.optional(),
    subsets: z.array(subsetSchema).optional(),
    exportTo: exportToSchema().optional(),
    workloadSelector: labelSelectorSchema.optional(),
  })
  .superRefine((dr, ctx) => {
    const names = new Set<string>();
    (dr.subsets ?? []).forEach((s, i) => {
      if (names.has(s.name)) fail(ctx, ['subsets', i, 'name'], `duplicate subset name ${describeValue(s.name)}`);
      names.add(s.name);
    });
  }, WHEN_STRUCTURALLY_VALID);

// ---------------------------------------------------------------------------------------------
// VirtualService

/** A StringMatch; `required` (uri, scheme, method, authority) means an empty `{}` is an error. */
function stringMatchSchema(required: boolean) {
  return z
    .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional() })
    .superRefine((m: StringMatch, ctx) => {
      const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
      if (set.length > 1) fail(ctx, [], `only one of exact, prefix, regex may be set, got ${set.join(', ')}`);
      if (set.length === 0 && required) fail(ctx, [], 'one of exact, prefix, regex is required');
      if (m.regex !== undefined) {
        const p = m.regex === '' ? 'regex must not be empty' : re2Problem(m.regex);
        if (p !== undefined) fail(ctx, ['regex'], p);
      }
    });
}

const headerNameSchema = checkedString((v) => (/^[-_A-Za-z0-9.:]+$/.test(v) && v !== '' ? undefined : `invalid header name ${describeValue(v)}`));
const headerMatchesSchema = z.record(headerNameSchema, stringMatchSchema(false));

const httpMatchSchema = z.strictObject({
  name: z.string().optional(),
  uri: stringMatchSchema(true).optional(),
  scheme: stringMatchSchema(true).optional(),
  method: stringMatchSchema(true).optional(),
  authority: stringMatchSchema(true).optional(),
  headers: headerMatchesSchema.optional(),
  port: portNumberSchema.optional(),
  sourceLabels: selectorLabelsSchema.optional(),
  gateways: z.array(z.string()).optional(),
  queryParams: z.record(z.string(), stringMatchSchema(false)).optional(),
  ignoreUriCase: z.boolean().optional(),
  withoutHeaders: headerMatchesSchema.optional(),
  sourceNamespace: z.string().optional(),
  statPrefix: z.string().optional(),
});

const headerOperationsSchema = z.strictObject({
  set: z.record(headerNameSchema, z.string()).optional(),
  add: z.record(headerNameSchema, z.string()).optional(),
  remove: z.array(headerNameSchema).optional(),
});
const headersSchema = z.strictObject({ request: headerOperationsSchema.optional(), response: headerOperationsSchema.optional() });

const destinationSchema = z.strictObject({
  host: hostSchema,
  subset: z.string().optional(),
  port: portSelectorSchema.optional(),
});

const httpRouteDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: z.number().int().min(0).max(100).optional(),
  headers: headersSchema.optional(),
});

const routeDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: z.number().int().min(0).max(100).optional(),
});

/**
 * Istio's weight rule (its webhook's `validateHTTPRouteDestinations`): each weight is 0-100, an
 * unset weight counts as 0, and with more than one destination the weights must sum to 100. A
 * single destination gets all traffic whatever its weight.
 */
function checkWeights(route: readonly { weight?: number }[], ctx: RefineContext, base: PathSegment[]): void {
  if (route.length < 2) return;
  const sum = route.reduce((n, d) => n + (d.weight ?? 0), 0);
  if (sum !== 100) {
    const unset = route.flatMap((d, i) => (d.weight === undefined ? [i] : []));
    const hint = unset.length > 0 ? ` (unset weights count as 0: route[${unset.join('], route[')}])` : '';
    fail(ctx, base, `destination weights must sum to 100, got ${sum}${hint}`);
  }
}

const redirectSchema = z
  .strictObject({
    uri: z.string().optional(),
    authority: z.string().optional(),
    port: portNumberSchema.optional(),
    derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).optional(),
    scheme: z.string().optional(),
    redirectCode: z.number().int().optional(),
  })
  .superRefine((r, ctx) => {
    if (r.port !== undefined && r.derivePort !== undefined) fail(ctx, [], 'port and derivePort cannot both be set');
    if (r.redirectCode !== undefined && ![301, 302, 303, 307, 308].includes(r.redirectCode)) fail(ctx, ['redirectCode'], `redirectCode must be 301, 302, 303, 307 or 308, got ${r.redirectCode}`);
    if (r.uri === undefined && r.authority === undefined && r.port === undefined && r.derivePort === undefined && r.scheme === undefined) {
      fail(ctx, [], 'redirect must set at least one of uri, authority, port, derivePort, scheme');
    }
  }, WHEN_STRUCTURALLY_VALID);

const directResponseSchema = z.strictObject({
  status: z.number().int().min(200).max(599),
  body: z
    .strictObject({ string: z.string().optional(), bytes: z.string().optional() })
    .superRefine((b, ctx) => {
      if (b.string !== undefined && b.bytes !== undefined) fail(ctx, [], 'only one of string, bytes may be set');
    })
    .optional(),
});

const rewriteSchema = z
  .strictObject({
    uri: z.string().optional(),
    authority: z.string().optional(),
    uriRegexRewrite: z.strictObject({ match: re2Schema.optional(), rewrite: z.string().optional() }).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.uri !== undefined && r.uriRegexRewrite !== undefined) fail(ctx, [], 'uri and uriRegexRewrite cannot both be set');
    if (r.uriRegexRewrite !== undefined) {
      if (!r.uriRegexRewrite.match) fail(ctx, ['uriRegexRewrite', 'match'], 'match is required');
      if (r.uriRegexRewrite.rewrite === undefined) fail(ctx, ['uriRegexRewrite', 'rewrite'], 'rewrite is required');
    }
  }, WHEN_STRUCTURALLY_VALID);

const retrySchema = z.strictObject({
  attempts: int32.optional(),
  perTryTimeout: durationSchema.optional(),
  retryOn: checkedString(retryOnProblem).optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().optional(),
  backoff: durationSchema.optional(),
});

const faultSchema = z
  .strictObject({
    delay: z
      .strictObject({
        fixedDelay: durationSchema.optional(),
        exponentialDelay: durationSchema.optional(),
        percentage: percentSchema.optional(),
        percent: z.number().int().min(0).max(100).optional(),
      })
      .superRefine((d, ctx) => {
        if ((d.fixedDelay === undefined) === (d.exponentialDelay === undefined)) fail(ctx, [], 'exactly one of fixedDelay, exponentialDelay is required');
      })
      .optional(),
    abort: z
      .strictObject({
        httpStatus: z.number().int().min(200).max(599).optional(),
        grpcStatus: z.string().optional(),
        http2Error: z.string().optional(),
        percentage: percentSchema.optional(),
      })
      .superRefine((a, ctx) => {
        const set = (['httpStatus', 'grpcStatus', 'http2Error'] as const).filter((k) => a[k] !== undefined);
        if (set.length !== 1) fail(ctx, [], 'exactly one of httpStatus, grpcStatus, http2Error is required');
      })
      .optional(),
  })
  .superRefine((f, ctx) => {
    if (f.delay === undefined && f.abort === undefined) fail(ctx, [], 'fault must set delay or abort');
  }, WHEN_STRUCTURALLY_VALID);

const corsPolicySchema = z.strictObject({
  allowOrigins: z.array(stringMatchSchema(true)).optional(),
  allowOrigin: z.array(z.string()).optional(),
  allowMethods: z.array(z.string()).optional(),
  allowHeaders: z.array(z.string()).optional(),
  exposeHeaders: z.array(z.string()).optional(),
  maxAge: durationSchema.optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).optional(),
});

const vsHttpRouteSchema = z
  .strictObject({
    name: z.string().optional(),
    match: z.array(httpMatchSchema).optional(),
    route: z.array(httpRouteDestinationSchema).optional(),
    redirect: redirectSchema.optional(),
    directResponse: directResponseSchema.optional(),
    delegate: z.strictObject({ name: z.string().optional(), namespace: z.string().optional() }).optional(),
    rewrite: rewriteSchema.optional(),
    timeout: durationSchema.optional(),
    retries: retrySchema.optional(),
    fault: faultSchema.optional(),
    mirror: destinationSchema.optional(),
    mirrorPercentage: percentSchema.optional(),
    mirrors: z.array(z.strictObject({ destination: destinationSchema, percentage: percentSchema.optional() })).optional(),
    corsPolicy: corsPolicySchema.optional(),
    headers: headersSchema.optional(),
  })
  .superRefine((h, ctx) => {
    // Istio `validateHTTPRoute`.
    const hasRoute = (h.route?.length ?? 0) > 0;
    const actions = [hasRoute && 'route', h.redirect && 'redirect', h.directResponse && 'directResponse', h.delegate && 'delegate'].filter(Boolean);
    if (actions.length === 0) fail(ctx, [], 'one of route, redirect, directResponse or delegate is required');
    else if (actions.length > 1) fail(ctx, [], `only one of route, redirect, directResponse, delegate may be set, got ${actions.join(', ')}`);
    if (h.redirect && h.rewrite) fail(ctx, ['rewrite'], 'rewrite cannot be set with redirect');
    if (h.mirror && (h.mirrors?.length ?? 0) > 0) fail(ctx, ['mirrors'], 'mirror and mirrors cannot both be set');
    if (h.directResponse && (h.retries || h.timeout || h.rewrite || h.mirror || h.mirrors)) {
      fail(ctx, ['directResponse'], 'directResponse cannot be combined with retries, timeout, rewrite or mirrors');
    }
    checkWeights(h.route ?? [], ctx, ['route']);
  }, WHEN_STRUCTURALLY_VALID);

const l4MatchSchema = z.strictObject({
  destinationSubnets: z.array(z.string()).optional(),
  port: portNumberSchema.optional(),
  sourceLabels: selectorLabelsSchema.optional(),
  gateways: z.array(z.string()).optional(),
  sourceNamespace: z.string().optional(),
});

const vsTcpRouteSchema = z
  .strictObject({ match: z.array(l4MatchSchema).optional(), route: z.array(routeDestinationSchema).optional() })
  .superRefine((t, ctx) => {
    if ((t.route?.length ?? 0) === 0) fail(ctx, ['route'], 'a TCP route needs at least one destination');
    checkWeights(t.route ?? [], ctx, ['route']);
  }, WHEN_STRUCTURALLY_VALID);

const vsTlsRouteSchema = z
  .strictObject({
    match: z.array(
      z.strictObject({
        sniHosts: z.array(z.string()).min(1),
        destinationSubnets: z.array(z.string()).optional(),
        port: portNumberSchema.optional(),
        sourceLabels: selectorLabelsSchema.optional(),
        gateways: z.array(z.string()).optional(),
        sourceNamespace: z.string().optional(),
      }),
    ).min(1),
    route: z.array(routeDestinationSchema).optional(),
  })
  .superRefine((t, ctx) => checkWeights(t.route ?? [], ctx, ['route']), WHEN_STRUCTURALLY_VALID);

/** networking.istio.io VirtualService spec (Istio `ValidateVirtualService`). */
export const virtualServiceSpecSchema = z
  .strictObject({
    hosts: z.array(hostSchema).optional(),
    gateways: z.array(z.string()).optional(),
    http: z.array(vsHttpRouteSchema).optional(),
    tls: z.array(vsTlsRouteSchema).optional(),
    tcp: z.array(vsTcpRouteSchema).optional(),
    exportTo: exportToSchema().optional(),
  })
  .superRefine((vs, ctx) => {
    if ((vs.hosts?.length ?? 0) === 0) fail(ctx, ['hosts'], 'at least one host is required');
    const seen = new Set<string>();
    (vs.hosts ?? []).forEach((h, i) => {
      if (seen.has(h)) fail(ctx, ['hosts', i], `duplicate host ${describeValue(h)}`);
      seen.add(h);
    });
    if ((vs.http?.length ?? 0) + (vs.tcp?.length ?? 0) + (vs.tls?.length ?? 0) === 0) fail(ctx, [], 'at least one of http, tcp or tls routes is required');
  }, WHEN_STRUCTURALLY_VALID);

// ---------------------------------------------------------------------------------------------
// Gateway API (HTTPRoute, GRPCRoute)

const k8sNameSchema = checkedString((v) => (v === '' || v.length > 253 ? `invalid name ${describeValue(v)}: 1-253 characters` : undefined));
const gatewayGroupSchema = checkedString((v) => (v === '' || /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(v) ? undefined : `invalid group ${describeValue(v)}`));
const gatewayKindSchema = checkedString((v) => (/^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/.test(v) && v.length <= 63 ? undefined : `invalid kind ${describeValue(v)}`));
const gatewayNamespaceSchema = checkedString((v) => (isDns1123Label(v) ? undefined : `invalid namespace ${describeValue(v)}: must be a DNS-1123 label`));

/**
 * Gateway API `SectionName`: a DNS-1123 subdomain of 1-253 characters (for a Service parent, a
 * port name). Letter case is not enforced, as for ServiceEntry port names (`portNameSchema`), so a
 * port named `HTTP` can be selected; the match itself is exact.
 */
const sectionNameSchema = checkedString((v) =>
  v.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(v) ? undefined : `invalid sectionName ${describeValue(v)}: a DNS-1123 subdomain (for a Service parent, the name of a service port)`,
);

/**
 * Gateway API `ParentReference`; which kinds a mesh route may use is checked on the route. For a
 * mesh parent, `port` and `sectionName` select one service port by number / name.
 */
const parentRefSchema = z.strictObject({
  group: gatewayGroupSchema.optional(),
  kind: gatewayKindSchema.optional(),
  namespace: gatewayNamespaceSchema.optional(),
  name: k8sNameSchema,
  sectionName: sectionNameSchema.optional(),
  port: portNumberSchema.optional(),
});

/** Gateway API `BackendObjectReference`; Skiff needs a mesh service kind and a `port`. */
const backendObjectRefSchema = z
  .strictObject({
    group: gatewayGroupSchema.optional(),
    kind: gatewayKindSchema.optional(),
    name: k8sNameSchema,
    namespace: gatewayNamespaceSchema.optional(),
    port: portNumberSchema.optional(),
  })
  .superRefine((ref, ctx) => checkBackendRef(ref, ctx), WHEN_STRUCTURALLY_VALID);

function checkBackendRef(ref: { group?: string; kind?: string; name: string; port?: number }, ctx: RefineContext): void {
  const kind = backendRefKind(ref);
  if (kind !== 'Service' && kind !== 'ServiceEntry' && kind !== 'Hostname') {
    fail(ctx, ['kind'], `unsupported backendRef ${describeValue(`${ref.group ?? ''}/${ref.kind ?? 'Service'}`)}: expected kind Service (group ""), or ServiceEntry / Hostname (group networking.istio.io)`);
    return;
  }
  if (ref.port === undefined) fail(ctx, ['port'], `port is required for a ${kind} backendRef`);
}

const gatewayHeaderNameSchema = checkedString((v) => (/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(v) ? undefined : `invalid header name ${describeValue(v)}`));

const headerFilterSchema = z
  .strictObject({
    set: z.array(z.strictObject({ name: gatewayHeaderNameSchema, value: z.string() })).max(16).optional(),
    add: z.array(z.strictObject({ name: gatewayHeaderNameSchema, value: z.string() })).max(16).optional(),
    remove: z.array(gatewayHeaderNameSchema).max(16).optional(),
  })
  .superRefine((f, ctx) => {
    // Header names are case-insensitive and may appear once per list.
    for (const list of ['set', 'add'] as const) {
      const seen = new Set<string>();
      (f[list] ?? []).forEach((h, i) => {
        const n = h.name.toLowerCase();
        if (seen.has(n)) fail(ctx, [list, i, 'name'], `duplicate header ${describeValue(h.name)}`);
        seen.add(n);
      });
    }
  }, WHEN_STRUCTURALLY_VALID);

const mirrorFilterSchema = z
  .strictObject({
    backendRef: backendObjectRefSchema,
    percent: z.number().int().min(0).max(100).optional(),
    fraction: z.strictObject({ numerator: z.number().int().min(0), denominator: z.number().int().min(1).optional() }).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.percent !== undefined && m.fraction !== undefined) fail(ctx, [], 'only one of percent, fraction may be set');
    if (m.fraction && m.fraction.numerator > (m.fraction.denominator ?? 100)) fail(ctx, ['fraction'], 'numerator must be at most denominator');
  }, WHEN_STRUCTURALLY_VALID);

const pathModifierSchema = z
  .strictObject({
    type: z.enum(['ReplaceFullPath', 'ReplacePrefixMatch']),
    replaceFullPath: z.string().optional(),
    replacePrefixMatch: z.string().optional(),
  })
  .superRefine((p, ctx) => {
    if (p.type === 'ReplaceFullPath' && (p.replaceFullPath === undefined || p.replacePrefixMatch !== undefined)) fail(ctx, [], 'type ReplaceFullPath needs replaceFullPath (and only it)');
    if (p.type === 'ReplacePrefixMatch' && (p.replacePrefixMatch === undefined || p.replaceFullPath !== undefined)) fail(ctx, [], 'type ReplacePrefixMatch needs replacePrefixMatch (and only it)');
  }, WHEN_STRUCTURALLY_VALID);

const extensionRefSchema = z.strictObject({ group: gatewayGroupSchema, kind: gatewayKindSchema, name: k8sNameSchema });

/** Field holding each filter type's settings (Gateway API: `type` names the one set field). */
const FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  ExtensionRef: 'extensionRef',
} as const;

function checkFilterType(f: Record<string, unknown> & { type: keyof typeof FILTER_FIELDS }, ctx: RefineContext): void {
  const want = FILTER_FIELDS[f.type];
  for (const field of Object.values(FILTER_FIELDS)) {
    if (field === want && f[field] === undefined) fail(ctx, [field], `${field} is required for type ${f.type}`);
    if (field !== want && f[field] !== undefined) fail(ctx, [field], `${field} must not be set for type ${f.type}`);
  }
}

const httpRouteFilterSchema = z
  .strictObject({
    type: z.enum(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef']),
    requestHeaderModifier: headerFilterSchema.optional(),
    responseHeaderModifier: headerFilterSchema.optional(),
    requestMirror: mirrorFilterSchema.optional(),
    requestRedirect: z
      .strictObject({
        scheme: z.enum(['http', 'https']).optional(),
        hostname: z.string().optional(),
        path: pathModifierSchema.optional(),
        port: portNumberSchema.optional(),
        statusCode: z.union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)]).optional(),
      })
      .optional(),
    urlRewrite: z.strictObject({ hostname: z.string().optional(), path: pathModifierSchema.optional() }).optional(),
    extensionRef: extensionRefSchema.optional(),
  })
  .superRefine((f, ctx) => checkFilterType(f, ctx), WHEN_STRUCTURALLY_VALID);

const grpcRouteFilterSchema = z
  .strictObject({
    type: z.enum(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef']),
    requestHeaderModifier: headerFilterSchema.optional(),
    responseHeaderModifier: headerFilterSchema.optional(),
    requestMirror: mirrorFilterSchema.optional(),
    extensionRef: extensionRefSchema.optional(),
  })
  .superRefine((f, ctx) => checkFilterType(f, ctx), WHEN_STRUCTURALLY_VALID);

/** Gateway API header (and query parameter) match; `RegularExpression` values must compile under RE2. */
const gatewayHeaderMatchSchema = z
  .strictObject({ type: z.enum(['Exact', 'RegularExpression']).optional(), name: gatewayHeaderNameSchema, value: z.string() })
  .superRefine((m, ctx) => {
    if (m.type === 'RegularExpression') {
      const p = re2Problem(m.value);
      if (p !== undefined) fail(ctx, ['value'], p);
    }
  }, WHEN_STRUCTURALLY_VALID);

const queryParamMatchSchema = z
  .strictObject({ type: z.enum(['Exact', 'RegularExpression']).optional(), name: z.string().min(1), value: z.string() })
  .superRefine((m, ctx) => {
    if (m.type === 'RegularExpression') {
      const p = re2Problem(m.value);
      if (p !== undefined) fail(ctx, ['value'], p);
    }
  }, WHEN_STRUCTURALLY_VALID);

const pathMatchSchema = z
  .strictObject({ type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).optional(), value: z.string().max(1024).optional() })
  .superRefine((m, ctx) => {
    const type = m.type ?? 'PathPrefix';
    const value = m.value ?? '/';
    if (type === 'RegularExpression') {
      const p = re2Problem(value);
      if (p !== undefined) fail(ctx, ['value'], p);
    } else {
      if (!value.startsWith('/')) fail(ctx, ['value'], `a ${type} path must start with "/", got ${describeValue(value)}`);
      else if (value.includes('//') || /\/\.\.?(\/|$)/.test(value) || value.includes('#') || /%2f/i.test(value)) {
        fail(ctx, ['value'], `invalid path ${describeValue(value)}: no "//", "/./", "/../", "#" or encoded "/" (%2F)`);
      }
    }
  }, WHEN_STRUCTURALLY_VALID);

const httpRouteMatchSchema = z.strictObject({
  path: pathMatchSchema.optional(),
  headers: z.array(gatewayHeaderMatchSchema).max(16).optional(),
  queryParams: z.array(queryParamMatchSchema).max(16).optional(),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']).optional(),
});

const backendRefFields = {
  group: gatewayGroupSchema.optional(),
  kind: gatewayKindSchema.optional(),
  name: k8sNameSchema,
  namespace: gatewayNamespaceSchema.optional(),
  port: portNumberSchema.optional(),
  weight: z.number().int().min(0).max(1_000_000).optional(),
};

const httpBackendRefSchema = z
  .strictObject({ ...backendRefFields, filters: z.array(httpRouteFilterSchema).max(16).optional() })
  .superRefine((ref, ctx) => checkBackendRef(ref, ctx), WHEN_STRUCTURALLY_VALID);

const grpcBackendRefSchema = z
  .strictObject({ ...backendRefFields, filters: z.array(grpcRouteFilterSchema).max(16).optional() })
  .superRefine((ref, ctx) => checkBackendRef(ref, ctx), WHEN_STRUCTURALLY_VALID);

/** Rule-level filter rules of the Gateway API: no redirect with a rewrite, each header modifier at most once. */
function checkRuleFilters(filters: readonly { type: string }[], ctx: RefineContext, base: PathSegment[]): void {
  const count = (t: string): number => filters.filter((f) => f.type === t).length;
  if (count('RequestRedirect') > 0 && count('URLRewrite') > 0) fail(ctx, base, 'RequestRedirect and URLRewrite cannot both be used in one rule');
  for (const t of ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite']) {
    if (count(t) > 1) fail(ctx, base, `filter ${t} may appear at most once`);
  }
}

const httpRouteRuleSchema = z
  .strictObject({
    name: z.string().optional(),
    matches: z.array(httpRouteMatchSchema).max(64).optional(),
    filters: z.array(httpRouteFilterSchema).max(16).optional(),
    backendRefs: z.array(httpBackendRefSchema).max(16).optional(),
    timeouts: z.strictObject({ request: gatewayDurationSchema.optional(), backendRequest: gatewayDurationSchema.optional() }).optional(),
  })
  .superRefine((rule, ctx) => {
    checkRuleFilters(rule.filters ?? [], ctx, ['filters']);
    const t = rule.timeouts;
    if (t?.request !== undefined && t.backendRequest !== undefined) {
      const req = gatewayDurationMs(t.request);
      if (req !== 0 && gatewayDurationMs(t.backendRequest) > req) fail(ctx, ['timeouts', 'backendRequest'], 'backendRequest must not be longer than request');
    }
  }, WHEN_STRUCTURALLY_VALID);

const GRPC_SERVICE = /^(?:\.?[A-Za-z_][A-Za-z_0-9]*)(?:\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

const grpcMethodMatchSchema = z
  .strictObject({ type: z.enum(['Exact', 'RegularExpression']).optional(), service: z.string().max(1024).optional(), method: z.string().max(1024).optional() })
  .superRefine((m, ctx) => {
    if (!m.service && !m.method) fail(ctx, [], 'one or both of service, method must be set');
    for (const field of ['service', 'method'] as const) {
      const v = m[field];
      if (v === undefined || v === '') continue;
      if (m.type === 'RegularExpression') {
        const p = re2Problem(v);
        if (p !== undefined) fail(ctx, [field], p);
      } else if (!(field === 'service' ? GRPC_SERVICE : GRPC_METHOD).test(v)) {
        fail(ctx, [field], `invalid gRPC ${field} name ${describeValue(v)}`);
      }
    }
  }, WHEN_STRUCTURALLY_VALID);

const grpcRouteRuleSchema = z
  .strictObject({
    name: z.string().optional(),
    matches: z.array(z.strictObject({ method: grpcMethodMatchSchema.optional(), headers: z.array(gatewayHeaderMatchSchema).max(16).optional() })).max(64).optional(),
    filters: z.array(grpcRouteFilterSchema).max(16).optional(),
    backendRefs: z.array(grpcBackendRefSchema).max(16).optional(),
  })
  .superRefine((rule, ctx) => checkRuleFilters(rule.filters ?? [], ctx, ['filters']), WHEN_STRUCTURALLY_VALID);

const gatewayHostnameSchema = checkedString((v) => {
  if (v.includes(':') || /^[0-9.]+$/.test(v)) return `invalid hostname ${describeValue(v)}: IP addresses and ports are not allowed`;
  return wildcardDomainProblem(v);
});

/**
 * A mesh route needs at least one parentRef naming a mesh service (GAMMA): a Service, a
 * ServiceEntry or a Hostname. Gateway parents are accepted (and warned about: no gateways on VMs);
 * other kinds are errors.
 */
function checkParentRefs(parentRefs: readonly { group?: string; kind?: string; name: string }[] | undefined, ctx: RefineContext): void {
  if ((parentRefs?.length ?? 0) === 0) {
    fail(ctx, ['parentRefs'], 'parentRefs is required: a mesh route attaches to a Service (group ""), ServiceEntry or Hostname (group networking.istio.io)');
    return;
  }
  (parentRefs ?? []).forEach((ref, i) => {
    if (parentRefKind(ref) === 'other') {
      fail(ctx, ['parentRefs', i, 'kind'], `unsupported parentRef ${describeValue(`${ref.group ?? 'gateway.networking.k8s.io'}/${ref.kind ?? 'Gateway'}`)}: expected kind Service (group ""), ServiceEntry or Hostname (group networking.istio.io)`);
    }
  });
}

const routeCommonFields = {
  parentRefs: z.array(parentRefSchema).max(32).optional(),
  hostnames: z.array(gatewayHostnameSchema).max(16).optional(),
};

/** gateway.networking.k8s.io HTTPRoute spec, for mesh (GAMMA) use. */
export const httpRouteSpecSchema = z
  .strictObject({ ...routeCommonFields, rules: z.array(httpRouteRuleSchema).max(16).optional() })
  .superRefine((r, ctx) => checkParentRefs(r.parentRefs, ctx), WHEN_STRUCTURALLY_VALID);

/** gateway.networking.k8s.io GRPCRoute spec, for mesh (GAMMA) use. */
export const grpcRouteSpecSchema = z
  .strictObject({ ...routeCommonFields, rules: z.array(grpcRouteRuleSchema).max(16).optional() })
  .superRefine((r, ctx) => checkParentRefs(r.parentRefs, ctx), WHEN_STRUCTURALLY_VALID);

// ---------------------------------------------------------------------------------------------
// Whole resources

/** A DestinationRule resource. */
export const destinationRuleSchema = z.strictObject({
  apiVersion: z.enum(ISTIO_TRAFFIC_API_VERSIONS),
  kind: z.literal('DestinationRule'),
  metadata: metadataSchema,
  spec: destinationRuleSpecSchema,
});

/** A VirtualService resource. */
export const virtualServiceSchema = z.strictObject({
  apiVersion: z.enum(ISTIO_TRAFFIC_API_VERSIONS),
  kind: z.literal('VirtualService'),
  metadata: metadataSchema,
  spec: virtualServiceSpecSchema,
});

/** An HTTPRoute resource. */
export const httpRouteSchema = z.strictObject({
  apiVersion: z.enum(GATEWAY_API_VERSIONS),
  kind: z.literal('HTTPRoute'),
  metadata: metadataSchema,
  spec: httpRouteSpecSchema,
});

/** A GRPCRoute resource. */
export const grpcRouteSchema = z.strictObject({
  apiVersion: z.enum(GATEWAY_API_VERSIONS),
  kind: z.literal('GRPCRoute'),
  metadata: metadataSchema,
  spec: grpcRouteSpecSchema,
});

// The parsed shapes must be the shapes in traffic-types.ts (a mismatch fails type checking here).
const _drCheck: z.ZodType<Omit<DestinationRule, 'origin'>> = destinationRuleSchema;
const _vsCheck: z.ZodType<Omit<VirtualService, 'origin'>> = virtualServiceSchema;
const _hrCheck: z.ZodType<Omit<HTTPRoute, 'origin'>> = httpRouteSchema;
const _grCheck: z.ZodType<Omit<GRPCRoute, 'origin'>> = grpcRouteSchema;
