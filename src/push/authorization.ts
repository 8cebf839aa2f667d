/**
 * Which AuthorizationPolicies and RequestAuthentications apply to a workload, and their normalised
 * IR form. Scope as Istio defines it
 * (https://istio.io/latest/docs/reference/config/security/authorization-policy/): a policy in the
 * root namespace without a selector applies mesh-wide; with a selector to the matching workloads of
 * every namespace; a policy in another namespace without a selector applies to that namespace, with
 * a selector to the matching workloads of that namespace. Every applicable policy applies (there is
 * no precedence, unlike PeerAuthentication). RequestAuthentication is scoped the same way.
 */
import { resourceKey, type AuthorizationPolicy, type AuthzOperation, type AuthzRule, type AuthzSource, type RequestAuthentication } from '../resources/types.js';
import type { MeshSnapshot } from '../registry/types.js';
import type { AuthzOperationIR, AuthzPolicyIR, AuthzRuleIR, AuthzSourceIR } from '../ir/types.js';
import { hasLabels, selectorMatches } from './selectors.js';

/** The dry-run annotation (https://istio.io/latest/docs/reference/config/annotations/#IoIstioDryRun). */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** The workload a policy is selected for. */
export interface PolicyTarget {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** The root namespace (`skiff-system` unless the mesh config says otherwise). */
  rootNamespace: string;
  /** `namespace/name` of the workload, for messages. */
  ref: string;
}

type Scoped = AuthorizationPolicy | RequestAuthentication;

/**
 * The scope in which `p` applies to `target`, or undefined when it does not. A policy with
 * `targetRef`/`targetRefs` applies to gateways and waypoints only, never to a sidecar (reported).
 */
export function policyScope(p: Scoped, target: PolicyTarget, warn: (msg: string) => void): AuthzPolicyIR['scope'] | undefined {
  const ns = p.metadata.namespace;
  if (ns !== target.namespace && ns !== target.rootNamespace) return undefined;
  if (p.spec.targetRef !== undefined || (p.spec.targetRefs?.length ?? 0) > 0) {
    warn(`${resourceKey(p)} uses targetRef, which selects gateways and waypoints: not applied to sidecar workload ${target.ref}`);
    return undefined;
  }
  const selector = p.spec.selector?.matchLabels;
  if (hasLabels(selector)) return selectorMatches(selector, target.labels) ? 'workload' : undefined;
  return ns === target.rootNamespace ? 'mesh' : 'namespace';
}

/** Candidates of one kind: the target's namespace and the root namespace. */
function candidates<T>(byNamespace: ReadonlyMap<string, readonly T[]>, target: PolicyTarget): T[] {
  const out = [...(byNamespace.get(target.namespace) ?? [])];
  if (target.rootNamespace !== target.namespace) out.push(...(byNamespace.get(target.rootNamespace) ?? []));
  return out;
}

/** The RequestAuthentications that apply to `target`, sorted by namespace then name. */
export function applicableRequestAuthentications(snapshot: MeshSnapshot, target: PolicyTarget, warn: (msg: string) => void): RequestAuthentication[] {
  return candidates(snapshot.requestAuthenticationsByNamespace, target)
    .filter((p) => policyScope(p, target, warn) !== undefined)
    .sort(byNamespacedName);
}

/** The AuthorizationPolicies that apply to `target`, normalised, sorted by namespace then name. */
export function applicableAuthorizationPolicies(snapshot: MeshSnapshot, target: PolicyTarget, warn: (msg: string) => void): AuthzPolicyIR[] {
  const out: AuthzPolicyIR[] = [];
  for (const p of [...candidates(snapshot.authorizationPoliciesByNamespace, target)].sort(byNamespacedName)) {
    const scope = policyScope(p, target, warn);
    if (scope === undefined) continue;
    out.push(normalizePolicy(p, scope, warn));
  }
  return out;
}

function byNamespacedName(a: Scoped, b: Scoped): number {
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * Go's `strconv.ParseBool` (which Istio reads the dry-run annotation with); undefined when the text
 * is none of `1 t T TRUE true True 0 f F FALSE false False`.
 */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

/**
 * The IR form of one policy: action defaulted to ALLOW, `provider` kept for CUSTOM only, the
 * dry-run annotation read (ALLOW and DENY only, as Istio validates it), empty lists dropped and a
 * missing `source`/`operation` read as "any".
 */
export function normalizePolicy(p: AuthorizationPolicy, scope: AuthzPolicyIR['scope'], warn: (msg: string) => void): AuthzPolicyIR {
  const action = p.spec.action ?? 'ALLOW';
  const out: AuthzPolicyIR = { name: p.metadata.name, namespace: p.metadata.namespace, action, dryRun: false, rules: (p.spec.rules ?? []).map(normalizeRule), scope };
  if (action === 'CUSTOM') out.provider = p.spec.provider?.name ?? '';
  else if (p.spec.provider !== undefined) warn(`${resourceKey(p)}: provider is only used with action CUSTOM: ignored`);
  const annotation = p.metadata.annotations?.[DRY_RUN_ANNOTATION];
  if (annotation !== undefined) {
    const dry = parseGoBool(annotation);
    if (dry === undefined) {
      warn(`${resourceKey(p)}: annotation ${DRY_RUN_ANNOTATION}=${JSON.stringify(annotation)} is not a boolean: the policy is enforced`);
    } else if (dry && action !== 'ALLOW' && action !== 'DENY') {
      warn(`${resourceKey(p)}: ${DRY_RUN_ANNOTATION} is supported for ALLOW and DENY only (Istio rejects it on ${action}): the policy is enforced`);
    } else {
      out.dryRun = dry;
    }
  }
  return out;
}

function normalizeRule(r: AuthzRule): AuthzRuleIR {
  return {
    from: (r.from ?? []).map((f): AuthzSourceIR => compact(f.source ?? {})),
    to: (r.to ?? []).map((t): AuthzOperationIR => compact(t.operation ?? {})),
    when: (r.when ?? []).map((c) => ({ key: c.key, values: [...(c.values ?? [])], notValues: [...(c.notValues ?? [])] })),
  };
}

/** Copies the non-empty lists of a Source or Operation. */
function compact(s: AuthzSource | AuthzOperation): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(s) as Array<[string, unknown]>) {
    if (Array.isArray(v) && v.length > 0) out[k] = v.map(String);
  }
  return out;
}
