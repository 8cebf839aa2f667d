import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { SESSION_PROTO_DESCRIPTOR, decodeCreateSessionTokenRequest, decodeSessionToken, encodeCreateSessionTokenRequest, encodeSessionToken } from './session.js';

void describe('skiff.session.v1 codec', () => {
  void it('its built-in descriptor is exactly skiff/session.proto', () => {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'session.proto');
    const parsed = protobuf.loadSync(file).resolveAll().toJSON();
    assert.deepEqual(protobuf.Root.fromJSON(SESSION_PROTO_DESCRIPTOR as unknown as protobuf.INamespace).toJSON(), parsed);
  });

  void it('round-trips a request and a token, with an int64 expiry past 2038', () => {
    assert.deepEqual(decodeCreateSessionTokenRequest(encodeCreateSessionTokenRequest({ ttlSeconds: 600 })), { ttlSeconds: 600 });
    const token = { token: 'a.b.c', expiresAtUnixSeconds: 4_102_444_800, spiffeId: 'spiffe://cluster.local/ns/shop/sa/web' };
    assert.deepEqual(decodeSessionToken(encodeSessionToken(token)), token);
    // ttl_seconds 0 (field absent on the wire) means the control plane's default.
    assert.deepEqual(decodeCreateSessionTokenRequest(encodeCreateSessionTokenRequest({})), { ttlSeconds: 0 });
  });

  void it('refuses to encode a wrong field type', () => {
    assert.throws(() => encodeSessionToken({ token: 5 as unknown as string, expiresAtUnixSeconds: 1, spiffeId: 'x' }), /token: string expected/);
  });
});
