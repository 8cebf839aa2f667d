import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { formatIssue, parseResources } from './parse.js';

/** Parses one resource given as an object; returns `path: message` of each error. */
function errors(kind: string, spec: unknown, metadata: Record<string, unknown> = {}): string[] {
  const text = JSON.stringify({ apiVersion: 'security.istio.io/v1', kind, metadata: { name: 'x', namespace: 'demo', ...metadata }, spec });
  return parseResources(text, 'f.json').errors.map((e) => `${e.path}: ${e.message}`);
}
function warnings(kind: string, spec: unknown): string[] {
  const text = JSON.stringify({ apiVersion: 'security.istio.io/v1', kind, metadata: { name: 'x', namespace: 'demo' }, spec });
  return parseResources(text, 'f.json').warnings.map((e) => `${e.path}: ${e.message}`);
}
const ap = (spec: unknown, metadata?: Record<string, unknown>): string[] => errors('AuthorizationPolicy', spec, metadata);
const ra = (spec: unknown, metadata?: Record<string, unknown>): string[] => errors('RequestAuthentication', spec, metadata);
const from = (source: unknown) => ({ rules: [{ from: [{ source }] }] });
const to = (operation: unknown) => ({ rules: [{ to: [{ operation }] }] });
const when = (condition: unknown) => ({ rules: [{ when: [condition] }] });

void describe('AuthorizationPolicy validation (Istio ValidateAuthorizationPolicy)', () => {
  void it('accepts the examples of Istio\'s reference page', () => {
    assert.deepEqual(
      ap({
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }, { source: { namespaces: ['test'] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/info*'] } }, { operation: { methods: ['POST'], paths: ['/data'] } }],
            when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }],
          },
        ],
      }),
      [],
    );
    assert.deepEqual(ap({}), []);
    assert.deepEqual(ap({ rules: [{}] }), []);
    assert.deepEqual(ap({ action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }] }), []);
    assert.deepEqual(ap({ action: 'CUSTOM', provider: { name: 'my-custom-authz' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] }), []);
    assert.deepEqual(ap({ selector: { matchLabels: { version: 'v1' } } }), []);
  });

  void it('rejects an unknown action', () => {
    assert.deepEqual(ap({ action: 'REJECT', rules: [{}] }), ['spec.action: expected ALLOW|DENY|AUDIT|CUSTOM, got "REJECT"']);
  });

  void it('rejects a malformed CIDR in every IP block field', () => {
    for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) {
      assert.deepEqual(ap(from({ [field]: ['10.0.0.0/8', '10.0.0.0/33'] })), [`spec.rules[0].from[0].source.${field}[1]: bad CIDR range "10.0.0.0/33"`]);
    }
    assert.deepEqual(ap(from({ ipBlocks: ['10.0.0.300'] })), ['spec.rules[0].from[0].source.ipBlocks[0]: bad IP address "10.0.0.300"']);
    assert.deepEqual(ap(when({ key: 'source.ip', values: ['1.2.3.4/40'] })), ['spec.rules[0].when[0].values[0]: invalid value for key source.ip: bad CIDR range "1.2.3.4/40"']);
  });

  void it('rejects a port outside 1-65535', () => {
    assert.deepEqual(ap(to({ ports: ['0'] })), ['spec.rules[0].to[0].operation.ports[0]: bad port "0": expected a port number 1-65535']);
    assert.deepEqual(ap(to({ notPorts: ['65536'] })), ['spec.rules[0].to[0].operation.notPorts[0]: bad port "65536": expected a port number 1-65535']);
    assert.deepEqual(ap(to({ ports: ['http'] })), ['spec.rules[0].to[0].operation.ports[0]: bad port "http": expected a port number 1-65535']);
    assert.deepEqual(ap(to({ ports: [8080] })), ['spec.rules[0].to[0].operation.ports[0]: expected a port as a string (e.g. "8080"), got 8080']);
    assert.deepEqual(ap(when({ key: 'destination.port', values: ['99999'] })), [
      'spec.rules[0].when[0].values[0]: invalid value for key destination.port: bad port "99999": expected a port number 1-65535',
    ]);
  });

  void it('rejects an unknown when key, naming the documented ones', () => {
    const [e] = ap(when({ key: 'request.method', values: ['GET'] }));
    assert.match(e ?? '', /^spec\.rules\[0\]\.when\[0\]\.key: unknown attribute "request\.method" \(expected one of source\.ip, remote\.ip/);
    assert.deepEqual(ap(when({ key: 'request.headers', values: ['x'] })), ['spec.rules[0].when[0].key: bad key "request.headers": expected the format request.headers[<header-name>]']);
    assert.deepEqual(ap(when({ key: 'destination.namespace', values: ['x'] })), ["spec.rules[0].when[0].key: attribute destination.namespace is replaced by the policy's metadata.namespace"]);
    assert.deepEqual(ap(when({ key: 'request.auth.claims[a][b]', values: ['x'] })), []);
    assert.deepEqual(ap(when({ key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]'] })), []);
  });

  void it('accepts every documented when key', () => {
    for (const key of [
      'request.headers[User-Agent]',
      'source.ip',
      'remote.ip',
      'source.namespace',
      'source.principal',
      'source.serviceAccount',
      'request.auth.principal',
      'request.auth.audiences',
      'request.auth.presenter',
      'request.auth.claims[iss]',
      'destination.ip',
      'destination.port',
      'connection.sni',
    ]) {
      const value = key.endsWith('.ip') ? '10.0.0.1' : key === 'destination.port' ? '80' : key === 'source.serviceAccount' ? 'ns/sa' : 'v';
      assert.deepEqual(ap(when({ key, values: [value] })), [], key);
    }
  });

  void it('requires values or notValues in a condition', () => {
    assert.deepEqual(ap(when({ key: 'source.ip' })), ['spec.rules[0].when[0]: at least one of values or notValues must be set for key source.ip']);
  });

  void it('rejects an empty string in any list', () => {
    assert.deepEqual(ap(from({ principals: ['cluster.local/ns/a/sa/b', ''] })), ['spec.rules[0].from[0].source.principals[1]: empty value not allowed']);
    assert.deepEqual(ap(to({ paths: [''] })), ['spec.rules[0].to[0].operation.paths[0]: empty value not allowed']);
    for (const field of ['notPrincipals', 'requestPrincipals', 'namespaces', 'notNamespaces']) {
      assert.deepEqual(ap(from({ [field]: [''] })), [`spec.rules[0].from[0].source.${field}[0]: empty value not allowed`]);
    }
    for (const field of ['hosts', 'notHosts', 'methods', 'notMethods', 'notPaths']) {
      assert.deepEqual(ap(to({ [field]: [''] })), [`spec.rules[0].to[0].operation.${field}[0]: empty value not allowed`]);
    }
    assert.deepEqual(ap(when({ key: 'source.namespace', values: [''] })), ['spec.rules[0].when[0].values[0]: invalid value for key source.namespace: empty value not allowed']);
  });

  void it('checks serviceAccounts', () => {
    assert.deepEqual(ap(from({ serviceAccounts: ['demo/*'] })), ['spec.rules[0].from[0].source.serviceAccounts[0]: wildcard not allowed in "demo/*"']);
    assert.deepEqual(ap(from({ serviceAccounts: ['a/b/c'] })), ["spec.rules[0].from[0].source.serviceAccounts[0]: expected format 'serviceAccount' or 'namespace/serviceAccount', found \"a/b/c\""]);
    assert.deepEqual(ap(from({ serviceAccounts: ['demo/web'], namespaces: ['demo'] })), ['spec.rules[0].from[0].source: serviceAccounts cannot be set with namespaces or principals']);
  });

  void it('ties provider to the CUSTOM action', () => {
    assert.deepEqual(ap({ action: 'DENY', provider: { name: 'x' }, rules: [{}] }), ['spec.provider: provider may only be set with the CUSTOM action, found DENY']);
    assert.deepEqual(ap({ action: 'CUSTOM', rules: [{}] }), ['spec.provider: the CUSTOM action needs provider.name (an extension provider of the mesh config)']);
    assert.deepEqual(ap({ action: 'CUSTOM', provider: { name: '' }, rules: [{}] }), ['spec.provider.name: the CUSTOM action needs provider.name (an extension provider of the mesh config)']);
    assert.deepEqual(ap({ action: 'CUSTOM', provider: { name: 'x' } }), ['spec.rules: CUSTOM action without rules never triggers: add an empty rule `{}` to trigger it for every request']);
    assert.deepEqual(ap({ action: 'CUSTOM', provider: { name: 'x' }, ...from({ principals: ['a'] }) }), ['spec.rules[0].from[0].source.principals: principals is not supported with the CUSTOM action']);
    assert.deepEqual(ap({ action: 'CUSTOM', provider: { name: 'x' }, ...when({ key: 'request.auth.principal', values: ['a'] }) }), [
      'spec.rules[0].when[0].key: request.auth.principal is not supported with the CUSTOM action',
    ]);
  });

  void it('rejects DENY without rules and empty from/to parts', () => {
    assert.deepEqual(ap({ action: 'DENY' }), ['spec.rules: DENY action without rules never triggers: add an empty rule `{}` to deny every request']);
    assert.deepEqual(ap({ rules: [{ from: [] }] }), ['spec.rules[0].from: `from` must not be empty (omit it to match any source)']);
    assert.deepEqual(ap({ rules: [{ from: [{}] }] }), ['spec.rules[0].from[0].source: `from.source` must be set']);
    assert.deepEqual(ap({ rules: [{ from: [{ source: {} }] }] }), ['spec.rules[0].from[0].source: `from.source` must not be empty']);
    assert.deepEqual(ap({ rules: [{ to: [{ operation: {} }] }] }), ['spec.rules[0].to[0].operation: `to.operation` must not be empty']);
  });

  void it('rejects unknown fields and both selector and targetRefs', () => {
    assert.deepEqual(ap({ rules: [{ from: [{ source: { principal: ['a'] } }] }] }), ['spec.rules[0].from[0].source.principal: unknown field "principal"']);
    assert.deepEqual(ap({ selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Service', name: 'a' }] }), ['spec.selector: only one of selector, targetRef or targetRefs can be set']);
  });

  void it('checks path templates', () => {
    assert.deepEqual(ap(to({ paths: ['/foo/{*}/bar/{**}'] })), []);
    assert.deepEqual(ap(to({ paths: ['/{**}/foo/{*}'] })), ['spec.rules[0].to[0].operation.paths[0]: invalid path template "/{**}/foo/{*}": {**} must be the last operator']);
    assert.deepEqual(ap(to({ paths: ['/foo/{*}.txt'] })), [
      'spec.rules[0].to[0].operation.paths[0]: invalid path template "/foo/{*}.txt": \'{\' or \'}\' outside a {*} or {**} operator',
    ]);
  });

  void it('checks the dry-run annotation', () => {
    assert.deepEqual(ap({ action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } }), []);
    assert.deepEqual(ap({ rules: [{}] }, { annotations: { 'istio.io/dry-run': 'yes' } }), ['metadata.annotations["istio.io/dry-run"]: invalid istio.io/dry-run value "yes": expected "true" or "false"']);
    assert.deepEqual(ap({ action: 'AUDIT', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } }), [
      'metadata.annotations["istio.io/dry-run"]: the istio.io/dry-run annotation only supports the ALLOW and DENY actions, found AUDIT',
    ]);
    assert.deepEqual(ra({}, { annotations: { 'istio.io/dry-run': 'true' } }), ['metadata.annotations["istio.io/dry-run"]: RequestAuthentication does not support the istio.io/dry-run annotation: remove it']);
  });

  void it('warns, as Istio does, about a DENY rule with only HTTP attributes', () => {
    assert.deepEqual(warnings('AuthorizationPolicy', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }), [
      'spec.rules[0]: this DENY rule does not name its ports (to.operation.ports): on TCP ports in its scope its HTTP-only attributes are ignored, so it may deny more traffic there than on HTTP ports',
    ]);
    assert.deepEqual(warnings('AuthorizationPolicy', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }] }), []);
  });

  void it('warns that targetRefs do not apply to VM sidecars', () => {
    assert.match(warnings('AuthorizationPolicy', { targetRefs: [{ kind: 'Service', group: '', name: 'web' }] })[0] ?? '', /^spec\.targetRefs: targetRef\/targetRefs attach a policy to waypoints/);
  });

  void it('names file, line and field of each error in YAML', () => {
    const text = [
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: {name: bad, namespace: demo}',
      'spec:',
      '  action: DENY',
      '  rules:',
      '  - from:',
      '    - source:',
      '        principals: ["cluster.local/ns/a/sa/b", ""]',
      '        ipBlocks:',
      '        - 10.0.0.0/8',
      '        - 10.1.0.0/99',
      '    when:',
      '    - key: request.verb',
      '      values: ["GET"]',
    ].join('\n');
    const result = parseResources(text, 'mesh/bad.yaml');
    assert.deepEqual(result.resources, [], 'nothing applied');
    assert.deepEqual(
      result.errors.map(formatIssue).map((l) => l.replace(/ \(expected one of.*$/, '')),
      [
        'mesh/bad.yaml:9 spec.rules[0].from[0].source.principals[1]: empty value not allowed',
        'mesh/bad.yaml:12 spec.rules[0].from[0].source.ipBlocks[1]: bad CIDR range "10.1.0.0/99"',
        'mesh/bad.yaml:14 spec.rules[0].when[0].key: unknown attribute "request.verb"',
      ],
    );
  });
});

void describe('RequestAuthentication validation (Istio ValidateRequestAuthentication)', () => {
  void it('accepts a rule with jwksUri, locations and outputs', () => {
    assert.deepEqual(
      ra({
        selector: { matchLabels: { app: 'web' } },
        jwtRules: [
          {
            issuer: 'https://issuer.example',
            audiences: ['web'],
            jwksUri: 'https://issuer.example/jwks.json',
            fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }],
            fromParams: ['token'],
            outputPayloadToHeader: 'x-jwt-payload',
            forwardOriginalToken: true,
            outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
            timeout: '5s',
          },
        ],
      }),
      [],
    );
  });

  void it('accepts an inline JWKS and rejects an invalid one', async () => {
    const { publicKey } = await generateKeyPair('RS256');
    const jwks = JSON.stringify({ keys: [await exportJWK(publicKey)] });
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', jwks }] }), []);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', jwks: '{"keys": [' }] }).map((e) => e.replace(/: Unexpected.*|: Expected.*/, '')), ['spec.jwtRules[0].jwks: jwks is not valid JSON']);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', jwks: '{"keys": []}' }] }), ['spec.jwtRules[0].jwks: jwks has no keys']);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', jwks: '{"keys": [{"kty": "XYZ"}]}' }] }), ['spec.jwtRules[0].jwks: jwks key 0: unsupported or missing "kty" ("XYZ"; expected RSA, EC, OKP or oct)']);
    assert.match(ra({ jwtRules: [{ issuer: 'i', jwks: '{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA"}]}' }] })[0] ?? '', /^spec\.jwtRules\[0\]\.jwks: jwks key 0 \(EC\) is invalid/);
  });

  void it('requires an issuer (or a jwksUri)', () => {
    assert.deepEqual(ra({ jwtRules: [{ audiences: ['a'] }] }), ['spec.jwtRules[0].issuer: issuer is required (or at least a jwksUri)']);
  });

  void it('requires an http(s) jwksUri', () => {
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', jwksUri: 'file:///etc/jwks.json' }] }), ['spec.jwtRules[0].jwksUri: jwksUri scheme "file" is not supported (expected http or https)']);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', jwksUri: 'not a url' }] }), ['spec.jwtRules[0].jwksUri: invalid jwksUri "not a url": not a URL']);
  });

  void it('rejects empty names and bad headers or durations', () => {
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', audiences: [''] }] }), ['spec.jwtRules[0].audiences[0]: empty value not allowed']);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', fromHeaders: [{ name: '' }] }] }), ['spec.jwtRules[0].fromHeaders[0].name: header name must not be empty']);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', fromParams: [''] }] }), ['spec.jwtRules[0].fromParams[0]: query parameter name must not be empty']);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', outputClaimToHeaders: [{ header: 'x y', claim: 'sub' }] }] }), ['spec.jwtRules[0].outputClaimToHeaders[0].header: invalid header name "x y"']);
    assert.deepEqual(ra({ jwtRules: [{ issuer: 'i', timeout: '5 seconds' }] }), ['spec.jwtRules[0].timeout: invalid duration "5 seconds" (expected e.g. "5s", "1.5s", "500ms")']);
  });

  void it('warns about fromCookies, missing keys and private key material', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = JSON.stringify({ keys: [await exportJWK(privateKey)] });
    assert.deepEqual(warnings('RequestAuthentication', { jwtRules: [{ issuer: 'i', jwks, fromCookies: ['session'] }] }), [
      'spec.jwtRules[0].fromCookies: fromCookies is not implemented yet: tokens in cookies are not read',
      'spec.jwtRules[0].jwks: jwks key 0 contains private key material; only public keys are needed to verify tokens',
    ]);
    assert.match(warnings('RequestAuthentication', { jwtRules: [{ issuer: 'i' }] })[0] ?? '', /neither jwks nor jwksUri is set/);
  });
});

void describe('PeerAuthentication validation', () => {
  void it('rejects portLevelMtls without a selector', () => {
    assert.deepEqual(errors('PeerAuthentication', { portLevelMtls: { '8080': { mode: 'DISABLE' } } }), [
      'spec.portLevelMtls: portLevelMtls requires a selector with matchLabels (a mesh- or namespace-wide policy cannot set port-level mTLS)',
    ]);
  });
});
