/**
 * Connected proxies and their pushes: for each node with an open ADS stream, compute its push
 * context (IR) from the current registry snapshot, translate it to Envoy resources and hand them
 * to the snapshot cache. On a registry change every connected proxy is recomputed; the cache
 * drops snapshots whose resource versions did not change, so unaffected proxies get no push.
 */
import type { Logger } from '../../observability/logger.js';
import type { ControlPlaneMetrics } from '../../observability/metrics.js';
import type { MeshSnapshot } from '../../registry/types.js';
import type { ProxyIdentity } from '../../ir/types.js';
import { validate } from '../../ir/validate.js';
import { buildProxyIR, type BuildExtras } from '../../push/index.js';
import { translateEnvoy } from '../../translate/envoy/index.js';
import type { SnapshotCache } from '../../xds/cache/index.js';

/** Tracks connected proxies (by node id, counting streams) and recomputes their snapshots. */
export class ProxyPusher {
  private readonly proxies = new Map<string, { identity: ProxyIdentity; streams: number; computedVersion: number }>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly deps: {
      cache: SnapshotCache;
      current: () => MeshSnapshot;
      /** Mesh config and fetched JWKS, read at every push. */
      extras: () => BuildExtras;
      logger: Logger;
      metrics: ControlPlaneMetrics;
    },
  ) {}

  /** A stream for `identity.nodeId` opened: compute and publish its snapshot. */
  connect(identity: ProxyIdentity): void {
    const entry = this.proxies.get(identity.nodeId);
    if (entry) entry.streams += 1;
    else this.proxies.set(identity.nodeId, { identity, streams: 1, computedVersion: -1 });
    this.push(identity, this.deps.current());
  }

  /** A stream closed; the node's snapshot is dropped with its last stream. */
  disconnect(nodeId: string): void {
    const entry = this.proxies.get(nodeId);
    if (!entry) return;
    entry.streams -= 1;
    if (entry.streams <= 0) {
      this.proxies.delete(nodeId);
      this.deps.cache.clearNode(nodeId);
    }
  }

  /** Recomputes every connected proxy for a new registry snapshot. */
  pushAll(snapshot: MeshSnapshot): void {
    const started = process.hrtime.bigint();
    for (const { identity } of this.proxies.values()) this.push(identity, snapshot);
    this.deps.metrics.pushSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  /**
   * Connected proxies, for `/debug/proxies` and `/debug/syncz`: `computedVersion` is the registry
   * snapshot version the proxy's current config was computed from (-1: none yet).
   */
  list(): { nodeId: string; spiffeId: string; streams: number; computedVersion: number }[] {
    return [...this.proxies.values()].map((p) => ({ nodeId: p.identity.nodeId, spiffeId: p.identity.spiffeId, streams: p.streams, computedVersion: p.computedVersion }));
  }

  private push(identity: ProxyIdentity, snapshot: MeshSnapshot): void {
    const log = this.deps.logger.child({ node: identity.nodeId });
    try {
      const ir = buildProxyIR(snapshot, identity, this.deps.extras());
      const errors = validate(ir);
      if (errors.length > 0) {
        log.error({ errors, snapshot: snapshot.version }, 'proxy config invalid; keeping the last good config');
        return;
      }
      const out = translateEnvoy(ir);
      for (const w of [...ir.warnings, ...out.warnings]) {
        const key = `${identity.nodeId}|${w}`;
        if (this.warned.has(key)) continue;
        this.warned.add(key);
        log.warn({ snapshot: snapshot.version }, w);
      }
      this.deps.cache.setSnapshot(identity.nodeId, { resources: out.resources, references: out.references });
      const entry = this.proxies.get(identity.nodeId);
      if (entry) entry.computedVersion = snapshot.version;
    } catch (err) {
      log.error({ err, snapshot: snapshot.version }, 'computing proxy config failed; keeping the last good config');
    }
  }
}
