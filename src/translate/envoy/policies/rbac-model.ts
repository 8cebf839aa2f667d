/**
 * One AuthorizationPolicy rule as an Envoy RBAC policy (envoy/config/rbac/v3/rbac.proto), following
 * Istio's mapping (istio/istio `pilot/pkg/security/authz/model`, behaviour documented at
 * https://istio.io/latest/docs/reference/config/security/authorization-policy/):
 *
 * - every `from` entry is one principal, every `to` entry one permission (Envoy ORs them); inside
 *   an entry the fields are ANDed, each field's values ORed, `notX` values negated together; the
 *   `when` conditions are ANDed into every principal (source-side keys) or permission
 *   (destination-side keys); an empty side matches anything;
 * - principals / `source.principal` → the peer certificate's URI SAN (`authenticated`), written
 *   `spiffe://` + value (`*` any authenticated peer, `abc*` prefix, `*abc` suffix), with the trust
 *   domain `cluster.local` standing for the proxy's own (and its aliases); namespaces → SAN regex `.*\/ns/<ns>/.*`;
 *   serviceAccounts → SAN regex on `ns/<ns>/.../sa/<sa>`;
 * - ipBlocks / `source.ip` → `directRemoteIp`; remoteIpBlocks / `remote.ip` → `remoteIp` (the
 *   client address from `x-forwarded-for`);
 * - requestPrincipals / `request.auth.*` → the verified JWT payload the JWT filter stores as
 *   dynamic metadata (`envoy.filters.http.jwt_authn` → `payload` → claim);
 * - hosts → `:authority` ignoring case; methods → `:method`; paths → the path without query
 *   (`urlPath`, or a URI template for `{*}`/`{**}`); ports / `destination.port` → `destinationPort`;
 *   `destination.ip` → `destinationIp`; `connection.sni` → `requestedServerName`;
 *   `request.headers[h]` → header `h`.
 *
 * A value that cannot be generated (an HTTP-only field on a TCP chain, a malformed value) makes an
 * ALLOW rule vanish (it then allows less); for DENY, AUDIT and CUSTOM only that value is left out
 * (the rule then matches more). A rule with an unknown `when` key is skipped whatever the action.
 */
import { parseCidr, parsePortValue, parseWhenKey, type WhenAttribute } from '../../../ir/authz-attributes.js';
import type { AuthzConditionIR, AuthzOperationIR, AuthzRuleIR, AuthzSourceIR } from '../../../ir/types.js';
import { ExtensionType, FilterName } from '../common.js';
import type { CidrRange, HeaderMatcher, MetadataMatcher, Permission, Principal, RbacPolicy, StringMatcher, ValueMatcher } from '../envoy-types.js';

/** How a rule is generated. */
export interface RuleContext {
  /** The chain is TCP: HTTP-only fields cannot be evaluated. */
  forTcp: boolean;
  /** ALLOW drops a rule on the first problem; the others leave the problem value out. */
  action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  /** The policy's namespace (the default namespace of `serviceAccounts` values). */
  policyNamespace: string;
  /**
   * The proxy's trust domain then its aliases: a principal in any of them (or in `cluster.local`)
   * matches in all of them, as Istio rewrites it.
   */
  trustDomains: readonly string[];
}

/** The outcome of generating one rule. */
export type RuleResult =
  | {
      policy: RbacPolicy;
      /** HTTP-only fields left out on a TCP chain (DENY/AUDIT/CUSTOM), e.g. `to[0].operation.methods`. */
      ignoredHttpOnly: string[];
      /** Other values left out, one sentence each. */
      ignored: string[];
    }
  | {
      /** Why the rule generates nothing. */
      dropped: 'http-only' | 'invalid' | 'unknown-key';
      /** The HTTP-only fields (for `http-only`) or the problems, one sentence each. */
      reasons: string[];
    };

/** The JWT filter's metadata key holding the verified payload (Istio's `payload`). */
export const JWT_PAYLOAD_KEY = 'payload';

const ANY_REGEX: StringMatcher = { safeRegex: { regex: '.+' } };
const SPIFFE_PREFIX = 'spiffe://';
const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** Go's `regexp.QuoteMeta`: escapes the RE2 metacharacters. */
export function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** Istio's string match: `*` any non-empty value, `*abc` suffix, `abc*` prefix, else exact; `prefix` is prepended. */
export function stringMatcher(v: string, prefix = '', ignoreCase = false): StringMatcher {
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (v === '*') return ANY_REGEX;
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1), ...ic } : { safeRegex: { regex: `${prefix}.*${quoteMeta(v.slice(1))}` } };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1), ...ic };
  return { exact: prefix + v, ...ic };
}

/** Istio's header match: `*` presence, `*abc` suffix, `abc*` prefix, else exact. */
export function headerMatcher(name: string, v: string, ignoreCase = false): HeaderMatcher {
  if (v === '*') return { name, presentMatch: true };
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (v.startsWith('*')) return { name, stringMatch: { suffix: v.slice(1), ...ic } };
  if (v.endsWith('*')) return { name, stringMatch: { prefix: v.slice(0, -1), ...ic } };
  return { name, stringMatch: { exact: v, ...ic } };
}

function cidr(v: string): CidrRange | string {
  const c = parseCidr(v);
  return c ? { addressPrefix: c.addressPrefix, prefixLen: { value: c.prefixLen } } : `${JSON.stringify(v)} is not an IP address or CIDR block`;
}

function jwtMetadata(path: string[], value: ValueMatcher): MetadataMatcher {
  return { filter: FilterName.JwtAuthn, path: [JWT_PAYLOAD_KEY, ...path].map((key) => ({ key })), value };
}

/** Istio's match of a (possibly list-valued) JWT claim: any list element or the value itself. */
function claimMatcher(path: string[], values: readonly string[]): MetadataMatcher {
  const v = orValues(values.map((x) => ({ stringMatch: stringMatcher(x) })));
  return jwtMetadata(path, { orMatch: { valueMatchers: [{ listMatch: { oneOf: v } }, v] } });
}

function orValues(list: ValueMatcher[]): ValueMatcher {
  return list.length === 1 ? list[0]! : { orMatch: { valueMatchers: list } };
}

/** `iss/sub` request principal: both claims matched (Istio splits at the last `/`). */
function requestPrincipal(value: string): Principal {
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : '';
  let mi: StringMatcher;
  let ms: StringMatcher;
  if (value === '*') {
    mi = ANY_REGEX;
    ms = ANY_REGEX;
  } else if (value.startsWith('*')) {
    if (found) {
      mi = iss === '*' ? ANY_REGEX : { suffix: iss.slice(1) };
      ms = { exact: sub };
    } else {
      mi = ANY_REGEX;
      ms = { suffix: value.slice(1) };
    }
  } else if (value.endsWith('*')) {
    if (found) {
      mi = { exact: iss };
      ms = sub === '*' ? ANY_REGEX : { prefix: sub.slice(0, -1) };
    } else {
      mi = { prefix: value.slice(0, -1) };
      ms = ANY_REGEX;
    }
  } else {
    mi = { exact: iss };
    ms = { exact: sub };
  }
  return { andIds: { ids: [{ metadata: jwtMetadata(['iss'], { stringMatch: mi }) }, { metadata: jwtMetadata(['sub'], { stringMatch: ms }) }] } };
}

/**
 * Istio's trust-domain handling of principals `<td>/ns/<ns>/sa/<sa>` (`ReplaceTrustDomainAliases`):
 * a principal whose trust domain is `cluster.local`, the local one or an alias (wildcards allowed
 * either way) stands for the same identity in every local domain; others are kept as written.
 * `trustDomains` is the local trust domain followed by its aliases.
 */
export function localizePrincipals(principals: readonly string[], trustDomains: readonly string[]): string[] {
  const out: string[] = [];
  for (const principal of principals) {
    const parts = principal.split('/');
    const td = parts[0] ?? '';
    if (parts.length !== 5 || td === '*' || !(td === DEFAULT_TRUST_DOMAIN || trustDomains.some((t) => loosely(td, t)))) {
      out.push(principal);
      continue;
    }
    const local: string[] = [];
    for (const t of trustDomains) {
      const p = suffixMatch(t, td) ? principal : [t, ...parts.slice(1)].join('/');
      if (!local.includes(p)) local.push(p);
    }
    out.push(...local);
  }
  return out;
}

/** Istio's `stringMatch` of two trust domains where either may carry a `*` wildcard. */
function loosely(a: string, b: string): boolean {
  return a === b || b === '*' || prefixMatch(a, b) || prefixMatch(b, a) || suffixMatch(a, b) || suffixMatch(b, a);
}

function prefixMatch(a: string, pattern: string): boolean {
  return pattern.endsWith('*') && a.startsWith(pattern.slice(0, -1));
}

function suffixMatch(a: string, pattern: string): boolean {
  return pattern.startsWith('*') && a.endsWith(pattern.slice(1));
}

function authenticated(m: StringMatcher): Principal {
  return { authenticated: { principalName: m } };
}

/** A field or `when` condition of a rule, ready to generate. */
interface Condition {
  /** For messages: `from[0].source.principals`, `when[1] request.headers[x]`. */
  field: string;
  side: 'principal' | 'permission';
  values: readonly string[];
  notValues: readonly string[];
  httpOnly: boolean;
  /** Per value (its matches are ORed). Returns a message for a value that cannot be generated. */
  one?: (v: string) => Principal | Permission | string;
  /** For all values at once (JWT data, Envoy metadata), as Istio's "extended" generators. */
  many?: (vs: readonly string[]) => Principal | Permission | string;
}

function principalCondition(field: string, values: string[] | undefined, notValues: string[] | undefined, httpOnly: boolean, gen: Pick<Condition, 'one' | 'many'>): Condition | undefined {
  if (!values?.length && !notValues?.length) return undefined;
  return { field, side: 'principal', values: values ?? [], notValues: notValues ?? [], httpOnly, ...gen };
}

function permissionCondition(field: string, values: string[] | undefined, notValues: string[] | undefined, httpOnly: boolean, gen: Pick<Condition, 'one' | 'many'>): Condition | undefined {
  if (!values?.length && !notValues?.length) return undefined;
  return { field, side: 'permission', values: values ?? [], notValues: notValues ?? [], httpOnly, ...gen };
}

/** Generators per attribute (source fields and `when` keys share them). */
function generators(ctx: RuleContext): {
  principal: Pick<Condition, 'one'>;
  namespace: Pick<Condition, 'one'>;
  serviceAccount: Pick<Condition, 'one'>;
  sourceIp: Pick<Condition, 'one'>;
  remoteIp: Pick<Condition, 'one'>;
  requestPrincipal: Pick<Condition, 'many'>;
  host: Pick<Condition, 'one'>;
  method: Pick<Condition, 'one'>;
  path: Pick<Condition, 'one'>;
  port: Pick<Condition, 'one'>;
} {
  return {
    principal: { one: (v) => authenticated(stringMatcher(v, SPIFFE_PREFIX)) },
    namespace: { one: (v) => authenticated({ safeRegex: { regex: `.*/ns/${v.split('*').map(quoteMeta).join('.*')}/.*` } }) },
    serviceAccount: {
      one: (v) => {
        const slash = v.indexOf('/');
        const ns = slash === -1 ? ctx.policyNamespace : v.slice(0, slash);
        const sa = slash === -1 ? v : v.slice(slash + 1);
        return authenticated({ safeRegex: { regex: `spiffe://.+/ns/${quoteMeta(ns)}/(.+/|)sa/${quoteMeta(sa)}(/.+)?` } });
      },
    },
    sourceIp: { one: (v) => mapCidr(v, (c) => ({ directRemoteIp: c })) },
    remoteIp: { one: (v) => mapCidr(v, (c) => ({ remoteIp: c })) },
    requestPrincipal: { many: (vs) => (vs.length === 1 ? requestPrincipal(vs[0]!) : { orIds: { ids: vs.map(requestPrincipal) } }) },
    host: { one: (v) => ({ header: headerMatcher(':authority', v, true) }) },
    method: { one: (v) => ({ header: headerMatcher(':method', v) }) },
    path: {
      one: (v) => {
        if (v.includes('{*}') || v.includes('{**}')) {
          const template = v.replaceAll('{**}', '**').replaceAll('{*}', '*');
          return { uriTemplate: { name: 'uri-template', typedConfig: { '@type': ExtensionType.UriTemplateMatch, pathTemplate: template } } };
        }
        return { urlPath: { path: stringMatcher(v) } };
      },
    },
    port: { one: (v) => portPermission(v) },
  };
}

function mapCidr<T>(v: string, wrap: (c: CidrRange) => T): T | string {
  const c = cidr(v);
  return typeof c === 'string' ? c : wrap(c);
}

function portPermission(v: string): Permission | string {
  const n = parsePortValue(v);
  return n === undefined ? `${JSON.stringify(v)} is not a port` : { destinationPort: n };
}

/** The condition a `when` entry becomes, or a reason the whole rule is skipped (unknown key). */
function whenCondition(c: AuthzConditionIR, i: number, ctx: RuleContext): Condition | undefined | { unknown: string } {
  const field = `when[${i}] ${c.key}`;
  const g = generators(ctx);
  const attr = parseWhenKey(c.key);
  if ('error' in attr) {
    // A known attribute with a malformed [name] is a value problem in Istio; anything else skips the rule.
    if (/^(request\.headers|request\.auth\.claims|experimental\.envoy\.filters\.)/.test(c.key)) {
      const msg = attr.error;
      const httpOnly = !c.key.startsWith('experimental.');
      return (httpOnly ? principalCondition : permissionCondition)(field, c.values, c.notValues, httpOnly, { one: () => msg });
    }
    return { unknown: attr.error };
  }
  const p = (gen: Pick<Condition, 'one' | 'many'>, httpOnly = false): Condition | undefined => principalCondition(field, c.values, c.notValues, httpOnly, gen);
  const q = (gen: Pick<Condition, 'one' | 'many'>): Condition | undefined => permissionCondition(field, c.values, c.notValues, false, gen);
  switch (attr.kind) {
    case 'destination.ip':
      return q({ one: (v) => mapCidr(v, (x) => ({ destinationIp: x })) });
    case 'destination.port':
      return q(g.port);
    case 'connection.sni':
      return q({ one: (v) => ({ requestedServerName: stringMatcher(v) }) });
    case 'experimental.envoy.filters':
      return q({ many: (vs) => envoyFilterMetadata(attr, vs) });
    case 'source.ip':
      return p(g.sourceIp);
    case 'remote.ip':
      return p(g.remoteIp);
    case 'source.namespace':
      return p(g.namespace);
    case 'source.serviceAccount':
      return p(g.serviceAccount);
    case 'source.principal':
      return principalCondition(field, localizePrincipals(c.values, ctx.trustDomains), localizePrincipals(c.notValues, ctx.trustDomains), false, g.principal);
    case 'request.auth.principal':
      return p(g.requestPrincipal, true);
    case 'request.auth.audiences':
      return p({ many: (vs) => ({ metadata: claimMatcher(['aud'], vs) }) }, true);
    case 'request.auth.presenter':
      return p({ many: (vs) => ({ metadata: claimMatcher(['azp'], vs) }) }, true);
    case 'request.auth.claims':
      return p({ many: (vs) => ({ metadata: claimMatcher(attr.claims, vs) }) }, true);
    case 'request.headers':
      return p({ one: (v) => ({ header: headerMatcher(attr.header, v) }) }, true);
  }
}

/** `experimental.envoy.filters.<f>[<key>]`: a string value, or `[v]` for "the list contains v". */
function envoyFilterMetadata(attr: Extract<WhenAttribute, { kind: 'experimental.envoy.filters' }>, vs: readonly string[]): Permission {
  const matchers: ValueMatcher[] = vs.map((v) =>
    v.startsWith('[') && v.endsWith(']') ? { listMatch: { oneOf: { stringMatch: stringMatcher(v.slice(1, -1)) } } } : { stringMatch: stringMatcher(v) },
  );
  return { metadata: { filter: attr.filter, path: [{ key: attr.key }], value: orValues(matchers) } };
}

/** The principal-side conditions of one `from` entry, in Istio's order. */
function sourceConditions(s: AuthzSourceIR, j: number, ctx: RuleContext): Condition[] {
  const g = generators(ctx);
  const at = (f: string): string => `from[${j}].source.${f}`;
  return [
    principalCondition(at('principals'), s.principals && localizePrincipals(s.principals, ctx.trustDomains), s.notPrincipals && localizePrincipals(s.notPrincipals, ctx.trustDomains), false, g.principal),
    principalCondition(at('requestPrincipals'), s.requestPrincipals, s.notRequestPrincipals, true, g.requestPrincipal),
    principalCondition(at('serviceAccounts'), s.serviceAccounts, s.notServiceAccounts, false, g.serviceAccount),
    principalCondition(at('namespaces'), s.namespaces, s.notNamespaces, false, g.namespace),
    principalCondition(at('remoteIpBlocks'), s.remoteIpBlocks, s.notRemoteIpBlocks, false, g.remoteIp),
    principalCondition(at('ipBlocks'), s.ipBlocks, s.notIpBlocks, false, g.sourceIp),
  ].filter((c): c is Condition => c !== undefined);
}

/** The permission-side conditions of one `to` entry, in Istio's order. */
function operationConditions(o: AuthzOperationIR, j: number, ctx: RuleContext): Condition[] {
  const g = generators(ctx);
  const at = (f: string): string => `to[${j}].operation.${f}`;
  return [
    permissionCondition(at('hosts'), o.hosts, o.notHosts, true, g.host),
    permissionCondition(at('methods'), o.methods, o.notMethods, true, g.method),
    permissionCondition(at('paths'), o.paths, o.notPaths, true, g.path),
    permissionCondition(at('ports'), o.ports, o.notPorts, false, g.port),
  ].filter((c): c is Condition => c !== undefined);
}

class Dropped extends Error {}

/**
 * Generates the Envoy RBAC policy of `rule` (see the module comment for the mapping and how
 * problems are handled).
 */
export function rbacPolicyOf(rule: AuthzRuleIR, ctx: RuleContext): RuleResult {
  const whenPrincipal: Condition[] = [];
  const whenPermission: Condition[] = [];
  for (const [i, c] of rule.when.entries()) {
    const cond = whenCondition(c, i, ctx);
    if (cond === undefined) continue;
    if ('unknown' in cond) return { dropped: 'unknown-key', reasons: [`when[${i}]: ${cond.unknown}`] };
    (cond.side === 'principal' ? whenPrincipal : whenPermission).push(cond);
  }
  const principalLists = rule.from.length > 0 ? rule.from.map((s, j) => [...sourceConditions(s, j, ctx), ...whenPrincipal]) : [whenPrincipal];
  const permissionLists = rule.to.length > 0 ? rule.to.map((o, j) => [...operationConditions(o, j, ctx), ...whenPermission]) : [whenPermission];

  const httpOnly = new Set<string>();
  const invalid = new Set<string>();
  const problem = (c: Condition, message: string): void => {
    if (ctx.action === 'ALLOW') {
      if (message === HTTP_ONLY) {
        // Collect every HTTP-only field of the rule for the message, then drop it.
        for (const list of [...principalLists, ...permissionLists]) for (const x of list) if (x.httpOnly) httpOnly.add(x.field);
        throw new Dropped();
      }
      invalid.add(`${c.field}: ${message}`);
      throw new Dropped();
    }
    if (message === HTTP_ONLY) httpOnly.add(c.field);
    else invalid.add(`${c.field}: ${message}`);
  };
  try {
    const principals = principalLists.map((list) => andPrincipals(list.flatMap((c) => generate(c, ctx, problem) as Principal[])));
    const permissions = permissionLists.map((list) => andPermissions(list.flatMap((c) => generate(c, ctx, problem) as Permission[])));
    return { policy: { permissions, principals }, ignoredHttpOnly: [...httpOnly], ignored: [...invalid] };
  } catch (err) {
    if (!(err instanceof Dropped)) throw err;
    return httpOnly.size > 0 ? { dropped: 'http-only', reasons: [...httpOnly] } : { dropped: 'invalid', reasons: [...invalid] };
  }
}

const HTTP_ONLY = 'HTTP only';

/** The matchers of one condition: its values ORed, its notValues ORed and negated. */
function generate(c: Condition, ctx: RuleContext, problem: (c: Condition, message: string) => void): Array<Principal | Permission> {
  const out: Array<Principal | Permission> = [];
  const side = (vs: readonly string[], negate: boolean): void => {
    if (vs.length === 0) return;
    let m: Principal | Permission | undefined;
    if (ctx.forTcp && c.httpOnly) {
      problem(c, HTTP_ONLY);
      return;
    }
    if (c.many) {
      const r = c.many(vs);
      if (typeof r === 'string') return problem(c, r);
      m = r;
    } else if (c.one) {
      const list: Array<Principal | Permission> = [];
      for (const v of vs) {
        const r = c.one(v);
        if (typeof r === 'string') problem(c, r);
        else list.push(r);
      }
      if (list.length === 0) return;
      m = c.side === 'principal' ? { orIds: { ids: list as Principal[] } } : { orRules: { rules: list as Permission[] } };
    }
    if (m === undefined) return;
    out.push(negate ? (c.side === 'principal' ? { notId: m as Principal } : { notRule: m as Permission }) : m);
  };
  side(c.values, false);
  side(c.notValues, true);
  return out;
}

function andPrincipals(ids: Principal[]): Principal {
  return { andIds: { ids: ids.length > 0 ? ids : [{ any: true }] } };
}

function andPermissions(rules: Permission[]): Permission {
  return { andRules: { rules: rules.length > 0 ? rules : [{ any: true }] } };
}

/** Istio's policy for a policy without rules: matches nothing. */
export function matchNothing(): RbacPolicy {
  return { permissions: [{ notRule: { any: true } }], principals: [{ notId: { any: true } }] };
}
