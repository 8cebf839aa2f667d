/**
 * Port protocols as Istio names them (`pkg/config/protocol`): parsed case-insensitively and
 * normalised to Istio's canonical spelling, so `http`, `Http` and `HTTP` are all `HTTP` and
 * `MONGO` is `Mongo`. An empty or unset protocol means "sniff" in Istio.
 */

/** Istio's canonical protocol names a port may declare. */
export const ISTIO_PROTOCOLS = [
  'HTTP',
  'HTTPS',
  'HTTP2',
  'GRPC',
  'GRPC-Web',
  'HTTP_PROXY',
  'TCP',
  'TLS',
  'UDP',
  'Mongo',
  'Redis',
  'MySQL',
] as const;

/** One of {@link ISTIO_PROTOCOLS}. */
export type IstioProtocol = (typeof ISTIO_PROTOCOLS)[number];

const BY_LOWER = new Map<string, IstioProtocol>(ISTIO_PROTOCOLS.map((p) => [p.toLowerCase(), p]));

/** The canonical protocol for `value` (case-insensitive), or `undefined` when Istio does not know it. */
export function parseProtocol(value: string): IstioProtocol | undefined {
  return BY_LOWER.get(value.toLowerCase());
}

/** True for protocols carried over HTTP (Istio `Instance.IsHTTP`). */
export function isHttpProtocol(p: string | undefined): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-Web';
}

/** True for protocols on top of TLS with SNI (Istio `Instance.IsTLS`). */
export function isTlsProtocol(p: string | undefined): boolean {
  return p === 'HTTPS' || p === 'TLS';
}
