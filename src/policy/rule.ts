/**
 * Whether one AuthorizationPolicy rule matches a request, with Istio's semantics
 * (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Rule):
 *
 * - a rule matches when at least one `from` source, at least one `to` operation and every `when`
 *   condition match; an absent part matches anything, so `{}` matches every request;
 * - inside a source or operation every field present must match (AND); a field's values are
 *   OR-ed; `notX` matches when none of its values match; a field with both must satisfy both;
 * - on a TCP port the HTTP-only attributes (hosts, methods, paths, requestPrincipals,
 *   request.headers, request.auth.*) do not exist. As Istio's RBAC builder does: a rule of an
 *   ALLOW policy that uses any of them never matches there (the policy allows less), while for
 *   DENY, AUDIT and CUSTOM they are dropped (the rule matches more). See "Authorization Policy
 *   for TCP" (https://istio.io/latest/docs/tasks/security/authorization/authz-tcp/).
 */
import { httpOnlyParts, isHttpOnlyCondition, parseConditionKey, type ConditionKey } from '../resources/authz-attributes.js';
import { formatPath } from '../resources/issues.js';
import type { AuthzAction, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../resources/types.js';
import {
  expandTrustDomains,
  ipInBlock,
  matchValue,
  namespaceMatches,
  pathMatches,
  principalMatches,
  serviceAccountMatches,
} from './match.js';

/** The request attributes a rule is matched against (already derived from the input). */
export interface RequestAttributes {
  protocol: 'HTTP' | 'TCP';
  /** The peer's SPIFFE ID with `spiffe://`, or undefined (plaintext). */
  peer?: string;
  sourceIp: string;
  remoteIp: string;
  destinationIp: string;
  destinationPort: number;
  sni: string;
  host?: string;
  method?: string;
  /** Normalized path without query. */
  path?: string;
  /** Lower-case header name → value (several values joined with `,`). */
  headers: ReadonlyMap<string, string>;
  /** The validated JWT payload, when a token passed RequestAuthentication. */
  jwt?: Readonly<Record<string, unknown>>;
  /** The mesh trust domain followed by its aliases. */
  trustDomains: readonly string[];
}

/** The outcome for one rule. */
export interface RuleOutcome {
  matches: boolean;
  /** Notes about HTTP-only parts on a TCP port (dropped, or the rule ignored). */
  notes: string[];
}

/** `values` OR-ed, `notValues` none matching; an empty list is no constraint. */
function valuesMatch(values: readonly string[] | undefined, notValues: readonly string[] | undefined, one: (v: string) => boolean): boolean {
  if (values !== undefined && values.length > 0 && !values.some(one)) return false;
  if (notValues !== undefined && notValues.length > 0 && notValues.some(one)) return false;
  return true;
}

/** A string claim or a list of strings containing one that matches. */
function claimMatches(claim: unknown, pattern: string): boolean {
  if (typeof claim === 'string') return matchValue(pattern, claim, 'non-empty');
  if (Array.isArray(claim)) return claim.some((c) => typeof c === 'string' && matchValue(pattern, c, 'non-empty'));
  return false;
}

/** Istio `requestPrincipalGenerator`: `iss/sub` split at the last `/`, each side matched on its own. */
function requestPrincipalMatches(pattern: string, jwt: Readonly<Record<string, unknown>> | undefined): boolean {
  if (!jwt) return false;
  const iss = typeof jwt['iss'] === 'string' ? jwt['iss'] : undefined;
  const sub = typeof jwt['sub'] === 'string' ? jwt['sub'] : undefined;
  if (iss === undefined || sub === undefined) return false;
  const any = (v: string): boolean => v.length > 0;
  const idx = pattern.lastIndexOf('/');
  const found = idx >= 0;
  const pIss = found ? pattern.slice(0, idx) : pattern;
  const pSub = found ? pattern.slice(idx + 1) : '';
  if (pattern === '*') return any(iss) && any(sub);
  if (pattern.startsWith('*')) {
    if (found) return (pIss === '*' ? any(iss) : iss.endsWith(pIss.slice(1))) && sub === pSub;
    return any(iss) && sub.endsWith(pattern.slice(1));
  }
  if (pattern.endsWith('*')) {
    if (found) return iss === pIss && (pSub === '*' ? any(sub) : sub.startsWith(pSub.slice(0, -1)));
    return iss.startsWith(pattern.slice(0, -1)) && any(sub);
  }
  return iss === pIss && sub === pSub;
}

/** The value at a claim path (`[a][b]` → payload.a.b). */
function claimAt(jwt: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): unknown {
  let v: unknown = jwt;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

/** Matches one value of a `when` condition. */
function conditionValueMatches(key: ConditionKey, value: string, a: RequestAttributes, policyNamespace: string): boolean {
  switch (key.attribute) {
    case 'request.headers':
      return matchValue(value, a.headers.get(key.header.toLowerCase()), 'present');
    case 'source.ip':
      return ipInBlock(a.sourceIp, value);
    case 'remote.ip':
      return ipInBlock(a.remoteIp, value);
    case 'source.namespace':
      return namespaceMatches(value, a.peer);
    case 'source.principal':
      return expandTrustDomains([value], a.trustDomains).some((p) => principalMatches(p, a.peer));
    case 'source.serviceAccount':
      return serviceAccountMatches(value, policyNamespace, a.peer);
    case 'request.auth.principal':
      return requestPrincipalMatches(value, a.jwt);
    case 'request.auth.audiences':
      return claimMatches(a.jwt?.['aud'], value);
    case 'request.auth.presenter':
      return claimMatches(a.jwt?.['azp'], value);
    case 'request.auth.claims':
      return claimMatches(claimAt(a.jwt, key.claim), value);
    case 'destination.ip':
      return ipInBlock(a.destinationIp, value);
    case 'destination.port':
      return String(a.destinationPort) === value;
    case 'connection.sni':
      return matchValue(value, a.sni, 'non-empty');
    case 'experimental.envoy.filters':
      // Envoy dynamic metadata is not part of the request model: it is never present.
      return false;
  }
}

function sourceMatches(s: AuthzSource, a: RequestAttributes, policyNamespace: string, dropHttp: boolean): boolean {
  const principal = (v: string): boolean => expandTrustDomains([v], a.trustDomains).some((p) => principalMatches(p, a.peer));
  return (
    valuesMatch(s.ipBlocks, s.notIpBlocks, (v) => ipInBlock(a.sourceIp, v)) &&
    valuesMatch(s.remoteIpBlocks, s.notRemoteIpBlocks, (v) => ipInBlock(a.remoteIp, v)) &&
    valuesMatch(s.namespaces, s.notNamespaces, (v) => namespaceMatches(v, a.peer)) &&
    valuesMatch(s.serviceAccounts, s.notServiceAccounts, (v) => serviceAccountMatches(v, policyNamespace, a.peer)) &&
    (dropHttp || valuesMatch(s.requestPrincipals, s.notRequestPrincipals, (v) => requestPrincipalMatches(v, a.jwt))) &&
    valuesMatch(s.principals, s.notPrincipals, principal)
  );
}

function operationMatches(o: AuthzOperation, a: RequestAttributes, dropHttp: boolean): boolean {
  if (!valuesMatch(o.ports, o.notPorts, (v) => String(a.destinationPort) === v)) return false;
  if (dropHttp) return true;
  return (
    valuesMatch(o.paths, o.notPaths, (v) => pathMatches(v, a.path)) &&
    valuesMatch(o.methods, o.notMethods, (v) => matchValue(v, a.method, 'present')) &&
    valuesMatch(o.hosts, o.notHosts, (v) => matchValue(v, a.host, 'present', true))
  );
}

function conditionMatches(c: AuthzCondition, a: RequestAttributes, policyNamespace: string, dropHttp: boolean): boolean {
  const key = parseConditionKey(c.key);
  if ('error' in key) return false; // rejected by validation; never matches if it slips through
  if (dropHttp && isHttpOnlyCondition(key)) return true;
  return valuesMatch(c.values, c.notValues, (v) => conditionValueMatches(key, v, a, policyNamespace));
}

/**
 * Evaluates `rule` (index `ruleIndex` of policy `policy` in `policyNamespace`, with `action`)
 * against the request attributes. See the module comment for the TCP rules.
 */
export function evaluateRule(rule: AuthzRule, action: AuthzAction, a: RequestAttributes, policy: string, policyNamespace: string, ruleIndex: number): RuleOutcome {
  const notes: string[] = [];
  let dropHttp = false;
  if (a.protocol === 'TCP') {
    const http = httpOnlyParts(rule);
    if (http.length > 0) {
      const what = http.map((p) => `rules[${ruleIndex}].${formatPath(p.path)}`).join(', ');
      if (action === 'ALLOW') {
        notes.push(`${action} policy ${policy}: rules[${ruleIndex}] uses HTTP-only attributes (${what}) and never matches on TCP port ${a.destinationPort}`);
        return { matches: false, notes };
      }
      notes.push(`${action} policy ${policy}: HTTP-only attributes (${what}) are ignored on TCP port ${a.destinationPort}, so the rule matches more`);
      dropHttp = true;
    }
  }
  const from = rule.from ?? [];
  const to = rule.to ?? [];
  const fromOk = from.length === 0 || from.some((f) => f.source === undefined || sourceMatches(f.source, a, policyNamespace, dropHttp));
  const toOk = to.length === 0 || to.some((t) => t.operation === undefined || operationMatches(t.operation, a, dropHttp));
  const whenOk = (rule.when ?? []).every((c) => conditionMatches(c, a, policyNamespace, dropHttp));
  return { matches: fromOk && toOk && whenOk, notes };
}
