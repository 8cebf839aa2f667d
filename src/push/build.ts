/**
 * The push context for one proxy: from the registry snapshot and the proxy's identity, the slice of
 * the mesh it needs, as a {@link ProxyIR} (DESIGN.md §1, §6).
 *
 * Listeners come from the Sidecar that applies (`ingress` → inbound, `egress` → outbound). A
 * workload without a Sidecar (or a Sidecar without `ingress` / `egress`) gets Skiff's documented
 * default, stated in `ir.warnings`:
 *  - inbound: one listener per port of each ServiceEntry in its namespace that selects it, on the
 *    workload address and the workload port (`WorkloadEntry.ports[<port name>]` ?? `targetPort` ??
 *    `number`), forwarding to the application at 127.0.0.1 on that same port (in Istio the
 *    application listens on the workload port; explicit mode moves it to loopback);
 *  - outbound: as the egress entry `{hosts: ["*\/*"]}`: a listener on 127.0.0.1:<port> for every
 *    port of every visible service, except where that would take the application's own address
 *    and except ports below 1024 (an unprivileged Envoy cannot bind them).
 */
import { isIP } from 'node:net';
import { ROOT_NAMESPACE, resourceKey, type IstioEgressListener, type ServicePort, type ServiceEntry, type Sidecar, type WorkloadEntry } from '../resources/types.js';
import { parseDefaultEndpoint } from '../resources/default-endpoint.js';
import type { MeshSnapshot } from '../registry/types.js';
import type {
  AppProtocol,
  AuthzPolicyIR,
  ClusterIR,
  EndpointAddress,
  ExternalClusterIR,
  InboundListenerIR,
  JwtRuleIR,
  ExtAuthzProviderIR,
  HboneInboundIR,
  LoadAssignmentIR,
  LocalityIR,
  OutboundClusterIR,
  OutboundListenerIR,
  ProxyIdentity,
  ProxyIR,
  VirtualHostIR,
} from '../ir/types.js';
import { addressesOverlap } from '../ir/validate.js';
import { HBONE_PORT } from '../ir/types.js';
import { speaksHbone } from './hbone.js';
import { classifyProtocol, isHttp } from './protocol.js';
import { egressHostMatches, parseEgressHost } from './hosts.js';
import { resolvePeerAuthentication, type MtlsResolver } from './peer-authentication.js';
import { selectSidecar } from './sidecar.js';
import { selectorMatches, workloadLabels } from './selectors.js';
import { labeledServiceEndpoints, parseLocality, visibleServices, type MeshService } from './services.js';
import { endpointPort } from '../registry/endpoints.js';
import { applicableAuthorizationPolicies, applicableRequestAuthentications, type PolicyTarget } from './authorization.js';
import { jwtRulesOf } from './request-authentication.js';
import { resolveExtAuthzProviders, type MeshConfigInput } from './ext-authz.js';
import { clusterSettings, destinationRuleLookup, type DestinationRuleLookup } from './traffic/destination-rule.js';
import { applyLocalityLb, effectiveLocalitySetting, withTopologyLabels } from './traffic/locality.js';
import { expandHost, httpRoutesForHost, tcpRouteForHost, type RouteContext } from './traffic/routes.js';
import { egressShareKey } from './outbound-share.js';

/**
 * What the push context needs besides the registry snapshot: the control plane's mesh config (root
 * namespace, extension providers for CUSTOM authorization) and the JWKS documents the control plane
 * fetched, by `jwksUri` (or by issuer for OpenID discovery; see `jwksKey`).
 */
export interface BuildExtras {
  meshConfig?: MeshConfigInput;
  jwks?: ReadonlyMap<string, string>;
}

/**
 * The default outbound listeners (no Sidecar egress) skip ports below this: an unprivileged Envoy
 * cannot bind them, and a failed bind would reject the whole listener update (a NACK).
 */
export const FIRST_UNPRIVILEGED_PORT = 1024;

/** The default egress bind address (Istio's explicit-mode convention). */
export const DEFAULT_EGRESS_BIND = '127.0.0.1';

/** Istio's inbound cluster name for a workload port: `inbound|<port>||`. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/** Istio's outbound cluster name: `outbound|<port>|<subset>|<host>` (no subsets yet). */
export function outboundClusterName(port: number, host: string, subset = ''): string {
  return `outbound|${port}|${subset}|${host}`;
}

/**
 * Istio's upstream SNI for a service port: `outbound_.<port>_.<subset>_.<host>`, so
 * `outbound_.9080_._.b.demo.svc.cluster.local` without a subset (Istio's `BuildDNSSrvSubsetKey`).
 */
export function outboundSni(port: number, host: string, subset = ''): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/** Istio-like listener name `<address>_<port>`. */
export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

/** The outbound route configuration name: `<port>` on the default bind, else `<bind>_<port>`. */
export function routeConfigName(bind: string, port: number): string {
  return bind === DEFAULT_EGRESS_BIND ? `${port}` : `${bind}_${port}`;
}

interface Bound {
  address: string;
  port: number;
  what: string;
}

/** Mutable state of one build; everything ends up in the returned IR. */
class Builder {
  readonly warnings: string[] = [];
  private readonly seen = new Set<string>();
  readonly inbound: InboundListenerIR[] = [];
  readonly outbound: OutboundListenerIR[] = [];
  readonly clusters = new Map<string, ClusterIR>();
  readonly loadAssignments = new Map<string, LoadAssignmentIR>();
  /** Addresses already taken by a listener or the application. */
  readonly bound: Bound[] = [];
  /** The proxy workload's labels (VirtualService `sourceLabels`); set by `buildProxyIR`. */
  workloadLabels: Readonly<Record<string, string>> = {};
  /** The services visible to the proxy (route destinations resolve among them); set by `buildProxyIR`. */
  visible: readonly MeshService[] = [];
  /** DestinationRule lookup for this proxy (src/push/traffic/destination-rule.ts); set by `buildProxyIR`. */
  destinationRules: DestinationRuleLookup | undefined;
  /** The proxy's locality and its labels with Istio's topology labels (locality LB); set by `buildProxyIR`. */
  localityClient: { locality?: LocalityIR; labels: Readonly<Record<string, string>> } = { labels: {} };

  constructor(
    readonly snapshot: MeshSnapshot,
    readonly proxy: ProxyIdentity,
    readonly mtls: MtlsResolver,
    readonly authorization: readonly AuthzPolicyIR[],
    readonly jwtRules: readonly JwtRuleIR[],
  ) {}

  /** While the egress is built for sharing: every warning, in order, duplicates included. */
  recorder: string[] | undefined;

  warn = (msg: string): void => {
    this.recorder?.push(msg);
    if (this.seen.has(msg)) return;
    this.seen.add(msg);
    this.warnings.push(msg);
  };

  collision(address: string, port: number): Bound | undefined {
    return this.bound.find((b) => b.port === port && addressesOverlap(b.address, address));
  }

  addInbound(address: string, port: number, protocol: AppProtocol, endpoint: EndpointAddress, where: string): void {
    const name = listenerName(address, port);
    const clash = this.collision(address, port);
    if (clash) {
      this.warn(`${where}: inbound ${address}:${port} skipped, the address is taken by ${clash.what}`);
      return;
    }
    const cluster = inboundClusterName(port);
    if (this.clusters.has(cluster)) {
      this.warn(`${where}: inbound ${address}:${port} skipped, port ${port} already has an inbound listener`);
      return;
    }
    if ('ip' in endpoint && endpoint.port === port && addressesOverlap(endpoint.ip, address)) {
      this.warn(`${where}: inbound ${address}:${port} skipped, its application endpoint ${endpoint.ip}:${endpoint.port} is the listener itself`);
      return;
    }
    if ('ip' in endpoint) {
      const appClash = this.collision(endpoint.ip, endpoint.port);
      if (appClash) this.warn(`${where}: application endpoint ${endpoint.ip}:${endpoint.port} is also ${appClash.what}`);
    }
    const m = this.mtls.forPort(port);
    this.inbound.push({
      name,
      address,
      port,
      protocol,
      mtls: m.mode,
      mtlsSource: m.source,
      cluster,
      authorization: this.authorization.map((p) => structuredClone(p)),
      jwtRules: this.jwtRules.map((r) => structuredClone(r)),
    });
    this.clusters.set(cluster, { direction: 'inbound', name: cluster, port, protocol, endpoint });
    this.bound.push({ address, port, what: `inbound listener ${name}` });
    if ('ip' in endpoint) this.bound.push({ address: endpoint.ip, port: endpoint.port, what: `the application endpoint of ${cluster}` });
  }

  /**
   * Adds (once) the outbound cluster and load assignment of one service port, or of one
   * DestinationRule subset of it (`outbound|<port>|<subset>|<host>`), with the DestinationRule
   * that applies (src/push/traffic/destination-rule.ts): a subset's endpoints are the service's
   * endpoints carrying all the subset's labels; the merged traffic policy, upstream TLS
   * (ISTIO_MUTUAL overrides or DISABLE/SIMPLE/MUTUAL) and, from the proxy's locality, endpoint
   * priorities and locality weights (src/push/traffic/locality.ts). Building the whole-service
   * cluster also builds one cluster per subset of the rule, as Istio's CDS does.
   */
  outboundCluster(svc: MeshService, port: ServicePort, subset = ''): OutboundClusterIR {
    const name = outboundClusterName(port.number, svc.host, subset);
    const existing = this.clusters.get(name);
    if (existing?.direction === 'outbound') return existing;
    const dr = this.destinationRules?.(svc.host, svc.namespace);
    const settings = dr ? clusterSettings(dr, port.number, subset, this.warn) : undefined;
    let labeled = labeledServiceEndpoints(this.snapshot, svc, port, this.proxy.trustDomain, this.warn);
    if (subset) {
      if (!dr) {
        this.warn(`cluster ${name}: no DestinationRule for ${svc.host} defines subset ${subset}: the cluster has no endpoints`);
        labeled = [];
      } else if (settings?.unknownSubset) {
        this.warn(`cluster ${name}: ${dr.source} has no subset ${subset}: the cluster has no endpoints`);
        labeled = [];
      } else {
        const want = Object.entries(settings?.subsetLabels ?? {});
        labeled = labeled.filter((e) => want.every(([k, v]) => e.labels[k] === v));
      }
    }
    for (const e of labeled) {
      const source = this.snapshot.byKey.get(e.endpoint.source);
      if (source?.kind === 'WorkloadEntry' && speaksHbone(workloadLabels(source))) e.endpoint.hbone = true;
    }
    const sans = new Set(labeled.map((e) => e.endpoint.spiffeId));
    for (const san of svc.entry.spec.subjectAltNames ?? []) sans.add(san);
    const cluster: OutboundClusterIR = {
      direction: 'outbound',
      name,
      host: svc.host,
      port: port.number,
      serviceNamespace: svc.namespace,
      protocol: classifyProtocol(port.protocol, port.name),
      tls: { mode: 'ISTIO_MUTUAL', sni: outboundSni(port.number, svc.host, subset), subjectAltNames: [...sans].sort() },
    };
    if (subset) cluster.subset = subset;
    if (settings?.istioMutual?.sni) cluster.tls.sni = settings.istioMutual.sni;
    if (settings?.istioMutual?.subjectAltNames) cluster.tls.subjectAltNames = settings.istioMutual.subjectAltNames;
    if (settings?.clientTls) cluster.clientTls = settings.clientTls;
    const policy = settings?.policy;
    const withTopology = labeled.map((e) => ({ endpoint: e.endpoint, labels: withTopologyLabels(e.labels, e.endpoint.locality, e.network) }));
    const locality = dr ? applyLocalityLb(withTopology, this.localityClient, effectiveLocalitySetting(settings?.localityLbSetting), policy?.outlierDetection !== undefined) : undefined;
    const loadAssignment: LoadAssignmentIR = { clusterName: name, endpoints: locality ? locality.endpoints : labeled.map((e) => e.endpoint) };
    if (locality?.localityWeights) loadAssignment.localityWeights = locality.localityWeights;
    if (policy) {
      if (locality?.applied) policy.locality = { weighted: locality.weighted };
      cluster.trafficPolicy = policy;
    } else if (locality?.applied && dr) {
      cluster.trafficPolicy = { source: dr.source, locality: { weighted: locality.weighted } };
    }
    if (policy?.simpleLb === 'PASSTHROUGH') {
      this.warn(`cluster ${name}: loadBalancer PASSTHROUGH (${policy.source}) sends each connection to its original destination (Envoy ORIGINAL_DST); Skiff's outbound listeners are explicit (${DEFAULT_EGRESS_BIND}:<port>), so that is the listener address unless the traffic was redirected there`);
    }
    this.clusters.set(name, cluster);
    this.loadAssignments.set(name, loadAssignment);
    if (!subset && dr) {
      for (const s of dr.subsets) {
        if (s.name) this.outboundCluster(svc, port, s.name);
      }
    }
    return cluster;
  }

  /**
   * Adds (once) a plaintext STATIC cluster `outbound|<port>||<ip>` to an address outside the
   * registry (an external authorizer given by IP). A mesh cluster of that name is reused.
   */
  externalCluster(ip: string, port: number, protocol: 'HTTP' | 'HTTP2'): string {
    const name = outboundClusterName(port, ip);
    const existing = this.clusters.get(name);
    if (existing) return name;
    const cluster: ExternalClusterIR = { direction: 'external', name, port, endpoint: { ip, port }, protocol };
    this.clusters.set(name, cluster);
    return name;
  }

  /**
   * The route builders' view of this proxy for listener port `port` (src/push/traffic): a
   * destination resolves among the services visible to the proxy (`visible`, set before the
   * outbound listeners are built), by FQDN or by short name relative to the route's namespace;
   * its port is the one given, else the service's only port, else the listener port.
   */
  routeContext(port: number): RouteContext {
    return {
      proxyNamespace: this.proxy.namespace,
      proxyLabels: this.workloadLabels,
      port,
      warn: this.warn,
      cluster: (dest, namespace, where) => {
        const host = expandHost(dest.host, namespace);
        const svc = this.visible.find((s) => s.host.toLowerCase() === host);
        if (!svc) {
          this.warn(`${where}: host ${dest.host} is not a service visible to this proxy: not routed`);
          return undefined;
        }
        const want = dest.port ?? (svc.ports.length === 1 ? svc.ports[0]!.number : port);
        const sp = svc.ports.find((p) => p.number === want);
        if (!sp) {
          this.warn(`${where}: ${svc.host} has no port ${want}${dest.port === undefined ? ' (set destination.port: it has several)' : ''}: not routed`);
          return undefined;
        }
        return this.outboundCluster(svc, sp, dest.subset ?? '').name;
      },
    };
  }

  /**
   * Adds one outbound listener on `bind:port` for the service ports `pairs` (sorted by host).
   * `explicit` is true for an egress entry that names the port: its problems are warnings; a
   * port-less entry silently yields to a listener already on that address. Each HTTP virtual host
   * gets the routes of the host's VirtualService or Gateway API routes (`traffic/routes.ts`); a TCP
   * listener takes the weighted split of a VirtualService `tcp` route. The clusters those routes
   * name (subsets, other services) are added as they are resolved.
   */
  addOutbound(bind: string, port: number, pairs: Array<{ svc: MeshService; port: ServicePort }>, protocol: string | undefined, where: string, explicit: boolean): void {
    const name = listenerName(bind, port);
    const clash = this.collision(bind, port);
    if (clash) {
      if (explicit || !clash.what.startsWith('outbound')) this.warn(`${where}: outbound ${bind}:${port} skipped, the address is taken by ${clash.what}`);
      return;
    }
    if (pairs.length === 0) {
      this.warn(`${where}: no service matches port ${port}: no listener on ${bind}:${port}`);
      return;
    }
    const first = pairs[0]!;
    const wantHttp = protocol ? isHttp(classifyProtocol(protocol)) : isHttp(classifyProtocol(first.port.protocol, first.port.name));
    const kept = pairs.filter((p) => isHttp(classifyProtocol(p.port.protocol, p.port.name)) === wantHttp);
    for (const p of pairs) {
      if (!kept.includes(p)) {
        this.warn(`${where}: ${p.svc.host}:${p.port.number} is ${wantHttp ? 'TCP' : 'HTTP'} but listener ${name} is ${wantHttp ? 'HTTP' : 'TCP'}: not reachable there`);
      }
    }
    if (kept.length === 0) {
      this.warn(`${where}: no service on port ${port} speaks ${wantHttp ? 'HTTP' : 'TCP'}: no listener on ${bind}:${port}`);
      return;
    }
    if (!wantHttp) {
      const winner = kept[0]!;
      if (kept.length > 1) {
        this.warn(`${where}: TCP listener ${name} can forward to one service only: ${winner.svc.host} wins over ${kept.slice(1).map((p) => p.svc.host).join(', ')}`);
      }
      const cluster = this.outboundCluster(winner.svc, winner.port);
      const listener: OutboundListenerIR = { name, address: bind, port, protocol: 'TCP', tcpCluster: cluster.name };
      const tcp = tcpRouteForHost(this.snapshot, winner.svc, this.routeContext(port));
      if (tcp) {
        listener.tcpCluster = tcp.clusters[0]!.cluster;
        if (tcp.clusters.length > 1) listener.tcpWeightedClusters = tcp.clusters;
      }
      this.outbound.push(listener);
    } else {
      const clusters = kept.map((p) => this.outboundCluster(p.svc, p.port));
      const vhosts = virtualHosts(clusters, port);
      vhosts.forEach((vh, i) => {
        const routed = httpRoutesForHost(this.snapshot, kept[i]!.svc, this.routeContext(port));
        if (routed) {
          vh.routes = routed.routes;
          vh.routesSource = routed.source;
        }
      });
      this.outbound.push({
        name,
        address: bind,
        port,
        protocol: 'HTTP',
        routeConfig: { name: routeConfigName(bind, port), virtualHosts: vhosts },
      });
    }
    this.bound.push({ address: bind, port, what: `outbound listener ${name}` });
  }
}

/**
 * Computes the {@link ProxyIR} of `proxy` from `snapshot`. Never throws for configuration problems:
 * what cannot be honoured is left out and explained in `ir.warnings` (check the result with
 * `validate()` before translating).
 */
export function buildProxyIR(snapshot: MeshSnapshot, proxy: ProxyIdentity, extras: BuildExtras = {}): ProxyIR {
  const warnings: string[] = [];
  const early = (msg: string): void => void warnings.push(msg);
  const rootNamespace = extras.meshConfig?.rootNamespace || ROOT_NAMESPACE;
  const we = findOwnWorkload(snapshot, proxy, early);
  const labels = we ? workloadLabels(we) : { ...proxy.labels };
  const workloadRef = `${proxy.namespace}/${we?.metadata.name ?? proxy.workloadName ?? proxy.ip}`;
  const policies = [...(snapshot.peerAuthenticationsByNamespace.get(proxy.namespace) ?? [])];
  if (proxy.namespace !== rootNamespace) policies.push(...(snapshot.peerAuthenticationsByNamespace.get(rootNamespace) ?? []));
  const mtls = resolvePeerAuthentication(policies, proxy.namespace, labels, early, rootNamespace);
  const target: PolicyTarget = { namespace: proxy.namespace, labels, rootNamespace, ref: workloadRef };
  const authorization = applicableAuthorizationPolicies(snapshot, target, early);
  const jwtRules = jwtRulesOf(applicableRequestAuthentications(snapshot, target, early), extras.jwks, early);
  const b = new Builder(snapshot, proxy, mtls, authorization, jwtRules);
  for (const w of warnings) b.warn(w);

  const sidecars = [...(snapshot.sidecarsByNamespace.get(proxy.namespace) ?? [])];
  if (proxy.namespace !== rootNamespace) sidecars.push(...(snapshot.sidecarsByNamespace.get(rootNamespace) ?? []));
  const sidecar = selectSidecar(sidecars, proxy.namespace, labels, b.warn, rootNamespace);
  const services = visibleServices(snapshot, proxy.namespace, b.warn);
  b.workloadLabels = labels;
  b.visible = services;
  b.destinationRules = destinationRuleLookup(snapshot, { namespace: proxy.namespace, labels }, rootNamespace, b.warn);
  const ownLocality = parseLocality(we?.spec.locality) ?? proxy.locality;
  b.localityClient = { ...(ownLocality ? { locality: ownLocality } : {}), labels: withTopologyLabels(labels, ownLocality, we?.spec.network) };
  const ownServices = we
    ? [...(snapshot.servicesByWorkload.get(`${we.metadata.namespace}/${we.metadata.name}`) ?? [])]
    : snapshot.serviceEntries.filter((se) => se.metadata.namespace === proxy.namespace && se.spec.workloadSelector && selectorMatches(se.spec.workloadSelector.labels, labels));
  ownServices.sort((x, y) => (x.metadata.name < y.metadata.name ? -1 : x.metadata.name > y.metadata.name ? 1 : 0));

  const assumed: string[] = [];
  if (sidecar && (sidecar.spec.ingress?.length ?? 0) > 0) {
    sidecarIngress(b, sidecar);
  } else {
    defaultIngress(b, ownServices, we);
    const ports = b.inbound.map((l) => `${l.address}:${l.port} → ${describe(b.clusters.get(l.cluster))}`);
    assumed.push(
      ports.length
        ? `inbound listeners from its ServiceEntry ports (${ports.join(', ')})`
        : 'no inbound listeners (no ServiceEntry in its namespace selects it)',
    );
  }
  if (sidecar?.spec.outboundTrafficPolicy?.mode === 'ALLOW_ANY') {
    b.warn(`${resourceKey(sidecar)}: outboundTrafficPolicy ALLOW_ANY is not implemented: only mesh services are reachable`);
  }
  let share: { key: string; part: EgressPart } | undefined;
  if (sidecar && (sidecar.spec.egress?.length ?? 0) > 0) {
    share = sharedEgress(b, services, sidecar.spec.egress ?? [], resourceKey(sidecar), rootNamespace);
  } else {
    share = sharedEgress(b, services, DEFAULT_EGRESS, 'default egress', rootNamespace);
    const made = b.outbound.map((l) => `${l.address}:${l.port}`);
    assumed.push(
      `outbound listeners on ${DEFAULT_EGRESS_BIND}:<port> for every port (from ${FIRST_UNPRIVILEGED_PORT} up) of every mesh service (${made.length ? made.join(', ') : 'none'})`,
    );
  }
  if (assumed.length) b.warn(`${missingPart(sidecar)} for workload ${workloadRef}: assumed ${assumed.join('; ')}`);

  const extAuthzProviders = b.inbound.length > 0 ? extAuthz(b, services, authorization, extras.meshConfig) : [];
  let hbone: HboneInboundIR | undefined;
  if (speaksHbone(labels) && b.inbound.length > 0) {
    const clash = b.collision(proxy.ip, HBONE_PORT);
    if (clash) b.warn(`workload ${workloadRef} speaks HBONE but ${proxy.ip}:${HBONE_PORT} is taken by ${clash.what}: no HBONE listener`);
    else hbone = { address: proxy.ip, port: HBONE_PORT };
  }

  const identity: ProxyIdentity = { ...proxy, labels };
  if (ownLocality) identity.locality = ownLocality;
  const name = we?.metadata.name ?? proxy.workloadName;
  if (name !== undefined) identity.workloadName = name;
  const ir: ProxyIR = {
    proxy: identity,
    inbound: [...b.inbound].sort(byAddress),
    outbound: [...b.outbound].sort(byAddress),
    clusters: [...b.clusters.values()].sort(byName((c: ClusterIR) => c.name)),
    loadAssignments: [...b.loadAssignments.values()].sort(byName((l: LoadAssignmentIR) => l.clusterName)),
    extAuthzProviders,
    trustDomainAliases: [...new Set(extras.meshConfig?.trustDomainAliases ?? [])].filter((td) => td !== proxy.trustDomain),
    warnings: b.warnings,
    ...(hbone ? { hbone } : {}),
  };
  if (share) EGRESS_OF.set(ir, share);
  return ir;
}

/** Listener order in a {@link ProxyIR}: by port, then address. */
function byAddress(x: { port: number; address: string }, y: { port: number; address: string }): number {
  return x.port - y.port || (x.address < y.address ? -1 : x.address > y.address ? 1 : 0);
}

/** Order by a string key. */
function byName<T>(key: (t: T) => string): (x: T, y: T) => number {
  return (x: T, y: T): number => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0);
}

/**
 * Resolves the extension providers the CUSTOM policies name (adding the clusters they call) and
 * reports every provider that cannot be used, naming the policies that then deny what they match.
 */
function extAuthz(b: Builder, services: readonly MeshService[], policies: readonly AuthzPolicyIR[], meshConfig: MeshConfigInput | undefined): ExtAuthzProviderIR[] {
  const custom = policies.filter((p) => p.action === 'CUSTOM');
  if (custom.length === 0) return [];
  const providers = resolveExtAuthzProviders(
    custom.map((p) => p.provider ?? ''),
    meshConfig,
    {
      services,
      meshCluster: (svc, port) => b.outboundCluster(svc, port).name,
      externalCluster: (ip, port, protocol) => b.externalCluster(ip, port, protocol),
    },
  );
  for (const p of providers) {
    const users = custom.filter((c) => (c.provider ?? '') === p.name).map((c) => `AuthorizationPolicy/${c.namespace}/${c.name}`);
    if (p.error !== undefined) {
      b.warn(`extension provider ${JSON.stringify(p.name)} (used by ${users.join(', ')}) cannot be used: ${p.error}: those CUSTOM policies deny every request their rules match (as Istio)`);
      continue;
    }
    const c = b.clusters.get(p.cluster);
    if (p.kind === 'grpc' && c && c.direction === 'outbound' && c.protocol !== 'HTTP2') {
      b.warn(`extension provider ${p.name} is gRPC but port ${c.port} of ${c.host} is ${c.protocol}: declare the port protocol GRPC so its cluster speaks HTTP/2`);
    }
  }
  if (providers.length > 1) {
    b.warn(`CUSTOM policies of workload ${b.proxy.namespace} name ${providers.length} extension providers (${providers.map((p) => p.name).join(', ')}): Istio allows one per workload, so they deny every request their rules match`);
  }
  return providers;
}

/** The start of the "assumed defaults" log line: which configuration the workload lacks. */
function missingPart(sidecar: Sidecar | undefined): string {
  if (!sidecar) return 'no Sidecar';
  const ingress = (sidecar.spec.ingress?.length ?? 0) > 0;
  const egress = (sidecar.spec.egress?.length ?? 0) > 0;
  return `${resourceKey(sidecar)} has no ${ingress ? 'egress' : egress ? 'ingress' : 'ingress or egress'}`;
}

function describe(c: ClusterIR | undefined): string {
  if (!c || c.direction !== 'inbound') return '?';
  return 'pipe' in c.endpoint ? `unix://${c.endpoint.pipe}` : `${c.endpoint.ip}:${c.endpoint.port}`;
}

/**
 * Finds the proxy's own WorkloadEntry: by WORKLOAD_NAME in its namespace, else by its IP among the
 * WorkloadEntries of its namespace. Mismatches with the proxy's claims are reported; a WorkloadEntry
 * whose serviceAccount is not the proxy's (certificate-proven) identity is not used.
 */
function findOwnWorkload(snapshot: MeshSnapshot, proxy: ProxyIdentity, warn: (msg: string) => void): WorkloadEntry | undefined {
  let we: WorkloadEntry | undefined;
  if (proxy.workloadName) {
    we = snapshot.workloadsByName.get(`${proxy.namespace}/${proxy.workloadName}`);
    if (!we) warn(`WORKLOAD_NAME ${proxy.workloadName} names no WorkloadEntry in namespace ${proxy.namespace}: looking it up by address ${proxy.ip}`);
  }
  if (!we) {
    const candidates = (snapshot.workloadsByAddress.get(proxy.ip) ?? [])
      .filter((w) => w.metadata.namespace === proxy.namespace)
      .sort((x, y) => (x.metadata.name < y.metadata.name ? -1 : x.metadata.name > y.metadata.name ? 1 : 0));
    if (candidates.length > 1) warn(`${candidates.length} WorkloadEntries in ${proxy.namespace} have address ${proxy.ip}: using ${resourceKey(candidates[0]!)}`);
    we = candidates[0];
  }
  if (!we) {
    warn(`no WorkloadEntry for proxy ${proxy.nodeId}: using the labels from its node metadata`);
    return undefined;
  }
  if (we.spec.address && we.spec.address !== proxy.ip) {
    warn(`${resourceKey(we)} has address ${we.spec.address} but the proxy reports ${proxy.ip}: listening on ${proxy.ip}`);
  }
  const sa = we.spec.serviceAccount || 'default';
  if (sa !== proxy.serviceAccount) {
    // The certificate proves the identity, not the WorkloadEntry name a proxy claims: a proxy of
    // another service account never gets that workload's inbound config.
    warn(`${resourceKey(we)} has serviceAccount ${sa} but the proxy's identity is ${proxy.spiffeId}: not serving it as that workload`);
    return undefined;
  }
  return we;
}

/** Inbound listeners from `Sidecar.ingress[]`. */
function sidecarIngress(b: Builder, sidecar: Sidecar): void {
  (sidecar.spec.ingress ?? []).forEach((ing, i) => {
    const where = `${resourceKey(sidecar)} ingress[${i}]`;
    const address = ing.bind ?? b.proxy.ip;
    if (isIP(address) === 0) {
      b.warn(`${where}: bind ${JSON.stringify(address)} is not an IP address: skipped`);
      return;
    }
    const port = ing.port.number;
    const endpoint = resolveDefaultEndpoint(ing.defaultEndpoint, b.proxy.ip, port, where, b.warn);
    if (!endpoint) return;
    b.addInbound(address, port, classifyProtocol(ing.port.protocol, ing.port.name), endpoint, where);
  });
}

/** Inbound listeners for every port of the ServiceEntries that select the workload. */
function defaultIngress(b: Builder, ownServices: readonly ServiceEntry[], we: WorkloadEntry | undefined): void {
  const protocols = new Map<number, { protocol: AppProtocol; by: string }>();
  for (const se of ownServices) {
    for (const p of se.spec.ports ?? []) {
      const port = endpointPort({ ports: we?.spec.ports ?? {} }, p);
      const protocol = classifyProtocol(p.protocol, p.name);
      const where = `${resourceKey(se)} port ${p.name}`;
      const prior = protocols.get(port);
      if (prior) {
        if (prior.protocol !== protocol) b.warn(`${where}: workload port ${port} is ${protocol} here but ${prior.protocol} in ${prior.by}: using ${prior.protocol}`);
        continue;
      }
      protocols.set(port, { protocol, by: where });
      b.addInbound(b.proxy.ip, port, protocol, { ip: '127.0.0.1', port }, where);
    }
  }
}

/**
 * Resolves `Sidecar.ingress[].defaultEndpoint` (parsed by the resource layer's
 * `parseDefaultEndpoint`): `127.0.0.1:PORT`, `[::1]:PORT`, `0.0.0.0:PORT` / `[::]:PORT` (the
 * workload's own address, as in Istio) or `unix://<path>`. Unset means `127.0.0.1:<ingress port>`,
 * with a warning. An invalid value is reported and yields undefined.
 */
export function resolveDefaultEndpoint(value: string | undefined, workloadIp: string, ingressPort: number, where: string, warn: (msg: string) => void): EndpointAddress | undefined {
  if (value === undefined || value === '') {
    warn(`${where}: no defaultEndpoint: assumed 127.0.0.1:${ingressPort}`);
    return { ip: '127.0.0.1', port: ingressPort };
  }
  const parsed = parseDefaultEndpoint(value);
  if ('error' in parsed) {
    warn(`${where}: ${parsed.error}: skipped`);
    return undefined;
  }
  if (parsed.kind === 'unix') return { pipe: parsed.path };
  return { ip: parsed.host === '0.0.0.0' || parsed.host === '::' ? workloadIp : parsed.host, port: parsed.port };
}

/** Outbound listeners from egress entries: entries with a port first, then the catch-all ones. */
/** The egress of the proxies without a Sidecar egress section: every visible service. */
const DEFAULT_EGRESS: readonly IstioEgressListener[] = [{ hosts: ['*/*'] }];

/**
 * What building the egress added to a builder (src/push/outbound-share.ts); shared between the
 * proxies with the same sharing key, never modified. `sorted` holds the same objects in the order
 * a {@link ProxyIR} lists them (listeners by port and address, clusters and load assignments by
 * name).
 */
export interface EgressPart {
  outbound: readonly OutboundListenerIR[];
  clusters: readonly ClusterIR[];
  loadAssignments: readonly LoadAssignmentIR[];
  bound: readonly Bound[];
  /** Every warning raised, in order, duplicates included (replayed through `b.warn`). */
  warnings: readonly string[];
  sorted: { outbound: readonly OutboundListenerIR[]; clusters: readonly ClusterIR[]; loadAssignments: readonly LoadAssignmentIR[] };
}

/** The egress part and its sharing key each IR was built with (when it was shared). */
const EGRESS_OF = new WeakMap<ProxyIR, { key: string; part: EgressPart }>();

/**
 * The sharing key and egress part `ir` was built with, or undefined when its egress was built
 * for it alone. The IR's outbound listeners are exactly `part.sorted.outbound`; its outbound
 * clusters and load assignments include the part's, and may add more (extension providers).
 */
export function egressShareOf(ir: ProxyIR): { key: string; part: EgressPart } | undefined {
  return EGRESS_OF.get(ir);
}

/** The egress part built for sharing key `key` from `snapshot`, if a proxy's build made it. */
export function egressPartFor(snapshot: MeshSnapshot, key: string): EgressPart | undefined {
  return EGRESS_PARTS.get(snapshot)?.get(key);
}

/** Built egress parts by snapshot and sharing key (src/push/outbound-share.ts); weakly held. */
const EGRESS_PARTS = new WeakMap<MeshSnapshot, Map<string, EgressPart>>();

/**
 * {@link egress}, built once per snapshot and sharing key (`egressShareKey`) and replayed into
 * other proxies' builders: the same listeners, clusters, load assignments, taken addresses and
 * warnings as building it would give.
 */
function sharedEgress(b: Builder, services: readonly MeshService[], entries: readonly IstioEgressListener[], owner: string, rootNamespace: string): { key: string; part: EgressPart } | undefined {
  const key = egressShareKey(b.snapshot, {
    namespace: b.proxy.namespace,
    rootNamespace,
    trustDomain: b.proxy.trustDomain,
    ip: b.proxy.ip,
    sidecar: owner,
    egress: entries,
    labels: b.workloadLabels,
    locality: b.localityClient,
    bound: b.bound,
  });
  if (key === undefined) {
    egress(b, services, entries, owner);
    return undefined;
  }
  let parts = EGRESS_PARTS.get(b.snapshot);
  const have = parts?.get(key);
  if (have) {
    b.outbound.push(...have.outbound);
    for (const c of have.clusters) b.clusters.set(c.name, c);
    for (const la of have.loadAssignments) b.loadAssignments.set(la.clusterName, la);
    b.bound.push(...have.bound);
    for (const w of have.warnings) b.warn(w);
    return { key, part: have };
  }
  const clustersBefore = new Set(b.clusters.keys());
  const boundBefore = b.bound.length;
  const outboundBefore = b.outbound.length;
  const warnings: string[] = [];
  b.recorder = warnings;
  try {
    egress(b, services, entries, owner);
  } finally {
    b.recorder = undefined;
  }
  const clusters = [...b.clusters.values()].filter((c) => !clustersBefore.has(c.name));
  const outbound = b.outbound.slice(outboundBefore);
  const loadAssignments = clusters.map((c) => b.loadAssignments.get(c.name)).filter((la): la is LoadAssignmentIR => la !== undefined);
  const part: EgressPart = {
    outbound,
    clusters,
    loadAssignments,
    bound: b.bound.slice(boundBefore),
    warnings,
    sorted: {
      outbound: [...outbound].sort(byAddress),
      clusters: [...clusters].sort(byName((c: ClusterIR) => c.name)),
      loadAssignments: [...loadAssignments].sort(byName((l: LoadAssignmentIR) => l.clusterName)),
    },
  };
  if (!parts) {
    parts = new Map();
    EGRESS_PARTS.set(b.snapshot, parts);
  }
  parts.set(key, part);
  return { key, part };
}

function egress(b: Builder, services: readonly MeshService[], entries: readonly IstioEgressListener[], owner: string): void {
  const indexed = entries.map((e, i) => ({ e, i }));
  const ordered = [...indexed.filter((x) => x.e.port), ...indexed.filter((x) => !x.e.port)];
  for (const { e, i } of ordered) {
    const where = owner === 'default egress' ? owner : `${owner} egress[${i}]`;
    const bind = e.bind ?? DEFAULT_EGRESS_BIND;
    if (isIP(bind) === 0) {
      b.warn(`${where}: bind ${JSON.stringify(bind)} is not an IP address: skipped`);
      continue;
    }
    const patterns = e.hosts.map((h) => parseEgressHost(h, b.proxy.namespace, (m) => b.warn(`${where}: ${m}`)));
    const matched = services.filter((s) => patterns.some((p) => egressHostMatches(p, s.host, s.namespace)));
    const pairs = matched.flatMap((svc) => svc.ports.map((port) => ({ svc, port })));
    if (e.port) {
      const n = e.port.number;
      b.addOutbound(bind, n, pairs.filter((p) => p.port.number === n), e.port.protocol, where, true);
      continue;
    }
    const ports = [...new Set(pairs.map((p) => p.port.number))].sort((x, y) => x - y);
    for (const n of ports) {
      if (owner === 'default egress' && n < FIRST_UNPRIVILEGED_PORT) {
        const hosts = pairs.filter((p) => p.port.number === n).map((p) => p.svc.host);
        b.warn(`${where}: no outbound listener on ${bind}:${n} for ${hosts.join(', ')}: ports below ${FIRST_UNPRIVILEGED_PORT} need privileges to bind (declare a Sidecar egress port to reach them)`);
        continue;
      }
      b.addOutbound(bind, n, pairs.filter((p) => p.port.number === n), undefined, where, false);
    }
  }
}

/**
 * Virtual hosts of an outbound HTTP route configuration, one per cluster (sorted by host). Domains:
 * the host and `host:port`; short names (the first DNS label, and `name.namespace`,
 * `name.namespace.svc` for `*.svc.*` hosts), with and without `:port`, only when no other virtual
 * host of the configuration claims them; and `*` when the listener serves exactly one service, so
 * an application can call `http://127.0.0.1:<port>/` without setting a Host header.
 */
export function virtualHosts(clusters: readonly OutboundClusterIR[], port: number): VirtualHostIR[] {
  const full = new Set(clusters.map((c) => c.host.toLowerCase()));
  const shortCount = new Map<string, number>();
  const shorts = clusters.map((c) => shortNames(c.host));
  for (const list of shorts) for (const s of list) shortCount.set(s, (shortCount.get(s) ?? 0) + 1);
  return clusters.map((c, i) => {
    const domains = [c.host, `${c.host}:${port}`];
    for (const s of shorts[i] ?? []) {
      if (shortCount.get(s) === 1 && !full.has(s)) domains.push(s, `${s}:${port}`);
    }
    if (clusters.length === 1) domains.push('*');
    return { name: `${c.host}:${port}`, domains, cluster: c.name };
  });
}

function shortNames(host: string): string[] {
  const h = host.toLowerCase();
  if (h.startsWith('*') || isIP(h) !== 0) return [];
  const labels = h.split('.');
  if (labels.length < 2) return [];
  const out = [labels[0]!];
  if (labels.length > 3 && labels[2] === 'svc') out.push(`${labels[0]}.${labels[1]}`, `${labels[0]}.${labels[1]}.svc`);
  return out;
}
