/**
 * AuthorizationPolicy → `istio.security.Authorization` for ztunnel, as istiod's ambient index
 * converts it (pilot/pkg/serviceregistry/ambient/authorization.go) and as Istio's "Use Layer 4
 * security policy" page describes it:
 *
 * - Scope: with a selector WORKLOAD_SELECTOR (the policy is then listed on each matching workload,
 *   in its namespace or, from the root namespace, in every namespace); without one NAMESPACE, or
 *   GLOBAL in the root namespace. `targetRef(s)` policies are for waypoints: not sent.
 * - Actions: ALLOW and DENY; CUSTOM and AUDIT are refused for ztunnel (not sent, with a warning).
 * - A rule becomes clauses AND-ed: its `to` entries (one Match each, OR-ed), its `from` entries,
 *   then one clause per `when` condition. L4 fields map one to one: principals, namespaces,
 *   serviceAccounts, ipBlocks (and their `not` forms), ports/notPorts, and the `when` keys
 *   `source.ip`, `source.namespace`, `source.principal`, `destination.ip`, `destination.port`.
 * - L7 fields (hosts, methods, paths, requestPrincipals, remoteIpBlocks and their `not` forms,
 *   every other `when` key) cannot be enforced by ztunnel. Istio's fail-closed rule: an ALLOW
 *   rule using one is dropped (it allows nothing more); a DENY rule loses its L7 parts, so it
 *   denies every connection its L4 parts match (a wider deny). Both are reported as warnings
 *   naming the policy, the rule and the fields.
 * - An empty `source`/`operation` entry, or one left empty once its L7 fields are gone, matches
 *   every connection: its clause is left out (ztunnel never matches an empty Match, so sending
 *   one would turn "any" into "none"). istiod sends the empty Match, which makes a DENY rule with
 *   only L7 fields inert; Skiff keeps the documented wider deny instead.
 */
import { parseGoBool, DRY_RUN_ANNOTATION } from '../../../push/authorization.js';
import { hasLabels, selectorMatches } from '../../../push/selectors.js';
import { resourceKey, type AuthorizationPolicy, type AuthzCondition, type AuthzOperation, type AuthzRule, type AuthzSource } from '../../../resources/types.js';
import { parseCidr } from '../ip.js';
import type { AuthorizationMessage, CidrMessage, ClauseMessage, MatchMessage, ServiceAccountMatchMessage, StringMatchMessage, ZtunnelPolicyContext, ZtunnelPolicyModule } from './types.js';

/** `when` keys ztunnel can evaluate (istiod's `l4WhenAttributes`). */
const L4_WHEN_KEYS: ReadonlySet<string> = new Set(['source.ip', 'source.namespace', 'source.principal', 'destination.ip', 'destination.port']);

const L7_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const satisfies readonly (keyof AuthzSource)[];
const L7_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const satisfies readonly (keyof AuthzOperation)[];

/** Istio's principal/namespace pattern: `*` any (presence), `*x` suffix, `x*` prefix, else exact. */
export function stringMatch(value: string): StringMatchMessage {
  if (value === '*') return { presence: {} };
  if (value.startsWith('*')) return { suffix: value.slice(1) };
  if (value.endsWith('*')) return { prefix: value.slice(0, -1) };
  return { exact: value };
}

/** Collects values a field could not carry (bad IPs or ports), for one warning per rule. */
interface Problems {
  bad: string[];
}

function strings(values: readonly string[] | undefined): StringMatchMessage[] | undefined {
  return values && values.length > 0 ? values.map(stringMatch) : undefined;
}

function cidrs(values: readonly string[] | undefined, at: string, problems: Problems): CidrMessage[] | undefined {
  if (!values || values.length === 0) return undefined;
  const out: CidrMessage[] = [];
  for (const v of values) {
    const c = parseCidr(v);
    if (c) out.push({ address: c.bytes, length: c.length });
    else problems.bad.push(`${at} "${v}" is not an IP or CIDR`);
  }
  return out;
}

function ports(values: readonly string[] | undefined, at: string, problems: Problems): number[] | undefined {
  if (!values || values.length === 0) return undefined;
  const out: number[] = [];
  for (const v of values) {
    if (/^\d{1,5}$/.test(v) && Number(v) <= 65535) out.push(Number(v));
    else problems.bad.push(`${at} "${v}" is not a port number`);
  }
  return out;
}

function serviceAccounts(values: readonly string[] | undefined, ruleNamespace: string): ServiceAccountMatchMessage[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    const slash = v.indexOf('/');
    return slash < 0 ? { namespace: ruleNamespace, serviceAccount: v } : { namespace: v.slice(0, slash), serviceAccount: v.slice(slash + 1) };
  });
}

/** Drops undefined and empty-list members; an object with none left is an empty Match ("any"). */
function compact(m: MatchMessage): MatchMessage {
  const out: MatchMessage = {};
  for (const [k, v] of Object.entries(m) as [keyof MatchMessage, unknown[] | undefined][]) {
    if (v !== undefined && v.length > 0) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

function isEmpty(m: MatchMessage): boolean {
  return Object.keys(m).length === 0;
}

/**
 * One clause from OR-ed entries; undefined when an entry matches everything (the clause then
 * constrains nothing and is left out).
 */
function clauseOf(matches: MatchMessage[]): ClauseMessage | undefined {
  if (matches.length === 0 || matches.some(isEmpty)) return undefined;
  return { matches };
}

function operationMatch(op: AuthzOperation | undefined, at: string, l7: string[], problems: Problems): MatchMessage {
  for (const f of L7_OPERATION_FIELDS) if ((op?.[f]?.length ?? 0) > 0) l7.push(`${at}.operation.${f}`);
  return compact({ destinationPorts: ports(op?.ports, `${at}.operation.ports`, problems), notDestinationPorts: ports(op?.notPorts, `${at}.operation.notPorts`, problems) });
}

function sourceMatch(src: AuthzSource | undefined, at: string, ruleNamespace: string, l7: string[], problems: Problems): MatchMessage {
  for (const f of L7_SOURCE_FIELDS) if ((src?.[f]?.length ?? 0) > 0) l7.push(`${at}.source.${f}`);
  return compact({
    sourceIps: cidrs(src?.ipBlocks, `${at}.source.ipBlocks`, problems),
    notSourceIps: cidrs(src?.notIpBlocks, `${at}.source.notIpBlocks`, problems),
    namespaces: strings(src?.namespaces),
    notNamespaces: strings(src?.notNamespaces),
    serviceAccounts: serviceAccounts(src?.serviceAccounts, ruleNamespace),
    notServiceAccounts: serviceAccounts(src?.notServiceAccounts, ruleNamespace),
    principals: strings(src?.principals),
    notPrincipals: strings(src?.notPrincipals),
  });
}

function conditionMatch(c: AuthzCondition, at: string, problems: Problems): MatchMessage {
  const pick = (values: readonly string[] | undefined, where: string): MatchMessage => {
    switch (c.key) {
      case 'source.namespace':
        return { namespaces: strings(values) };
      case 'source.principal':
        return { principals: strings(values) };
      case 'source.ip':
        return { sourceIps: cidrs(values, where, problems) };
      case 'destination.ip':
        return { destinationIps: cidrs(values, where, problems) };
      case 'destination.port':
        return { destinationPorts: ports(values, where, problems) };
      default:
        return {};
    }
  };
  const positive = pick(c.values, `${at}.values`);
  const negative = pick(c.notValues, `${at}.notValues`);
  const negated: MatchMessage = {
    notNamespaces: negative.namespaces,
    notPrincipals: negative.principals,
    notSourceIps: negative.sourceIps,
    notDestinationIps: negative.destinationIps,
    notDestinationPorts: negative.destinationPorts,
  };
  return compact({ ...positive, ...negated });
}

/** One translated rule: its clauses (undefined when an ALLOW rule is dropped) and what was lost. */
interface TranslatedRule {
  clauses: ClauseMessage[] | undefined;
  l7: string[];
  problems: Problems;
}

function translateRule(rule: AuthzRule, action: 'ALLOW' | 'DENY', ruleNamespace: string): TranslatedRule {
  const l7: string[] = [];
  const problems: Problems = { bad: [] };
  const clauses: ClauseMessage[] = [];
  if (rule.to && rule.to.length > 0) {
    const c = clauseOf(rule.to.map((t, i) => operationMatch(t.operation, `to[${i}]`, l7, problems)));
    if (c) clauses.push(c);
  }
  if (rule.from && rule.from.length > 0) {
    const c = clauseOf(rule.from.map((f, i) => sourceMatch(f.source, `from[${i}]`, ruleNamespace, l7, problems)));
    if (c) clauses.push(c);
  }
  (rule.when ?? []).forEach((cond, i) => {
    if (!L4_WHEN_KEYS.has(cond.key)) {
      l7.push(`when[${i}] ${cond.key}`);
      return;
    }
    const c = clauseOf([conditionMatch(cond, `when[${i}]`, problems)]);
    if (c) clauses.push(c);
  });
  return { clauses: action === 'ALLOW' && l7.length > 0 ? undefined : clauses, l7, problems };
}

/** Converts one policy; undefined (with a warning) when it is not for ztunnel. */
export function convertAuthorizationPolicy(p: AuthorizationPolicy, rootNamespace: string, warn: (m: string) => void): AuthorizationMessage | undefined {
  const key = resourceKey(p);
  if (p.spec.targetRef !== undefined || (p.spec.targetRefs?.length ?? 0) > 0) {
    warn(`${key} uses targetRef, which selects gateways and waypoints: not sent to ztunnel`);
    return undefined;
  }
  const action = p.spec.action ?? 'ALLOW';
  if (action === 'CUSTOM' || action === 'AUDIT') {
    warn(`${key}: ztunnel does not support the ${action} action; the policy is not sent to ztunnel (workloads behind ztunnel are not ${action === 'CUSTOM' ? 'checked by the external authorizer' : 'audited'})`);
    return undefined;
  }
  let dryRun = false;
  const annotation = p.metadata.annotations?.[DRY_RUN_ANNOTATION];
  if (annotation !== undefined) {
    const parsed = parseGoBool(annotation);
    if (parsed === undefined) warn(`${key}: annotation ${DRY_RUN_ANNOTATION}="${annotation}" is not a boolean; the policy is enforced`);
    dryRun = parsed === true;
  }
  const scope = hasLabels(p.spec.selector?.matchLabels) ? 'WORKLOAD_SELECTOR' : p.metadata.namespace === rootNamespace ? 'GLOBAL' : 'NAMESPACE';
  const out: AuthorizationMessage = { name: p.metadata.name, namespace: p.metadata.namespace, scope, action, rules: [] };
  if (dryRun) out.dryRun = true;
  (p.spec.rules ?? []).forEach((rule, i) => {
    const t = translateRule(rule, action, p.metadata.namespace);
    if (t.problems.bad.length > 0) warn(`${key} rules[${i}]: ${t.problems.bad.join('; ')}: ignored`);
    if (t.l7.length > 0) {
      const consequence =
        action === 'ALLOW'
          ? 'the rule is dropped, so it allows nothing (fail closed; enforce HTTP rules with an Envoy sidecar)'
          : 'they are ignored, so the rule denies every connection its other fields match (a wider deny)';
      warn(`${key} rules[${i}] (${action}) uses HTTP attributes ztunnel cannot enforce (${t.l7.join(', ')}): ${consequence}`);
    }
    if (t.clauses) out.rules.push({ clauses: t.clauses });
  });
  return out;
}

/** The AuthorizationPolicy module (order 10). */
export const authorizationPolicyModule: ZtunnelPolicyModule = {
  name: 'AuthorizationPolicy',
  order: 10,
  authorizations(ctx: ZtunnelPolicyContext): AuthorizationMessage[] {
    const out: AuthorizationMessage[] = [];
    for (const p of ctx.snapshot.authorizationPolicies) {
      const a = convertAuthorizationPolicy(p, ctx.rootNamespace, ctx.warn);
      if (a) out.push(a);
    }
    return out;
  },
  workloadPolicies(ctx, workload) {
    const keys: string[] = [];
    for (const ns of new Set([workload.namespace, ctx.rootNamespace])) {
      for (const p of ctx.snapshot.authorizationPoliciesByNamespace.get(ns) ?? []) {
        if (p.metadata.namespace !== ns) continue; // the index also lists root-namespace policies elsewhere
        const selector = p.spec.selector?.matchLabels;
        if (!hasLabels(selector) || !selectorMatches(selector, workload.labels)) continue;
        if (p.spec.targetRef !== undefined || (p.spec.targetRefs?.length ?? 0) > 0) continue;
        const action = p.spec.action ?? 'ALLOW';
        if (action !== 'ALLOW' && action !== 'DENY') continue;
        keys.push(`${p.metadata.namespace}/${p.metadata.name}`);
      }
    }
    return [...new Set(keys)].sort();
  },
};
