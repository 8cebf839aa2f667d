/**
 * Shared pieces of the Envoy translator: type URLs of the extension configs Skiff embeds, filter
 * and address helpers, and the content-hashed {@link VersionedResource} wrapper.
 */
import { createHash } from 'node:crypto';
import { encodeAny } from '../../xds/protos/loader.js';
import type { VersionedResource } from '../../xds/types.js';
import type { EndpointAddress } from '../../ir/types.js';
import type { Address, NamedFilter } from './envoy-types.js';

/** Type URLs of the typed configs embedded in Skiff's resources. */
export const ExtensionType = {
  HttpConnectionManager: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  TcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  Router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  TlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  DownstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  UpstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  HttpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  HttpRbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  NetworkRbac: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  HttpExtAuthz: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  NetworkExtAuthz: 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
  JwtAuthn: 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  UriTemplateMatch: 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig',
  InternalUpstream: 'type.googleapis.com/envoy.extensions.transport_sockets.internal_upstream.v3.InternalUpstreamTransport',
  ProxyProtocolUpstream: 'type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport',
  ProxyProtocolListener: 'type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol',
  RawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  SetFilterState: 'type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config',
  HttpFault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  Cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  CorsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  PreviousHostsPredicate: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  PreviousPrioritiesConfig: 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
} as const;

/** The Envoy extension names the typed configs above are registered under. */
export const FilterName = {
  HttpConnectionManager: 'envoy.filters.network.http_connection_manager',
  TcpProxy: 'envoy.filters.network.tcp_proxy',
  Router: 'envoy.filters.http.router',
  TlsInspector: 'envoy.filters.listener.tls_inspector',
  TlsTransportSocket: 'envoy.transport_sockets.tls',
  HttpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  HttpRbac: 'envoy.filters.http.rbac',
  NetworkRbac: 'envoy.filters.network.rbac',
  HttpExtAuthz: 'envoy.filters.http.ext_authz',
  NetworkExtAuthz: 'envoy.filters.network.ext_authz',
  JwtAuthn: 'envoy.filters.http.jwt_authn',
  InternalUpstream: 'envoy.transport_sockets.internal_upstream',
  ProxyProtocolUpstream: 'envoy.transport_sockets.upstream_proxy_protocol',
  ProxyProtocolListener: 'envoy.filters.listener.proxy_protocol',
  RawBuffer: 'envoy.transport_sockets.raw_buffer',
  SetFilterState: 'envoy.filters.http.set_filter_state',
  HttpFault: 'envoy.filters.http.fault',
  Cors: 'envoy.filters.http.cors',
  PreviousHosts: 'envoy.retry_host_predicates.previous_hosts',
  PreviousPriorities: 'envoy.retry_priorities.previous_priorities',
} as const;

/** The HTTP router filter (always the last HTTP filter). */
export function routerFilter(): NamedFilter {
  return { name: FilterName.Router, typedConfig: { '@type': ExtensionType.Router } };
}

/** An Envoy `Address` for an IP and port. */
export function socketAddress(ip: string, port: number): Address {
  return { socketAddress: { address: ip, portValue: port } };
}

/** An Envoy `Address` for an IR endpoint (IP:port or Unix socket path). */
export function endpointAddress(ep: EndpointAddress): Address {
  return 'pipe' in ep ? { pipe: { path: ep.pipe } } : socketAddress(ep.ip, ep.port);
}

/** Characters of the hex SHA-256 digest kept as a resource version (as in `xds/cache/version.ts`). */
const VERSION_CHARS = 16;

/**
 * Encodes `message` as `typeUrl` (strictly: an unknown field throws `UnknownFieldError`) and
 * returns it with its content version, the first 16 hex digits of SHA-256 of the bytes.
 */
export function versioned(typeUrl: string, name: string, message: object): VersionedResource {
  const resource = encodeAny(typeUrl, message);
  return { name, version: createHash('sha256').update(resource.value).digest('hex').slice(0, VERSION_CHARS), resource };
}
