/**
 * Which service hosts the traffic kinds name, resolved the way Istio resolves them, shared by the
 * set-level checks (`traffic-validate.ts`) and the registry's indexes (`registry/snapshot.ts`):
 *
 * - A short name (no dot, e.g. `reviews`) in a DestinationRule `host`, a VirtualService `hosts[]`
 *   or a `destination.host` means `<name>.<namespace>.svc.cluster.local`, the namespace being the
 *   resource's own (Istio's `ResolveShortnameToFQDN`).
 * - A Gateway API parentRef / backendRef names a mesh service in one of three forms (GAMMA):
 *   `{group: "", kind: Service, name}` → `<name>.<namespace>.svc.cluster.local`;
 *   `{group: networking.istio.io, kind: ServiceEntry, name}` → every host of that ServiceEntry;
 *   `{group: networking.istio.io, kind: Hostname, name: <host>}` → the host itself.
 *   `namespace` defaults to the route's namespace.
 * - A parentRef's `port` and `sectionName` narrow it to the service port of that number / name
 *   ({@link parentRefSelectsPort}).
 */
import type { BackendObjectReference, ParentReference } from './traffic-types.js';
import type { ServiceEntry } from './types.js';

/** Milliseconds of `metadata.creationTimestamp`; a missing or bad one counts as oldest (0), as Istio's zero time. */
function createdAt(r: { metadata: { creationTimestamp?: string } }): number {
  const t = r.metadata.creationTimestamp === undefined ? NaN : Date.parse(r.metadata.creationTimestamp);
  return Number.isNaN(t) ? 0 : t;
}

/**
 * Istio's config precedence order (`model.sortConfigByCreationTime`): oldest `creationTimestamp`
 * first, then `namespace/name`. Used for DestinationRules, VirtualServices and Gateway API routes
 * that target one host: the first wins where they conflict.
 */
export function comparePrecedence(
  a: { metadata: { namespace: string; name: string; creationTimestamp?: string } },
  b: { metadata: { namespace: string; name: string; creationTimestamp?: string } },
): number {
  const d = createdAt(a) - createdAt(b);
  if (d !== 0) return d;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The Istio API group Gateway API references use for ServiceEntry and Hostname targets. */
export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';
/** The Gateway API group; the default `group` of a parentRef. */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** Kubernetes' cluster domain, used to expand short names and Service references. */
export const CLUSTER_DOMAIN = 'svc.cluster.local';

/**
 * Resolves a host as Istio does: a name without a dot (and not `*`) becomes
 * `<host>.<namespace>.svc.cluster.local`; anything else is returned as written.
 */
export function resolveShortHost(host: string, namespace: string): string {
  if (host === '' || host === '*' || host.includes('.')) return host;
  return `${host}.${namespace}.${CLUSTER_DOMAIN}`;
}

/** The kind of mesh reference a parentRef/backendRef is, after applying the Gateway API defaults. */
export type MeshRefKind = 'Service' | 'ServiceEntry' | 'Hostname' | 'Gateway' | 'other';

/** Classifies a parentRef (defaults: group `gateway.networking.k8s.io`, kind `Gateway`). */
export function parentRefKind(ref: ParentReference): MeshRefKind {
  return refKind(ref.group ?? GATEWAY_API_GROUP, ref.kind ?? 'Gateway');
}

/** Classifies a backendRef (defaults: group `""` (core), kind `Service`). */
export function backendRefKind(ref: BackendObjectReference): MeshRefKind {
  return refKind(ref.group ?? '', ref.kind ?? 'Service');
}

function refKind(group: string, kind: string): MeshRefKind {
  if (group === '' && kind === 'Service') return 'Service';
  if (group === ISTIO_NETWORKING_GROUP && kind === 'ServiceEntry') return 'ServiceEntry';
  if (group === ISTIO_NETWORKING_GROUP && kind === 'Hostname') return 'Hostname';
  if (group === GATEWAY_API_GROUP && kind === 'Gateway') return 'Gateway';
  return 'other';
}

/** A port of a service as a Gateway API parentRef selects it: its number and its ServiceEntry port name. */
export interface ParentPort {
  number: number;
  name: string;
}

/**
 * Whether a parentRef selects service port `port` (GAMMA; Gateway API `ParentReference`: for a
 * Service parent `port` is the service port number and `sectionName` the service port name; when
 * both are set both must match; neither set: every port of the service). Skiff reads a ServiceEntry
 * or Hostname parent the same way, with the ServiceEntry's `ports[].number` / `ports[].name`.
 * The host is checked separately ({@link refHosts}).
 */
export function parentRefSelectsPort(ref: { port?: number; sectionName?: string }, port: ParentPort): boolean {
  if (ref.port !== undefined && ref.port !== port.number) return false;
  if (ref.sectionName !== undefined && ref.sectionName !== port.name) return false;
  return true;
}

/**
 * Why a parentRef selects none of the service's `ports`: a `sectionName` or `port` the service
 * does not have, or both set and naming different ports. Undefined when it selects at least one
 * (or sets neither). `host` names the service in the message, e.g.
 * `service reviews.demo.svc.cluster.local has no port named "grpc" (it has http (9080), admin (9090))`.
 */
export function parentRefPortProblem(ref: { port?: number; sectionName?: string }, host: string, ports: readonly ParentPort[]): string | undefined {
  if (ref.port === undefined && ref.sectionName === undefined) return undefined;
  if (ports.some((p) => parentRefSelectsPort(ref, p))) return undefined;
  const list = ports.length === 0 ? 'it defines no ports' : `it has ${ports.map((p) => `${p.name} (${p.number})`).join(', ')}`;
  if (ref.sectionName !== undefined && !ports.some((p) => p.name === ref.sectionName)) return `service ${host} has no port named "${ref.sectionName}" (${list})`;
  if (ref.port !== undefined && !ports.some((p) => p.number === ref.port)) return `service ${host} has no port ${ref.port} (${list})`;
  return `sectionName "${ref.sectionName ?? ''}" and port ${ref.port ?? ''} name different ports of service ${host} (${list})`;
}

/** Finds a ServiceEntry by namespace and name. */
export type ServiceEntryLookup = (namespace: string, name: string) => ServiceEntry | undefined;

/**
 * The hosts a Gateway API reference (parentRef or backendRef) names. `kind` comes from
 * {@link parentRefKind} / {@link backendRefKind}; `routeNamespace` is the route's namespace.
 * Empty for Gateway/other kinds and for a ServiceEntry that does not exist.
 */
export function refHosts(
  kind: MeshRefKind,
  ref: { name: string; namespace?: string },
  routeNamespace: string,
  lookup: ServiceEntryLookup,
): string[] {
  const ns = ref.namespace ?? routeNamespace;
  switch (kind) {
    case 'Service':
      return [`${ref.name}.${ns}.${CLUSTER_DOMAIN}`];
    case 'Hostname':
      return [ref.name];
    case 'ServiceEntry':
      return [...(lookup(ns, ref.name)?.spec.hosts ?? [])];
    default:
      return [];
  }
}

/**
 * The mesh hosts an HTTPRoute / GRPCRoute attaches to (its Service, ServiceEntry and Hostname
 * parentRefs), deduplicated, in parentRef order. Gateway parents contribute nothing.
 */
export function routeTargetHosts(
  route: { metadata: { namespace: string }; spec: { parentRefs?: readonly ParentReference[] } },
  lookup: ServiceEntryLookup,
): string[] {
  const out: string[] = [];
  for (const ref of route.spec.parentRefs ?? []) {
    for (const h of refHosts(parentRefKind(ref), ref, route.metadata.namespace, lookup)) if (!out.includes(h)) out.push(h);
  }
  return out;
}
