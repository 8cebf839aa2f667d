/**
 * ztunnel clients of `skiff serve` (DESIGN.md §7): recognising a ztunnel's delta ADS stream,
 * authenticating it, and keeping its snapshot. ztunnel watches the whole mesh, so the translation
 * (`translate/ztunnel`) is computed once per registry snapshot and the same resource maps are
 * handed to the cache for every connected ztunnel (one encoding, shared).
 *
 * Authentication: ztunnel sends `authorization: Bearer <token>` on every xDS stream (and
 * `clusterid`). The token must verify with the control plane's {@link TokenAuthority} and must
 * not be single-use (single-use bootstrap tokens only obtain a first certificate; ztunnel's
 * agent writes renewable session tokens for it). A client certificate (the workload SVID) is
 * accepted too. When the node names a namespace (`NAMESPACE` metadata) it must be the
 * identity's. Streams opened with a token are closed when that token is revoked
 * ({@link ZtunnelClients.openedWithTokens}).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../observability/logger.js';
import type { MeshSnapshot } from '../../registry/types.js';
import { TokenError, type TokenAuthority } from '../../identity/tokens.js';
import { parseSpiffeId } from '../../identity/spiffe.js';
import { PeerAuthError, authenticateCallPeer, type CallWithAuthContext } from '../../identity/peer.js';
import { translateZtunnel, type ZtunnelTranslateOptions } from '../../translate/ztunnel/index.js';
import type { SnapshotCache } from '../../xds/cache/index.js';
import type { AuthorizeResult, StreamInfo } from '../../xds/server/index.js';
import type { ResourcesByType, XdsNode } from '../../xds/types.js';

/** Whether an xDS node is a ztunnel (Istio's node id `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`). */
export function isZtunnelNode(node: Pick<XdsNode, 'id'>): boolean {
  return node.id.startsWith('ztunnel~');
}

/** A call as the authorize hook sees it: metadata and the TLS auth context. */
export type ZtunnelCall = CallWithAuthContext & { metadata: grpc.Metadata; getPeer(): string };

/** Dependencies of {@link ZtunnelClients}. */
export interface ZtunnelClientsOptions {
  cache: SnapshotCache;
  /** The registry's current snapshot (translated on the first connect). */
  current: () => MeshSnapshot;
  tokens: Pick<TokenAuthority, 'verify'>;
  trustBundlePem: string;
  intermediatesPem?: string;
  trustDomain: string;
  /** Translation options read at every push (root namespace from the mesh config, cluster id). */
  translateOptions: () => ZtunnelTranslateOptions;
  logger: Logger;
}

interface Client {
  spiffeId: string;
  streams: number;
  computedVersion: number;
}

/** The connected ztunnels: authorization, and their (shared) snapshots. */
export class ZtunnelClients {
  private readonly clients = new Map<string, Client>();
  /** Identity per stream peer, set by `authorize` and taken by `connect`. */
  private readonly authorized = new Map<string, string>();
  /** Bootstrap/session token (`jti`) each stream (`<peer>|<node id>`) was opened with. */
  private readonly streamTokens = new Map<string, string>();
  private last: { version: number; resources: ResourcesByType } | undefined;
  private readonly warned = new Set<string>();

  constructor(private readonly opts: ZtunnelClientsOptions) {}

  /** The xDS authorize hook for a ztunnel node (see the module comment). */
  async authorize(node: XdsNode, call: ZtunnelCall): Promise<AuthorizeResult> {
    let spiffeId: string | undefined;
    let jti: string | undefined;
    let tokenProblem: string | undefined;
    const auth = call.metadata.get('authorization');
    if (auth.length > 0) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(String(auth[0]));
      if (!match?.[1]) {
        tokenProblem = 'authorization metadata is not "Bearer <token>"';
      } else {
        try {
          const token = await this.opts.tokens.verify(match[1]);
          if (token.singleUse) tokenProblem = 'a single-use bootstrap token cannot open xDS streams; give ztunnel a session token';
          else {
            spiffeId = token.spiffeId;
            jti = token.jti;
          }
        } catch (err) {
          if (!(err instanceof TokenError)) throw err;
          tokenProblem = `token refused: ${err.message}`;
        }
      }
    }
    if (spiffeId === undefined) {
      try {
        spiffeId = authenticateCallPeer(call, { trustBundlePem: this.opts.trustBundlePem, ...(this.opts.intermediatesPem ? { intermediatesPem: this.opts.intermediatesPem } : {}) })?.spiffeId;
      } catch (err) {
        if (!(err instanceof PeerAuthError)) throw err;
        tokenProblem ??= `client certificate refused: ${err.message}`;
      }
    }
    if (spiffeId === undefined) {
      return { ok: false, code: grpc.status.UNAUTHENTICATED, message: tokenProblem ?? 'ztunnel xDS requires "authorization: Bearer <token>" metadata or a client certificate' };
    }
    const id = parseSpiffeId(spiffeId);
    if (id.trustDomain !== this.opts.trustDomain) return { ok: false, code: grpc.status.PERMISSION_DENIED, message: `${spiffeId} is not in trust domain ${this.opts.trustDomain}` };
    const claimed = node.metadata['NAMESPACE'];
    if (typeof claimed === 'string' && claimed !== '' && claimed !== id.namespace) {
      this.opts.logger.warn({ node: node.id, claimed, spiffeId }, 'ztunnel xDS stream refused: node namespace differs from its identity');
      return { ok: false, code: grpc.status.PERMISSION_DENIED, message: `node claims namespace ${claimed} but authenticated as ${spiffeId}` };
    }
    const clusterId = call.metadata.get('clusterid')[0];
    this.opts.logger.debug({ node: node.id, spiffeId, clusterId: clusterId === undefined ? undefined : String(clusterId) }, 'ztunnel xDS stream authorized');
    this.authorized.set(`${call.getPeer()}|${node.id}`, spiffeId);
    if (jti !== undefined) this.streamTokens.set(`${call.getPeer()}|${node.id}`, jti);
    return { ok: true };
  }

  /** A ztunnel stream opened (after `authorize`): publish the mesh-wide snapshot for its node. */
  connect(node: XdsNode, peer: string): void {
    const spiffeId = this.authorized.get(`${peer}|${node.id}`) ?? '';
    this.authorized.delete(`${peer}|${node.id}`);
    const client = this.clients.get(node.id);
    if (client) client.streams += 1;
    else this.clients.set(node.id, { spiffeId, streams: 1, computedVersion: -1 });
    const last = this.translate(this.opts.current());
    if (last) this.publish(node.id, last.version, last.resources);
  }

  /** A predicate for `closeStreams`: the streams opened with one of the tokens `jtis`. */
  openedWithTokens(jtis: readonly string[]): (stream: StreamInfo) => boolean {
    const revoked = new Set(jtis);
    return (s) => revoked.has(this.streamTokens.get(`${s.peer}|${s.node?.id ?? ''}`) ?? '');
  }

  /** A ztunnel stream closed; the node's snapshot goes with its last stream. */
  disconnect(nodeId: string, peer?: string): void {
    if (peer !== undefined) this.streamTokens.delete(`${peer}|${nodeId}`);
    const client = this.clients.get(nodeId);
    if (!client) return;
    client.streams -= 1;
    if (client.streams <= 0) {
      this.clients.delete(nodeId);
      this.opts.cache.clearNode(nodeId);
    }
  }

  /**
   * Translates `snapshot` once (when it is newer than the last translation or `force`) and
   * publishes it to every connected ztunnel (nothing when none is connected). Keeps the last good
   * translation if it fails.
   */
  pushAll(snapshot: MeshSnapshot, force = false): void {
    if (this.clients.size === 0) return; // nothing to push; the next connect translates the then current snapshot
    const last = this.translate(snapshot, force);
    if (!last) return;
    for (const nodeId of this.clients.keys()) this.publish(nodeId, last.version, last.resources);
  }

  /** The translation of `snapshot`, computed once per registry version; the last good one on failure. */
  private translate(snapshot: MeshSnapshot, force = false): { version: number; resources: ResourcesByType } | undefined {
    if (!force && this.last?.version === snapshot.version) return this.last;
    try {
      const out = translateZtunnel(snapshot, this.opts.translateOptions());
      for (const w of out.warnings) {
        if (this.warned.has(w)) continue;
        this.warned.add(w);
        this.opts.logger.warn({ snapshot: snapshot.version }, w);
      }
      this.last = { version: snapshot.version, resources: out.resources };
    } catch (err) {
      this.opts.logger.error({ err, snapshot: snapshot.version }, 'computing ztunnel config failed; keeping the last good config');
    }
    return this.last;
  }

  /** Connected ztunnels, in the shape of the Envoy pusher's list (for `/debug/proxies` and `/debug/syncz`). */
  list(): { nodeId: string; spiffeId: string; streams: number; computedVersion: number }[] {
    return [...this.clients].map(([nodeId, c]) => ({ nodeId, spiffeId: c.spiffeId, streams: c.streams, computedVersion: c.computedVersion }));
  }

  private publish(nodeId: string, version: number, resources: ResourcesByType): void {
    try {
      this.opts.cache.setSnapshot(nodeId, { resources });
      const client = this.clients.get(nodeId);
      if (client) client.computedVersion = version;
    } catch (err) {
      this.opts.logger.error({ err, node: nodeId }, 'publishing ztunnel config failed');
    }
  }
}
