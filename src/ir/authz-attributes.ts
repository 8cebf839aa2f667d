/**
 * The vocabulary of AuthorizationPolicy values, shared by the IR's self-check and the Envoy
 * translator: which `when` keys exist and what they read, which fields only HTTP can evaluate, and
 * how ports and IP blocks are written. Follows Istio's reference
 * (https://istio.io/latest/docs/reference/config/security/conditions/) and the attribute names of
 * its authorization model.
 */
import { isIP } from 'node:net';

/**
 * What a `when` key reads. `header` and `claim` carry the header name / claim path from the brackets
 * (`request.headers[x-user]`, `request.auth.claims[groups]`, `request.auth.claims[a][b]`).
 */
export type WhenAttribute =
  | { kind: 'request.headers'; header: string }
  | { kind: 'source.ip' }
  | { kind: 'remote.ip' }
  | { kind: 'source.namespace' }
  | { kind: 'source.principal' }
  | { kind: 'source.serviceAccount' }
  | { kind: 'request.auth.principal' }
  | { kind: 'request.auth.audiences' }
  | { kind: 'request.auth.presenter' }
  | { kind: 'request.auth.claims'; claims: string[] }
  | { kind: 'destination.ip' }
  | { kind: 'destination.port' }
  | { kind: 'connection.sni' }
  /** `experimental.envoy.filters.<filter>[<key>]`: Envoy dynamic metadata of filter `envoy.filters.<filter>`. */
  | { kind: 'experimental.envoy.filters'; filter: string; key: string };

const PLAIN_KEYS = [
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
] as const;

/** Every documented `when` key, with `[...]` standing for the bracketed name. */
export const WHEN_KEYS: readonly string[] = ['request.headers[...]', ...PLAIN_KEYS, 'request.auth.claims[...]', 'experimental.envoy.filters.<filter>[...]'];

/**
 * Parses a `when` key. Returns `{error}` for an unknown key or a malformed bracket part (Istio
 * rejects both; its translator skips such a rule).
 */
export function parseWhenKey(key: string): WhenAttribute | { error: string } {
  const plain = (PLAIN_KEYS as readonly string[]).find((k) => k === key);
  if (plain !== undefined) return { kind: plain } as WhenAttribute;
  if (key.startsWith('request.headers')) {
    const name = bracketed(key.slice('request.headers'.length));
    if (name === undefined || name === '') return { error: `${JSON.stringify(key)}: expected request.headers[<header name>]` };
    return { kind: 'request.headers', header: name };
  }
  if (key.startsWith('request.auth.claims')) {
    const claims = nestedBracketed(key.slice('request.auth.claims'.length));
    if (claims === undefined || claims.length === 0 || claims.some((c) => c === '')) {
      return { error: `${JSON.stringify(key)}: expected request.auth.claims[<claim>] or request.auth.claims[<claim>][<nested claim>]...` };
    }
    return { kind: 'request.auth.claims', claims };
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    const m = /^experimental\.(envoy\.filters\.[^[\]]+)\[([^[\]]+)\]$/.exec(key);
    if (!m) return { error: `${JSON.stringify(key)}: expected experimental.envoy.filters.<filter>[<key>]` };
    return { kind: 'experimental.envoy.filters', filter: m[1] ?? '', key: m[2] ?? '' };
  }
  return { error: `unknown key ${JSON.stringify(key)} (supported: ${WHEN_KEYS.join(', ')})` };
}

/** `[name]` → `name`; undefined when the text is not wrapped in brackets. */
function bracketed(s: string): string | undefined {
  if (!s.startsWith('[') || !s.endsWith(']') || s.length < 2) return undefined;
  return s.slice(1, -1);
}

/**
 * `[a][b]` → `[a, b]`; text that is not a clean sequence of `[...]` groups is read as one bracketed
 * name (`[a.b]` → `[a.b]`), as Istio's `extractNameInNestedBrackets` does.
 */
function nestedBracketed(s: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] !== '[') break;
    const end = s.indexOf(']', i + 1);
    const nextOpen = s.indexOf('[', i + 1);
    if (end === -1 || (nextOpen !== -1 && nextOpen < end)) break;
    out.push(s.slice(i + 1, end));
    i = end + 1;
  }
  if (i === s.length && out.length > 0) return out;
  const one = bracketed(s);
  return one === undefined ? undefined : [one];
}

/**
 * Whether a `when` attribute can only be evaluated on an HTTP request (headers, JWT data). On a TCP
 * port Istio drops an ALLOW rule using it and ignores it in a DENY/AUDIT rule.
 */
export function isHttpOnlyAttribute(a: WhenAttribute): boolean {
  return a.kind === 'request.headers' || a.kind.startsWith('request.auth.');
}

/** Source fields only HTTP can evaluate (they read the JWT). */
export const HTTP_ONLY_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals'] as const;

/** Operation fields only HTTP can evaluate. */
export const HTTP_ONLY_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

/** An IP block as Envoy's `CidrRange`: the address as written and the prefix length. */
export interface CidrIR {
  addressPrefix: string;
  prefixLen: number;
}

/**
 * Parses an IP block: an IPv4/IPv6 address (a /32 or /128) or `address/len` with `len` within the
 * family's width. Undefined when malformed. Host bits after the prefix are kept (Envoy masks them).
 */
export function parseCidr(value: string): CidrIR | undefined {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return undefined;
  const width = family === 4 ? 32 : 128;
  if (slash === -1) return { addressPrefix: address, prefixLen: width };
  const len = value.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(len)) return undefined;
  const n = Number(len);
  return n <= width ? { addressPrefix: address, prefixLen: n } : undefined;
}

/** Parses a port value (`ports`, `destination.port`): a decimal 0-65535 as Istio accepts; undefined otherwise. */
export function parsePortValue(value: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 65535 ? n : undefined;
}
