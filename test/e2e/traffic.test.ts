/**
 * Traffic management end to end (issue 8 §3) with a real control plane, the real agent and one
 * real Envoy 1.40 sidecar on the client VM (test/helpers/traffic-lab.ts, lab subnet 52). The
 * backends are plain HTTPS servers in their own VMs that terminate Istio mTLS with their own
 * SVIDs, so every scenario runs over ISTIO_MUTUAL without a second Envoy; none of the scenarios
 * needs a backend sidecar (inbound policy is not what is tested here).
 *
 * Every scenario applies Istio/Gateway API YAML through the file source exactly as an operator
 * would, waits until the client's proxy ACKed it (`/debug/syncz`), and asserts what a caller sees:
 * which VM answered, status codes, headers, and counts (shares over ≥ 1,000 requests are checked
 * within ±5 points). Elapsed times are only checked with loose bounds.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { canCreateNetns } from '../helpers/netns.js';
import { REPO, SKIFF, eventually } from '../helpers/skiff.js';
import { GEO, MIRROR, NS, WEB, answerOf, clusterName, startTrafficLab, tally, type Reply, type TrafficLab } from '../helpers/traffic-lab.js';

// Skipped without root on a developer machine; in CI (CI=true) a missing capability is a failure.
const skip = canCreateNetns() || process.env['CI'] ? false : 'needs root and iproute2 to create network namespaces';

/** DestinationRule with subsets v1/v2 of `web` by label `version` (plus an optional traffic policy). */
function webSubsets(trafficPolicy = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: ${NS}}
spec:
  host: ${WEB}
${trafficPolicy}  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
`;
}

/** A VirtualService for `web` with the given `http:` list (indented YAML). */
function webVs(http: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: ${NS}}
spec:
  hosts: [${WEB}]
  http:
${http}`;
}

const split = (v1: number, v2: number) =>
  webSubsets() +
  '---\n' +
  webVs(`    - route:
        - destination: {host: ${WEB}, subset: v1}
          weight: ${v1}
        - destination: {host: ${WEB}, subset: v2}
          weight: ${v2}
`);

/** The client sidecar's cluster `name` from `/config_dump` plus its `/clusters` lines (for failure messages). */
async function clusterDump(lab: TrafficLab, name: string): Promise<string> {
  const text = await lab.admin('/config_dump?resource=dynamic_active_clusters');
  let config = '';
  try {
    const dump = JSON.parse(text) as { configs: { cluster?: { name?: string } }[] };
    config = JSON.stringify(dump.configs.map((c) => c.cluster).filter((c) => c?.name === name), null, 1);
  } catch {
    config = text.slice(0, 3000);
  }
  const status = (await lab.admin('/clusters'))
    .split('\n')
    .filter((l) => l.startsWith(`${name}::`) && /::(health_flags|priority|zone|region|weight|max_\w+)::/.test(l))
    .join('\n');
  return `Envoy cluster ${name}:\n${config.slice(0, 5000)}\n${status}`;
}

const share = (replies: Reply[], backend: string) => replies.filter((r) => r.status === 200 && r.backend === backend).length / replies.length;

/** The client sidecar's virtual host for `host` from `/config_dump` (for failure messages). */
async function routeDump(lab: TrafficLab, host = WEB): Promise<string> {
  const text = await lab.admin('/config_dump?resource=dynamic_route_configs');
  try {
    const dump = JSON.parse(text) as { configs: { route_config?: { virtual_hosts?: { domains: string[] }[] } }[] };
    const vhosts = dump.configs.flatMap((c) => c.route_config?.virtual_hosts ?? []).filter((v) => v.domains.includes(host));
    const out = JSON.stringify(vhosts, null, 1);
    return `Envoy virtual host for ${host}:\n${out.length > 6000 ? `${out.slice(0, 6000)}…` : out}`;
  } catch {
    return text.slice(0, 4000);
  }
}

describe('traffic management through a real Envoy sidecar', { skip, timeout: 600_000 }, () => {
  let lab: TrafficLab;
  const started = Date.now();

  before(async () => {
    lab = await startTrafficLab({ subnet: 52 });
  });

  after(async () => {
    if (process.exitCode && lab) process.stderr.write(lab.logs());
    process.stderr.write(`traffic e2e: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    await lab?.stop();
  });

  beforeEach(async () => {
    await lab.resetBackends();
  });

  it('without traffic rules, web is reached over mTLS and both of its VMs answer', async () => {
    await lab.apply('');
    const replies = await lab.burst({ host: WEB, path: '/hello' }, 40, 4);
    const t = tally(replies);
    assert.deepEqual(Object.keys(t).sort(), ['v1', 'v2'], JSON.stringify(t));
    // The backend saw the client's SPIFFE ID on its TLS connection: ISTIO_MUTUAL.
    assert.equal(answerOf(replies[0]!)?.peer, `spiffe://cluster.local/ns/${NS}/sa/client`);
  });

  describe('weighted split', () => {
    it('80/20 over subsets v1/v2 (examples/traffic/canary-split.yaml): 1,000 requests land within ±5 points of the weights', async () => {
      // The operator example, with its host and namespace renamed to the lab's.
      const example = fs
        .readFileSync(path.join(REPO, 'examples', 'traffic', 'canary-split.yaml'), 'utf8')
        .replaceAll('reviews.shop.svc.cluster.local', WEB)
        .replaceAll('namespace: shop', `namespace: ${NS}`);
      await lab.apply(example);
      assert.deepEqual(tally(await lab.burst({ host: WEB, path: '/split', headers: { 'x-canary': 'yes' } }, 20, 4)), { v2: 20 });
      const replies = await lab.burst({ host: WEB, path: '/split' }, 1000, 16);
      const t = tally(replies);
      assert.equal((t['v1'] ?? 0) + (t['v2'] ?? 0), 1000, `not every request was answered by v1 or v2: ${JSON.stringify(t)}\n${await routeDump(lab)}`);
      const v1 = share(replies, 'v1');
      assert.ok(Math.abs(v1 - 0.8) <= 0.05, `v1 got ${(v1 * 100).toFixed(1)}% (${JSON.stringify(t)})\n${await routeDump(lab)}`);
    });

    it('moving the weights (80/20 → 0/100) while requests flow shifts traffic with no failed request', async () => {
      await lab.apply(split(80, 20));
      let running = true;
      const during: Reply[] = [];
      const driver = async () => {
        while (running) during.push(await lab.request({ host: WEB, path: '/shift' }));
      };
      const drivers = Array.from({ length: 4 }, driver);
      await new Promise((r) => setTimeout(r, 500));
      await lab.apply(split(50, 50));
      await new Promise((r) => setTimeout(r, 300));
      await lab.apply(split(0, 100));
      await new Promise((r) => setTimeout(r, 500));
      running = false;
      await Promise.all(drivers);
      const failed = during.filter((r) => r.status !== 200);
      assert.equal(failed.length, 0, `failed during the change: ${JSON.stringify(failed.slice(0, 3).map((r) => ({ status: r.status, error: r.error, body: r.body.slice(0, 200) })))}`);
      assert.ok(during.length > 50, `only ${during.length} requests were sent during the change`);
      const afterwards = await lab.burst({ host: WEB, path: '/shift' }, 200, 8);
      assert.deepEqual(tally(afterwards), { v2: 200 });
    });
  });

  describe('matching, rewrite, redirect, headers', () => {
    const rules = () =>
      webSubsets() +
      '---\n' +
      webVs(`    - name: canary-header
      match: [{headers: {x-canary: {exact: "yes"}}}]
      route: [{destination: {host: ${WEB}, subset: v2}}]
    - name: v2-path
      match: [{uri: {prefix: /v2/}}]
      route: [{destination: {host: ${WEB}, subset: v2}}]
    - name: rewrite
      match: [{uri: {prefix: /old/}}]
      rewrite: {uri: /new/}
      route: [{destination: {host: ${WEB}, subset: v1}}]
    - name: redirect
      match: [{uri: {exact: /moved}}]
      redirect: {uri: /elsewhere, authority: other.example.com, redirectCode: 302}
    - name: headers
      match: [{uri: {prefix: /headers}}]
      headers:
        request:
          set: {x-route: headers-rule}
          add: {x-added: "1"}
          remove: [x-drop-me]
        response:
          set: {x-resp-set: "yes"}
          remove: [content-type]
      route: [{destination: {host: ${WEB}, subset: v1}}]
    - name: default
      route: [{destination: {host: ${WEB}, subset: v1}}]
`);

    it('a header match sends requests to v2, the rest to v1', async () => {
      await lab.apply(rules());
      const canary = await lab.burst({ host: WEB, path: '/any', headers: { 'x-canary': 'yes' } }, 20, 4);
      assert.deepEqual(tally(canary), { v2: 20 }, await routeDump(lab));
      const plain = await lab.burst({ host: WEB, path: '/any', headers: { 'x-canary': 'no' } }, 20, 4);
      assert.deepEqual(tally(plain), { v1: 20 });
    });

    it('a path prefix match sends requests to v2', async () => {
      await lab.apply(rules());
      assert.deepEqual(tally(await lab.burst({ host: WEB, path: '/v2/x' }, 20, 4)), { v2: 20 });
      assert.deepEqual(tally(await lab.burst({ host: WEB, path: '/v1/x' }, 20, 4)), { v1: 20 });
    });

    it('rewrite: the backend sees the rewritten path', async () => {
      await lab.apply(rules());
      const r = await lab.request({ host: WEB, path: '/old/page?q=1' });
      assert.equal(r.status, 200, r.body);
      assert.equal(answerOf(r)?.path, '/new/page?q=1');
      assert.equal(r.backend, 'v1');
    });

    it('redirect: 302 to the new authority and path, no backend involved', async () => {
      await lab.apply(rules());
      const r = await lab.request({ host: WEB, path: '/moved' });
      assert.equal(r.status, 302, `${r.status} ${r.body}`);
      assert.match(String(r.headers.location), /^http:\/\/other\.example\.com\/elsewhere$/);
      assert.equal(r.backend, undefined);
      assert.equal((await lab.stats('v1')).total + (await lab.stats('v2')).total, 0);
    });

    it('request headers are set, added and removed; response headers set and removed', async () => {
      await lab.apply(rules());
      const r = await lab.request({ host: WEB, path: '/headers', headers: { 'x-drop-me': 'secret', 'x-added': '0', 'x-route': 'client' } });
      assert.equal(r.status, 200, r.body);
      const seen = answerOf(r)?.headers ?? {};
      assert.equal(seen['x-route'], 'headers-rule');
      assert.equal(seen['x-drop-me'], undefined);
      // Appended, not replaced (Node joins repeated request headers with ", ").
      assert.deepEqual(seen['x-added']?.split(/,\s*/), ['0', '1'], `x-added: ${seen['x-added']}`);
      assert.equal(r.headers['x-resp-set'], 'yes');
      assert.equal(r.headers['content-type'], undefined);
    });
  });

  describe('resilience', () => {
    it('retries turn a backend failing 50% of requests into ≥ 99% successes', async () => {
      await lab.configure('v1', { failPercent: 50, failStatus: 500 });
      // Baseline: no retry policy (Istio's default retries only 503 and connection errors).
      await lab.apply(webSubsets() + '---\n' + webVs(`    - route: [{destination: {host: ${WEB}, subset: v1}}]\n`));
      const baseline = await lab.burst({ host: WEB, path: '/flaky' }, 200, 8);
      const baseOk = baseline.filter((r) => r.status === 200).length / baseline.length;
      assert.ok(baseOk > 0.3 && baseOk < 0.7, `the backend does not fail about half the time: ${JSON.stringify(tally(baseline))}`);

      await lab.apply(
        webSubsets() +
          '---\n' +
          webVs(`    - route: [{destination: {host: ${WEB}, subset: v1}}]
      retries: {attempts: 10, perTryTimeout: 2s, retryOn: 5xx}
`),
      );
      const retryBefore = await lab.clusterStat(clusterName(WEB, 'v1'), 'upstream_rq_retry');
      const replies = await lab.burst({ host: WEB, path: '/flaky' }, 300, 8);
      const ok = replies.filter((r) => r.status === 200).length / replies.length;
      if (ok < 0.99) {
        // Envoy's own default allows 3 concurrent retries per cluster; Istio lifts it to 2^32-1.
        const overflow = await lab.clusterStat(clusterName(WEB, 'v1'), 'upstream_rq_retry_overflow');
        assert.fail(`only ${(ok * 100).toFixed(1)}% succeeded: ${JSON.stringify(tally(replies))}; retries refused by the circuit breaker (upstream_rq_retry_overflow): ${overflow}\n${await routeDump(lab)}\n${await clusterDump(lab, clusterName(WEB, 'v1'))}`);
      }
      const retries = (await lab.clusterStat(clusterName(WEB, 'v1'), 'upstream_rq_retry')) - retryBefore;
      assert.ok(retries >= 100, `Envoy counted only ${retries} retries`);
    });

    it('per-try timeout: each try is cut off, the retries are made, and the caller gets 504', async () => {
      await lab.configure('v1', { delayMs: 3000 });
      await lab.apply(
        webSubsets() +
          '---\n' +
          webVs(`    - route: [{destination: {host: ${WEB}, subset: v1}}]
      timeout: 20s
      retries: {attempts: 2, perTryTimeout: 300ms, retryOn: 5xx}
`),
      );
      const r = await lab.request({ host: WEB, path: '/slow', timeoutMs: 15_000 });
      assert.equal(r.status, 504, `${r.status} ${r.body}\n${await routeDump(lab)}`);
      // 1 try + 2 retries reached the backend.
      const attempts = await eventually('three attempts at the backend', async () => {
        const s = await lab.stats('v1');
        return s.total >= 3 ? s.total : undefined;
      }, 5000);
      assert.equal(attempts, 3);
      // Loose bound: three 300 ms tries, far below the backend's 3 s delay.
      assert.ok(r.ms < 2900, `took ${r.ms} ms`);
    });

    it('overall timeout: the caller gets 504 long before the backend answers', async () => {
      await lab.configure('v1', { delayMs: 4000 });
      await lab.apply(
        webSubsets() +
          '---\n' +
          webVs(`    - route: [{destination: {host: ${WEB}, subset: v1}}]
      timeout: 500ms
      retries: {attempts: 0}
`),
      );
      const r = await lab.request({ host: WEB, path: '/slow', timeoutMs: 15_000 });
      assert.equal(r.status, 504, `${r.status} ${r.body}\n${await routeDump(lab)}`);
      assert.ok(r.ms >= 400 && r.ms < 3500, `took ${r.ms} ms`);
      assert.equal((await lab.stats('v1')).total, 1);
    });

    it('fault injection aborts the configured share (±5 points over 1,000 requests) and delays', async () => {
      await lab.apply(
        webSubsets() +
          '---\n' +
          webVs(`    - match: [{uri: {prefix: /abort}}]
      fault: {abort: {httpStatus: 418, percentage: {value: 30}}}
      route: [{destination: {host: ${WEB}, subset: v1}}]
    - match: [{uri: {prefix: /delay}}]
      fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}
      route: [{destination: {host: ${WEB}, subset: v1}}]
`),
      );
      // New connections: whether a rule reaches connections opened before it is the next test.
      const replies = await lab.burst({ host: WEB, path: '/abort' }, 1000, 16, { freshConnections: true });
      const t = tally(replies);
      const aborted = replies.filter((r) => r.status === 418).length / replies.length;
      assert.equal((t['v1'] ?? 0) + (t['status 418'] ?? 0), 1000, JSON.stringify(t));
      assert.ok(Math.abs(aborted - 0.3) <= 0.05, `aborted ${(aborted * 100).toFixed(1)}%: ${JSON.stringify(t)}\n${await routeDump(lab)}`);
      // An aborted request never reached the backend.
      assert.equal((await lab.stats('v1')).total, t['v1']);

      const delayed = await lab.burst({ host: WEB, path: '/delay' }, 10, 5, { freshConnections: true });
      assert.deepEqual(tally(delayed), { v1: 10 });
      for (const r of delayed) assert.ok(r.ms >= 380, `a request took only ${r.ms} ms with a 400 ms delay`);
    });

    it('a new fault rule reaches a connection that was already open (routes change without a listener change)', async () => {
      await lab.apply(webSubsets() + '---\n' + webVs(`    - route: [{destination: {host: ${WEB}, subset: v1}}]\n`));
      const conn = lab.keepAliveClient();
      try {
        assert.equal((await conn.request({ host: WEB, path: '/before' })).backend, 'v1');
        const drainingBefore = await lab.admin('/stats?filter=_draining$');
        await lab.apply(
          webSubsets() +
            '---\n' +
            webVs(`    - fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
      route: [{destination: {host: ${WEB}, subset: v1}}]
`),
        );
        const r = await conn.request({ host: WEB, path: '/after' });
        const draining = await lab.admin('/stats?filter=_draining$');
        assert.equal(
          r.status,
          418,
          `the open connection still got ${r.status} from ${r.backend ?? '-'}: the fault did not apply to it. Envoy draining gauges before the change: ${drainingBefore.trim().replace(/\n/g, ', ')}; after: ${draining.trim().replace(/\n/g, ', ')} (a listener update instead of a route-only update leaves open connections on the old filter chain)`,
        );
      } finally {
        conn.close();
      }
    });

    it('outlier detection ejects the endpoint answering 5xx and traffic avoids it', async () => {
      await lab.configure('v2', { failPercent: 100, failStatus: 500 });
      await lab.apply(
        webSubsets(`  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}
`),
      );
      await eventually(
        "v2 ejected in the client's Envoy (/clusters)",
        async () => {
          await lab.burst({ host: WEB, path: '/outlier' }, 10, 2);
          const clusters = await lab.admin('/clusters');
          return clusters.includes(`${clusterName(WEB)}::${lab.ips.v2}:8080::health_flags::/failed_outlier_check`);
        },
        20_000,
        200,
      ).catch(async (err: Error) => {
        err.message += `\n${await clusterDump(lab, clusterName(WEB))}`;
        throw err;
      });
      const replies = await lab.burst({ host: WEB, path: '/outlier' }, 100, 4);
      assert.deepEqual(tally(replies), { v1: 100 }, await clusterDump(lab, clusterName(WEB)));
    });

    it('connection-pool limits answer a burst with overflow 503s', async () => {
      await lab.configure('v1', { delayMs: 500 });
      await lab.configure('v2', { delayMs: 500 });
      await lab.apply(
        webSubsets(`  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, http2MaxRequests: 1, maxRetries: 0}
`),
      );
      const overflowBefore = await lab.clusterStat(clusterName(WEB), 'upstream_rq_pending_overflow');
      const replies = await lab.burst({ host: WEB, path: '/burst' }, 20, 20);
      const overflow = replies.filter((r) => r.status === 503 && r.headers['x-envoy-overloaded'] === 'true');
      assert.ok(overflow.length >= 10, `only ${overflow.length} overflow 503s: ${JSON.stringify(tally(replies))}\n${await clusterDump(lab, clusterName(WEB))}`);
      assert.ok(replies.some((r) => r.status === 200), 'no request got through');
      const overflowAfter = await lab.clusterStat(clusterName(WEB), 'upstream_rq_pending_overflow');
      assert.ok(overflowAfter > overflowBefore, 'Envoy counted no pending overflow');
    });

    it('mirroring sends a copy of every request to the mirror service', async () => {
      await lab.apply(
        webSubsets() +
          '---\n' +
          webVs(`    - route: [{destination: {host: ${WEB}, subset: v1}}]
      mirror: {host: ${MIRROR}}
      mirrorPercentage: {value: 100}
`),
      );
      const replies = await lab.burst({ host: WEB, path: '/mirrored' }, 50, 4);
      assert.deepEqual(tally(replies), { v1: 50 });
      const mirrored = await eventually('50 mirrored copies at zb', async () => {
        const s = await lab.stats('zb');
        return s.mirrored >= 50 ? s : undefined;
      }, 10_000);
      assert.equal(mirrored.mirrored, 50);
      assert.equal(mirrored.paths['/mirrored'], 50);
    });
  });

  describe('locality', () => {
    it("traffic stays in the client's zone, fails over to the other zone, and comes back", async () => {
      await lab.apply(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: ${NS}}
spec:
  host: ${GEO}
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: {enabled: true}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}
`);
      const local = await lab.burst({ host: GEO, path: '/geo' }, 50, 4);
      assert.deepEqual(tally(local), { za: 50 }, `not zone-local\n${await clusterDump(lab, clusterName(GEO))}`);

      await lab.configure('za', { failPercent: 100, failStatus: 500 });
      await eventually(
        'failover to zone-b',
        async () => {
          const rs = await lab.burst({ host: GEO, path: '/geo' }, 20, 2);
          return rs.every((r) => r.status === 200 && r.backend === 'zb');
        },
        20_000,
        100,
      );
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

  describe('Gateway API HTTPRoute', () => {
    const route = (filters: string, rules: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: ${NS}}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 8080}]
  rules:
${filters}${rules}`;

    it('weighted backendRefs split 70/30 between web-v1 and web-v2', async () => {
      await lab.apply(
        route(
          '',
          `    - backendRefs:
        - {name: web-v1, port: 8080, weight: 70}
        - {name: web-v2, port: 8080, weight: 30}
`,
        ),
      );
      const replies = await lab.burst({ host: WEB, path: '/gw' }, 1000, 16);
      const v1 = share(replies, 'v1');
      assert.equal(share(replies, 'v1') + share(replies, 'v2'), 1, JSON.stringify(tally(replies)));
      assert.ok(Math.abs(v1 - 0.7) <= 0.05, `web-v1 got ${(v1 * 100).toFixed(1)}%\n${await routeDump(lab)}`);
    });

    it('a RequestHeaderModifier filter on a path match sets and removes request headers', async () => {
      await lab.apply(
        route(
          '',
          `    - matches: [{path: {type: PathPrefix, value: /gw-filter}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-gateway, value: "yes"}]
            remove: [x-drop-me]
      backendRefs: [{name: web-v2, port: 8080}]
    - backendRefs: [{name: web-v1, port: 8080}]
`,
        ),
      );
      const r = await lab.request({ host: WEB, path: '/gw-filter/a', headers: { 'x-drop-me': '1' } });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.backend, 'v2');
      assert.equal(answerOf(r)?.headers['x-gateway'], 'yes');
      assert.equal(answerOf(r)?.headers['x-drop-me'], undefined);
      const other = await lab.request({ host: WEB, path: '/other' });
      assert.equal(other.backend, 'v1');
    });
  });

  describe('bad input through the file source', () => {
    const good = () =>
      webSubsets() +
      '---\n' +
      webVs(`    - match: [{headers: {x-canary: {exact: "yes"}}}]
      route: [{destination: {host: ${WEB}, subset: v2}}]
    - route: [{destination: {host: ${WEB}, subset: v1}}]
`);
    /**
     * Each case replaces the VirtualService's http list with a broken one; `field` is the path the
     * error must name and `line` the line of traffic.yaml it is on (the DestinationRule takes lines
     * 1-10, `---` 11, the VirtualService's `http:` is line 17).
     */
    const cases: { name: string; http: string; field: RegExp; line: number }[] = [
      {
        name: 'weights that do not sum to 100',
        http: `    - route:
        - {destination: {host: ${WEB}, subset: v1}, weight: 60}
        - {destination: {host: ${WEB}, subset: v2}, weight: 30}
`,
        field: /http\[0\]\.route/,
        line: 18,
      },
      {
        name: 'a subset the DestinationRule does not define',
        http: `    - route: [{destination: {host: ${WEB}, subset: v3}}]
`,
        field: /http\[0\]\.route\[0\]\.destination\.subset/,
        line: 18,
      },
      {
        name: 'a regex Envoy (RE2) cannot compile',
        http: `    - match: [{uri: {regex: "/(?<=a)b"}}]
      route: [{destination: {host: ${WEB}, subset: v1}}]
`,
        field: /http\[0\]\.match\[0\]\.uri\.regex/,
        line: 18,
      },
      {
        name: 'a retryOn value Envoy does not know',
        http: `    - route: [{destination: {host: ${WEB}, subset: v1}}]
      retries: {attempts: 2, retryOn: "5xx,sometimes"}
`,
        field: /http\[0\]\.retries\.retryOn/,
        line: 19,
      },
      {
        name: 'a route to an unknown host',
        http: `    - route: [{destination: {host: nowhere.${NS}.svc.cluster.local}}]
`,
        field: /http\[0\]\.route\[0\]\.destination\.host/,
        line: 18,
      },
    ];

    for (const c of cases) {
      it(`${c.name}: rejected with file, line and field; the previous config keeps serving`, async () => {
        await lab.apply(good());
        const bad = webSubsets() + '---\n' + webVs(c.http);
        const logBefore = lab.controlPlaneLog().length;
        const file = lab.writeTraffic(bad);
        // `skiff validate` names the file, the line and the field.
        let out = '';
        let code = 0;
        try {
          out = execFileSync(SKIFF[0]!, [...SKIFF.slice(1), 'validate', '-f', lab.meshDir], { cwd: REPO, encoding: 'utf8' });
        } catch (err) {
          const e = err as { status: number; stdout: string };
          code = e.status;
          out = e.stdout;
        }
        assert.equal(code, 1, `skiff validate accepted it:\n${out}`);
        const errorLine = out.split('\n').find((l) => l.startsWith('error:') && l.includes(file)) ?? '';
        assert.ok(errorLine.includes(`${file}:${c.line} `), `expected ${file}:${c.line} in:\n${out}`);
        assert.match(errorLine, c.field, out);
        // The control plane logs the same and keeps the previous configuration.
        await eventually('the control plane rejected the file', async () => lab.controlPlaneLog().slice(logBefore).includes('config rejected; the previous configuration keeps serving'), 10_000, 100);
        const log = lab.controlPlaneLog().slice(logBefore);
        assert.ok(log.includes(`${file}:${c.line} `), `the control plane log does not name ${file}:${c.line}:\n${log.slice(-2000)}`);
        assert.match(log, c.field, log.slice(-2000));
        assert.deepEqual(tally(await lab.burst({ host: WEB, path: '/x', headers: { 'x-canary': 'yes' } }, 10, 2)), { v2: 10 });
        assert.deepEqual(tally(await lab.burst({ host: WEB, path: '/x' }, 10, 2)), { v1: 10 });
      });
    }
  });

  it('no configuration was NACKed by Envoy during the whole run', async () => {
    const rejects = await lab.cp.metric('skiff_xds_rejects_total');
    const total = [...rejects.values()].reduce((a, b) => a + b, 0);
    assert.equal(total, 0, `NACKs: ${JSON.stringify([...rejects])}`);
  });
});

describe('examples/traffic', () => {
  it('every example validates with skiff validate: no errors, no warnings', () => {
    const out = execFileSync(SKIFF[0]!, [...SKIFF.slice(1), 'validate', '-f', path.join(REPO, 'examples', 'traffic')], { cwd: REPO, encoding: 'utf8' });
    assert.match(out, /^\d+ resources, 0 errors, 0 warnings$/m, out);
  });
});
