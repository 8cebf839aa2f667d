/** Istio port protocols mapped to how Skiff's proxies handle them. */
import type { AppProtocol } from '../ir/types.js';

const HTTP1 = new Set(['http']);
const HTTP2 = new Set(['http2', 'grpc', 'grpc-web']);

/**
 * Classifies an Istio port protocol (case-insensitive): `HTTP` → HTTP, `HTTP2`/`GRPC`/`GRPC-WEB`
 * → HTTP2, anything else (`TCP`, `TLS`, `HTTPS`, `MONGO`, ...) → TCP. Without a protocol the port
 * name's prefix decides as in Istio's "explicit protocol selection" by name (`http-web` → HTTP,
 * `grpc` → HTTP2); otherwise TCP (Istio would sniff the protocol; Skiff does not).
 */
export function classifyProtocol(protocol: string | undefined, portName?: string): AppProtocol {
  const p = protocol?.trim().toLowerCase();
  if (p) return HTTP1.has(p) ? 'HTTP' : HTTP2.has(p) ? 'HTTP2' : 'TCP';
  const name = portName?.toLowerCase() ?? '';
  if (name === 'grpc-web' || name.startsWith('grpc-web-')) return 'HTTP2';
  const prefix = name.split('-')[0] ?? '';
  return HTTP1.has(prefix) ? 'HTTP' : HTTP2.has(prefix) ? 'HTTP2' : 'TCP';
}

/** Whether Envoy handles a port with the HTTP connection manager. */
export function isHttp(p: AppProtocol): boolean {
  return p !== 'TCP';
}
