/**
 * The intermediate representation (IR): everything one proxy needs, as plain data, computed by the
 * push context (`src/push/`) and consumed by the translators (`src/translate/envoy/`). It imports
 * nothing from resources or xDS: it names listeners, clusters and endpoints in the data plane's
 * terms (Istio's naming, DESIGN.md §6) but carries no Envoy message shapes.
 *
 * Every value is JSON-serialisable so a debug view can print the IR as it is.
 */

/**
 * Who a connected proxy is: from its xDS node id and metadata (Istio's form, DESIGN.md §6), checked
 * against its client certificate by the xDS server.
 */
export interface ProxyIdentity {
  /** The raw node id, `sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`. */
  nodeId: string;
  /** The workload's IP address (IPv4 or IPv6) from the node id. */
  ip: string;
  namespace: string;
  /** From node metadata SERVICE_ACCOUNT; `default` when unset. */
  serviceAccount: string;
  /** From node metadata WORKLOAD_NAME: the name of this workload's WorkloadEntry. */
  workloadName?: string;
  /** Workload labels from node metadata LABELS (used when no WorkloadEntry is found). */
  labels: Record<string, string>;
  /** SPIFFE trust domain, e.g. `cluster.local`. */
  trustDomain: string;
  /** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
  spiffeId: string;
}

/** Effective PeerAuthentication mode of one inbound port (Istio's MutualTLS.Mode without UNSET). */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/**
 * The application protocol of a port: `HTTP` (HTTP/1.1, Istio `HTTP`), `HTTP2` (Istio `HTTP2`,
 * `GRPC`, `GRPC-WEB`: HTTP handled by Envoy, HTTP/2 to the upstream) or `TCP` (everything else,
 * including `TLS` and `HTTPS` which Envoy passes through as bytes).
 */
export type AppProtocol = 'HTTP' | 'HTTP2' | 'TCP';

/** A socket address (IP literal and port 1-65535) or a Unix socket path. */
export type EndpointAddress = { ip: string; port: number } | { pipe: string };

/**
 * One inbound listener: the workload accepts mesh traffic on `address:port` and forwards it to the
 * local application through the inbound cluster `cluster`.
 */
export interface InboundListenerIR {
  /** Istio-like name `<address>_<port>`. */
  name: string;
  /** The workload's address (or the Sidecar ingress `bind`). */
  address: string;
  port: number;
  /** HTTP and HTTP2 ports go through the HTTP connection manager; TCP ports through tcp_proxy. */
  protocol: AppProtocol;
  /** The effective PeerAuthentication mode for this port. */
  mtls: MtlsMode;
  /** Which policy decided `mtls` (`PeerAuthentication/<ns>/<name>` or `default`), for debugging. */
  mtlsSource: string;
  /** The inbound cluster name, `inbound|<port>||`. */
  cluster: string;
}

/** An HTTP virtual host of an outbound route configuration: requests whose Host is in `domains`. */
export interface VirtualHostIR {
  /** `<host>:<port>`. */
  name: string;
  /** Host header values (with and without `:port`); unique within the route configuration. */
  domains: string[];
  /** The outbound cluster every request is routed to. */
  cluster: string;
}

/** The route configuration (served over RDS) of an outbound HTTP listener. */
export interface RouteConfigIR {
  /** `<port>` for the default bind 127.0.0.1, else `<bind>_<port>`. */
  name: string;
  virtualHosts: VirtualHostIR[];
}

/**
 * One outbound listener: the local application connects to `address:port` and Envoy forwards to a
 * mesh service, by Host header (HTTP) or to the single cluster `tcpCluster` (TCP).
 */
export interface OutboundListenerIR {
  /** `<address>_<port>`. */
  name: string;
  /** The Sidecar egress `bind` (default 127.0.0.1). */
  address: string;
  port: number;
  protocol: 'HTTP' | 'TCP';
  /** Set when `protocol` is HTTP. */
  routeConfig?: RouteConfigIR;
  /** Set when `protocol` is TCP. */
  tcpCluster?: string;
}

/** Upstream TLS of an outbound cluster: Istio mutual TLS with SPIFFE SVIDs. */
export interface UpstreamTlsIR {
  mode: 'ISTIO_MUTUAL';
  /** `outbound_.<port>_._.<host>`. */
  sni: string;
  /**
   * The URI SANs the peer certificate may carry: the SPIFFE IDs of the destination workloads (and
   * a ServiceEntry's `subjectAltNames`). Sorted, unique.
   */
  subjectAltNames: string[];
}

/** A cluster for traffic from the mesh to the local application (static endpoint). */
export interface InboundClusterIR {
  direction: 'inbound';
  /** `inbound|<port>||`. */
  name: string;
  port: number;
  protocol: AppProtocol;
  /** The application endpoint (`defaultEndpoint`). */
  endpoint: EndpointAddress;
}

/** A cluster for traffic to a mesh service; its endpoints come from a load assignment (EDS). */
export interface OutboundClusterIR {
  direction: 'outbound';
  /** `outbound|<port>||<host>`. */
  name: string;
  /** The service host and port number. */
  host: string;
  port: number;
  /** Namespace of the ServiceEntry that defines the service. */
  serviceNamespace: string;
  protocol: AppProtocol;
  tls: UpstreamTlsIR;
}

export type ClusterIR = InboundClusterIR | OutboundClusterIR;

/** Where an endpoint runs: Istio's `region/zone/subzone`. */
export interface LocalityIR {
  region?: string;
  zone?: string;
  subZone?: string;
}

/** One upstream endpoint of an outbound cluster. */
export interface EndpointIR {
  ip: string;
  port: number;
  /** Load balancing weight ≥ 1, when set. */
  weight?: number;
  locality?: LocalityIR;
  /** The SPIFFE ID the endpoint's certificate carries. */
  spiffeId: string;
  /** `WorkloadEntry/<ns>/<name>` or `ServiceEntry/<ns>/<name>#endpoints[i]`, for debugging. */
  source: string;
}

/** The endpoints of one outbound cluster (served over EDS as a ClusterLoadAssignment). */
export interface LoadAssignmentIR {
  clusterName: string;
  endpoints: EndpointIR[];
}

/** The whole per-proxy slice of the mesh. */
export interface ProxyIR {
  proxy: ProxyIdentity;
  inbound: InboundListenerIR[];
  outbound: OutboundListenerIR[];
  clusters: ClusterIR[];
  loadAssignments: LoadAssignmentIR[];
  /** Assumptions and dropped configuration, each a sentence for the control plane's log. */
  warnings: string[];
}
