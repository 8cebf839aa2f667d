import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../observability/logger.js';
import { isHealthy, type Condition, type WorkloadEntry } from '../resources/types.js';
import { createRegistry } from './registry.js';
import type { ChangeEvent, MeshSnapshot } from './types.js';

const entry: WorkloadEntry = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name: 'vm-1', namespace: 'shop' },
  spec: { address: '10.0.0.1', serviceAccount: 'api' },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
  origin: { source: 'file', file: 'mesh.yaml', line: 1 },
};
const KEY = 'WorkloadEntry/shop/vm-1';
const unhealthy: Condition = { type: 'Healthy', status: 'False', reason: 'ProbeFailed', message: 'status 500', lastTransitionTime: '2026-01-01T00:00:00.000Z' };

void describe('registry status overlays (health reported for entries another source defines)', () => {
  function setup() {
    const registry = createRegistry({ logger: silentLogger(), quietMs: 5, maxWaitMs: 20 });
    const events: { snapshot: MeshSnapshot; event: ChangeEvent }[] = [];
    registry.subscribe((snapshot, event) => events.push({ snapshot, event }));
    return { registry, events };
  }

  void it("puts the overlay's condition on the file's entry, keeping its other conditions and its origin", () => {
    const { registry } = setup();
    registry.setSource('file', [entry]);
    registry.setStatusOverlay('registration', new Map([[KEY, [unhealthy]]]));
    registry.flush();
    const we = registry.current().workloadsByName.get('shop/vm-1');
    assert.ok(we);
    assert.deepEqual(we.status?.conditions, [{ type: 'Ready', status: 'True' }, unhealthy]);
    assert.equal(we.origin?.source, 'file');
    assert.equal(isHealthy(we), false);
    registry.close();
  });

  void it('publishes a change when only the condition changes, and nothing when it is set again unchanged', () => {
    const { registry, events } = setup();
    registry.setSource('file', [entry]);
    registry.flush();
    const healthy: Condition = { ...unhealthy, status: 'True', reason: 'ProbeSucceeded' };
    registry.setStatusOverlay('registration', new Map([[KEY, [healthy]]]));
    registry.flush();
    registry.setStatusOverlay('registration', new Map([[KEY, [unhealthy]]]));
    registry.flush();
    registry.setStatusOverlay('registration', new Map([[KEY, [{ ...unhealthy }]]]));
    registry.flush();
    assert.equal(events.length, 3);
    assert.deepEqual([...events[2]!.event.changedKeys], [KEY]);
    assert.equal(isHealthy(events[2]!.snapshot.workloadsByName.get('shop/vm-1')!), false);
    registry.close();
  });

  void it('waits for a resource that is not there yet, and an empty overlay removes the condition', () => {
    const { registry } = setup();
    registry.setStatusOverlay('registration', new Map([[KEY, [unhealthy]]]));
    registry.flush();
    assert.equal(registry.current().workloadEntries.length, 0);
    registry.setSource('file', [entry]);
    registry.flush();
    assert.equal(isHealthy(registry.current().workloadsByName.get('shop/vm-1')!), false);
    registry.setStatusOverlay('registration', new Map());
    registry.flush();
    assert.deepEqual(registry.current().workloadsByName.get('shop/vm-1')?.status?.conditions, [{ type: 'Ready', status: 'True' }]);
    registry.close();
  });

  void it('indexes WorkloadGroups in the snapshot', () => {
    const { registry } = setup();
    registry.setSource('file', [
      { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadGroup', metadata: { name: 'reviews', namespace: 'shop' }, spec: { template: { serviceAccount: 'reviews' } } },
    ]);
    registry.flush();
    assert.deepEqual(registry.current().workloadGroups.map((g) => g.metadata.name), ['reviews']);
    assert.equal(registry.current().byKey.get('WorkloadGroup/shop/reviews')?.kind, 'WorkloadGroup');
    registry.close();
  });
});
