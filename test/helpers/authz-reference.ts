/**
 * Runs one case of the authorization table through the reference evaluator (`src/policy`,
 * Istio's documented semantics): the same parsed policies, the destination workload `b`, and the
 * request exactly as the real client sends it (peer SPIFFE ID, source address, port, SNI, host,
 * method, path with query, headers incl. `x-forwarded-for` and `authorization`). Nothing is
 * pre-computed here (no remote address, no token parsing): the evaluator derives it, as Envoy does.
 */
import { evaluate, type Decision, type EvaluationInput } from '../../src/policy/index.js';
import type { ExtensionProvider } from '../../src/resources/mesh-config.js';
import type { AuthorizationPolicy, MeshResource, RequestAuthentication } from '../../src/resources/types.js';
import type { AuthzCase, CaseContext, Expected, TokenName } from '../authz-cases/types.js';
import { BACKEND_HOST, B_LABELS, HTTP_PORT, NS, TCP_PORT, backendSni } from './authz-lab.js';

/** The evaluator's decision in the table's terms. */
export interface ReferenceOutcome {
  outcome: Expected | 'other';
  detail: string;
}

/** What the evaluator needs besides the case: lab addresses and identities, tokens, keys, the authorizer. */
export interface ReferenceEnv {
  ctx: CaseContext;
  clients: { c1: string; c2: string };
  /** SPIFFE ID per identity name. */
  spiffeIds: Readonly<Record<string, string>>;
  tokens: Readonly<Record<TokenName, string>>;
  /** JWKS JSON served at `ctx.jwksUri`. */
  jwksUriKeys: string;
  /** The control plane's MeshConfig extension providers (CUSTOM). */
  extensionProviders: readonly ExtensionProvider[];
  /** Decides a CUSTOM check from the request headers, like the test's ext_authz stub. */
  externalAuthorizer: (headers: Readonly<Record<string, string>>) => boolean;
}

/** Builds the evaluator input for `kase` (exported for failure messages). */
export function referenceInput(kase: AuthzCase, resources: readonly MeshResource[], env: ReferenceEnv): EvaluationInput {
  const r = kase.request;
  const tcp = r.port === 'tcp';
  const port = tcp ? TCP_PORT : HTTP_PORT;
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  if (r.xff) headers['x-forwarded-for'] = r.xff === 'c1' || r.xff === 'c2' ? env.clients[r.xff] : r.xff;
  if (r.jwt) headers['authorization'] = `Bearer ${env.tokens[r.jwt]}`;
  const peer = r.peer ? env.spiffeIds[r.peer] : undefined;
  return {
    policies: {
      authorizationPolicies: resources.filter((x): x is AuthorizationPolicy => x.kind === 'AuthorizationPolicy'),
      requestAuthentications: resources.filter((x): x is RequestAuthentication => x.kind === 'RequestAuthentication'),
    },
    rootNamespace: 'skiff-system',
    destination: { namespace: NS, labels: { ...B_LABELS }, ip: env.ctx.bIp, port, protocol: tcp ? 'TCP' : 'HTTP' },
    request: {
      ...(peer ? { peer, sni: r.sni ?? backendSni(port) } : {}),
      sourceIp: env.clients[r.client ?? 'c1'],
      ...(tcp ? {} : { host: r.host ?? BACKEND_HOST, method: r.method ?? 'GET', path: r.path ?? '/', headers }),
    },
    jwks: { [env.ctx.jwksUri]: env.jwksUriKeys },
    extensionProviders: env.extensionProviders,
    externalAuthorizer: (check) => {
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(check.request.headers ?? {})) h[k.toLowerCase()] = typeof v === 'string' ? v : v.join(',');
      return env.externalAuthorizer(h);
    },
  };
}

function describeDecision(d: Decision): string {
  const by = d.by ? ` by ${d.by.policy} ${d.by.action} rule ${d.by.ruleIndex}` : '';
  const warnings = d.warnings.length > 0 ? `; warnings: ${d.warnings.join(' | ')}` : '';
  return `${d.status}${d.httpStatus ? ` (${d.httpStatus})` : ''}${by}: ${d.reason}${warnings}`;
}

/** Evaluates `kase` against `resources` (the policy set as parsed by `parseResources`). */
export function evaluateCase(kase: AuthzCase, resources: readonly MeshResource[], env: ReferenceEnv): ReferenceOutcome {
  const d = evaluate(referenceInput(kase, resources, env));
  const detail = describeDecision(d);
  if (d.allowed) return { outcome: 'allow', detail };
  return { outcome: d.status === 'jwt-invalid' || d.httpStatus === 401 ? 'unauthenticated' : 'deny', detail };
}
