/**
 * Contract tests of the HTTP API (issue 4 §1, §4): every route, its success answer and its error
 * answers (400 with field path and line, 401, 403, 404, 409, 410, 413, 415), over real HTTP
 * against the real app, store, registry and file source; and the OpenAPI document.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAdminToken } from '../../src/api/admin-tokens.js';
import { authorizeIdentity, type Principal } from '../../src/api/auth.js';
import { ApiError } from '../../src/api/errors.js';
import { readSse, startApiHarness, type ApiAnswer, type ApiHarness } from '../helpers/api.js';

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { path: string; message: string; line?: number }[];
}

/** Asserts a problem+json answer with `status`; returns the problem. */
function problem(res: ApiAnswer, status: number, detail?: RegExp): Problem {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const p = res.json as Problem;
  assert.equal(p.status, status);
  assert.ok(p.type.startsWith('https://skiff.dev/problems/'), p.type);
  assert.ok(p.title.length > 0);
  if (detail) assert.match(p.detail, detail);
  return p;
}

function ok<T>(res: ApiAnswer, status = 200): T {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  return res.json as T;
}

const weYaml = (name: string, ns: string, address: string, labels: Record<string, string> = { app: 'web' }, extra = '') =>
  `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${name}
  namespace: ${ns}
  labels: ${JSON.stringify(labels)}
${extra}spec:
  address: ${address}
  serviceAccount: web
`;

const FILE_MESH = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: from-file
  namespace: shop
spec:
  address: 10.9.0.1
  labels: {app: web}
  serviceAccount: web
`;

interface ResourceBody {
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec: { address?: string };
}

describe('HTTP API contract', () => {
  let h: ApiHarness;
  let shopToken: string;

  before(async () => {
    h = await startApiHarness({ configFiles: { 'mesh.yaml': FILE_MESH }, maxBodyBytes: 64 * 1024, eventRetention: 5 });
    shopToken = (await createAdminToken(h.store.adminTokens, { namespaces: ['shop'] }, 'test')).token;
  });
  after(async () => {
    await h?.close();
  });

  describe('authentication', () => {
    it('401 without credentials, with a malformed header, an unknown token or a revoked one; WWW-Authenticate names Bearer', async () => {
      const none = await h.request('GET', '/v1/whoami', { token: null });
      problem(none, 401, /Bearer/);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      problem(await h.request('GET', '/v1/whoami', { token: null, headers: { authorization: 'Basic abc' } }), 401, /must be "Bearer/);
      problem(await h.request('GET', '/v1/whoami', { token: 'skiff_not-a-real-token' }), 401, /not valid/);
      const { token, record } = await createAdminToken(h.store.adminTokens, {}, 'test');
      assert.equal(ok<{ kind: string }>(await h.request('GET', '/v1/whoami', { token })).kind, 'admin');
      await h.store.adminTokens.revoke(record.id, 'test');
      problem(await h.request('GET', '/v1/whoami', { token }), 401, /unknown or revoked/);
    });

    it('GET /v1/whoami names the caller as the audit log does, with its namespace scope', async () => {
      const me = ok<{ kind: string; actor: string; namespaces?: string[] }>(await h.request('GET', '/v1/whoami', { token: shopToken }));
      assert.equal(me.kind, 'admin');
      assert.match(me.actor, /^admin-token:[0-9a-f]{16}$/);
      assert.deepEqual(me.namespaces, ['shop']);
    });

    it('the OpenAPI document needs no credentials; unknown routes are problem+json 404', async () => {
      assert.equal((await h.request('GET', '/openapi.json', { token: null })).status, 200);
      problem(await h.request('GET', '/v2/nothing', { token: null }), 404, /no route GET \/v2\/nothing/);
    });
  });

  describe('POST /v1/apply', () => {
    it('422 when a VirtualService routes to a host or subset the mesh does not define (file and API resources count); nothing is written', async () => {
      const vs = (host: string, subset = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: refs
  namespace: shop
spec:
  hosts: [refs.shop.mesh]
  http:
  - route:
    - destination:
        host: ${host}
${subset ? `        subset: ${subset}\n` : ''}`;
      const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: refs
  namespace: shop
spec:
  hosts: [refs.shop.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
`;
      const missing = problem(await h.request('POST', '/v1/apply', { body: vs('nowhere.shop.mesh') }), 422, /nowhere\.shop\.mesh.*nothing was applied/);
      assert.equal(missing.type, 'https://skiff.dev/problems/invalid-references');
      assert.ok(missing.errors?.some((e) => e.path.includes('destination.host') && e.line !== undefined), JSON.stringify(missing.errors));
      problem(await h.request('GET', '/v1/namespaces/shop/virtualservices/refs'), 404);
      ok(await h.request('POST', '/v1/apply', { body: se }));
      h.flush();
      const noSubset = problem(await h.request('POST', '/v1/apply', { body: vs('refs.shop.mesh', 'v9') }), 422, /v9/);
      assert.ok(noSubset.errors?.some((e) => e.path.includes('subset')), JSON.stringify(noSubset.errors));
      ok(await h.request('POST', '/v1/apply', { body: vs('refs.shop.mesh') }));
      ok(await h.request('DELETE', '/v1/namespaces/shop/virtualservices/refs'));
      ok(await h.request('DELETE', '/v1/namespaces/shop/serviceentries/refs'));
    });

    it('applies every document of a multi-document body in one revision and reports warnings with their line', async () => {
      const body = `${weYaml('apply-a', 'shop', '10.1.0.1')}---
${weYaml('apply-b', 'shop', '10.1.0.2')}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: apply-svc
  namespace: shop
spec:
  hosts: [apply.shop.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: nothing-selects-this}}
`;
      const res = await h.request('POST', '/v1/apply', { body });
      const out = ok<{ resourceVersion: string; items: { name: string; action: string; resourceVersion: string }[]; warnings: { path: string; line?: number; message: string }[] }>(res);
      assert.deepEqual(out.items.map((i) => `${i.name}:${i.action}`), ['apply-a:created', 'apply-b:created', 'apply-svc:created']);
      assert.ok(out.items.every((i) => i.resourceVersion === out.resourceVersion), 'one transaction, one revision');
      const w = out.warnings.find((x) => x.path === 'spec.workloadSelector');
      assert.ok(w, JSON.stringify(out.warnings));
      assert.equal(w.line, 31);
      assert.match(res.headers.get('warning') ?? '', /^299 - "request body:31 spec.workloadSelector/);
      const again = ok<{ items: { action: string }[] }>(await h.request('POST', '/v1/apply', { body }));
      assert.deepEqual(again.items.map((i) => i.action), ['unchanged', 'unchanged', 'unchanged']);
    });

    it('accepts JSON (one object or an array)', async () => {
      const obj = { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'json-a', namespace: 'shop' }, spec: { address: '10.1.1.1' } };
      ok(await h.request('POST', '/v1/apply', { body: obj }));
      const arr = [{ ...obj, metadata: { name: 'json-b', namespace: 'shop' } }, { ...obj, metadata: { name: 'json-c', namespace: 'shop' } }];
      assert.equal(ok<{ items: unknown[] }>(await h.request('POST', '/v1/apply', { body: arr })).items.length, 2);
    });

    it('400 for bad YAML, with the line', async () => {
      const p = problem(await h.request('POST', '/v1/apply', { body: 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: x\n' }), 400);
      assert.match(p.errors?.[0]?.message ?? '', /invalid YAML/);
      assert.ok((p.errors?.[0]?.line ?? 0) > 0);
    });

    it('400 for schema errors: every field path with its line, and nothing is applied', async () => {
      const body = `${weYaml('bad-ok', 'shop', '10.2.0.1')}---
${weYaml('bad-one', 'shop', 'not-an-ip', { app: 'web' }, '')}`.replace('serviceAccount: web\n', 'serviceAccount: web\n  weight: -3\n');
      const p = problem(await h.request('POST', '/v1/apply', { body }), 400);
      assert.equal(p.type, 'https://skiff.dev/problems/invalid-resources');
      const byPath = new Map((p.errors ?? []).map((e) => [e.path, e]));
      assert.equal(byPath.get('spec.weight')?.line, 10, JSON.stringify(p.errors));
      assert.equal(byPath.get('spec.address')?.line, 19, JSON.stringify(p.errors));
      assert.match(byPath.get('spec.address')?.message ?? '', /expected an IP address/);
      problem(await h.request('GET', '/v1/namespaces/shop/workloadentries/bad-ok'), 404);
    });

    it('400 for an unknown field, an unknown kind, a resource defined twice and an empty body', async () => {
      const unknownField = problem(await h.request('POST', '/v1/apply', { body: weYaml('uf', 'shop', '10.2.1.1').replace('spec:', 'spec:\n  colour: blue') }), 400);
      assert.deepEqual(unknownField.errors?.map((e) => [e.path, e.line]), [['spec.colour', 8]]);
      const kind = problem(await h.request('POST', '/v1/apply', { body: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n' }), 400);
      assert.equal(kind.errors?.[0]?.path, 'kind');
      assert.match(kind.errors?.[0]?.message ?? '', /unknown kind "ConfigMap"/);
      const twice = problem(await h.request('POST', '/v1/apply', { body: `${weYaml('dup', 'shop', '10.2.2.1')}---\n${weYaml('dup', 'shop', '10.2.2.2')}` }), 400);
      assert.match(twice.errors?.[0]?.message ?? '', /duplicate WorkloadEntry shop\/dup/);
      problem(await h.request('POST', '/v1/apply', { body: '# nothing here\n' }), 400, /no resource/);
    });

    it('409 for a stale resourceVersion anywhere in the body, and nothing of it is applied', async () => {
      const created = ok<{ items: { resourceVersion: string }[] }>(await h.request('POST', '/v1/apply', { body: weYaml('occ', 'shop', '10.3.0.1') }));
      const rv = created.items[0]!.resourceVersion;
      ok(await h.request('POST', '/v1/apply', { body: weYaml('occ', 'shop', '10.3.0.2', { app: 'web' }, `  resourceVersion: "${rv}"\n`) }));
      const stale = `${weYaml('occ-new', 'shop', '10.3.0.9')}---\n${weYaml('occ', 'shop', '10.3.0.3', { app: 'web' }, `  resourceVersion: "${rv}"\n`)}`;
      problem(await h.request('POST', '/v1/apply', { body: stale }), 409, /was modified/);
      problem(await h.request('GET', '/v1/namespaces/shop/workloadentries/occ-new'), 404);
      assert.equal(ok<ResourceBody>(await h.request('GET', '/v1/namespaces/shop/workloadentries/occ')).spec.address, '10.3.0.2');
    });

    it('409 for a resource the file source defines', async () => {
      problem(await h.request('POST', '/v1/apply', { body: weYaml('from-file', 'shop', '10.3.1.1') }), 409, /defined by the file source \(.*mesh\.yaml:1\)/);
    });

    it('403 for a namespace-scoped token writing outside its namespaces; nothing is applied', async () => {
      const body = `${weYaml('scoped-in', 'shop', '10.4.0.1')}---\n${weYaml('scoped-out', 'bank', '10.4.0.2')}`;
      problem(await h.request('POST', '/v1/apply', { body, token: shopToken }), 403, /scoped to namespaces shop; the body writes to bank/);
      problem(await h.request('GET', '/v1/namespaces/shop/workloadentries/scoped-in'), 404);
      ok(await h.request('POST', '/v1/apply', { body: weYaml('scoped-in', 'shop', '10.4.0.1'), token: shopToken }));
    });

    it('413 for a body over the limit, 415 for a content type that is not YAML or JSON', async () => {
      const big = weYaml('big', 'shop', '10.5.0.1') + `# ${'x'.repeat(70 * 1024)}\n`;
      problem(await h.request('POST', '/v1/apply', { body: big }), 413, /larger than 65536 bytes/);
      problem(await h.request('POST', '/v1/apply', { body: weYaml('form', 'shop', '10.5.0.2'), contentType: 'application/x-www-form-urlencoded' }), 415);
    });
  });

  describe('GET/PUT/DELETE /v1/namespaces/{namespace}/{kind}/{name}', () => {
    it('PUT creates (201) then replaces (200); GET returns the object with resourceVersion; kind spellings are interchangeable', async () => {
      const created = await h.request('PUT', '/v1/namespaces/shop/workloadentries/put-a', { body: weYaml('put-a', 'shop', '10.6.0.1') });
      const c = ok<ResourceBody>(created, 201);
      assert.match(c.metadata.resourceVersion, /^\d+$/);
      assert.ok(c.metadata.creationTimestamp);
      assert.equal((c as unknown as Record<string, unknown>)['origin'], undefined, 'the wire form has no origin');
      const replaced = ok<ResourceBody>(await h.request('PUT', '/v1/namespaces/shop/WorkloadEntry/put-a', { body: weYaml('put-a', 'shop', '10.6.0.2') }));
      assert.ok(Number(replaced.metadata.resourceVersion) > Number(c.metadata.resourceVersion));
      const got = ok<ResourceBody>(await h.request('GET', '/v1/namespaces/shop/we/put-a'));
      assert.equal(got.spec.address, '10.6.0.2');
      assert.equal(got.metadata.creationTimestamp, c.metadata.creationTimestamp);
    });

    it('PUT takes the namespace from the URL when the body has none, and round-trips what GET returned', async () => {
      const body = 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: put-ns\nspec:\n  address: 10.6.1.1\n';
      assert.equal(ok<ResourceBody>(await h.request('PUT', '/v1/namespaces/bank/workloadentries/put-ns', { body }), 201).metadata.namespace, 'bank');
      const got = (await h.request('GET', '/v1/namespaces/bank/workloadentries/put-ns')).text;
      assert.equal(ok<ResourceBody>(await h.request('PUT', '/v1/namespaces/bank/workloadentries/put-ns', { body: got, contentType: 'application/json' })).metadata.name, 'put-ns');
    });

    it('409 for a PUT with a stale metadata.resourceVersion; 200 with the current one', async () => {
      const c = ok<ResourceBody>(await h.request('PUT', '/v1/namespaces/shop/workloadentries/put-occ', { body: weYaml('put-occ', 'shop', '10.6.2.1') }), 201);
      const rv = c.metadata.resourceVersion;
      ok(await h.request('PUT', '/v1/namespaces/shop/workloadentries/put-occ', { body: weYaml('put-occ', 'shop', '10.6.2.2', { app: 'web' }, `  resourceVersion: "${rv}"\n`) }));
      const p = problem(await h.request('PUT', '/v1/namespaces/shop/workloadentries/put-occ', { body: weYaml('put-occ', 'shop', '10.6.2.3', { app: 'web' }, `  resourceVersion: "${rv}"\n`) }), 409);
      assert.match(p.detail, new RegExp(`the write expected ${rv}`));
    });

    it('400 when the body disagrees with the URL (field path and line), holds two resources, or the path is malformed', async () => {
      const name = problem(await h.request('PUT', '/v1/namespaces/shop/workloadentries/other', { body: weYaml('put-x', 'shop', '10.6.3.1') }), 400);
      assert.deepEqual(name.errors?.map((e) => [e.path, e.line]), [['metadata.name', 4]]);
      const ns = problem(await h.request('PUT', '/v1/namespaces/bank/workloadentries/put-x', { body: weYaml('put-x', 'shop', '10.6.3.1') }), 400);
      assert.equal(ns.errors?.[0]?.path, 'metadata.namespace');
      const kind = problem(await h.request('PUT', '/v1/namespaces/shop/sidecars/put-x', { body: weYaml('put-x', 'shop', '10.6.3.1') }), 400);
      assert.equal(kind.errors?.[0]?.path, 'kind');
      problem(await h.request('PUT', '/v1/namespaces/shop/workloadentries/put-x', { body: `${weYaml('put-x', 'shop', '10.6.3.1')}---\n${weYaml('put-y', 'shop', '10.6.3.2')}` }), 400, /exactly one/);
      const path = problem(await h.request('GET', '/v1/namespaces/Shop_1/workloadentries/x'), 400);
      assert.equal(path.errors?.[0]?.path, 'path.namespace');
    });

    it('404 for an unknown kind and a missing object (with a hint when another source defines it)', async () => {
      problem(await h.request('GET', '/v1/namespaces/shop/gizmos/a'), 404, /unknown kind "gizmos"/);
      problem(await h.request('GET', '/v1/namespaces/shop/workloadentries/nope'), 404, /not found$/);
      problem(await h.request('GET', '/v1/namespaces/shop/workloadentries/from-file'), 404, /defined by the file source/);
    });

    it('403 for a namespace-scoped token outside its namespace, on every verb', async () => {
      ok(await h.request('PUT', '/v1/namespaces/bank/workloadentries/scoped', { body: weYaml('scoped', 'bank', '10.6.4.1') }), 201);
      problem(await h.request('GET', '/v1/namespaces/bank/workloadentries/scoped', { token: shopToken }), 403, /outside them/);
      problem(await h.request('PUT', '/v1/namespaces/bank/workloadentries/scoped', { token: shopToken, body: weYaml('scoped', 'bank', '10.6.4.2') }), 403);
      problem(await h.request('DELETE', '/v1/namespaces/bank/workloadentries/scoped', { token: shopToken }), 403);
    });

    it('DELETE returns the last state; 409 with a stale ?resourceVersion; 404 once gone; 409 for a file resource', async () => {
      const c = ok<ResourceBody>(await h.request('PUT', '/v1/namespaces/shop/workloadentries/del-a', { body: weYaml('del-a', 'shop', '10.6.5.1') }), 201);
      ok(await h.request('PUT', '/v1/namespaces/shop/workloadentries/del-a', { body: weYaml('del-a', 'shop', '10.6.5.2') }));
      problem(await h.request('DELETE', `/v1/namespaces/shop/workloadentries/del-a?resourceVersion=${c.metadata.resourceVersion}`), 409);
      const gone = ok<ResourceBody>(await h.request('DELETE', '/v1/namespaces/shop/workloadentries/del-a'));
      assert.equal(gone.spec.address, '10.6.5.2');
      problem(await h.request('DELETE', '/v1/namespaces/shop/workloadentries/del-a'), 404);
      problem(await h.request('DELETE', '/v1/namespaces/shop/workloadentries/from-file'), 409, /defined by the file source/);
      problem(await h.request('DELETE', '/v1/namespaces/shop/workloadentries/x?resourceVersion=abc'), 400);
    });
  });

  describe('GET /v1/{kind}', () => {
    before(async () => {
      const docs = [];
      for (let i = 0; i < 5; i++) docs.push(weYaml(`list-${i}`, 'lists', `10.7.0.${i + 1}`, { tier: i % 2 ? 'odd' : 'even', app: 'lister' }));
      docs.push(weYaml('list-other', 'lists2', '10.7.1.1', { app: 'lister' }));
      ok(await h.request('POST', '/v1/apply', { body: docs.join('---\n') }));
    });

    it('filters by namespace and label selector and pages with continue', async () => {
      const even = ok<{ items: ResourceBody[] }>(await h.request('GET', '/v1/workloadentries?namespace=lists&labelSelector=' + encodeURIComponent('tier=even')));
      assert.deepEqual(even.items.map((r) => r.metadata.name), ['list-0', 'list-2', 'list-4']);
      const names: string[] = [];
      let cont: string | undefined;
      let pages = 0;
      do {
        const page = ok<{ kind: string; metadata: { continue?: string; resourceVersion: string }; items: ResourceBody[] }>(
          await h.request('GET', `/v1/we?labelSelector=app%3Dlister&limit=2${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`),
        );
        assert.equal(page.kind, 'List');
        names.push(...page.items.map((r) => `${r.metadata.namespace}/${r.metadata.name}`));
        cont = page.metadata.continue;
        pages++;
      } while (cont);
      assert.deepEqual(names, ['lists/list-0', 'lists/list-1', 'lists/list-2', 'lists/list-3', 'lists/list-4', 'lists2/list-other']);
      assert.equal(pages, 3);
    });

    it('a namespace-scoped token lists only its namespaces, and 403 when it asks for another', async () => {
      const shop = ok<{ items: ResourceBody[] }>(await h.request('GET', '/v1/workloadentries', { token: shopToken }));
      assert.ok(shop.items.length > 0 && shop.items.every((r) => r.metadata.namespace === 'shop'));
      problem(await h.request('GET', '/v1/workloadentries?namespace=lists', { token: shopToken }), 403);
    });

    it('400 for a bad label selector, limit or continue token, with the query field named; 404 for an unknown kind', async () => {
      const sel = problem(await h.request('GET', '/v1/workloadentries?labelSelector=' + encodeURIComponent('a in (b')), 400);
      assert.equal(sel.errors?.[0]?.path, 'query.labelSelector');
      const limit = problem(await h.request('GET', '/v1/workloadentries?limit=0'), 400);
      assert.equal(limit.errors?.[0]?.path, 'query.limit');
      problem(await h.request('GET', '/v1/workloadentries?continue=zzz'), 400, /continue token/);
      problem(await h.request('GET', '/v1/gizmos'), 404);
    });
  });

  describe('GET /v1/watch', () => {
    it('streams changes after a resourceVersion as server-sent events, one transaction sharing a revision', async () => {
      const start = ok<{ resourceVersion: string }>(await h.request('POST', '/v1/apply', { body: weYaml('watch-0', 'watch', '10.8.0.1') })).resourceVersion;
      const events = await readSse(`${h.url}/v1/watch?resourceVersion=${start}&namespace=watch`, h.adminToken, (ev) => ev.length >= 4, {
        onOpen: async () => {
          ok(await h.request('POST', '/v1/apply', { body: `${weYaml('watch-1', 'watch', '10.8.0.2')}---\n${weYaml('watch-2', 'watch', '10.8.0.3')}` }));
          ok(await h.request('PUT', '/v1/namespaces/other/workloadentries/not-watched', { body: weYaml('not-watched', 'other', '10.8.0.9') }), 201);
          ok(await h.request('PUT', '/v1/namespaces/watch/workloadentries/watch-1', { body: weYaml('watch-1', 'watch', '10.8.0.4') }));
          ok(await h.request('DELETE', '/v1/namespaces/watch/workloadentries/watch-2'));
        },
      });
      const seen = events.map((e) => {
        const d = JSON.parse(e.data) as { type: string; object: ResourceBody };
        assert.equal(d.type, e.event);
        return `${e.event} ${d.object.metadata.name}`;
      });
      assert.deepEqual(seen, ['ADDED watch-1', 'ADDED watch-2', 'MODIFIED watch-1', 'DELETED watch-2']);
      assert.equal(events[0]!.id, events[1]!.id, 'one apply, one revision');
      assert.ok(Number(events[2]!.id) > Number(events[1]!.id));
    });

    it('without resourceVersion sends the current objects as ADDED, then a BOOKMARK; Last-Event-ID resumes', async () => {
      const events = await readSse(`${h.url}/v1/watch?namespace=watch&kind=we`, h.adminToken, (ev) => ev.some((e) => e.event === 'BOOKMARK'));
      assert.deepEqual(events.map((e) => e.event), ['ADDED', 'ADDED', 'BOOKMARK']);
      const bookmark = events[2]!;
      const resumed = await readSse(`${h.url}/v1/watch?namespace=watch`, h.adminToken, (ev) => ev.length >= 1, {
        headers: { 'last-event-id': bookmark.id },
        onOpen: async () => {
          ok(await h.request('DELETE', '/v1/namespaces/watch/workloadentries/watch-0'));
        },
      });
      assert.deepEqual(resumed.map((e) => e.event), ['DELETED']);
    });

    it('410 when the events of that resourceVersion were compacted; 403 for a scoped token asking for another namespace', async () => {
      problem(await h.request('GET', '/v1/watch?resourceVersion=1'), 410, /compacted/);
      problem(await h.request('GET', '/v1/watch?namespace=bank', { token: shopToken }), 403);
      const bad = problem(await h.request('GET', '/v1/watch?resourceVersion=soon'), 400);
      assert.equal(bad.errors?.[0]?.path, 'query.resourceVersion');
    });
  });

  describe('GET /v1/workloads and /v1/services', () => {
    it('merge every source, naming each item source and health', async () => {
      ok(await h.request('POST', '/v1/apply', {
        body: `${weYaml('view-api', 'shop', '10.9.0.2')}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: view-web
  namespace: shop
spec:
  hosts: [view.shop.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
`,
      }));
      h.flush();
      const workloads = ok<{ items: { namespace: string; name: string; source: string; health: string; location?: string; spiffeId?: string }[] }>(await h.request('GET', '/v1/workloads?namespace=shop'));
      const byName = new Map(workloads.items.map((w) => [w.name, w]));
      assert.equal(byName.get('from-file')?.source, 'file');
      assert.match(byName.get('from-file')?.location ?? '', /mesh\.yaml:1$/);
      assert.equal(byName.get('view-api')?.source, 'api');
      assert.ok(workloads.items.every((w) => w.health === 'healthy' && w.namespace === 'shop'));
      const services = ok<{ items: { name: string; source: string; endpoints: { address: string; workload?: string; health: string }[] }[] }>(await h.request('GET', '/v1/services?namespace=shop'));
      const svc = services.items.find((s) => s.name === 'view-web');
      assert.equal(svc?.source, 'api');
      assert.ok(svc?.endpoints.some((e) => e.workload === 'shop/from-file' && e.health === 'healthy'));
      assert.ok(svc?.endpoints.some((e) => e.workload === 'shop/view-api'));
      problem(await h.request('GET', '/v1/workloads?namespace=bank', { token: shopToken }), 403);
      const scoped = ok<{ items: { namespace: string }[] }>(await h.request('GET', '/v1/workloads', { token: shopToken }));
      assert.ok(scoped.items.every((w) => w.namespace === 'shop'));
    });

    it("apply answers Istio's translation warning for an ALLOW rule with HTTP-only fields on a TCP port", async () => {
      const res = ok<{ warnings: { path: string; message: string; line?: number }[] }>(await h.request('POST', '/v1/apply', {
        body: `${weYaml('tcp-db', 'vault', '10.9.1.2', { app: 'db' })}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: vault}
spec:
  hosts: [db.vault.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
  workloadSelector: {labels: {app: db}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db-get-only, namespace: vault}
spec:
  selector: {matchLabels: {app: db}}
  rules:
  - to: [{operation: {methods: [GET]}}]
`,
      }));
      const w = res.warnings.find((x) => /HTTP-only attributes/.test(x.message));
      assert.ok(w, JSON.stringify(res.warnings));
      assert.match(w.message, /never matches on TCP ports/);
      assert.match(w.path, /^spec\.rules\[0\]/);
    });

    it("report a workload whose Healthy condition is False as unhealthy, in both views", async () => {
      h.registry.setStatusOverlay('test-health', new Map([['WorkloadEntry/shop/view-api', [{ type: 'Healthy', status: 'False' as const, reason: 'ProbeFailed' }]]]));
      h.flush();
      const workloads = ok<{ items: { name: string; health: string }[] }>(await h.request('GET', '/v1/workloads?namespace=shop'));
      assert.equal(workloads.items.find((w) => w.name === 'view-api')?.health, 'unhealthy');
      assert.equal(workloads.items.find((w) => w.name === 'from-file')?.health, 'healthy');
      const services = ok<{ items: { name: string; endpoints: { workload?: string; health: string }[] }[] }>(await h.request('GET', '/v1/services?namespace=shop'));
      const ep = services.items.find((s) => s.name === 'view-web')?.endpoints.find((e) => e.workload === 'shop/view-api');
      assert.equal(ep?.health, 'unhealthy');
      h.registry.setStatusOverlay('test-health', new Map());
      h.flush();
    });
  });

  describe('/v1/tokens', () => {
    it('POST issues a token (201), GET lists it without the token text, DELETE revokes it', async () => {
      const created = ok<{ token: string; jti: string; spiffeId: string; singleUse: boolean; workloadGroup?: string }>(
        await h.request('POST', '/v1/tokens', { body: { namespace: 'shop', serviceAccount: 'web', ttlSeconds: 600, singleUse: true, workloadGroup: 'web-vms' } }),
        201,
      );
      assert.equal(created.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
      assert.equal(created.workloadGroup, 'shop/web-vms');
      assert.equal((await h.tokens.verify(created.token)).jti, created.jti);
      const list = await h.request('GET', '/v1/tokens?namespace=shop');
      const item = ok<{ items: { jti: string; status: string; createdBy: string }[] }>(list).items.find((t) => t.jti === created.jti);
      assert.equal(item?.status, 'active');
      assert.match(item?.createdBy ?? '', /^admin-token:/);
      assert.ok(!list.text.includes(created.token), 'the token text is never listed');
      const revoked = ok<{ status: string; revokedBy: string }>(await h.request('DELETE', `/v1/tokens/${created.jti}`));
      assert.equal(revoked.status, 'revoked');
      assert.equal(ok<{ status: string }>(await h.request('DELETE', `/v1/tokens/${created.jti}`)).status, 'revoked', 'revoking twice is harmless');
    });

    it('400 with the body field path, 403 outside the token scope, 404 for an unknown jti', async () => {
      const bad = problem(await h.request('POST', '/v1/tokens', { body: { namespace: 'Shop!', serviceAccount: 'web', ttlSeconds: 0, extra: 1 } }), 400);
      const paths = (bad.errors ?? []).map((e) => e.path).sort();
      assert.deepEqual(paths, ['body.extra', 'body.namespace', 'body.ttlSeconds']);
      const group = problem(await h.request('POST', '/v1/tokens', { body: { namespace: 'shop', serviceAccount: 'web', workloadGroup: 'bank/vms' } }), 400);
      assert.equal(group.errors?.[0]?.path, 'body.workloadGroup');
      problem(await h.request('POST', '/v1/tokens', { body: 'not json', contentType: 'application/json' }), 400);
      problem(await h.request('POST', '/v1/tokens', { token: shopToken, body: { namespace: 'bank', serviceAccount: 'web' } }), 403);
      const bankToken = ok<{ jti: string }>(await h.request('POST', '/v1/tokens', { body: { namespace: 'bank', serviceAccount: 'web' } }), 201);
      problem(await h.request('DELETE', `/v1/tokens/${bankToken.jti}`, { token: shopToken }), 403);
      const shopList = ok<{ items: { namespace: string }[] }>(await h.request('GET', '/v1/tokens', { token: shopToken }));
      assert.ok(shopList.items.every((t) => t.namespace === 'shop'));
      problem(await h.request('DELETE', '/v1/tokens/AAAAAAAAAAAAAAAAAAAAAA'), 404);
      problem(await h.request('DELETE', '/v1/tokens/short'), 400);
    });
  });

  describe('audit log', () => {
    it('records who changed what, with the revision', async () => {
      const res = ok<{ metadata: { resourceVersion: string } }>(await h.request('PUT', '/v1/namespaces/shop/workloadentries/audited', { token: shopToken, body: weYaml('audited', 'shop', '10.10.0.1') }), 201);
      const me = ok<{ actor: string }>(await h.request('GET', '/v1/whoami', { token: shopToken }));
      const entries = await h.store.audit.list({ limit: 100_000 });
      const e = entries.find((x) => x.target === 'WorkloadEntry/shop/audited');
      assert.equal(e?.actor, me.actor);
      assert.equal(e?.action, 'resource.create');
      assert.equal(String(e?.revision), res.metadata.resourceVersion);
    });
  });

  describe('GET /openapi.json', () => {
    it('is an OpenAPI 3.1 document whose paths are exactly the routes of the app', async () => {
      const doc = ok<{
        openapi: string;
        info: { title: string; version: string };
        paths: Record<string, Record<string, { responses: Record<string, unknown>; parameters?: { name: string; in: string }[] }>>;
        components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string }> };
      }>(await h.request('GET', '/openapi.json', { token: null }));
      assert.equal(doc.openapi, '3.1.0');
      assert.ok(doc.info.title && doc.info.version);
      const documented = new Set<string>();
      for (const [p, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          documented.add(`${method.toUpperCase()} ${p}`);
          assert.ok(Object.keys(op.responses).length > 0, `${method} ${p} has responses`);
          for (const name of [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
            assert.ok(op.parameters?.some((x) => x.name === name && x.in === 'path'), `${method} ${p} documents path parameter ${name}`);
          }
        }
      }
      const served = new Set(
        (await import('../../src/api/app.js'))
          .createApiApp({ store: h.store, registry: h.registry, tokens: h.tokens, logger: (await import('../../src/observability/logger.js')).silentLogger() })
          .routes.filter((r) => r.method !== 'ALL')
          .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
      );
      assert.deepEqual([...documented].sort(), [...served].sort());
      for (const kind of ['WorkloadEntry', 'ServiceEntry', 'Sidecar', 'PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'Resource', 'Problem']) {
        assert.ok(doc.components.schemas[kind], `component ${kind}`);
      }
      assert.equal(doc.components.securitySchemes['adminToken']?.type, 'http');
      assert.equal(doc.components.securitySchemes['svid']?.type, 'mutualTLS');
      // Every $ref resolves.
      const text = JSON.stringify(doc);
      for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) assert.ok(doc.components.schemas[m[1]!], `$ref ${m[1]} resolves`);
      // The spec of a kind comes from the schema that validates it: strict objects, the port range.
      const we = doc.components.schemas['WorkloadEntry'] as { additionalProperties?: boolean; properties: { spec: { properties: { ports: { additionalProperties: { maximum: number } } } } } };
      assert.equal(we.additionalProperties, false);
      assert.equal(we.properties.spec.properties.ports.additionalProperties.maximum, 65535);
    });
  });
});

describe('HTTP API over TLS with client SVIDs', () => {
  let h: ApiHarness;
  before(async () => {
    h = await startApiHarness({ tls: true });
  });
  after(async () => {
    await h?.close();
  });

  it('maps a client SVID to its agent identity; agents may not manage resources or tokens', async () => {
    const svid = await h.issueSvid('shop', 'web');
    const me = ok<{ kind: string; spiffeId: string; actor: string }>(await h.requestWithSvid('GET', '/v1/whoami', svid));
    assert.deepEqual(me, { kind: 'agent', actor: 'spiffe://cluster.local/ns/shop/sa/web', spiffeId: 'spiffe://cluster.local/ns/shop/sa/web' });
    problem(await h.requestWithSvid('GET', '/v1/tokens', svid), 403, /agent identity/);
    problem(await h.requestWithSvid('PUT', '/v1/namespaces/shop/workloadentries/x', svid, { body: weYaml('x', 'shop', '10.0.0.1') }), 403);
    problem(await h.requestWithSvid('GET', '/v1/whoami', undefined), 401, /client certificate/);
    assert.equal(ok<{ kind: string }>(await h.request('GET', '/v1/whoami')).kind, 'admin', 'bearer tokens work over TLS too');
  });

  it('refuses a client certificate from another CA with 401', async () => {
    const other = await startApiHarness();
    try {
      const foreign = await other.issueSvid('shop', 'web');
      problem(await h.requestWithSvid('GET', '/v1/whoami', foreign), 401, /client certificate refused/);
    } finally {
      await other.close();
    }
  });
});

describe('authorizeIdentity (the check registration and health routes use)', () => {
  const agent: Principal = { kind: 'agent', spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' };
  const forbidden = (fn: () => void, message: RegExp) =>
    assert.throws(fn, (err: unknown) => err instanceof ApiError && err.status === 403 && message.test(err.message));

  it('lets an agent act for its own identity only (403 naming both identities otherwise)', () => {
    authorizeIdentity(agent, { namespace: 'shop', serviceAccount: 'web' });
    forbidden(() => authorizeIdentity(agent, { namespace: 'shop', serviceAccount: 'db' }), /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web may not act as a workload of namespace shop, service account db: an agent may only register or report for its own identity/);
    forbidden(() => authorizeIdentity(agent, { namespace: 'bank', serviceAccount: 'web' }), /namespace bank, service account web/);
    forbidden(() => authorizeIdentity(agent, { namespace: 'shop' }), /service account default/);
  });

  it('lets an admin act for identities in its namespaces only', () => {
    authorizeIdentity({ kind: 'admin', tokenId: 'a' }, { namespace: 'bank', serviceAccount: 'db' });
    authorizeIdentity({ kind: 'admin', tokenId: 'a', namespaces: ['shop'] }, { namespace: 'shop', serviceAccount: 'db' });
    forbidden(() => authorizeIdentity({ kind: 'admin', tokenId: 'a', namespaces: ['shop'] }, { namespace: 'bank', serviceAccount: 'db' }), /namespace bank is outside them/);
  });
});
