import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mayActAsWorkload, workloadAuthorizationProblem } from './authorize.js';

void describe('mayActAsWorkload: an SVID may act only as its own workload', () => {
  const caller = 'spiffe://cluster.local/ns/shop/sa/reviews';

  void it('allows the same namespace and service account', () => {
    assert.equal(mayActAsWorkload(caller, { namespace: 'shop', serviceAccount: 'reviews' }), true);
    assert.equal(mayActAsWorkload(caller, { namespace: 'shop', serviceAccount: 'reviews', trustDomain: 'cluster.local' }), true);
  });

  void it('refuses another service account, another namespace or another trust domain, saying which', () => {
    assert.equal(
      workloadAuthorizationProblem(caller, { namespace: 'shop', serviceAccount: 'payments' }),
      'caller spiffe://cluster.local/ns/shop/sa/reviews may not act as a workload of namespace shop, service account payments',
    );
    assert.equal(mayActAsWorkload(caller, { namespace: 'other', serviceAccount: 'reviews' }), false);
    assert.equal(workloadAuthorizationProblem(caller, { namespace: 'shop', serviceAccount: 'reviews', trustDomain: 'example.org' }), 'caller spiffe://cluster.local/ns/shop/sa/reviews is not in trust domain example.org');
  });

  void it('treats an unset or empty service account as "default" (Istio)', () => {
    const asDefault = 'spiffe://cluster.local/ns/shop/sa/default';
    assert.equal(mayActAsWorkload(asDefault, { namespace: 'shop' }), true);
    assert.equal(mayActAsWorkload(asDefault, { namespace: 'shop', serviceAccount: '' }), true);
    assert.equal(mayActAsWorkload(caller, { namespace: 'shop' }), false);
  });

  void it('refuses a caller ID that is not an Istio-style workload SPIFFE ID', () => {
    assert.match(workloadAuthorizationProblem('spiffe://cluster.local/workload/x', { namespace: 'shop' }) ?? '', /is not a workload SPIFFE ID/);
    assert.equal(mayActAsWorkload('https://cluster.local/ns/shop/sa/default', { namespace: 'shop' }), false);
  });
});
