import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testCluster, testEndpoints, testListener, testRoute } from '../../../test/helpers/ads-client.js';
import { silentLogger } from '../../observability/logger.js';
import { TypeUrl } from '../protos/loader.js';
import type { DeltaWatchRequest, DeltaWatchResponse, VersionedResource, WatchResponse } from '../types.js';
import { createSnapshotCache, SnapshotInconsistentError, versionedResource, resourcesByType, type NodeSnapshot } from './index.js';

const NODE = 'sidecar~198.18.0.2~a.default~default.svc.cluster.local';

function snapshot(resources: VersionedResource[], references?: Record<string, string[]>): NodeSnapshot {
  return {
    resources: resourcesByType(resources),
    references: references ? new Map(Object.entries(references).map(([t, names]) => [t, new Set(names)])) : undefined,
  };
}

/** A mesh slice: clusters a and b with endpoints, a listener using route r pointing at a. */
function base(extra: VersionedResource[] = []): NodeSnapshot {
  return snapshot(
    [testCluster('a'), testCluster('b'), testEndpoints('a'), testEndpoints('b'), testListener('l1'), testRoute('r', 'a'), ...extra],
    { [TypeUrl.ClusterLoadAssignment]: ['a', 'b'], [TypeUrl.RouteConfiguration]: ['r'] },
  );
}

/** Records the answers of watches. */
function recorder(): { answers: WatchResponse[]; respond: (r: WatchResponse) => void } {
  const answers: WatchResponse[] = [];
  return { answers, respond: (r) => answers.push(r) };
}

void describe('snapshot cache', () => {
  void it('answers a wildcard CDS watch at once with every cluster, sorted, and parks it once the client has that version', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    cache.setSnapshot(NODE, base());
    const first = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: [], versionInfo: '' }, first.respond);
    assert.equal(first.answers.length, 1);
    const answer = first.answers[0] as WatchResponse;
    assert.deepEqual(answer.names, ['a', 'b']);
    assert.equal(answer.resources.length, 2);
    assert.ok(answer.resources.every((r) => r.typeUrl === TypeUrl.Cluster));
    assert.match(answer.versionInfo, /^[0-9a-f]{16}$/);

    const again = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: ['*'], versionInfo: answer.versionInfo }, again.respond);
    assert.equal(again.answers.length, 0, 'same version: the watch waits');
    assert.equal(cache.watchCount(NODE), 1);
  });

  void it('answers a named EDS watch with only the requested names that exist', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    cache.setSnapshot(NODE, base());
    const w = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['b', 'missing'], versionInfo: '' }, w.respond);
    assert.deepEqual(w.answers[0]?.names, ['b']);
    const star = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['*'], versionInfo: '' }, star.respond);
    assert.deepEqual(star.answers[0]?.names, [], '"*" is a wildcard only for LDS and CDS');
  });

  void it('fires a parked watch when its resources change, and only the watches whose subset changed', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    cache.setSnapshot(NODE, base());
    const versions = new Map<string, string>();
    for (const [typeUrl, names] of [
      [TypeUrl.Cluster, []],
      [TypeUrl.ClusterLoadAssignment, ['a']],
      [TypeUrl.Listener, []],
    ] as const) {
      cache.createWatch(NODE, { typeUrl, resourceNames: [...names], versionInfo: '' }, (r) => versions.set(typeUrl, r.versionInfo));
    }
    const cds = recorder();
    const edsA = recorder();
    const lds = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: [], versionInfo: versions.get(TypeUrl.Cluster) ?? '' }, cds.respond);
    cache.createWatch(NODE, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'], versionInfo: versions.get(TypeUrl.ClusterLoadAssignment) ?? '' }, edsA.respond);
    cache.createWatch(NODE, { typeUrl: TypeUrl.Listener, resourceNames: [], versionInfo: versions.get(TypeUrl.Listener) ?? '' }, lds.respond);

    // b's endpoints and a's cluster change; listeners do not.
    const next = snapshot([testCluster('a', 'v2'), testCluster('b'), testEndpoints('a'), testEndpoints('b', ['127.0.0.9']), testListener('l1'), testRoute('r', 'a')]);
    assert.equal(cache.setSnapshot(NODE, next), true);
    assert.equal(cds.answers.length, 1);
    assert.notEqual(cds.answers[0]?.versionInfo, versions.get(TypeUrl.Cluster));
    assert.deepEqual(cds.answers[0]?.names, ['a', 'b'], 'a SotW CDS answer carries every cluster, not only the changed one');
    assert.equal(edsA.answers.length, 0, "a change of b's endpoints does not concern a watch on a");
    assert.equal(lds.answers.length, 0);
    assert.equal(cache.watchCount(NODE), 2);
  });

  void it('answers a watch on a name that did not exist as soon as it appears', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    cache.setSnapshot(NODE, base());
    let version = '';
    cache.createWatch(NODE, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['c'], versionInfo: '' }, (r) => (version = r.versionInfo));
    const w = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['c'], versionInfo: version }, w.respond);
    assert.equal(w.answers.length, 0);
    cache.setSnapshot(NODE, base([testCluster('c'), testEndpoints('c')]));
    assert.deepEqual(w.answers[0]?.names, ['c']);
  });

  void it('publishes nothing for a snapshot with the same versions (new objects, same content)', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const original = base();
    cache.setSnapshot(NODE, original);
    let version = '';
    cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: [], versionInfo: '' }, (r) => (version = r.versionInfo));
    const w = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: [], versionInfo: version }, w.respond);
    assert.equal(cache.setSnapshot(NODE, base()), false);
    assert.equal(w.answers.length, 0);
    assert.equal(cache.getSnapshot(NODE), original, 'the published snapshot is still the first one');
  });

  void it('refuses an inconsistent snapshot, naming the type and resource, and keeps serving the previous one', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const good = base();
    cache.setSnapshot(NODE, good);
    let version = '';
    cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: [], versionInfo: '' }, (r) => (version = r.versionInfo));
    const w = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: [], versionInfo: version }, w.respond);

    // A new cluster c whose ClusterLoadAssignment is missing.
    const bad = snapshot([testCluster('a'), testCluster('c'), testEndpoints('a'), testListener('l1'), testRoute('r', 'a')], {
      [TypeUrl.ClusterLoadAssignment]: ['a', 'c'],
      [TypeUrl.RouteConfiguration]: ['r'],
    });
    assert.throws(
      () => cache.setSnapshot(NODE, bad),
      (err: unknown) => {
        assert.ok(err instanceof SnapshotInconsistentError);
        assert.equal(err.typeUrl, TypeUrl.ClusterLoadAssignment);
        assert.equal(err.resourceName, 'c');
        assert.match(err.message, /ClusterLoadAssignment "c" is referenced but missing/);
        assert.match(err.message, new RegExp(NODE.replace(/[.~]/g, '\\$&')));
        return true;
      },
    );
    assert.equal(cache.getSnapshot(NODE), good);
    assert.equal(w.answers.length, 0, 'nothing was pushed');

    const missingRoute = snapshot([testListener('l1')], { [TypeUrl.RouteConfiguration]: ['r2'] });
    assert.throws(() => cache.setSnapshot(NODE, missingRoute), /RouteConfiguration "r2" is referenced but missing/);
  });

  void it('refuses a resource filed under another type URL or name', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const misfiled: NodeSnapshot = { resources: new Map([[TypeUrl.Listener, new Map([['a', testCluster('a')]])]]) };
    assert.throws(() => cache.setSnapshot(NODE, misfiled), /Listener "a" has type type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster/);
    const renamed: NodeSnapshot = { resources: new Map([[TypeUrl.Cluster, new Map([['x', testCluster('a')]])]]) };
    assert.throws(() => cache.setSnapshot(NODE, renamed), /Cluster "x" is filed under a different name/);
    assert.equal(cache.getSnapshot(NODE), undefined);
    assert.throws(() => resourcesByType([testCluster('a'), testCluster('a', 'again')]), /duplicate resource name "a"/);
  });

  void it('parks watches of a node without a snapshot and answers them when the first snapshot arrives, in CDS, EDS, LDS, RDS order', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const order: string[] = [];
    for (const [typeUrl, names] of [
      [TypeUrl.RouteConfiguration, ['r']],
      [TypeUrl.Listener, []],
      [TypeUrl.ClusterLoadAssignment, ['a']],
      [TypeUrl.Cluster, []],
    ] as const) {
      cache.createWatch(NODE, { typeUrl, resourceNames: [...names], versionInfo: '' }, (r) => order.push(r.typeUrl));
    }
    assert.deepEqual(order, []);
    assert.deepEqual(cache.nodeIds(), []);
    cache.setSnapshot(NODE, base());
    assert.deepEqual(order, [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]);
    assert.deepEqual(cache.nodeIds(), [NODE]);
  });

  void it('cancels a parked watch, and clearNode forgets the snapshot', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const w = recorder();
    const cancel = cache.createWatch(NODE, { typeUrl: TypeUrl.Cluster, resourceNames: [], versionInfo: '' }, w.respond);
    assert.equal(cache.watchCount(), 1);
    cancel();
    cancel();
    assert.equal(cache.watchCount(), 0);
    cache.setSnapshot(NODE, base());
    assert.equal(w.answers.length, 0, 'a cancelled watch is never answered');
    cache.clearNode(NODE);
    assert.equal(cache.getSnapshot(NODE), undefined);
    assert.deepEqual(cache.nodeIds(), []);
  });

  void it('gives equal content the same version on every node and cache (content hash)', () => {
    const one = createSnapshotCache({ logger: silentLogger() });
    const two = createSnapshotCache({ logger: silentLogger() });
    one.setSnapshot('n1', base());
    two.setSnapshot('n2', base());
    const v: string[] = [];
    one.createWatch('n1', { typeUrl: TypeUrl.Listener, resourceNames: [], versionInfo: '' }, (r) => v.push(r.versionInfo));
    two.createWatch('n2', { typeUrl: TypeUrl.Listener, resourceNames: [], versionInfo: '' }, (r) => v.push(r.versionInfo));
    assert.equal(v.length, 2);
    assert.equal(v[0], v[1]);
    assert.equal(versionedResource('x', testListener('x').resource).version, testListener('x').version);
    assert.notEqual(testListener('x', 1).version, testListener('x', 2).version);
  });
});

void describe('snapshot cache: delta watches', () => {
  const delta = (over: Partial<DeltaWatchRequest>): DeltaWatchRequest => ({
    typeUrl: TypeUrl.Cluster,
    wildcard: false,
    subscribed: [],
    known: new Map(),
    forced: [],
    alwaysRespond: false,
    ...over,
  });
  const names = (r: DeltaWatchResponse | undefined) => r?.resources.map((x) => x.name);

  void it('a wildcard watch gets what the client does not hold at its version, and held names that are gone as removed', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    cache.setSnapshot(NODE, base());
    const answers: DeltaWatchResponse[] = [];
    const known = new Map([['a', testCluster('a').version], ['b', 'old'], ['gone', 'x']]);
    cache.createDeltaWatch(NODE, delta({ wildcard: true, known }), (r) => answers.push(r));
    assert.deepEqual(names(answers[0]), ['b']);
    assert.deepEqual(answers[0]?.removed, ['gone']);
    assert.match(answers[0]?.systemVersionInfo ?? '', /^[0-9a-f]{16}$/);
  });

  void it('parks when nothing differs, unless alwaysRespond; fires on the change that concerns it only', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    cache.setSnapshot(NODE, base());
    const known = new Map([['a', testEndpoints('a').version]]);
    const parked: DeltaWatchResponse[] = [];
    cache.createDeltaWatch(NODE, delta({ typeUrl: TypeUrl.ClusterLoadAssignment, subscribed: ['a'], known }), (r) => parked.push(r));
    assert.equal(parked.length, 0);
    const empty: DeltaWatchResponse[] = [];
    cache.createDeltaWatch(NODE, delta({ typeUrl: TypeUrl.ClusterLoadAssignment, subscribed: ['a'], known, alwaysRespond: true }), (r) => empty.push(r));
    assert.deepEqual(names(empty[0]), []);
    assert.deepEqual(empty[0]?.removed, []);
    cache.setSnapshot(NODE, snapshot([testCluster('a'), testCluster('b'), testEndpoints('a'), testEndpoints('b', ['127.0.0.9']), testListener('l1'), testRoute('r', 'a')]));
    assert.equal(parked.length, 0, "b's endpoints changed, a's did not");
    cache.setSnapshot(NODE, snapshot([testCluster('a'), testCluster('b'), testEndpoints('a', ['127.0.0.8']), testEndpoints('b', ['127.0.0.9']), testListener('l1'), testRoute('r', 'a')]));
    assert.deepEqual(names(parked[0]), ['a']);
  });

  void it('forced names are answered although held, and missing forced names are removed; aliases resolve', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const aliased = { ...testCluster('uid-1'), aliases: ['net/10.0.0.1'] };
    cache.setSnapshot(NODE, { resources: resourcesByType([aliased, testCluster('b')]) });
    const answers: DeltaWatchResponse[] = [];
    cache.createDeltaWatch(NODE, delta({ subscribed: ['b', 'net/10.0.0.1', 'nope'], forced: ['b', 'net/10.0.0.1', 'nope'], known: new Map([['b', testCluster('b').version]]) }), (r) => answers.push(r));
    assert.deepEqual(names(answers[0]), ['b', 'uid-1']);
    assert.deepEqual(answers[0]?.resources[1]?.aliases, ['net/10.0.0.1']);
    assert.deepEqual(answers[0]?.removed, ['nope']);
  });

  void it('a watch parked before the node has a snapshot answers its first request when one arrives, even if empty', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const answers: DeltaWatchResponse[] = [];
    cache.createDeltaWatch(NODE, delta({ typeUrl: TypeUrl.Address, wildcard: true, alwaysRespond: true }), (r) => answers.push(r));
    assert.equal(answers.length, 0);
    cache.setSnapshot(NODE, base());
    assert.equal(answers.length, 1);
    assert.deepEqual(answers[0]?.resources, []);
  });
});

describe('named answers shared between nodes', () => {
  it('a node asking for one name made of others joined by a newline does not change what another node with the same map gets', () => {
    const cache = createSnapshotCache({ logger: silentLogger() });
    const shared = base();
    const other = 'sidecar~198.18.0.3~b.default~default.svc.cluster.local';
    // Both nodes hold the same type maps (as proxies sharing an outbound part do).
    cache.setSnapshot(NODE, shared);
    cache.setSnapshot(other, shared);
    const crafted = recorder();
    cache.createWatch(NODE, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a\nb'], versionInfo: '' }, crafted.respond);
    assert.deepEqual(crafted.answers[0]?.names, []);
    const honest = recorder();
    cache.createWatch(other, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a', 'b'], versionInfo: '' }, honest.respond);
    assert.deepEqual(honest.answers[0]?.names, ['a', 'b']);
  });
});
