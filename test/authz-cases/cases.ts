/**
 * The authorization table (issue 3 §4): every edge case of Istio's documented AuthorizationPolicy
 * and RequestAuthentication semantics, as policy sets and requests with the decision Istio
 * documents. Written from Istio's documentation (each case cites it), never from Skiff's code;
 * the suite runs every case through the reference evaluator and through real Envoy.
 *
 * The destination is always `b`: namespace `shop`, service account `backend`, labels
 * `app: backend, version: v1`, HTTP port 8080, TCP port 9000. The mesh-wide PeerAuthentication
 * is PERMISSIVE, so requests without a peer identity (plaintext) are possible.
 */
import type { AuthzCase, AuthzGroup, CaseContext, CaseRequest, Expected } from './types.js';

// Where Istio documents each behaviour.
const AP_REF = 'https://istio.io/latest/docs/reference/config/security/authorization-policy/';
const CONCEPT = 'https://istio.io/latest/docs/concepts/security/#authorization';
const COND = 'https://istio.io/latest/docs/reference/config/security/conditions/';
const NORM = 'https://istio.io/latest/docs/reference/config/security/normalization/';
const TCP_TASK = 'https://istio.io/latest/docs/tasks/security/authorization/authz-tcp/';
const DRY_RUN = 'https://istio.io/latest/docs/tasks/security/authorization/authz-dry-run/';
const RA_REF = 'https://istio.io/latest/docs/reference/config/security/request_authentication/';
const JWT_TASK = 'https://istio.io/latest/docs/tasks/security/authorization/authz-jwt/';
const CUSTOM_TASK = 'https://istio.io/latest/docs/tasks/security/authorization/authz-custom/';
const DENY_TASK = 'https://istio.io/latest/docs/tasks/security/authorization/authz-deny/';

const DOC = {
  evaluation: `${AP_REF} (evaluation: CUSTOM, then DENY, then ALLOW; "If there are no ALLOW policies for the workload, allow the request"; "If any of the ALLOW policies match the request, allow"; else deny)`,
  allowNothing: `${AP_REF} ("spec: {}" allows nothing: "rules: If not set, the match will never occur. This is equivalent to setting a default of deny ... if the action is ALLOW")`,
  allowAll: `${AP_REF} (the "allow-all" example: "rules: [{}]" allows all requests)`,
  denyFirst: `${AP_REF} + ${DENY_TASK} (DENY is evaluated before ALLOW and "will not be bypassed by any ALLOW actions"; an empty rule {} matches every request)`,
  valueMatching: `${CONCEPT} (value matching: exact, prefix "abc*", suffix "*abc", presence "*" = any non-empty value; unset = any)`,
  principalsStar: `${AP_REF} (principals "requires mTLS enabled"; presence match "*" means an authenticated peer is required, unset means any source)`,
  exclusion: `${CONCEPT} (exclusion matching: notX matches when the attribute is NOT one of the values)`,
  serviceAccounts: `${AP_REF} (Source.serviceAccounts: "<namespace>/<serviceaccount>", a bare "<serviceaccount>" means the policy's namespace; derived from the peer certificate)`,
  ipBlocks: `${AP_REF} (ipBlocks: "populated from the source address of the IP packet"; remoteIpBlocks: "populated from X-Forwarded-For header or proxy protocol")`,
  ports: `${AP_REF} (Operation.ports: "A list of ports as specified in the connection")`,
  methods: `${AP_REF} (Operation.methods: "A list of methods as specified in the HTTP request")`,
  hosts: `${AP_REF} (Operation.hosts / notHosts: "The match is case-insensitive")`,
  paths: `${AP_REF} + ${CONCEPT} (paths with exact, prefix "/p/*" and suffix "*/s" matching)`,
  query: `${NORM} (Path related §5 "Path with query": the policy "will strip everything after the question mark" when comparing paths)`,
  dotSegments: `${NORM} (Path related §4: "/./" and "/../" are resolved per RFC 3986 before policies are evaluated, BASE normalization on by default)`,
  headerNames: `${NORM} (Header name related §1: header names in request.headers[...] are compared case-insensitively)`,
  conditions: `${COND} (when keys: request.headers, source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, request.auth.*, destination.ip, destination.port, connection.sni)`,
  audit: `${AP_REF} ("AUDIT policies do not affect whether requests are allowed or denied ... based solely on CUSTOM, DENY and ALLOW")`,
  custom: `${CUSTOM_TASK} + ${AP_REF} (CUSTOM is evaluated first and its rules say when the external authorizer is called: "If there are any CUSTOM policies that match the request, evaluate and deny the request if the evaluation result is deny"; DENY and ALLOW still apply after it)`,
  scope: `${AP_REF} (scope: "metadata/namespace" — the root namespace applies mesh-wide; "The selector will match with workloads in the same namespace as the authorization policy. If ... in the root namespace, the selector will additionally match with workloads in all namespaces")`,
  dryRun: `${DRY_RUN} + ${AP_REF} (annotation istio.io/dry-run: "true" dry-runs the policy "without actually enforcing it")`,
  tcpAllow: `${TCP_TASK} (an ALLOW rule that uses an HTTP-only field such as methods on TCP traffic becomes invalid and is ignored, so the TCP request is denied)`,
  tcpDeny: `${AP_REF} + ${TCP_TASK} (on TCP "For a DENY rule, missing attributes are treated as matches": the HTTP-only field is ignored, the rest of the rule still applies — a wider deny)`,
  jwtAuthn: `${RA_REF} ("It will reject a request if the request contains invalid authentication information ... A request that does not contain any authentication credentials will be accepted but will not have any authenticated identity"; Envoy's jwt_authn, Istio's data plane, answers 401)`,
  jwtIssuer: `${RA_REF} (JWTRule.issuer: "A JWT with different iss claim will be rejected")`,
  jwtAudience: `${RA_REF} (JWTRule.audiences: "A JWT containing any of these audiences will be accepted"; an invalid token "will be rejected") — Istio's data plane is Envoy's jwt_authn filter, which rejects a token whose audience is not allowed with 403, not 401 (https://github.com/envoyproxy/envoy/pull/7679, "Jwt Authn: Change 401 to 403 When Audience not Allowed")`,
  jwtRequire: `${JWT_TASK} + ${AP_REF} (requestPrincipals ["*"] requires a valid JWT: a request without one is denied by the ALLOW policy; requestPrincipals are "<ISS>/<SUB>")`,
  jwtDenyMissing: `${RA_REF} (to reject requests without a token, a DENY policy with notRequestPrincipals ["*"])`,
  jwtConditions: `${COND} (request.auth.principal "<iss>/<sub>", request.auth.audiences, request.auth.presenter (azp), request.auth.claims[...] incl. nested and list claims) + ${JWT_TASK}`,
  jwksUri: `${RA_REF} (JWTRule.jwksUri: "URL of the provider's public key set to validate signature of the JWT")`,
} as const;

function ap(name: string, spec: string, opts: { ns?: string; dryRun?: boolean } = {}): string {
  const annotations = opts.dryRun ? `\n  annotations: {"istio.io/dry-run": "true"}` : '';
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: ${opts.ns ?? 'shop'}${annotations}
spec: ${spec}
---
`;
}

function requestAuthn(ctx: CaseContext): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  selector: {matchLabels: {app: backend}}
  jwtRules:
    - issuer: ${JSON.stringify(ctx.issuer)}
      audiences: [backend]
      jwks: ${JSON.stringify(ctx.jwks)}
---
`;
}

function c(name: string, request: CaseRequest, expect: Expected, doc: string): AuthzCase {
  return { name, request, expect, doc };
}

const FRONTEND = 'cluster.local/ns/shop/sa/frontend';
const ADMIN = 'cluster.local/ns/shop/sa/admin';
const OTHER_FRONTEND = 'cluster.local/ns/other/sa/frontend';
const B_SNI = 'outbound_.8080_._.backend.shop.svc.cluster.local';

/** The table, grouped by policy set (consecutive groups always differ, so each is a real push). */
export const AUTHZ_GROUPS: AuthzGroup[] = [
  {
    name: 'no-policy',
    policies: () => '',
    cases: [
      c('no-policy-allows-plaintext-http', {}, 'allow', DOC.evaluation),
      c('no-policy-allows-mtls-http', { peer: 'frontend' }, 'allow', DOC.evaluation),
      c('no-policy-allows-tcp', { port: 'tcp' }, 'allow', DOC.evaluation),
    ],
  },
  {
    name: 'allow-nothing',
    policies: () => ap('allow-nothing', '{}'),
    cases: [
      c('empty-spec-allows-nothing-http', { peer: 'frontend' }, 'deny', DOC.allowNothing),
      c('empty-spec-allows-nothing-tcp', { port: 'tcp', peer: 'frontend' }, 'deny', DOC.allowNothing),
    ],
  },
  {
    name: 'allow-all',
    policies: () => ap('allow-all', '{rules: [{}]}'),
    cases: [
      c('allow-with-empty-rule-allows-plaintext', {}, 'allow', DOC.allowAll),
      c('allow-with-empty-rule-allows-tcp', { port: 'tcp' }, 'allow', DOC.allowAll),
    ],
  },
  {
    name: 'deny-all-and-allow-all',
    policies: () => ap('deny-all', '{action: DENY, rules: [{}]}') + ap('allow-all', '{action: ALLOW, rules: [{}]}'),
    cases: [
      c('deny-with-empty-rule-beats-allow', { peer: 'frontend' }, 'deny', DOC.denyFirst),
      c('deny-with-empty-rule-beats-allow-on-tcp', { port: 'tcp' }, 'deny', DOC.denyFirst),
    ],
  },
  {
    name: 'deny-beats-allow',
    policies: () =>
      ap('allow-shared', `{action: ALLOW, rules: [{to: [{operation: {paths: ["/shared/*"]}}]}]}`) +
      ap('deny-secret', `{action: DENY, rules: [{to: [{operation: {paths: ["/shared/secret"]}}]}]}`),
    cases: [
      c('deny-beats-matching-allow', { path: '/shared/secret' }, 'deny', DOC.evaluation),
      c('allow-matches-when-deny-does-not', { path: '/shared/public' }, 'allow', DOC.evaluation),
      c('request-matching-no-allow-is-denied', { path: '/elsewhere' }, 'deny', DOC.evaluation),
    ],
  },
  {
    name: 'principals-star-vs-unset',
    policies: () =>
      ap(
        'star-vs-unset',
        `{rules: [{from: [{source: {principals: ["*"]}}], to: [{operation: {paths: ["/star"]}}]}, {to: [{operation: {paths: ["/unset"]}}]}]}`,
      ),
    cases: [
      c('principals-star-refuses-plaintext', { path: '/star' }, 'deny', DOC.principalsStar),
      c('principals-star-accepts-any-mtls-peer', { path: '/star', peer: 'otherFrontend' }, 'allow', DOC.principalsStar),
      c('principals-unset-accepts-plaintext', { path: '/unset' }, 'allow', DOC.principalsStar),
    ],
  },
  {
    name: 'deny-not-principals-star',
    policies: () => ap('require-mtls', `{action: DENY, rules: [{from: [{source: {notPrincipals: ["*"]}}]}]}`),
    cases: [
      c('deny-not-principals-star-refuses-plaintext', {}, 'deny', DOC.principalsStar),
      c('deny-not-principals-star-passes-mtls', { peer: 'frontend' }, 'allow', DOC.principalsStar),
    ],
  },
  {
    name: 'principals-exact',
    policies: () => ap('frontend-only', `{rules: [{from: [{source: {principals: ["${FRONTEND}"]}}]}]}`),
    cases: [
      c('principals-exact-match-allows', { peer: 'frontend' }, 'allow', DOC.valueMatching),
      c('principals-exact-other-identity-denied', { peer: 'admin' }, 'deny', DOC.valueMatching),
      c('principals-exact-plaintext-denied', {}, 'deny', DOC.principalsStar),
    ],
  },
  {
    name: 'principals-prefix-suffix',
    policies: () =>
      ap('prefix-suffix', `{rules: [{from: [{source: {principals: ["cluster.local/ns/other/*"]}}, {source: {principals: ["*/sa/admin"]}}]}]}`),
    cases: [
      c('principals-prefix-match-allows', { peer: 'otherFrontend' }, 'allow', DOC.valueMatching),
      c('principals-suffix-match-allows', { peer: 'admin' }, 'allow', DOC.valueMatching),
      c('principals-prefix-and-suffix-miss-denied', { peer: 'frontend' }, 'deny', DOC.valueMatching),
    ],
  },
  {
    name: 'not-principals',
    policies: () => ap('not-frontend', `{rules: [{from: [{source: {notPrincipals: ["${FRONTEND}"]}}]}]}`),
    cases: [
      c('not-principals-excludes-listed-identity', { peer: 'frontend' }, 'deny', DOC.exclusion),
      c('not-principals-admits-other-identity', { peer: 'admin' }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'namespaces',
    policies: () => ap('from-other', `{rules: [{from: [{source: {namespaces: ["other"]}}]}]}`),
    cases: [
      c('namespaces-match-allows', { peer: 'otherFrontend' }, 'allow', DOC.valueMatching),
      c('namespaces-miss-denied', { peer: 'frontend' }, 'deny', DOC.valueMatching),
      c('namespaces-plaintext-denied', {}, 'deny', `${AP_REF} (namespaces: "derived from the peer certificate. This field requires mTLS enabled")`),
    ],
  },
  {
    name: 'not-namespaces',
    policies: () => ap('deny-outside-shop', `{action: DENY, rules: [{from: [{source: {notNamespaces: ["shop"]}}]}]}`),
    cases: [
      c('not-namespaces-denies-other-namespace', { peer: 'otherFrontend' }, 'deny', DOC.exclusion),
      c('not-namespaces-spares-listed-namespace', { peer: 'frontend' }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'service-accounts',
    policies: () => ap('by-service-account', `{rules: [{from: [{source: {serviceAccounts: ["shop/frontend"]}}, {source: {serviceAccounts: ["admin"]}}]}]}`),
    cases: [
      c('service-accounts-match-allows', { peer: 'frontend' }, 'allow', DOC.serviceAccounts),
      c('service-accounts-same-name-other-namespace-denied', { peer: 'otherFrontend' }, 'deny', DOC.serviceAccounts),
      c('service-accounts-bare-name-means-policy-namespace', { peer: 'admin' }, 'allow', DOC.serviceAccounts),
      c('service-accounts-plaintext-denied', {}, 'deny', DOC.serviceAccounts),
    ],
  },
  {
    name: 'not-service-accounts',
    policies: () => ap('not-frontend-sa', `{rules: [{from: [{source: {notServiceAccounts: ["shop/frontend"]}}]}]}`),
    cases: [
      c('not-service-accounts-excludes-listed', { peer: 'frontend' }, 'deny', DOC.exclusion),
      c('not-service-accounts-admits-others', { peer: 'admin' }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'ip-blocks',
    policies: (ctx) => ap('from-c1', `{rules: [{from: [{source: {ipBlocks: ["${ctx.c1}/32"]}}]}]}`),
    cases: [
      c('ip-blocks-source-address-match-allows', { client: 'c1' }, 'allow', DOC.ipBlocks),
      c('ip-blocks-other-source-denied', { client: 'c2' }, 'deny', DOC.ipBlocks),
      c('ip-blocks-ignore-x-forwarded-for', { client: 'c2', xff: 'c1' }, 'deny', DOC.ipBlocks),
      c('ip-blocks-apply-to-tcp', { client: 'c1', port: 'tcp' }, 'allow', DOC.ipBlocks),
    ],
  },
  {
    name: 'remote-ip-blocks',
    policies: () => ap('from-remote', `{rules: [{from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]}]}`),
    cases: [
      c('remote-ip-blocks-match-x-forwarded-for', { xff: '203.0.113.7' }, 'allow', DOC.ipBlocks),
      c('remote-ip-blocks-without-xff-see-the-peer-address', {}, 'deny', DOC.ipBlocks),
      c('remote-ip-blocks-xff-outside-block-denied', { xff: '192.0.2.9' }, 'deny', DOC.ipBlocks),
    ],
  },
  {
    name: 'not-ip-blocks',
    policies: (ctx) => ap('not-c2', `{rules: [{from: [{source: {notIpBlocks: ["${ctx.c2}"]}}]}]}`),
    cases: [
      c('not-ip-blocks-excludes-listed-source', { client: 'c2' }, 'deny', DOC.exclusion),
      c('not-ip-blocks-admits-other-source', { client: 'c1' }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'not-remote-ip-blocks',
    policies: () => ap('not-remote', `{rules: [{from: [{source: {notRemoteIpBlocks: ["203.0.113.0/24"]}}]}]}`),
    cases: [
      c('not-remote-ip-blocks-excludes-xff-in-block', { xff: '203.0.113.7' }, 'deny', DOC.exclusion),
      c('not-remote-ip-blocks-admits-xff-outside-block', { xff: '192.0.2.9' }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'ports',
    policies: () => ap('tcp-port-only', `{rules: [{to: [{operation: {ports: ["9000"]}}]}]}`),
    cases: [
      c('ports-match-allows-tcp-port', { port: 'tcp' }, 'allow', DOC.ports),
      c('ports-other-port-denied', {}, 'deny', DOC.ports),
    ],
  },
  {
    name: 'not-ports',
    policies: () => ap('deny-but-8080', `{action: DENY, rules: [{to: [{operation: {notPorts: ["8080"]}}]}]}`),
    cases: [
      c('not-ports-deny-hits-other-port', { port: 'tcp' }, 'deny', DOC.exclusion),
      c('not-ports-deny-spares-listed-port', {}, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'methods',
    policies: () => ap('read-only', `{rules: [{to: [{operation: {methods: ["GET", "HEAD"]}}]}]}`),
    cases: [
      c('methods-match-allows', { method: 'GET' }, 'allow', DOC.methods),
      c('methods-miss-denied', { method: 'POST' }, 'deny', DOC.methods),
    ],
  },
  {
    name: 'not-methods',
    policies: () => ap('no-delete', `{rules: [{to: [{operation: {notMethods: ["DELETE"]}}]}]}`),
    cases: [
      c('not-methods-excludes-listed', { method: 'DELETE' }, 'deny', DOC.exclusion),
      c('not-methods-admits-others', { method: 'PUT' }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'hosts',
    policies: () =>
      ap('by-host', `{rules: [{to: [{operation: {hosts: ["backend.shop.svc.cluster.local", "*.example.com", "UPPER.Example.ORG"]}}]}]}`),
    cases: [
      c('hosts-exact-match-allows', { host: 'backend.shop.svc.cluster.local' }, 'allow', DOC.hosts),
      c('hosts-match-ignores-request-case', { host: 'Backend.SHOP.svc.Cluster.Local' }, 'allow', DOC.hosts),
      c('hosts-policy-case-ignored', { host: 'upper.example.org' }, 'allow', DOC.hosts),
      c('hosts-suffix-wildcard-match', { host: 'api.example.com' }, 'allow', DOC.hosts),
      c('hosts-miss-denied', { host: 'evil.test' }, 'deny', DOC.hosts),
    ],
  },
  {
    name: 'not-hosts',
    policies: () => ap('not-forbidden-host', `{rules: [{to: [{operation: {notHosts: ["forbidden.example.com"]}}]}]}`),
    cases: [
      c('not-hosts-excludes-listed-ignoring-case', { host: 'FORBIDDEN.example.com' }, 'deny', DOC.hosts),
      c('not-hosts-admits-other-host', { host: 'backend.shop.svc.cluster.local' }, 'allow', DOC.hosts),
    ],
  },
  {
    name: 'paths',
    policies: () => ap('by-path', `{rules: [{to: [{operation: {paths: ["/exact", "/prefix/*", "*/suffix"]}}]}]}`),
    cases: [
      c('paths-exact-match-allows', { path: '/exact' }, 'allow', DOC.paths),
      c('paths-exact-does-not-match-longer-path', { path: '/exact/more' }, 'deny', DOC.paths),
      c('paths-prefix-match-allows', { path: '/prefix/a/b' }, 'allow', DOC.paths),
      c('paths-suffix-match-allows', { path: '/a/b/suffix' }, 'allow', DOC.paths),
      c('paths-query-is-not-part-of-the-path', { path: '/exact?x=1&y=2' }, 'allow', DOC.query),
      c('paths-miss-denied', { path: '/nothing' }, 'deny', DOC.paths),
    ],
  },
  {
    name: 'not-paths',
    policies: () => ap('not-admin', `{rules: [{to: [{operation: {notPaths: ["/admin*"]}}]}]}`),
    cases: [
      c('not-paths-excludes-listed-prefix', { path: '/admin/users' }, 'deny', DOC.exclusion),
      c('not-paths-admits-other-path', { path: '/public' }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'deny-exact-path',
    policies: () => ap('deny-admin', `{action: DENY, rules: [{to: [{operation: {paths: ["/admin"]}}]}]}`),
    cases: [
      c('deny-path-matches-despite-query', { path: '/admin?debug=1' }, 'deny', DOC.query),
      c('deny-path-matches-after-dot-segments-resolved', { path: '/public/../admin' }, 'deny', DOC.dotSegments),
      c('deny-exact-path-spares-longer-path', { path: '/admins' }, 'allow', DOC.paths),
    ],
  },
  {
    name: 'when-request-headers',
    policies: () => ap('by-header', `{rules: [{when: [{key: "request.headers[X-Team]", values: ["blue", "green*"]}]}]}`),
    cases: [
      c('when-header-exact-value-allows', { headers: { 'x-team': 'blue' } }, 'allow', DOC.conditions),
      c('when-header-prefix-value-allows', { headers: { 'x-team': 'greenish' } }, 'allow', DOC.valueMatching),
      c('when-header-name-is-case-insensitive', { headers: { 'X-TEAM': 'blue' } }, 'allow', DOC.headerNames),
      c('when-header-other-value-denied', { headers: { 'x-team': 'red' } }, 'deny', DOC.conditions),
      c('when-header-missing-denied', {}, 'deny', DOC.conditions),
    ],
  },
  {
    name: 'when-header-not-values',
    policies: () => ap('not-red', `{rules: [{when: [{key: "request.headers[x-team]", notValues: ["red"]}]}]}`),
    cases: [
      c('when-header-not-values-excludes', { headers: { 'x-team': 'red' } }, 'deny', DOC.exclusion),
      c('when-header-not-values-admits', { headers: { 'x-team': 'blue' } }, 'allow', DOC.exclusion),
    ],
  },
  {
    name: 'when-source-and-remote-ip',
    policies: (ctx) =>
      ap(
        'by-ip-condition',
        `{rules: [{to: [{operation: {paths: ["/source"]}}], when: [{key: source.ip, values: ["${ctx.c1}"]}]}, {to: [{operation: {paths: ["/remote"]}}], when: [{key: remote.ip, values: ["203.0.113.0/24"]}]}]}`,
      ),
    cases: [
      c('when-source-ip-match', { path: '/source', client: 'c1' }, 'allow', DOC.conditions),
      c('when-source-ip-miss', { path: '/source', client: 'c2' }, 'deny', DOC.conditions),
      c('when-remote-ip-match-x-forwarded-for', { path: '/remote', xff: '203.0.113.50' }, 'allow', DOC.conditions),
      c('when-remote-ip-miss', { path: '/remote', xff: '192.0.2.9' }, 'deny', DOC.conditions),
    ],
  },
  {
    name: 'when-source-identity',
    policies: () =>
      ap(
        'by-identity-condition',
        `{rules: [` +
          `{to: [{operation: {paths: ["/ns"]}}], when: [{key: source.namespace, values: ["other"]}]}, ` +
          `{to: [{operation: {paths: ["/principal"]}}], when: [{key: source.principal, values: ["${ADMIN}"]}]}, ` +
          `{to: [{operation: {paths: ["/sa"]}}], when: [{key: source.serviceAccount, values: ["shop/frontend"]}]}]}`,
      ),
    cases: [
      c('when-source-namespace-match', { path: '/ns', peer: 'otherFrontend' }, 'allow', DOC.conditions),
      c('when-source-namespace-miss', { path: '/ns', peer: 'frontend' }, 'deny', DOC.conditions),
      c('when-source-principal-match', { path: '/principal', peer: 'admin' }, 'allow', DOC.conditions),
      c('when-source-principal-miss', { path: '/principal', peer: 'frontend' }, 'deny', DOC.conditions),
      c('when-source-service-account-match', { path: '/sa', peer: 'frontend' }, 'allow', DOC.conditions),
      c('when-source-service-account-other-namespace-miss', { path: '/sa', peer: 'otherFrontend' }, 'deny', DOC.conditions),
    ],
  },
  {
    name: 'when-destination',
    policies: (ctx) =>
      ap(
        'by-destination',
        `{rules: [` +
          `{to: [{operation: {paths: ["/dip"]}}], when: [{key: destination.ip, values: ["${ctx.bIp}"]}]}, ` +
          `{to: [{operation: {paths: ["/dip-miss"]}}], when: [{key: destination.ip, values: ["192.0.2.0/24"]}]}, ` +
          `{to: [{operation: {paths: ["/dport"]}}], when: [{key: destination.port, values: ["8080"]}]}, ` +
          `{to: [{operation: {paths: ["/dport-miss"]}}], when: [{key: destination.port, values: ["8081"]}]}, ` +
          `{when: [{key: destination.port, values: ["9000"]}]}]}`,
      ),
    cases: [
      c('when-destination-ip-match', { path: '/dip' }, 'allow', DOC.conditions),
      c('when-destination-ip-miss', { path: '/dip-miss' }, 'deny', DOC.conditions),
      c('when-destination-port-match', { path: '/dport' }, 'allow', DOC.conditions),
      c('when-destination-port-miss', { path: '/dport-miss' }, 'deny', DOC.conditions),
      c('when-destination-port-on-tcp', { port: 'tcp' }, 'allow', DOC.conditions),
    ],
  },
  {
    name: 'when-connection-sni',
    policies: () => ap('by-sni', `{rules: [{when: [{key: connection.sni, values: ["${B_SNI}"]}]}]}`),
    cases: [
      c('when-sni-match-over-mtls', { peer: 'frontend' }, 'allow', DOC.conditions),
      c('when-sni-other-value-denied', { peer: 'frontend', sni: 'outbound_.8080_._.other.shop.svc.cluster.local' }, 'deny', DOC.conditions),
      c('when-sni-absent-on-plaintext-denied', {}, 'deny', DOC.conditions),
    ],
  },
  {
    name: 'jwt-authentication-only',
    policies: (ctx) => requestAuthn(ctx),
    cases: [
      c('jwt-absent-passes-without-authz-policy', {}, 'allow', DOC.jwtAuthn),
      c('jwt-valid-passes', { jwt: 'alice' }, 'allow', DOC.jwtAuthn),
      c('jwt-expired-rejected', { jwt: 'expired' }, 'unauthenticated', DOC.jwtAuthn),
      c('jwt-wrong-audience-rejected-with-403', { jwt: 'wrongAudience' }, 'deny', DOC.jwtAudience),
      c('jwt-unknown-issuer-rejected', { jwt: 'wrongIssuer' }, 'unauthenticated', DOC.jwtIssuer),
      c('jwt-bad-signature-rejected', { jwt: 'badSignature' }, 'unauthenticated', DOC.jwtAuthn),
    ],
  },
  {
    name: 'jwt-required',
    policies: (ctx) => requestAuthn(ctx) + ap('require-jwt', `{rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]}`),
    cases: [
      c('request-principals-star-missing-token-denied', {}, 'deny', DOC.jwtRequire),
      c('request-principals-star-valid-token-allowed', { jwt: 'alice' }, 'allow', DOC.jwtRequire),
      c('request-principals-star-invalid-token-unauthenticated', { jwt: 'expired' }, 'unauthenticated', DOC.jwtAuthn),
    ],
  },
  {
    name: 'jwt-request-principals-exact',
    policies: (ctx) => requestAuthn(ctx) + ap('alice-only', `{rules: [{from: [{source: {requestPrincipals: ["${ctx.issuer}/alice"]}}]}]}`),
    cases: [
      c('request-principals-exact-match', { jwt: 'alice' }, 'allow', DOC.jwtRequire),
      c('request-principals-exact-other-subject-denied', { jwt: 'bob' }, 'deny', DOC.jwtRequire),
    ],
  },
  {
    name: 'jwt-not-request-principals',
    policies: (ctx) => requestAuthn(ctx) + ap('deny-without-jwt', `{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ["*"]}}]}]}`),
    cases: [
      c('deny-not-request-principals-missing-token-denied', {}, 'deny', DOC.jwtDenyMissing),
      c('deny-not-request-principals-valid-token-allowed', { jwt: 'bob' }, 'allow', DOC.jwtDenyMissing),
    ],
  },
  {
    name: 'jwt-conditions',
    policies: (ctx) =>
      requestAuthn(ctx) +
      ap(
        'by-claims',
        `{rules: [` +
          `{to: [{operation: {paths: ["/principal"]}}], when: [{key: request.auth.principal, values: ["${ctx.issuer}/alice"]}]}, ` +
          `{to: [{operation: {paths: ["/aud"]}}], when: [{key: request.auth.audiences, values: ["backend"]}]}, ` +
          `{to: [{operation: {paths: ["/presenter"]}}], when: [{key: request.auth.presenter, values: ["web-client"]}]}, ` +
          `{to: [{operation: {paths: ["/claims"]}}], when: [{key: "request.auth.claims[groups]", values: ["admins"]}]}, ` +
          `{to: [{operation: {paths: ["/nested"]}}], when: [{key: "request.auth.claims[team][name]", values: ["payments"]}]}]}`,
      ),
    cases: [
      c('when-auth-principal-match', { path: '/principal', jwt: 'alice' }, 'allow', DOC.jwtConditions),
      c('when-auth-principal-miss', { path: '/principal', jwt: 'bob' }, 'deny', DOC.jwtConditions),
      c('when-auth-audiences-match', { path: '/aud', jwt: 'bob' }, 'allow', DOC.jwtConditions),
      c('when-auth-presenter-match', { path: '/presenter', jwt: 'alice' }, 'allow', DOC.jwtConditions),
      c('when-auth-presenter-miss', { path: '/presenter', jwt: 'aliceOtherPresenter' }, 'deny', DOC.jwtConditions),
      c('when-auth-claims-list-contains-value', { path: '/claims', jwt: 'alice' }, 'allow', DOC.jwtConditions),
      c('when-auth-claims-list-without-value-denied', { path: '/claims', jwt: 'aliceFewGroups' }, 'deny', DOC.jwtConditions),
      c('when-auth-claims-nested-claim', { path: '/nested', jwt: 'alice' }, 'allow', DOC.jwtConditions),
      c('when-auth-claims-without-token-denied', { path: '/claims' }, 'deny', DOC.jwtConditions),
    ],
  },
  {
    name: 'jwt-jwks-uri',
    policies: (ctx) => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-remote-keys, namespace: shop}
spec:
  selector: {matchLabels: {app: backend}}
  jwtRules:
    - issuer: ${JSON.stringify(ctx.issuer2)}
      audiences: [backend]
      jwksUri: ${JSON.stringify(ctx.jwksUri)}
---
${ap('issuer2-only', `{rules: [{from: [{source: {requestPrincipals: ["${ctx.issuer2}/*"]}}]}]}`)}`,
    cases: [
      c('jwks-uri-keys-verify-token', { jwt: 'issuer2' }, 'allow', DOC.jwksUri),
      c('jwks-uri-token-signed-by-other-key-rejected', { jwt: 'issuer2BadSignature' }, 'unauthenticated', DOC.jwtAuthn),
      c('jwks-uri-token-missing-denied', {}, 'deny', DOC.jwtRequire),
    ],
  },
  {
    name: 'audit-only',
    policies: () => ap('audit-all', '{action: AUDIT, rules: [{}]}'),
    cases: [
      c('audit-only-does-not-deny', {}, 'allow', DOC.audit),
      c('audit-only-does-not-deny-tcp', { port: 'tcp' }, 'allow', DOC.audit),
    ],
  },
  {
    name: 'audit-with-allow',
    policies: () => ap('audit-all', '{action: AUDIT, rules: [{}]}') + ap('allow-some', `{rules: [{to: [{operation: {paths: ["/allowed"]}}]}]}`),
    cases: [
      c('audit-does-not-allow-what-allow-does-not', { path: '/other' }, 'deny', DOC.audit),
      c('audit-does-not-change-an-allow', { path: '/allowed' }, 'allow', DOC.audit),
    ],
  },
  {
    name: 'custom',
    policies: (ctx) => ap('ext-authz', `{action: CUSTOM, provider: {name: ${ctx.extAuthzProvider}}, rules: [{to: [{operation: {paths: ["/ext/*"]}}]}]}`),
    cases: [
      c('custom-authorizer-allows', { path: '/ext/a', headers: { 'x-ext-authz': 'allow' } }, 'allow', DOC.custom),
      c('custom-authorizer-denies', { path: '/ext/a' }, 'deny', DOC.custom),
      c('custom-authorizer-not-asked-outside-its-rules', { path: '/public' }, 'allow', DOC.custom),
    ],
  },
  {
    name: 'custom-then-deny',
    policies: (ctx) =>
      ap('ext-authz', `{action: CUSTOM, provider: {name: ${ctx.extAuthzProvider}}, rules: [{to: [{operation: {paths: ["/ext/*"]}}]}]}`) +
      ap('deny-blocked', `{action: DENY, rules: [{to: [{operation: {paths: ["/ext/blocked"]}}]}]}`),
    cases: [
      c('custom-allow-does-not-override-deny', { path: '/ext/blocked', headers: { 'x-ext-authz': 'allow' } }, 'deny', DOC.custom),
      c('custom-allow-then-no-deny-allows', { path: '/ext/ok', headers: { 'x-ext-authz': 'allow' } }, 'allow', DOC.custom),
    ],
  },
  {
    name: 'scope-mesh-wide',
    policies: () => ap('mesh-allow-nothing', '{}', { ns: 'skiff-system' }),
    cases: [c('mesh-wide-policy-in-root-namespace-applies', { peer: 'frontend' }, 'deny', DOC.scope)],
  },
  {
    name: 'scope-root-namespace-selector',
    policies: () => ap('v1-deny-all', '{selector: {matchLabels: {version: v1}}, action: DENY, rules: [{}]}', { ns: 'skiff-system' }),
    cases: [c('root-namespace-selector-matches-workloads-in-every-namespace', {}, 'deny', DOC.scope)],
  },
  {
    name: 'scope-namespace',
    policies: () => ap('shop-deny-tcp', `{action: DENY, rules: [{to: [{operation: {ports: ["9000"]}}]}]}`),
    cases: [
      c('namespace-policy-applies-to-its-workloads', { port: 'tcp' }, 'deny', DOC.scope),
      c('namespace-policy-rules-still-decide', {}, 'allow', DOC.scope),
    ],
  },
  {
    name: 'scope-selector-match',
    policies: () => ap('backend-deny-all', '{selector: {matchLabels: {app: backend, version: v1}}, action: DENY, rules: [{}]}'),
    cases: [c('selector-matching-all-labels-applies', {}, 'deny', DOC.scope)],
  },
  {
    name: 'scope-selector-miss',
    policies: () =>
      ap('frontend-deny-all', '{selector: {matchLabels: {app: frontend}}, action: DENY, rules: [{}]}') +
      ap('v2-allow-nothing', '{selector: {matchLabels: {app: backend, version: v2}}}'),
    cases: [
      c('selector-not-matching-does-not-apply', {}, 'allow', DOC.scope),
      c('selector-partly-matching-does-not-apply', { port: 'tcp' }, 'allow', DOC.scope),
    ],
  },
  {
    name: 'scope-other-namespace',
    policies: () =>
      ap('other-deny-all', '{action: DENY, rules: [{}]}', { ns: 'other' }) +
      ap('other-backend-allow-nothing', '{selector: {matchLabels: {app: backend}}}', { ns: 'other' }),
    cases: [c('policy-in-other-namespace-does-not-apply', { peer: 'otherFrontend' }, 'allow', DOC.scope)],
  },
  {
    name: 'dry-run-deny',
    policies: () => ap('dry-deny-all', '{action: DENY, rules: [{}]}', { dryRun: true }),
    cases: [
      c('dry-run-deny-is-not-enforced', {}, 'allow', DOC.dryRun),
      c('dry-run-deny-is-not-enforced-on-tcp', { port: 'tcp' }, 'allow', DOC.dryRun),
    ],
  },
  {
    name: 'dry-run-allow-nothing',
    policies: () => ap('dry-allow-nothing', '{}', { dryRun: true }),
    cases: [c('dry-run-allow-policy-does-not-make-default-deny', { peer: 'frontend' }, 'allow', DOC.dryRun)],
  },
  {
    name: 'dry-run-next-to-enforced',
    policies: () => ap('dry-deny-all', '{action: DENY, rules: [{}]}', { dryRun: true }) + ap('allow-ok', `{rules: [{to: [{operation: {paths: ["/ok"]}}]}]}`),
    cases: [
      c('dry-run-deny-does-not-deny-allowed-request', { path: '/ok' }, 'allow', DOC.dryRun),
      c('enforced-allow-still-denies-unmatched-request', { path: '/no' }, 'deny', DOC.evaluation),
    ],
  },
  {
    name: 'tcp-allow-with-http-only-field',
    policies: () => ap('get-only', `{rules: [{to: [{operation: {methods: ["GET"]}}]}]}`),
    cases: [
      c('allow-rule-with-http-only-field-is-dropped-on-tcp', { port: 'tcp' }, 'deny', DOC.tcpAllow),
      c('allow-rule-with-http-only-field-works-on-http', { method: 'GET' }, 'allow', DOC.methods),
    ],
  },
  {
    name: 'tcp-deny-with-http-only-field',
    policies: () => ap('deny-post-from-other', `{action: DENY, rules: [{from: [{source: {principals: ["${OTHER_FRONTEND}"]}}], to: [{operation: {methods: ["POST"]}}]}]}`),
    cases: [
      c('deny-rule-loses-http-only-field-on-tcp', { port: 'tcp', peer: 'otherFrontend' }, 'deny', DOC.tcpDeny),
      c('deny-rule-keeps-its-other-fields-on-tcp', { port: 'tcp', peer: 'frontend' }, 'allow', DOC.tcpDeny),
      c('deny-rule-on-http-needs-the-method', { method: 'GET', peer: 'otherFrontend' }, 'allow', DOC.methods),
      c('deny-rule-on-http-matching-method', { method: 'POST', peer: 'otherFrontend' }, 'deny', DOC.methods),
    ],
  },
  {
    name: 'tcp-allow-keeps-other-rules',
    policies: () => ap('get-or-frontend', `{rules: [{to: [{operation: {methods: ["GET"]}}]}, {from: [{source: {principals: ["${FRONTEND}"]}}]}]}`),
    cases: [
      c('tcp-only-the-rule-with-http-only-field-vanishes', { port: 'tcp', peer: 'frontend' }, 'allow', DOC.tcpAllow),
      c('tcp-remaining-rule-still-decides', { port: 'tcp', peer: 'admin' }, 'deny', DOC.tcpAllow),
    ],
  },
  {
    name: 'tcp-allow-with-request-principals',
    policies: (ctx) => requestAuthn(ctx) + ap('require-jwt', `{rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]}`),
    cases: [
      c('allow-rule-with-request-principals-is-dropped-on-tcp', { port: 'tcp', peer: 'frontend' }, 'deny', DOC.tcpAllow),
      c('allow-rule-with-request-principals-on-http-with-token', { jwt: 'bob' }, 'allow', DOC.jwtRequire),
    ],
  },
  {
    name: 'tcp-deny-with-http-only-condition',
    policies: () =>
      ap('deny-flagged-from-other', `{action: DENY, rules: [{from: [{source: {namespaces: ["other"]}}], when: [{key: "request.headers[x-block]", values: ["yes"]}]}]}`),
    cases: [
      c('deny-rule-loses-http-only-condition-on-tcp', { port: 'tcp', peer: 'otherFrontend' }, 'deny', DOC.tcpDeny),
      c('deny-rule-without-http-only-condition-spares-others-on-tcp', { port: 'tcp', peer: 'frontend' }, 'allow', DOC.tcpDeny),
      c('deny-rule-on-http-needs-the-header', { peer: 'otherFrontend' }, 'allow', DOC.conditions),
      c('deny-rule-on-http-with-the-header', { peer: 'otherFrontend', headers: { 'x-block': 'yes' } }, 'deny', DOC.conditions),
    ],
  },
  {
    name: 'tcp-principals',
    policies: () => ap('tcp-frontend', `{rules: [{from: [{source: {principals: ["${FRONTEND}"]}}], to: [{operation: {ports: ["9000"]}}]}]}`),
    cases: [
      c('tcp-principals-match-over-mtls', { port: 'tcp', peer: 'frontend' }, 'allow', DOC.valueMatching),
      c('tcp-principals-other-identity-denied', { port: 'tcp', peer: 'admin' }, 'deny', DOC.valueMatching),
      c('tcp-principals-plaintext-denied', { port: 'tcp' }, 'deny', DOC.principalsStar),
    ],
  },
];

/** Every case, flat, for counting. */
export function allCases(): AuthzCase[] {
  return AUTHZ_GROUPS.flatMap((g) => g.cases);
}
