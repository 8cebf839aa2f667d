import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import { createFileSource } from '../sources/file/source.js';
import { formatIssue, parseResources } from './parse.js';
import { routeTargetHosts, resolveShortHost } from './traffic-hosts.js';
import type { MeshResource, ServiceEntry } from './types.js';
import { validateResourceSet } from './validate.js';

const SE = [
  'apiVersion: networking.istio.io/v1',
  'kind: ServiceEntry',
  'metadata: {name: reviews, namespace: demo}',
  'spec:',
  '  hosts: [reviews.demo.svc.cluster.local]',
  '  location: MESH_INTERNAL',
  '  resolution: STATIC',
  '  ports: [{name: http, number: 9080, protocol: HTTP}]',
  '  endpoints: [{address: 10.0.0.1}]',
  '',
].join('\n');

const DR = [
  'apiVersion: networking.istio.io/v1',
  'kind: DestinationRule',
  'metadata: {name: reviews, namespace: demo}',
  'spec:',
  '  host: reviews',
  '  subsets:',
  '  - {name: v1, labels: {version: v1}}',
  '  - {name: v2, labels: {version: v2}}',
  '',
].join('\n');

/** A VirtualService (in namespace demo) whose only HTTP route has these destination lines. */
const VS = (destinations: string[]): string =>
  [
    'apiVersion: networking.istio.io/v1',
    'kind: VirtualService',
    'metadata: {name: reviews, namespace: demo, creationTimestamp: "2024-01-01T00:00:00Z"}',
    'spec:',
    '  hosts: [reviews]',
    '  http:',
    '  - route:',
    ...destinations.map((d) => `    ${d}`),
    '',
  ].join('\n');

const ROUTE = (parent: string, backend: string, kind = 'HTTPRoute'): string =>
  [
    'apiVersion: gateway.networking.k8s.io/v1',
    `kind: ${kind}`,
    'metadata: {name: reviews-route, namespace: demo}',
    'spec:',
    `  parentRefs: [${parent}]`,
    `  rules: [{backendRefs: [${backend}]}]`,
    '',
  ].join('\n');

function check(text: string): { errors: string[]; warnings: string[] } {
  const parsed = parseResources(text, 'mesh.yaml');
  assert.deepEqual(parsed.errors.map(formatIssue), []);
  const r = validateResourceSet(parsed.resources, parsed.locate);
  return { errors: r.errors.map(formatIssue), warnings: r.warnings.map(formatIssue) };
}

const docs = (...parts: string[]): string => parts.join('---\n');

void describe('traffic references across the set', () => {
  void it('accepts destinations whose host, subset and port exist (short names resolve in the namespace)', () => {
    const text = docs(
      SE,
      DR,
      VS([
        '- destination: {host: reviews, subset: v1, port: {number: 9080}}',
        '  weight: 90',
        '- destination: {host: reviews.demo.svc.cluster.local, subset: v2}',
        '  weight: 10',
      ]),
    );
    assert.deepEqual(check(text), { errors: [], warnings: [] });
  });

  void it('rejects a destination host no ServiceEntry defines, naming file, line and field', () => {
    const text = docs(SE, VS(['- destination: {host: reviews}', '  weight: 50', '- destination: {host: ratings}', '  weight: 50']));
    assert.deepEqual(check(text).errors, [
      'mesh.yaml:20 spec.http[0].route[1].destination.host: host "ratings" (ratings.demo.svc.cluster.local) is not defined by any ServiceEntry',
    ]);
  });

  void it('rejects a subset no DestinationRule for the host defines', () => {
    assert.deepEqual(check(docs(SE, DR, VS(['- destination: {host: reviews, subset: v3}']))).errors, [
      'mesh.yaml:27 spec.http[0].route[0].destination.subset: subset "v3" is not defined by any DestinationRule for host reviews.demo.svc.cluster.local',
    ]);
    assert.deepEqual(check(docs(SE, VS(['- destination: {host: reviews, subset: v1}']))).errors, [
      'mesh.yaml:18 spec.http[0].route[0].destination.subset: subset "v1" needs a DestinationRule for host reviews.demo.svc.cluster.local, and there is none',
    ]);
  });

  void it('rejects a destination port the service lacks', () => {
    assert.deepEqual(check(docs(SE, VS(['- destination: {host: reviews, port: {number: 8080}}']))).errors, [
      'mesh.yaml:18 spec.http[0].route[0].destination.port.number: service reviews.demo.svc.cluster.local has no port 8080 (it has 9080)',
    ]);
  });

  void it('checks mirrors and TCP routes too', () => {
    const vs = [
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata: {name: v, namespace: demo}',
      'spec:',
      '  hosts: [reviews]',
      '  http:',
      '  - route: [{destination: {host: reviews}}]',
      '    mirror: {host: shadow}',
      '  tcp:',
      '  - route: [{destination: {host: reviews, port: {number: 1}}}]',
      '',
    ].join('\n');
    assert.deepEqual(check(docs(SE, vs)).errors, [
      'mesh.yaml:18 spec.http[0].mirror.host: host "shadow" (shadow.demo.svc.cluster.local) is not defined by any ServiceEntry',
      'mesh.yaml:20 spec.tcp[0].route[0].destination.port.number: service reviews.demo.svc.cluster.local has no port 1 (it has 9080)',
    ]);
  });

  void it('resolves HTTPRoute Service, ServiceEntry and Hostname references and checks their ports', () => {
    const ok = docs(
      SE,
      ROUTE('{group: "", kind: Service, name: reviews, port: 9080}', '{name: reviews, port: 9080}'),
      ROUTE('{group: networking.istio.io, kind: ServiceEntry, name: reviews}', '{group: networking.istio.io, kind: Hostname, name: reviews.demo.svc.cluster.local, port: 9080}', 'GRPCRoute'),
    );
    assert.deepEqual(check(ok), { errors: [], warnings: [] });
    assert.deepEqual(check(docs(SE, ROUTE('{group: "", kind: Service, name: reviews}', '{name: ratings, port: 9080}'))).errors, [
      'mesh.yaml:16 spec.rules[0].backendRefs[0].name: backendRef host "ratings.demo.svc.cluster.local" is not defined by any ServiceEntry',
    ]);
    assert.deepEqual(check(docs(SE, ROUTE('{group: "", kind: Service, name: reviews}', '{name: reviews, port: 80}'))).errors, [
      'mesh.yaml:16 spec.rules[0].backendRefs[0].port: service reviews.demo.svc.cluster.local has no port 80 (it has 9080)',
    ]);
    assert.deepEqual(check(docs(SE, ROUTE('{group: networking.istio.io, kind: ServiceEntry, name: nope}', '{name: reviews, port: 9080}'))).errors, [
      'mesh.yaml:15 spec.parentRefs[0].name: parentRef names ServiceEntry demo/nope, which does not exist',
    ]);
  });

  void it('checks a parentRef sectionName (service port name) and port against the service ports', () => {
    // reviews with two ports: http 9080 and admin 9090.
    const se2 = SE.replace('ports: [{name: http, number: 9080, protocol: HTTP}]', 'ports: [{name: http, number: 9080, protocol: HTTP}, {name: admin, number: 9090, protocol: HTTP}]');
    const backend = '{name: reviews, port: 9080}';
    for (const parent of ['{group: "", kind: Service, name: reviews, sectionName: admin}', '{group: "", kind: Service, name: reviews, sectionName: admin, port: 9090}', '{group: networking.istio.io, kind: ServiceEntry, name: reviews, port: 9090}']) {
      assert.deepEqual(check(docs(se2, ROUTE(parent, backend))), { errors: [], warnings: [] }, parent);
    }
    assert.deepEqual(check(docs(se2, ROUTE('{group: "", kind: Service, name: reviews, sectionName: grpc}', backend, 'GRPCRoute'))).errors, [
      'mesh.yaml:15 spec.parentRefs[0].sectionName: parentRef: service reviews.demo.svc.cluster.local has no port named "grpc" (it has http (9080), admin (9090))',
    ]);
    assert.deepEqual(check(docs(se2, ROUTE('{group: networking.istio.io, kind: Hostname, name: reviews.demo.svc.cluster.local, port: 7000}', backend))).errors, [
      'mesh.yaml:15 spec.parentRefs[0].port: parentRef: service reviews.demo.svc.cluster.local has no port 7000 (it has http (9080), admin (9090))',
    ]);
    assert.deepEqual(check(docs(se2, ROUTE('{group: "", kind: Service, name: reviews, sectionName: http, port: 9090}', backend))).errors, [
      'mesh.yaml:15 spec.parentRefs[0].port: parentRef: sectionName "http" and port 9090 name different ports of service reviews.demo.svc.cluster.local (it has http (9080), admin (9090))',
    ]);
    // What the API runs on a request body against the mesh's ServiceEntries (422 invalid-references).
    const body = parseResources(ROUTE('{group: "", kind: Service, name: reviews, sectionName: grpc}', backend), 'request body', { source: 'api' });
    const mesh = parseResources(se2, 'se.yaml').resources;
    const fromApi = validateResourceSet([...mesh, ...body.resources], body.locate, { references: true }).errors.map(formatIssue);
    assert.deepEqual(fromApi, ['request body:5 spec.parentRefs[0].sectionName: parentRef: service reviews.demo.svc.cluster.local has no port named "grpc" (it has http (9080), admin (9090))']);
  });

  void it('warns when a VirtualService and an HTTPRoute target one host, naming both: the VirtualService wins', () => {
    const r = check(docs(SE, VS(['- destination: {host: reviews}']), ROUTE('{group: "", kind: Service, name: reviews}', '{name: reviews, port: 9080}')));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, [
      'mesh.yaml:24 spec.parentRefs: host reviews.demo.svc.cluster.local is also routed by VirtualService demo/reviews (mesh.yaml:11): Istio does not define which wins; Skiff uses the VirtualService and ignores this HTTPRoute for that host',
    ]);
  });

  void it('warns when two VirtualServices route one host (Istio IST0109): sidecars do not merge them', () => {
    const second = VS(['- destination: {host: reviews}']).replace('name: reviews', 'name: reviews-too');
    const r = check(docs(SE, VS(['- destination: {host: reviews}']), second));
    assert.deepEqual(r.errors, []);
    assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
    assert.match(r.warnings[0]!, /^mesh\.yaml:\d+ spec\.hosts\[0\]: host reviews\.demo\.svc\.cluster\.local is also routed by VirtualService demo\/reviews: sidecars do not merge/);
  });

  void it('warns about a VirtualService or DestinationRule host no ServiceEntry defines (Istio accepts them)', () => {
    const r = check(docs(VS(['- destination: {host: reviews}']).replace('hosts: [reviews]', 'hosts: [reviews, ratings]'), SE, DR.replace('host: reviews', 'host: details')));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, [
      'mesh.yaml:5 spec.hosts[1]: host "ratings" names no ServiceEntry host: these routes apply to no service yet',
      'mesh.yaml:24 spec.host: host "details" names no ServiceEntry host: this rule applies to no service yet',
    ]);
  });

  void it('leaves reference checks out for a set made only of API resources (a request body is part of the mesh)', () => {
    const parsed = parseResources(VS(['- destination: {host: ratings}']), 'request body', { source: 'api' });
    assert.deepEqual(validateResourceSet(parsed.resources, parsed.locate).errors, []);
    assert.equal(validateResourceSet(parsed.resources, parsed.locate, { references: true }).errors.length, 1);
  });

  void it('resolves hosts the way Istio does', () => {
    assert.equal(resolveShortHost('reviews', 'demo'), 'reviews.demo.svc.cluster.local');
    assert.equal(resolveShortHost('reviews.prod', 'demo'), 'reviews.prod');
    assert.equal(resolveShortHost('*', 'demo'), '*');
    const se = parseResources(SE, 'se.yaml').resources[0] as ServiceEntry;
    const route = parseResources(
      ROUTE('{group: networking.istio.io, kind: ServiceEntry, name: reviews}, {group: networking.istio.io, kind: Hostname, name: x.example.com}, {name: gw}', '{name: a, port: 1}'),
      'r.yaml',
    ).resources[0] as MeshResource & { kind: 'HTTPRoute' };
    assert.deepEqual(routeTargetHosts(route, (ns, name) => (ns === 'demo' && name === 'reviews' ? se : undefined)), ['reviews.demo.svc.cluster.local', 'x.example.com']);
  });
});

void describe('file source with traffic resources', () => {
  void it('rejects a change with a dangling reference as a whole and keeps the last good set', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'skiff-traffic-'));
    const updates: MeshResource[][] = [];
    const source = createFileSource({ dir, logger: silentLogger(), debounceMs: 10_000, maxWaitMs: 10_000, onUpdate: (r) => updates.push(r) });
    try {
      await writeFile(path.join(dir, 'se.yaml'), SE);
      await writeFile(path.join(dir, 'vs.yaml'), VS(['- destination: {host: reviews}']));
      await source.start();
      assert.equal(updates.length, 1);
      assert.deepEqual(updates[0]!.map((r) => r.kind).sort(), ['ServiceEntry', 'VirtualService']);

      // A new DestinationRule (valid) and a VirtualService edit naming a missing subset: nothing is applied.
      await writeFile(path.join(dir, 'dr.yaml'), DR);
      await writeFile(path.join(dir, 'vs.yaml'), VS(['- destination: {host: reviews, subset: v9}']));
      assert.equal(await source.reload(), false);
      assert.equal(updates.length, 1, 'a rejected change applies nothing');
      assert.match(source.lastError() ?? '', /vs\.yaml:8 spec\.http\[0\]\.route\[0\]\.destination\.subset: subset "v9" is not defined by any DestinationRule/);

      await writeFile(path.join(dir, 'vs.yaml'), VS(['- destination: {host: reviews, subset: v2}']));
      assert.equal(await source.reload(), true);
      assert.equal(updates.length, 2);
      assert.deepEqual(updates[1]!.map((r) => r.kind).sort(), ['DestinationRule', 'ServiceEntry', 'VirtualService']);
    } finally {
      await source.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
