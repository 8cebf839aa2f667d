import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../../observability/logger.js';
import { resourceKey, type Condition, type MeshResource, type WorkloadEntry, type WorkloadGroup } from '../../resources/types.js';
import type { RegistrationStatusMessage } from '../../xds/protos/registration.js';
import { RegistrationError, Registrations, type AgentConnection, type RegistrationErrorCode } from './registrations.js';

const GRACE_MS = 150;

function group(probe = true, serviceAccount = 'reviews'): WorkloadGroup {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadGroup',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: {
      metadata: { labels: { app: 'reviews', version: 'v1' }, annotations: { team: 'books' } },
      template: { serviceAccount, ports: { http: 8080 }, labels: { tier: 'backend', version: 'v0' }, locality: 'eu/west' },
      ...(probe ? { probe: { periodSeconds: 2, httpGet: { port: 9081, path: '/healthz' } } } : {}),
    },
    origin: { source: 'file' },
  };
}

const staticEntry: WorkloadEntry = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name: 'db-1', namespace: 'shop' },
  spec: { address: '10.0.0.9', serviceAccount: 'db', labels: { app: 'db' } },
  origin: { source: 'file' },
};

interface FakeConn extends AgentConnection {
  sent: RegistrationStatusMessage[];
  ended?: { code: RegistrationErrorCode; message: string };
}

let nextId = 0;
function conn(spiffeId: string, peerAddress = '198.18.0.7'): FakeConn {
  const c: FakeConn = {
    id: ++nextId,
    spiffeId,
    peerAddress,
    sent: [],
    send: (s) => c.sent.push(s),
    end: (code, message) => {
      c.ended = { code, message };
    },
  };
  return c;
}

const REVIEWS = 'spiffe://cluster.local/ns/shop/sa/reviews';
const DB = 'spiffe://cluster.local/ns/shop/sa/db';
const ENTRY_KEY = 'WorkloadEntry/shop/reviews-198-18-0-7';

void describe('Registrations: auto-registration, health, grace period', () => {
  let resources: Map<string, MeshResource>;
  let updates: { entries: WorkloadEntry[]; health: ReadonlyMap<string, readonly Condition[]> }[];
  let regs: Registrations;
  const last = () => updates.at(-1)!;
  const healthOf = (key: string) => last().health.get(key)?.[0];

  beforeEach(() => {
    resources = new Map<string, MeshResource>([group(), staticEntry].map((r) => [resourceKey(r), r]));
    updates = [];
    regs = new Registrations({
      view: () => ({ byKey: resources }),
      trustDomain: 'cluster.local',
      gracePeriodMs: GRACE_MS,
      logger: silentLogger(),
      onUpdate: (entries, health) => updates.push({ entries, health }),
      now: () => new Date('2026-01-02T03:04:05.000Z'),
    });
  });
  afterEach(() => regs.close());

  void it("creates the entry from the group's template with the agent's address and labels (Istio's precedence and name)", () => {
    const status = regs.register(conn(REVIEWS), { workloadGroup: 'shop/reviews', address: '198.18.0.7', labels: { version: 'v2' } });
    const [we] = last().entries;
    assert.ok(we);
    assert.equal(resourceKey(we), ENTRY_KEY);
    assert.deepEqual(we.spec, {
      serviceAccount: 'reviews',
      ports: { http: 8080 },
      locality: 'eu/west',
      address: '198.18.0.7',
      labels: { tier: 'backend', version: 'v2', app: 'reviews' },
    });
    assert.equal(we.metadata.labels?.['skiff.dev/source'], 'auto-registration');
    assert.deepEqual(we.metadata.annotations, { team: 'books', 'istio.io/autoRegistrationGroup': 'reviews' });
    assert.equal(we.origin?.source, 'auto-registration');
    assert.deepEqual(status, {
      workloadEntry: 'shop/reviews-198-18-0-7',
      workloadName: 'reviews-198-18-0-7',
      labels: { tier: 'backend', version: 'v2', app: 'reviews' },
      probe: { periodSeconds: 2, httpGet: { port: 9081, path: '/healthz' } },
    });
  });

  void it('keeps a new entry of a group with a probe out of traffic until its first healthy report', () => {
    const c = conn(REVIEWS);
    regs.register(c, { workloadGroup: 'shop/reviews' }); // address: the connection's
    assert.deepEqual(healthOf(ENTRY_KEY), { type: 'Healthy', status: 'False', reason: 'NotYetProbed', message: 'waiting for the first probe result', lastTransitionTime: '2026-01-02T03:04:05.000Z' });
    regs.reportHealth(c, { healthy: true, message: 'status 200' });
    assert.equal(healthOf(ENTRY_KEY)?.status, 'True');
    assert.equal(healthOf(ENTRY_KEY)?.reason, 'ProbeSucceeded');
    const before = updates.length;
    regs.reportHealth(c, { healthy: true, message: 'status 200' });
    assert.equal(updates.length, before, 'an unchanged report publishes nothing');
    regs.reportHealth(c, { healthy: false, message: 'status 500' });
    assert.deepEqual(healthOf(ENTRY_KEY)?.message, 'status 500');
  });

  void it('a group without a probe registers healthy (no condition)', () => {
    resources.set('WorkloadGroup/shop/reviews', group(false));
    const status = regs.register(conn(REVIEWS), { workloadGroup: 'shop/reviews' });
    assert.equal(status.probe, undefined);
    assert.equal(last().health.size, 0);
  });

  void it('refuses another identity (PERMISSION_DENIED), a missing group, a bad address or labels', () => {
    const refused = (c: AgentConnection, req: Parameters<Registrations['register']>[1]): RegistrationErrorCode | undefined => {
      try {
        regs.register(c, req);
        return undefined;
      } catch (err) {
        assert.ok(err instanceof RegistrationError);
        return err.code;
      }
    };
    assert.equal(refused(conn(DB), { workloadGroup: 'shop/reviews' }), 'permission-denied');
    assert.equal(refused(conn('spiffe://cluster.local/ns/other/sa/reviews'), { workloadGroup: 'shop/reviews' }), 'permission-denied');
    assert.equal(refused(conn('spiffe://example.org/ns/shop/sa/reviews'), { workloadGroup: 'shop/reviews' }), 'permission-denied');
    assert.equal(refused(conn(REVIEWS), { workloadGroup: 'shop/ratings' }), 'not-found');
    assert.equal(refused(conn(REVIEWS), { workloadGroup: 'reviews' }), 'invalid-argument');
    assert.equal(refused(conn(REVIEWS, undefined), { workloadGroup: 'shop/reviews', address: 'vm1.example.com' }), 'invalid-argument');
    assert.equal(refused(conn(REVIEWS), { workloadGroup: 'shop/reviews', labels: { 'bad key!': 'x' } }), 'invalid-argument');
    assert.equal(refused(conn(REVIEWS), { workloadGroup: 'shop/reviews', workloadEntry: 'shop/db-1' }), 'invalid-argument');
    assert.equal(refused(conn(REVIEWS), { workloadEntry: 'shop/db-1' }), 'permission-denied');
    assert.deepEqual(updates, [], 'nothing was published');
  });

  void it('refuses health before a registration, and a second registration on one stream', () => {
    const c = conn(REVIEWS);
    assert.throws(() => regs.reportHealth(c, { healthy: true }), (e: unknown) => e instanceof RegistrationError && e.code === 'failed-precondition');
    regs.register(c, { workloadGroup: 'shop/reviews' });
    assert.throws(() => regs.register(c, { workloadGroup: 'shop/reviews' }), (e: unknown) => e instanceof RegistrationError && e.code === 'failed-precondition');
  });

  void it('keeps the entry for the grace period after a disconnect, then removes it', async () => {
    const c = conn(REVIEWS);
    regs.register(c, { workloadGroup: 'shop/reviews' });
    regs.disconnect(c);
    await sleep(GRACE_MS / 2);
    assert.equal(last().entries.length, 1, 'still there within the grace period');
    await sleep(GRACE_MS);
    assert.equal(last().entries.length, 0, 'removed after the grace period');
    assert.equal(last().health.size, 0);
  });

  void it('a reconnect within the grace period keeps the entry and its health: nothing changes', async () => {
    const c1 = conn(REVIEWS);
    regs.register(c1, { workloadGroup: 'shop/reviews' });
    regs.reportHealth(c1, { healthy: true, message: 'ok' });
    const published = updates.length;
    const before = JSON.stringify(last());
    regs.disconnect(c1);
    await sleep(GRACE_MS / 2);
    const c2 = conn(REVIEWS);
    regs.register(c2, { workloadGroup: 'shop/reviews' });
    await sleep(GRACE_MS * 2);
    assert.equal(JSON.stringify(last()), before, 'the same entry and health are published');
    assert.equal(updates.length, published + 1, 'only the re-registration published (with equal content)');
    assert.equal(healthOf(ENTRY_KEY)?.status, 'True');
  });

  void it('a newer stream takes the entry over; the old stream ending later changes nothing', async () => {
    const c1 = conn(REVIEWS);
    const c2 = conn(REVIEWS);
    regs.register(c1, { workloadGroup: 'shop/reviews' });
    regs.register(c2, { workloadGroup: 'shop/reviews', health: { healthy: true, message: 'ok' } });
    regs.disconnect(c1);
    await sleep(GRACE_MS * 2);
    assert.equal(last().entries.length, 1);
    assert.deepEqual(regs.list(), [{ key: ENTRY_KEY, auto: true, connected: true, healthy: 'True' }]);
    assert.throws(() => regs.reportHealth(c1, { healthy: false }), RegistrationError);
  });

  void it('leave removes the entry at once', () => {
    const c = conn(REVIEWS);
    regs.register(c, { workloadGroup: 'shop/reviews' });
    regs.leave(c, 'agent stopping');
    assert.equal(last().entries.length, 0);
  });

  void it('health for a static entry: reported as an overlay; unhealthy after leave or after the grace period', async () => {
    const c = conn(DB);
    const status = regs.register(c, { workloadEntry: 'shop/db-1', health: { healthy: true, message: 'ok' } });
    assert.deepEqual(status, { workloadEntry: 'shop/db-1', workloadName: 'db-1', labels: { app: 'db' } });
    assert.deepEqual(last().entries, [], 'a static entry is not re-published');
    assert.equal(healthOf('WorkloadEntry/shop/db-1')?.status, 'True');
    regs.disconnect(c);
    await sleep(GRACE_MS / 2);
    assert.equal(healthOf('WorkloadEntry/shop/db-1')?.status, 'True', 'last health kept during the grace period');
    await sleep(GRACE_MS);
    assert.equal(healthOf('WorkloadEntry/shop/db-1')?.status, 'False');
    assert.equal(healthOf('WorkloadEntry/shop/db-1')?.reason, 'AgentDisconnected');
    const c2 = conn(DB);
    regs.register(c2, { workloadEntry: 'shop/db-1', health: { healthy: true } });
    assert.equal(healthOf('WorkloadEntry/shop/db-1')?.status, 'True');
    regs.leave(c2, 'maintenance');
    assert.equal(healthOf('WorkloadEntry/shop/db-1')?.reason, 'AgentLeft');
  });

  void it('follows the group: a new probe is sent to the agent, a deleted group removes the entry and ends the stream', () => {
    const c = conn(REVIEWS);
    regs.register(c, { workloadGroup: 'shop/reviews' });
    const g = group();
    g.spec.probe = { periodSeconds: 1, tcpSocket: { port: 9000 } };
    g.spec.template.ports = { http: 9090 };
    resources.set('WorkloadGroup/shop/reviews', g);
    regs.refresh();
    assert.deepEqual(c.sent.at(-1)?.probe, { periodSeconds: 1, tcpSocket: { port: 9000 } });
    assert.deepEqual(last().entries[0]?.spec.ports, { http: 9090 });
    resources.delete('WorkloadGroup/shop/reviews');
    regs.refresh();
    assert.equal(last().entries.length, 0);
    assert.deepEqual(c.ended, { code: 'not-found', message: 'WorkloadGroup shop/reviews was deleted' });
  });

  void it("a group whose template moves to another service account drops the agent's entry", () => {
    const c = conn(REVIEWS);
    regs.register(c, { workloadGroup: 'shop/reviews' });
    resources.set('WorkloadGroup/shop/reviews', group(true, 'ratings'));
    regs.refresh();
    assert.equal(last().entries.length, 0);
    assert.equal(c.ended?.code, 'permission-denied');
  });

  void it('will not auto-register over an entry another source defines', () => {
    resources.set(ENTRY_KEY, { ...staticEntry, metadata: { name: 'reviews-198-18-0-7', namespace: 'shop' } });
    assert.throws(() => regs.register(conn(REVIEWS), { workloadGroup: 'shop/reviews' }), (e: unknown) => e instanceof RegistrationError && e.code === 'already-exists');
  });
});
