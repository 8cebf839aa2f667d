import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypeUrl, type EncodedAny } from '../protos/loader.js';
import { decodeDiscoveryResponse, encodeDiscoveryResponse } from './messages.js';

void test('a DiscoveryResponse encoded for several streams from one resources array carries each stream its own nonce and the same resources', () => {
  const resources: EncodedAny[] = [
    { typeUrl: TypeUrl.ClusterLoadAssignment, value: Uint8Array.from([10, 3, 97, 98, 99]) },
    { typeUrl: TypeUrl.ClusterLoadAssignment, value: new Uint8Array(300).fill(7) },
  ];
  const nonces = ['1', '42', 'x'.repeat(200), ''];
  for (const nonce of nonces) {
    const decoded = decodeDiscoveryResponse(encodeDiscoveryResponse({ versionInfo: 'v1', resources, typeUrl: TypeUrl.ClusterLoadAssignment, nonce }));
    assert.equal(decoded.nonce, nonce);
    assert.equal(decoded.versionInfo, 'v1');
    assert.equal(decoded.typeUrl, TypeUrl.ClusterLoadAssignment);
    assert.deepEqual(decoded.resources.map((r) => [r.typeUrl, Buffer.from(r.value).toString('hex')]), resources.map((r) => [r.typeUrl, Buffer.from(r.value).toString('hex')]));
  }
  // The same array with another version (a new answer reusing it) is encoded anew.
  assert.equal(decodeDiscoveryResponse(encodeDiscoveryResponse({ versionInfo: 'v2', resources, typeUrl: TypeUrl.ClusterLoadAssignment, nonce: '7' })).versionInfo, 'v2');
});
