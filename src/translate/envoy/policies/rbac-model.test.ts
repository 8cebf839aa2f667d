import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthzRuleIR } from '../../../ir/types.js';
import type { Permission, Principal, StringMatcher } from '../envoy-types.js';
import { localizePrincipals, quoteMeta, rbacPolicyOf, stringMatcher, type RuleContext } from './rbac-model.js';

const HTTP_ALLOW: RuleContext = { forTcp: false, action: 'ALLOW', policyNamespace: 'demo', trustDomains: ['cluster.local'] };
const rule = (r: Partial<AuthzRuleIR>): AuthzRuleIR => ({ from: [], to: [], when: [], ...r });

/** Envoy's string matcher semantics (safe_regex is a full match, like RE2 FullMatch). */
function matches(m: StringMatcher, value: string): boolean {
  const v = m.ignoreCase ? value.toLowerCase() : value;
  if ('exact' in m) return v === (m.ignoreCase ? m.exact.toLowerCase() : m.exact);
  if ('prefix' in m) return v.startsWith(m.ignoreCase ? m.prefix.toLowerCase() : m.prefix);
  if ('suffix' in m) return v.endsWith(m.ignoreCase ? m.suffix.toLowerCase() : m.suffix);
  return new RegExp(`^(?:${m.safeRegex.regex})$`).test(value);
}

/** The principal-name matchers inside `p` (the `authenticated` leaves), in order. */
function sanMatchers(p: Principal | Permission): StringMatcher[] {
  const out: StringMatcher[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) return x.forEach(walk);
    if (typeof x !== 'object' || x === null) return;
    const rec = x as Record<string, unknown>;
    if ('authenticated' in rec) out.push((rec['authenticated'] as { principalName: StringMatcher }).principalName);
    else Object.values(rec).forEach(walk);
  };
  walk(p);
  return out;
}

function onlyPolicy(r: ReturnType<typeof rbacPolicyOf>): { permissions: Permission[]; principals: Principal[] } {
  assert.ok('policy' in r, JSON.stringify(r));
  return r.policy;
}

void test('namespaces match the SPIFFE ID by namespace segment, with * as any characters', () => {
  const p = onlyPolicy(rbacPolicyOf(rule({ from: [{ namespaces: ['dev', 'test-*'] }] }), HTTP_ALLOW));
  const [dev, test_] = sanMatchers(p.principals[0]!);
  assert.ok(dev && test_);
  assert.ok(matches(dev, 'spiffe://cluster.local/ns/dev/sa/web'));
  assert.ok(!matches(dev, 'spiffe://cluster.local/ns/devx/sa/web'));
  assert.ok(!matches(dev, 'spiffe://cluster.local/ns/prod/sa/dev'));
  assert.ok(matches(test_, 'spiffe://cluster.local/ns/test-7/sa/web'));
  assert.ok(!matches(test_, 'spiffe://cluster.local/ns/prod/sa/test-7'));
});

void test('serviceAccounts: bare names are in the policy namespace, ns/name elsewhere; no prefix matches', () => {
  const p = onlyPolicy(rbacPolicyOf(rule({ from: [{ serviceAccounts: ['web', 'ops/robot'] }] }), HTTP_ALLOW));
  const [web, robot] = sanMatchers(p.principals[0]!);
  assert.ok(web && robot);
  assert.ok(matches(web, 'spiffe://cluster.local/ns/demo/sa/web'));
  assert.ok(!matches(web, 'spiffe://cluster.local/ns/other/sa/web'));
  assert.ok(matches(robot, 'spiffe://example.org/ns/ops/sa/robot'));
  assert.ok(!matches(robot, 'spiffe://example.org/ns/ops/sa/robot-canary'));
});

void test('principals: exact, prefix, suffix (escaped) and * for any authenticated peer', () => {
  const p = onlyPolicy(rbacPolicyOf(rule({ from: [{ principals: ['cluster.local/ns/a/sa/b', 'cluster.local/ns/ops/*', '*.admin', '*'] }] }), HTTP_ALLOW));
  const [exact, prefix, suffix, any] = sanMatchers(p.principals[0]!);
  assert.ok(exact && prefix && suffix && any);
  assert.ok(matches(exact, 'spiffe://cluster.local/ns/a/sa/b') && !matches(exact, 'spiffe://cluster.local/ns/a/sa/bb'));
  assert.ok(matches(prefix, 'spiffe://cluster.local/ns/ops/sa/x'));
  assert.ok(matches(suffix, 'spiffe://cluster.local/ns/a/sa/x.admin') && !matches(suffix, 'spiffe://cluster.local/ns/a/sa/xadmin'));
  assert.ok(matches(any, 'spiffe://cluster.local/ns/a/sa/b') && !matches(any, ''));
});

void test('the local trust domain and its aliases stand for each other in principals', () => {
  assert.deepEqual(localizePrincipals(['cluster.local/ns/a/sa/b'], ['example.org']), ['example.org/ns/a/sa/b']);
  assert.deepEqual(localizePrincipals(['example.org/ns/a/sa/b'], ['example.org', 'old.example']), ['example.org/ns/a/sa/b', 'old.example/ns/a/sa/b']);
  assert.deepEqual(localizePrincipals(['partner.example/ns/a/sa/b', '*/ns/a/sa/b', 'ns/a'], ['example.org']), ['partner.example/ns/a/sa/b', '*/ns/a/sa/b', 'ns/a']);
  assert.deepEqual(localizePrincipals(['*.org/ns/a/sa/b'], ['example.org']), ['*.org/ns/a/sa/b']);
});

void test('requestPrincipals split issuer and subject at the last "/"', () => {
  const p = onlyPolicy(rbacPolicyOf(rule({ from: [{ requestPrincipals: ['https://idp.example.com/realms/x/alice'] }] }), HTTP_ALLOW));
  const json = JSON.stringify(p.principals[0]);
  assert.match(json, /"key":"iss"\}\],"value":\{"stringMatch":\{"exact":"https:\/\/idp.example.com\/realms\/x"\}\}/);
  assert.match(json, /"key":"sub"\}\],"value":\{"stringMatch":\{"exact":"alice"\}\}/);
});

void test('an empty rule matches every request (any principal, any permission)', () => {
  assert.deepEqual(rbacPolicyOf(rule({}), HTTP_ALLOW), {
    policy: { permissions: [{ andRules: { rules: [{ any: true }] } }], principals: [{ andIds: { ids: [{ any: true }] } }] },
    ignoredHttpOnly: [],
    ignored: [],
  });
});

const HTTP_ONLY_RULE = rule({
  from: [{ namespaces: ['dev'], requestPrincipals: ['*'] }],
  to: [{ paths: ['/admin'], ports: ['5432'] }],
  when: [{ key: 'request.headers[x-a]', values: ['1'], notValues: [] }],
});

void test('on TCP an ALLOW rule with HTTP-only fields is dropped, naming every such field', () => {
  assert.deepEqual(rbacPolicyOf(HTTP_ONLY_RULE, { ...HTTP_ALLOW, forTcp: true }), {
    dropped: 'http-only',
    reasons: ['from[0].source.requestPrincipals', 'when[0] request.headers[x-a]', 'to[0].operation.paths'],
  });
});

void test('on TCP a DENY rule keeps only its TCP fields (a wider deny)', () => {
  const r = rbacPolicyOf(HTTP_ONLY_RULE, { ...HTTP_ALLOW, forTcp: true, action: 'DENY' });
  assert.ok('policy' in r);
  assert.deepEqual(r.ignoredHttpOnly, ['from[0].source.requestPrincipals', 'when[0] request.headers[x-a]', 'to[0].operation.paths']);
  assert.deepEqual(r.policy.permissions, [{ andRules: { rules: [{ orRules: { rules: [{ destinationPort: 5432 }] } }] } }]);
  assert.equal(sanMatchers(r.policy.principals[0]!).length, 1, 'only the namespace condition is left');
  assert.equal(JSON.stringify(r.policy.principals).includes('jwt_authn'), false);
});

void test('a value that cannot be generated drops an ALLOW rule but is only left out of a DENY rule', () => {
  const bad = rule({ from: [{ ipBlocks: ['10.0.0.0/8', '10.0.0.0/33'] }] });
  assert.deepEqual(rbacPolicyOf(bad, HTTP_ALLOW), { dropped: 'invalid', reasons: ['from[0].source.ipBlocks: "10.0.0.0/33" is not an IP address or CIDR block'] });
  const r = rbacPolicyOf(bad, { ...HTTP_ALLOW, action: 'DENY' });
  assert.ok('policy' in r);
  assert.deepEqual(r.ignored, ['from[0].source.ipBlocks: "10.0.0.0/33" is not an IP address or CIDR block']);
  assert.deepEqual(r.policy.principals, [{ andIds: { ids: [{ orIds: { ids: [{ directRemoteIp: { addressPrefix: '10.0.0.0', prefixLen: { value: 8 } } }] } }] } }]);
});

void test('an unknown when key skips the rule whatever the action', () => {
  const r = rule({ when: [{ key: 'source.color', values: ['red'], notValues: [] }] });
  for (const action of ['ALLOW', 'DENY'] as const) {
    const out = rbacPolicyOf(r, { ...HTTP_ALLOW, action });
    assert.ok('dropped' in out && out.dropped === 'unknown-key', JSON.stringify(out));
  }
});

void test('when conditions join every from entry (principal side) and every to entry (permission side)', () => {
  const p = onlyPolicy(
    rbacPolicyOf(
      rule({
        from: [{ namespaces: ['a'] }, { namespaces: ['b'] }],
        to: [{ methods: ['GET'] }, { methods: ['PUT'] }],
        when: [
          { key: 'source.ip', values: ['10.0.0.1'], notValues: [] },
          { key: 'destination.port', values: ['8080'], notValues: [] },
        ],
      }),
      HTTP_ALLOW,
    ),
  );
  assert.equal(p.principals.length, 2);
  assert.equal(p.permissions.length, 2);
  for (const pr of p.principals) assert.match(JSON.stringify(pr), /directRemoteIp/);
  for (const pe of p.permissions) assert.match(JSON.stringify(pe), /"destinationPort":8080/);
});

void test('string match and regex quoting follow Istio', () => {
  assert.deepEqual(stringMatcher('*'), { safeRegex: { regex: '.+' } });
  assert.deepEqual(stringMatcher('/api/*'), { prefix: '/api/' });
  assert.deepEqual(stringMatcher('*.css'), { suffix: '.css' });
  assert.deepEqual(stringMatcher('Host', '', true), { exact: 'Host', ignoreCase: true });
  assert.equal(quoteMeta('a.b*c(d)[e]{f}|g^h$i+j?k\\l'), 'a\\.b\\*c\\(d\\)\\[e\\]\\{f\\}\\|g\\^h\\$i\\+j\\?k\\\\l');
});
