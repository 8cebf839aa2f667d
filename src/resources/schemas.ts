/**
 * zod schemas for the Istio kinds Skiff accepts in this release: WorkloadEntry, ServiceEntry,
 * Sidecar (networking.istio.io) and PeerAuthentication (security.istio.io); AuthorizationPolicy
 * and RequestAuthentication are in `security-schemas.ts`. Field names and
 * semantic rules follow Istio's API reference (https://istio.io/latest/docs/reference/config/)
 * and its validation (`pkg/config/validation` in istio/istio), so that YAML Istio accepts is
 * accepted here and YAML Istio rejects is rejected with a message naming the field.
 *
 * Every object is strict: an unknown field is an error. Structural errors (wrong type, unknown
 * field, bad enum value) come from the schema; semantic errors (duplicate port numbers, a
 * defaultEndpoint that is not a loopback address...) from the `superRefine` checks below, each
 * with the path of the offending field. Warnings (accepted but probably a mistake, or parsed but
 * not implemented yet) live in `warnings.ts`, not here.
 */
import { z } from 'zod';
import { parseDefaultEndpoint } from './default-endpoint.js';
import { describeValue, type PathSegment } from './issues.js';
import {
  fqdnProblem,
  ipOrCidrProblem,
  isDns1123LabelAnyCase,
  isDns1123Label,
  isDns1123Subdomain,
  isIpAddress,
  isPartialWildcard,
  wildcardDomainProblem,
} from './names.js';
import { isHttpProtocol, isTlsProtocol } from './protocol.js';
import {
  checkedString,
  fail,
  ipAddressSchema,
  labelSelectorSchema,
  labelsSchema,
  metadataSchema,
  portNameSchema,
  portNumberSchema,
  protocolSchema,
  workloadSelectorSchema,
  type RefineContext,
} from './schema-common.js';
import { authorizationPolicySchema, requestAuthenticationSchema } from './security-schemas.js';
import {
  destinationRuleSchema,
  GATEWAY_API_VERSIONS,
  grpcRouteSchema,
  httpRouteSchema,
  ISTIO_TRAFFIC_API_VERSIONS,
  virtualServiceSchema,
} from './traffic-schemas.js';
import type {
  MeshKind,
  MeshResource,
  PeerAuthentication,
  ServiceEntry,
  Sidecar,
  WorkloadEntry,
  WorkloadGroup,
} from './types.js';

/** apiVersions accepted for the networking kinds (DESIGN.md §3). */
export const NETWORKING_API_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;
/** apiVersions accepted for the security kinds (DESIGN.md §3). */
export const SECURITY_API_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;

// Building blocks live in schema-common.ts (shared with security-schemas.ts); re-exported here.
export { metadataSchema, portNumberSchema } from './schema-common.js';

// ---------------------------------------------------------------------------------------------
// WorkloadEntry (also the shape of ServiceEntry `endpoints[]`)

/** Problem with a workload address: Skiff needs an IP (hostnames need DNS resolution, not implemented). */
function workloadAddressProblem(address: string): string | undefined {
  if (isIpAddress(address)) return undefined;
  if (address.startsWith('unix://')) return `Unix domain socket endpoints (${describeValue(address)}) are not supported yet: expected an IP address`;
  if (fqdnProblem(address) === undefined) {
    return `expected an IP address, got hostname ${describeValue(address)} (hostname endpoints need resolution DNS, which Skiff does not implement yet)`;
  }
  return `expected an IP address, got ${describeValue(address)}`;
}

/** The fields of a WorkloadEntry spec (shared by WorkloadEntry and the WorkloadGroup `template`). */
const workloadEntryFields = {
  address: z.string().optional(),
  ports: z.record(portNameSchema, portNumberSchema).optional(),
  labels: labelsSchema.optional(),
  network: z.string().optional(),
  locality: z.string().optional(),
  weight: z.number().int().min(0).max(4294967295).optional(),
  serviceAccount: checkedString((v) =>
    isDns1123Subdomain(v) ? undefined : `invalid service account ${describeValue(v)}: must be a lower-case DNS-1123 subdomain`,
  ).optional(),
};

/** networking.istio.io `WorkloadEntry` spec. `address` is required and must be an IP address. */
export const workloadEntrySpecSchema = z
  .strictObject(workloadEntryFields)
  .superRefine((we, ctx) => {
    if (we.address === undefined || we.address === '') {
      fail(ctx, ['address'], 'address is required');
      return;
    }
    const p = workloadAddressProblem(we.address);
    if (p !== undefined) fail(ctx, ['address'], p);
  });

// ---------------------------------------------------------------------------------------------
// ServiceEntry

/** networking.istio.io `ServicePort`: `name` and `number` are required. */
export const servicePortSchema = z.strictObject({
  number: portNumberSchema,
  protocol: protocolSchema.optional(),
  name: portNameSchema,
  targetPort: portNumberSchema.optional(),
});

const serviceHostSchema = checkedString((v) =>
  v === '*' ? 'invalid host "*": a ServiceEntry host must name a domain' : wildcardDomainProblem(v),
);

/** Problem with an `exportTo` list (Istio `validateExportTo` for ServiceEntry). */
function checkExportTo(exportTo: readonly string[], ctx: RefineContext, base: PathSegment[]): void {
  const seen = new Set<string>();
  exportTo.forEach((e, i) => {
    if (e !== '.' && e !== '*' && e !== '~' && !isDns1123Label(e)) {
      fail(ctx, [...base, i], `invalid exportTo value ${describeValue(e)}: expected ".", "*", "~" or a namespace`);
    } else if (seen.has(e)) {
      fail(ctx, [...base, i], `duplicate exportTo entry ${describeValue(e)}`);
    }
    seen.add(e);
  });
  if (exportTo.length > 1 && seen.has('*')) fail(ctx, base, 'exportTo "*" (everyone) cannot be combined with other entries');
  if (exportTo.length > 1 && seen.has('~')) fail(ctx, base, 'exportTo "~" (no one) cannot be combined with other entries');
}

/** networking.istio.io `ServiceEntry` spec, with Istio's `ValidateServiceEntry` rules. */
export const serviceEntrySpecSchema = z
  .strictObject({
    hosts: z.array(serviceHostSchema),
    addresses: z.array(checkedString(ipOrCidrProblem)).optional(),
    ports: z.array(servicePortSchema).optional(),
    location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
    resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']).optional(),
    endpoints: z.array(workloadEntrySpecSchema).optional(),
    workloadSelector: workloadSelectorSchema.optional(),
    exportTo: z.array(z.string()).optional(),
    subjectAltNames: z.array(z.string()).optional(),
  })
  .superRefine((se, ctx) => {
    if (se.hosts.length === 0) fail(ctx, ['hosts'], 'a ServiceEntry needs at least one host');
    if (se.workloadSelector !== undefined && se.endpoints !== undefined) {
      fail(ctx, ['endpoints'], 'only one of workloadSelector or endpoints may be set');
    }
    const resolution = se.resolution ?? 'NONE';
    const ports = se.ports ?? [];
    const byName = new Map<string, number>();
    const byNumber = new Map<number, number>();
    ports.forEach((p, i) => {
      const sameName = byName.get(p.name);
      if (sameName !== undefined) fail(ctx, ['ports', i, 'name'], `port name "${p.name}" is already used by ports[${sameName}]`);
      else byName.set(p.name, i);
      const sameNumber = byNumber.get(p.number);
      if (sameNumber !== undefined) fail(ctx, ['ports', i, 'number'], `port number ${p.number} is already defined by ports[${sameNumber}]`);
      else byNumber.set(p.number, i);
    });
    (se.endpoints ?? []).forEach((ep, i) => {
      for (const name of Object.keys(ep.ports ?? {})) {
        if (!byName.has(name)) fail(ctx, ['endpoints', i, 'ports', name], `port name "${name}" is not defined in the ServiceEntry's ports`);
      }
    });
    if (resolution === 'NONE' && (se.endpoints?.length ?? 0) > 0) {
      fail(ctx, ['endpoints'], 'endpoints cannot be set with resolution NONE (the default when resolution is unset)');
    }
    (se.addresses ?? []).forEach((a, i) => {
      if (a.includes('/') && resolution !== 'NONE' && resolution !== 'STATIC') {
        fail(ctx, ['addresses', i], `CIDR address "${a}" is allowed only with resolution NONE or STATIC`);
      }
    });
    if (resolution !== 'NONE' && se.hosts.length > 1 && ports.some((p) => !isHttpProtocol(p.protocol) && !isTlsProtocol(p.protocol))) {
      fail(ctx, ['hosts'], 'several hosts need HTTP or TLS ports: on a TCP port (or one without a protocol) the hosts cannot be told apart');
    }
    if (resolution === 'DNS_ROUND_ROBIN' && (se.endpoints?.length ?? 0) > 1) {
      fail(ctx, ['endpoints'], 'resolution DNS_ROUND_ROBIN allows at most one endpoint');
    }
    if (se.exportTo) checkExportTo(se.exportTo, ctx, ['exportTo']);
  });

// ---------------------------------------------------------------------------------------------
// Sidecar

/** networking.istio.io `SidecarPort`. */
const sidecarPortSchema = z.strictObject({
  number: portNumberSchema,
  protocol: protocolSchema.optional(),
  name: portNameSchema.optional(),
  targetPort: portNumberSchema.optional(),
});

const captureModeSchema = z.enum(['DEFAULT', 'IPTABLES', 'NONE']);

const defaultEndpointSchema = checkedString((v) => {
  const parsed = parseDefaultEndpoint(v);
  return 'error' in parsed ? parsed.error : undefined;
});

/** Problem with a Sidecar egress host `namespace/dnsName` (Istio `ValidateNamespaceSlashWildcardHostname`). */
function egressHostProblem(host: string): string | undefined {
  const slash = host.indexOf('/');
  if (slash < 0) return `host ${describeValue(host)} must be of the form namespace/dnsName (e.g. "./*", "prod/api.example.com")`;
  const ns = host.slice(0, slash);
  const name = host.slice(slash + 1);
  if (ns === '' || name === '') return `host ${describeValue(host)}: namespace and dnsName cannot be empty`;
  const bareNs = ns.startsWith('~') ? ns.slice(1) : ns;
  if (bareNs !== '' && bareNs !== '*' && bareNs !== '.' && !isDns1123LabelAnyCase(bareNs)) {
    return `host ${describeValue(host)}: invalid namespace "${ns}" (expected "*", ".", "~" or a namespace name)`;
  }
  if (name !== '*' && !name.includes('.')) return `host ${describeValue(host)}: short names are not allowed, use a fully-qualified name`;
  if (isPartialWildcard(name)) return `host ${describeValue(host)}: partial wildcard "${name}" is not allowed`;
  const p = wildcardDomainProblem(name);
  return p === undefined ? undefined : `host ${describeValue(host)}: ${p}`;
}

/** Sidecar `ingress[]` (IstioIngressListener). */
const ingressListenerSchema = z.strictObject({
  port: sidecarPortSchema,
  bind: ipAddressSchema.optional(),
  captureMode: captureModeSchema.optional(),
  defaultEndpoint: defaultEndpointSchema.optional(),
});

/** Sidecar `egress[]` (IstioEgressListener). */
const egressListenerSchema = z.strictObject({
  port: sidecarPortSchema.optional(),
  bind: ipAddressSchema.optional(),
  captureMode: captureModeSchema.optional(),
  hosts: z.array(checkedString(egressHostProblem)),
});

/** networking.istio.io `Sidecar` spec, with Istio's `ValidateSidecar` rules. */
export const sidecarSpecSchema = z
  .strictObject({
    workloadSelector: workloadSelectorSchema.optional(),
    ingress: z.array(ingressListenerSchema).optional(),
    egress: z.array(egressListenerSchema).optional(),
    outboundTrafficPolicy: z.strictObject({ mode: z.enum(['REGISTRY_ONLY', 'ALLOW_ANY']).optional() }).optional(),
  })
  .superRefine((sc, ctx) => {
    const ingress = sc.ingress ?? [];
    const egress = sc.egress ?? [];
    if (ingress.length === 0 && egress.length === 0 && sc.outboundTrafficPolicy === undefined) {
      fail(ctx, [], 'empty configuration: a Sidecar needs ingress, egress or outboundTrafficPolicy');
    }
    const ingressPorts = new Map<number, number>();
    ingress.forEach((l, i) => {
      if (l.port.targetPort !== undefined) fail(ctx, ['ingress', i, 'port', 'targetPort'], 'targetPort has no effect on a Sidecar port');
      const same = ingressPorts.get(l.port.number);
      if (same !== undefined) fail(ctx, ['ingress', i, 'port', 'number'], `port ${l.port.number} is already used by ingress[${same}]`);
      else ingressPorts.set(l.port.number, i);
    });
    const egressPorts = new Map<number, number>();
    let catchAll: number | undefined;
    egress.forEach((l, i) => {
      if (l.port === undefined) {
        if (catchAll !== undefined) fail(ctx, ['egress', i], `only one egress listener may omit its port (egress[${catchAll}] already does)`);
        else if (i !== egress.length - 1) fail(ctx, ['egress', i], 'the egress listener without a port must be the last one');
        catchAll ??= i;
      } else {
        if (l.port.targetPort !== undefined) fail(ctx, ['egress', i, 'port', 'targetPort'], 'targetPort has no effect on a Sidecar port');
        const same = egressPorts.get(l.port.number);
        if (same !== undefined) fail(ctx, ['egress', i, 'port', 'number'], `port ${l.port.number} is already used by egress[${same}]`);
        else egressPorts.set(l.port.number, i);
      }
      if (l.hosts.length === 0) fail(ctx, ['egress', i, 'hosts'], 'an egress listener needs at least one host');
    });
  });

// ---------------------------------------------------------------------------------------------
// PeerAuthentication

const mtlsSchema = z.strictObject({ mode: z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']).optional() });

const portKeySchema = checkedString((v) =>
  /^[0-9]{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : `expected a port number 1-65535 as key, got ${describeValue(v)}`,
);

/** security.istio.io `PeerAuthentication` spec, with Istio's `ValidatePeerAuthentication` rules. */
export const peerAuthenticationSpecSchema = z
  .strictObject({
    selector: labelSelectorSchema.optional(),
    mtls: mtlsSchema.optional(),
    portLevelMtls: z.record(portKeySchema, mtlsSchema).optional(),
  })
  .superRefine((pa, ctx) => {
    if (pa.portLevelMtls === undefined) return;
    if (Object.keys(pa.portLevelMtls).length === 0) {
      fail(ctx, ['portLevelMtls'], 'portLevelMtls, if set, needs at least one port');
    } else if (Object.keys(pa.selector?.matchLabels ?? {}).length === 0) {
      fail(ctx, ['portLevelMtls'], 'portLevelMtls requires a selector with matchLabels (a mesh- or namespace-wide policy cannot set port-level mTLS)');
    }
  });

// ---------------------------------------------------------------------------------------------
// WorkloadGroup

/** Probe header names: letters, digits and '-' (Istio `ValidateProbeHeaderName`, as Kubernetes). */
const probeHeaderNameSchema = checkedString((v) =>
  v === '' ? 'header name cannot be empty' : /^[-A-Za-z0-9]+$/.test(v) ? undefined : `invalid header name ${describeValue(v)}: only letters, digits and '-' are allowed`,
);

/** A probe's `host`: an IP address or a DNS name the agent resolves on the VM. */
const probeHostSchema = checkedString((v) =>
  isIpAddress(v) || fqdnProblem(v) === undefined ? undefined : `invalid probe host ${describeValue(v)}: expected an IP address or a DNS name`,
);

/** A non-negative int32 probe setting (0 = the default), Istio `validateReadinessProbe`. */
const probeSecondsSchema = z.number().int().min(0).max(2147483647);

/** networking.istio.io `ReadinessProbe`: exactly one of httpGet, tcpSocket, exec or grpc. */
export const readinessProbeSchema = z
  .strictObject({
    initialDelaySeconds: probeSecondsSchema.optional(),
    timeoutSeconds: probeSecondsSchema.optional(),
    periodSeconds: probeSecondsSchema.optional(),
    successThreshold: probeSecondsSchema.optional(),
    failureThreshold: probeSecondsSchema.optional(),
    httpGet: z
      .strictObject({
        path: z.string().optional(),
        port: portNumberSchema,
        host: probeHostSchema.optional(),
        scheme: z.enum(['HTTP', 'HTTPS'], { error: (iss) => `expected HTTP or HTTPS, got ${describeValue(iss.input)}` }).optional(),
        httpHeaders: z.array(z.strictObject({ name: probeHeaderNameSchema, value: z.string().optional() })).optional(),
      })
      .optional(),
    tcpSocket: z.strictObject({ host: probeHostSchema.optional(), port: portNumberSchema }).optional(),
    exec: z
      .strictObject({ command: z.array(z.string()) })
      .superRefine((e, ctx) => {
        if (e.command.length === 0 || e.command[0] === '') fail(ctx, ['command'], 'exec.command is required: the program to run and its arguments');
      })
      .optional(),
    grpc: z.strictObject({ port: portNumberSchema, service: z.string().optional() }).optional(),
  })
  .superRefine((p, ctx) => {
    const methods = (['httpGet', 'tcpSocket', 'exec', 'grpc'] as const).filter((m) => p[m] !== undefined);
    if (methods.length === 0) fail(ctx, [], 'a probe needs one check method: httpGet, tcpSocket, exec or grpc');
    if (methods.length > 1) fail(ctx, [methods[1]!], `only one check method may be set, got ${methods.join(' and ')}`);
    if (p.httpGet?.path !== undefined && p.httpGet.path !== '' && !p.httpGet.path.startsWith('/')) {
      fail(ctx, ['httpGet', 'path'], `path ${describeValue(p.httpGet.path)} must start with "/"`);
    }
  });

/**
 * networking.istio.io `WorkloadGroup` spec, with Istio's `ValidateWorkloadGroup` rules: `template`
 * is required but, unlike a WorkloadEntry, has no address (each agent supplies its own); labels
 * are Kubernetes labels; the probe has one method and non-negative settings.
 */
export const workloadGroupSpecSchema = z.strictObject({
  metadata: z.strictObject({ labels: labelsSchema.optional(), annotations: z.record(z.string(), z.string()).optional() }).optional(),
  template: z.strictObject(workloadEntryFields).superRefine((t, ctx) => {
    if (t.address !== undefined && t.address !== '') {
      const p = workloadAddressProblem(t.address);
      if (p !== undefined) fail(ctx, ['address'], p);
    }
  }),
  probe: readinessProbeSchema.optional(),
});

// ---------------------------------------------------------------------------------------------
// Whole resources

/** A WorkloadEntry resource. */
export const workloadEntrySchema = z.strictObject({
  apiVersion: z.enum(NETWORKING_API_VERSIONS),
  kind: z.literal('WorkloadEntry'),
  metadata: metadataSchema,
  spec: workloadEntrySpecSchema.prefault({}),
});

/** A WorkloadGroup resource. */
export const workloadGroupSchema = z.strictObject({
  apiVersion: z.enum(NETWORKING_API_VERSIONS),
  kind: z.literal('WorkloadGroup'),
  metadata: metadataSchema,
  spec: workloadGroupSpecSchema,
});

/** A ServiceEntry resource. */
export const serviceEntrySchema = z.strictObject({
  apiVersion: z.enum(NETWORKING_API_VERSIONS),
  kind: z.literal('ServiceEntry'),
  metadata: metadataSchema,
  spec: serviceEntrySpecSchema.prefault({ hosts: [] }),
});

/** A Sidecar resource. */
export const sidecarSchema = z.strictObject({
  apiVersion: z.enum(NETWORKING_API_VERSIONS),
  kind: z.literal('Sidecar'),
  metadata: metadataSchema,
  spec: sidecarSpecSchema.prefault({}),
});

/** A PeerAuthentication resource (an absent spec is `{}`: inherit the parent's mode). */
export const peerAuthenticationSchema = z.strictObject({
  apiVersion: z.enum(SECURITY_API_VERSIONS),
  kind: z.literal('PeerAuthentication'),
  metadata: metadataSchema,
  spec: peerAuthenticationSpecSchema.prefault({}),
});

// The parsed shapes must be the shapes in types.ts (a mismatch fails type checking here).
const _weCheck: z.ZodType<Omit<WorkloadEntry, 'origin'>> = workloadEntrySchema;
const _wgCheck: z.ZodType<Omit<WorkloadGroup, 'origin'>> = workloadGroupSchema;
const _seCheck: z.ZodType<Omit<ServiceEntry, 'origin'>> = serviceEntrySchema;
const _scCheck: z.ZodType<Omit<Sidecar, 'origin'>> = sidecarSchema;
const _paCheck: z.ZodType<Omit<PeerAuthentication, 'origin'>> = peerAuthenticationSchema;

/** How each kind is accepted: its apiVersions and its schema. */
export interface KindSchema {
  apiVersions: readonly string[];
  schema: z.ZodType<Omit<MeshResource, 'origin'>>;
}

/** The kinds this release accepts, by `kind`. */
export const KIND_SCHEMAS: Readonly<Record<MeshKind, KindSchema>> = {
  WorkloadEntry: { apiVersions: NETWORKING_API_VERSIONS, schema: workloadEntrySchema },
  WorkloadGroup: { apiVersions: NETWORKING_API_VERSIONS, schema: workloadGroupSchema },
  ServiceEntry: { apiVersions: NETWORKING_API_VERSIONS, schema: serviceEntrySchema },
  Sidecar: { apiVersions: NETWORKING_API_VERSIONS, schema: sidecarSchema },
  PeerAuthentication: { apiVersions: SECURITY_API_VERSIONS, schema: peerAuthenticationSchema },
  AuthorizationPolicy: { apiVersions: SECURITY_API_VERSIONS, schema: authorizationPolicySchema },
  RequestAuthentication: { apiVersions: SECURITY_API_VERSIONS, schema: requestAuthenticationSchema },
  DestinationRule: { apiVersions: ISTIO_TRAFFIC_API_VERSIONS, schema: destinationRuleSchema },
  VirtualService: { apiVersions: ISTIO_TRAFFIC_API_VERSIONS, schema: virtualServiceSchema },
  HTTPRoute: { apiVersions: GATEWAY_API_VERSIONS, schema: httpRouteSchema },
  GRPCRoute: { apiVersions: GATEWAY_API_VERSIONS, schema: grpcRouteSchema },
};

/** Kinds named in DESIGN.md §3 that later releases implement: rejected with "not supported yet". */
export const PLANNED_KINDS: ReadonlySet<string> = new Set<string>([]);
