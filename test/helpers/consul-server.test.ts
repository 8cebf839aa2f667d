/**
 * The Consul test server against Consul's published API documentation: one test per sample request
 * or response of the endpoints Skiff uses (the catalog, health, agent service/check and status
 * pages, https://developer.hashicorp.com/consul/api-docs, and the filtering page), then the
 * blocking-query rules of https://developer.hashicorp.com/consul/api-docs/features/blocking.
 *
 * A documented response is compared as a subset: every field the sample shows must be present with
 * the sample's value and casing (real Consul, like this server, sends more fields than the samples
 * list). `CreateIndex`/`ModifyIndex` depend on the server's history, so only their type is checked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseGoDuration, startConsulTestServer, type ConsulTestServer } from './consul-server.js';

/** Asserts that `actual` contains `expected` (objects: every expected key; arrays: same length, element-wise). */
function assertSubset(actual: unknown, expected: unknown, path = '$'): void {
  if (expected === null || typeof expected !== 'object') {
    assert.deepEqual(actual, expected, `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path}: expected ${expected.length} elements, got ${actual.length}`);
    expected.forEach((e, i) => assertSubset(actual[i], e, `${path}[${i}]`));
    return;
  }
  assert.ok(actual !== null && typeof actual === 'object' && !Array.isArray(actual), `${path}: expected an object, got ${JSON.stringify(actual)}`);
  for (const [k, v] of Object.entries(expected)) {
    assert.ok(Object.hasOwn(actual, k), `${path}: missing field ${k} (have ${Object.keys(actual).join(', ')})`);
    assertSubset((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
  }
}

/** Replaces CreateIndex/ModifyIndex numbers (checking they are positive integers) so samples compare. */
function indexesAsIn(value: unknown, sampleIndex: number): unknown {
  if (Array.isArray(value)) return value.map((v) => indexesAsIn(v, sampleIndex));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'CreateIndex' || k === 'ModifyIndex') {
      assert.ok(Number.isInteger(v) && (v as number) > 0, `${k} is ${JSON.stringify(v)}`);
      out[k] = sampleIndex;
    } else {
      out[k] = indexesAsIn(v, sampleIndex);
    }
  }
  return out;
}

async function get(server: ConsulTestServer, path: string, headers: Record<string, string> = {}): Promise<{ status: number; index: string | null; body: unknown; text: string }> {
  const res = await fetch(`${server.url}${path}`, { headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* plain text */
  }
  return { status: res.status, index: res.headers.get('x-consul-index'), body, text };
}

async function put(server: ConsulTestServer, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}${path}`, { method: 'PUT', body: body === undefined ? undefined : JSON.stringify(body), headers });
  return { status: res.status, text: await res.text() };
}

describe("Consul test server: Consul's documented samples", () => {
  let server: ConsulTestServer;
  before(async () => {
    server = await startConsulTestServer({ nodeAddress: '10.1.10.12' });
  });
  after(() => server.close());

  it('status: GET /v1/status/leader answers the sample "10.1.10.12:8300"', async () => {
    const r = await get(server, '/v1/status/leader');
    assert.equal(r.status, 200);
    assert.equal(r.text, '"10.1.10.12:8300"');
  });

  it('catalog "List Services": the sample {consul: [], redis: [], postgresql: [primary, secondary]}', async () => {
    await server.put('/v1/agent/service/register', { Name: 'redis', ID: 'redis', Port: 8000 });
    await server.put('/v1/agent/service/register', { Name: 'postgresql', ID: 'pg-1', Port: 5432, Tags: ['primary'] });
    await server.put('/v1/agent/service/register', { Name: 'postgresql', ID: 'pg-2', Port: 5433, Tags: ['secondary'] });
    const r = await get(server, '/v1/catalog/services?ns=foo');
    assert.deepEqual(r.body, {}, 'namespace foo has no services');
    const all = await get(server, '/v1/catalog/services');
    assert.deepEqual(all.body, { consul: [], redis: [], postgresql: ['primary', 'secondary'] });
    await server.put('/v1/agent/service/deregister/redis');
    await server.put('/v1/agent/service/deregister/pg-1');
    await server.put('/v1/agent/service/deregister/pg-2');
  });

  it('catalog "Register Entity" sample payload, then "List Nodes for Service" and the health view show it', async () => {
    const payload = {
      Datacenter: 'dc1',
      ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
      Node: 't2.320',
      Address: '192.168.10.10',
      TaggedAddresses: { lan: '192.168.10.10', wan: '10.0.10.10' },
      NodeMeta: { somekey: 'somevalue' },
      Service: {
        ID: 'redis1',
        Service: 'redis',
        Tags: ['primary', 'v1'],
        Address: '127.0.0.1',
        TaggedAddresses: { lan: { address: '127.0.0.1', port: 8000 }, wan: { address: '198.18.0.1', port: 80 } },
        Meta: { redis_version: '4.0' },
        Port: 8000,
        Namespace: 'default',
      },
      Check: {
        Node: 't2.320',
        CheckID: 'service:redis1',
        Name: 'Redis health check',
        Notes: 'Script based health check',
        Status: 'passing',
        ServiceID: 'redis1',
        Definition: { TCP: 'localhost:8888', Interval: '5s', Timeout: '1s', DeregisterCriticalServiceAfter: '30s' },
        Namespace: 'default',
      },
      SkipNodeUpdate: false,
    };
    const r = await put(server, '/v1/catalog/register', payload, { 'X-Consul-Namespace': 'default' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'true');
    const nodes = await get(server, '/v1/catalog/service/redis');
    assertSubset(nodes.body, [
      {
        ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
        Node: 't2.320',
        Address: '192.168.10.10',
        Datacenter: 'dc1',
        TaggedAddresses: { lan: '192.168.10.10', wan: '10.0.10.10' },
        NodeMeta: { somekey: 'somevalue' },
        ServiceID: 'redis1',
        ServiceName: 'redis',
        ServiceTags: ['primary', 'v1'],
        ServiceAddress: '127.0.0.1',
        ServicePort: 8000,
        ServiceMeta: { redis_version: '4.0' },
        Namespace: 'default',
      },
    ]);
    const health = await get(server, '/v1/health/service/redis');
    assertSubset(health.body, [
      {
        Node: { Node: 't2.320' },
        Service: { ID: 'redis1' },
        Checks: [{ CheckID: 'service:redis1', Name: 'Redis health check', Notes: 'Script based health check', Status: 'passing', ServiceID: 'redis1', ServiceName: 'redis' }],
      },
    ]);
  });

  it('catalog "Deregister Entity": the three sample payloads remove a check, a service, then a node', async () => {
    let r = await put(server, '/v1/catalog/deregister', { Datacenter: 'dc1', Node: 't2.320', CheckID: 'service:redis1', Namespace: 'team-1' });
    assert.equal(r.status, 200, r.text);
    let health = await get(server, '/v1/health/service/redis');
    assertSubset(health.body, [{ Service: { ID: 'redis1' }, Checks: [] }]);
    r = await put(server, '/v1/catalog/deregister', { Datacenter: 'dc1', Node: 't2.320', ServiceID: 'redis1', Namespace: 'team-1' });
    assert.equal(r.status, 200, r.text);
    health = await get(server, '/v1/health/service/redis');
    assert.deepEqual(health.body, []);
    await put(server, '/v1/catalog/register', { Node: 't2.320', Address: '192.168.10.10', Service: { Service: 'cache', Port: 1 } });
    r = await put(server, '/v1/catalog/deregister', { Datacenter: 'dc1', Node: 't2.320' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((await get(server, '/v1/catalog/service/cache')).body, []);
  });

  it('catalog "List Nodes for Service": the sample web instance, field for field', async () => {
    await server.put('/v1/catalog/register', {
      ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
      Node: 't2.320',
      Address: '192.168.10.10',
      Datacenter: 'dc1',
      TaggedAddresses: { lan: '192.168.10.10', wan: '10.0.10.10' },
      NodeMeta: { somekey: 'somevalue' },
      Service: {
        ID: '32a2a47f7992:nodea:5000',
        Service: 'web',
        Address: '172.17.0.3',
        Port: 5000,
        Meta: { web_meta_value: 'baz' },
        TaggedAddresses: { lan: { address: '172.17.0.3', port: 5000 }, wan: { address: '198.18.0.1', port: 512 } },
        Tags: ['prod'],
      },
    });
    const r = await get(server, '/v1/catalog/service/web?ns=default');
    assert.equal(r.status, 200);
    assertSubset(indexesAsIn(r.body, 51), [
      {
        ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
        Node: 't2.320',
        Address: '192.168.10.10',
        Datacenter: 'dc1',
        TaggedAddresses: { lan: '192.168.10.10', wan: '10.0.10.10' },
        NodeMeta: { somekey: 'somevalue' },
        CreateIndex: 51,
        ModifyIndex: 51,
        ServiceAddress: '172.17.0.3',
        ServiceEnableTagOverride: false,
        ServiceID: '32a2a47f7992:nodea:5000',
        ServiceName: 'web',
        ServicePort: 5000,
        ServiceMeta: { web_meta_value: 'baz' },
        ServiceTaggedAddresses: { lan: { address: '172.17.0.3', port: 5000 }, wan: { address: '198.18.0.1', port: 512 } },
        ServiceTags: ['prod'],
        ServiceProxy: { DestinationServiceName: '', DestinationServiceID: '', LocalServiceAddress: '', LocalServicePort: 0, Config: null, Upstreams: null },
        ServiceConnect: { Native: false, Proxy: null },
        Namespace: 'default',
      },
    ]);
    await server.put('/v1/catalog/deregister', { Node: 't2.320' });
  });

  it('health "List Service Instances for Service": the sample redis entry with its service and serfHealth checks', async () => {
    await server.put('/v1/catalog/register', {
      ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
      Node: 'foobar',
      Address: '10.1.10.12',
      TaggedAddresses: { lan: '10.1.10.12', wan: '10.1.10.12' },
      NodeMeta: { instance_type: 't2.medium' },
      Service: {
        ID: 'redis',
        Service: 'redis',
        Tags: ['primary'],
        Address: '10.1.10.12',
        TaggedAddresses: { lan: { address: '10.1.10.12', port: 8000 }, wan: { address: '198.18.1.2', port: 80 } },
        Meta: { redis_version: '4.0' },
        Port: 8000,
        Weights: { Passing: 10, Warning: 1 },
      },
      Checks: [
        { CheckID: 'service:redis', Name: "Service 'redis' check", Status: 'passing', ServiceID: 'redis' },
        { CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing' },
      ],
    });
    const r = await get(server, '/v1/health/service/redis?ns=default');
    assert.equal(r.status, 200);
    assertSubset(r.body, [
      {
        Node: {
          ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
          Node: 'foobar',
          Address: '10.1.10.12',
          Datacenter: 'dc1',
          TaggedAddresses: { lan: '10.1.10.12', wan: '10.1.10.12' },
          Meta: { instance_type: 't2.medium' },
        },
        Service: {
          ID: 'redis',
          Service: 'redis',
          Tags: ['primary'],
          Address: '10.1.10.12',
          TaggedAddresses: { lan: { address: '10.1.10.12', port: 8000 }, wan: { address: '198.18.1.2', port: 80 } },
          Meta: { redis_version: '4.0' },
          Port: 8000,
          Weights: { Passing: 10, Warning: 1 },
          Namespace: 'default',
        },
        Checks: [
          { Node: 'foobar', CheckID: 'service:redis', Name: "Service 'redis' check", Status: 'passing', Notes: '', Output: '', ServiceID: 'redis', ServiceName: 'redis', ServiceTags: ['primary'], Namespace: 'default' },
          { Node: 'foobar', CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Notes: '', Output: '', ServiceID: '', ServiceName: '', ServiceTags: [], Namespace: 'default' },
        ],
      },
    ]);
    // `passing` leaves out instances with any non-passing check (node checks included).
    await server.put('/v1/catalog/register', { Node: 'foobar', SkipNodeUpdate: true, Check: { CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'critical' } });
    assert.equal((r.body as unknown[]).length, 1);
    assert.deepEqual((await get(server, '/v1/health/service/redis?passing')).body, []);
    assert.equal(((await get(server, '/v1/health/service/redis')).body as unknown[]).length, 1);
    await server.put('/v1/catalog/deregister', { Node: 'foobar' });
  });

  it('agent "Register Service": the sample payload with ?replace-existing-checks=true', async () => {
    const r = await put(server, '/v1/agent/service/register?replace-existing-checks=true', {
      ID: 'redis1',
      Name: 'redis',
      Tags: ['primary', 'v1'],
      Address: '127.0.0.1',
      Port: 8000,
      Meta: { redis_version: '4.0' },
      EnableTagOverride: false,
      Check: { DeregisterCriticalServiceAfter: '90m', Args: ['/usr/local/bin/check_redis.py'], Interval: '10s', Timeout: '5s' },
      Weights: { Passing: 10, Warning: 1 },
    });
    assert.equal(r.status, 200, r.text);
    const nodes = await get(server, '/v1/catalog/service/redis');
    assertSubset(nodes.body, [
      { Node: server.nodeName, ServiceID: 'redis1', ServiceName: 'redis', ServiceTags: ['primary', 'v1'], ServiceAddress: '127.0.0.1', ServicePort: 8000, ServiceMeta: { redis_version: '4.0' }, ServiceWeights: { Passing: 10, Warning: 1 } },
    ]);
    // The agent names a service's only check service:<id> and "Service '<name>' check"; a check
    // registered without Status starts critical (this server never runs scripts).
    const health = await get(server, '/v1/health/service/redis');
    const checks = (health.body as { Checks: { CheckID: string; Name: string; Status: string }[] }[])[0]!.Checks;
    assertSubset(checks[0], { CheckID: 'service:redis1', Name: "Service 'redis' check", Status: 'critical', ServiceID: 'redis1' });
    assertSubset(checks[1], { CheckID: 'serfHealth', Status: 'passing', ServiceID: '' });
    // Lenient keys, as Consul's decoder: snake_case and any case.
    const snake = await put(server, '/v1/agent/service/register', { name: 'redis', id: 'redis2', port: 8001, enable_tag_override: true, tagged_addresses: { lan: { address: '127.0.0.2', port: 8001 } } });
    assert.equal(snake.status, 200, snake.text);
    assertSubset((await get(server, '/v1/catalog/service/redis')).body, [{ ServiceID: 'redis1' }, { ServiceID: 'redis2', ServiceEnableTagOverride: true, ServiceTaggedAddresses: { lan: { address: '127.0.0.2', port: 8001 } } }]);
  });

  it('agent "Register Service" rejects what Consul rejects: no name, reserved or invalid meta keys', async () => {
    assert.deepEqual(await put(server, '/v1/agent/service/register', { Port: 1 }), { status: 400, text: 'Missing service name' });
    const reserved = await put(server, '/v1/agent/service/register', { Name: 'x', Meta: { 'consul-x': 'y' } });
    assert.equal(reserved.status, 400);
    assert.match(reserved.text, /reserved/);
    const invalid = await put(server, '/v1/agent/service/register', { Name: 'x', Meta: { 'a.b': 'y' } });
    assert.equal(invalid.status, 400);
    assert.match(invalid.text, /invalid characters/);
    assert.equal((await put(server, '/v1/agent/service/register', '{')).status, 400);
  });

  it('agent "Enable Maintenance Mode": the sample request adds a critical _service_maintenance check with the reason', async () => {
    const r = await put(server, '/v1/agent/service/maintenance/redis1?enable=true&reason=For+the+docs');
    assert.equal(r.status, 200, r.text);
    const health = (await get(server, '/v1/health/service/redis')).body as { Service: { ID: string }; Checks: { CheckID: string; Status: string; Notes: string }[] }[];
    const maint = health.find((e) => e.Service.ID === 'redis1')!.Checks.find((c) => c.CheckID === '_service_maintenance:redis1');
    assertSubset(maint, { Status: 'critical', Notes: 'For the docs', ServiceID: 'redis1' });
    await server.put('/v1/agent/service/maintenance/redis1?enable=false');
    const after = (await get(server, '/v1/health/service/redis')).body as { Service: { ID: string }; Checks: { CheckID: string }[] }[];
    assert.ok(!after.find((e) => e.Service.ID === 'redis1')!.Checks.some((c) => c.CheckID.startsWith('_service_maintenance')));
    assert.equal((await put(server, '/v1/agent/service/maintenance/nope?enable=true')).status, 404);
  });

  it('agent TTL check pass/warn/fail/update: the sample requests set the status and Output', async () => {
    await server.put('/v1/agent/service/register', { Name: 'ttl', ID: 'ttl-1', Port: 9, Check: { CheckID: 'my-check-id', TTL: '30s' } });
    const status = async (): Promise<{ Status: string; Output: string }> => {
      const body = (await get(server, '/v1/health/service/ttl')).body as { Checks: { CheckID: string; Status: string; Output: string }[] }[];
      return body[0]!.Checks.find((c) => c.CheckID === 'my-check-id')!;
    };
    assert.equal((await status()).Status, 'critical');
    assert.equal((await put(server, '/v1/agent/check/pass/my-check-id')).status, 200);
    assert.equal((await status()).Status, 'passing');
    await put(server, '/v1/agent/check/warn/my-check-id?note=slow');
    assertSubset(await status(), { Status: 'warning', Output: 'slow' });
    await put(server, '/v1/agent/check/fail/my-check-id');
    assert.equal((await status()).Status, 'critical');
    assert.equal((await put(server, '/v1/agent/check/update/my-check-id', { Status: 'passing', Output: 'curl reported a failure:\n\n...' })).status, 200);
    assertSubset(await status(), { Status: 'passing', Output: 'curl reported a failure:\n\n...' });
    assert.equal((await put(server, '/v1/agent/check/update/my-check-id', { Status: 'sideways' })).status, 400);
    assert.equal((await put(server, '/v1/agent/check/pass/unknown')).status, 404);
  });

  it('agent "Deregister Service": the sample request for an unknown ID takes no action; a known one goes with its checks', async () => {
    assert.equal((await put(server, '/v1/agent/service/deregister/my-service-id')).status, 200);
    await server.put('/v1/agent/service/deregister/ttl-1');
    assert.deepEqual((await get(server, '/v1/health/service/ttl')).body, []);
  });

  it('filtering "Catalog API" example: NodeMeta.os == "linux" keeps node-2 only', async () => {
    const nodes = [
      { ID: 'b4f64e8c-5c7d-11e9-bf68-8c8590bd0966', Node: 'node-1', Address: '198.18.0.1', NodeMeta: { agent: 'true', arch: 'i386', os: 'darwin' }, Tags: ['tag'], Meta: { environment: 'qa' } },
      { ID: 'b4faf93a-5c7d-11e9-840d-8c8590bd0966', Node: 'node-2', Address: '198.18.0.2', NodeMeta: { arch: 'arm', os: 'linux' }, Tags: ['test', 'tag'], Meta: { environment: 'production' } },
      { ID: 'b4fbe7f4-5c7d-11e9-ac82-8c8590bd0966', Node: 'node-4', Address: '198.18.0.4', NodeMeta: { arch: 'i386', os: 'freebsd' }, Tags: [], Meta: { environment: 'qa' } },
    ];
    for (const n of nodes) {
      await server.put('/v1/catalog/register', { ID: n.ID, Node: n.Node, Address: n.Address, NodeMeta: n.NodeMeta, Service: { Service: 'api-internal', Tags: n.Tags, Meta: n.Meta, Port: 9090 } });
    }
    assert.equal(((await get(server, '/v1/catalog/service/api-internal')).body as unknown[]).length, 3);
    const r = await get(server, `/v1/catalog/service/api-internal?filter=${encodeURIComponent('NodeMeta.os == "linux"')}`);
    assert.equal(r.status, 200);
    assertSubset(indexesAsIn(r.body, 29), [
      {
        ID: 'b4faf93a-5c7d-11e9-840d-8c8590bd0966',
        Node: 'node-2',
        Address: '198.18.0.2',
        Datacenter: 'dc1',
        TaggedAddresses: null,
        NodeMeta: { arch: 'arm', os: 'linux' },
        ServiceKind: '',
        ServiceID: 'api-internal',
        ServiceName: 'api-internal',
        ServiceTags: ['test', 'tag'],
        ServiceAddress: '',
        ServiceWeights: { Passing: 1, Warning: 1 },
        ServiceMeta: { environment: 'production' },
        ServicePort: 9090,
        ServiceEnableTagOverride: false,
        ServiceProxy: {},
        ServiceConnect: {},
        CreateIndex: 29,
        ModifyIndex: 29,
      },
    ]);
    // More of the documented operators, on the health endpoint's selectors.
    const health = async (expr: string): Promise<string[]> =>
      ((await get(server, `/v1/health/service/api-internal?filter=${encodeURIComponent(expr)}`)).body as { Node: { Node: string } }[]).map((e) => e.Node.Node);
    assert.deepEqual(await health('"test" in Service.Tags'), ['node-2']);
    assert.deepEqual(await health('Service.Tags is empty'), ['node-4']);
    assert.deepEqual(await health('Service.Meta.environment == qa and not (Node.Meta["os"] matches "^dar")'), ['node-4']);
    assert.deepEqual(await health('Node.Node contains "-1" or Node.Meta.arch != "i386"'), ['node-1', 'node-2']);
    const bad = await get(server, `/v1/health/service/api-internal?filter=${encodeURIComponent('Service.Tags ==')}`);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /Failed to create boolean expression evaluator/);
  });
});

describe('Consul test server: blocking queries, datacenters, namespaces, ACLs, outages and faults', () => {
  let server: ConsulTestServer;
  before(async () => {
    server = await startConsulTestServer({ aclToken: 'secret-token' });
  });
  after(() => server.close());
  const auth = { 'X-Consul-Token': 'secret-token' };
  const register = (body: unknown, path = '/v1/agent/service/register') => put(server, path, body, auth);

  it('parses Go durations as the wait parameter does', () => {
    assert.equal(parseGoDuration('10s'), 10_000);
    assert.equal(parseGoDuration('5m'), 300_000);
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('250ms'), 250);
    assert.equal(parseGoDuration('soon'), undefined);
  });

  it('refuses a request without the ACL token (403) and accepts the header, a bearer token or ?token=', async () => {
    const anonymous = await get(server, '/v1/catalog/services');
    assert.equal(anonymous.status, 403);
    assert.equal(anonymous.text, 'Permission denied');
    assert.equal((await get(server, '/v1/catalog/services', { 'X-Consul-Token': 'wrong' })).text, 'ACL not found');
    assert.equal((await get(server, '/v1/catalog/services', auth)).status, 200);
    assert.equal((await get(server, '/v1/catalog/services', { Authorization: 'Bearer secret-token' })).status, 200);
    assert.equal((await get(server, '/v1/catalog/services?token=secret-token')).status, 200);
  });

  it('answers every read with an X-Consul-Index greater than zero', async () => {
    for (const path of ['/v1/catalog/services', '/v1/catalog/service/nothing', '/v1/health/service/nothing']) {
      const r = await get(server, path, auth);
      assert.equal(r.status, 200);
      assert.match(r.index ?? '', /^[1-9][0-9]*$/, path);
    }
  });

  it('a query with the current index waits, and answers unchanged with the same index when wait passes', async () => {
    await register({ Name: 'web', ID: 'web-1', Port: 80 });
    const first = await get(server, '/v1/health/service/web', auth);
    const started = Date.now();
    const again = await get(server, `/v1/health/service/web?index=${first.index}&wait=1s`, auth);
    assert.ok(Date.now() - started >= 950, `answered after ${Date.now() - started} ms, before the wait ended`);
    assert.equal(again.index, first.index);
    assert.deepEqual(again.body, first.body);
  });

  it('a waiting query answers when what it reads changes, with a higher index', async () => {
    const first = await get(server, '/v1/health/service/web', auth);
    assert.deepEqual(server.blockedQueries(), []);
    const pending = get(server, `/v1/health/service/web?index=${first.index}&wait=30s`, auth);
    while (server.blockedQueries().length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(server.blockedQueries(), ['/v1/health/service/web']);
    await register({ Name: 'web', ID: 'web-2', Port: 81 });
    const changed = await pending;
    assert.ok(BigInt(changed.index!) > BigInt(first.index!));
    assert.equal((changed.body as unknown[]).length, 2);
  });

  it("another service's writes move the services list index but not this service's index; a no-op check update writes nothing", async () => {
    const web = await get(server, '/v1/health/service/web', auth);
    const list = await get(server, '/v1/catalog/services', auth);
    await register({ Name: 'batch', ID: 'batch-1', Port: 1, Check: { CheckID: 'batch-ttl', TTL: '1m', Status: 'passing' } });
    assert.equal((await get(server, '/v1/health/service/web', auth)).index, web.index);
    const list2 = await get(server, '/v1/catalog/services', auth);
    assert.ok(BigInt(list2.index!) > BigInt(list.index!));
    // Check updates move the service's index, not the services list.
    const batch = await get(server, '/v1/health/service/batch', auth);
    await put(server, '/v1/agent/check/pass/batch-ttl', undefined, auth);
    assert.equal((await get(server, '/v1/health/service/batch', auth)).index, batch.index, 'same status and output: nothing written');
    await put(server, '/v1/agent/check/warn/batch-ttl', undefined, auth);
    assert.ok(BigInt((await get(server, '/v1/health/service/batch', auth)).index!) > BigInt(batch.index!));
    assert.equal((await get(server, '/v1/catalog/services', auth)).index, list2.index);
    // Deregistering the last instance moves the service's index; the answer is empty.
    const before = await get(server, '/v1/health/service/batch', auth);
    await put(server, '/v1/agent/service/deregister/batch-1', undefined, auth);
    const gone = await get(server, `/v1/health/service/batch?index=${before.index}&wait=5s`, auth);
    assert.deepEqual(gone.body, []);
    assert.ok(BigInt(gone.index!) > BigInt(before.index!));
  });

  it('indexes only grow across writes; a snapshot restore takes them back and wakes waiting queries', async () => {
    const snap = server.snapshot();
    const low = server.index();
    await register({ Name: 'web', ID: 'web-3', Port: 82 });
    const high = await get(server, '/v1/health/service/web', auth);
    assert.ok(Number(high.index) > low);
    const pending = get(server, `/v1/health/service/web?index=${high.index}&wait=30s`, auth);
    while (server.blockedQueries().length === 0) await new Promise((r) => setTimeout(r, 5));
    server.restore(snap);
    const woken = await pending;
    assert.ok(BigInt(woken.index!) < BigInt(high.index!), `index ${woken.index} after restore, ${high.index} before`);
    assert.equal((woken.body as unknown[]).length, 2, 'the restored state has web-1 and web-2 only');
  });

  it('rejects a bad index or wait (400) and answers 500 "No path to datacenter" for another dc', async () => {
    assert.equal((await get(server, '/v1/health/service/web?index=abc', auth)).status, 400);
    assert.equal((await get(server, '/v1/health/service/web?index=1&wait=soon', auth)).status, 400);
    const dc = await get(server, '/v1/catalog/services?dc=dc9', auth);
    assert.equal(dc.status, 500);
    assert.equal(dc.text, 'No path to datacenter');
    assert.equal((await get(server, '/v1/catalog/services?dc=dc1', auth)).status, 200);
  });

  it('keeps namespaces apart (ns parameter, X-Consul-Namespace header, body Namespace)', async () => {
    await register({ Name: 'billing', ID: 'billing-1', Port: 1, Namespace: 'team-1' });
    assert.ok(!Object.hasOwn((await get(server, '/v1/catalog/services', auth)).body as object, 'billing'));
    assert.deepEqual((await get(server, '/v1/catalog/services?ns=team-1', auth)).body, { billing: [] });
    assert.deepEqual((await get(server, '/v1/catalog/services', { ...auth, 'X-Consul-Namespace': 'team-1' })).body, { billing: [] });
    assert.equal(((await get(server, '/v1/health/service/billing', { ...auth, 'X-Consul-Namespace': 'team-1' })).body as unknown[]).length, 1);
    assert.deepEqual((await get(server, '/v1/health/service/billing', auth)).body, []);
  });

  it('stop() cuts waiting queries and refuses connections; start() serves the same state on the same port', async () => {
    const first = await get(server, '/v1/health/service/web', auth);
    const pending = get(server, `/v1/health/service/web?index=${first.index}&wait=30s`, auth).then(
      () => 'answered',
      () => 'failed',
    );
    while (server.blockedQueries().length === 0) await new Promise((r) => setTimeout(r, 5));
    const port = server.port;
    await server.stop();
    assert.equal(await pending, 'failed');
    await assert.rejects(get(server, '/v1/status/leader', auth));
    await server.start();
    assert.equal(server.port, port);
    const again = await get(server, '/v1/health/service/web', auth);
    assert.equal(again.index, first.index);
    assert.deepEqual(again.body, first.body);
  });

  it('answers injected faults: an HTTP 500, invalid JSON, a fixed index', async () => {
    const clear500 = server.injectFault({ path: '/v1/health/service/web', status: 500, body: 'rpc error making call: No cluster leader', times: 1 });
    const failed = await get(server, '/v1/health/service/web', auth);
    assert.equal(failed.status, 500);
    assert.equal(failed.text, 'rpc error making call: No cluster leader');
    assert.equal((await get(server, '/v1/health/service/web', auth)).status, 200, 'times: 1');
    clear500();
    server.injectFault({ path: '/v1/catalog/*', body: '{"web": [', contentType: 'application/json', times: 1 });
    const broken = await fetch(`${server.url}/v1/catalog/services`, { headers: auth });
    assert.equal(broken.status, 200);
    await assert.rejects(broken.json() as Promise<unknown>);
    server.injectFault({ path: '/v1/health/service/web', index: '0', times: 1 });
    const zero = await get(server, '/v1/health/service/web?index=999999&wait=30s', auth);
    assert.equal(zero.index, '0');
    assert.equal((zero.body as unknown[]).length, 2);
    server.clearFaults();
  });
});
