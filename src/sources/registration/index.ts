/**
 * The registration source (issue 4 §3): agents register their VMs into WorkloadGroups and report
 * their probes' health over `skiff.registration.v1.WorkloadRegistration/Connect` on the mTLS gRPC
 * port; this source turns that into auto-registered WorkloadEntries (`setSource`) and health
 * conditions on any WorkloadEntry (`setStatusOverlay`) for the registry.
 */
import type { Logger } from '../../observability/logger.js';
import type { Condition, WorkloadEntry } from '../../resources/types.js';
import { Registrations, type RegistryView } from './registrations.js';
import { createRegistrationService, type RegistrationCall, type RegistrationService } from './service.js';

export {
  AUTO_REGISTRATION_SOURCE,
  DEFAULT_GRACE_PERIOD_MS,
  GROUP_ANNOTATION,
  SOURCE_LABEL,
  RegistrationError,
  Registrations,
  autoEntryName,
  probeMessageOf,
  type AgentConnection,
  type RegistrationErrorCode,
  type RegistrationsOptions,
  type RegistryView,
} from './registrations.js';
export { createRegistrationService, peerIp, type RegistrationCall, type RegistrationService, type RegistrationServiceOptions } from './service.js';

/** Options of {@link createRegistrationSource}. */
export interface RegistrationSourceOptions {
  /** The current registry snapshot (a `MeshSnapshot` fits). */
  view: () => RegistryView;
  trustDomain: string;
  /** Grace period after an agent disconnects, in ms (default 10 000). */
  gracePeriodMs?: number;
  /** The verified SPIFFE ID of a call's client certificate (see `RegistrationServiceOptions`). */
  authenticate(call: RegistrationCall): Promise<string | undefined> | string | undefined;
  /** Auto-registered entries and the health overlay, after every change. */
  onUpdate(entries: WorkloadEntry[], health: ReadonlyMap<string, readonly Condition[]>): void;
  logger: Logger;
}

/** A running registration source. */
export interface RegistrationSource {
  /** Add to the gRPC server: `server.addService(service.definition, service.implementation)`. */
  service: RegistrationService;
  /** Call on every registry snapshot: follows changed or deleted WorkloadGroups and entries. */
  refresh(): void;
  /** Registered workloads, for debug views. */
  list: Registrations['list'];
  /** Cancels grace timers and ends every agent stream (UNAVAILABLE: agents reconnect). */
  close(): void;
}

/** Creates the registration source; nothing is published until an agent registers. */
export function createRegistrationSource(opts: RegistrationSourceOptions): RegistrationSource {
  const registrations = new Registrations({
    view: opts.view,
    trustDomain: opts.trustDomain,
    ...(opts.gracePeriodMs !== undefined ? { gracePeriodMs: opts.gracePeriodMs } : {}),
    logger: opts.logger,
    onUpdate: (entries, health) => opts.onUpdate(entries, health),
  });
  const service = createRegistrationService({ registrations, authenticate: (call) => opts.authenticate(call), logger: opts.logger });
  return {
    service,
    refresh: () => registrations.refresh(),
    list: () => registrations.list(),
    close: () => {
      registrations.close();
      service.closeAll('control plane shutting down');
    },
  };
}
