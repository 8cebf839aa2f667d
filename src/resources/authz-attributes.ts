/**
 * The attributes an AuthorizationPolicy `when` condition may name, and which parts of a rule are
 * HTTP-only, as Istio documents them
 * (https://istio.io/latest/docs/reference/config/security/conditions/) and validates them
 * (`pkg/config/security` `ValidateAttribute` in istio/istio). Shared by the schema (errors), the
 * warnings and the reference evaluator (`src/policy/`), so all three read a key the same way.
 */
import { isIP } from 'node:net';
import type { PathSegment } from './issues.js';
import type { AuthzRule } from './types.js';

/** The simple (bracket-less) attributes. */
export const SIMPLE_ATTRIBUTES = [
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

/** One of {@link SIMPLE_ATTRIBUTES}. */
export type SimpleAttribute = (typeof SIMPLE_ATTRIBUTES)[number];

/** A parsed `when` key. */
export type ConditionKey =
  | { attribute: SimpleAttribute }
  /** `request.headers[<name>]`; `header` as written (header names compare case-insensitively). */
  | { attribute: 'request.headers'; header: string }
  /** `request.auth.claims[a]` or nested `request.auth.claims[a][b]`: the claim path. */
  | { attribute: 'request.auth.claims'; claim: string[] }
  /** `experimental.envoy.filters.<filter>[<key>]`: Envoy dynamic metadata of `envoy.filters.<filter>`. */
  | { attribute: 'experimental.envoy.filters'; filter: string; key: string };

const SIMPLE = new Set<string>(SIMPLE_ATTRIBUTES);

/** `[a]` → `a` (the name must be non-empty and hold no brackets). */
function singleBracket(rest: string): string | undefined {
  const m = /^\[([^[\]]+)\]$/.exec(rest);
  return m?.[1];
}

/** `[a][b]...` → `['a', 'b']`, as Istio's `extractNameInNestedBrackets`. */
function nestedBrackets(rest: string): string[] | undefined {
  if (!/^(\[[^[\]]+\])+$/.test(rest)) return undefined;
  return [...rest.matchAll(/\[([^[\]]+)\]/g)].map((m) => m[1] ?? '');
}

/**
 * Parses a `when` key. Errors name what is wrong, in Istio's terms: an unknown attribute, a
 * malformed `[name]` part, or an attribute Istio removed (`destination.namespace`, `destination.labels`,
 * `destination.name`, `destination.user`).
 */
export function parseConditionKey(key: string): ConditionKey | { error: string } {
  if (key === '') return { error: 'key must not be empty' };
  if (SIMPLE.has(key)) return { attribute: key as SimpleAttribute };
  const bad = (format: string): { error: string } => ({ error: `bad key "${key}": expected the format ${format}` });
  if (key.startsWith('request.headers')) {
    const header = singleBracket(key.slice('request.headers'.length));
    return header === undefined ? bad('request.headers[<header-name>]') : { attribute: 'request.headers', header };
  }
  if (key.startsWith('request.auth.claims')) {
    const claim = nestedBrackets(key.slice('request.auth.claims'.length));
    return claim === undefined ? bad('request.auth.claims[<claim>] or request.auth.claims[<claim>][<nested-claim>]') : { attribute: 'request.auth.claims', claim };
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    const m = /^experimental\.(envoy\.filters\.[^[\]]+)\[([^[\]]+)\]$/.exec(key);
    return m ? { attribute: 'experimental.envoy.filters', filter: m[1] ?? '', key: m[2] ?? '' } : bad('experimental.envoy.filters.<filter>[<key>]');
  }
  if (key === 'destination.namespace') return { error: `attribute ${key} is replaced by the policy's metadata.namespace` };
  if (key.startsWith('destination.labels')) return { error: `attribute ${key} is replaced by the workload selector` };
  if (key === 'destination.name' || key === 'destination.user') return { error: `deprecated attribute ${key}: only supported in v1alpha1` };
  if (key === 'source.trustDomain') return { error: `attribute ${key} is not supported yet` };
  return {
    error: `unknown attribute "${key}" (expected one of ${SIMPLE_ATTRIBUTES.join(', ')}, request.headers[<name>], request.auth.claims[<name>], experimental.envoy.filters.<filter>[<key>])`,
  };
}

/** Problem with an IP address or CIDR block as Istio's `ValidateIPs` sees it. */
export function ipBlockProblem(value: string): string | undefined {
  if (value === '') return 'empty value not allowed';
  const slash = value.indexOf('/');
  if (slash < 0) return isIP(value) === 0 ? `bad IP address "${value}"` : undefined;
  const ip = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^[0-9]{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return `bad CIDR range "${value}"`;
  return undefined;
}

/** Problem with a port string (Istio `ValidatePorts`, with Skiff's 1-65535 range). */
export function portStringProblem(value: string): string | undefined {
  if (value === '') return 'empty value not allowed';
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) return `bad port "${value}": expected a port number 1-65535`;
  return undefined;
}

/** Problem with a `serviceAccounts` entry (Istio `CheckServiceAccount`): `sa` or `namespace/sa`, no wildcard. */
export function serviceAccountProblem(value: string): string | undefined {
  if (value === '') return 'empty value not allowed';
  if (value.includes('*')) return `wildcard not allowed in "${value}"`;
  if (value.length > 320) return `value cannot exceed 320 characters`;
  const parts = value.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) return `expected format 'serviceAccount' or 'namespace/serviceAccount', found "${value}"`;
  return undefined;
}

/** Problem with one value of a condition on `key` (Istio `ValidateAttribute`), or undefined. */
export function conditionValueProblem(key: ConditionKey, value: string): string | undefined {
  if (value === '') return 'empty value not allowed';
  switch (key.attribute) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return ipBlockProblem(value);
    case 'destination.port':
      return portStringProblem(value);
    case 'source.serviceAccount':
      return serviceAccountProblem(value);
    default:
      return undefined;
  }
}

/** True for the attributes only an HTTP request carries (Istio's generators fail them "for TCP"). */
export function isHttpOnlyCondition(key: ConditionKey): boolean {
  return key.attribute === 'request.headers' || key.attribute.startsWith('request.auth.');
}

/** Source fields that only an HTTP request carries (from a JWT). */
export const HTTP_ONLY_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals'] as const;
/** Operation fields that only an HTTP request carries. */
export const HTTP_ONLY_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

/** One HTTP-only part of a rule: its path inside the rule and a name for messages. */
export interface HttpOnlyPart {
  path: PathSegment[];
  name: string;
}

/**
 * The HTTP-only parts of a rule (non-empty fields and `when` conditions), with paths relative to
 * the rule (`from[0].source.requestPrincipals`, `to[1].operation.methods`, `when[0]`).
 */
export function httpOnlyParts(rule: AuthzRule): HttpOnlyPart[] {
  const out: HttpOnlyPart[] = [];
  (rule.from ?? []).forEach((f, i) => {
    for (const field of HTTP_ONLY_SOURCE_FIELDS) {
      if ((f.source?.[field]?.length ?? 0) > 0) out.push({ path: ['from', i, 'source', field], name: field });
    }
  });
  (rule.to ?? []).forEach((t, i) => {
    for (const field of HTTP_ONLY_OPERATION_FIELDS) {
      if ((t.operation?.[field]?.length ?? 0) > 0) out.push({ path: ['to', i, 'operation', field], name: field });
    }
  });
  (rule.when ?? []).forEach((c, i) => {
    const key = parseConditionKey(c.key);
    if (!('error' in key) && isHttpOnlyCondition(key)) out.push({ path: ['when', i], name: c.key });
  });
  return out;
}

/** The dry-run annotation (https://istio.io/latest/docs/reference/config/annotations/#IoIstioDryRun). */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** Go's `strconv.ParseBool`, which Istio uses for the dry-run annotation; undefined when invalid. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}
