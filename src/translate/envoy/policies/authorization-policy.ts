/**
 * The AuthorizationPolicy module: Istio's authorization filters on every chain of an inbound
 * listener (https://istio.io/latest/docs/reference/config/security/authorization-policy/, built as
 * istio/istio `pilot/pkg/security/authz/builder` does). HTTP ports get `envoy.filters.http.rbac`,
 * TCP ports `envoy.filters.network.rbac`, in Istio's order:
 *
 * 1. CUSTOM: per provider an RBAC filter whose shadow rules (action DENY) mark the requests its
 *    rules match, then the ext_authz filter that only runs for marked requests;
 * 2. (the JWT filter, from the RequestAuthentication module);
 * 3. AUDIT (RBAC action LOG), DENY, ALLOW: one RBAC filter per action holding every policy of that
 *    action, one Envoy policy per rule named `ns[<ns>]-policy[<name>]-rule[<i>]`; dry-run policies
 *    go to `shadow_rules` (logged and counted, never enforced).
 *
 * A policy without rules matches nothing (so an ALLOW `spec: {}` denies everything). A CUSTOM policy
 * whose provider cannot be used (unknown, unresolvable, or a second provider on one workload)
 * becomes a DENY of what its rules match, as Istio does.
 */
import type { AuthzPolicyIR, ExtAuthzProviderIR, InboundListenerIR, ProxyIR } from '../../../ir/types.js';
import { ExtensionType, FilterName } from '../common.js';
import type { HttpRbac, NamedFilter, NetworkRbac, RbacPolicy, RbacRules } from '../envoy-types.js';
import { EXT_AUTHZ_SHADOW_STAT_PREFIX, httpExtAuthzFilter, networkExtAuthzFilter, providerPolicyPrefix } from './ext-authz.js';
import { matchNothing, rbacPolicyOf } from './rbac-model.js';
import type { EnvoyPolicyModule, FilterSlots } from './types.js';

/** Stat prefix of the network RBAC filters (Istio's `tcp.`). */
export const TCP_RBAC_STAT_PREFIX = 'tcp.';

/** Stat prefixes of the dry-run shadow rules (Istio's). */
export const DRY_RUN_STAT_PREFIX = { ALLOW: 'istio_dry_run_allow_', DENY: 'istio_dry_run_deny_' } as const;

/** Suffix of the RBAC policy names generated for a CUSTOM policy whose provider cannot be used. */
export const BAD_CUSTOM_SUFFIX = '-deny-due-to-bad-CUSTOM-action';

/** Istio's RBAC policy name of rule `i` of a policy. */
export function rbacPolicyName(namespace: string, name: string, i: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${i}]`;
}

const VERB = { ALLOW: 'allows', DENY: 'denies', AUDIT: 'audits', CUSTOM: 'sends to its authorizer' } as const;

interface Built {
  enforce: RbacRules | undefined;
  shadow: RbacRules | undefined;
}

/**
 * The RBAC rules of the policies of one action on listener `l`: enforced and dry-run sets (each
 * undefined when no policy goes there).
 */
function buildRules(policies: readonly AuthzPolicyIR[], action: RbacRules['action'], l: InboundListenerIR, ir: ProxyIR, warn: (msg: string) => void, namePrefix = ''): Built {
  const enforce: RbacRules = { action, policies: {} };
  const shadow: RbacRules = { action, policies: {} };
  let hasEnforce = false;
  let hasShadow = false;
  const forTcp = l.protocol === 'TCP';
  for (const p of policies) {
    const target = p.dryRun ? shadow : enforce;
    if (p.dryRun) hasShadow = true;
    else hasEnforce = true;
    const at = `AuthorizationPolicy ${p.namespace}/${p.name}`;
    if (p.rules.length === 0) {
      target.policies[namePrefix + rbacPolicyName(p.namespace, p.name, 0)] = matchNothing();
      continue;
    }
    p.rules.forEach((rule, i) => {
      const res = rbacPolicyOf(rule, { forTcp, action: p.action, policyNamespace: p.namespace, trustDomains: [ir.proxy.trustDomain, ...ir.trustDomainAliases] });
      const where = `${at} rules[${i}] (${p.action})`;
      if ('dropped' in res) {
        if (res.dropped === 'http-only') {
          warn(`${where} uses HTTP-only fields (${res.reasons.join(', ')}) but port ${l.port} (listener ${l.name}) is TCP: the rule is left out there, so it allows nothing on that port (as Istio)`);
        } else if (res.dropped === 'unknown-key') {
          warn(`${where} is skipped: ${res.reasons.join('; ')}`);
        } else {
          warn(`${where} is left out on listener ${l.name}: ${res.reasons.join('; ')}`);
        }
        return;
      }
      if (res.ignoredHttpOnly.length > 0) {
        warn(
          `${where} uses HTTP-only fields (${res.ignoredHttpOnly.join(', ')}) but port ${l.port} (listener ${l.name}) is TCP: they are ignored there, so the rule ${VERB[p.action]} every connection its other fields match (as Istio)`,
        );
      }
      if (res.ignored.length > 0) warn(`${where} on listener ${l.name}: values left out, so the rule matches more: ${res.ignored.join('; ')}`);
      target.policies[namePrefix + rbacPolicyName(p.namespace, p.name, i)] = res.policy;
    });
  }
  return { enforce: hasEnforce ? enforce : undefined, shadow: hasShadow ? shadow : undefined };
}

function rbacFilter(l: InboundListenerIR, cfg: HttpRbac): NamedFilter {
  if (l.protocol === 'TCP') {
    const net: NetworkRbac = { statPrefix: TCP_RBAC_STAT_PREFIX, ...cfg };
    return { name: FilterName.NetworkRbac, typedConfig: { '@type': ExtensionType.NetworkRbac, ...net } };
  }
  return { name: FilterName.HttpRbac, typedConfig: { '@type': ExtensionType.HttpRbac, ...cfg } };
}

/** The AUDIT, DENY and ALLOW filters (each only when a policy of that action applies). */
function enforcingFilters(l: InboundListenerIR, ir: ProxyIR, warn: (msg: string) => void): NamedFilter[] {
  const out: NamedFilter[] = [];
  for (const [action, rbacAction] of [
    ['AUDIT', 'LOG'],
    ['DENY', 'DENY'],
    ['ALLOW', 'ALLOW'],
  ] as const) {
    const policies = l.authorization.filter((p) => p.action === action);
    if (policies.length === 0) continue;
    const built = buildRules(policies, rbacAction, l, ir, warn);
    const cfg: HttpRbac = {};
    if (built.enforce) cfg.rules = built.enforce;
    if (built.shadow) {
      cfg.shadowRules = built.shadow;
      if (action === 'ALLOW' || action === 'DENY') cfg.shadowRulesStatPrefix = DRY_RUN_STAT_PREFIX[action];
    }
    out.push(rbacFilter(l, cfg));
  }
  return out;
}

/** Renames a provider's rules for the fail-closed DENY filter. */
function badCustom(rules: RbacRules): RbacRules {
  const policies: Record<string, RbacPolicy> = {};
  for (const [name, p] of Object.entries(rules.policies)) policies[name + BAD_CUSTOM_SUFFIX] = p;
  return { action: 'DENY', policies };
}

/** The CUSTOM filters: per provider the shadow RBAC filter and ext_authz, or a fail-closed DENY. */
function customFilters(l: InboundListenerIR, ir: ProxyIR, warn: (msg: string) => void): NamedFilter[] {
  const custom = l.authorization.filter((p) => p.action === 'CUSTOM');
  if (custom.length === 0) return [];
  const byProvider = new Map<string, AuthzPolicyIR[]>();
  for (const p of custom) {
    const name = p.provider ?? '';
    byProvider.set(name, [...(byProvider.get(name) ?? []), p]);
  }
  const names = [...byProvider.keys()].sort();
  const out: NamedFilter[] = [];
  for (const name of names) {
    const policies = byProvider.get(name) ?? [];
    const built = buildRules(policies, 'DENY', l, ir, warn, providerPolicyPrefix(name));
    const rules = built.enforce ?? { action: 'DENY', policies: {} };
    const provider: ExtAuthzProviderIR | undefined = ir.extAuthzProviders.find((p) => p.name === name);
    const users = policies.map((p) => `${p.namespace}/${p.name}`).join(', ');
    const problem =
      names.length > 1
        ? `the workload's CUSTOM policies name ${names.length} providers (${names.join(', ')}); one per workload is supported`
        : !provider
          ? `extension provider ${JSON.stringify(name)} is unknown`
          : provider.error;
    if (problem !== undefined) {
      warn(`AuthorizationPolicy ${users} (CUSTOM) on listener ${l.name}: ${problem}: denying every request its rules match instead (as Istio)`);
      out.push(rbacFilter(l, { rules: badCustom(rules) }));
      continue;
    }
    const ext = l.protocol === 'TCP' ? networkExtAuthzFilter(provider!) : httpExtAuthzFilter(provider!);
    if (!ext) {
      warn(`AuthorizationPolicy ${users} (CUSTOM) names HTTP provider ${name}, which cannot check TCP port ${l.port} (listener ${l.name}): not applied there (as Istio)`);
      continue;
    }
    out.push(rbacFilter(l, { shadowRules: rules, shadowRulesStatPrefix: EXT_AUTHZ_SHADOW_STAT_PREFIX }), ext);
  }
  return out;
}

/** The AuthorizationPolicy module (runs after PeerAuthentication and RequestAuthentication). */
export const authorizationPolicyModule: EnvoyPolicyModule = {
  name: 'AuthorizationPolicy',
  order: 300,
  apply(draft, ir, warn) {
    const l = draft.listener;
    if (l.authorization.length === 0) return;
    const custom = customFilters(l, ir, warn);
    const enforcing = enforcingFilters(l, ir, warn);
    for (const chain of draft.chains) {
      const slots: FilterSlots = l.protocol === 'TCP' ? chain.networkFilters : chain.httpFilters;
      slots.authzCustom.push(...custom);
      slots.authz.push(...enforcing);
    }
  },
};
