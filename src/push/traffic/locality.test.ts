import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointIR, LocalityIR } from '../../ir/types.js';
import { applyLocalityLb, effectiveLocalitySetting, localityMatches, localityRank, withTopologyLabels, LOCALITY_LABELS, type LabeledEndpoint } from './locality.js';

function loc(s: string): LocalityIR {
  const [region, zone, subZone] = s.split('/');
  const l: LocalityIR = {};
  if (region) l.region = region;
  if (zone) l.zone = zone;
  if (subZone) l.subZone = subZone;
  return l;
}

function ep(ip: string, locality?: string, labels: Record<string, string> = {}, weight?: number): LabeledEndpoint {
  const endpoint: EndpointIR = { ip, port: 80, spiffeId: 'spiffe://cluster.local/ns/demo/sa/b', source: ip };
  if (locality) endpoint.locality = loc(locality);
  if (weight !== undefined) endpoint.weight = weight;
  return { endpoint, labels: withTopologyLabels(labels, endpoint.locality) };
}

const priorities = (eps: readonly EndpointIR[]): Array<[string, number]> => eps.map((e) => [e.ip, e.priority ?? 0]);

void test('localityRank: subzone, zone, region, other', () => {
  const me = loc('r1/z1/s1');
  assert.equal(localityRank(me, loc('r1/z1/s1')), 0);
  assert.equal(localityRank(me, loc('r1/z1/s2')), 1);
  assert.equal(localityRank(me, loc('r1/z2/s1')), 2);
  assert.equal(localityRank(me, loc('r2/z1/s1')), 3);
  assert.equal(localityRank(undefined, undefined), 0, 'no locality on either side compares equal (Istio)');
  assert.equal(localityRank(undefined, loc('r1')), 3);
});

void test('localityMatches: wildcards and missing parts', () => {
  assert.ok(localityMatches(loc('r1/z1/s1'), 'r1/*'));
  assert.ok(localityMatches(loc('r1/z1/s1'), 'r1'));
  assert.ok(localityMatches(loc('r1/z1/s1'), '*'));
  assert.ok(!localityMatches(loc('r1/z1/s1'), 'r1/z2/*'));
  assert.ok(!localityMatches(undefined, 'r1/*'));
});

void test('default failover (outlier detection on): priorities 0..N without gaps from the proxy locality', () => {
  const eps = [ep('a', 'r1/z1'), ep('b', 'r1/z2'), ep('c', 'r2/z3'), ep('d')];
  const r = applyLocalityLb(eps, { locality: loc('r1/z1'), labels: {} }, effectiveLocalitySetting(undefined), true);
  assert.deepEqual(priorities(r.endpoints), [['a', 0], ['b', 1], ['c', 2], ['d', 2]]);
  assert.equal(r.weighted, false, 'default failover needs no locality-weighted LB');
  assert.equal(r.applied, true);
  assert.equal(eps[1]!.endpoint.priority, undefined, 'inputs are not changed');
});

void test('no outlier detection, or enabled: false: no failover', () => {
  const eps = [ep('a', 'r1/z1'), ep('b', 'r2/z2')];
  assert.deepEqual(priorities(applyLocalityLb(eps, { locality: loc('r1/z1'), labels: {} }, {}, false).endpoints), [['a', 0], ['b', 0]]);
  assert.equal(effectiveLocalitySetting({ enabled: false }), undefined);
  assert.deepEqual(priorities(applyLocalityLb(eps, { locality: loc('r1/z1'), labels: {} }, effectiveLocalitySetting({ enabled: false }), true).endpoints), [['a', 0], ['b', 0]]);
});

void test('failover from → to: the named region before the other regions', () => {
  const eps = [ep('a', 'r1/z1'), ep('b', 'r3/z1'), ep('c', 'r2/z1')];
  const r = applyLocalityLb(eps, { locality: loc('r1/z1'), labels: {} }, { failover: [{ from: 'r1', to: 'r2' }] }, true);
  assert.deepEqual(priorities(r.endpoints), [['a', 0], ['b', 2], ['c', 1]]);
  assert.equal(r.weighted, true);
  assert.deepEqual(r.localityWeights, {});
});

void test('failoverPriority: endpoints matching the proxy on more labels come first', () => {
  const client = { locality: loc('r1/z1'), labels: withTopologyLabels({ env: 'prod' }, loc('r1/z1')) };
  const eps = [ep('same-zone', 'r1/z1', { env: 'prod' }), ep('same-region', 'r1/z2', { env: 'prod' }), ep('other', 'r2/z1', { env: 'prod' }), ep('staging', 'r1/z1', { env: 'staging' })];
  const r = applyLocalityLb(eps, client, { failoverPriority: ['env', LOCALITY_LABELS.region, LOCALITY_LABELS.zone] }, true);
  assert.deepEqual(priorities(r.endpoints), [['same-zone', 0], ['same-region', 1], ['other', 2], ['staging', 3]]);
  const overridden = applyLocalityLb(eps, client, { failoverPriority: ['env=staging'] }, true);
  assert.deepEqual(priorities(overridden.endpoints), [['same-zone', 1], ['same-region', 1], ['other', 1], ['staging', 0]]);
});

void test('failoverPriority with failover: label ranks first, locality ranks within them', () => {
  const client = { locality: loc('r1/z1'), labels: withTopologyLabels({ env: 'prod' }, loc('r1/z1')) };
  const eps = [ep('p-far', 'r2/z1', { env: 'prod' }), ep('p-near', 'r1/z1', { env: 'prod' }), ep('s-near', 'r1/z1', { env: 'dev' })];
  const r = applyLocalityLb(eps, client, { failoverPriority: ['env'], failover: [{ from: 'r1', to: 'r2' }] }, true);
  assert.deepEqual(priorities(r.endpoints), [['p-far', 1], ['p-near', 0], ['s-near', 2]]);
});

void test('distribute: weights split by endpoint weight, rounded up; unnamed localities lose their endpoints', () => {
  const eps = [ep('a1', 'r1/z1', {}, 3), ep('a2', 'r1/z2'), ep('b', 'r2/z1'), ep('c', 'r3/z1')];
  const r = applyLocalityLb(eps, { locality: loc('r1/z1'), labels: {} }, { distribute: [{ from: 'r1/z1/*', to: { 'r1/*': 70, 'r2/z1/*': 30 } }] }, false);
  assert.deepEqual(r.endpoints.map((e) => e.ip), ['a1', 'a2', 'b']);
  assert.deepEqual(r.localityWeights, { 'r1/z1/': 53, 'r1/z2/': 18, 'r2/z1/': 30 });
  assert.equal(r.weighted, true);
  const other = applyLocalityLb(eps, { locality: loc('r9/z1'), labels: {} }, { distribute: [{ from: 'r1/z1/*', to: { 'r1/*': 100 } }] }, true);
  assert.equal(other.applied, false, 'no distribute rule for this proxy: nothing changes');
  assert.equal(other.endpoints.length, 4);
});
