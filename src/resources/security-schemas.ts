/**
 * zod schemas for AuthorizationPolicy and RequestAuthentication (security.istio.io/v1 and
 * v1beta1), with the rules of Istio's `ValidateAuthorizationPolicy` and
 * `ValidateRequestAuthentication` (`pkg/config/validation/validation.go` in istio/istio) and the
 * value checks of `pkg/config/security`: YAML Istio rejects is rejected here, each error at the
 * path of the offending field.
 *
 * Skiff is stricter than Istio in one place: a port (`ports`, `notPorts`, `destination.port`)
 * must be 1-65535 (Istio also lets `0` through validation, which can never match).
 *
 * Warnings (HTTP-only attributes in a DENY rule, targetRefs, fields not implemented) are in
 * `warnings.ts`.
 */
import { z } from 'zod';
import {
  conditionValueProblem,
  DRY_RUN_ANNOTATION,
  ipBlockProblem,
  parseConditionKey,
  parseGoBool,
  portStringProblem,
  serviceAccountProblem,
} from './authz-attributes.js';
import { describeValue, type PathSegment } from './issues.js';
import { jwksProblem } from './jwks.js';
import { checkedString, fail, labelSelectorSchema, metadataSchema, type RefineContext } from './schema-common.js';
import type { AuthorizationPolicy, AuthzCondition, AuthzOperation, AuthzSource, RequestAuthentication } from './types.js';

/** apiVersions accepted for the security kinds (DESIGN.md §3). */
const SECURITY_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;

/**
 * Runs a whole-object check only when the object parsed cleanly, so a typo (an unknown field)
 * is reported alone rather than with the semantic errors it causes.
 */
const WHEN_STRUCTURALLY_VALID = { when: (payload: { issues: readonly unknown[] }): boolean => payload.issues.length === 0 };

// ---------------------------------------------------------------------------------------------
// Value lists

/** A list of strings where every entry passes `problem` (at least non-empty, Istio `CheckEmptyValues`). */
function valueList(problem: (v: string) => string | undefined = () => undefined) {
  return z.array(checkedString((v) => (v === '' ? 'empty value not allowed' : problem(v))));
}

/** A list of port strings; a number written without quotes gets a hint. */
const portList = z.array(
  z
    .string({ error: (iss) => `expected a port as a string (e.g. "8080"), got ${describeValue(iss.input)}` })
    .superRefine((v, ctx) => {
      const p = portStringProblem(v);
      if (p !== undefined) fail(ctx, [], p);
    }),
);

/**
 * Problem with a path that uses `{*}`/`{**}` templates (Istio `CheckValidPathTemplate`): `{**}` must
 * be the last operator, no other `{`/`}`, and template paths use only RFC 3986 pchars.
 */
export function pathTemplateProblem(path: string): string | undefined {
  const isTemplate = path.includes('{*}') || path.includes('{**}');
  let sawMatchAny = false;
  for (const glob of path.replace(/^\/+|\/+$/g, '').split('/')) {
    if ((glob === '{*}' || glob === '{**}') && !sawMatchAny) {
      if (glob === '{**}') sawMatchAny = true;
      continue;
    }
    if (glob === '{*}' || glob === '{**}') return `invalid path template "${path}": {**} must be the last operator`;
    if (/[{}]/.test(glob)) return `invalid path template "${path}": '{' or '}' outside a {*} or {**} operator`;
    if (isTemplate && !/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(glob)) {
      return `invalid path template "${path}": segment "${glob}" has characters a template path may not use`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// AuthorizationPolicy

/** istio.type.v1beta1 `PolicyTargetReference`. */
const policyTargetReferenceSchema = z.strictObject({
  group: z.string().optional(),
  kind: z.string().min(1),
  name: z.string().min(1),
  namespace: z.string().optional(),
});

/** security.istio.io `Source`. */
const sourceSchema = z.strictObject({
  principals: valueList().optional(),
  notPrincipals: valueList().optional(),
  requestPrincipals: valueList().optional(),
  notRequestPrincipals: valueList().optional(),
  namespaces: valueList().optional(),
  notNamespaces: valueList().optional(),
  serviceAccounts: valueList(serviceAccountProblem).max(16).optional(),
  notServiceAccounts: valueList(serviceAccountProblem).max(16).optional(),
  ipBlocks: valueList(ipBlockProblem).optional(),
  notIpBlocks: valueList(ipBlockProblem).optional(),
  remoteIpBlocks: valueList(ipBlockProblem).optional(),
  notRemoteIpBlocks: valueList(ipBlockProblem).optional(),
});

/** security.istio.io `Operation`. */
const operationSchema = z.strictObject({
  hosts: valueList().optional(),
  notHosts: valueList().optional(),
  ports: portList.optional(),
  notPorts: portList.optional(),
  methods: valueList().optional(),
  notMethods: valueList().optional(),
  paths: valueList(pathTemplateProblem).optional(),
  notPaths: valueList(pathTemplateProblem).optional(),
});

/** security.istio.io `Condition`: the key must be a documented attribute, values valid for it. */
const conditionSchema = z
  .strictObject({
    key: z.string(),
    values: z.array(z.string()).optional(),
    notValues: z.array(z.string()).optional(),
  })
  .superRefine((c, ctx) => {
    const key = parseConditionKey(c.key);
    if ('error' in key) {
      fail(ctx, ['key'], key.error);
      return;
    }
    if ((c.values?.length ?? 0) === 0 && (c.notValues?.length ?? 0) === 0) {
      fail(ctx, [], `at least one of values or notValues must be set for key ${c.key}`);
    }
    for (const field of ['values', 'notValues'] as const) {
      (c[field] ?? []).forEach((v, i) => {
        const p = conditionValueProblem(key, v);
        if (p !== undefined) fail(ctx, [field, i], `invalid value for key ${c.key}: ${p}`);
      });
    }
  });

/** security.istio.io `Rule`. */
const ruleSchema = z.strictObject({
  from: z.array(z.strictObject({ source: sourceSchema.optional() })).optional(),
  to: z.array(z.strictObject({ operation: operationSchema.optional() })).optional(),
  when: z.array(conditionSchema).optional(),
});

function hasAny(obj: object): boolean {
  return Object.values(obj).some((v) => Array.isArray(v) && v.length > 0);
}

const CUSTOM_UNSUPPORTED_SOURCE: readonly (keyof AuthzSource)[] = [
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
];

/** The rule checks of Istio's `ValidateAuthorizationPolicy`, for `rules[i]`. */
function checkRule(
  rule: { from?: { source?: AuthzSource }[]; to?: { operation?: AuthzOperation }[]; when?: AuthzCondition[] },
  action: string,
  ctx: RefineContext,
  base: PathSegment[],
): void {
  if (rule.from !== undefined && rule.from.length === 0) fail(ctx, [...base, 'from'], '`from` must not be empty (omit it to match any source)');
  rule.from?.forEach((f, j) => {
    const at = [...base, 'from', j];
    if (f.source === undefined) {
      fail(ctx, [...at, 'source'], '`from.source` must be set');
      return;
    }
    const s = f.source;
    if (!hasAny(s)) fail(ctx, [...at, 'source'], '`from.source` must not be empty');
    const identity = (s.principals?.length ?? 0) + (s.notPrincipals?.length ?? 0) + (s.namespaces?.length ?? 0) + (s.notNamespaces?.length ?? 0);
    if (identity > 0 && (s.serviceAccounts?.length ?? 0) + (s.notServiceAccounts?.length ?? 0) > 0) {
      fail(ctx, [...at, 'source'], 'serviceAccounts cannot be set with namespaces or principals');
    }
    if (action === 'CUSTOM') {
      for (const field of CUSTOM_UNSUPPORTED_SOURCE) {
        if ((s[field]?.length ?? 0) > 0) fail(ctx, [...at, 'source', field], `${field} is not supported with the CUSTOM action`);
      }
    }
  });
  if (rule.to !== undefined && rule.to.length === 0) fail(ctx, [...base, 'to'], '`to` must not be empty (omit it to match any operation)');
  rule.to?.forEach((t, j) => {
    const at = [...base, 'to', j];
    if (t.operation === undefined) fail(ctx, [...at, 'operation'], '`to.operation` must be set');
    else if (!hasAny(t.operation)) fail(ctx, [...at, 'operation'], '`to.operation` must not be empty');
  });
  if (action === 'CUSTOM') {
    rule.when?.forEach((c, j) => {
      if (['source.namespace', 'source.serviceAccount', 'source.principal'].includes(c.key) || c.key.startsWith('request.auth.')) {
        fail(ctx, [...base, 'when', j, 'key'], `${c.key} is not supported with the CUSTOM action`);
      }
    });
  }
}

/** security.istio.io `AuthorizationPolicy` spec, with Istio's `ValidateAuthorizationPolicy` rules. */
export const authorizationPolicySpecSchema = z
  .strictObject({
    selector: labelSelectorSchema.optional(),
    targetRef: policyTargetReferenceSchema.optional(),
    targetRefs: z.array(policyTargetReferenceSchema).max(16).optional(),
    rules: z.array(ruleSchema).max(512).optional(),
    action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
    provider: z.strictObject({ name: z.string() }).optional(),
  })
  .superRefine((ap, ctx) => {
    checkOneOfSelector(ap, ctx);
    const action = ap.action ?? 'ALLOW';
    const noRules = (ap.rules?.length ?? 0) === 0;
    if (action === 'CUSTOM') {
      if (noRules) {
        fail(ctx, ['rules'], 'CUSTOM action without rules never triggers: add an empty rule `{}` to trigger it for every request');
      } else if (ap.provider === undefined || ap.provider.name === '') {
        fail(ctx, ap.provider === undefined ? ['provider'] : ['provider', 'name'], 'the CUSTOM action needs provider.name (an extension provider of the mesh config)');
      }
    } else if (ap.provider !== undefined) {
      fail(ctx, ['provider'], `provider may only be set with the CUSTOM action, found ${action}`);
    }
    if (action === 'DENY' && noRules) {
      fail(ctx, ['rules'], 'DENY action without rules never triggers: add an empty rule `{}` to deny every request');
    }
    (ap.rules ?? []).forEach((rule, i) => checkRule(rule, action, ctx, ['rules', i]));
  }, WHEN_STRUCTURALLY_VALID);

/** Istio `validateOneOfSelectorType`: at most one of selector, targetRef and targetRefs. */
function checkOneOfSelector(spec: { selector?: unknown; targetRef?: unknown; targetRefs?: unknown[] }, ctx: RefineContext): void {
  const set = [spec.selector !== undefined, spec.targetRef !== undefined, (spec.targetRefs?.length ?? 0) > 0].filter(Boolean).length;
  if (set > 1) fail(ctx, spec.selector !== undefined ? ['selector'] : ['targetRefs'], 'only one of selector, targetRef or targetRefs can be set');
}

/** Checks the dry-run annotation of an AuthorizationPolicy (Istio `checkDryRunAnnotation`). */
function checkDryRun(ap: { metadata: { annotations?: Record<string, string> }; spec: { action?: string } }, ctx: RefineContext): void {
  const value = ap.metadata.annotations?.[DRY_RUN_ANNOTATION];
  if (value === undefined) return;
  const at = ['metadata', 'annotations', DRY_RUN_ANNOTATION];
  const action = ap.spec.action ?? 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY') fail(ctx, at, `the ${DRY_RUN_ANNOTATION} annotation only supports the ALLOW and DENY actions, found ${action}`);
  else if (parseGoBool(value) === undefined) fail(ctx, at, `invalid ${DRY_RUN_ANNOTATION} value ${describeValue(value)}: expected "true" or "false"`);
}

/** An AuthorizationPolicy resource; an absent spec is `{}` (ALLOW nothing: deny all in scope). */
export const authorizationPolicySchema = z
  .strictObject({
    apiVersion: z.enum(SECURITY_VERSIONS),
    kind: z.literal('AuthorizationPolicy'),
    metadata: metadataSchema,
    spec: authorizationPolicySpecSchema.prefault({}),
  })
  .superRefine((ap, ctx) => checkDryRun(ap, ctx));

// ---------------------------------------------------------------------------------------------
// RequestAuthentication

/** Problem with a `jwksUri` (Istio `ParseJwksURI`): an http or https URL with a host. */
export function jwksUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `invalid jwksUri ${describeValue(uri)}: not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `jwksUri scheme "${url.protocol.replace(/:$/, '')}" is not supported (expected http or https)`;
  if (url.hostname === '') return `invalid jwksUri ${describeValue(uri)}: no host`;
  return undefined;
}

const GO_DURATION = /^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/** Parses a duration (`5s`, `1.5s`, `500ms`, `1m30s`) into milliseconds; undefined when malformed. */
export function parseDurationMs(text: string): number | undefined {
  if (!GO_DURATION.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|µs|ns)/g)) total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
  return total;
}

/** A duration at millisecond precision, at least 1 ms (Istio `ValidateDuration`). */
export const durationSchema = checkedString((v) => {
  const ms = parseDurationMs(v);
  if (ms === undefined) return `invalid duration ${describeValue(v)} (expected e.g. "5s", "1.5s", "500ms")`;
  if (ms < 1) return 'duration must be at least 1ms';
  if (!Number.isInteger(Math.round(ms * 1e6) / 1e6)) return 'only durations to ms precision are supported';
  return undefined;
});

/** security.istio.io `JWTRule`. */
const jwtRuleSchema = z
  .strictObject({
    issuer: z.string().default(''),
    audiences: valueList().optional(),
    jwksUri: z.string().optional(),
    jwks: z.string().optional(),
    fromHeaders: z.array(z.strictObject({ name: checkedString((v) => (v === '' ? 'header name must not be empty' : undefined)), prefix: z.string().optional() })).optional(),
    fromParams: z.array(checkedString((v) => (v === '' ? 'query parameter name must not be empty' : undefined))).optional(),
    fromCookies: z.array(checkedString((v) => (v === '' ? 'cookie name must not be empty' : undefined))).optional(),
    outputPayloadToHeader: z.string().optional(),
    forwardOriginalToken: z.boolean().optional(),
    outputClaimToHeaders: z
      .array(
        z.strictObject({
          header: checkedString((v) => (/^[-_A-Za-z0-9]+$/.test(v) ? undefined : `invalid header name ${describeValue(v)}`)),
          claim: checkedString((v) => (v === '' ? 'claim must not be empty' : undefined)),
        }),
      )
      .optional(),
    timeout: durationSchema.optional(),
    spaceDelimitedClaims: valueList().optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.issuer === '' && (rule.jwksUri ?? '') === '') fail(ctx, ['issuer'], 'issuer is required (or at least a jwksUri)');
    if (rule.jwksUri !== undefined) {
      const p = jwksUriProblem(rule.jwksUri);
      if (p !== undefined) fail(ctx, ['jwksUri'], p);
    }
    if (rule.jwks !== undefined && rule.jwks !== '') {
      const p = jwksProblem(rule.jwks);
      if (p !== undefined) fail(ctx, ['jwks'], p);
    }
  }, WHEN_STRUCTURALLY_VALID);

/** security.istio.io `RequestAuthentication` spec, with Istio's `ValidateRequestAuthentication` rules. */
export const requestAuthenticationSpecSchema = z
  .strictObject({
    selector: labelSelectorSchema.optional(),
    targetRef: policyTargetReferenceSchema.optional(),
    targetRefs: z.array(policyTargetReferenceSchema).max(16).optional(),
    jwtRules: z.array(jwtRuleSchema).max(4096).optional(),
  })
  .superRefine((ra, ctx) => checkOneOfSelector(ra, ctx));

/** A RequestAuthentication resource. */
export const requestAuthenticationSchema = z.strictObject({
  apiVersion: z.enum(SECURITY_VERSIONS),
  kind: z.literal('RequestAuthentication'),
  metadata: metadataSchema,
  spec: requestAuthenticationSpecSchema.prefault({}),
});

// The parsed shapes must be the shapes in types.ts (a mismatch fails type checking here).
const _apCheck: z.ZodType<Omit<AuthorizationPolicy, 'origin'>> = authorizationPolicySchema;
const _raCheck: z.ZodType<Omit<RequestAuthentication, 'origin'>> = requestAuthenticationSchema;
