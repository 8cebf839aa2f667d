import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { formatIssue } from './issues.js';
import { findExtensionProvider, loadMeshConfig, parseMeshConfig } from './mesh-config.js';

const errorsOf = (text: string): string[] => parseMeshConfig(text, 'mesh.yaml').errors.map(formatIssue);

void describe('mesh config (Istio MeshConfig subset)', () => {
  void it('defaults the root namespace and reads ext_authz providers with Istio field names', () => {
    const r = parseMeshConfig(
      [
        'trustDomain: corp.example',
        'extensionProviders:',
        '- name: http-authz',
        '  envoyExtAuthzHttp:',
        '    service: ext-authz.security.svc.cluster.local',
        '    port: 8000',
        '    pathPrefix: /check',
        '    timeout: 0.5s',
        '    includeRequestHeadersInCheck: [x-user, "x-b3-*"]',
        '    includeAdditionalHeadersInCheck: {x-skiff: "1"}',
        '    headersToUpstreamOnAllow: [x-authz-*]',
        '    headersToDownstreamOnDeny: [x-reason]',
        '    failOpen: false',
        '    statusOnError: "503"',
        '- name: grpc-authz',
        '  envoyExtAuthzGrpc: {service: 10.0.0.7, port: 9000, failOpen: true}',
      ].join('\n'),
      'mesh.yaml',
    );
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.config.rootNamespace, 'skiff-system');
    assert.equal(r.config.trustDomain, 'corp.example');
    assert.deepEqual(findExtensionProvider(r.config, 'http-authz')?.envoyExtAuthzHttp?.includeRequestHeadersInCheck, ['x-user', 'x-b3-*']);
    assert.deepEqual(findExtensionProvider(r.config, 'grpc-authz'), { name: 'grpc-authz', envoyExtAuthzGrpc: { service: '10.0.0.7', port: 9000, failOpen: true } });
  });

  void it('is the default config for an empty file', () => {
    assert.deepEqual(parseMeshConfig('', 'mesh.yaml').config, { rootNamespace: 'skiff-system', extensionProviders: [] });
  });

  void it('rejects unknown fields and unsupported provider kinds, naming file, line and path', () => {
    assert.deepEqual(errorsOf('rootNamespace: mesh\nenableAutoMtls: true\n'), ['mesh.yaml:2 enableAutoMtls: unknown field "enableAutoMtls"']);
    assert.deepEqual(errorsOf('extensionProviders:\n- name: z\n  zipkin: {service: z.svc, port: 9411}\n'), [
      'mesh.yaml:3 extensionProviders[0].zipkin: extension provider kind "zipkin" is not supported (Skiff supports envoyExtAuthzHttp and envoyExtAuthzGrpc)',
    ]);
    assert.deepEqual(errorsOf('extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {service: a.svc, port: 80, timout: 1s}\n'), [
      'mesh.yaml:3 extensionProviders[0].envoyExtAuthzHttp.timout: unknown field "timout"',
    ]);
  });

  void it('checks provider fields as Istio does', () => {
    assert.deepEqual(errorsOf('extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {service: a.svc, port: 0}\n'), ['mesh.yaml:3 extensionProviders[0].envoyExtAuthzHttp.port: expected integer 1-65535, got 0']);
    assert.deepEqual(errorsOf('extensionProviders:\n- name: a\n  envoyExtAuthzGrpc: {service: "bad host", port: 80}\n'), [
      'mesh.yaml:3 extensionProviders[0].envoyExtAuthzGrpc.service: invalid service "bad host": expected [<namespace>/]<hostname> or an IP address',
    ]);
    assert.deepEqual(errorsOf('extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {service: a.svc, port: 80, statusOnError: "299"}\n'), [
      'mesh.yaml:3 extensionProviders[0].envoyExtAuthzHttp.statusOnError: unsupported statusOnError "299": expected an HTTP status such as "403" or "503"',
    ]);
    assert.deepEqual(errorsOf('extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {service: a.svc, port: 80, pathPrefix: check}\n'), [
      'mesh.yaml:3 extensionProviders[0].envoyExtAuthzHttp.pathPrefix: pathPrefix should begin with "/", got "check"',
    ]);
    assert.deepEqual(errorsOf('extensionProviders:\n- name: a\n'), ['mesh.yaml:2 extensionProviders[0]: an extension provider needs envoyExtAuthzHttp or envoyExtAuthzGrpc']);
    assert.deepEqual(
      errorsOf('extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {service: a.svc, port: 80}\n- name: a\n  envoyExtAuthzGrpc: {service: ns/a.svc, port: 80}\n'),
      ['mesh.yaml:4 extensionProviders[1].name: extension provider "a" is already defined by extensionProviders[0]'],
    );
  });

  void it('warns about fields it parses but does not implement, and reads the deprecated includeHeadersInCheck', () => {
    const r = parseMeshConfig('extensionProviders:\n- name: a\n  envoyExtAuthzHttp: {service: a.svc, port: 80, includeHeadersInCheck: [x-a], clearRouteCache: true}\n', 'mesh.yaml');
    assert.deepEqual(r.warnings.map(formatIssue), [
      'mesh.yaml:3 extensionProviders[0].envoyExtAuthzHttp.clearRouteCache: clearRouteCache is not implemented yet',
      'mesh.yaml:3 extensionProviders[0].envoyExtAuthzHttp.includeHeadersInCheck: includeHeadersInCheck is deprecated (Istio): use includeRequestHeadersInCheck; it is read as such',
    ]);
    assert.deepEqual(r.config.extensionProviders[0]?.envoyExtAuthzHttp?.includeRequestHeadersInCheck, ['x-a']);
  });

  void it('loads a file, and reports a missing one as an error', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-mesh-'));
    try {
      const file = path.join(dir, 'mesh.yaml');
      await fs.writeFile(file, 'rootNamespace: mesh-root\n');
      assert.equal((await loadMeshConfig(file)).config.rootNamespace, 'mesh-root');
      const missing = await loadMeshConfig(path.join(dir, 'nope.yaml'));
      assert.deepEqual(missing.errors.map((e) => e.message), ['cannot read mesh config: no such file']);
      assert.equal(missing.config.rootNamespace, 'skiff-system');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
