import assert from 'node:assert/strict';
import { test } from 'node:test';
import { egressHostMatches, parseEgressHost } from './hosts.js';

const noWarn = (m: string): void => assert.fail(`unexpected warning: ${m}`);

void test('egress hosts select services by namespace and DNS name as Istio does', () => {
  const cases: Array<[string, string, string, boolean]> = [
    // [egress host, service host, service namespace, selected?]
    ['*/*', 'b.demo.svc.cluster.local', 'demo', true],
    ['./*', 'b.demo.svc.cluster.local', 'demo', true],
    ['./*', 'b.other.svc.cluster.local', 'other', false],
    ['demo/b.demo.svc.cluster.local', 'b.demo.svc.cluster.local', 'demo', true],
    ['demo/b.demo.svc.cluster.local', 'c.demo.svc.cluster.local', 'demo', false],
    ['other/b.demo.svc.cluster.local', 'b.demo.svc.cluster.local', 'demo', false],
    ['*/*.example.com', 'api.example.com', 'x', true],
    ['*/*.example.com', 'a.b.example.com', 'x', true],
    ['*/*.example.com', 'example.com', 'x', false],
    ['*/*.example.com', '*.example.com', 'x', true],
    ['*/*.b.example.com', '*.example.com', 'x', false],
    ['*/API.Example.com', 'api.example.com', 'x', true],
    ['~/*', 'b.demo.svc.cluster.local', 'demo', false],
  ];
  for (const [entry, host, ns, want] of cases) {
    const pattern = parseEgressHost(entry, 'demo', noWarn);
    assert.equal(egressHostMatches(pattern, host, ns), want, `${entry} vs ${ns}/${host}`);
  }
});

void test('an egress host without a namespace part is taken as */host, with a warning', () => {
  const warnings: string[] = [];
  const p = parseEgressHost('b.demo.svc.cluster.local', 'demo', (m) => warnings.push(m));
  assert.deepEqual(p, { namespace: '*', host: 'b.demo.svc.cluster.local' });
  assert.equal(warnings.length, 1);
});
