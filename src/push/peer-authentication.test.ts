import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MtlsMode, PeerAuthentication, PeerAuthenticationSpec } from '../resources/types.js';
import { resolvePeerAuthentication } from './peer-authentication.js';

function pa(namespace: string, name: string, spec: PeerAuthenticationSpec, creationTimestamp?: string): PeerAuthentication {
  return { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) }, spec };
}
const mode = (m: MtlsMode): PeerAuthenticationSpec => ({ mtls: { mode: m } });
const labels = { app: 'api' };

function resolve(policies: PeerAuthentication[], port = 8080): { mode: string; source: string; warnings: string[] } {
  const warnings: string[] = [];
  const r = resolvePeerAuthentication(policies, 'shop', labels, (m) => warnings.push(m)).forPort(port);
  return { ...r, warnings };
}

void test('with no policy a port is PERMISSIVE', () => {
  assert.deepEqual(resolve([]), { mode: 'PERMISSIVE', source: 'default', warnings: [] });
});

void test('workload policy beats namespace policy beats mesh policy', () => {
  const mesh = pa('skiff-system', 'default', mode('STRICT'));
  const ns = pa('shop', 'default', mode('PERMISSIVE'));
  const wl = pa('shop', 'api', { selector: { matchLabels: { app: 'api' } }, mtls: { mode: 'DISABLE' } });
  assert.equal(resolve([mesh]).mode, 'STRICT');
  assert.equal(resolve([mesh, ns]).mode, 'PERMISSIVE');
  assert.deepEqual(resolve([mesh, ns, wl]), { mode: 'DISABLE', source: 'PeerAuthentication/shop/api', warnings: [] });
});

void test('policies of other namespaces, and selectors that do not match, do not apply', () => {
  const otherNs = pa('other', 'default', mode('DISABLE'));
  const otherWl = pa('shop', 'web', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'DISABLE' } });
  const rootSelector = pa('skiff-system', 'x', { selector: { matchLabels: { app: 'api' } }, mtls: { mode: 'DISABLE' } });
  assert.equal(resolve([pa('skiff-system', 'default', mode('STRICT')), otherNs, otherWl, rootSelector]).mode, 'STRICT');
});

void test('UNSET inherits from the next less specific level', () => {
  const mesh = pa('skiff-system', 'default', mode('STRICT'));
  const ns = pa('shop', 'default', mode('UNSET'));
  const wl = pa('shop', 'api', { selector: { matchLabels: { app: 'api' } } });
  assert.deepEqual(resolve([mesh, ns, wl]), { mode: 'STRICT', source: 'PeerAuthentication/skiff-system/default', warnings: [] });
});

void test('portLevelMtls overrides the workload mode for that port only; UNSET there inherits', () => {
  const wl = pa('shop', 'api', {
    selector: { matchLabels: { app: 'api' } },
    mtls: { mode: 'STRICT' },
    portLevelMtls: { '9090': { mode: 'DISABLE' }, '7070': { mode: 'UNSET' } },
  });
  assert.deepEqual(resolve([wl], 9090), { mode: 'DISABLE', source: 'PeerAuthentication/shop/api portLevelMtls[9090]', warnings: [] });
  assert.equal(resolve([wl], 7070).mode, 'STRICT');
  assert.equal(resolve([wl], 8080).mode, 'STRICT');
});

void test('among equally specific policies the oldest wins, then the name; the conflict is reported', () => {
  const newer = pa('shop', 'a-newer', mode('DISABLE'), '2024-01-01T00:00:00Z');
  const older = pa('shop', 'z-older', mode('STRICT'), '2023-01-01T00:00:00Z');
  const r = resolve([newer, older]);
  assert.equal(r.mode, 'STRICT');
  assert.match(r.warnings[0] ?? '', /the oldest, PeerAuthentication\/shop\/z-older, wins/);
  // without timestamps: by name
  assert.equal(resolve([pa('shop', 'b', mode('DISABLE')), pa('shop', 'a', mode('STRICT'))]).mode, 'STRICT');
  // a policy with a timestamp is older than one without
  assert.equal(resolve([pa('shop', 'a', mode('STRICT')), pa('shop', 'b', mode('DISABLE'), '2024-01-01T00:00:00Z')]).mode, 'DISABLE');
});
