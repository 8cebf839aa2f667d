/**
 * TLS for Istio-style mutual TLS with SPIFFE SVIDs (DESIGN.md §6): the workload certificate
 * (`default`) and the trust bundle (`ROOTCA`) come over SDS from the local node agent through the
 * `sds-grpc` cluster that the agent's bootstrap defines; the private key never leaves the VM.
 *
 * Follows envoy/extensions/transport_sockets/tls/v3/{tls,common,secret}.proto and Istio's
 * secret names and ALPN values (so Istio sidecars and Skiff sidecars accept each other).
 */
import { isIP } from 'node:net';
import type { AppProtocol, OutboundClusterIR, ProxyIdentity } from '../../ir/types.js';
import { ExtensionType, FilterName } from './common.js';
import type { CommonTlsContext, ConfigSource, FileUpstreamTlsContext, SdsSecretConfig, SubjectAltNameMatcher, TransportSocket } from './envoy-types.js';
import { duration } from '../../xds/protos/loader.js';

/** The cluster (in the agent's bootstrap) that reaches the agent's SDS server. */
export const SDS_CLUSTER = 'sds-grpc';
/** SDS name of the workload certificate and key (Istio's `default`). */
export const SECRET_CERTIFICATE = 'default';
/** SDS name of the trust bundle validation context (Istio's `ROOTCA`). */
export const SECRET_ROOT_CA = 'ROOTCA';

/**
 * ALPN values a Skiff inbound TLS chain accepts, in the server's order of preference (Envoy picks
 * the first of these the client offers). Istio clients offer `istio-http/1.0`, `istio-http/1.1`
 * or `istio-h2` for HTTP and `istio-peer-exchange`, `istio` for TCP. `istio-peer-exchange` comes
 * last: choosing it makes an Istio client run its TCP metadata exchange, which Skiff does not
 * implement, so `istio` is preferred whenever the client also offers it.
 */
export const INBOUND_ALPN = ['h2', 'http/1.1', 'istio-h2', 'istio-http/1.1', 'istio-http/1.0', 'istio', 'istio-peer-exchange'];

/**
 * ALPN offered to upstream mesh peers: HTTP/1.1 clusters `istio-http/1.1`, `istio`; HTTP/2
 * clusters `istio-h2`, `istio`; TCP clusters `istio-peer-exchange`, `istio` (Istio's values).
 */
export function upstreamAlpn(protocol: AppProtocol): string[] {
  switch (protocol) {
    case 'HTTP':
      return ['istio-http/1.1', 'istio'];
    case 'HTTP2':
      return ['istio-h2', 'istio'];
    case 'TCP':
      return ['istio-peer-exchange', 'istio'];
  }
}

/**
 * The SDS config source: gRPC to the `sds-grpc` cluster, v3, waiting for the secret without a
 * timeout (as Istio does: a listener must not start without its certificate).
 */
export function sdsConfig(): ConfigSource {
  return {
    apiConfigSource: { apiType: 'GRPC', transportApiVersion: 'V3', grpcServices: [{ envoyGrpc: { clusterName: SDS_CLUSTER } }], setNodeOnFirstMessageOnly: true },
    initialFetchTimeout: duration(0),
    resourceApiVersion: 'V3',
  };
}

function sdsSecret(name: string): SdsSecretConfig {
  return { name, sdsConfig: sdsConfig() };
}

function commonTlsContext(alpn: string[], sanMatchers: CommonTlsContext['combinedValidationContext']['defaultValidationContext']): CommonTlsContext {
  return {
    tlsCertificateSdsSecretConfigs: [sdsSecret(SECRET_CERTIFICATE)],
    combinedValidationContext: { defaultValidationContext: sanMatchers, validationContextSdsSecretConfig: sdsSecret(SECRET_ROOT_CA) },
    alpnProtocols: alpn,
  };
}

/**
 * The transport socket of an inbound mTLS filter chain: the workload SVID, client certificates
 * required and verified against the trust bundle, and any URI SAN in the proxy's trust domain
 * (`spiffe://<td>/` prefix) or in one of its aliases accepted. Which identities may call is
 * authorization's job.
 */
export function downstreamTransportSocket(proxy: ProxyIdentity, trustDomainAliases: readonly string[] = [], alpn: readonly string[] = INBOUND_ALPN): TransportSocket {
  return {
    name: FilterName.TlsTransportSocket,
    typedConfig: {
      '@type': ExtensionType.DownstreamTlsContext,
      commonTlsContext: commonTlsContext([...alpn], {
        matchTypedSubjectAltNames: [proxy.trustDomain, ...trustDomainAliases].map((td) => ({ sanType: 'URI' as const, matcher: { prefix: `spiffe://${td}/` } })),
      }),
      requireClientCertificate: { value: true },
    },
  };
}

/**
 * The transport socket of an outbound cluster: the workload SVID as client certificate, Istio's
 * SNI, ALPN by protocol, and the peer's URI SAN required to be exactly one of the destination
 * workloads' SPIFFE IDs (any ID in the proxy's trust domain when the cluster has none yet).
 */
export function upstreamTransportSocket(cluster: OutboundClusterIR, proxy: ProxyIdentity, alpn: readonly string[] = upstreamAlpn(cluster.protocol)): TransportSocket {
  const sans = cluster.tls.subjectAltNames;
  return {
    name: FilterName.TlsTransportSocket,
    typedConfig: {
      '@type': ExtensionType.UpstreamTlsContext,
      commonTlsContext: commonTlsContext([...alpn], {
        matchTypedSubjectAltNames:
          sans.length > 0
            ? sans.map((s) => ({ sanType: 'URI' as const, matcher: { exact: s } }))
            : [{ sanType: 'URI', matcher: { prefix: `spiffe://${proxy.trustDomain}/` } }],
      }),
      sni: cluster.tls.sni,
    },
  };
}

/**
 * The transport socket of a cluster with a DestinationRule `tls` other than ISTIO_MUTUAL
 * (Istio `ClientTLSSettings`, https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings),
 * following Istio's upstream TLS context for files on the proxy's machine:
 *
 * - DISABLE: none (plaintext).
 * - SIMPLE: TLS originated by the proxy. The server certificate is verified against
 *   `caCertificates` (a file), else the system trust store (`system_root_certs`, Istio's
 *   behaviour when no CA is given); `insecureSkipVerify` turns verification off. When
 *   `subjectAltNames` are set the certificate must carry one of them (DNS names, URIs, IP addresses
 *   by their form). SNI: `sni`, else the cluster host when it is a DNS name. ALPN `h2` for HTTP/2
 *   clusters (as Istio), none otherwise.
 * - MUTUAL: SIMPLE plus the client certificate chain and private key (`clientCertificate`,
 *   `privateKey` files).
 *
 * The files are read by Envoy (DataSource `filename`): a missing file makes Envoy reject the cluster.
 */
export function clientTransportSocket(cluster: OutboundClusterIR): TransportSocket | undefined {
  const tls = cluster.clientTls;
  if (!tls || tls.mode === 'DISABLE') return undefined;
  const ctx: FileUpstreamTlsContext = { commonTlsContext: {} };
  const common = ctx.commonTlsContext;
  if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
    common.tlsCertificates = [{ certificateChain: { filename: tls.clientCertificate }, privateKey: { filename: tls.privateKey } }];
  }
  if (!tls.insecureSkipVerify) {
    const validation: NonNullable<FileUpstreamTlsContext['commonTlsContext']['validationContext']> = tls.caCertificates ? { trustedCa: { filename: tls.caCertificates } } : { systemRootCerts: {} };
    if (tls.subjectAltNames.length > 0) validation.matchTypedSubjectAltNames = tls.subjectAltNames.map(sanMatcher);
    common.validationContext = validation;
  }
  const h2 = cluster.protocol === 'HTTP2' || cluster.trafficPolicy?.connectionPool?.h2Upgrade === true;
  if (h2) common.alpnProtocols = ['h2'];
  const sni = tls.sni ?? (isIP(cluster.host) === 0 && !cluster.host.includes('*') ? cluster.host : undefined);
  if (sni) ctx.sni = sni;
  return { name: FilterName.TlsTransportSocket, typedConfig: { '@type': ExtensionType.UpstreamTlsContext, ...ctx } };
}

/** A SAN matcher by the value's form: `scheme://…` a URI, an IP literal an IP address, else a DNS name. */
function sanMatcher(san: string): SubjectAltNameMatcher {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(san)) return { sanType: 'URI', matcher: { exact: san } };
  if (isIP(san) !== 0) return { sanType: 'IP_ADDRESS', matcher: { exact: san } };
  return { sanType: 'DNS', matcher: { exact: san } };
}
