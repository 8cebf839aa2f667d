/**
 * Warnings about one parsed resource: things Istio accepts but that are probably a mistake
 * (Istio's own validation warnings), and fields Skiff parses but does not implement yet. A field
 * we parse is never silently ignored (DESIGN.md §3): when a later release implements one, its
 * entry here goes away.
 *
 * Set-level warnings (a selector that selects nothing, an egress host naming no service) are in
 * `validate.ts`.
 */
import type { PathSegment } from './issues.js';
import { parseJwks } from './jwks.js';
import { isPartialWildcard } from './names.js';
import { trafficResourceWarnings } from './traffic-validate.js';
import type { AuthorizationPolicy, AuthzRule, MeshResource, RequestAuthentication, ServiceEntry, Sidecar, WorkloadEntrySpec, WorkloadGroup } from './types.js';

/** A warning about one resource, located by its path inside the resource. */
export interface ResourceWarning {
  path: PathSegment[];
  message: string;
}

/**
 * Protocols Istio knows that Skiff's proxies do not implement. (HTTP, HTTP2, GRPC and GRPC-Web go
 * through the HTTP connection manager; TCP, TLS, HTTPS, Mongo, Redis and MySQL are proxied as TCP,
 * as Istio does with its protocol filters off.)
 */
const UNIMPLEMENTED_PROTOCOLS = new Set(['UDP', 'HTTP_PROXY']);

function protocolWarning(protocol: string | undefined, path: PathSegment[], out: ResourceWarning[]): void {
  if (protocol !== undefined && UNIMPLEMENTED_PROTOCOLS.has(protocol)) {
    out.push({ path, message: `protocol ${protocol} is not implemented yet: the port is proxied as TCP` });
  }
}

function selectorWarning(labels: Record<string, string> | undefined, present: boolean, path: PathSegment[], out: ResourceWarning[]): void {
  if (present && Object.keys(labels ?? {}).length === 0) {
    out.push({ path, message: 'selector without labels: it selects every workload in the namespace' });
  }
}

function workloadSpecWarnings(spec: WorkloadEntrySpec, base: PathSegment[], out: ResourceWarning[]): void {
  if (spec.network !== undefined) out.push({ path: [...base, 'network'], message: 'network is not implemented yet (Skiff assumes one flat network)' });
}

function serviceEntryWarnings(se: ServiceEntry, out: ResourceWarning[]): void {
  const spec = se.spec;
  const resolution = spec.resolution ?? 'NONE';
  if (resolution !== 'STATIC') {
    out.push({
      path: ['spec', 'resolution'],
      message:
        spec.resolution === undefined
          ? 'resolution is unset (Istio default NONE), which is not implemented yet: set resolution: STATIC'
          : `resolution ${resolution} is not implemented yet (Skiff implements STATIC)`,
    });
  }
  if (spec.location !== 'MESH_INTERNAL') {
    out.push({
      path: ['spec', 'location'],
      message:
        spec.location === undefined
          ? 'location is unset (Istio default MESH_EXTERNAL), which is not implemented yet: set location: MESH_INTERNAL'
          : 'location MESH_EXTERNAL is not implemented yet (Skiff implements MESH_INTERNAL)',
    });
  }
  if (resolution === 'NONE' && spec.workloadSelector !== undefined) {
    out.push({ path: ['spec', 'workloadSelector'], message: 'workloadSelector has no effect with resolution NONE' });
  }
  spec.hosts.forEach((h, i) => {
    if (isPartialWildcard(h)) out.push({ path: ['spec', 'hosts', i], message: `partial wildcard "${h}" is not allowed by Istio for this resolution` });
  });
  selectorWarning(spec.workloadSelector?.labels, spec.workloadSelector !== undefined, ['spec', 'workloadSelector'], out);
  (spec.ports ?? []).forEach((p, i) => protocolWarning(p.protocol, ['spec', 'ports', i, 'protocol'], out));
  (spec.endpoints ?? []).forEach((ep, i) => workloadSpecWarnings(ep, ['spec', 'endpoints', i], out));
}

function sidecarWarnings(sc: Sidecar, out: ResourceWarning[]): void {
  const spec = sc.spec;
  selectorWarning(spec.workloadSelector?.labels, spec.workloadSelector !== undefined, ['spec', 'workloadSelector'], out);
  (spec.ingress ?? []).forEach((l, i) => {
    if (l.captureMode === 'IPTABLES') {
      out.push({ path: ['spec', 'ingress', i, 'captureMode'], message: 'captureMode IPTABLES is not implemented yet (Skiff runs in explicit mode: captureMode NONE)' });
    }
    protocolWarning(l.port.protocol, ['spec', 'ingress', i, 'port', 'protocol'], out);
  });
  (spec.egress ?? []).forEach((l, i) => {
    if (l.captureMode === 'IPTABLES') {
      out.push({ path: ['spec', 'egress', i, 'captureMode'], message: 'captureMode IPTABLES is not implemented yet (Skiff runs in explicit mode: captureMode NONE)' });
    }
    if (l.port) protocolWarning(l.port.protocol, ['spec', 'egress', i, 'port', 'protocol'], out);
    const seen = new Set<string>();
    l.hosts.forEach((h, j) => {
      if (seen.has(h)) out.push({ path: ['spec', 'egress', i, 'hosts', j], message: `duplicated egress host "${h}"` });
      seen.add(h);
    });
    if (seen.has('*/*') && seen.size > 1) {
      out.push({ path: ['spec', 'egress', i, 'hosts'], message: '"*/*" selects every service: the other hosts add nothing' });
    }
  });
  if (spec.outboundTrafficPolicy?.mode === 'ALLOW_ANY') {
    out.push({ path: ['spec', 'outboundTrafficPolicy', 'mode'], message: 'outboundTrafficPolicy ALLOW_ANY is not implemented yet: only services in the registry are reachable (REGISTRY_ONLY)' });
  }
}

/**
 * WorkloadGroup: the template's address is replaced by each agent's; a gRPC probe is parsed but
 * Skiff's agent cannot run it yet (so no health is reported for such a group).
 */
function workloadGroupWarnings(wg: WorkloadGroup, out: ResourceWarning[]): void {
  const template = wg.spec.template;
  if (template.address !== undefined && template.address !== '') {
    out.push({ path: ['spec', 'template', 'address'], message: 'template.address is ignored: each registered workload gets the address its agent reports' });
  }
  workloadSpecWarnings(template, ['spec', 'template'], out);
  if (wg.spec.probe?.grpc !== undefined) {
    out.push({ path: ['spec', 'probe', 'grpc'], message: 'grpc probes are not implemented yet: agents of this group report no health (the workloads count as healthy)' });
  }
}

/** targetRef/targetRefs attach a policy to waypoints and gateways (Istio); Skiff's VM sidecars have neither. */
function targetRefWarnings(spec: { targetRef?: unknown; targetRefs?: unknown[] }, out: ResourceWarning[]): void {
  const message = 'targetRef/targetRefs attach a policy to waypoints and gateways, which Skiff does not run: the policy applies to no workload (use selector)';
  if (spec.targetRef !== undefined) out.push({ path: ['spec', 'targetRef'], message });
  if ((spec.targetRefs?.length ?? 0) > 0) out.push({ path: ['spec', 'targetRefs'], message });
}

/**
 * Istio's warning for a DENY rule whose only attributes are HTTP ones: on a TCP port those are
 * dropped, so the rule denies every connection there (`ValidateAuthorizationPolicy`).
 */
function denyOnlyHttpWarning(rule: AuthzRule, i: number, out: ResourceWarning[]): void {
  const fromExists = (rule.from ?? []).some((f) => f.source !== undefined);
  const toExists = (rule.to ?? []).some((t) => t.operation !== undefined);
  const tcpInFrom = (rule.from ?? []).some((f) => {
    const s = f.source ?? {};
    return [s.principals, s.notPrincipals, s.namespaces, s.notNamespaces, s.ipBlocks, s.notIpBlocks, s.remoteIpBlocks, s.notRemoteIpBlocks, s.serviceAccounts, s.notServiceAccounts].some(
      (v) => (v?.length ?? 0) > 0,
    );
  });
  const tcpInTo = (rule.to ?? []).some((t) => (t.operation?.ports?.length ?? 0) + (t.operation?.notPorts?.length ?? 0) > 0);
  if ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo)) {
    out.push({
      path: ['spec', 'rules', i],
      message:
        'this DENY rule does not name its ports (to.operation.ports): on TCP ports in its scope its HTTP-only attributes are ignored, so it may deny more traffic there than on HTTP ports',
    });
  }
}

function authorizationPolicyWarnings(ap: AuthorizationPolicy, out: ResourceWarning[]): void {
  const spec = ap.spec;
  selectorWarning(spec.selector?.matchLabels, spec.selector !== undefined, ['spec', 'selector'], out);
  targetRefWarnings(spec, out);
  if (spec.action === 'DENY') (spec.rules ?? []).forEach((r, i) => denyOnlyHttpWarning(r, i, out));
  (spec.rules ?? []).forEach((r, i) => {
    (r.when ?? []).forEach((c, j) => {
      if (c.key.startsWith('experimental.envoy.filters.')) {
        out.push({ path: ['spec', 'rules', i, 'when', j, 'key'], message: `${c.key} is experimental (Envoy dynamic metadata): its meaning depends on Envoy filters Skiff does not configure` });
      }
    });
  });
}

function requestAuthenticationWarnings(ra: RequestAuthentication, out: ResourceWarning[]): void {
  const spec = ra.spec;
  selectorWarning(spec.selector?.matchLabels, spec.selector !== undefined, ['spec', 'selector'], out);
  targetRefWarnings(spec, out);
  (spec.jwtRules ?? []).forEach((rule, i) => {
    const at: PathSegment[] = ['spec', 'jwtRules', i];
    if ((rule.fromCookies?.length ?? 0) > 0) out.push({ path: [...at, 'fromCookies'], message: 'fromCookies is not implemented yet: tokens in cookies are not read' });
    const inline = rule.jwks !== undefined && rule.jwks !== '';
    const uri = rule.jwksUri !== undefined && rule.jwksUri !== '';
    if (inline) {
      const parsed = parseJwks(rule.jwks ?? '');
      if ('warnings' in parsed) for (const w of parsed.warnings) out.push({ path: [...at, 'jwks'], message: w });
      if (uri) out.push({ path: [...at, 'jwksUri'], message: 'jwks is set inline, so jwksUri is not used' });
    } else if (!uri) {
      out.push({
        path: at,
        message: `neither jwks nor jwksUri is set: Istio would discover the keys from the issuer's OpenID configuration, which Skiff does not implement yet; tokens from "${rule.issuer}" are rejected`,
      });
    }
    if (rule.issuer === '') out.push({ path: [...at, 'issuer'], message: 'no issuer: a token from any issuer that the keys verify is accepted' });
  });
}

/** Warnings for one resource that passed its schema. Paths are relative to the resource. */
export function resourceWarnings(r: MeshResource): ResourceWarning[] {
  const out: ResourceWarning[] = [];
  switch (r.kind) {
    case 'WorkloadEntry':
      workloadSpecWarnings(r.spec, ['spec'], out);
      break;
    case 'WorkloadGroup':
      workloadGroupWarnings(r, out);
      break;
    case 'ServiceEntry':
      serviceEntryWarnings(r, out);
      break;
    case 'Sidecar':
      sidecarWarnings(r, out);
      break;
    case 'PeerAuthentication':
      selectorWarning(r.spec.selector?.matchLabels, r.spec.selector !== undefined, ['spec', 'selector'], out);
      break;
    case 'AuthorizationPolicy':
      authorizationPolicyWarnings(r, out);
      break;
    case 'RequestAuthentication':
      requestAuthenticationWarnings(r, out);
      break;
    case 'DestinationRule':
    case 'VirtualService':
    case 'HTTPRoute':
    case 'GRPCRoute':
      out.push(...trafficResourceWarnings(r));
      break;
  }
  return out;
}
