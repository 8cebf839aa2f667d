import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDefaultEndpoint } from './default-endpoint.js';
import { formatIssue, parseResources } from './parse.js';

/** Parses one resource given as an object (JSON is YAML); returns `path: message` of each error. */
function errors(apiVersion: string, kind: string, spec: unknown): string[] {
  const text = JSON.stringify({ apiVersion, kind, metadata: { name: 'x', namespace: 'demo' }, spec });
  return parseResources(text, 'f.json').errors.map((e) => `${e.path}: ${e.message}`);
}
const se = (spec: unknown): string[] => errors('networking.istio.io/v1', 'ServiceEntry', spec);
const sidecar = (spec: unknown): string[] => errors('networking.istio.io/v1', 'Sidecar', spec);
const pa = (spec: unknown): string[] => errors('security.istio.io/v1', 'PeerAuthentication', spec);
const we = (spec: unknown): string[] => errors('networking.istio.io/v1', 'WorkloadEntry', spec);

const base = { hosts: ['api.demo.svc'], location: 'MESH_INTERNAL', resolution: 'STATIC' };

void describe('ServiceEntry rules (Istio ValidateServiceEntry)', () => {
  void it('accepts a STATIC mesh-internal service with a selector', () => {
    assert.deepEqual(se({ ...base, ports: [{ name: 'http', number: 80, protocol: 'HTTP', targetPort: 8080 }], workloadSelector: { labels: { app: 'api' } } }), []);
  });

  void it('requires at least one host, and no bare "*"', () => {
    assert.deepEqual(se({ ...base, hosts: [] }), ['spec.hosts: a ServiceEntry needs at least one host']);
    assert.deepEqual(se({ ...base, hosts: ['*'] }), ['spec.hosts[0]: invalid host "*": a ServiceEntry host must name a domain']);
    assert.deepEqual(se({ ...base, hosts: ['bad_host.example'] }), ['spec.hosts[0]: domain name "bad_host.example" is invalid (label "bad_host" is invalid)']);
  });

  void it('requires a port name and a known protocol', () => {
    assert.deepEqual(se({ ...base, ports: [{ number: 80 }] }), ['spec.ports[0].name: required field is missing (expected string)']);
    assert.deepEqual(se({ ...base, ports: [{ name: 'x', number: 80, protocol: 'QUIC' }] }), [
      'spec.ports[0].protocol: unsupported protocol "QUIC" (expected one of HTTP|HTTPS|HTTP2|GRPC|GRPC-Web|HTTP_PROXY|TCP|TLS|UDP|Mongo|Redis|MySQL, any case)',
    ]);
  });

  void it('validates addresses as IPs or CIDR blocks', () => {
    assert.deepEqual(se({ ...base, addresses: ['10.1.0.0/16', 'fd00::1', '10.0.0.256'] }), ['spec.addresses[2]: "10.0.0.256" is not a valid IP address']);
    assert.deepEqual(se({ ...base, addresses: ['10.1.0.0/33'] }), ['spec.addresses[0]: "10.1.0.0/33" is not a valid CIDR block']);
  });

  void it('allows only one of workloadSelector and endpoints', () => {
    assert.deepEqual(se({ ...base, workloadSelector: { labels: { app: 'a' } }, endpoints: [{ address: '10.0.0.1' }] }), [
      'spec.endpoints: only one of workloadSelector or endpoints may be set',
    ]);
  });

  void it('requires inline endpoint port names to be service port names, and endpoint addresses to be IPs', () => {
    assert.deepEqual(se({ ...base, ports: [{ name: 'http', number: 80 }], endpoints: [{ address: '10.0.0.1', ports: { web: 8080 } }] }), [
      'spec.endpoints[0].ports.web: port name "web" is not defined in the ServiceEntry\'s ports',
    ]);
    assert.deepEqual(se({ ...base, endpoints: [{ address: 'vm1.example.com' }] }), [
      'spec.endpoints[0].address: expected an IP address, got hostname "vm1.example.com" (hostname endpoints need resolution DNS, which Skiff does not implement yet)',
    ]);
  });

  void it('rejects endpoints with resolution NONE (the default)', () => {
    assert.deepEqual(se({ hosts: ['a.b.c'], endpoints: [{ address: '10.0.0.1' }] }), [
      'spec.endpoints: endpoints cannot be set with resolution NONE (the default when resolution is unset)',
    ]);
  });

  void it('rejects several hosts on a TCP port', () => {
    assert.deepEqual(se({ ...base, hosts: ['a.x.svc', 'b.x.svc'], ports: [{ name: 'tcp', number: 5432, protocol: 'TCP' }] }), [
      'spec.hosts: several hosts need HTTP or TLS ports: on a TCP port (or one without a protocol) the hosts cannot be told apart',
    ]);
    assert.deepEqual(se({ ...base, hosts: ['a.x.svc', 'b.x.svc'], ports: [{ name: 'http', number: 80, protocol: 'HTTP' }] }), []);
  });

  void it('checks exportTo entries', () => {
    assert.deepEqual(se({ ...base, exportTo: ['.', 'Bad'] }), ['spec.exportTo[1]: invalid exportTo value "Bad": expected ".", "*", "~" or a namespace']);
    assert.deepEqual(se({ ...base, exportTo: ['*', 'prod'] }), ['spec.exportTo: exportTo "*" (everyone) cannot be combined with other entries']);
  });

  void it('rejects wildcards in a selector', () => {
    assert.deepEqual(se({ ...base, workloadSelector: { labels: { app: 'a*' } } }), ['spec.workloadSelector.labels.app: wildcard is not supported in a selector: "app=a*"']);
  });
});

void describe('WorkloadEntry rules', () => {
  void it('requires an IP address', () => {
    assert.deepEqual(we({}), ['spec.address: address is required']);
    assert.deepEqual(we({ address: '10.0.0.1.5' }), ['spec.address: expected an IP address, got "10.0.0.1.5"']);
    assert.deepEqual(we({ address: 'unix:///var/run/app.sock' }), [
      'spec.address: Unix domain socket endpoints ("unix:///var/run/app.sock") are not supported yet: expected an IP address',
    ]);
    assert.deepEqual(we({ address: '2001:db8::7' }), []);
  });

  void it('checks port names, port numbers and the service account', () => {
    assert.deepEqual(we({ address: '10.0.0.1', ports: { http: 0 } }), ['spec.ports.http: expected integer 1-65535, got 0']);
    assert.deepEqual(we({ address: '10.0.0.1', serviceAccount: 'Bad SA' }), [
      'spec.serviceAccount: invalid service account "Bad SA": must be a lower-case DNS-1123 subdomain',
    ]);
  });
});

void describe('Sidecar rules (Istio ValidateSidecar)', () => {
  void it('accepts the explicit-mode shape', () => {
    assert.deepEqual(
      sidecar({
        workloadSelector: { labels: { app: 'a' } },
        ingress: [{ port: { number: 8080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:9080', captureMode: 'NONE' }],
        egress: [{ bind: '127.0.0.1', port: { number: 9000, protocol: 'HTTP', name: 'egress' }, hosts: ['./b.demo.svc.cluster.local'] }, { hosts: ['~/*'] }],
      }),
      [],
    );
  });

  void it('rejects an empty Sidecar', () => {
    assert.deepEqual(sidecar({}), ['spec: empty configuration: a Sidecar needs ingress, egress or outboundTrafficPolicy']);
  });

  void it('requires defaultEndpoint to be a loopback/any address with a port, or a unix socket', () => {
    const ingress = (defaultEndpoint: string): unknown => ({ ingress: [{ port: { number: 80 }, defaultEndpoint }] });
    for (const ok of ['127.0.0.1:8080', '0.0.0.0:8080', '[::1]:8080', 'unix:///run/app.sock']) assert.deepEqual(sidecar(ingress(ok)), [], ok);
    assert.deepEqual(sidecar(ingress('10.0.0.5:8080')), [
      'spec.ingress[0].defaultEndpoint: defaultEndpoint "10.0.0.5:8080" must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///absolute/path',
    ]);
    assert.deepEqual(sidecar(ingress('127.0.0.1:99999')), ['spec.ingress[0].defaultEndpoint: defaultEndpoint "127.0.0.1:99999": port must be 1-65535']);
    assert.equal(sidecar(ingress('unix://relative.sock')).length, 1);
    assert.equal(sidecar(ingress('127.0.0.1')).length, 1);
  });

  void it('requires egress hosts in namespace/dnsName form', () => {
    const egress = (host: string): unknown => ({ egress: [{ hosts: [host] }] });
    for (const ok of ['*/*', './*', 'prod/api.example.com', '~/*', 'prod/*.example.com']) assert.deepEqual(sidecar(egress(ok)), [], ok);
    assert.deepEqual(sidecar(egress('api.example.com')), [
      'spec.egress[0].hosts[0]: host "api.example.com" must be of the form namespace/dnsName (e.g. "./*", "prod/api.example.com")',
    ]);
    assert.deepEqual(sidecar(egress('prod/api')), ['spec.egress[0].hosts[0]: host "prod/api": short names are not allowed, use a fully-qualified name']);
    assert.deepEqual(sidecar(egress('prod/a*.example.com')), ['spec.egress[0].hosts[0]: host "prod/a*.example.com": partial wildcard "a*.example.com" is not allowed']);
  });

  void it('requires unique ports, a last port-less egress listener, no targetPort, IP binds', () => {
    assert.deepEqual(sidecar({ ingress: [{ port: { number: 80 } }, { port: { number: 80 } }] }), ['spec.ingress[1].port.number: port 80 is already used by ingress[0]']);
    assert.deepEqual(sidecar({ egress: [{ hosts: ['*/*'] }, { port: { number: 80 }, hosts: ['*/*'] }] }), [
      'spec.egress[0]: the egress listener without a port must be the last one',
    ]);
    assert.deepEqual(sidecar({ ingress: [{ port: { number: 80, targetPort: 81 } }] }), ['spec.ingress[0].port.targetPort: targetPort has no effect on a Sidecar port']);
    assert.deepEqual(sidecar({ egress: [{ bind: 'localhost', hosts: ['*/*'] }] }), ['spec.egress[0].bind: expected an IP address, got "localhost"']);
    assert.deepEqual(sidecar({ egress: [{ port: { number: 80 }, hosts: [] }] }), ['spec.egress[0].hosts: an egress listener needs at least one host']);
  });
});

void describe('PeerAuthentication rules (Istio ValidatePeerAuthentication)', () => {
  void it('accepts mesh-wide and workload policies with port-level mTLS', () => {
    assert.deepEqual(pa({ mtls: { mode: 'STRICT' } }), []);
    assert.deepEqual(pa(undefined), []);
    assert.deepEqual(pa({ selector: { matchLabels: { app: 'a' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { 8080: { mode: 'PERMISSIVE' } } }), []);
  });

  void it('requires a selector for portLevelMtls', () => {
    assert.deepEqual(pa({ mtls: { mode: 'STRICT' }, portLevelMtls: { 8080: { mode: 'DISABLE' } } }), [
      'spec.portLevelMtls: portLevelMtls requires a selector with matchLabels (a mesh- or namespace-wide policy cannot set port-level mTLS)',
    ]);
  });

  void it('requires port keys 1-65535', () => {
    assert.deepEqual(pa({ selector: { matchLabels: { a: 'b' } }, portLevelMtls: { 0: { mode: 'STRICT' } } }), [
      'spec.portLevelMtls["0"]: expected a port number 1-65535 as key, got "0"',
    ]);
  });

  void it('rejects an unknown field inside mtls', () => {
    assert.deepEqual(pa({ mtls: { mode: 'STRICT', strict: true } }), ['spec.mtls.strict: unknown field "strict"']);
  });
});

void describe('parseDefaultEndpoint', () => {
  void it('parses TCP and unix forms', () => {
    assert.deepEqual(parseDefaultEndpoint('127.0.0.1:9080'), { kind: 'tcp', host: '127.0.0.1', port: 9080 });
    assert.deepEqual(parseDefaultEndpoint('[::1]:9080'), { kind: 'tcp', host: '::1', port: 9080 });
    assert.deepEqual(parseDefaultEndpoint('unix:///run/a.sock'), { kind: 'unix', path: '/run/a.sock' });
    assert.ok('error' in parseDefaultEndpoint('::1:9080'));
  });
});

void describe('issue format', () => {
  void it('renders file:line path: message', () => {
    assert.equal(formatIssue({ file: 'mesh/payments.yaml', line: 14, path: 'spec.ports[0].number', message: 'expected integer 1-65535, got "http"' }),
      'mesh/payments.yaml:14 spec.ports[0].number: expected integer 1-65535, got "http"');
    assert.equal(formatIssue({ file: 'mesh', line: 0, path: '', message: 'cannot read config' }), 'mesh: cannot read config');
  });
});
