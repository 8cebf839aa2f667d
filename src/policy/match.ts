/**
 * Value matching as Istio's AuthorizationPolicy defines it
 * (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Rule): every
 * string supports exact `abc`, prefix `abc*`, suffix `*abc` and presence `*`. How presence is read
 * depends on the attribute, as in Istio's mapping to Envoy matchers (`pilot/pkg/security/authz/matcher`):
 * for headers, methods and hosts `*` means "the header is present"; for other strings (paths,
 * claims, SNI) it means "non-empty".
 *
 * Identity matching reads the peer's SPIFFE ID the way Istio's generated regexes do
 * (`pilot/pkg/security/authz/model/generator.go`): `principals` compare against the ID without
 * `spiffe://`, `namespaces` against its `/ns/<ns>/` segment, `serviceAccounts` against
 * `/ns/<ns>/sa/<sa>`.
 */
import { isIP } from 'node:net';

/** What `*` alone means for an attribute. */
export type Presence = 'present' | 'non-empty';

/**
 * Istio value match of `pattern` against `value` (undefined = attribute absent, which matches
 * nothing). `ignoreCase` is for hosts.
 */
export function matchValue(pattern: string, value: string | undefined, presence: Presence, ignoreCase = false): boolean {
  if (value === undefined) return false;
  if (pattern === '*') return presence === 'present' || value.length > 0;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (p.startsWith('*')) return v.endsWith(p.slice(1));
  if (p.endsWith('*')) return v.startsWith(p.slice(0, -1));
  return v === p;
}

/** Escapes a literal for a RegExp. */
export function quoteRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** `spiffe://` + id, unless it already starts with it. */
export function withSpiffePrefix(id: string): string {
  return id.startsWith('spiffe://') ? id : `spiffe://${id}`;
}

/**
 * `principals` / `source.principal`: `pattern` (`cluster.local/ns/a/sa/b`, `*`, `prefix*`,
 * `*suffix`) against the peer's SPIFFE ID (`spiffe://...`); no peer matches nothing.
 */
export function principalMatches(pattern: string, spiffeId: string | undefined): boolean {
  if (spiffeId === undefined || spiffeId === '') return false;
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return new RegExp(`^spiffe://.*${quoteRegExp(pattern.slice(1))}$`).test(spiffeId);
  if (pattern.endsWith('*')) return spiffeId.startsWith(`spiffe://${pattern.slice(0, -1)}`);
  return spiffeId === `spiffe://${pattern}`;
}

/** `namespaces` / `source.namespace`: `*` anywhere in the pattern stands for any characters. */
export function namespaceMatches(pattern: string, spiffeId: string | undefined): boolean {
  if (spiffeId === undefined || spiffeId === '') return false;
  const ns = pattern.split('*').map(quoteRegExp).join('.*');
  return new RegExp(`^.*/ns/${ns}/.*$`).test(spiffeId);
}

/**
 * `serviceAccounts` / `source.serviceAccount`: `ns/sa`, or `sa` for the policy's own namespace;
 * matched as Istio's `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`.
 */
export function serviceAccountMatches(value: string, policyNamespace: string, spiffeId: string | undefined): boolean {
  if (spiffeId === undefined || spiffeId === '') return false;
  const slash = value.indexOf('/');
  const ns = slash < 0 ? policyNamespace : value.slice(0, slash);
  const sa = slash < 0 ? value : value.slice(slash + 1);
  return new RegExp(`^spiffe://.+/ns/${quoteRegExp(ns)}/(.+/|)sa/${quoteRegExp(sa)}(/.+)?$`).test(spiffeId);
}

/** Istio trustdomain `prefixMatch`: `pattern` ends with `*` and `a` starts with the rest. */
function tdPrefix(a: string, pattern: string): boolean {
  return pattern.endsWith('*') && a.startsWith(pattern.slice(0, -1));
}

/** Istio trustdomain `suffixMatch`: `pattern` starts with `*` and `a` ends with the rest. */
function tdSuffix(a: string, pattern: string): boolean {
  return pattern.startsWith('*') && a.endsWith(pattern.slice(1));
}

/**
 * Istio's trust-domain handling of principals (`pilot/pkg/security/trustdomain/bundle.go`
 * `ReplaceTrustDomainAliases`): a principal `<td>/ns/<ns>/sa/<sa>` whose trust domain is
 * `cluster.local` or matches one of `trustDomains` (the mesh's, then its aliases; wildcards either
 * way) is expanded to one principal per trust domain — kept as written where its `*suffix` trust
 * domain already covers it. A `*` trust domain and other shapes are kept as written.
 */
export function expandTrustDomains(principals: readonly string[], trustDomains: readonly string[]): string[] {
  const out: string[] = [];
  const add = (p: string): void => {
    if (!out.includes(p)) out.push(p);
  };
  for (const p of principals) {
    const parts = p.split('/');
    const td = parts[0] ?? '';
    if (parts.length !== 5 || td === '*') {
      add(p);
      continue;
    }
    const known =
      td === 'cluster.local' ||
      trustDomains.some((t) => td === t || t === '*' || tdPrefix(td, t) || tdPrefix(t, td) || tdSuffix(td, t) || tdSuffix(t, td));
    if (!known) {
      add(p);
      continue;
    }
    for (const t of trustDomains) add(tdSuffix(t, td) ? p : [t, ...parts.slice(1)].join('/'));
  }
  return out;
}

/** An IP address as a bigint with its family; undefined when not an IP. */
function ipBits(ip: string): { family: 4 | 6; bits: bigint } | undefined {
  const family = isIP(ip);
  if (family === 4) {
    const b = ip.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
    return { family: 4, bits: b };
  }
  if (family === 6) {
    let text = ip;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4) {
      const n = v4[1]!.split('.').map(Number);
      text = text.slice(0, v4.index) + `${((n[0]! << 8) | n[1]!).toString(16)}:${((n[2]! << 8) | n[3]!).toString(16)}`;
    }
    const [head = '', tail] = text.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    return { family: 6, bits: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
  }
  return undefined;
}

/** True when `ip` is inside `block` (a CIDR, or a single address meaning /32 or /128). */
export function ipInBlock(ip: string | undefined, block: string): boolean {
  if (ip === undefined) return false;
  const [addr = '', len] = block.split('/');
  const a = ipBits(ip);
  const b = ipBits(addr);
  if (!a || !b || a.family !== b.family) return false;
  const width = a.family === 4 ? 32 : 128;
  const prefix = len === undefined ? width : Number(len);
  if (prefix === 0) return true;
  const shift = BigInt(width - prefix);
  return a.bits >> shift === b.bits >> shift;
}

/** The characters a path template segment may match (Envoy uri_template `kLiteral`). */
const TEMPLATE_LITERAL = "a-zA-Z0-9\\-._~%!$&'()+,;:@";

/**
 * Matches a path against a `{*}`/`{**}` template as Envoy's uri_template matcher does: `{*}` is one
 * non-empty segment, `{**}` any run of segments (possibly empty), other segments literal.
 */
export function pathTemplateMatches(template: string, path: string): boolean {
  const segments = template.replace(/^\//, '').split('/');
  const body = segments
    .map((s) => (s === '{*}' ? `[${TEMPLATE_LITERAL}]+` : s === '{**}' ? `[${TEMPLATE_LITERAL}/]*` : quoteRegExp(s)))
    .join('/');
  return new RegExp(`^/${body}$`).test(path);
}

/** True when `value` uses a path template operator. */
export function isPathTemplate(value: string): boolean {
  return value.includes('{*}') || value.includes('{**}');
}

/**
 * The path Istio's RBAC sees: query and fragment removed, then dot segments resolved as RFC 3986
 * §5.2.4 (Istio's default `BASE` path normalization, Envoy `normalize_path`).
 */
export function normalizePath(raw: string): string {
  let path = raw;
  const cut = path.search(/[?#]/);
  if (cut >= 0) path = path.slice(0, cut);
  if (!path.startsWith('/')) path = `/${path}`;
  const out: string[] = [];
  const parts = path.split('/').slice(1);
  parts.forEach((seg, i) => {
    const last = i === parts.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  });
  return `/${out.join('/')}`;
}

/** `path` matcher: a template, or an Istio value match (`*` = non-empty) on the normalized path. */
export function pathMatches(pattern: string, path: string | undefined): boolean {
  if (path === undefined) return false;
  return isPathTemplate(pattern) ? pathTemplateMatches(pattern, path) : matchValue(pattern, path, 'non-empty');
}
