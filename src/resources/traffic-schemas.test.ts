import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue, parseResources } from './parse.js';
import { retryOnProblem } from './traffic-schemas.js';
import type { DestinationRule, GRPCRoute, HTTPRoute, VirtualService } from './traffic-types.js';

/** Parses YAML text; returns `file:line path: message` of each error. */
function errorsOf(text: string, file = 't.yaml'): string[] {
  return parseResources(text, file).errors.map(formatIssue);
}

function parseOne(text: string) {
  const r = parseResources(text, 't.yaml');
  assert.deepEqual(r.errors.map(formatIssue), []);
  assert.equal(r.resources.length, 1);
  return r;
}

const vsHead = (apiVersion = 'networking.istio.io/v1'): string => `apiVersion: ${apiVersion}\nkind: VirtualService\nmetadata: {name: reviews, namespace: demo}\nspec:\n`;
const drHead = (apiVersion = 'networking.istio.io/v1'): string => `apiVersion: ${apiVersion}\nkind: DestinationRule\nmetadata: {name: reviews, namespace: demo}\nspec:\n`;
const routeHead = (kind: 'HTTPRoute' | 'GRPCRoute', apiVersion = 'gateway.networking.k8s.io/v1'): string =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: r, namespace: demo}\nspec:\n`;

void describe('DestinationRule schema', () => {
  void it("accepts the shape of Istio's reference examples, in every apiVersion", () => {
    const body = [
      '  host: reviews.prod.svc.cluster.local',
      '  trafficPolicy:',
      '    loadBalancer:',
      '      simple: LEAST_REQUEST',
      '      localityLbSetting:',
      '        enabled: true',
      '        failover: [{from: us-east, to: eu-west}]',
      '    connectionPool:',
      '      tcp: {maxConnections: 100, connectTimeout: 30ms, tcpKeepalive: {time: 7200s, interval: 75s}}',
      '      http: {http2MaxRequests: 1000, maxRequestsPerConnection: 10, h2UpgradePolicy: UPGRADE}',
      '    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}',
      '    portLevelSettings:',
      '    - port: {number: 80}',
      '      loadBalancer: {simple: LEAST_REQUEST}',
      '    - port: {number: 9080}',
      '      loadBalancer:',
      '        consistentHash: {httpCookie: {name: user, ttl: 0.5s}, ringHash: {minimumRingSize: 1024}}',
      '  subsets:',
      '  - name: v1',
      '    labels: {version: v1}',
      '  - name: v2',
      '    labels: {version: v2}',
      '    trafficPolicy:',
      '      loadBalancer: {simple: ROUND_ROBIN}',
      '      tls: {mode: MUTUAL, clientCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, sni: reviews.example.com}',
      '',
    ].join('\n');
    for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
      const r = parseOne(drHead(v) + body);
      const dr = r.resources[0] as DestinationRule;
      assert.equal(dr.spec.host, 'reviews.prod.svc.cluster.local');
      assert.deepEqual(dr.spec.subsets?.map((s) => s.name), ['v1', 'v2']);
      assert.equal(dr.spec.trafficPolicy?.portLevelSettings?.[1]?.loadBalancer?.consistentHash?.httpCookie?.ttl, '0.5s');
      assert.deepEqual(r.warnings, []);
    }
  });

  void it('takes workloadSelector as matchLabels (istio.type.v1beta1.WorkloadSelector), not labels', () => {
    const r = parseOne(`${drHead()}  host: a.b\n  workloadSelector: {matchLabels: {app: client}}\n`);
    assert.deepEqual((r.resources[0] as DestinationRule).spec.workloadSelector, { matchLabels: { app: 'client' } });
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  workloadSelector: {labels: {app: client}}\n`), ['t.yaml:6 spec.workloadSelector.labels: unknown field "labels"']);
  });

  void it('rejects an unknown field, naming file, line and path', () => {
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    loadBalancer: {simpel: RANDOM}\n`), ['t.yaml:7 spec.trafficPolicy.loadBalancer.simpel: unknown field "simpel"']);
  });

  void it('rejects a bad duration and a bad enum value', () => {
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    connectionPool:\n      tcp: {connectTimeout: 30}\n`), [
      't.yaml:8 spec.trafficPolicy.connectionPool.tcp.connectTimeout: expected string, got 30',
    ]);
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    outlierDetection:\n      interval: 5 minutes\n`), [
      't.yaml:8 spec.trafficPolicy.outlierDetection.interval: invalid duration "5 minutes" (expected e.g. "5s", "1.5s", "500ms")',
    ]);
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    loadBalancer: {simple: FASTEST}\n`), [
      't.yaml:7 spec.trafficPolicy.loadBalancer.simple: expected UNSPECIFIED|LEAST_CONN|RANDOM|PASSTHROUGH|ROUND_ROBIN|LEAST_REQUEST, got "FASTEST"',
    ]);
  });

  void it('requires host, and rejects duplicate subsets and ports and conflicting load balancer settings', () => {
    assert.deepEqual(errorsOf(`${drHead()}  subsets: [{name: v1}]\n`), ['t.yaml:4 spec.host: required field is missing (expected string)']);
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  subsets:\n  - name: v1\n  - name: v1\n`), ['t.yaml:8 spec.subsets[1].name: duplicate subset name "v1"']);
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  subsets:\n  - name: V_1\n`), ['t.yaml:7 spec.subsets[0].name: invalid subset name "V_1": must be a DNS-1123 label']);
    assert.deepEqual(
      errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n    - port: {number: 80}\n`),
      ['t.yaml:9 spec.trafficPolicy.portLevelSettings[1].port.number: duplicate port 80 in portLevelSettings'],
    );
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}\n`), [
      't.yaml:7 spec.trafficPolicy.loadBalancer: simple and consistentHash cannot both be set',
    ]);
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true, httpHeaderName: x-user}\n`), [
      't.yaml:8 spec.trafficPolicy.loadBalancer.consistentHash: exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName must be set, got httpHeaderName, useSourceIp',
    ]);
    assert.deepEqual(errorsOf(`${drHead()}  host: a.b\n  trafficPolicy:\n    tls: {mode: MUTUAL, clientCertificate: /c.pem}\n`), [
      't.yaml:7 spec.trafficPolicy.tls.privateKey: privateKey is required with mode MUTUAL (or set credentialName)',
    ]);
  });

  void it('warns about fields parsed but not implemented', () => {
    const text = `${drHead()}  host: a.b\n  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 30s}\n    tls: {mode: SIMPLE, credentialName: my-secret}\n    tunnel: {targetHost: proxy.example.com, targetPort: 8080}\n    proxyProtocol: {version: V2}\n`;
    const r = parseResources(text, 't.yaml');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.warnings.map((w) => `${w.line} ${w.path}`),
      ['9 spec.trafficPolicy.tunnel', '10 spec.trafficPolicy.proxyProtocol', '7 spec.trafficPolicy.loadBalancer.warmupDurationSecs', '8 spec.trafficPolicy.tls.credentialName'],
    );
  });
});

void describe('VirtualService schema', () => {
  const good = [
    '  hosts: [reviews.prod.svc.cluster.local]',
    '  http:',
    '  - name: reviews-v2-routes',
    '    match:',
    '    - uri: {prefix: /wpcatalog}',
    '    - uri: {prefix: /consumercatalog}',
    '      headers: {end-user: {exact: jason}}',
    '      queryParams: {lang: {regex: "^(en|fr)$"}}',
    '    rewrite: {uri: /newcatalog}',
    '    route:',
    '    - destination: {host: reviews.prod.svc.cluster.local, subset: v2}',
    '  - name: reviews-v1-route',
    '    route:',
    '    - destination: {host: reviews.prod.svc.cluster.local, subset: v1, port: {number: 9080}}',
    '      weight: 75',
    '      headers: {request: {set: {x-version: v1}}, response: {remove: [foo]}}',
    '    - destination: {host: reviews.prod.svc.cluster.local, subset: v3}',
    '      weight: 25',
    '    timeout: 1.5s',
    '    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure,refused-stream,unavailable,503"}',
    '    fault:',
    '      delay: {fixedDelay: 5s, percentage: {value: 0.1}}',
    '      abort: {httpStatus: 400, percentage: {value: 0.1}}',
    '    mirrors: [{destination: {host: reviews.prod.svc.cluster.local, subset: v2}, percentage: {value: 50}}]',
    '    corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [POST, GET], maxAge: 24h}',
    '  - match: [{uri: {regex: "^/api/v[0-9]+/.*"}}]',
    '    rewrite: {uriRegexRewrite: {match: "^/api/v1/(.*)", rewrite: "/\\\\1"}}',
    '    route: [{destination: {host: reviews.prod.svc.cluster.local}}]',
    '  tcp:',
    '  - match: [{port: 27017}]',
    '    route:',
    '    - destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}',
    '',
  ].join('\n');

  void it("accepts the shape of Istio's reference examples, in every apiVersion", () => {
    for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) {
      const r = parseOne(vsHead(v) + good);
      const vs = r.resources[0] as VirtualService;
      assert.equal(vs.spec.http?.[1]?.route?.[0]?.weight, 75);
      assert.equal(vs.spec.http?.[0]?.match?.[1]?.headers?.['end-user']?.exact, 'jason');
      assert.equal(vs.spec.http?.[1]?.retries?.retryOn, 'gateway-error,connect-failure,refused-stream,unavailable,503');
      assert.deepEqual(r.warnings, []);
    }
  });

  void it('rejects an unknown field, naming file, line and path', () => {
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    timeOut: 1s\n`), ['t.yaml:8 spec.http[0].timeOut: unknown field "timeOut"']);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a, subnet: v1}}]\n`), ['t.yaml:7 spec.http[0].route[0].destination.subnet: unknown field "subnet"']);
  });

  void it('rejects durations that do not parse', () => {
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    timeout: 10\n`), ['t.yaml:8 spec.http[0].timeout: expected string, got 10']);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    retries: {attempts: 2, perTryTimeout: 2 seconds}\n`), [
      't.yaml:8 spec.http[0].retries.perTryTimeout: invalid duration "2 seconds" (expected e.g. "5s", "1.5s", "500ms")',
    ]);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    fault: {delay: {fixedDelay: 5x}}\n`), [
      't.yaml:8 spec.http[0].fault.delay.fixedDelay: invalid duration "5x" (expected e.g. "5s", "1.5s", "500ms")',
    ]);
  });

  void it('with several destinations the weights must sum to 100 (unset counts as 0, as Istio validates); one destination may omit it', () => {
    const route = (lines: string[]): string => `${vsHead()}  hosts: [a]\n  http:\n  - route:\n${lines.map((l) => `    ${l}`).join('\n')}\n`;
    assert.deepEqual(errorsOf(route(['- destination: {host: a}'])), []);
    assert.deepEqual(errorsOf(route(['- destination: {host: a}', '  weight: 50', '- destination: {host: b}'])), [
      't.yaml:7 spec.http[0].route: destination weights must sum to 100, got 50 (unset weights count as 0: route[1])',
    ]);
    assert.deepEqual(errorsOf(route(['- destination: {host: a}', '  weight: 100', '- destination: {host: b}'])), []);
    assert.deepEqual(errorsOf(route(['- destination: {host: a}', '  weight: 50', '- destination: {host: b}', '  weight: 40'])), [
      't.yaml:7 spec.http[0].route: destination weights must sum to 100, got 90',
    ]);
    assert.deepEqual(errorsOf(route(['- destination: {host: a}', '  weight: 101'])), ['t.yaml:9 spec.http[0].route[0].weight: expected <= 100, got 101']);
    // TCP routes follow the same rule.
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  tcp:\n  - route:\n    - {destination: {host: a}, weight: 30}\n    - {destination: {host: b}, weight: 30}\n`), [
      't.yaml:7 spec.tcp[0].route: destination weights must sum to 100, got 60',
    ]);
  });

  void it('accepts only retryOn values Envoy knows, and registered HTTP status codes', () => {
    assert.equal(retryOnProblem('5xx,gateway-error,reset,connect-failure,retriable-4xx,refused-stream,retriable-status-codes,cancelled,deadline-exceeded,internal,resource-exhausted,unavailable,503'), undefined);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    retries: {attempts: 2, retryOn: "5xx,on-failure"}\n`), [
      `t.yaml:8 spec.http[0].retries.retryOn: ${retryOnProblem('on-failure') ?? ''}`,
    ]);
    assert.match(retryOnProblem('on-failure') ?? '', /^unknown retryOn value "on-failure"/);
    assert.equal(retryOnProblem('5xx,999'), '999 is not a valid HTTP status code');
    assert.equal(retryOnProblem('5xx,,reset'), 'empty retryOn entry in "5xx,,reset"');
  });

  void it('rejects every regex that RE2 cannot compile, naming the field', () => {
    const http = (lines: string): string => `${vsHead()}  hosts: [a]\n  http:\n  - match:\n${lines}    route: [{destination: {host: a}}]\n`;
    const lookahead = /invalid RE2 regular expression "[^"]*": error parsing regexp: (invalid or unsupported Perl syntax|invalid named capture): `\(\?[=!<]/;
    const cases: [string, string][] = [
      ['    - uri: {regex: "^/a(?=b)"}\n', 't.yaml:8 spec.http[0].match[0].uri.regex: '],
      ['    - headers: {x-user: {regex: "(?!admin)"}}\n', 't.yaml:8 spec.http[0].match[0].headers["x-user"].regex: '],
      ['    - queryParams: {id: {regex: "(?<=x)y"}}\n', 't.yaml:8 spec.http[0].match[0].queryParams.id.regex: '],
      ['    - withoutHeaders: {x-user: {regex: "(?=a)"}}\n', 't.yaml:8 spec.http[0].match[0].withoutHeaders["x-user"].regex: '],
    ];
    for (const [lines, where] of cases) {
      const errs = errorsOf(http(lines));
      assert.equal(errs.length, 1, errs.join('\n'));
      assert.ok(errs[0]!.startsWith(where), `${errs[0]} does not start with ${where}`);
      assert.match(errs[0]!, lookahead);
    }
    const backref = errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    rewrite: {uriRegexRewrite: {match: "(a)\\\\1", rewrite: "/"}}\n`);
    assert.equal(backref.length, 1);
    assert.match(backref[0]!, /^t\.yaml:8 spec\.http\[0\]\.rewrite\.uriRegexRewrite\.match: invalid RE2 regular expression/);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    corsPolicy: {allowOrigins: [{regex: "a(b"}]}\n`), [
      't.yaml:8 spec.http[0].corsPolicy.allowOrigins[0].regex: invalid RE2 regular expression "a(b": error parsing regexp: missing closing ): `a(b`',
    ]);
  });

  void it("enforces Istio's route rules: one action, hosts and routes required, one match kind", () => {
    assert.deepEqual(errorsOf(`${vsHead()}  http:\n  - route: [{destination: {host: a}}]\n`), ['t.yaml:4 spec.hosts: at least one host is required']);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n`), ['t.yaml:4 spec: at least one of http, tcp or tls routes is required']);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - timeout: 1s\n`), ['t.yaml:7 spec.http[0]: one of route, redirect, directResponse or delegate is required']);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    redirect: {uri: /x}\n`), [
      't.yaml:7 spec.http[0]: only one of route, redirect, directResponse, delegate may be set, got route, redirect',
    ]);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: a}}]\n`), [
      't.yaml:7 spec.http[0].match[0].uri: only one of exact, prefix, regex may be set, got exact, prefix',
    ]);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - directResponse: {status: 700}\n`), ['t.yaml:7 spec.http[0].directResponse.status: expected <= 599, got 700']);
    assert.deepEqual(errorsOf(`${vsHead()}  hosts: [a]\n  http:\n  - redirect: {uri: /x, redirectCode: 200}\n`), [
      't.yaml:7 spec.http[0].redirect.redirectCode: redirectCode must be 301, 302, 303, 307 or 308, got 200',
    ]);
  });

  void it('warns about gateways other than mesh, delegate and tls routes', () => {
    const text = `${vsHead()}  hosts: [a]\n  gateways: [istio-system/ingress]\n  http:\n  - delegate: {name: other}\n  tls:\n  - match: [{sniHosts: [a]}]\n    route: [{destination: {host: a}}]\n`;
    const r = parseResources(text, 't.yaml');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings.map((w) => `${w.line} ${w.path}`), ['6 spec.gateways[0]', '6 spec.gateways', '9 spec.tls', '8 spec.http[0].delegate']);
    assert.match(r.warnings[1]!.message, /does not include "mesh": these routes apply to no sidecar/);
  });
});

void describe('HTTPRoute schema', () => {
  const good = [
    '  parentRefs:',
    '  - {group: "", kind: Service, name: reviews, port: 9080}',
    '  - {group: networking.istio.io, kind: ServiceEntry, name: reviews-se}',
    '  - {group: networking.istio.io, kind: Hostname, name: reviews.example.com}',
    '  rules:',
    '  - matches:',
    '    - path: {type: PathPrefix, value: /api}',
    '      headers: [{name: x-user, value: "^a.*", type: RegularExpression}]',
    '      queryParams: [{name: q, value: "1"}]',
    '      method: GET',
    '    filters:',
    '    - type: RequestHeaderModifier',
    '      requestHeaderModifier: {set: [{name: x-a, value: "1"}], remove: [x-b]}',
    '    - type: RequestMirror',
    '      requestMirror: {backendRef: {name: reviews-shadow, port: 9080}, percent: 10}',
    '    backendRefs:',
    '    - {name: reviews-v1, port: 9080, weight: 90}',
    '    - {group: networking.istio.io, kind: Hostname, name: reviews-v2.example.com, port: 9080, weight: 10}',
    '    timeouts: {request: 10s, backendRequest: 2s}',
    '  - matches: [{path: {type: Exact, value: /old}}]',
    '    filters:',
    '    - type: RequestRedirect',
    '      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}, statusCode: 301}',
    '',
  ].join('\n');

  void it('accepts a mesh route with Service, ServiceEntry and Hostname parents, in v1 and v1beta1', () => {
    for (const v of ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1']) {
      const r = parseOne(routeHead('HTTPRoute', v) + good);
      const route = r.resources[0] as HTTPRoute;
      assert.equal(route.spec.rules?.[0]?.backendRefs?.[1]?.weight, 10);
      assert.equal(route.spec.rules?.[0]?.timeouts?.request, '10s');
      assert.deepEqual(r.warnings, []);
    }
    assert.deepEqual(errorsOf(routeHead('HTTPRoute', 'gateway.networking.k8s.io/v1alpha2') + good), [
      't.yaml:1 apiVersion: apiVersion "gateway.networking.k8s.io/v1alpha2" is not supported for kind HTTPRoute (expected gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1)',
    ]);
  });

  void it('rejects an unknown field, naming file, line and path', () => {
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}  parentRefs: [{kind: Service, group: "", name: a}]\n  rules:\n  - backendRef: [{name: a, port: 80}]\n`), [
      't.yaml:7 spec.rules[0].backendRef: unknown field "backendRef"',
    ]);
  });

  void it('rejects a parentRef sectionName that is not a DNS-1123 name (empty, underscore)', () => {
    const rules = '  rules: [{backendRefs: [{name: a, port: 80}]}]\n';
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}  parentRefs:\n  - {group: "", kind: Service, name: a, sectionName: ""}\n${rules}`), [
      't.yaml:6 spec.parentRefs[0].sectionName: invalid sectionName "": a DNS-1123 subdomain (for a Service parent, the name of a service port)',
    ]);
    assert.deepEqual(errorsOf(`${routeHead('GRPCRoute')}  parentRefs:\n  - {group: "", kind: Service, name: a, sectionName: http_admin}\n${rules}`), [
      't.yaml:6 spec.parentRefs[0].sectionName: invalid sectionName "http_admin": a DNS-1123 subdomain (for a Service parent, the name of a service port)',
    ]);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}  parentRefs:\n  - {group: "", kind: Service, name: a, sectionName: http-admin}\n${rules}`), []);
  });

  void it('needs a parentRef naming a mesh service; Gateway parents are a warning', () => {
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}  rules: [{backendRefs: [{name: a, port: 80}]}]\n`), [
      't.yaml:4 spec.parentRefs: parentRefs is required: a mesh route attaches to a Service (group ""), ServiceEntry or Hostname (group networking.istio.io)',
    ]);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}  parentRefs:\n  - {group: example.com, kind: Mesh, name: m}\n`), [
      't.yaml:6 spec.parentRefs[0].kind: unsupported parentRef "example.com/Mesh": expected kind Service (group ""), ServiceEntry or Hostname (group networking.istio.io)',
    ]);
    const r = parseResources(`${routeHead('HTTPRoute')}  parentRefs:\n  - {name: ingress}\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n`, 't.yaml');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings.map(formatIssue), [
      't.yaml:6 spec.parentRefs[0]: Gateway parent "ingress" is ignored: Skiff runs no gateways (attach mesh routes to a Service, ServiceEntry or Hostname)',
    ]);
  });

  void it('requires a port on every backendRef and a mesh service kind', () => {
    const parent = '  parentRefs: [{group: "", kind: Service, name: a}]\n';
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}${parent}  rules: [{backendRefs: [{name: a}]}]\n`), ['t.yaml:6 spec.rules[0].backendRefs[0].port: port is required for a Service backendRef']);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}${parent}  rules: [{backendRefs: [{group: networking.istio.io, kind: ServiceEntry, name: se}]}]\n`), [
      't.yaml:6 spec.rules[0].backendRefs[0].port: port is required for a ServiceEntry backendRef',
    ]);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}${parent}  rules: [{backendRefs: [{group: apps, kind: Deployment, name: d, port: 80}]}]\n`), [
      't.yaml:6 spec.rules[0].backendRefs[0].kind: unsupported backendRef "apps/Deployment": expected kind Service (group ""), or ServiceEntry / Hostname (group networking.istio.io)',
    ]);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}${parent}  rules:\n  - filters:\n    - type: RequestMirror\n      requestMirror: {backendRef: {name: m}}\n`), [
      't.yaml:9 spec.rules[0].filters[0].requestMirror.backendRef.port: port is required for a Service backendRef',
    ]);
  });

  void it('rejects RegularExpression matches RE2 cannot compile, bad paths, timeouts and filter mismatches', () => {
    const parent = '  parentRefs: [{group: "", kind: Service, name: a}]\n';
    const match = (m: string): string[] => errorsOf(`${routeHead('HTTPRoute')}${parent}  rules:\n  - matches:\n    - ${m}\n`);
    assert.match(match('path: {type: RegularExpression, value: "/a(?=b)"}')[0] ?? '', /^t\.yaml:8 spec\.rules\[0\]\.matches\[0\]\.path\.value: invalid RE2 regular expression/);
    assert.match(match('headers: [{type: RegularExpression, name: x, value: "(?!y)"}]')[0] ?? '', /^t\.yaml:8 spec\.rules\[0\]\.matches\[0\]\.headers\[0\]\.value: invalid RE2/);
    assert.match(match('queryParams: [{type: RegularExpression, name: q, value: "(?<=y)"}]')[0] ?? '', /^t\.yaml:8 spec\.rules\[0\]\.matches\[0\]\.queryParams\[0\]\.value: invalid RE2/);
    assert.deepEqual(match('path: {type: PathPrefix, value: api}'), ['t.yaml:8 spec.rules[0].matches[0].path.value: a PathPrefix path must start with "/", got "api"']);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}${parent}  rules:\n  - timeouts: {request: 1.5s}\n`), [
      't.yaml:7 spec.rules[0].timeouts.request: invalid duration "1.5s" (Gateway API form: e.g. "10s", "500ms", "1h30m")',
    ]);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}${parent}  rules:\n  - timeouts: {request: 1s, backendRequest: 2s}\n`), [
      't.yaml:7 spec.rules[0].timeouts.backendRequest: backendRequest must not be longer than request',
    ]);
    assert.deepEqual(errorsOf(`${routeHead('HTTPRoute')}${parent}  rules:\n  - filters:\n    - type: URLRewrite\n      requestHeaderModifier: {remove: [x]}\n`), [
      't.yaml:9 spec.rules[0].filters[0].requestHeaderModifier: requestHeaderModifier must not be set for type URLRewrite',
      't.yaml:8 spec.rules[0].filters[0].urlRewrite: urlRewrite is required for type URLRewrite',
    ]);
  });
});

void describe('GRPCRoute schema', () => {
  void it('accepts a mesh gRPC route in v1 and v1beta1', () => {
    const body = [
      '  parentRefs: [{group: "", kind: Service, name: greeter, port: 50051}]',
      '  rules:',
      '  - matches:',
      '    - method: {service: helloworld.Greeter, method: SayHello}',
      '      headers: [{name: x-env, value: canary}]',
      '    - method: {type: RegularExpression, service: "helloworld\\\\..*", method: "Say.*"}',
      '    backendRefs: [{name: greeter-v2, port: 50051}]',
      '',
    ].join('\n');
    for (const v of ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1']) {
      const r = parseOne(routeHead('GRPCRoute', v) + body);
      const route = r.resources[0] as GRPCRoute;
      assert.equal(route.spec.rules?.[0]?.matches?.[0]?.method?.method, 'SayHello');
    }
  });

  void it('rejects a method RegularExpression RE2 cannot compile, a bad method name, and HTTP-only filters', () => {
    const head = `${routeHead('GRPCRoute')}  parentRefs: [{group: "", kind: Service, name: g}]\n  rules:\n`;
    const errs = errorsOf(`${head}  - matches: [{method: {type: RegularExpression, method: "Say(?=Hello)"}}]\n`);
    assert.equal(errs.length, 1);
    assert.match(errs[0]!, /^t\.yaml:7 spec\.rules\[0\]\.matches\[0\]\.method\.method: invalid RE2 regular expression "Say\(\?=Hello\)"/);
    assert.deepEqual(errorsOf(`${head}  - matches: [{method: {method: "Say Hello"}}]\n`), ['t.yaml:7 spec.rules[0].matches[0].method.method: invalid gRPC method name "Say Hello"']);
    assert.deepEqual(errorsOf(`${head}  - matches: [{method: {type: Exact}}]\n`), ['t.yaml:7 spec.rules[0].matches[0].method: one or both of service, method must be set']);
    assert.deepEqual(errorsOf(`${head}  - filters: [{type: URLRewrite}]\n`), ['t.yaml:7 spec.rules[0].filters[0].type: expected RequestHeaderModifier|ResponseHeaderModifier|RequestMirror|ExtensionRef, got "URLRewrite"']);
    assert.deepEqual(errorsOf(`${head}  - backendRefs: [{name: g}]\n`), ['t.yaml:7 spec.rules[0].backendRefs[0].port: port is required for a Service backendRef']);
  });
});
