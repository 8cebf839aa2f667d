import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type tls from 'node:tls';
import { CONTROL_PLANE_SNI, channelOptionsFor, controlPlaneIdentityCheck } from './ca-client.js';
import { createTestCa } from './testing.js';

const CP_ID = 'spiffe://cluster.local/ns/skiff-system/sa/skiff-control-plane';

/** The fields Node's TLS layer gives checkServerIdentity, from a real certificate. */
function peer(pem: string): tls.PeerCertificate {
  const x = new crypto.X509Certificate(pem);
  return { subject: { O: 'skiff-test' }, subjectaltname: x.subjectAltName ?? '' } as unknown as tls.PeerCertificate;
}

void describe('control plane identity check', () => {
  void it('accepts the control plane SPIFFE ID whatever host was dialed', async () => {
    const ca = await createTestCa();
    const cert = peer((await ca.issue({ spiffeId: CP_ID })).certChainPem);
    assert.equal(controlPlaneIdentityCheck(CP_ID)('some.other.host', cert), undefined);
  });

  void it('falls back to DNS/IP SANs of the host actually dialed (not the SNI override), and refuses the rest', async () => {
    const ca = await createTestCa();
    const cert = peer((await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/skiff-system/sa/other', dnsNames: ['cp.mesh.internal'], ips: ['10.1.2.3'] })).certChainPem);
    assert.equal(controlPlaneIdentityCheck(CP_ID, '10.1.2.3')(CONTROL_PLANE_SNI, cert), undefined);
    assert.equal(controlPlaneIdentityCheck(CP_ID)('cp.mesh.internal', cert), undefined);
    const refused = controlPlaneIdentityCheck(CP_ID, '10.9.9.9')(CONTROL_PLANE_SNI, cert);
    assert.ok(refused instanceof Error);
    assert.match(refused.message, /neither URI SAN spiffe:\/\/cluster\.local\/ns\/skiff-system\/sa\/skiff-control-plane nor a SAN matching 10\.9\.9\.9/);
  });

  void it('overrides the TLS server name only for IP literals (RFC 6066: no IPs in SNI)', () => {
    assert.deepEqual(channelOptionsFor('10.1.2.3:15012'), { 'grpc.ssl_target_name_override': CONTROL_PLANE_SNI });
    assert.deepEqual(channelOptionsFor('[fd00::1]:15012'), { 'grpc.ssl_target_name_override': CONTROL_PLANE_SNI });
    assert.deepEqual(channelOptionsFor('cp.mesh.internal:15012'), {});
  });
});
