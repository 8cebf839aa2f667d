/**
 * Names shared by the proxyless gRPC translation and the bootstrap the agent writes
 * (agents/proxyless/bootstrap.ts keeps its own copy, since `agents/` does not import translators;
 * a test checks they agree). They follow Istio's proxyless gRPC conventions
 * (istio/istio `pilot/pkg/networking/grpcgen`, `pkg/istio-agent/grpcxds`).
 */

/** Node metadata key whose value {@link GRPC_GENERATOR} marks a proxyless gRPC node (Istio's). */
export const GENERATOR_METADATA_KEY = 'GENERATOR';
/** See {@link GENERATOR_METADATA_KEY}. */
export const GRPC_GENERATOR = 'grpc';

/** Prefix of server listener names (`server_listener_resource_name_template` without `%s`). */
export const SERVER_LISTENER_PREFIX = 'xds.istio.io/grpc/lds/inbound/';

/** Certificate provider instance (bootstrap `certificate_providers`) for the SVID and the trust bundle. */
export const CERT_PROVIDER_INSTANCE = 'default';

/** Whether node metadata marks a proxyless gRPC node (`GENERATOR: grpc`). */
export function isGrpcNode(metadata: Readonly<Record<string, unknown>> | undefined): boolean {
  return metadata?.[GENERATOR_METADATA_KEY] === GRPC_GENERATOR;
}

/** The server listener name for a server bound to `ip:port` (IPv6 in brackets, as grpc-js formats it). */
export function serverListenerName(ip: string, port: number): string {
  return `${SERVER_LISTENER_PREFIX}${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}

/** The client listener (and route configuration) name for `xds:///<host>:<port>`. */
export function clientListenerName(host: string, port: number): string {
  return `${host}:${port}`;
}
