/**
 * Maps one Consul service (the entries of `GET /v1/health/service/<name>`) to mesh resources:
 *
 * - each instance → a `WorkloadEntry` (healthy or not): address `Service.Address`, else
 *   `Node.Address` (Consul's documented fallback), which must be an IP; one port, named and typed
 *   by service meta; labels from `key=value` tags and from service meta; locality
 *   `region/zone/subzone` from node meta (`skiff-region`, `skiff-zone`, `skiff-subzone`; service
 *   meta as a fallback) with the node's datacenter as the default region; namespace and service
 *   account from `skiff-namespace` / `skiff-service-account` meta, else configurable defaults;
 *   weight from Consul's `Weights`; health as Istio's `Healthy` condition;
 * - the service → one `ServiceEntry` per namespace its instances are in, all with the host made
 *   from the host template (default `{service}.service.consul`), ports from the instances, and a
 *   workloadSelector on the labels `skiff.dev/source: consul` and `skiff.dev/consul-service`.
 *
 * Health (from every check of the entry, node checks included): all passing → healthy; a warning →
 * healthy unless `warningIsHealthy` is false; critical → unhealthy; maintenance mode (Consul's
 * `_service_maintenance:<id>` / `_node_maintenance` critical checks) → unhealthy with reason
 * `Maintenance`. Unhealthy instances stay WorkloadEntries (so they are visible) but leave EDS.
 *
 * Bad input never hides good input: an instance whose meta, address or port cannot be used is
 * left out with a problem message naming the service, instance, node and field; a service whose
 * name cannot make a valid host yields nothing and one problem. The output is deterministic
 * (sorted, no timestamps): the same Consul content always maps to equal resources, so index
 * churn that changes nothing pushes nothing.
 */
import crypto from 'node:crypto';
import { isIP } from 'node:net';
import { errorMap, schemaIssues } from '../../resources/parse.js';
import { fqdnProblem, isDns1123Label, isDns1123LabelAnyCase, isDns1123Subdomain, labelKeyProblem, labelValueProblem } from '../../resources/names.js';
import { ISTIO_PROTOCOLS, parseProtocol } from '../../resources/protocol.js';
import { serviceEntrySchema, workloadEntrySchema } from '../../resources/schemas.js';
import { HEALTHY_CONDITION, type Condition, type ServiceEntry, type ServicePort, type WorkloadEntry } from '../../resources/types.js';
import { NODE_MAINTENANCE_CHECK_ID, SERVICE_MAINTENANCE_PREFIX, type HealthCheck, type HealthServiceEntry } from './api.js';

/** The label every resource from this source carries (`skiff.dev/source: consul`). */
export const SOURCE_LABEL = 'skiff.dev/source';
/** The label naming the Consul service of a resource; the ServiceEntry selects on it. */
export const CONSUL_SERVICE_LABEL = 'skiff.dev/consul-service';
/** Annotation naming the Consul node of a WorkloadEntry's instance. */
export const CONSUL_NODE_ANNOTATION = 'skiff.dev/consul-node';
/** Annotation naming the Consul service ID of a WorkloadEntry's instance. */
export const CONSUL_SERVICE_ID_ANNOTATION = 'skiff.dev/consul-service-id';

/** Service and node meta keys Skiff reads. Other meta keys become labels when they are valid label keys. */
export const META = {
  /** Port protocol, an Istio protocol name in any case (`http`, `GRPC`, `TCP`...); default TCP. */
  protocol: 'skiff-protocol',
  /** Port name (DNS label); default the lower-cased protocol. */
  portName: 'skiff-port-name',
  /** The port clients use (the ServiceEntry port); default the instance's `Port`. */
  servicePort: 'skiff-service-port',
  /** Namespace of the WorkloadEntry and ServiceEntry. */
  namespace: 'skiff-namespace',
  /** Service account (the workload's SPIFFE identity). */
  serviceAccount: 'skiff-service-account',
  /** Locality parts; node meta first, then service meta. The region defaults to the datacenter. */
  region: 'skiff-region',
  zone: 'skiff-zone',
  subzone: 'skiff-subzone',
} as const;

/** Meta keys with this prefix are Skiff's settings, never labels. */
export const SKIFF_META_PREFIX = 'skiff-';

/** How Consul services become resources (the mapping part of the source config). */
export interface ConsulMapping {
  /** Host of each service; `{service}`, `{datacenter}` and `{namespace}` are replaced. */
  hostTemplate: string;
  /** Namespace when an instance has no `skiff-namespace` meta. */
  defaultNamespace: string;
  /** Service account when an instance has no `skiff-service-account` meta. */
  defaultServiceAccount: string;
  /** Whether an instance with a warning check (and no critical one) stays in EDS. */
  warningIsHealthy: boolean;
  /** Only instances carrying every one of these tags are taken (empty: all). */
  tags: readonly string[];
}

/** Skiff's defaults: `{service}.service.consul` (Consul's DNS name), namespace and SA `default`, warning healthy. */
export const DEFAULT_MAPPING: Readonly<ConsulMapping> = Object.freeze({
  hostTemplate: '{service}.service.consul',
  defaultNamespace: 'default',
  defaultServiceAccount: 'default',
  warningIsHealthy: true,
  tags: [],
});

/** What {@link mapConsulService} produced. */
export interface MappedService {
  /** ServiceEntries (by namespace) then WorkloadEntries (by namespace/name), each with `origin.source` `consul`. */
  serviceEntries: ServiceEntry[];
  workloadEntries: WorkloadEntry[];
  /** One message per problem (a skipped instance, a conflict), in a stable order. */
  problems: string[];
  /** Instances taken / left out because of a problem / left out by the tag filter. */
  counts: { mapped: number; skipped: number; filtered: number };
}

/** Why `name` cannot name a mesh service (it becomes a host label and a label value), or undefined. */
export function serviceNameProblem(name: string): string | undefined {
  if (isDns1123Label(name)) return undefined;
  return `service name ${JSON.stringify(name)} is not a valid host label (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)`;
}

/** Placeholders of the host template. */
const PLACEHOLDER = /\{([a-z]+)\}/g;
const KNOWN_PLACEHOLDERS = new Set(['service', 'datacenter', 'namespace']);

/** Why `template` is not a usable host template, or undefined (it is tried with sample values). */
export function hostTemplateProblem(template: string): string | undefined {
  const unknown = [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '').filter((p) => !KNOWN_PLACEHOLDERS.has(p));
  if (unknown.length > 0) return `unknown placeholder {${unknown[0]}} (known: {service}, {datacenter}, {namespace})`;
  if (!template.includes('{service}')) return 'the template must contain {service} (else every service gets the same host)';
  const sample = renderHost(template, { service: 'web', datacenter: 'dc1', namespace: 'default' });
  const p = fqdnProblem(sample);
  return p === undefined ? undefined : `${JSON.stringify(template)} does not make a valid host: ${p}`;
}

/** The host for one service: the template with its placeholders replaced, lower-cased. */
export function renderHost(template: string, values: { service: string; datacenter: string; namespace: string }): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => (name in values ? values[name as keyof typeof values] : whole)).toLowerCase();
}

const STATUS_RANK: Readonly<Record<string, number>> = { passing: 0, warning: 1, critical: 2 };

/**
 * Istio's `Healthy` condition for an instance from all of its entry's checks (node checks
 * included), as described in the module comment. Only check IDs, names and notes go into the
 * message (never `Output`, which changes on every run of a check and would cause pushes).
 */
export function instanceHealth(checks: readonly HealthCheck[], warningIsHealthy: boolean): Condition {
  const sorted = [...checks].sort((a, b) => (a.CheckID < b.CheckID ? -1 : a.CheckID > b.CheckID ? 1 : 0));
  const maintenance = sorted.filter(
    (c) => (c.CheckID === NODE_MAINTENANCE_CHECK_ID || c.CheckID.startsWith(SERVICE_MAINTENANCE_PREFIX) || c.Status === 'maintenance') && c.Status !== 'passing',
  );
  if (maintenance.length > 0) {
    const why = maintenance.map((c) => `${c.CheckID === NODE_MAINTENANCE_CHECK_ID ? 'node' : 'service'} in maintenance mode${c.Notes ? `: ${c.Notes}` : ''}`);
    return { type: HEALTHY_CONDITION, status: 'False', reason: 'Maintenance', message: why.join('; ') };
  }
  let worst = 0;
  const failing: string[] = [];
  for (const c of sorted) {
    const rank = STATUS_RANK[c.Status] ?? 2; // an unknown status counts as critical
    if (rank > 0) failing.push(`${c.CheckID}${c.Name ? ` (${c.Name})` : ''} is ${c.Status}`);
    worst = Math.max(worst, rank);
  }
  if (worst === 0) return { type: HEALTHY_CONDITION, status: 'True', reason: 'Passing', message: sorted.length ? 'all Consul checks are passing' : 'no Consul checks' };
  const message = `Consul checks: ${failing.join('; ')}`;
  if (worst === 1) return { type: HEALTHY_CONDITION, status: warningIsHealthy ? 'True' : 'False', reason: 'Warning', message };
  return { type: HEALTHY_CONDITION, status: 'False', reason: 'Critical', message };
}

/** The port an instance serves and how clients see it. */
interface InstancePort {
  name: string;
  protocol: string;
  /** The ServiceEntry port number. */
  servicePort: number;
  /** The port on the instance (WorkloadEntry `ports[name]`). */
  instancePort: number;
}

/** An instance that passed every check, ready to become a WorkloadEntry. */
interface Candidate {
  entry: HealthServiceEntry;
  where: string;
  address: string;
  port: InstancePort;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
  locality?: string;
  weight?: number;
  health: Condition;
}

function compareEntries(a: HealthServiceEntry, b: HealthServiceEntry): number {
  const ka = `${a.Node.Node}\u0000${a.Service.ID}`;
  const kb = `${b.Node.Node}\u0000${b.Service.ID}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

/** Sorted copy of a string map, so equal content gives equal JSON. */
function sortedMap(m: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k]!;
  return out;
}

/** `Kind/namespace/name`-safe WorkloadEntry name: the service and a hash of node and service ID. */
export function workloadEntryName(service: string, node: string, serviceId: string): string {
  const hash = crypto.createHash('sha256').update(`${node}\n${serviceId}`).digest('hex').slice(0, 10);
  return `${service}-${hash}`;
}

/** The ServiceEntry name for a Consul service (prefixed so it never collides with a file's `web`). */
export function serviceEntryName(service: string): string {
  return `consul-${service}`;
}

/** Reads an instance's port, protocol and identity meta; returns a problem instead when one is unusable. */
function readInstance(entry: HealthServiceEntry, m: ConsulMapping): Omit<Candidate, 'entry' | 'where' | 'health'> | { problem: string } {
  const svc = entry.Service;
  const meta = svc.Meta ?? {};
  const nodeMeta = entry.Node.Meta ?? {};
  const address = svc.Address || entry.Node.Address;
  if (isIP(address) === 0) {
    return { problem: `address ${JSON.stringify(address)} (${svc.Address ? 'Service.Address' : 'Node.Address'}) is not an IP address (Skiff needs IP endpoints)` };
  }
  const instancePort = svc.Port ?? 0;
  if (!Number.isInteger(instancePort) || instancePort < 1 || instancePort > 65535) {
    return { problem: `Port ${instancePort} is not a port number 1-65535 (register the instance with its port)` };
  }
  let protocol = 'TCP';
  const rawProtocol = meta[META.protocol];
  if (rawProtocol !== undefined) {
    const p = parseProtocol(rawProtocol.trim());
    if (p === undefined) return { problem: `meta ${META.protocol}=${JSON.stringify(rawProtocol)} is not a protocol (expected one of ${ISTIO_PROTOCOLS.join('|')}, any case)` };
    protocol = p;
  }
  const name = meta[META.portName] ?? protocol.toLowerCase().replace(/_/g, '-');
  if (!isDns1123LabelAnyCase(name)) return { problem: `meta ${META.portName}=${JSON.stringify(name)} is not a valid port name (a DNS label)` };
  let servicePort = instancePort;
  const rawServicePort = meta[META.servicePort];
  if (rawServicePort !== undefined) {
    const n = /^[0-9]{1,5}$/.test(rawServicePort.trim()) ? Number(rawServicePort.trim()) : Number.NaN;
    if (!(n >= 1 && n <= 65535)) return { problem: `meta ${META.servicePort}=${JSON.stringify(rawServicePort)} is not a port number 1-65535` };
    servicePort = n;
  }
  const namespace = meta[META.namespace] ?? m.defaultNamespace;
  if (!isDns1123Label(namespace)) return { problem: `namespace ${JSON.stringify(namespace)}${meta[META.namespace] !== undefined ? ` (meta ${META.namespace})` : ''} is not a lower-case DNS label` };
  const serviceAccount = meta[META.serviceAccount] ?? m.defaultServiceAccount;
  if (!isDns1123Subdomain(serviceAccount)) {
    return { problem: `service account ${JSON.stringify(serviceAccount)}${meta[META.serviceAccount] !== undefined ? ` (meta ${META.serviceAccount})` : ''} is not a lower-case DNS-1123 subdomain` };
  }
  const labels: Record<string, string> = {};
  for (const tag of svc.Tags ?? []) {
    const eq = tag.indexOf('=');
    if (eq <= 0) continue;
    const k = tag.slice(0, eq);
    const v = tag.slice(eq + 1);
    if (labelKeyProblem(k) === undefined && labelValueProblem(v) === undefined) labels[k] = v;
  }
  for (const [k, v] of Object.entries(meta)) {
    if (k.startsWith(SKIFF_META_PREFIX)) continue;
    if (labelKeyProblem(k) === undefined && labelValueProblem(v) === undefined) labels[k] = v;
  }
  const part = (key: string): string | undefined => nodeMeta[key] ?? meta[key];
  const region = part(META.region) ?? entry.Node.Datacenter ?? '';
  const parts = [region, part(META.zone) ?? '', part(META.subzone) ?? ''];
  const bad = parts.find((p) => p.includes('/'));
  if (bad !== undefined) return { problem: `locality part ${JSON.stringify(bad)} contains "/" (meta ${META.region}/${META.zone}/${META.subzone})` };
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  const locality = parts.length > 0 ? parts.join('/') : undefined;
  const out: Omit<Candidate, 'entry' | 'where' | 'health'> = { address, port: { name, protocol, servicePort, instancePort }, namespace, serviceAccount, labels };
  if (locality !== undefined) out.locality = locality;
  return out;
}

/**
 * Maps the entries of one Consul service (see the module comment). `datacenter` fills `{datacenter}`
 * in the host template (the configured one, else the nodes' datacenter, else `dc1`).
 */
export function mapConsulService(service: string, entries: readonly HealthServiceEntry[], m: ConsulMapping, datacenter?: string): MappedService {
  const problems: string[] = [];
  const out: MappedService = { serviceEntries: [], workloadEntries: [], problems, counts: { mapped: 0, skipped: 0, filtered: 0 } };
  const nameProblem = serviceNameProblem(service);
  if (nameProblem !== undefined) {
    problems.push(`consul service ${JSON.stringify(service)}: ${nameProblem}: service skipped`);
    out.counts.skipped = entries.length;
    return out;
  }
  const sorted = [...entries].sort(compareEntries);
  const candidates: Candidate[] = [];
  const seenEndpoints = new Map<string, string>();
  for (const entry of sorted) {
    const where = `consul service ${JSON.stringify(service)}: instance ${JSON.stringify(entry.Service.ID)} on node ${JSON.stringify(entry.Node.Node)}`;
    const tags = entry.Service.Tags ?? [];
    if (!m.tags.every((t) => tags.includes(t))) {
      out.counts.filtered++;
      continue;
    }
    const read = readInstance(entry, m);
    if ('problem' in read) {
      problems.push(`${where}: ${read.problem}: instance skipped`);
      out.counts.skipped++;
      continue;
    }
    const endpointKey = `${read.namespace}|${read.address}|${read.port.instancePort}`;
    const twin = seenEndpoints.get(endpointKey);
    if (twin !== undefined) {
      problems.push(`${where}: ${read.address}:${read.port.instancePort} is already served by ${twin}: instance skipped`);
      out.counts.skipped++;
      continue;
    }
    seenEndpoints.set(endpointKey, `instance ${JSON.stringify(entry.Service.ID)} on node ${JSON.stringify(entry.Node.Node)}`);
    const health = instanceHealth(entry.Checks ?? [], m.warningIsHealthy);
    const candidate: Candidate = { entry, where, ...read, health };
    const weights = entry.Service.Weights;
    if (weights) {
      const w = health.reason === 'Warning' ? weights.Warning : weights.Passing;
      if (w > 1) candidate.weight = w;
      if (w === 0 && health.status === 'True') {
        candidate.health = { ...health, status: 'False', message: `${health.message ?? ''} (Weights.${health.reason === 'Warning' ? 'Warning' : 'Passing'} is 0)` };
      }
    }
    candidates.push(candidate);
  }
  if (candidates.length === 0) return out;

  // Ports: the first instance (by node, then ID) that names a port defines it; disagreeing instances
  // are served with that definition and reported.
  const byName = new Map<string, { port: ServicePort; by: string }>();
  const byNumber = new Map<number, { port: ServicePort; by: string }>();
  for (const c of candidates) {
    const want = c.port;
    const named = byName.get(want.name);
    if (named) {
      if (named.port.number !== want.servicePort) {
        problems.push(`${c.where}: port ${want.name} is ${want.servicePort} here but ${named.port.number} for ${named.by}: using ${named.port.number} (set meta ${META.servicePort} to choose)`);
      }
      if (named.port.protocol !== want.protocol) {
        problems.push(`${c.where}: port ${want.name} is ${want.protocol} here but ${named.port.protocol ?? 'TCP'} for ${named.by}: using ${named.port.protocol ?? 'TCP'}`);
      }
      continue;
    }
    const numbered = byNumber.get(want.servicePort);
    if (numbered) {
      problems.push(`${c.where}: port ${want.servicePort} is named ${want.name} (${want.protocol}) here but ${numbered.port.name} (${numbered.port.protocol ?? 'TCP'}) for ${numbered.by}: using ${numbered.port.name}`);
      c.port = { ...want, name: numbered.port.name, protocol: numbered.port.protocol ?? 'TCP' };
      continue;
    }
    const port: ServicePort = { number: want.servicePort, protocol: want.protocol, name: want.name };
    const by = `instance ${JSON.stringify(c.entry.Service.ID)} on node ${JSON.stringify(c.entry.Node.Node)}`;
    byName.set(want.name, { port, by });
    byNumber.set(want.servicePort, { port, by });
  }
  for (const c of candidates) {
    const named = byName.get(c.port.name);
    if (named) c.port = { ...c.port, servicePort: named.port.number, protocol: named.port.protocol ?? 'TCP' };
  }
  const ports = [...byNumber.values()].map((p) => p.port).sort((a, b) => a.number - b.number);

  const selector = { [CONSUL_SERVICE_LABEL]: service, [SOURCE_LABEL]: 'consul' };
  const dc = datacenter ?? candidates[0]?.entry.Node.Datacenter ?? 'dc1';
  const namespaces = [...new Set(candidates.map((c) => c.namespace))].sort();
  for (const namespace of namespaces) {
    const host = renderHost(m.hostTemplate, { service, datacenter: dc, namespace });
    const hostProblem = fqdnProblem(host);
    const inNamespace = candidates.filter((c) => c.namespace === namespace);
    if (hostProblem !== undefined) {
      problems.push(`consul service ${JSON.stringify(service)}: host ${JSON.stringify(host)} from the host template is invalid (${hostProblem}): ${inNamespace.length} instance(s) in namespace ${namespace} skipped`);
      out.counts.skipped += inNamespace.length;
      continue;
    }
    const se: ServiceEntry = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: serviceEntryName(service), namespace, labels: sortedMap(selector) },
      spec: {
        hosts: [host],
        ports: ports.map((p) => ({ ...p })),
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        workloadSelector: { labels: sortedMap(selector) },
      },
      origin: { source: 'consul' },
    };
    const seProblem = schemaProblem(serviceEntrySchema, se);
    if (seProblem !== undefined) {
      problems.push(`consul service ${JSON.stringify(service)}: the ServiceEntry for namespace ${namespace} is invalid (${seProblem}): skipped`);
      out.counts.skipped += inNamespace.length;
      continue;
    }
    const wes: WorkloadEntry[] = [];
    for (const c of inNamespace) {
      const spec: WorkloadEntry['spec'] = { address: c.address, ports: { [c.port.name]: c.port.instancePort } };
      if (Object.keys(c.labels).length > 0) spec.labels = sortedMap(c.labels);
      if (c.locality !== undefined) spec.locality = c.locality;
      if (c.weight !== undefined) spec.weight = c.weight;
      spec.serviceAccount = c.serviceAccount;
      const we: WorkloadEntry = {
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: {
          name: workloadEntryName(service, c.entry.Node.Node, c.entry.Service.ID),
          namespace,
          labels: sortedMap(selector),
          annotations: sortedMap({ [CONSUL_NODE_ANNOTATION]: c.entry.Node.Node, [CONSUL_SERVICE_ID_ANNOTATION]: c.entry.Service.ID }),
        },
        spec,
        status: { conditions: [c.health] },
        origin: { source: 'consul' },
      };
      const weProblem = schemaProblem(workloadEntrySchema, we);
      if (weProblem !== undefined) {
        problems.push(`${c.where}: the WorkloadEntry would be invalid (${weProblem}): instance skipped`);
        out.counts.skipped++;
        continue;
      }
      wes.push(we);
    }
    if (wes.length === 0) continue;
    out.serviceEntries.push(se);
    out.workloadEntries.push(...wes);
    out.counts.mapped += wes.length;
  }
  if (namespaces.length > 1) {
    problems.push(
      `consul service ${JSON.stringify(service)}: instances are in several namespaces (${namespaces.join(', ')}): each namespace gets its own ServiceEntry for the host, and a proxy sees the one of its own namespace (else the oldest), as Istio does`,
    );
  }
  out.workloadEntries.sort(byKey((w) => `${w.metadata.namespace}/${w.metadata.name}`));
  return out;
}

/** The first schema problem of a generated resource (the same zod schema files go through), or undefined. */
function schemaProblem(schema: typeof serviceEntrySchema | typeof workloadEntrySchema, r: ServiceEntry | WorkloadEntry): string | undefined {
  const parsed = schema.safeParse({ apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec }, { error: errorMap });
  if (parsed.success) return undefined;
  const first = schemaIssues(parsed.error)[0];
  return first ? `${first.path.join('.')}: ${first.message}` : 'invalid';
}
