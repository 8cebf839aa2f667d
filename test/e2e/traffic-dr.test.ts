/**
 * DestinationRule load balancing end to end with a real control plane, the real agent and one real
 * Envoy 1.40 sidecar on the client VM (test/helpers/traffic-lab.ts, lab subnet 198.18.48.0/24).
 * Outlier detection and default locality failover/return are covered in test/e2e/traffic.test.ts;
 * this file covers what a caller sees of the other load-balancer settings:
 *
 * - `consistentHash` by header: every request of one user lands on the same VM (the hash policy
 *   travels on the route, `hashPolicyFor`), and different users spread over both VMs;
 * - `localityLbSetting.distribute`: from the client's zone, 80 % stays in zone-a and 20 % goes to
 *   zone-b (±5 points over 1,000 requests);
 * - explicit `failover` with outlier detection: the client's zone first, the other zone when it
 *   fails, and back when it recovers, with Envoy's locality-weighted LB on.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { canCreateNetns } from '../helpers/netns.js';
import { eventually } from '../helpers/skiff.js';
import { GEO, NS, WEB, clusterName, startTrafficLab, tally, type Reply, type TrafficLab } from '../helpers/traffic-lab.js';

// Skipped without root on a developer machine; in CI (CI=true) a missing capability is a failure.
const skip = canCreateNetns() || process.env['CI'] ? false : 'needs root and iproute2 to create network namespaces';

const share = (replies: Reply[], backend: string): number => replies.filter((r) => r.status === 200 && r.backend === backend).length / replies.length;

/** The client Envoy's `/clusters` lines of `name` that show priorities, localities and health (for failure messages). */
async function clusterStatus(lab: TrafficLab, name: string): Promise<string> {
  return (await lab.admin('/clusters'))
    .split('\n')
    .filter((l) => l.startsWith(`${name}::`) && /::(health_flags|priority|zone|region|weight)::/.test(l))
    .join('\n');
}

void describe('DestinationRule load balancing through a real Envoy sidecar', { skip, timeout: 600_000 }, () => {
  let lab: TrafficLab;

  before(async () => {
    lab = await startTrafficLab({ subnet: 48 });
  });

  after(async () => {
    if (process.exitCode && lab) process.stderr.write(lab.logs());
    await lab?.stop();
  });

  beforeEach(async () => {
    await lab.resetBackends();
  });

  void it('consistentHash by header: each user sticks to one VM, users spread over both', async () => {
    await lab.apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: ${NS}}
spec:
  host: ${WEB}
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
`);
    const byUser = new Map<string, Record<string, number>>();
    for (let u = 0; u < 24; u++) {
      const user = `user-${u}`;
      const replies = await lab.burst({ host: WEB, path: '/sticky', headers: { 'x-user': user } }, 10, 2);
      byUser.set(user, tally(replies));
    }
    const status = await clusterStatus(lab, clusterName(WEB));
    for (const [user, t] of byUser) {
      assert.equal(Object.keys(t).length, 1, `${user} reached ${JSON.stringify(t)}\n${status}`);
      assert.equal(Object.values(t)[0], 10, `${user}: ${JSON.stringify(t)}`);
    }
    const vms = new Set([...byUser.values()].map((t) => Object.keys(t)[0]));
    assert.deepEqual([...vms].sort(), ['v1', 'v2'], 'different users land on both VMs');
  });

  void it('distribute: 80% of the client-zone traffic stays in zone-a, 20% goes to zone-b', async () => {
    await lab.apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: ${NS}}
spec:
  host: ${GEO}
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
          - from: region1/zone-a/*
            to: {"region1/zone-a/*": 80, "region1/zone-b/*": 20}
`);
    const replies = await lab.burst({ host: GEO, path: '/distribute' }, 1000, 8);
    const status = await clusterStatus(lab, clusterName(GEO));
    assert.ok(replies.every((r) => r.status === 200), `failed requests: ${JSON.stringify(tally(replies))}`);
    const za = share(replies, 'za');
    assert.ok(Math.abs(za - 0.8) <= 0.05, `zone-a share ${za.toFixed(3)} (want 0.80 ± 0.05)\n${status}`);
    assert.ok(Math.abs(share(replies, 'zb') - 0.2) <= 0.05, `zone-b share ${share(replies, 'zb').toFixed(3)}`);
  });

  void it('explicit failover: the client zone first, the other zone while it fails, back when it recovers', async () => {
    await lab.apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: ${NS}}
spec:
  host: ${GEO}
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}
    loadBalancer:
      localityLbSetting:
        failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]
`);
    const local = await lab.burst({ host: GEO, path: '/geo' }, 50, 4);
    assert.deepEqual(tally(local), { za: 50 }, `not zone-local\n${await clusterStatus(lab, clusterName(GEO))}`);
    await lab.configure('za', { failPercent: 100, failStatus: 503 });
    await eventually(
      'failover to zone-b',
      async () => {
        const rs = await lab.burst({ host: GEO, path: '/geo' }, 20, 2);
        return rs.every((r) => r.status === 200 && r.backend === 'zb');
      },
      20_000,
      100,
    ).catch(async (err: Error) => {
      err.message += `\n${await clusterStatus(lab, clusterName(GEO))}`;
      throw err;
    });
    await lab.configure('za', {});
    await eventually(
      'traffic back in zone-a after it recovered',
      async () => {
        const rs = await lab.burst({ host: GEO, path: '/geo' }, 20, 2);
        return rs.every((r) => r.status === 200 && r.backend === 'za');
      },
      30_000,
      500,
    );
  });
});
