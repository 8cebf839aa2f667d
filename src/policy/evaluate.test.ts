/**
 * The reference evaluator against Istio's documented semantics, one named case per rule of the
 * AuthorizationPolicy reference, the authorization concepts page, dry-run, ipBlocks vs
 * remoteIpBlocks, TCP, RequestAuthentication and PeerAuthentication. Every policy in the table is
 * first checked to be valid Istio YAML (the resource schema accepts it).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { parseResources } from '../resources/parse.js';
import type {
  AuthorizationPolicy,
  AuthorizationPolicySpec,
  MeshResource,
  PeerAuthentication,
  PeerAuthenticationSpec,
  RequestAuthentication,
  RequestAuthenticationSpec,
} from '../resources/types.js';
import { evaluate } from './evaluate.js';
import type { Decision, EvaluationDestination, EvaluationInput, EvaluationRequest, ExternalAuthzCheck } from './types.js';

const ROOT = 'skiff-system';
const CLIENT = 'spiffe://cluster.local/ns/demo/sa/client';
const OTHER = 'spiffe://cluster.local/ns/prod-east/sa/batch';
const ISSUER = 'https://issuer.example';
const JWKS_URI = 'https://issuer.example/jwks.json';

interface Meta {
  ns?: string;
  annotations?: Record<string, string>;
  created?: string;
}

function ap(name: string, spec: AuthorizationPolicySpec, meta: Meta = {}): AuthorizationPolicy {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: meta.ns ?? 'demo', ...(meta.annotations ? { annotations: meta.annotations } : {}) },
    spec,
  };
}

function ra(name: string, spec: RequestAuthenticationSpec, meta: Meta = {}): RequestAuthentication {
  return { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name, namespace: meta.ns ?? 'demo' }, spec };
}

function pa(name: string, spec: PeerAuthenticationSpec, meta: Meta = {}): PeerAuthentication {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace: meta.ns ?? 'demo', ...(meta.created ? { creationTimestamp: meta.created } : {}) },
    spec,
  };
}

const allowAll = (name = 'allow-all', meta?: Meta) => ap(name, { rules: [{}] }, meta);
const denyAll = (name = 'deny-all', meta?: Meta) => ap(name, { action: 'DENY', rules: [{}] }, meta);
const allowFrom = (source: NonNullable<NonNullable<AuthorizationPolicySpec['rules']>[number]['from']>[number]['source']) => ap('allow-from', { rules: [{ from: [{ source }] }] });
const allowTo = (operation: NonNullable<NonNullable<AuthorizationPolicySpec['rules']>[number]['to']>[number]['operation']) => ap('allow-to', { rules: [{ to: [{ operation }] }] });
const allowWhen = (key: string, values?: string[], notValues?: string[]) =>
  ap('allow-when', { rules: [{ when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }] }] });

const HTTP: EvaluationDestination = { namespace: 'demo', labels: { app: 'web', version: 'v1' }, ip: '198.18.0.10', port: 8080, protocol: 'HTTP' };
const TCP: EvaluationDestination = { ...HTTP, port: 5432, protocol: 'TCP' };

/** Tokens and keys made in `before`. */
const jwt: { jwks: string; otherJwks: string; valid: string; expired: string; wrongAud: string; badSig: string; otherIssuer: string; groups: string } = {
  jwks: '',
  otherJwks: '',
  valid: '',
  expired: '',
  wrongAud: '',
  badSig: '',
  otherIssuer: '',
  groups: '',
};

const jwtRule = (extra: Record<string, unknown> = {}): RequestAuthentication =>
  ra('jwt', { jwtRules: [{ issuer: ISSUER, audiences: ['web'], jwks: jwt.jwks, ...extra }] });

interface Case {
  name: string;
  policies?: () => MeshResource[];
  destination?: EvaluationDestination;
  request?: () => Partial<EvaluationRequest>;
  input?: () => Partial<EvaluationInput>;
  expect: { allowed: boolean; status?: Decision['status']; by?: string; ruleIndex?: number; warning?: RegExp; principal?: string };
}

const cases: Case[] = [
  // --- Scope and precedence ---------------------------------------------------------------
  { name: 'no policy at all allows', expect: { allowed: true, status: 'no-allow-policies' } },
  { name: 'spec {} (ALLOW without rules) denies everything in its namespace', policies: () => [ap('allow-nothing', {})], expect: { allowed: false, status: 'no-allow-match' } },
  { name: 'spec {} in another namespace does not apply', policies: () => [ap('allow-nothing', {}, { ns: 'other' })], expect: { allowed: true, status: 'no-allow-policies' } },
  { name: 'spec {} in the root namespace applies mesh-wide', policies: () => [ap('allow-nothing', {}, { ns: ROOT })], expect: { allowed: false, status: 'no-allow-match' } },
  {
    name: 'root namespace policy with a selector applies to matching workloads in every namespace',
    policies: () => [ap('deny-v1', { selector: { matchLabels: { version: 'v1' } }, action: 'DENY', rules: [{}] }, { ns: ROOT })],
    expect: { allowed: false, status: 'denied-by-deny', by: `${ROOT}/deny-v1` },
  },
  {
    name: 'root namespace policy with a non-matching selector does not apply',
    policies: () => [ap('deny-v2', { selector: { matchLabels: { version: 'v2' } }, action: 'DENY', rules: [{}] }, { ns: ROOT })],
    expect: { allowed: true },
  },
  { name: 'namespace policy with a non-matching selector does not apply', policies: () => [ap('sel', { selector: { matchLabels: { app: 'db' } } })], expect: { allowed: true } },
  { name: 'namespace policy with a matching selector applies', policies: () => [ap('sel', { selector: { matchLabels: { app: 'web' } } })], expect: { allowed: false, status: 'no-allow-match' } },
  {
    name: 'a targetRefs policy does not apply to a sidecar',
    policies: () => [ap('waypoint', { targetRefs: [{ kind: 'Service', group: '', name: 'web' }], action: 'DENY', rules: [{}] })],
    expect: { allowed: true, warning: /targetRef/ },
  },
  { name: 'ALLOW with rules [{}] allows everything', policies: () => [allowAll()], expect: { allowed: true, status: 'allowed-by-allow', by: 'demo/allow-all', ruleIndex: 0 } },
  { name: 'DENY with rules [{}] denies even when an ALLOW matches', policies: () => [allowAll(), denyAll()], expect: { allowed: false, status: 'denied-by-deny', by: 'demo/deny-all' } },
  {
    name: 'DENY beats ALLOW for the same request',
    policies: () => [allowTo({ methods: ['GET'] }), ap('deny-get', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] })],
    expect: { allowed: false, status: 'denied-by-deny', by: 'demo/deny-get' },
  },
  { name: 'ALLOW policies exist but none matches: denied', policies: () => [allowTo({ methods: ['POST'] })], expect: { allowed: false, status: 'no-allow-match' } },
  { name: 'any one of several ALLOW policies allows', policies: () => [allowTo({ methods: ['POST'] }), allowAll('z-allow')], expect: { allowed: true, by: 'demo/z-allow' } },
  { name: 'the second rule of a policy can be the one that matches', policies: () => [ap('two', { rules: [{ to: [{ operation: { methods: ['POST'] } }] }, {}] })], expect: { allowed: true, by: 'demo/two', ruleIndex: 1 } },
  { name: 'AUDIT never changes the decision (allowed)', policies: () => [ap('audit', { action: 'AUDIT', rules: [{}] })], expect: { allowed: true, status: 'no-allow-policies' } },
  { name: 'AUDIT never changes the decision (denied)', policies: () => [ap('audit', { action: 'AUDIT', rules: [{}] }), ap('allow-nothing', {})], expect: { allowed: false, status: 'no-allow-match' } },

  // --- CUSTOM ------------------------------------------------------------------------------
  {
    name: 'CUSTOM matched and the authorizer allows: the native policies still decide',
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] }), allowAll()],
    input: () => ({ externalAuthorizer: () => true }),
    expect: { allowed: true, status: 'allowed-by-allow' },
  },
  {
    name: 'CUSTOM matched and the authorizer denies',
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] }), allowAll()],
    input: () => ({ externalAuthorizer: () => false }),
    expect: { allowed: false, status: 'custom-denied', by: 'demo/ext' },
  },
  {
    name: 'CUSTOM whose rules do not match is not consulted',
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] })],
    input: () => ({ externalAuthorizer: () => assert.fail('the authorizer must not be asked') }),
    expect: { allowed: true, status: 'no-allow-policies' },
  },
  {
    name: 'CUSTOM allows but a DENY policy still denies',
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] }), denyAll()],
    input: () => ({ externalAuthorizer: () => true }),
    expect: { allowed: false, status: 'denied-by-deny' },
  },
  {
    name: 'CUSTOM with a provider missing from the mesh config denies what it matches',
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'nope' }, rules: [{}] })],
    input: () => ({ extensionProviders: [{ name: 'authz', envoyExtAuthzHttp: { service: 'authz.demo.svc', port: 9000 } }], externalAuthorizer: () => true }),
    expect: { allowed: false, status: 'custom-denied', warning: /not defined/ },
  },
  {
    name: 'CUSTOM with two providers on one workload denies what they match',
    policies: () => [ap('ext-a', { action: 'CUSTOM', provider: { name: 'a' }, rules: [{}] }), ap('ext-b', { action: 'CUSTOM', provider: { name: 'b' }, rules: [{}] })],
    input: () => ({ externalAuthorizer: () => true }),
    expect: { allowed: false, status: 'custom-denied', warning: /several CUSTOM providers/ },
  },
  {
    name: 'CUSTOM with an HTTP provider does not apply to a TCP port',
    destination: TCP,
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] })],
    input: () => ({ extensionProviders: [{ name: 'authz', envoyExtAuthzHttp: { service: 'authz.demo.svc', port: 9000 } }], externalAuthorizer: () => false }),
    expect: { allowed: true, warning: /HTTP authorizer/ },
  },
  {
    name: 'CUSTOM with a gRPC provider applies to a TCP port',
    destination: TCP,
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] })],
    input: () => ({ extensionProviders: [{ name: 'authz', envoyExtAuthzGrpc: { service: 'authz.demo.svc', port: 9000 } }], externalAuthorizer: () => false }),
    expect: { allowed: false, status: 'custom-denied' },
  },
  {
    name: 'CUSTOM without an authorizer fails closed',
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] })],
    expect: { allowed: false, status: 'custom-denied', warning: /no external authorizer/ },
  },
  {
    name: 'CUSTOM without an authorizer fails open when the provider says failOpen',
    policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] })],
    input: () => ({ extensionProviders: [{ name: 'authz', envoyExtAuthzHttp: { service: 'authz.demo.svc', port: 9000, failOpen: true } }] }),
    expect: { allowed: true },
  },

  // --- Source: principals, namespaces, serviceAccounts -------------------------------------
  { name: 'principals exact match', policies: () => [allowFrom({ principals: ['cluster.local/ns/demo/sa/client'] })], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'principals accept a peer written without spiffe://', policies: () => [allowFrom({ principals: ['cluster.local/ns/demo/sa/client'] })], request: () => ({ peer: 'cluster.local/ns/demo/sa/client' }), expect: { allowed: true } },
  { name: 'principals exact mismatch', policies: () => [allowFrom({ principals: ['cluster.local/ns/demo/sa/client'] })], request: () => ({ peer: OTHER }), expect: { allowed: false, status: 'no-allow-match' } },
  { name: 'principals never match a plaintext peer', policies: () => [allowFrom({ principals: ['*'] })], expect: { allowed: false } },
  { name: 'principals ["*"] matches any mTLS peer', policies: () => [allowFrom({ principals: ['*'] })], request: () => ({ peer: OTHER }), expect: { allowed: true } },
  { name: 'principals prefix match', policies: () => [allowFrom({ principals: ['cluster.local/ns/demo/*'] })], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'principals suffix match', policies: () => [allowFrom({ principals: ['*/sa/client'] })], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'notPrincipals excludes a peer', policies: () => [allowFrom({ notPrincipals: ['cluster.local/ns/demo/sa/client'] })], request: () => ({ peer: CLIENT }), expect: { allowed: false } },
  { name: 'notPrincipals lets other peers in', policies: () => [allowFrom({ notPrincipals: ['cluster.local/ns/demo/sa/client'] })], request: () => ({ peer: OTHER }), expect: { allowed: true } },
  { name: 'notPrincipals matches a plaintext peer (nothing to exclude)', policies: () => [allowFrom({ notPrincipals: ['*'] })], expect: { allowed: true } },
  {
    name: 'principals and notPrincipals must both hold',
    policies: () => [allowFrom({ principals: ['cluster.local/ns/demo/*'], notPrincipals: ['*/sa/client'] })],
    request: () => ({ peer: CLIENT }),
    expect: { allowed: false },
  },
  {
    name: 'principals in cluster.local mean the mesh trust domain',
    policies: () => [allowFrom({ principals: ['cluster.local/ns/demo/sa/client'] })],
    request: () => ({ peer: 'spiffe://corp.example/ns/demo/sa/client' }),
    input: () => ({ trustDomain: 'corp.example' }),
    expect: { allowed: true },
  },
  {
    name: 'principals match peers of a trust domain alias',
    policies: () => [allowFrom({ principals: ['corp.example/ns/demo/sa/client'] })],
    request: () => ({ peer: 'spiffe://old.example/ns/demo/sa/client' }),
    input: () => ({ trustDomain: 'corp.example', trustDomainAliases: ['old.example'] }),
    expect: { allowed: true },
  },
  {
    name: 'principals of a foreign trust domain do not match the local one',
    policies: () => [allowFrom({ principals: ['other.example/ns/demo/sa/client'] })],
    request: () => ({ peer: CLIENT }),
    expect: { allowed: false },
  },
  { name: 'namespaces exact match', policies: () => [allowFrom({ namespaces: ['demo'] })], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'namespaces mismatch', policies: () => [allowFrom({ namespaces: ['prod'] })], request: () => ({ peer: CLIENT }), expect: { allowed: false } },
  { name: 'namespaces prefix match', policies: () => [allowFrom({ namespaces: ['prod-*'] })], request: () => ({ peer: OTHER }), expect: { allowed: true } },
  { name: 'namespaces ["*"] needs an mTLS peer', policies: () => [allowFrom({ namespaces: ['*'] })], expect: { allowed: false } },
  { name: 'notNamespaces excludes', policies: () => [allowFrom({ notNamespaces: ['demo'] })], request: () => ({ peer: CLIENT }), expect: { allowed: false } },
  { name: 'serviceAccounts ns/sa match', policies: () => [allowFrom({ serviceAccounts: ['demo/client'] })], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'serviceAccounts without namespace mean the policy namespace', policies: () => [allowFrom({ serviceAccounts: ['client'] })], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'serviceAccounts do not match a longer name', policies: () => [allowFrom({ serviceAccounts: ['demo/cli'] })], request: () => ({ peer: CLIENT }), expect: { allowed: false } },
  { name: 'notServiceAccounts excludes', policies: () => [allowFrom({ notServiceAccounts: ['demo/client'] })], request: () => ({ peer: CLIENT }), expect: { allowed: false } },
  {
    name: 'several sources are OR-ed',
    policies: () => [ap('or', { rules: [{ from: [{ source: { namespaces: ['prod'] } }, { source: { principals: ['cluster.local/ns/demo/sa/client'] } }] }] })],
    request: () => ({ peer: CLIENT }),
    expect: { allowed: true },
  },
  {
    name: 'fields in one source are AND-ed',
    policies: () => [allowFrom({ namespaces: ['demo'], ipBlocks: ['10.0.0.0/8'] })],
    request: () => ({ peer: CLIENT, sourceIp: '198.18.0.20' }),
    expect: { allowed: false },
  },

  // --- Source: IP blocks -------------------------------------------------------------------
  { name: 'ipBlocks CIDR match on the direct peer', policies: () => [allowFrom({ ipBlocks: ['198.18.0.0/24'] })], request: () => ({ sourceIp: '198.18.0.20' }), expect: { allowed: true } },
  { name: 'ipBlocks single address', policies: () => [allowFrom({ ipBlocks: ['198.18.0.20'] })], request: () => ({ sourceIp: '198.18.0.21' }), expect: { allowed: false } },
  { name: 'ipBlocks IPv6 CIDR', policies: () => [allowFrom({ ipBlocks: ['2001:db8::/32'] })], request: () => ({ sourceIp: '2001:db8:1::5' }), expect: { allowed: true } },
  { name: 'notIpBlocks excludes', policies: () => [allowFrom({ notIpBlocks: ['198.18.0.0/24'] })], request: () => ({ sourceIp: '198.18.0.20' }), expect: { allowed: false } },
  {
    name: 'ipBlocks look at the direct peer, not x-forwarded-for',
    policies: () => [allowFrom({ ipBlocks: ['203.0.113.7'] })],
    request: () => ({ sourceIp: '198.18.0.20', headers: { 'x-forwarded-for': '203.0.113.7' } }),
    expect: { allowed: false },
  },
  {
    name: 'remoteIpBlocks look at x-forwarded-for',
    policies: () => [allowFrom({ remoteIpBlocks: ['203.0.113.0/24'] })],
    request: () => ({ sourceIp: '198.18.0.20', headers: { 'x-forwarded-for': '203.0.113.7' } }),
    expect: { allowed: true },
  },
  {
    name: 'remoteIpBlocks use the right-most x-forwarded-for entry',
    policies: () => [allowFrom({ remoteIpBlocks: ['203.0.113.0/24'] })],
    request: () => ({ sourceIp: '198.18.0.20', headers: { 'x-forwarded-for': '203.0.113.7, 192.0.2.1' } }),
    expect: { allowed: false },
  },
  { name: 'remoteIpBlocks fall back to the direct peer', policies: () => [allowFrom({ remoteIpBlocks: ['198.18.0.0/24'] })], request: () => ({ sourceIp: '198.18.0.20' }), expect: { allowed: true } },
  {
    name: 'notRemoteIpBlocks excludes the original client',
    policies: () => [allowFrom({ notRemoteIpBlocks: ['203.0.113.7'] })],
    request: () => ({ sourceIp: '198.18.0.20', headers: { 'x-forwarded-for': '203.0.113.7' } }),
    expect: { allowed: false },
  },

  // --- Operation -----------------------------------------------------------------------------
  { name: 'hosts match case-insensitively', policies: () => [allowTo({ hosts: ['Web.Demo.Example'] })], request: () => ({ host: 'web.demo.EXAMPLE' }), expect: { allowed: true } },
  { name: 'hosts exact does not match a Host with a port', policies: () => [allowTo({ hosts: ['web.demo.example'] })], request: () => ({ host: 'web.demo.example:8080' }), expect: { allowed: false } },
  { name: 'hosts "name:*" matches a Host with a port', policies: () => [allowTo({ hosts: ['web.demo.example:*'] })], request: () => ({ host: 'web.demo.example:8080' }), expect: { allowed: true } },
  { name: 'hosts suffix match', policies: () => [allowTo({ hosts: ['*.example'] })], request: () => ({ host: 'web.demo.example' }), expect: { allowed: true } },
  { name: 'notHosts excludes', policies: () => [allowTo({ notHosts: ['web.demo.example'] })], request: () => ({ host: 'WEB.demo.example' }), expect: { allowed: false } },
  { name: 'methods are case-sensitive', policies: () => [allowTo({ methods: ['get'] })], request: () => ({ method: 'GET' }), expect: { allowed: false } },
  { name: 'methods match', policies: () => [allowTo({ methods: ['GET', 'HEAD'] })], request: () => ({ method: 'HEAD' }), expect: { allowed: true } },
  { name: 'notMethods excludes', policies: () => [allowTo({ notMethods: ['DELETE'] })], request: () => ({ method: 'DELETE' }), expect: { allowed: false } },
  { name: 'paths exact match ignores the query', policies: () => [allowTo({ paths: ['/info'] })], request: () => ({ path: '/info?verbose=1' }), expect: { allowed: true } },
  { name: 'paths exact does not match a longer path', policies: () => [allowTo({ paths: ['/info'] })], request: () => ({ path: '/info/x' }), expect: { allowed: false } },
  { name: 'paths prefix match', policies: () => [allowTo({ paths: ['/api/*'] })], request: () => ({ path: '/api/v1/users' }), expect: { allowed: true } },
  { name: 'paths suffix match', policies: () => [allowTo({ paths: ['*.png'] })], request: () => ({ path: '/img/logo.png' }), expect: { allowed: true } },
  { name: 'paths are normalized before matching', policies: () => [ap('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] })], request: () => ({ path: '/public/../admin/x' }), expect: { allowed: false, status: 'denied-by-deny' } },
  { name: 'notPaths excludes', policies: () => [allowTo({ notPaths: ['/admin*'] })], request: () => ({ path: '/admin/users' }), expect: { allowed: false } },
  { name: 'path template {*} matches one segment', policies: () => [allowTo({ paths: ['/users/{*}/profile'] })], request: () => ({ path: '/users/42/profile' }), expect: { allowed: true } },
  { name: 'path template {*} does not span segments', policies: () => [allowTo({ paths: ['/users/{*}'] })], request: () => ({ path: '/users/42/profile' }), expect: { allowed: false } },
  { name: 'path template {**} spans segments', policies: () => [allowTo({ paths: ['/files/{**}'] })], request: () => ({ path: '/files/a/b/c.txt' }), expect: { allowed: true } },
  { name: 'ports match the destination port', policies: () => [allowTo({ ports: ['8080'] })], expect: { allowed: true } },
  { name: 'ports mismatch', policies: () => [allowTo({ ports: ['9090'] })], expect: { allowed: false } },
  { name: 'notPorts excludes', policies: () => [allowTo({ notPorts: ['8080'] })], expect: { allowed: false } },
  {
    name: 'several operations are OR-ed',
    policies: () => [ap('or', { rules: [{ to: [{ operation: { methods: ['POST'] } }, { operation: { paths: ['/'] } }] }] })],
    expect: { allowed: true },
  },

  // --- When conditions ---------------------------------------------------------------------
  { name: 'when request.headers exact', policies: () => [allowWhen('request.headers[x-user]', ['alice'])], request: () => ({ headers: { 'X-User': 'alice' } }), expect: { allowed: true } },
  { name: 'when request.headers prefix', policies: () => [allowWhen('request.headers[User-Agent]', ['curl/*'])], request: () => ({ headers: { 'user-agent': 'curl/8.5' } }), expect: { allowed: true } },
  { name: 'when request.headers "*" needs the header', policies: () => [allowWhen('request.headers[x-user]', ['*'])], expect: { allowed: false } },
  { name: 'when request.headers "*" accepts an empty value', policies: () => [allowWhen('request.headers[x-user]', ['*'])], request: () => ({ headers: { 'x-user': '' } }), expect: { allowed: true } },
  { name: 'when request.headers notValues', policies: () => [allowWhen('request.headers[x-user]', undefined, ['mallory'])], request: () => ({ headers: { 'x-user': 'mallory' } }), expect: { allowed: false } },
  { name: 'when source.ip', policies: () => [allowWhen('source.ip', ['198.18.0.0/16'])], request: () => ({ sourceIp: '198.18.3.4' }), expect: { allowed: true } },
  { name: 'when remote.ip', policies: () => [allowWhen('remote.ip', ['203.0.113.7'])], request: () => ({ headers: { 'x-forwarded-for': '203.0.113.7' } }), expect: { allowed: true } },
  { name: 'when source.namespace', policies: () => [allowWhen('source.namespace', ['demo'])], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'when source.principal', policies: () => [allowWhen('source.principal', ['cluster.local/ns/demo/sa/client'])], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'when source.serviceAccount', policies: () => [allowWhen('source.serviceAccount', ['demo/client'])], request: () => ({ peer: OTHER }), expect: { allowed: false } },
  { name: 'when destination.ip', policies: () => [allowWhen('destination.ip', ['198.18.0.10'])], expect: { allowed: true } },
  { name: 'when destination.port', policies: () => [allowWhen('destination.port', ['9090'])], expect: { allowed: false } },
  { name: 'when connection.sni', policies: () => [allowWhen('connection.sni', ['*.demo.example'])], request: () => ({ sni: 'web.demo.example' }), expect: { allowed: true } },
  { name: 'when connection.sni without SNI', policies: () => [allowWhen('connection.sni', ['*'])], expect: { allowed: false } },
  { name: 'an experimental.envoy.filters condition never sees metadata', policies: () => [allowWhen('experimental.envoy.filters.network.mysql_proxy[db.table]', ['[update]'])], expect: { allowed: false } },
  {
    name: 'all when conditions must hold',
    policies: () => [ap('and', { rules: [{ when: [{ key: 'source.ip', values: ['198.18.0.0/16'] }, { key: 'request.headers[x-user]', values: ['alice'] }] }] })],
    request: () => ({ sourceIp: '198.18.0.1', headers: { 'x-user': 'bob' } }),
    expect: { allowed: false },
  },

  // --- TCP ports ---------------------------------------------------------------------------
  { name: 'TCP: an ALLOW rule with an HTTP-only field never matches', destination: TCP, policies: () => [allowTo({ methods: ['GET'] })], expect: { allowed: false, status: 'no-allow-match', warning: /never matches on TCP/ } },
  { name: 'TCP: an ALLOW rule with requestPrincipals never matches', destination: TCP, policies: () => [allowFrom({ requestPrincipals: ['*'] })], expect: { allowed: false, warning: /never matches on TCP/ } },
  { name: 'TCP: an ALLOW rule with only TCP fields matches', destination: TCP, policies: () => [allowTo({ ports: ['5432'] })], expect: { allowed: true } },
  { name: 'TCP: a DENY rule loses its HTTP-only fields (wider deny)', destination: TCP, policies: () => [ap('deny-post', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] })], expect: { allowed: false, status: 'denied-by-deny', warning: /ignored on TCP/ } },
  {
    name: 'TCP: a DENY rule scoped to another port does not match',
    destination: TCP,
    policies: () => [ap('deny-post', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }] })],
    expect: { allowed: true },
  },
  {
    name: 'TCP: a DENY when on a header is dropped',
    destination: TCP,
    policies: () => [ap('deny-hdr', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['demo'] } }], when: [{ key: 'request.headers[x-user]', values: ['mallory'] }] }] })],
    request: () => ({ peer: CLIENT }),
    expect: { allowed: false, status: 'denied-by-deny' },
  },
  { name: 'TCP: HTTP fields of the request are not seen', destination: TCP, policies: () => [ap('deny-path', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['5432'], notPaths: ['/x'] } }] }] })], request: () => ({ path: '/x' }), expect: { allowed: false } },

  // --- RequestAuthentication ---------------------------------------------------------------
  { name: 'JWT: a valid token passes and names the request principal', policies: () => [jwtRule()], request: () => ({ jwt: { token: jwt.valid } }), expect: { allowed: true, principal: `${ISSUER}/alice` } },
  { name: 'JWT: an invalid signature is refused (401) even with ALLOW rules [{}]', policies: () => [jwtRule(), allowAll()], request: () => ({ jwt: { token: jwt.badSig } }), expect: { allowed: false, status: 'jwt-invalid', warning: undefined } },
  { name: 'JWT: an expired token is refused', policies: () => [jwtRule()], request: () => ({ jwt: { token: jwt.expired } }), expect: { allowed: false, status: 'jwt-invalid' } },
  { name: 'JWT: a token for another audience is refused with 403', policies: () => [jwtRule()], request: () => ({ jwt: { token: jwt.wrongAud } }), expect: { allowed: false, status: 'jwt-audience-not-allowed' } },
  { name: 'JWT: a token of an unknown issuer is refused', policies: () => [jwtRule()], request: () => ({ jwt: { token: jwt.otherIssuer } }), expect: { allowed: false, status: 'jwt-invalid' } },
  { name: 'JWT: a malformed bearer token is refused', policies: () => [jwtRule()], request: () => ({ headers: { authorization: 'Bearer not.a.jwt' } }), expect: { allowed: false, status: 'jwt-invalid' } },
  { name: 'JWT: no token passes RequestAuthentication', policies: () => [jwtRule()], expect: { allowed: true, status: 'no-allow-policies' } },
  { name: 'JWT: no token fails a policy that needs requestPrincipals', policies: () => [jwtRule(), allowFrom({ requestPrincipals: ['*'] })], expect: { allowed: false, status: 'no-allow-match' } },
  { name: 'JWT: requestPrincipals iss/sub match', policies: () => [jwtRule(), allowFrom({ requestPrincipals: [`${ISSUER}/alice`] })], request: () => ({ jwt: { token: jwt.valid } }), expect: { allowed: true } },
  { name: 'JWT: requestPrincipals suffix on the subject', policies: () => [jwtRule(), allowFrom({ requestPrincipals: ['*/alice'] })], request: () => ({ jwt: { token: jwt.valid } }), expect: { allowed: true } },
  { name: 'JWT: notRequestPrincipals with no token matches', policies: () => [jwtRule(), allowFrom({ notRequestPrincipals: [`${ISSUER}/alice`] })], expect: { allowed: true } },
  { name: 'JWT: without RequestAuthentication a token is not looked at', policies: () => [allowFrom({ requestPrincipals: ['*'] })], request: () => ({ jwt: { token: jwt.badSig } }), expect: { allowed: false, status: 'no-allow-match' } },
  { name: 'JWT: a RequestAuthentication of another namespace does not apply', policies: () => [ra('jwt', { jwtRules: [{ issuer: ISSUER, jwks: jwt.jwks }] }, { ns: 'other' })], request: () => ({ jwt: { token: jwt.badSig } }), expect: { allowed: true } },
  { name: 'JWT: a token in a fromHeaders location', policies: () => [jwtRule({ fromHeaders: [{ name: 'x-jwt', prefix: 'Token ' }] }), allowFrom({ requestPrincipals: ['*'] })], request: () => ({ headers: { 'x-jwt': `Token ${jwt.valid}` } }), expect: { allowed: true } },
  { name: 'JWT: with fromHeaders the Authorization header is not read', policies: () => [jwtRule({ fromHeaders: [{ name: 'x-jwt' }] }), allowFrom({ requestPrincipals: ['*'] })], request: () => ({ jwt: { token: jwt.valid } }), expect: { allowed: false, status: 'no-allow-match' } },
  { name: 'JWT: a token in a fromParams location', policies: () => [jwtRule({ fromParams: ['token'] }), allowFrom({ requestPrincipals: ['*'] })], request: () => ({ path: `/x?token=${jwt.valid}` }), expect: { allowed: true } },
  { name: 'JWT: the default access_token parameter', policies: () => [jwtRule(), allowFrom({ requestPrincipals: ['*'] })], request: () => ({ path: `/x?access_token=${jwt.valid}` }), expect: { allowed: true } },
  {
    name: 'JWT: jwksUri keys come from the lookup',
    policies: () => [ra('jwt', { jwtRules: [{ issuer: ISSUER, jwksUri: JWKS_URI }] }), allowFrom({ requestPrincipals: ['*'] })],
    request: () => ({ jwt: { token: jwt.valid } }),
    input: () => ({ jwks: { [JWKS_URI]: jwt.jwks } }),
    expect: { allowed: true },
  },
  {
    name: 'JWT: jwksUri keys that are not fetched reject tokens',
    policies: () => [ra('jwt', { jwtRules: [{ issuer: ISSUER, jwksUri: JWKS_URI }] })],
    request: () => ({ jwt: { token: jwt.valid } }),
    expect: { allowed: false, status: 'jwt-invalid', warning: /not fetched/ },
  },
  {
    name: 'JWT: keys of another issuer do not verify the token',
    policies: () => [ra('jwt', { jwtRules: [{ issuer: ISSUER, jwks: jwt.otherJwks }] })],
    request: () => ({ jwt: { token: jwt.valid } }),
    expect: { allowed: false, status: 'jwt-invalid' },
  },
  { name: 'JWT: a CORS preflight skips token verification', policies: () => [jwtRule()], request: () => ({ method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', authorization: 'Bearer broken' } }), expect: { allowed: true } },
  { name: 'JWT: when request.auth.principal', policies: () => [jwtRule(), allowWhen('request.auth.principal', [`${ISSUER}/alice`])], request: () => ({ jwt: { token: jwt.valid } }), expect: { allowed: true } },
  { name: 'JWT: when request.auth.audiences', policies: () => [jwtRule(), allowWhen('request.auth.audiences', ['web'])], request: () => ({ jwt: { token: jwt.valid } }), expect: { allowed: true } },
  { name: 'JWT: when request.auth.presenter', policies: () => [jwtRule(), allowWhen('request.auth.presenter', ['spa'])], request: () => ({ jwt: { token: jwt.valid } }), expect: { allowed: true } },
  { name: 'JWT: when request.auth.claims on a list claim', policies: () => [jwtRule(), allowWhen('request.auth.claims[groups]', ['admins'])], request: () => ({ jwt: { token: jwt.groups } }), expect: { allowed: true } },
  { name: 'JWT: when request.auth.claims on a nested claim', policies: () => [jwtRule(), allowWhen('request.auth.claims[org][team]', ['platform'])], request: () => ({ jwt: { token: jwt.groups } }), expect: { allowed: true } },
  { name: 'JWT: the scope claim is space-delimited', policies: () => [jwtRule(), allowWhen('request.auth.claims[scope]', ['write'])], request: () => ({ jwt: { token: jwt.groups } }), expect: { allowed: true } },
  { name: 'JWT: claims never match without a token', policies: () => [jwtRule(), allowWhen('request.auth.claims[groups]', ['admins'])], expect: { allowed: false } },

  // --- Dry run -------------------------------------------------------------------------------
  { name: 'dry-run DENY is recorded, not enforced', policies: () => [ap('dry-deny', { action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } })], expect: { allowed: true, status: 'no-allow-policies' } },
  { name: 'dry-run ALLOW does not make ALLOW policies exist', policies: () => [ap('dry-allow', { rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }, { annotations: { 'istio.io/dry-run': 'true' } })], expect: { allowed: true, status: 'no-allow-policies' } },
  { name: 'dry-run "false" is enforced', policies: () => [ap('deny', { action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'false' } })], expect: { allowed: false, status: 'denied-by-deny' } },

  // --- PeerAuthentication --------------------------------------------------------------------
  { name: 'mTLS STRICT refuses a plaintext peer', policies: () => [pa('strict', { mtls: { mode: 'STRICT' } })], expect: { allowed: false, status: 'mtls-required' } },
  { name: 'mTLS STRICT accepts a peer with a certificate', policies: () => [pa('strict', { mtls: { mode: 'STRICT' } })], request: () => ({ peer: CLIENT }), expect: { allowed: true } },
  { name: 'mTLS PERMISSIVE accepts a plaintext peer', policies: () => [pa('permissive', { mtls: { mode: 'PERMISSIVE' } })], expect: { allowed: true } },
  {
    name: 'mTLS namespace STRICT overrides mesh PERMISSIVE',
    policies: () => [pa('mesh', { mtls: { mode: 'PERMISSIVE' } }, { ns: ROOT }), pa('ns', { mtls: { mode: 'STRICT' } })],
    expect: { allowed: false, status: 'mtls-required' },
  },
  {
    name: 'mTLS workload PERMISSIVE overrides namespace STRICT',
    policies: () => [pa('ns', { mtls: { mode: 'STRICT' } }), pa('wl', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'PERMISSIVE' } })],
    expect: { allowed: true },
  },
  {
    name: 'mTLS UNSET inherits from the namespace',
    policies: () => [pa('ns', { mtls: { mode: 'STRICT' } }), pa('wl', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'UNSET' } })],
    expect: { allowed: false, status: 'mtls-required' },
  },
  {
    name: 'mTLS the oldest namespace policy wins',
    policies: () => [pa('a-new', { mtls: { mode: 'PERMISSIVE' } }, { created: '2024-02-01T00:00:00Z' }), pa('z-old', { mtls: { mode: 'STRICT' } }, { created: '2024-01-01T00:00:00Z' })],
    expect: { allowed: false, status: 'mtls-required' },
  },
  {
    name: 'mTLS port-level DISABLE: the peer identity is not seen',
    policies: () => [pa('wl', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }), allowFrom({ principals: ['*'] })],
    request: () => ({ peer: CLIENT }),
    expect: { allowed: false, status: 'no-allow-match', warning: /disables mTLS/ },
  },
  {
    name: 'mTLS port-level override applies only to its port',
    destination: TCP,
    policies: () => [pa('wl', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' } } })],
    expect: { allowed: false, status: 'mtls-required' },
  },
];

/** Every policy in the table must be valid Istio YAML. */
function assertValid(resources: MeshResource[]): void {
  const text = JSON.stringify(resources.map((r) => ({ apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec })));
  const errors = parseResources(text, 'case.json').errors.map((e) => `${e.path}: ${e.message}`);
  assert.deepEqual(errors, [], 'the case uses only valid policies');
}

function run(c: Case): Decision {
  const resources = c.policies?.() ?? [];
  assertValid(resources);
  return evaluate({
    policies: {
      authorizationPolicies: resources.filter((r): r is AuthorizationPolicy => r.kind === 'AuthorizationPolicy'),
      requestAuthentications: resources.filter((r): r is RequestAuthentication => r.kind === 'RequestAuthentication'),
      peerAuthentications: resources.filter((r): r is PeerAuthentication => r.kind === 'PeerAuthentication'),
    },
    rootNamespace: ROOT,
    destination: c.destination ?? HTTP,
    request: { sourceIp: '198.18.0.20', ...(c.request?.() ?? {}) },
    ...(c.input?.() ?? {}),
  });
}

void describe('reference evaluator: Istio authorization semantics', () => {
  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const other = await generateKeyPair('ES256');
    jwt.jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    jwt.otherJwks = JSON.stringify({ keys: [{ ...(await exportJWK(other.publicKey)), kid: 'k1', alg: 'ES256' }] });
    const sign = (claims: JWTPayload, key = privateKey, exp: string | number = '1h') =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuedAt().setExpirationTime(exp).sign(key);
    jwt.valid = await sign({ iss: ISSUER, sub: 'alice', aud: 'web', azp: 'spa' });
    jwt.groups = await sign({ iss: ISSUER, sub: 'alice', aud: ['web', 'api'], groups: ['dev', 'admins'], org: { team: 'platform' }, scope: 'read write' });
    jwt.expired = await sign({ iss: ISSUER, sub: 'alice', aud: 'web' }, privateKey, Math.floor(Date.now() / 1000) - 3600);
    jwt.wrongAud = await sign({ iss: ISSUER, sub: 'alice', aud: 'other' });
    jwt.badSig = await sign({ iss: ISSUER, sub: 'alice', aud: 'web' }, other.privateKey);
    jwt.otherIssuer = await sign({ iss: 'https://evil.example', sub: 'alice', aud: 'web' });
  });

  for (const c of cases) {
    void it(c.name, () => {
      const d = run(c);
      assert.equal(d.allowed, c.expect.allowed, `allowed (${d.status}: ${d.reason})`);
      if (c.expect.status) assert.equal(d.status, c.expect.status, d.reason);
      if (c.expect.by) assert.equal(d.by?.policy, c.expect.by);
      if (c.expect.ruleIndex !== undefined) assert.equal(d.by?.ruleIndex, c.expect.ruleIndex);
      if (c.expect.warning) assert.ok(d.warnings.some((w) => c.expect.warning!.test(w)), `a warning like ${String(c.expect.warning)} in ${JSON.stringify(d.warnings)}`);
      if (c.expect.principal) assert.equal(d.requestAuth?.principal, c.expect.principal);
      if (d.status === 'jwt-invalid') assert.equal(d.httpStatus, 401);
      if (!d.allowed && d.status !== 'jwt-invalid' && d.status !== 'mtls-required') assert.equal(d.httpStatus, 403);
    });
  }

  void it('records matching AUDIT rules without changing the decision', () => {
    const d = run({ name: '', policies: () => [ap('audit', { action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST'] } }] }, {}] })], expect: { allowed: true } });
    assert.deepEqual(d.audit, [{ policy: 'demo/audit', action: 'AUDIT', ruleIndex: 1 }]);
  });

  void it('records what dry-run policies would do', () => {
    const dry = { annotations: { 'istio.io/dry-run': 'true' } };
    const d = run({
      name: '',
      policies: () => [ap('dry-deny', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }, {}] }, dry), ap('dry-allow', { rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }, dry)],
      expect: { allowed: true },
    });
    assert.deepEqual(d.dryRun, [
      { policy: 'demo/dry-deny', action: 'DENY', wouldMatch: true, ruleIndex: 1 },
      { policy: 'demo/dry-allow', action: 'ALLOW', wouldMatch: false },
    ]);
  });

  void it('asks the external authorizer with the provider, policy and request', () => {
    const seen: ExternalAuthzCheck[] = [];
    run({
      name: '',
      policies: () => [ap('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] })],
      request: () => ({ path: '/admin/x', method: 'POST' }),
      input: () => ({ externalAuthorizer: (check) => (seen.push(check), true) }),
      expect: { allowed: true },
    });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.provider, 'authz');
    assert.equal(seen[0]?.policy, 'demo/ext');
    assert.equal(seen[0]?.request.path, '/admin/x');
  });

  void it('exposes the validated claims, with scope split into a list', () => {
    const d = run({ name: '', policies: () => [jwtRule()], request: () => ({ jwt: { token: jwt.groups } }), expect: { allowed: true } });
    assert.deepEqual(d.requestAuth?.claims['scope'], ['read', 'write']);
    assert.deepEqual(d.requestAuth?.claims['groups'], ['dev', 'admins']);
  });

  void it('has at least one case per documented semantic (a table of 100+ named cases)', () => {
    assert.ok(cases.length >= 100, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique');
  });
});
