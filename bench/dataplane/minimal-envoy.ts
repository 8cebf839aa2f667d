/**
 * The hand-written baseline of the data-plane benchmark: a minimal static Envoy pair with the same
 * mTLS as two Skiff sidecars (same Envoy binary, same SVIDs and trust bundle), and nothing else.
 *
 * - client Envoy: listener `<clientIp>:<port>` (plaintext HTTP from the app) → HTTP connection
 *   manager (router only) → cluster `server`: `<serverIp>:<mtlsPort>`, TLS with the client's SVID,
 *   the trust bundle as validation context, SNI and ALPN `istio-http/1.1` like an Istio sidecar,
 *   HTTP/1.1 upstream.
 * - server Envoy: listener `<serverIp>:<mtlsPort>`: TLS requiring a client certificate that chains
 *   to the trust bundle → HTTP connection manager (router only) → cluster `app`: the backend.
 *
 * No access log, no RBAC, no stats tags, no tracing: the floor of what Envoy costs for mTLS HTTP.
 * Proto fields follow Envoy's v3 API (`envoy.config.bootstrap.v3.Bootstrap`,
 * `envoy.extensions.transport_sockets.tls.v3.{Upstream,Downstream}TlsContext`).
 */

/** Files and addresses of one side of the pair. */
export interface MinimalSide {
  /** Envoy admin port (on 127.0.0.1 of the side's network namespace). */
  adminPort: number;
  /** PEM files: the side's SVID chain (leaf first), its key, the trust bundle. */
  certChainFile: string;
  keyFile: string;
  trustBundleFile: string;
}

function tlsCertificate(side: MinimalSide): Record<string, unknown> {
  return {
    tls_certificates: [{ certificate_chain: { filename: side.certChainFile }, private_key: { filename: side.keyFile } }],
    validation_context: { trusted_ca: { filename: side.trustBundleFile } },
  };
}

function admin(side: MinimalSide): Record<string, unknown> {
  return { address: { socket_address: { address: '127.0.0.1', port_value: side.adminPort } } };
}

function hcm(statPrefix: string, cluster: string): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: statPrefix,
      route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    },
  };
}

/** The client-side bootstrap (JSON text; Envoy reads JSON as YAML). */
export function minimalClientBootstrap(opts: MinimalSide & { listenIp: string; listenPort: number; serverIp: string; serverPort: number; sni: string }): string {
  return JSON.stringify({
    admin: admin(opts),
    static_resources: {
      listeners: [
        {
          name: 'outbound',
          address: { socket_address: { address: opts.listenIp, port_value: opts.listenPort } },
          filter_chains: [{ filters: [hcm('outbound', 'server')] }],
        },
      ],
      clusters: [
        {
          name: 'server',
          type: 'STATIC',
          connect_timeout: '5s',
          load_assignment: { cluster_name: 'server', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: opts.serverIp, port_value: opts.serverPort } } } }] }] },
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
              sni: opts.sni,
              common_tls_context: { ...tlsCertificate(opts), alpn_protocols: ['istio-http/1.1', 'istio', 'http/1.1'] },
            },
          },
        },
      ],
    },
  });
}

/** The server-side bootstrap (JSON text). */
export function minimalServerBootstrap(opts: MinimalSide & { listenIp: string; listenPort: number; appIp: string; appPort: number }): string {
  return JSON.stringify({
    admin: admin(opts),
    static_resources: {
      listeners: [
        {
          name: 'inbound',
          address: { socket_address: { address: opts.listenIp, port_value: opts.listenPort } },
          filter_chains: [
            {
              filters: [hcm('inbound', 'app')],
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                  require_client_certificate: true,
                  common_tls_context: { ...tlsCertificate(opts), alpn_protocols: ['istio-http/1.1', 'istio', 'http/1.1'] },
                },
              },
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'app',
          type: 'STATIC',
          connect_timeout: '5s',
          load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: opts.appIp, port_value: opts.appPort } } } }] }] },
        },
      ],
    },
  });
}
