/**
 * The `defaultEndpoint` of a Sidecar ingress listener (Istio `IstioIngressListener.default_endpoint`):
 * where the sidecar forwards inbound traffic for that port. Istio documents `127.0.0.1:PORT`,
 * `0.0.0.0:PORT` (the instance IP) and `unix:///path/to/socket`; its validation also accepts the
 * IPv6 forms `[::1]:PORT` and `[::]:PORT`, which are accepted here too.
 */

/** A parsed `defaultEndpoint`. */
export type DefaultEndpoint =
  | {
      kind: 'tcp';
      /** `127.0.0.1`, `0.0.0.0`, `::1` or `::` (IPv6 without brackets). */
      host: string;
      /** 1-65535. */
      port: number;
    }
  | {
      kind: 'unix';
      /** Absolute socket path, or an abstract socket name starting with `@`. */
      path: string;
    };

const ALLOWED_HOSTS = new Set(['127.0.0.1', '0.0.0.0', '::1', '::']);

/**
 * Parses a `defaultEndpoint`. Returns the endpoint, or `{error}` with a message naming the allowed
 * forms. Mirrors Istio's `ValidateSidecar` ingress checks.
 */
export function parseDefaultEndpoint(value: string): DefaultEndpoint | { error: string } {
  const form = 'must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///absolute/path';
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length);
    if (path.startsWith('@') && path.length > 1) return { kind: 'unix', path };
    if (!path.startsWith('/') || path.endsWith('/')) return { error: `defaultEndpoint "${value}" ${form}` };
    return { kind: 'unix', path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || !ALLOWED_HOSTS.has(host)) return { error: `defaultEndpoint "${value}" ${form}` };
  if (host.includes(':') !== (m[1] !== undefined)) return { error: `defaultEndpoint "${value}" ${form}` };
  if (!(port >= 1 && port <= 65535)) return { error: `defaultEndpoint "${value}": port must be 1-65535` };
  return { kind: 'tcp', host, port };
}
