import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSnapshot } from '../../registry/snapshot.js';
import { serviceEndpoints, visibleServices } from '../../push/services.js';
import { isHealthy, type MeshResource, type WorkloadEntry } from '../../resources/types.js';
import type { HealthServiceEntry } from './api.js';
import { DEFAULT_MAPPING, hostTemplateProblem, instanceHealth, mapConsulService, workloadEntryName, type ConsulMapping } from './mapping.js';

interface EntrySpec {
  id: string;
  node?: string;
  nodeAddress?: string;
  dc?: string;
  nodeMeta?: Record<string, string>;
  service?: string;
  address?: string;
  port?: number;
  tags?: string[];
  meta?: Record<string, string>;
  checks?: { id: string; status: string; notes?: string; node?: boolean }[];
  weights?: { Passing: number; Warning: number };
}

/** A `/v1/health/service/<name>` entry in Consul's shape. */
function entry(s: EntrySpec): HealthServiceEntry {
  const node = s.node ?? `node-${s.id}`;
  return {
    Node: { ID: '00000000-0000-0000-0000-000000000000', Node: node, Address: s.nodeAddress ?? '10.0.0.1', Datacenter: s.dc ?? 'dc1', Meta: s.nodeMeta ?? {} },
    Service: {
      ID: s.id,
      Service: s.service ?? 'web',
      Tags: s.tags ?? [],
      Address: s.address ?? '',
      Meta: s.meta ?? {},
      Port: s.port ?? 8080,
      Weights: s.weights ?? { Passing: 1, Warning: 1 },
      Namespace: 'default',
    },
    Checks: (s.checks ?? [{ id: `service:${s.id}`, status: 'passing' }]).map((c) => ({
      Node: node,
      CheckID: c.id,
      Name: c.id === 'serfHealth' ? 'Serf Health Status' : `check ${c.id}`,
      Status: c.status,
      Notes: c.notes ?? '',
      Output: 'output that changes every run',
      ServiceID: c.node ? '' : s.id,
    })),
  };
}

const m = (over: Partial<ConsulMapping> = {}): ConsulMapping => ({ ...DEFAULT_MAPPING, ...over });

function onlyWe(out: ReturnType<typeof mapConsulService>): WorkloadEntry {
  assert.equal(out.workloadEntries.length, 1, JSON.stringify(out.problems));
  return out.workloadEntries[0]!;
}

describe('Consul mapping: a service and its instances become a ServiceEntry and WorkloadEntries', () => {
  it('maps the default case: host web.service.consul, TCP port from the instance, namespace and SA default, source labels', () => {
    const out = mapConsulService('web', [entry({ id: 'web-1', address: '10.0.0.5', port: 8080 })], m());
    assert.deepEqual(out.problems, []);
    assert.equal(out.serviceEntries.length, 1);
    const se = out.serviceEntries[0]!;
    assert.deepEqual(se.metadata, { name: 'consul-web', namespace: 'default', labels: { 'skiff.dev/consul-service': 'web', 'skiff.dev/source': 'consul' } });
    assert.deepEqual(se.spec, {
      hosts: ['web.service.consul'],
      ports: [{ number: 8080, protocol: 'TCP', name: 'tcp' }],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      workloadSelector: { labels: { 'skiff.dev/consul-service': 'web', 'skiff.dev/source': 'consul' } },
    });
    assert.deepEqual(se.origin, { source: 'consul' });
    const we = onlyWe(out);
    assert.equal(we.metadata.name, workloadEntryName('web', 'node-web-1', 'web-1'));
    assert.match(we.metadata.name, /^web-[0-9a-f]{10}$/);
    assert.deepEqual(we.metadata.labels, { 'skiff.dev/consul-service': 'web', 'skiff.dev/source': 'consul' });
    assert.deepEqual(we.metadata.annotations, { 'skiff.dev/consul-node': 'node-web-1', 'skiff.dev/consul-service-id': 'web-1' });
    assert.deepEqual(we.spec, { address: '10.0.0.5', ports: { tcp: 8080 }, locality: 'dc1', serviceAccount: 'default' });
    assert.deepEqual(we.status?.conditions, [{ type: 'Healthy', status: 'True', reason: 'Passing', message: 'all Consul checks are passing' }]);
    assert.deepEqual(out.counts, { mapped: 1, skipped: 0, filtered: 0 });
  });

  it('uses the node address when the instance has none (Consul: "if empty, node address should be used")', () => {
    const we = onlyWe(mapConsulService('web', [entry({ id: 'web-1', nodeAddress: '192.0.2.7' })], m()));
    assert.equal(we.spec.address, '192.0.2.7');
  });

  it('labels: key=value tags and non-skiff meta that are valid Kubernetes labels; meta wins over a tag; other tags are just tags', () => {
    const we = onlyWe(
      mapConsulService('web', [entry({ id: 'web-1', tags: ['version=v2', 'team=a', 'primary', 'traefik.http.routers.x.rule=Host(`a`)', '=x'], meta: { team: 'b', env: 'prod', 'skiff-protocol': 'http', bad_key_: 'x' } })], m()),
    );
    assert.deepEqual(we.spec.labels, { env: 'prod', team: 'b', version: 'v2' });
  });

  it('ports: skiff-protocol names the port after the protocol; skiff-port-name and skiff-service-port override', () => {
    const http = mapConsulService('web', [entry({ id: 'web-1', meta: { 'skiff-protocol': 'http' } })], m());
    assert.deepEqual(http.serviceEntries[0]!.spec.ports, [{ number: 8080, protocol: 'HTTP', name: 'http' }]);
    assert.deepEqual(onlyWe(http).spec.ports, { http: 8080 });
    const grpc = mapConsulService('api', [entry({ id: 'api-1', service: 'api', port: 31007, meta: { 'skiff-protocol': 'GRPC', 'skiff-port-name': 'grpc-api', 'skiff-service-port': '9000' } })], m());
    assert.deepEqual(grpc.serviceEntries[0]!.spec.ports, [{ number: 9000, protocol: 'GRPC', name: 'grpc-api' }]);
    assert.deepEqual(onlyWe(grpc).spec.ports, { 'grpc-api': 31007 }, 'clients dial 9000, the instance listens on 31007');
  });

  it('ports: instances on different ports without skiff-service-port share the first one and keep their own workload port', () => {
    const out = mapConsulService('web', [entry({ id: 'web-1', port: 8080, meta: { 'skiff-protocol': 'http' } }), entry({ id: 'web-2', port: 9090, meta: { 'skiff-protocol': 'http' } })], m());
    assert.deepEqual(out.serviceEntries[0]!.spec.ports, [{ number: 8080, protocol: 'HTTP', name: 'http' }]);
    assert.deepEqual(
      out.workloadEntries.map((w) => w.spec.ports).sort((a, b) => a!['http']! - b!['http']!),
      [{ http: 8080 }, { http: 9090 }],
    );
    assert.equal(out.problems.length, 1);
    assert.match(out.problems[0]!, /instance "web-2" on node "node-web-2": port http is 9090 here but 8080 for instance "web-1".*using 8080 \(set meta skiff-service-port to choose\)/);
  });

  it('ports: a protocol disagreement on one port keeps the first definition and says so', () => {
    const out = mapConsulService('web', [entry({ id: 'a', address: '10.0.0.1', meta: { 'skiff-protocol': 'http' } }), entry({ id: 'b', address: '10.0.0.2', meta: { 'skiff-protocol': 'tcp' } })], m());
    assert.deepEqual(out.serviceEntries[0]!.spec.ports, [{ number: 8080, protocol: 'HTTP', name: 'http' }]);
    assert.deepEqual(out.workloadEntries.map((w) => w.spec.ports), [{ http: 8080 }, { http: 8080 }]);
    assert.match(out.problems.join('\n'), /instance "b" on node "node-b": port 8080 is named tcp \(TCP\) here but http \(HTTP\) for instance "a"/);
  });

  it('namespace and service account from meta, else the configured defaults', () => {
    const out = mapConsulService('web', [entry({ id: 'web-1', meta: { 'skiff-namespace': 'shop', 'skiff-service-account': 'web-sa' } })], m({ defaultNamespace: 'fleet', defaultServiceAccount: 'vm' }));
    assert.equal(out.serviceEntries[0]!.metadata.namespace, 'shop');
    const we = onlyWe(out);
    assert.equal(we.metadata.namespace, 'shop');
    assert.equal(we.spec.serviceAccount, 'web-sa');
    const byDefault = onlyWe(mapConsulService('web', [entry({ id: 'web-1' })], m({ defaultNamespace: 'fleet', defaultServiceAccount: 'vm' })));
    assert.equal(byDefault.metadata.namespace, 'fleet');
    assert.equal(byDefault.spec.serviceAccount, 'vm');
  });

  it('instances in two namespaces: one ServiceEntry per namespace with the same host, and a note', () => {
    const out = mapConsulService('web', [entry({ id: 'a', meta: { 'skiff-namespace': 'blue' } }), entry({ id: 'b', meta: { 'skiff-namespace': 'green' } })], m());
    assert.deepEqual(out.serviceEntries.map((s) => `${s.metadata.namespace}/${s.metadata.name} ${s.spec.hosts.join()}`), ['blue/consul-web web.service.consul', 'green/consul-web web.service.consul']);
    assert.deepEqual(out.workloadEntries.map((w) => w.metadata.namespace), ['blue', 'green']);
    assert.match(out.problems.join('\n'), /instances are in several namespaces \(blue, green\)/);
  });

  it('locality: region from the datacenter unless skiff-region; zone and subzone from node meta, else service meta', () => {
    assert.equal(onlyWe(mapConsulService('web', [entry({ id: 'a', dc: 'eu-dc' })], m())).spec.locality, 'eu-dc');
    assert.equal(onlyWe(mapConsulService('web', [entry({ id: 'a', nodeMeta: { 'skiff-region': 'eu-west', 'skiff-zone': 'eu-west-1a' }, meta: { 'skiff-zone': 'ignored', 'skiff-subzone': 'rack7' } })], m())).spec.locality, 'eu-west/eu-west-1a/rack7');
    const bad = mapConsulService('web', [entry({ id: 'a', nodeMeta: { 'skiff-zone': 'a/b' } })], m());
    assert.equal(bad.workloadEntries.length, 0);
    assert.match(bad.problems[0]!, /locality part "a\/b" contains "\/".*instance skipped/);
  });

  it('health: passing, warning (healthy by default, configurable), critical, maintenance of the service or the node', () => {
    const cond = (checks: EntrySpec['checks'], warningIsHealthy = true) => onlyWe(mapConsulService('web', [entry({ id: 'a', checks })], m({ warningIsHealthy }))).status!.conditions![0]!;
    assert.equal(cond([]).status, 'True');
    assert.equal(cond([]).message, 'no Consul checks');
    assert.deepEqual(cond([{ id: 'service:a', status: 'warning' }]), { type: 'Healthy', status: 'True', reason: 'Warning', message: 'Consul checks: service:a (check service:a) is warning' });
    assert.equal(cond([{ id: 'service:a', status: 'warning' }], false).status, 'False');
    assert.deepEqual(cond([{ id: 'service:a', status: 'passing' }, { id: 'serfHealth', status: 'critical', node: true }]), {
      type: 'Healthy',
      status: 'False',
      reason: 'Critical',
      message: 'Consul checks: serfHealth (Serf Health Status) is critical',
    });
    assert.deepEqual(cond([{ id: '_service_maintenance:a', status: 'critical', notes: 'kernel upgrade' }]), { type: 'Healthy', status: 'False', reason: 'Maintenance', message: 'service in maintenance mode: kernel upgrade' });
    assert.equal(cond([{ id: '_node_maintenance', status: 'critical', node: true }]).reason, 'Maintenance');
    // Output is left out, so a check that only changes its output maps to the same resource.
    assert.doesNotMatch(JSON.stringify(cond([{ id: 'service:a', status: 'critical' }])), /output/);
  });

  it('health decides EDS membership: critical and maintenance instances leave the endpoints, the others stay', () => {
    const out = mapConsulService(
      'web',
      [
        entry({ id: 'ok', address: '10.0.0.1', meta: { 'skiff-protocol': 'http' } }),
        entry({ id: 'warn', address: '10.0.0.2', meta: { 'skiff-protocol': 'http' }, checks: [{ id: 'c', status: 'warning' }] }),
        entry({ id: 'crit', address: '10.0.0.3', meta: { 'skiff-protocol': 'http' }, checks: [{ id: 'c', status: 'critical' }] }),
        entry({ id: 'maint', address: '10.0.0.4', meta: { 'skiff-protocol': 'http' }, checks: [{ id: '_service_maintenance:maint', status: 'critical' }] }),
      ],
      m(),
    );
    const resources: MeshResource[] = [...out.serviceEntries, ...out.workloadEntries];
    assert.deepEqual(out.workloadEntries.filter(isHealthy).map((w) => w.spec.address).sort(), ['10.0.0.1', '10.0.0.2']);
    const snapshot = buildSnapshot(1, structuredClone(resources));
    const [svc] = visibleServices(snapshot, 'default', () => {});
    assert.equal(svc?.host, 'web.service.consul');
    const eps = serviceEndpoints(snapshot, svc, svc.ports[0]!, 'cluster.local', () => {});
    assert.deepEqual(eps.map((e) => `${e.ip}:${e.port}`).sort(), ['10.0.0.1:8080', '10.0.0.2:8080']);
    assert.ok(eps.every((e) => e.spiffeId === 'spiffe://cluster.local/ns/default/sa/default'));
  });

  it('weights: Passing weight when passing, Warning weight when warning; a zero weight takes the instance out', () => {
    assert.equal(onlyWe(mapConsulService('web', [entry({ id: 'a', weights: { Passing: 10, Warning: 1 } })], m())).spec.weight, 10);
    assert.equal(onlyWe(mapConsulService('web', [entry({ id: 'a', weights: { Passing: 10, Warning: 3 }, checks: [{ id: 'c', status: 'warning' }] })], m())).spec.weight, 3);
    const zero = onlyWe(mapConsulService('web', [entry({ id: 'a', weights: { Passing: 10, Warning: 0 }, checks: [{ id: 'c', status: 'warning' }] })], m()));
    assert.equal(zero.status?.conditions?.[0]?.status, 'False');
  });

  it('tag filter: only instances carrying every configured tag', () => {
    const out = mapConsulService('web', [entry({ id: 'a', tags: ['mesh', 'prod'] }), entry({ id: 'b', tags: ['mesh'] }), entry({ id: 'c', tags: [] })], m({ tags: ['mesh', 'prod'] }));
    assert.deepEqual(out.workloadEntries.map((w) => w.metadata.annotations?.['skiff.dev/consul-service-id']), ['a']);
    assert.deepEqual(out.counts, { mapped: 1, skipped: 0, filtered: 2 });
    assert.deepEqual(out.problems, []);
  });

  it('host template: {service}, {datacenter} and {namespace}, lower-cased; a template that cannot make a host is refused', () => {
    const out = mapConsulService('web', [entry({ id: 'a', meta: { 'skiff-namespace': 'shop' } })], m({ hostTemplate: '{service}.{namespace}.{datacenter}.Corp.example' }), 'DC2');
    assert.deepEqual(out.serviceEntries[0]!.spec.hosts, ['web.shop.dc2.corp.example']);
    assert.equal(hostTemplateProblem('{service}.service.consul'), undefined);
    assert.match(hostTemplateProblem('{svc}.consul') ?? '', /unknown placeholder \{svc\}/);
    assert.match(hostTemplateProblem('web.consul') ?? '', /must contain \{service\}/);
    assert.match(hostTemplateProblem('{service}..consul') ?? '', /does not make a valid host/);
  });

  it('the same content in any order maps to equal resources (no spurious pushes)', () => {
    const entries = [entry({ id: 'a', tags: ['x=1'], meta: { b: '2', a: '1' } }), entry({ id: 'b', address: '10.0.0.9' }), entry({ id: 'c', node: 'n0' })];
    const one = mapConsulService('web', entries, m());
    const two = mapConsulService('web', [...entries].reverse(), m());
    assert.equal(JSON.stringify(two), JSON.stringify(one));
  });
});

describe('Consul mapping: bad input skips the bad instance, not the service', () => {
  const good = entry({ id: 'good', address: '10.0.0.1', meta: { 'skiff-protocol': 'http' } });

  it('skiff-protocol=bogus: the instance is skipped with a line naming service, instance, node, key and value', () => {
    const out = mapConsulService('web', [good, entry({ id: 'bad', node: 'vm-7', address: '10.0.0.2', meta: { 'skiff-protocol': 'bogus' } })], m());
    assert.deepEqual(out.workloadEntries.map((w) => w.spec.address), ['10.0.0.1']);
    assert.equal(out.serviceEntries.length, 1);
    assert.deepEqual(out.problems, [
      'consul service "web": instance "bad" on node "vm-7": meta skiff-protocol="bogus" is not a protocol (expected one of HTTP|HTTPS|HTTP2|GRPC|GRPC-Web|HTTP_PROXY|TCP|TLS|UDP|Mongo|Redis|MySQL, any case): instance skipped',
    ]);
    assert.deepEqual(out.counts, { mapped: 1, skipped: 1, filtered: 0 });
  });

  it('a port meta that is not a number: skipped, the rest served', () => {
    const out = mapConsulService('web', [good, entry({ id: 'bad', address: '10.0.0.2', meta: { 'skiff-service-port': 'eighty' } })], m());
    assert.deepEqual(out.workloadEntries.map((w) => w.spec.address), ['10.0.0.1']);
    assert.match(out.problems[0]!, /instance "bad" on node "node-bad": meta skiff-service-port="eighty" is not a port number 1-65535: instance skipped/);
    assert.match(mapConsulService('web', [entry({ id: 'x', meta: { 'skiff-service-port': '70000' } })], m()).problems[0]!, /is not a port number/);
  });

  it('no usable address or port, an invalid port name, namespace or service account: each skips only its instance', () => {
    const out = mapConsulService(
      'web',
      [
        good,
        entry({ id: 'host', address: 'web.internal' }),
        entry({ id: 'noport', address: '10.0.0.3', port: 0 }),
        entry({ id: 'pname', address: '10.0.0.4', meta: { 'skiff-port-name': 'not_a_label' } }),
        entry({ id: 'ns', address: '10.0.0.5', meta: { 'skiff-namespace': 'Shop' } }),
        entry({ id: 'sa', address: '10.0.0.6', meta: { 'skiff-service-account': 'a/b' } }),
      ],
      m(),
    );
    assert.deepEqual(out.workloadEntries.map((w) => w.spec.address), ['10.0.0.1']);
    const text = out.problems.join('\n');
    assert.match(text, /instance "host" .*address "web.internal" \(Service.Address\) is not an IP address/);
    assert.match(text, /instance "noport" .*Port 0 is not a port number/);
    assert.match(text, /instance "pname" .*skiff-port-name="not_a_label" is not a valid port name/);
    assert.match(text, /instance "ns" .*namespace "Shop" \(meta skiff-namespace\) is not a lower-case DNS label/);
    assert.match(text, /instance "sa" .*service account "a\/b" \(meta skiff-service-account\) is not a lower-case DNS-1123 subdomain/);
    assert.equal(out.counts.skipped, 5);
  });

  it('two instances on one address and port: the second is skipped (one endpoint each)', () => {
    const out = mapConsulService('web', [good, entry({ id: 'twin', node: 'zz', address: '10.0.0.1', meta: { 'skiff-protocol': 'http' } })], m());
    assert.equal(out.workloadEntries.length, 1);
    assert.match(out.problems[0]!, /instance "twin" on node "zz": 10.0.0.1:8080 is already served by instance "good"/);
  });

  it('a service name that is not a valid host label yields nothing and one line', () => {
    for (const name of ['Web_API', 'web.api', 'UPPER', '-web']) {
      const out = mapConsulService(name, [entry({ id: 'a', service: name })], m());
      assert.deepEqual(out.serviceEntries, []);
      assert.deepEqual(out.workloadEntries, []);
      assert.equal(out.problems.length, 1);
      assert.match(out.problems[0]!, new RegExp(`consul service ${JSON.stringify(name).replace(/[.]/g, '\\.')}: service name .* is not a valid host label .*: service skipped`));
    }
  });

  it('instanceHealth counts an unknown status as critical', () => {
    assert.equal(instanceHealth([{ CheckID: 'x', Status: 'confused' }], true).status, 'False');
  });
});
