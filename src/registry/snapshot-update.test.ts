import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deepEqual, sameResource } from '../resources/equal.js';
import type { DestinationRule, GRPCRoute, HTTPRoute, VirtualService } from '../resources/traffic-types.js';
import { resourceKey, type AuthorizationPolicy, type MeshResource, type PeerAuthentication, type ServiceEntry, type Sidecar, type WorkloadEntry, type WorkloadGroup } from '../resources/types.js';
import { createRegistry } from './registry.js';
import { buildSnapshot } from './snapshot.js';
import { updateSnapshot } from './snapshot-update.js';
import { withConditions, type StatusOverlay } from './status-overlay.js';
import type { MeshSnapshot } from './types.js';
import { silentLogger } from '../observability/logger.js';

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMESPACES = ['ns-a', 'ns-b', 'skiff-system'];
const APPS = ['web', 'api', 'db', 'cache'];

/** Random resources of every kind the snapshot indexes, from a small pool of names so changes collide. */
function generator(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const ns = () => pick(NAMESPACES);
  const name = (prefix: string) => `${prefix}-${Math.floor(rand() * 12)}`;
  const ts = () => (rand() < 0.3 ? {} : { creationTimestamp: `2024-0${1 + Math.floor(rand() * 3)}-01T00:00:00Z` });
  const meta = (prefix: string) => ({ name: name(prefix), namespace: ns(), ...ts() });
  const labels = (): Record<string, string> => {
    const out: Record<string, string> = {};
    if (rand() < 0.8) out.app = pick(APPS);
    if (rand() < 0.4) out.version = pick(['v1', 'v2']);
    return out;
  };
  const kinds: Array<() => MeshResource> = [
    (): WorkloadEntry => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { ...meta('we'), ...(rand() < 0.2 ? { labels: { version: pick(['v1', 'v2', 'v3']) } } : {}) },
      spec: { ...(rand() < 0.9 ? { address: `10.0.0.${Math.floor(rand() * 8)}` } : {}), labels: labels(), ports: { http: 8080 } },
    }),
    (): WorkloadEntry => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: meta('we'),
      spec: { address: `10.1.0.${Math.floor(rand() * 8)}`, labels: labels() },
    }),
    (): ServiceEntry => {
      const r = rand();
      return {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: meta('se'),
        spec: {
          hosts: [`${pick(APPS)}.example.com`, ...(rand() < 0.3 ? [`${pick(APPS)}.internal`] : [])],
          ports: [{ name: 'http', number: 80, protocol: 'HTTP' }],
          ...(r < 0.6 ? { workloadSelector: { labels: labels() } } : r < 0.7 ? { workloadSelector: {} } : {}),
        },
      };
    },
    (): Sidecar => ({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: meta('sc'), spec: { egress: [{ hosts: [`./${pick(APPS)}.example.com`] }] } }),
    (): PeerAuthentication => ({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: meta('pa'), spec: { mtls: { mode: pick(['STRICT', 'PERMISSIVE'] as const) } } }),
    (): AuthorizationPolicy => ({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta('ap'), spec: { action: 'ALLOW', rules: [{ from: [{ source: { namespaces: [ns()] } }] }] } }),
    (): WorkloadGroup => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadGroup', metadata: meta('wg'), spec: { metadata: { labels: labels() }, template: { serviceAccount: 'sa' } } }),
    (): DestinationRule => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: meta('dr'), spec: { host: rand() < 0.5 ? pick(APPS) : `${pick(APPS)}.example.com` } }),
    (): VirtualService => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: meta('vs'),
      spec: { hosts: [pick(APPS), `${pick(APPS)}.example.com`], http: [{ route: [{ destination: { host: pick(APPS) } }] }] },
    }),
    (): HTTPRoute => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: meta('hr'),
      spec: { parentRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: name('se') }, { group: 'networking.istio.io', kind: 'Hostname', name: `${pick(APPS)}.example.com` }] },
    }),
    (): GRPCRoute => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: meta('gr'), spec: { parentRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: name('se') }] } }),
  ];
  return (): MeshResource => pick(kinds)();
}

function isMap(value: unknown): value is ReadonlyMap<string, unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { get?: unknown }).get === 'function' && typeof (value as { entries?: unknown }).entries === 'function';
}

/** Every field of a snapshot in comparable form: resources as keys (content checked through `byKey`), maps as sorted entries. */
function comparable(s: MeshSnapshot): Record<string, unknown> {
  const keyOf = (v: unknown): unknown => (Array.isArray(v) ? v.map((r) => resourceKey(r as MeshResource)) : resourceKey(v as MeshResource));
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(s)) {
    if (field === 'byKey') {
      const byKey = value as ReadonlyMap<string, MeshResource>;
      out.byKey = [...byKey.keys()];
      out.byKeyEntries = [...byKey.entries()].map(([k, r]) => [k, resourceKey(r)]);
      out.byKeySize = byKey.size;
      for (const [k, r] of byKey) assert.ok(byKey.has(k) && byKey.get(k) === r);
    }
    else if (isMap(value)) {
      // Lookups agree with iteration, and the size with both.
      const entries = [...value.entries()];
      for (const [k, v] of entries) assert.ok(value.has(k) && value.get(k) === v);
      assert.equal(value.size, entries.length);
      out[field] = entries.map(([k, v]) => [k, keyOf(v)]).sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1));
    }
    else if (Array.isArray(value)) out[field] = keyOf(value);
    else out[field] = value;
  }
  return out;
}

/** Asserts that `incremental` holds what a full build of the same resources holds. */
function assertSameAsFullBuild(incremental: MeshSnapshot, context: string): void {
  const full = buildSnapshot(
    incremental.version,
    incremental.resources.map((r) => structuredClone(r)),
  );
  assert.deepEqual(comparable(incremental), comparable(full), context);
  for (const [key, r] of full.byKey) assert.ok(deepEqual(incremental.byKey.get(key), r), `${context}: content of ${key}`);
  // Every list is the snapshot's own object (identity shared across indexes).
  for (const we of incremental.workloadEntries) assert.equal(incremental.byKey.get(resourceKey(we)), we, context);
}

void describe('updateSnapshot', () => {
  void it('holds the same lists, indexes and selections as a full build after random changes of every kind', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = prng(seed);
      const make = generator(rand);
      const initial = new Map<string, MeshResource>();
      for (let i = 0; i < 120; i++) {
        const r = make();
        initial.set(resourceKey(r), r);
      }
      let snapshot = buildSnapshot(1, [...initial.values()]);
      for (let step = 0; step < 25; step++) {
        const removed = new Set<string>();
        const upserted = new Map<string, MeshResource>();
        const changes = 1 + Math.floor(rand() * (step % 5 === 4 ? 40 : 4));
        for (let c = 0; c < changes; c++) {
          const existing = snapshot.resources;
          if (rand() < 0.3 && existing.length > 0) {
            const key = resourceKey(existing[Math.floor(rand() * existing.length)]!);
            if (!upserted.has(key)) removed.add(key);
          } else {
            // New keys and replacements of existing keys (the pool of names is small).
            const r = make();
            const key = resourceKey(r);
            if (!removed.has(key)) upserted.set(key, r);
          }
        }
        snapshot = updateSnapshot(snapshot, snapshot.version + 1, { removed, upserted: upserted.values() });
        assertSameAsFullBuild(snapshot, `seed ${seed} step ${step}`);
      }
    }
  });

  void it('keeps unchanged objects and indexes, and freezes what it makes', () => {
    const rand = prng(7);
    const make = generator(rand);
    const resources: MeshResource[] = [];
    for (let i = 0; i < 60; i++) resources.push(make());
    const before = buildSnapshot(1, [...new Map(resources.map((r) => [resourceKey(r), r])).values()]);
    const added: WorkloadEntry = { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'new', namespace: 'ns-a' }, spec: { address: '10.9.9.9', labels: { app: 'web' } } };
    const after = updateSnapshot(before, 2, { removed: [], upserted: [added] });
    assert.equal(after.version, 2);
    assert.equal(after.sidecars, before.sidecars);
    assert.equal(after.destinationRulesByHost, before.destinationRulesByHost);
    assert.equal(after.byKey.get('WorkloadEntry/ns-a/new'), added);
    assert.ok(Object.isFrozen(added) && Object.isFrozen(added.spec.labels));
    assert.ok(Object.isFrozen(after.workloadEntries) && Object.isFrozen(after.resources));
    assert.throws(() => (after.workloadsByName as Map<string, WorkloadEntry>).set('x', added), /immutable/);
    for (const r of before.resources) if (after.byKey.has(resourceKey(r))) assert.equal(after.byKey.get(resourceKey(r)), r);
    assertSameAsFullBuild(after, 'one WorkloadEntry added');
  });

  void it('rejects a key upserted twice or both upserted and removed', () => {
    const we = (address: string): WorkloadEntry => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'a', namespace: 'ns-a' }, spec: { address } });
    const base = buildSnapshot(1, [we('10.0.0.1')]);
    assert.throws(() => updateSnapshot(base, 2, { removed: [], upserted: [we('10.0.0.2'), we('10.0.0.3')] }), /upserted twice/);
    assert.throws(() => updateSnapshot(base, 2, { removed: ['WorkloadEntry/ns-a/a'], upserted: [we('10.0.0.2')] }), /both removed and upserted/);
  });
});

void describe('registry publishes incrementally', () => {
  void it('publishes, after each change through sources and overlays, what a full build of the merged resources holds', () => {
    const rand = prng(99);
    const make = generator(rand);
    const registry = createRegistry({ logger: silentLogger() });
    const sourceSets: Record<string, Map<string, MeshResource>> = { file: new Map(), api: new Map() };
    for (let i = 0; i < 300; i++) {
      const r = make();
      sourceSets[rand() < 0.5 ? 'file' : 'api']!.set(resourceKey(r), r);
    }
    for (const [name, set] of Object.entries(sourceSets)) registry.setSource(name, [...set.values()]);
    registry.flush();
    let overlay: StatusOverlay = new Map();
    for (let step = 0; step < 60; step++) {
      const name = rand() < 0.5 ? 'file' : 'api';
      const set = sourceSets[name]!;
      // Each source hands in the same objects again for what it did not change, as the sources do.
      const next = new Map(set);
      const keys = [...next.keys()];
      // Now and then a change large enough (over 256 keys) for the registry to build the snapshot from scratch.
      if (step % 20 === 10) {
        for (let c = 0; c < 300; c++) {
          const bulk: WorkloadEntry = { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `bulk-${step}-${c}`, namespace: 'ns-a' }, spec: { address: `10.7.${c % 8}.1`, labels: { app: APPS[c % 4]! } } };
          next.set(resourceKey(bulk), bulk);
        }
      }
      for (let c = 0; c < 1 + Math.floor(rand() * 3); c++) {
        if (rand() < 0.3 && keys.length > 0) next.delete(keys[Math.floor(rand() * keys.length)]!);
        else {
          const r = make();
          next.set(resourceKey(r), r);
        }
      }
      // The api source sometimes passes only what changed (as the store source does).
      if (name === 'api' && rand() < 0.5) {
        registry.updateSource(name, {
          upserted: [...next.values()].filter((r) => set.get(resourceKey(r)) !== r),
          removed: [...set.keys()].filter((key) => !next.has(key)),
        });
      } else registry.setSource(name, [...next.values()]);
      sourceSets[name] = next;
      if (step % 7 === 3) {
        const wes = registry.current().workloadEntries;
        const target = wes[Math.floor(rand() * wes.length)];
        if (target) {
          overlay = new Map([[resourceKey(target), [{ type: 'Healthy', status: rand() < 0.5 ? 'True' : 'False' }]]]);
          registry.setStatusOverlay('health', overlay);
        }
      }
      registry.flush();
      const snapshot = registry.current();
      // What the sources hold, merged (the file source first: it called setSource first).
      const expected = new Map<string, MeshResource>(sourceSets.file);
      for (const [key, r] of sourceSets.api!) if (!expected.has(key)) expected.set(key, r);
      assert.deepEqual([...snapshot.byKey.keys()], [...expected.keys()].sort(), `step ${step}: keys`);
      for (const [key, r] of expected) assert.ok(sameResource(snapshot.byKey.get(key)!, withConditions(r, overlay.get(key) ?? [])), `step ${step}: content of ${key}`);
      assertSameAsFullBuild(snapshot, `registry step ${step}`);
    }
    registry.close();
  });
});
