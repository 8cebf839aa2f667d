import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROL_PLANE_SPIFFE_ID, SpiffeIdError, parseSpiffeId, spiffeId } from './spiffe.js';

describe('SPIFFE IDs', () => {
  it('builds and parses the Istio form spiffe://<td>/ns/<ns>/sa/<sa>', () => {
    const id = spiffeId('cluster.local', 'shop', 'cart-v2');
    assert.equal(id, 'spiffe://cluster.local/ns/shop/sa/cart-v2');
    assert.deepEqual(parseSpiffeId(id), { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart-v2' });
  });

  it('the control plane identity is spiffe://<td>/ns/skiff-system/sa/skiff-control-plane', () => {
    assert.equal(CONTROL_PLANE_SPIFFE_ID('example.org'), 'spiffe://example.org/ns/skiff-system/sa/skiff-control-plane');
  });

  for (const bad of [
    'https://cluster.local/ns/a/sa/b',
    'SPIFFE://cluster.local/ns/a/sa/b',
    'spiffe://cluster.local',
    'spiffe://cluster.local/',
    'spiffe://Cluster.Local/ns/a/sa/b',
    'spiffe://cluster.local:8443/ns/a/sa/b',
    'spiffe://user@cluster.local/ns/a/sa/b',
    'spiffe:///ns/a/sa/b',
    'spiffe://cluster.local/ns/a/sa/b/extra',
    'spiffe://cluster.local/ns/a/sa/b?x=1',
    'spiffe://cluster.local/ns/a/sa/b#frag',
    'spiffe://cluster.local/ns//sa/b',
    'spiffe://cluster.local/ns/../sa/b',
    'spiffe://cluster.local/ns/a%2Fb/sa/c',
    'spiffe://cluster.local/namespace/a/sa/b',
    'spiffe://cluster.local/ns/a/serviceaccount/b',
  ]) {
    it(`refuses ${bad}`, () => {
      assert.throws(() => parseSpiffeId(bad), SpiffeIdError);
    });
  }

  it('refuses to build an ID from a namespace with a slash or an empty service account', () => {
    assert.throws(() => spiffeId('cluster.local', 'a/b', 'sa'), /namespace/);
    assert.throws(() => spiffeId('cluster.local', 'ns', ''), /service account is empty/);
  });
});
