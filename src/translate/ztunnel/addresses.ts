/**
 * Workloads and services as ztunnel's `istio.workload.Address` resources, after istiod's ambient
 * index (pilot/pkg/serviceregistry/ambient/workloads.go and services.go) for WorkloadEntry and
 * ServiceEntry:
 *
 * - A WorkloadEntry is a Workload named by its uid `<cluster>/networking.istio.io/WorkloadEntry/<ns>/<name>`;
 *   an inline ServiceEntry endpoint one named `<cluster>/networking.istio.io/ServiceEntry/<ns>/<name>/<address>`.
 *   Addresses are raw bytes (an address that is not an IP goes in `hostname`). Aliases
 *   `<network>/<IP>` let ztunnel ask for a workload by address.
 * - Tunnel protocol HBONE when the workload's proxy speaks it: the label
 *   `networking.istio.io/tunnel` lists `http` (an HBONE-capable sidecar: also `native_tunnel`), or
 *   the annotation `ambient.istio.io/redirection: enabled` (the workload's traffic goes through
 *   ztunnel).
 * - Identity fields: `trust_domain` (elided for `cluster.local`), `service_account`; `network`
 *   (the entry's or the default), `locality` from `region/zone/subzone`, `capacity` from `weight`,
 *   `status` UNHEALTHY when the registry says so (WorkloadEntry condition `Healthy=False`).
 * - `services`: for every ServiceEntry that selects the workload, each host keyed
 *   `<namespace>/<hostname>`, with the workload's port for each service port (the entry's port of
 *   the same name, else the service's target port or number).
 * - A ServiceEntry host is a Service named `<namespace>/<hostname>` with the entry's `addresses`
 *   (aliases `<network>/<IP>` or `<network>/<IP>/<length>`), ports (target port defaulting to the
 *   number; protocol as AppProtocol) and SANs; resolution NONE is passthrough load balancing.
 */
import { isHealthy, resourceKey, type ServiceEntry, type ServicePort, type WorkloadEntrySpec } from '../../resources/types.js';
import { workloadLabels } from '../../resources/selectors.js';
import type { MeshSnapshot } from '../../registry/types.js';
import { speaksHbone, TUNNEL_LABEL } from '../../push/hbone.js';
import { ipBytes, ipText, parseCidr } from './ip.js';

export { TUNNEL_LABEL };
/** Istio's annotation for workloads whose traffic ztunnel captures. */
export const AMBIENT_REDIRECTION_ANNOTATION = 'ambient.istio.io/redirection';
/** Istio's annotation naming the WorkloadGroup an auto-registered entry came from. */
export const AUTO_REGISTRATION_GROUP_ANNOTATION = 'istio.io/autoRegistrationGroup';

/** What the Address translation needs besides the snapshot. */
export interface AddressOptions {
  trustDomain: string;
  /** Cluster id: the first part of workload uids and `cluster_id`. */
  clusterId: string;
  /** Network of workloads and service addresses that name none (`''`: the default network). */
  network: string;
}

/** `istio.workload.Port`. */
export interface PortMessage {
  servicePort: number;
  targetPort: number;
  appProtocol?: string;
}

/** `istio.workload.Workload` in protobufjs object form (the fields Skiff sets). */
export interface WorkloadMessage {
  uid: string;
  name: string;
  namespace: string;
  addresses?: Uint8Array[];
  hostname?: string;
  network?: string;
  tunnelProtocol?: 'NONE' | 'HBONE';
  trustDomain?: string;
  serviceAccount?: string;
  canonicalName?: string;
  canonicalRevision?: string;
  workloadType?: 'POD';
  workloadName?: string;
  nativeTunnel?: boolean;
  services?: Record<string, { ports: PortMessage[] }>;
  authorizationPolicies?: string[];
  status?: 'HEALTHY' | 'UNHEALTHY';
  clusterId?: string;
  locality?: { region?: string; zone?: string; subzone?: string };
  capacity?: { value: number };
}

/** `istio.workload.Service` in protobufjs object form (the fields Skiff sets). */
export interface ServiceMessage {
  name: string;
  namespace: string;
  hostname: string;
  addresses?: { network: string; address: Uint8Array; length?: number }[];
  ports?: PortMessage[];
  subjectAltNames?: string[];
  loadBalancing?: { mode: 'PASSTHROUGH'; healthPolicy: 'ALLOW_ALL' };
}

/** One Address resource before encoding: its name, aliases and message. */
export interface AddressEntry {
  name: string;
  aliases: string[];
  address: { workload: WorkloadMessage } | { service: ServiceMessage };
  /** Labels and namespace, for selector-scoped policies (workloads only). */
  selectorTarget?: { namespace: string; labels: Record<string, string> };
}

/** `uid` of a WorkloadEntry (istiod's `generateWorkloadEntryUID`). */
export function workloadEntryUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}/networking.istio.io/WorkloadEntry/${namespace}/${name}`;
}

/** `uid` of an inline ServiceEntry endpoint (istiod's `generateServiceEntryUID`). */
export function serviceEntryEndpointUid(clusterId: string, namespace: string, name: string, address: string): string {
  return `${clusterId}/networking.istio.io/ServiceEntry/${namespace}/${name}/${address}`;
}

/** Whether a workload with these labels and annotations is reached over HBONE, and natively. */
export function tunnelOf(labels: Readonly<Record<string, string>>, annotations: Readonly<Record<string, string>>): { hbone: boolean; native: boolean } {
  const native = speaksHbone(labels);
  return { hbone: native || annotations[AMBIENT_REDIRECTION_ANNOTATION] === 'enabled', native };
}

const APP_PROTOCOLS: Readonly<Record<string, string>> = { HTTP: 'HTTP11', HTTP2: 'HTTP2', GRPC: 'GRPC', TLS: 'TLS', HTTPS: 'TLS', TCP: 'TCP' };

function appProtocol(protocol: string | undefined): string | undefined {
  return protocol ? APP_PROTOCOLS[protocol.toUpperCase()] : undefined;
}

function canonical(labels: Readonly<Record<string, string>>, workloadName: string): { name: string; revision: string } {
  const name = labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels['app'] ?? workloadName;
  const revision = labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels['version'] ?? 'latest';
  return { name, revision };
}

function locality(text: string | undefined): WorkloadMessage['locality'] {
  if (!text) return undefined;
  const [region = '', zone = '', subzone = ''] = text.split('/');
  if (!region && !zone && !subzone) return undefined;
  const out: NonNullable<WorkloadMessage['locality']> = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subzone) out.subzone = subzone;
  return out;
}

function servicePorts(se: ServiceEntry, workloadPorts: Readonly<Record<string, number>> | undefined): PortMessage[] {
  return (se.spec.ports ?? []).map((p: ServicePort) => ({ servicePort: p.number, targetPort: workloadPorts?.[p.name] ?? p.targetPort ?? p.number }));
}

/** The `services` map of a workload backing `services` with `ports` (by port name). */
function servicesMap(services: readonly ServiceEntry[], ports: Readonly<Record<string, number>> | undefined): Record<string, { ports: PortMessage[] }> | undefined {
  const out: Record<string, { ports: PortMessage[] }> = {};
  for (const se of services) for (const host of se.spec.hosts) out[`${se.metadata.namespace}/${host}`] = { ports: servicePorts(se, ports) };
  return Object.keys(out).length > 0 ? out : undefined;
}

interface WorkloadInput {
  uid: string;
  name: string;
  namespace: string;
  spec: WorkloadEntrySpec;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  services: readonly ServiceEntry[];
  healthy: boolean;
}

function workload(input: WorkloadInput, opts: AddressOptions): AddressEntry {
  const { spec } = input;
  const network = spec.network ?? opts.network;
  const workloadName = input.annotations[AUTO_REGISTRATION_GROUP_ANNOTATION] ?? input.labels['service.istio.io/workload-name'] ?? input.name;
  const names = canonical(input.labels, workloadName);
  const w: WorkloadMessage = { uid: input.uid, name: input.name, namespace: input.namespace };
  const aliases: string[] = [];
  const ip = spec.address ? ipBytes(spec.address) : undefined;
  if (ip) {
    w.addresses = [ip.bytes];
    aliases.push(`${network}/${ipText(ip.bytes) ?? spec.address ?? ''}`);
  } else if (spec.address) {
    w.hostname = spec.address;
  }
  if (network) w.network = network;
  const tunnel = tunnelOf(input.labels, input.annotations);
  if (tunnel.hbone) w.tunnelProtocol = 'HBONE';
  if (tunnel.native) w.nativeTunnel = true;
  if (opts.trustDomain !== 'cluster.local') w.trustDomain = opts.trustDomain;
  if (spec.serviceAccount) w.serviceAccount = spec.serviceAccount;
  w.canonicalName = names.name;
  w.canonicalRevision = names.revision;
  w.workloadType = 'POD';
  w.workloadName = workloadName;
  const services = servicesMap(input.services, spec.ports);
  if (services) w.services = services;
  if (!input.healthy) w.status = 'UNHEALTHY';
  w.clusterId = opts.clusterId;
  const loc = locality(spec.locality);
  if (loc) w.locality = loc;
  if (spec.weight !== undefined && spec.weight > 0) w.capacity = { value: spec.weight };
  return { name: input.uid, aliases, address: { workload: w }, selectorTarget: { namespace: input.namespace, labels: input.labels } };
}

/** Every WorkloadEntry and inline ServiceEntry endpoint as a Workload Address. */
export function workloadAddresses(snapshot: MeshSnapshot, opts: AddressOptions, warn: (m: string) => void): AddressEntry[] {
  const out: AddressEntry[] = [];
  const seen = new Set<string>();
  for (const we of snapshot.workloadEntries) {
    const key = `${we.metadata.namespace}/${we.metadata.name}`;
    out.push(
      workload(
        {
          uid: workloadEntryUid(opts.clusterId, we.metadata.namespace, we.metadata.name),
          name: we.metadata.name,
          namespace: we.metadata.namespace,
          spec: we.spec,
          labels: workloadLabels(we),
          annotations: we.metadata.annotations ?? {},
          services: snapshot.servicesByWorkload.get(key) ?? [],
          healthy: isHealthy(we),
        },
        opts,
      ),
    );
  }
  for (const se of snapshot.serviceEntries) {
    for (const [i, ep] of (se.spec.endpoints ?? []).entries()) {
      if (!ep.address) continue;
      const uid = serviceEntryEndpointUid(opts.clusterId, se.metadata.namespace, se.metadata.name, ep.address);
      if (seen.has(uid)) {
        warn(`${resourceKey(se)} spec.endpoints[${i}]: address ${ep.address} is listed twice; the first one is used for ztunnel`);
        continue;
      }
      seen.add(uid);
      out.push(
        workload(
          { uid, name: se.metadata.name, namespace: se.metadata.namespace, spec: ep, labels: { ...(ep.labels ?? {}) }, annotations: {}, services: [se], healthy: true },
          opts,
        ),
      );
    }
  }
  return out;
}

/** Every ServiceEntry host as a Service Address (the first entry of a `<namespace>/<host>` wins). */
export function serviceAddresses(snapshot: MeshSnapshot, opts: AddressOptions, warn: (m: string) => void): AddressEntry[] {
  const out = new Map<string, AddressEntry>();
  for (const se of snapshot.serviceEntries) {
    const addresses: NonNullable<ServiceMessage['addresses']> = [];
    const aliases: string[] = [];
    for (const a of se.spec.addresses ?? []) {
      const cidr = parseCidr(a);
      if (!cidr) {
        warn(`${resourceKey(se)} spec.addresses: "${a}" is not an IP or CIDR; not sent to ztunnel`);
        continue;
      }
      const single = cidr.length === cidr.bits;
      addresses.push({ network: opts.network, address: cidr.bytes, ...(single ? {} : { length: cidr.length }) });
      const text = ipText(cidr.bytes) ?? a;
      aliases.push(single ? `${opts.network}/${text}` : `${opts.network}/${text}/${cidr.length}`);
    }
    const ports = (se.spec.ports ?? []).map((p): PortMessage => {
      const port: PortMessage = { servicePort: p.number, targetPort: p.targetPort ?? p.number };
      const proto = appProtocol(p.protocol);
      if (proto) port.appProtocol = proto;
      return port;
    });
    for (const host of se.spec.hosts) {
      const name = `${se.metadata.namespace}/${host}`;
      if (out.has(name)) {
        warn(`${resourceKey(se)}: host ${host} is already defined by another ServiceEntry in ${se.metadata.namespace}; ztunnel gets the first one`);
        continue;
      }
      const s: ServiceMessage = { name: se.metadata.name, namespace: se.metadata.namespace, hostname: host };
      if (addresses.length > 0) s.addresses = addresses;
      if (ports.length > 0) s.ports = ports;
      if ((se.spec.subjectAltNames?.length ?? 0) > 0) s.subjectAltNames = [...(se.spec.subjectAltNames ?? [])];
      if (se.spec.resolution === 'NONE') s.loadBalancing = { mode: 'PASSTHROUGH', healthPolicy: 'ALLOW_ALL' };
      out.set(name, { name, aliases: [...aliases], address: { service: s } });
    }
  }
  return [...out.values()];
}
