/**
 * xDS security for proxyless gRPC (gRFC A29): TLS contexts that name certificate provider
 * instances from the client's bootstrap instead of SDS secrets. grpc-js-xds refuses SDS secret
 * configs, `tls_params` and `combined_validation_context.validation_context_sds_secret_config`, so
 * these contexts carry only what it understands: `tls_certificate_provider_instance`,
 * `validation_context.ca_certificate_provider_instance` and, upstream, the exact SPIFFE IDs the
 * peer must present (`match_subject_alt_names`, which grpc-js-xds checks against every SAN).
 *
 * Follows envoy/extensions/transport_sockets/tls/v3/{tls,common}.proto.
 */
import type { OutboundClusterIR, ProxyIdentity } from '../../ir/types.js';
import { ExtensionType, FilterName } from '../envoy/common.js';
import { CERT_PROVIDER_INSTANCE } from './names.js';

/** `StringMatcher` as grpc-js-xds applies it to SANs. */
export type SanMatcher = { exact: string } | { prefix: string };

/** `CommonTlsContext` with certificate provider instances. */
export interface ProviderTlsContext {
  tlsCertificateProviderInstance: { instanceName: string };
  validationContext: { caCertificateProviderInstance: { instanceName: string }; matchSubjectAltNames?: SanMatcher[] };
}

/** A `transport_socket` named `envoy.transport_sockets.tls` with a typed TLS context. */
export interface GrpcTransportSocket {
  name: string;
  typedConfig: { '@type': string; commonTlsContext: ProviderTlsContext; requireClientCertificate?: { value: boolean } };
}

function commonContext(sans?: SanMatcher[]): ProviderTlsContext {
  return {
    tlsCertificateProviderInstance: { instanceName: CERT_PROVIDER_INSTANCE },
    validationContext: { caCertificateProviderInstance: { instanceName: CERT_PROVIDER_INSTANCE }, ...(sans ? { matchSubjectAltNames: sans } : {}) },
  };
}

/**
 * The upstream TLS of an outbound cluster for a proxyless client: its SVID as client certificate,
 * the trust bundle, and the server's URI SAN required to be one of the destination workloads'
 * SPIFFE IDs (any ID in the proxy's trust domain while the cluster has none).
 */
export function grpcUpstreamTransportSocket(cluster: OutboundClusterIR, proxy: ProxyIdentity): GrpcTransportSocket {
  const sans = cluster.tls.subjectAltNames;
  return {
    name: FilterName.TlsTransportSocket,
    typedConfig: {
      '@type': ExtensionType.UpstreamTlsContext,
      commonTlsContext: commonContext(sans.length > 0 ? sans.map((s) => ({ exact: s })) : [{ prefix: `spiffe://${proxy.trustDomain}/` }]),
    },
  };
}

/**
 * The downstream TLS of an xDS-enabled server's mTLS filter chain: its SVID, client certificates
 * required and verified against the trust bundle. Which identities may call is the RBAC filter's job
 * (grpc-js-xds does not apply SAN matchers on the server side).
 */
export function grpcDownstreamTransportSocket(): GrpcTransportSocket {
  return {
    name: FilterName.TlsTransportSocket,
    typedConfig: { '@type': ExtensionType.DownstreamTlsContext, commonTlsContext: commonContext(), requireClientCertificate: { value: true } },
  };
}
