/**
 * Wires the registration source (`src/sources/registration`) into `skiff serve`: agents
 * authenticate with their SVID (the client certificate on the mTLS gRPC port, checked against the
 * CA's trust bundle and intermediates, as ADS streams are), auto-registered entries become the
 * registry source `registration`, health reports its status overlay, and every registry snapshot
 * lets the source follow changed or deleted WorkloadGroups.
 */
import { verifiedPeerFromCall } from '../../ca/service.js';
import type { Logger } from '../../observability/logger.js';
import type { Registry } from '../../registry/index.js';
import { createRegistrationSource, type RegistrationService, type RegistrationSource } from '../../sources/registration/index.js';

/** Name of the registry source holding auto-registered WorkloadEntries (and the health overlay). */
export const REGISTRATION_SOURCE_NAME = 'registration';

/** Inputs of {@link startRegistration}. */
export interface StartRegistrationOptions {
  registry: Registry;
  trustDomain: string;
  /** Grace period after an agent's stream ends, in ms (default 10 000). */
  gracePeriodMs?: number;
  /** Roots client SVIDs must chain to. */
  trustBundlePem: string;
  /** The CA's own intermediates (when it signs with an intermediate), PEM. */
  intermediatesPem?: string;
  /**
   * The revoked bootstrap token a client certificate descends from, if any (by serial): such a
   * caller is refused like an unauthenticated one.
   */
  revokedTokenOf?: (serial: string) => Promise<string | undefined>;
  logger: Logger;
}

/** The running registration: its gRPC service, debug listing and stop. */
export interface RunningRegistration {
  service: RegistrationService;
  list: RegistrationSource['list'];
  stop(): void;
}

/** Creates the source and subscribes it to the registry. */
export function startRegistration(opts: StartRegistrationOptions): RunningRegistration {
  const { registry, logger } = opts;
  const source = createRegistrationSource({
    view: () => registry.current(),
    trustDomain: opts.trustDomain,
    ...(opts.gracePeriodMs !== undefined ? { gracePeriodMs: opts.gracePeriodMs } : {}),
    logger,
    authenticate: async (call) => {
      const peer = verifiedPeerFromCall(call, opts.trustBundlePem, opts.intermediatesPem);
      if (!peer) return undefined;
      const revoked = await opts.revokedTokenOf?.(peer.serial);
      if (revoked !== undefined) {
        logger.warn({ spiffeId: peer.spiffeId, serial: peer.serial, jti: revoked }, 'registration refused: the client certificate descends from a revoked bootstrap token');
        return undefined;
      }
      return peer.spiffeId;
    },
    onUpdate: (entries, health) => {
      registry.setSource(REGISTRATION_SOURCE_NAME, entries);
      registry.setStatusOverlay(REGISTRATION_SOURCE_NAME, health);
    },
  });
  const unsubscribe = registry.subscribe(() => source.refresh());
  return {
    service: source.service,
    list: () => source.list(),
    stop: () => {
      unsubscribe();
      source.close();
    },
  };
}
