/**
 * The registration source's state (issue 4 §3): WorkloadEntries created for agents that
 * registered into a WorkloadGroup, and the health every connected agent reports, with Istio's
 * WorkloadGroup auto-registration semantics and a grace period on disconnect.
 *
 * - Registering into a WorkloadGroup creates the WorkloadEntry `<group>-<address>` (dots and
 *   colons of the address replaced by `-`, as Istio names auto-registered entries) in the group's
 *   namespace from the group's `template`, with the agent's address. Its workload labels are the
 *   template's labels, overlaid with the group's `metadata.labels`, overlaid with the agent's
 *   (Istio's precedence); its resource labels add `skiff.dev/source: auto-registration`, its
 *   annotations the group's plus `istio.io/autoRegistrationGroup: <group>`. The entry follows the
 *   group: a changed template or probe is applied at once, a deleted group removes it.
 * - Registering for a WorkloadEntry (from a file or the API) only lets the agent report health.
 * - Health is Istio's condition `status.conditions[type=Healthy]` (True/False, reason, message,
 *   lastTransitionTime), published as a status overlay so it applies whichever source defines the
 *   entry. A new entry of a group with a probe starts `Healthy=False` (reason `NotYetProbed`) so
 *   a VM gets no traffic before its first successful probe, as Istio does.
 * - The caller must be the workload (`mayActAsWorkload`: namespace and service account of the
 *   group's template or the entry); refusals are logged and thrown as PERMISSION_DENIED.
 * - When an agent's stream ends without `leave`, its entry and last health are kept for the grace
 *   period; a registration of the same entry within it takes over without any change (no flap in
 *   EDS). When the grace period passes, an auto-registered entry is removed and a static entry is
 *   marked `Healthy=False` (reason `AgentDisconnected`), so no dead VM keeps receiving traffic.
 *   `leave` does the same at once (reason `AgentLeft`).
 * - A newer registration of the same entry (the VM reconnected before the old stream was seen to
 *   end) takes it over; the old stream's end then changes nothing.
 *
 * Nothing here knows gRPC: the service (`service.ts`) turns streams into calls of this class.
 */
import { isIP } from 'node:net';
import { workloadAuthorizationProblem } from '../../identity/authorize.js';
import type { Logger } from '../../observability/logger.js';
import { isDns1123Subdomain, labelKeyProblem, labelValueProblem } from '../../resources/names.js';
import { workloadLabels } from '../../resources/selectors.js';
import {
  HEALTHY_CONDITION,
  resourceKey,
  type Condition,
  type MeshResource,
  type ReadinessProbe,
  type WorkloadEntry,
  type WorkloadGroup,
} from '../../resources/types.js';
import type { HealthReportMessage, ProbeMessage, RegisterMessage, RegistrationStatusMessage } from '../../xds/protos/registration.js';

/** `origin.source` and the value of the `skiff.dev/source` label of auto-registered entries. */
export const AUTO_REGISTRATION_SOURCE = 'auto-registration';
/** The resource label naming the source of a generated entry. */
export const SOURCE_LABEL = 'skiff.dev/source';
/** Istio's annotation naming the WorkloadGroup an entry was registered from. */
export const GROUP_ANNOTATION = 'istio.io/autoRegistrationGroup';
/** Default grace period after an agent disconnects, in ms (issue 4 §3). */
export const DEFAULT_GRACE_PERIOD_MS = 10_000;

/** gRPC-independent refusal codes (the service maps them to gRPC statuses). */
export type RegistrationErrorCode = 'invalid-argument' | 'not-found' | 'permission-denied' | 'already-exists' | 'failed-precondition';

/** A refused registration or report; `message` is safe to return to the caller. */
export class RegistrationError extends Error {
  constructor(
    readonly code: RegistrationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RegistrationError';
  }
}

/** The registry as this source reads it: every resource by key (a `MeshSnapshot` fits). */
export interface RegistryView {
  readonly byKey: ReadonlyMap<string, MeshResource>;
}

/** One agent stream, as the state sees it. */
export interface AgentConnection {
  /** Unique per stream. */
  readonly id: number;
  /** The caller's verified SPIFFE ID (from its client certificate). */
  readonly spiffeId: string;
  /** The IP address the stream comes from (used when a registration names none). */
  readonly peerAddress: string | undefined;
  /** Sends a new status (the group's probe or labels changed). */
  send(status: RegistrationStatusMessage): void;
  /** Ends the stream with a refusal (the group was deleted, the identity no longer matches). */
  end(code: RegistrationErrorCode, message: string): void;
}

/** Options of {@link Registrations}. */
export interface RegistrationsOptions {
  /** The current registry snapshot (groups and entries from every source). */
  view: () => RegistryView;
  /** The mesh trust domain: callers from another trust domain are refused. */
  trustDomain: string;
  /** How long an entry outlives its agent's stream, in ms (default {@link DEFAULT_GRACE_PERIOD_MS}). */
  gracePeriodMs?: number;
  logger: Logger;
  /**
   * Receives the auto-registered entries and the health overlay (by key `WorkloadEntry/ns/name`)
   * after every change; wire it to `registry.setSource` and `registry.setStatusOverlay`.
   */
  onUpdate(entries: WorkloadEntry[], health: ReadonlyMap<string, readonly Condition[]>): void;
  /** Clock for condition timestamps (tests). */
  now?: () => Date;
}

/** An entry this source creates or reports health for. */
interface Tracked {
  key: string;
  namespace: string;
  name: string;
  auto?: { group: string; address: string; agentLabels: Record<string, string>; created: string; entry: WorkloadEntry; probe: ProbeMessage | undefined };
  /** The connection that registered it last and is still open. */
  owner: AgentConnection | undefined;
  health: Condition | undefined;
  graceTimer: NodeJS.Timeout | undefined;
}

/** The name Istio gives an auto-registered entry: `<group>-<address with . and : as ->`. */
export function autoEntryName(group: string, address: string): string {
  return `${group}-${address.toLowerCase().replace(/[.:]/g, '-')}`;
}

/** Splits `<namespace>/<name>`; undefined when malformed. */
function splitRef(ref: string | undefined): { namespace: string; name: string } | undefined {
  const m = /^([^/]+)\/([^/]+)$/.exec(ref ?? '');
  return m?.[1] && m[2] ? { namespace: m[1], name: m[2] } : undefined;
}

/** The agent-side probe of a WorkloadGroup probe, or undefined when there is no method the agent runs. */
export function probeMessageOf(probe: ReadinessProbe | undefined): ProbeMessage | undefined {
  if (!probe) return undefined;
  const timings = {
    ...(probe.initialDelaySeconds ? { initialDelaySeconds: probe.initialDelaySeconds } : {}),
    ...(probe.timeoutSeconds ? { timeoutSeconds: probe.timeoutSeconds } : {}),
    ...(probe.periodSeconds ? { periodSeconds: probe.periodSeconds } : {}),
    ...(probe.successThreshold ? { successThreshold: probe.successThreshold } : {}),
    ...(probe.failureThreshold ? { failureThreshold: probe.failureThreshold } : {}),
  };
  if (probe.httpGet) {
    const h = probe.httpGet;
    return {
      ...timings,
      httpGet: {
        port: h.port,
        ...(h.path ? { path: h.path } : {}),
        ...(h.host ? { host: h.host } : {}),
        ...(h.scheme ? { scheme: h.scheme } : {}),
        ...(h.httpHeaders?.length ? { httpHeaders: h.httpHeaders.map((x) => ({ name: x.name, value: x.value ?? '' })) } : {}),
      },
    };
  }
  if (probe.tcpSocket) return { ...timings, tcpSocket: { port: probe.tcpSocket.port, ...(probe.tcpSocket.host ? { host: probe.tcpSocket.host } : {}) } };
  if (probe.exec) return { ...timings, exec: { command: [...probe.exec.command] } };
  return undefined; // grpc: parsed, not run by the agent (a warning on the resource says so)
}

function labelsProblem(labels: Record<string, string>): string | undefined {
  for (const [k, v] of Object.entries(labels)) {
    const p = labelKeyProblem(k) ?? labelValueProblem(v);
    if (p !== undefined) return `label ${JSON.stringify(k)}: ${p}`;
  }
  return undefined;
}

/** The registration source's state; see the module comment. */
export class Registrations {
  private readonly tracked = new Map<string, Tracked>();
  /** Entry key by connection id. */
  private readonly byConnection = new Map<number, string>();
  private readonly gracePeriodMs: number;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly opts: RegistrationsOptions) {
    this.gracePeriodMs = opts.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;
    this.log = opts.logger;
  }

  /**
   * Handles a `register` from `conn` (one per stream). Returns the status to send. Throws
   * {@link RegistrationError}: not-found (no such group or entry), permission-denied (another
   * identity), invalid-argument (bad reference, address or labels), already-exists (a
   * WorkloadEntry of that name comes from another source), failed-precondition (the stream
   * already registered, or names an auto-registered entry directly).
   */
  register(conn: AgentConnection, req: RegisterMessage): RegistrationStatusMessage {
    if (this.closed) throw new RegistrationError('failed-precondition', 'the control plane is shutting down');
    if (this.byConnection.has(conn.id)) throw new RegistrationError('failed-precondition', 'this stream already registered a workload');
    const hasGroup = Boolean(req.workloadGroup);
    const hasEntry = Boolean(req.workloadEntry);
    if (hasGroup === hasEntry) throw new RegistrationError('invalid-argument', 'register needs exactly one of workload_group and workload_entry');
    const t = hasGroup ? this.registerIntoGroup(conn, req) : this.registerForEntry(conn, req);
    this.byConnection.set(conn.id, t.key);
    if (req.health) this.setHealth(t, req.health);
    this.publish();
    return this.statusOf(t);
  }

  /** A health report on `conn`'s stream. Throws failed-precondition before a registration. */
  reportHealth(conn: AgentConnection, report: HealthReportMessage): void {
    const t = this.ownedBy(conn);
    if (!t) throw new RegistrationError('failed-precondition', 'register before reporting health');
    if (this.setHealth(t, report)) this.publish();
  }

  /**
   * `conn` is leaving (its agent stops): its auto-registered entry is removed now, a static
   * entry is marked unhealthy. A no-op for a stream without (or no longer owning) a registration.
   */
  leave(conn: AgentConnection, reason: string): void {
    const t = this.ownedBy(conn);
    this.byConnection.delete(conn.id);
    if (!t) return;
    t.owner = undefined;
    this.log.info({ entry: t.key, spiffeId: conn.spiffeId, reason }, 'agent left: workload deregistered');
    this.expire(t, 'AgentLeft', `the agent left${reason ? `: ${reason}` : ''}`);
  }

  /** `conn`'s stream ended without `leave`: the grace period starts. */
  disconnect(conn: AgentConnection): void {
    const t = this.ownedBy(conn);
    this.byConnection.delete(conn.id);
    if (!t || this.closed) return;
    t.owner = undefined;
    clearTimeout(t.graceTimer);
    this.log.info({ entry: t.key, spiffeId: conn.spiffeId, gracePeriodMs: this.gracePeriodMs }, 'agent disconnected: keeping its workload for the grace period');
    t.graceTimer = setTimeout(() => {
      t.graceTimer = undefined;
      if (t.owner !== undefined || this.tracked.get(t.key) !== t) return;
      this.log.info({ entry: t.key }, 'agent did not come back within the grace period: workload deregistered');
      this.expire(t, 'AgentDisconnected', `the agent disconnected and did not come back within ${this.gracePeriodMs} ms`);
    }, this.gracePeriodMs);
    t.graceTimer.unref();
  }

  /**
   * The registry changed: regenerate auto-registered entries from their (possibly changed)
   * groups, remove those whose group is gone or no longer matches the agent's identity, and
   * forget static entries that left the registry while no agent reports for them.
   */
  refresh(): void {
    if (this.closed) return;
    const view = this.opts.view();
    let changed = false;
    for (const t of [...this.tracked.values()]) {
      if (t.auto) {
        const group = this.groupOf(view, t.auto.group);
        const problem =
          group === undefined
            ? `WorkloadGroup ${t.auto.group} was deleted`
            : t.owner
              ? workloadAuthorizationProblem(t.owner.spiffeId, { namespace: t.namespace, serviceAccount: group.spec.template.serviceAccount, trustDomain: this.opts.trustDomain })
              : undefined;
        if (problem !== undefined || group === undefined) {
          this.log.warn({ entry: t.key, reason: problem }, 'auto-registered workload removed');
          t.owner?.end(group === undefined ? 'not-found' : 'permission-denied', problem ?? 'removed');
          this.drop(t);
          changed = true;
          continue;
        }
        const entry = this.buildEntry(group, t.auto.address, t.auto.agentLabels, t.auto.created);
        const probe = probeMessageOf(group.spec.probe);
        const probeChanged = JSON.stringify(probe) !== JSON.stringify(t.auto.probe);
        const labelsChanged = JSON.stringify(workloadLabels(entry)) !== JSON.stringify(workloadLabels(t.auto.entry));
        if (JSON.stringify(entry) !== JSON.stringify(t.auto.entry)) changed = true;
        t.auto.entry = entry;
        t.auto.probe = probe;
        if ((probeChanged || labelsChanged) && t.owner) t.owner.send(this.statusOf(t));
      } else {
        const entry = view.byKey.get(t.key) as WorkloadEntry | undefined;
        if (entry === undefined) {
          if (!t.owner) {
            this.drop(t);
            changed = true;
          }
          continue;
        }
        const problem = t.owner
          ? workloadAuthorizationProblem(t.owner.spiffeId, { namespace: t.namespace, serviceAccount: entry.spec.serviceAccount, trustDomain: this.opts.trustDomain })
          : undefined;
        if (problem !== undefined) {
          this.log.warn({ entry: t.key, reason: problem }, 'health reporting stopped: the entry now belongs to another identity');
          t.owner?.end('permission-denied', problem);
          this.drop(t);
          changed = true;
        }
      }
    }
    if (changed) this.publish();
  }

  /** Auto-registered entries and health conditions, for debug views and tests. */
  list(): { key: string; auto: boolean; connected: boolean; healthy: Condition['status'] | undefined }[] {
    return [...this.tracked.values()].map((t) => ({ key: t.key, auto: t.auto !== undefined, connected: t.owner !== undefined, healthy: t.health?.status }));
  }

  /** Cancels every grace timer; later calls are refused or ignored. */
  close(): void {
    this.closed = true;
    for (const t of this.tracked.values()) clearTimeout(t.graceTimer);
  }

  private registerIntoGroup(conn: AgentConnection, req: RegisterMessage): Tracked {
    const ref = splitRef(req.workloadGroup);
    if (!ref) throw new RegistrationError('invalid-argument', `workload_group ${JSON.stringify(req.workloadGroup)}: expected <namespace>/<name>`);
    const view = this.opts.view();
    const group = this.groupOf(view, req.workloadGroup ?? '');
    if (!group) throw new RegistrationError('not-found', `WorkloadGroup ${ref.namespace}/${ref.name} does not exist`);
    this.authorize(conn, 'register into WorkloadGroup', `${ref.namespace}/${ref.name}`, ref.namespace, group.spec.template.serviceAccount);
    const address = req.address || conn.peerAddress || '';
    if (isIP(address) === 0) throw new RegistrationError('invalid-argument', `address ${JSON.stringify(address)} is not an IP address`);
    const agentLabels = req.labels ?? {};
    const lp = labelsProblem(agentLabels);
    if (lp !== undefined) throw new RegistrationError('invalid-argument', lp);
    const name = autoEntryName(ref.name, address);
    if (!isDns1123Subdomain(name)) throw new RegistrationError('invalid-argument', `cannot name a WorkloadEntry after group ${ref.name} and address ${address}: ${JSON.stringify(name)} is not a DNS-1123 name`);
    const key = resourceKey({ kind: 'WorkloadEntry', metadata: { namespace: ref.namespace, name } });
    const other = view.byKey.get(key);
    if (other && other.origin?.source !== AUTO_REGISTRATION_SOURCE) {
      throw new RegistrationError('already-exists', `WorkloadEntry ${ref.namespace}/${name} already exists (from ${other.origin?.source ?? 'another source'}): cannot auto-register over it`);
    }
    let t = this.tracked.get(key);
    if (t && !t.auto) throw new RegistrationError('already-exists', `WorkloadEntry ${ref.namespace}/${name} is a static entry`);
    const created = t?.auto?.created ?? (this.opts.now?.() ?? new Date()).toISOString();
    const entry = this.buildEntry(group, address, agentLabels, created);
    const probe = probeMessageOf(group.spec.probe);
    if (t?.auto) {
      this.takeOver(t, conn);
      t.auto = { group: `${ref.namespace}/${ref.name}`, address, agentLabels, created, entry, probe };
      this.log.info({ entry: key, spiffeId: conn.spiffeId, address }, 'agent registered again: workload kept');
    } else {
      t = { key, namespace: ref.namespace, name, auto: { group: `${ref.namespace}/${ref.name}`, address, agentLabels, created, entry, probe }, owner: conn, health: undefined, graceTimer: undefined };
      // A group with a probe: no traffic until the first successful probe (Istio).
      if (probe) t.health = this.condition(false, 'NotYetProbed', 'waiting for the first probe result', undefined);
      this.tracked.set(key, t);
      this.log.info({ entry: key, group: `${ref.namespace}/${ref.name}`, spiffeId: conn.spiffeId, address }, 'workload auto-registered');
    }
    return t;
  }

  private registerForEntry(conn: AgentConnection, req: RegisterMessage): Tracked {
    const ref = splitRef(req.workloadEntry);
    if (!ref) throw new RegistrationError('invalid-argument', `workload_entry ${JSON.stringify(req.workloadEntry)}: expected <namespace>/<name>`);
    const key = resourceKey({ kind: 'WorkloadEntry', metadata: ref });
    const entry = this.opts.view().byKey.get(key) as WorkloadEntry | undefined;
    if (!entry) throw new RegistrationError('not-found', `WorkloadEntry ${ref.namespace}/${ref.name} does not exist`);
    this.authorize(conn, 'report health for WorkloadEntry', `${ref.namespace}/${ref.name}`, ref.namespace, entry.spec.serviceAccount);
    if (entry.origin?.source === AUTO_REGISTRATION_SOURCE) {
      throw new RegistrationError('failed-precondition', `WorkloadEntry ${ref.namespace}/${ref.name} was auto-registered: register into its WorkloadGroup instead`);
    }
    let t = this.tracked.get(key);
    if (t) {
      this.takeOver(t, conn);
    } else {
      t = { key, namespace: ref.namespace, name: ref.name, owner: conn, health: undefined, graceTimer: undefined };
      this.tracked.set(key, t);
    }
    this.log.info({ entry: key, spiffeId: conn.spiffeId }, 'agent reports health for a WorkloadEntry');
    return t;
  }

  private authorize(conn: AgentConnection, action: string, target: string, namespace: string, serviceAccount: string | undefined): void {
    const problem = workloadAuthorizationProblem(conn.spiffeId, { namespace, serviceAccount, trustDomain: this.opts.trustDomain });
    if (problem === undefined) return;
    this.log.warn({ spiffeId: conn.spiffeId, peer: conn.peerAddress, target, action }, `registration refused: ${problem}`);
    throw new RegistrationError('permission-denied', `may not ${action} ${target}: ${problem}`);
  }

  /** A newer stream takes an entry over; the grace timer (if any) stops. */
  private takeOver(t: Tracked, conn: AgentConnection): void {
    clearTimeout(t.graceTimer);
    t.graceTimer = undefined;
    if (t.owner && t.owner.id !== conn.id) {
      this.log.info({ entry: t.key, previous: t.owner.id, stream: conn.id }, 'a newer agent stream took the workload over');
      this.byConnection.delete(t.owner.id);
    }
    t.owner = conn;
  }

  /** Records a report; true when the condition changed. */
  private setHealth(t: Tracked, report: HealthReportMessage): boolean {
    const healthy = report.healthy === true;
    const next = this.condition(healthy, healthy ? 'ProbeSucceeded' : 'ProbeFailed', report.message ?? '', t.health);
    if (t.health && t.health.status === next.status && t.health.reason === next.reason && t.health.message === next.message) return false;
    if (t.health?.status !== next.status) this.log.info({ entry: t.key, healthy, message: report.message }, 'workload health changed');
    t.health = next;
    return true;
  }

  private condition(healthy: boolean, reason: string, message: string, previous: Condition | undefined): Condition {
    const status = healthy ? 'True' : 'False';
    const lastTransitionTime = previous && previous.status === status && previous.lastTransitionTime ? previous.lastTransitionTime : (this.opts.now?.() ?? new Date()).toISOString();
    return { type: HEALTHY_CONDITION, status, reason, ...(message ? { message } : {}), lastTransitionTime };
  }

  /** The agent is gone for good (left, or the grace period passed). */
  private expire(t: Tracked, reason: string, message: string): void {
    clearTimeout(t.graceTimer);
    t.graceTimer = undefined;
    if (t.auto) this.drop(t);
    else t.health = this.condition(false, reason, message, t.health);
    this.publish();
  }

  private drop(t: Tracked): void {
    clearTimeout(t.graceTimer);
    if (t.owner) this.byConnection.delete(t.owner.id);
    this.tracked.delete(t.key);
  }

  private ownedBy(conn: AgentConnection): Tracked | undefined {
    const key = this.byConnection.get(conn.id);
    const t = key === undefined ? undefined : this.tracked.get(key);
    return t && t.owner?.id === conn.id ? t : undefined;
  }

  private groupOf(view: RegistryView, ref: string): WorkloadGroup | undefined {
    const r = splitRef(ref);
    if (!r) return undefined;
    const g = view.byKey.get(resourceKey({ kind: 'WorkloadGroup', metadata: r }));
    return g?.kind === 'WorkloadGroup' ? g : undefined;
  }

  private buildEntry(group: WorkloadGroup, address: string, agentLabels: Record<string, string>, created: string): WorkloadEntry {
    const { address: _ignored, labels: templateLabels, ...template } = group.spec.template;
    const labels = { ...(templateLabels ?? {}), ...(group.spec.metadata?.labels ?? {}), ...agentLabels };
    const name = autoEntryName(group.metadata.name, address);
    return {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: {
        name,
        namespace: group.metadata.namespace,
        labels: { ...labels, [SOURCE_LABEL]: AUTO_REGISTRATION_SOURCE },
        annotations: { ...(group.spec.metadata?.annotations ?? {}), [GROUP_ANNOTATION]: group.metadata.name },
        creationTimestamp: created,
      },
      spec: { ...structuredClone(template), address, ...(Object.keys(labels).length > 0 ? { labels } : {}) },
      origin: { source: AUTO_REGISTRATION_SOURCE },
    };
  }

  private statusOf(t: Tracked): RegistrationStatusMessage {
    const entry = t.auto?.entry ?? (this.opts.view().byKey.get(t.key) as WorkloadEntry | undefined);
    const labels = entry ? { ...(entry.spec.labels ?? {}), ...(entry.metadata.labels ?? {}) } : {};
    delete labels[SOURCE_LABEL];
    return {
      workloadEntry: `${t.namespace}/${t.name}`,
      workloadName: t.name,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(t.auto?.probe ? { probe: t.auto.probe } : {}),
    };
  }

  private publish(): void {
    const entries: WorkloadEntry[] = [];
    const health = new Map<string, readonly Condition[]>();
    for (const t of this.tracked.values()) {
      if (t.auto) entries.push(t.auto.entry);
      if (t.health) health.set(t.key, [t.health]);
    }
    this.opts.onUpdate(entries, health);
  }
}
