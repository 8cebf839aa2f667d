/**
 * The reference evaluator: Istio's authorization decision for one request to one workload,
 * written from Istio's documented semantics (the AuthorizationPolicy reference, the
 * "Authorization" concepts page, "Authorization policy precedence", "Dry run", "ipBlocks and
 * remoteIpBlocks", "Authorization Policy for TCP") and Istio's own mapping rules — never from
 * Skiff's translator, so the two check each other.
 *
 * The order is the one Istio's filters run in:
 *
 * 1. PeerAuthentication (when given): STRICT refuses a peer without a client certificate;
 *    DISABLE means there is no peer identity.
 * 2. RequestAuthentication (HTTP): a token that is present and invalid → 401 (403 when only its
 *    audience is wrong, as Envoy answers), whatever the authorization policies say; a missing
 *    token passes.
 * 3. CUSTOM: if a CUSTOM policy's rules match, its external authorizer decides (deny → 403).
 * 4. AUDIT: matching AUDIT rules are recorded; they never change the decision.
 * 5. DENY: any matching DENY rule → 403.
 * 6. ALLOW: no (enforced) ALLOW policy → allow; one matches → allow; otherwise → 403.
 *
 * A policy applies by namespace and selector (`scope.ts`); a policy without rules never matches
 * (so `spec: {}` is "allow nothing"); a policy annotated `istio.io/dry-run: "true"` is evaluated
 * into `dryRun` and never enforced. On a TCP port HTTP-only attributes behave as `rule.ts` says.
 */
import { DRY_RUN_ANNOTATION, parseGoBool } from '../resources/authz-attributes.js';
import type { AuthorizationPolicy, AuthzAction } from '../resources/types.js';
import { authenticate, type ScopedJwtRule } from './jwt.js';
import { normalizePath, withSpiffePrefix } from './match.js';
import { evaluateRule, type RequestAttributes } from './rule.js';
import { byKey, effectiveMtlsMode, policyApplies, policyKey } from './scope.js';
import type { Decision, DryRunResult, EvaluationInput, ExternalAuthzCheck, RequestAuth, RuleRef } from './types.js';

/** The default root namespace (DESIGN.md §3). */
const DEFAULT_ROOT_NAMESPACE = 'skiff-system';
/** Istio's default trust domain. */
const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** True when the policy carries `istio.io/dry-run` set to a Go-true value. */
export function isDryRun(policy: AuthorizationPolicy): boolean {
  const v = policy.metadata.annotations?.[DRY_RUN_ANNOTATION];
  return v !== undefined && parseGoBool(v) === true;
}

/** Lower-case header map, values joined with `,`. */
function headerMap(headers: EvaluationInput['request']['headers']): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(headers ?? {})) {
    const value = typeof v === 'string' ? v : v.join(',');
    const name = k.toLowerCase();
    const prev = out.get(name);
    out.set(name, prev === undefined ? value : `${prev},${value}`);
  }
  return out;
}

/** The first matching rule of `policy` (index), or undefined; notes go to `warn`. */
function firstMatch(policy: AuthorizationPolicy, action: AuthzAction, a: RequestAttributes, warn: (m: string) => void): number | undefined {
  const rules = policy.spec.rules ?? [];
  for (let i = 0; i < rules.length; i++) {
    const outcome = evaluateRule(rules[i] ?? {}, action, a, policyKey(policy), policy.metadata.namespace, i);
    for (const n of outcome.notes) warn(n);
    if (outcome.matches) return i;
  }
  return undefined;
}

/**
 * Evaluates one request (or TCP connection) to `input.destination` against the policies (see
 * the module comment). Pure and synchronous apart from calling `input.externalAuthorizer`.
 */
export function evaluate(input: EvaluationInput): Decision {
  const warnings: string[] = [];
  const warn = (m: string): void => {
    if (!warnings.includes(m)) warnings.push(m);
  };
  const dest = input.destination;
  const req = input.request;
  const root = input.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const http = dest.protocol === 'HTTP';
  const dryRun: DryRunResult[] = [];
  const audit: RuleRef[] = [];
  const result = (d: Omit<Decision, 'dryRun' | 'audit' | 'warnings'>): Decision => ({ ...d, dryRun, audit, warnings });

  // 1. PeerAuthentication.
  let peer = req.peer !== undefined && req.peer !== '' ? withSpiffePrefix(req.peer) : undefined;
  if (input.policies.peerAuthentications !== undefined) {
    const mtls = effectiveMtlsMode(input.policies.peerAuthentications, dest.namespace, dest.labels, dest.port, root);
    if (mtls.mode === 'STRICT' && peer === undefined) {
      return result({
        allowed: false,
        status: 'mtls-required',
        reason: `PeerAuthentication ${mtls.source} requires mTLS on port ${dest.port} and the peer sent no client certificate: the connection is refused`,
      });
    }
    if (mtls.mode === 'DISABLE' && peer !== undefined) {
      warn(`PeerAuthentication ${mtls.source} disables mTLS on port ${dest.port}: the peer identity ${peer} is not seen`);
      peer = undefined;
    }
  }

  const applicable = byKey(input.policies.authorizationPolicies.filter((p) => policyApplies(p, dest.namespace, dest.labels, root)));
  for (const p of input.policies.authorizationPolicies) {
    const refs = p.spec.targetRef !== undefined || (p.spec.targetRefs?.length ?? 0) > 0;
    if (refs && (p.metadata.namespace === dest.namespace || p.metadata.namespace === root)) {
      warn(`${policyKey(p)} uses targetRef/targetRefs, which attach to waypoints and gateways: it does not apply to a sidecar`);
    }
  }

  const headers = headerMap(req.headers);
  if (req.jwt !== undefined && !headers.has('authorization')) headers.set('authorization', `Bearer ${req.jwt.token}`);
  const rawPath = req.path ?? '/';
  const method = req.method ?? 'GET';
  if (req.host !== undefined && !headers.has(':authority')) headers.set(':authority', req.host);
  if (!headers.has(':method')) headers.set(':method', method);
  if (!headers.has(':path')) headers.set(':path', rawPath);

  // 2. RequestAuthentication (HTTP only: Envoy's JWT filter is an HTTP filter).
  let requestAuth: RequestAuth | undefined;
  if (http) {
    const rules: ScopedJwtRule[] = [];
    for (const ra of byKey((input.policies.requestAuthentications ?? []).filter((r) => policyApplies(r, dest.namespace, dest.labels, root)))) {
      (ra.spec.jwtRules ?? []).forEach((rule, index) => rules.push({ rule, policy: policyKey(ra), index }));
    }
    rules.sort((x, y) => (x.rule.issuer < y.rule.issuer ? -1 : x.rule.issuer > y.rule.issuer ? 1 : 0));
    const now = input.now === undefined ? Date.now() : typeof input.now === 'number' ? input.now : input.now.getTime();
    const outcome = authenticate(rules, { method, rawPath, headers }, input.jwks, now, warn);
    if (outcome.kind === 'invalid') {
      const reason = `RequestAuthentication rejected the token: ${outcome.reason}`;
      return result(
        outcome.audience
          ? { allowed: false, status: 'jwt-audience-not-allowed', httpStatus: 403, reason }
          : { allowed: false, status: 'jwt-invalid', httpStatus: 401, reason },
      );
    }
    if (outcome.kind === 'valid') requestAuth = { principal: outcome.principal, claims: outcome.payload };
  }

  const xff = headers.get('x-forwarded-for');
  const lastXff = xff?.split(',').map((s) => s.trim()).filter((s) => s !== '').pop();
  const attributes: RequestAttributes = {
    protocol: dest.protocol,
    peer,
    sourceIp: req.sourceIp,
    remoteIp: req.remoteIp ?? (http && lastXff !== undefined ? lastXff : req.sourceIp),
    destinationIp: dest.ip,
    destinationPort: dest.port,
    sni: req.sni ?? '',
    host: http ? req.host : undefined,
    method: http ? method : undefined,
    path: http ? normalizePath(rawPath) : undefined,
    headers: http ? headers : new Map(),
    jwt: requestAuth?.claims,
    trustDomains: [input.trustDomain ?? DEFAULT_TRUST_DOMAIN, ...(input.trustDomainAliases ?? [])],
  };
  const withAuth = (d: Omit<Decision, 'dryRun' | 'audit' | 'warnings' | 'requestAuth'>): Decision =>
    result(requestAuth ? { ...d, requestAuth } : d);

  const byAction = (action: AuthzAction): AuthorizationPolicy[] => applicable.filter((p) => (p.spec.action ?? 'ALLOW') === action);

  // 3. CUSTOM.
  const custom = byAction('CUSTOM').filter((p) => !isDryRun(p));
  const providers = [...new Set(custom.map((p) => p.spec.provider?.name ?? ''))];
  for (const p of custom) {
    const name = p.spec.provider?.name ?? '';
    const known = input.extensionProviders?.find((e) => e.name === name);
    if (!http && known?.envoyExtAuthzHttp) {
      warn(`CUSTOM policy ${policyKey(p)}: provider ${name} is an HTTP authorizer, which does not apply to TCP port ${dest.port}`);
      continue;
    }
    const ruleIndex = firstMatch(p, 'CUSTOM', attributes, warn);
    if (ruleIndex === undefined) continue;
    const by: RuleRef = { policy: policyKey(p), action: 'CUSTOM', ruleIndex };
    const deny = (reason: string): Decision => withAuth({ allowed: false, status: 'custom-denied', httpStatus: 403, by, reason });
    if (providers.length > 1) {
      warn(`several CUSTOM providers apply to this workload (${providers.join(', ')}); Istio allows one per workload and denies the requests they match`);
      return deny(`CUSTOM policy ${by.policy} matched, but several providers apply to the workload: denied`);
    }
    if (input.extensionProviders !== undefined && !known) {
      warn(`CUSTOM policy ${by.policy}: provider "${name}" is not defined in the mesh config extensionProviders`);
      return deny(`CUSTOM policy ${by.policy} matched and its provider "${name}" is not defined: denied`);
    }
    const check: ExternalAuthzCheck = { provider: name, policy: by.policy, destination: dest, request: req };
    if (input.externalAuthorizer === undefined) {
      const failOpen = (known?.envoyExtAuthzHttp ?? known?.envoyExtAuthzGrpc)?.failOpen === true;
      warn(`CUSTOM policy ${by.policy} matched but no external authorizer was given: treated as unreachable (failOpen ${failOpen})`);
      if (!failOpen) return deny(`CUSTOM policy ${by.policy} matched and provider ${name} could not be asked: denied`);
      break;
    }
    if (!input.externalAuthorizer(check)) return deny(`CUSTOM policy ${by.policy} matched and provider ${name} denied the request`);
    break; // Envoy asks the authorizer once per request.
  }

  // 4. AUDIT (recorded only).
  for (const p of byAction('AUDIT')) {
    const ruleIndex = firstMatch(p, 'AUDIT', attributes, warn);
    if (ruleIndex !== undefined) audit.push({ policy: policyKey(p), action: 'AUDIT', ruleIndex });
  }

  // Dry-run ALLOW and DENY policies: evaluated, recorded, never enforced.
  for (const action of ['DENY', 'ALLOW'] as const) {
    for (const p of byAction(action).filter(isDryRun)) {
      const ruleIndex = firstMatch(p, action, attributes, warn);
      dryRun.push(ruleIndex === undefined ? { policy: policyKey(p), action, wouldMatch: false } : { policy: policyKey(p), action, wouldMatch: true, ruleIndex });
    }
  }

  // 5. DENY.
  for (const p of byAction('DENY').filter((x) => !isDryRun(x))) {
    const ruleIndex = firstMatch(p, 'DENY', attributes, warn);
    if (ruleIndex !== undefined) {
      return withAuth({
        allowed: false,
        status: 'denied-by-deny',
        httpStatus: 403,
        by: { policy: policyKey(p), action: 'DENY', ruleIndex },
        reason: `DENY policy ${policyKey(p)} rules[${ruleIndex}] matched`,
      });
    }
  }

  // 6. ALLOW.
  const allow = byAction('ALLOW').filter((x) => !isDryRun(x));
  if (allow.length === 0) return withAuth({ allowed: true, status: 'no-allow-policies', reason: 'no ALLOW policy applies to the workload: allowed' });
  for (const p of allow) {
    const ruleIndex = firstMatch(p, 'ALLOW', attributes, warn);
    if (ruleIndex !== undefined) {
      return withAuth({
        allowed: true,
        status: 'allowed-by-allow',
        by: { policy: policyKey(p), action: 'ALLOW', ruleIndex },
        reason: `ALLOW policy ${policyKey(p)} rules[${ruleIndex}] matched`,
      });
    }
  }
  return withAuth({
    allowed: false,
    status: 'no-allow-match',
    httpStatus: 403,
    reason: `ALLOW policies apply (${allow.map(policyKey).join(', ')}) but none matched: denied`,
  });
}
