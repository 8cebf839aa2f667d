/**
 * Sidecar egress `hosts` matching (Istio's IstioEgressListener.hosts): each entry is
 * `<namespace>/<dnsName>` where the namespace is a name, `*` (any), `.` (the proxy's namespace) or
 * `~` (none), and the DNS name is exact, `*` (any) or a wildcard `*.example.com`.
 */

/** A parsed egress host entry. */
export interface EgressHost {
  /** A namespace name, `*` or `~` (`.` is resolved to the proxy's namespace when parsed). */
  namespace: string;
  /** Lower-case DNS name, `*`, or `*.<suffix>`. */
  host: string;
}

/**
 * Parses one egress `hosts` entry for a proxy in `proxyNamespace`. An entry without `/` is taken as
 * `*\/<entry>` and reported through `warn` (Istio requires the namespace part).
 */
export function parseEgressHost(entry: string, proxyNamespace: string, warn: (msg: string) => void): EgressHost {
  const slash = entry.indexOf('/');
  let ns = '*';
  let host = entry;
  if (slash < 0) {
    warn(`egress host ${JSON.stringify(entry)} has no namespace part: treated as "*/${entry}"`);
  } else {
    ns = entry.slice(0, slash);
    host = entry.slice(slash + 1);
  }
  if (ns === '.') ns = proxyNamespace;
  return { namespace: ns, host: host.toLowerCase() };
}

/**
 * Whether the service `host` defined in `namespace` is selected by `pattern`. A wildcard pattern
 * `*.example.com` selects `a.example.com`, `a.b.example.com` and the wildcard service host
 * `*.example.com` itself; a wildcard service host is selected by a pattern only when the pattern is
 * at least as wide.
 */
export function egressHostMatches(pattern: EgressHost, host: string, namespace: string): boolean {
  if (pattern.namespace === '~') return false;
  if (pattern.namespace !== '*' && pattern.namespace !== namespace) return false;
  return hostCovers(pattern.host, host.toLowerCase());
}

/** Whether DNS pattern `pattern` (exact, `*` or `*.suffix`) covers `host` (exact or `*.suffix`). */
export function hostCovers(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1); // ".example.com"
    if (host.startsWith('*.')) return host.slice(1).endsWith(suffix);
    return host.endsWith(suffix) && host.length > suffix.length;
  }
  return pattern === host;
}
