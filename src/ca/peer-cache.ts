/**
 * A bounded cache of verified TLS client certificates for the CA service's renewal path.
 *
 * Authenticating a renewal means checking the caller's SVID against the trust bundle
 * (`authenticateCallPeer`: parse the chain, read the URI SAN, verify each signature). One agent
 * channel carries many calls with the same client certificate, and the result depends only on the
 * certificate bytes, the (fixed) trust bundle and the time; so the outcome is remembered per
 * exact peer chain (its DER bytes) and reused until the leaf's NotAfter or `maxAgeMs` after the
 * check, whichever is first. Only successes are cached: a refused certificate is re-checked (and
 * re-refused, with its reason) on every call. Revocation is not this cache's concern: the service
 * checks lineage on every call.
 */
import { authenticateCallPeer, peerChainFromCall, type CallIdentityOptions, type CallWithAuthContext, type VerifiedPeer } from '../identity/peer.js';

/** Options for {@link VerifiedPeerCache}. */
export interface VerifiedPeerCacheOptions {
  trustBundlePem: string;
  /** The CA's intermediates (PEM) that may sit between a leaf and a root. */
  intermediatesPem?: string;
  /** Longest time a verification is reused, ms. Default 5 minutes. */
  maxAgeMs?: number;
  /** Most entries kept; the oldest is dropped beyond it. Default 4096. */
  maxEntries?: number;
  /** Source of the current time (ms). For tests. */
  now?: () => number;
}

interface Entry {
  peer: VerifiedPeer;
  /** Reuse until this time (ms): min(leaf NotAfter, verified at + maxAgeMs). */
  until: number;
}

/** Remembers successful client-certificate verifications; see the module comment. */
export class VerifiedPeerCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly verifyOptions: CallIdentityOptions;

  constructor(opts: VerifiedPeerCacheOptions) {
    this.maxAgeMs = opts.maxAgeMs ?? 5 * 60_000;
    this.maxEntries = opts.maxEntries ?? 4096;
    this.now = opts.now ?? Date.now;
    this.verifyOptions = { trustBundlePem: opts.trustBundlePem, ...(opts.intermediatesPem ? { intermediatesPem: opts.intermediatesPem } : {}) };
  }

  /**
   * Like `authenticateCallPeer`: undefined when the call carries no client certificate, the
   * verified peer when it verifies, and throws `PeerAuthError` when it does not.
   */
  authenticate(call: CallWithAuthContext): VerifiedPeer | undefined {
    const chain = peerChainFromCall(call);
    if (!chain) return undefined;
    const key = chain.map((c) => c.toString('base64')).join('.');
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit && now < hit.until) return hit.peer;
    if (hit) this.entries.delete(key);
    const peer = authenticateCallPeer(call, { ...this.verifyOptions, now: new Date(now) });
    if (!peer) return undefined;
    this.entries.set(key, { peer, until: Math.min(peer.notAfter.getTime(), now + this.maxAgeMs) });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return peer;
  }

  /** Number of cached verifications (for tests). */
  get size(): number {
    return this.entries.size;
  }
}
