import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandTrustDomains, ipInBlock, matchValue, namespaceMatches, normalizePath, pathTemplateMatches, principalMatches, serviceAccountMatches } from './match.js';

void describe('Istio value matching', () => {
  const table: [string, string, string | undefined, 'present' | 'non-empty', boolean][] = [
    ['exact', 'abc', 'abc', 'non-empty', true],
    ['exact is whole', 'abc', 'abcd', 'non-empty', false],
    ['prefix', 'abc*', 'abcd', 'non-empty', true],
    ['prefix matches itself', 'abc*', 'abc', 'non-empty', true],
    ['suffix', '*abc', 'xabc', 'non-empty', true],
    ['presence needs a non-empty value', '*', '', 'non-empty', false],
    ['header presence accepts an empty value', '*', '', 'present', true],
    ['absent never matches', '*', undefined, 'present', false],
    ['a star inside is literal', 'a*c', 'abc', 'non-empty', false],
  ];
  for (const [name, pattern, value, presence, want] of table) {
    void it(name, () => assert.equal(matchValue(pattern, value, presence), want));
  }
  void it('ignores case only when asked (hosts)', () => {
    assert.equal(matchValue('Example.COM', 'example.com', 'present', true), true);
    assert.equal(matchValue('Example.COM', 'example.com', 'present'), false);
  });
});

void describe('identity matching against a SPIFFE ID', () => {
  const id = 'spiffe://cluster.local/ns/demo/sa/web';
  void it('principals compare without spiffe://', () => {
    assert.equal(principalMatches('cluster.local/ns/demo/sa/web', id), true);
    assert.equal(principalMatches('spiffe://cluster.local/ns/demo/sa/web', id), false);
    assert.equal(principalMatches('*/sa/web', id), true);
    assert.equal(principalMatches('cluster.local/ns/demo/*', id), true);
    assert.equal(principalMatches('*', undefined), false);
  });
  void it('namespaces read the /ns/ segment', () => {
    assert.equal(namespaceMatches('demo', id), true);
    assert.equal(namespaceMatches('dem', id), false);
    assert.equal(namespaceMatches('de*', id), true);
  });
  void it('serviceAccounts need ns and sa to be whole segments', () => {
    assert.equal(serviceAccountMatches('demo/web', 'other', id), true);
    assert.equal(serviceAccountMatches('web', 'demo', id), true);
    assert.equal(serviceAccountMatches('web', 'other', id), false);
    assert.equal(serviceAccountMatches('demo/we', 'demo', id), false);
  });
  void it('principals in cluster.local expand to the trust domain and its aliases', () => {
    assert.deepEqual(expandTrustDomains(['cluster.local/ns/a/sa/b'], ['td1', 'td0']), ['td1/ns/a/sa/b', 'td0/ns/a/sa/b']);
    assert.deepEqual(expandTrustDomains(['foreign/ns/a/sa/b'], ['td1']), ['foreign/ns/a/sa/b']);
    assert.deepEqual(expandTrustDomains(['*/ns/a/sa/b', 'sa/b'], ['td1']), ['*/ns/a/sa/b', 'sa/b']);
  });
});

void describe('IP blocks', () => {
  void it('match CIDRs and single addresses of the same family', () => {
    assert.equal(ipInBlock('10.1.2.3', '10.0.0.0/8'), true);
    assert.equal(ipInBlock('11.1.2.3', '10.0.0.0/8'), false);
    assert.equal(ipInBlock('10.1.2.3', '10.1.2.3'), true);
    assert.equal(ipInBlock('10.1.2.3', '0.0.0.0/0'), true);
    assert.equal(ipInBlock('2001:db8::1', '2001:db8::/32'), true);
    assert.equal(ipInBlock('::ffff:10.0.0.1', '::ffff:10.0.0.0/120'), true);
    assert.equal(ipInBlock('10.0.0.1', '::/0'), false);
  });
});

void describe('paths', () => {
  void it('drop the query and resolve dot segments', () => {
    assert.equal(normalizePath('/a/./b/../c?x=1#f'), '/a/c');
    assert.equal(normalizePath('/a/b/..'), '/a/');
    assert.equal(normalizePath('/../x'), '/x');
  });
  void it('match {*} and {**} templates like Envoy', () => {
    assert.equal(pathTemplateMatches('/foo/{*}', '/foo/bar'), true);
    assert.equal(pathTemplateMatches('/foo/{*}', '/foo/bar/baz'), false);
    assert.equal(pathTemplateMatches('/foo/{*}/bar/{**}', '/foo/buzz/bar/baz'), true);
    assert.equal(pathTemplateMatches('/foo/{**}/', '/foo/bar/'), true);
    assert.equal(pathTemplateMatches('/foo/{**}/', '/foo/bar'), false);
  });
});
