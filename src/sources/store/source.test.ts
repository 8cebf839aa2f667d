import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../observability/logger.js';
import { createRegistry } from '../../registry/index.js';
import type { WorkloadEntry } from '../../resources/types.js';
import { openStore } from '../../store/index.js';
import { createStoreSource, type StoreSourceChanges } from './source.js';

function we(name: string, address: string): WorkloadEntry {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: 'shop' }, spec: { address } };
}

describe('store source', () => {
  it('loads what the store holds into the registry as source "api" and follows every later write', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-store-source-'));
    const store = openStore({ dataDir: dir, logger: silentLogger() });
    const registry = createRegistry({ logger: silentLogger(), quietMs: 1, maxWaitMs: 5 });
    const source = createStoreSource({ resources: store.resources, logger: silentLogger(), onUpdate: (rs) => registry.setSource('api', rs) });
    try {
      await store.resources.write([{ op: 'put', resource: we('a', '10.0.0.1') }], 'test');
      await source.start();
      registry.flush();
      const first = registry.current().workloadsByName.get('shop/a');
      assert.equal(first?.spec.address, '10.0.0.1');
      assert.equal(first?.origin?.source, 'api');
      assert.equal(first?.metadata.resourceVersion, '1');

      await store.resources.write([{ op: 'put', resource: we('a', '10.0.0.2') }, { op: 'put', resource: we('b', '10.0.0.3') }], 'test');
      registry.flush();
      assert.equal(registry.current().workloadsByName.get('shop/a')?.spec.address, '10.0.0.2');
      assert.equal(registry.current().workloadsByName.get('shop/b')?.spec.address, '10.0.0.3');
      await store.resources.write([{ op: 'delete', kind: 'WorkloadEntry', namespace: 'shop', name: 'a' }], 'test');
      registry.flush();
      assert.equal(registry.current().workloadsByName.has('shop/a'), false);
      assert.equal(source.revision(), 3);

      source.stop();
      await store.resources.write([{ op: 'put', resource: we('c', '10.0.0.4') }], 'test');
      registry.flush();
      assert.equal(registry.current().workloadsByName.has('shop/c'), false, 'a stopped source delivers nothing');
    } finally {
      source.stop();
      registry.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with onChanges, passes each write only what it changed, and the registry ends up as with full sets', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-store-source-'));
    const store = openStore({ dataDir: dir, logger: silentLogger() });
    const full = createRegistry({ logger: silentLogger(), quietMs: 1, maxWaitMs: 5 });
    const partial = createRegistry({ logger: silentLogger(), quietMs: 1, maxWaitMs: 5 });
    const delivered: StoreSourceChanges[] = [];
    const byFullSet = createStoreSource({ resources: store.resources, logger: silentLogger(), onUpdate: (rs) => full.setSource('api', rs) });
    const byChanges = createStoreSource({
      resources: store.resources,
      logger: silentLogger(),
      onUpdate: (rs) => partial.setSource('api', rs),
      onChanges: (c) => {
        delivered.push(c);
        partial.updateSource('api', c);
      },
    });
    try {
      await store.resources.write([{ op: 'put', resource: we('a', '10.0.0.1') }, { op: 'put', resource: we('b', '10.0.0.2') }], 'test');
      await byFullSet.start();
      await byChanges.start();
      assert.equal(delivered.length, 0, 'the first set goes through onUpdate');
      await store.resources.write([{ op: 'put', resource: we('a', '10.0.0.9') }, { op: 'put', resource: we('c', '10.0.0.3') }, { op: 'delete', kind: 'WorkloadEntry', namespace: 'shop', name: 'b' }], 'test');
      assert.deepEqual(
        delivered.map((c) => ({ upserted: c.upserted.map((r) => `${r.metadata.name}=${(r as WorkloadEntry).spec.address}`), removed: c.removed })),
        [{ upserted: ['a=10.0.0.9', 'c=10.0.0.3'], removed: ['WorkloadEntry/shop/b'] }],
      );
      await store.resources.write([{ op: 'delete', kind: 'WorkloadEntry', namespace: 'shop', name: 'c' }], 'test');
      for (const registry of [full, partial]) registry.flush();
      const shown = (registry: typeof full) => registry.current().workloadEntries.map((w) => `${w.metadata.name}=${w.spec.address}@${w.metadata.resourceVersion}`);
      assert.deepEqual(shown(partial), ['a=10.0.0.9@2']);
      assert.deepEqual(shown(partial), shown(full));
    } finally {
      byFullSet.stop();
      byChanges.stop();
      full.close();
      partial.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
