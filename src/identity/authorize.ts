/**
 * "May this caller act as that workload?" — the one rule behind workload registration and health
 * reporting (issue 4 §3): a caller authenticated by its X.509-SVID may register into a
 * WorkloadGroup, or report for a WorkloadEntry, only when the workload's identity is its own,
 * that is when `spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccount>` equals the caller's
 * SPIFFE ID. As in Istio, a workload without a service account runs as `default`.
 *
 * Used by the registration service on the gRPC port and meant for the HTTP API's agent routes,
 * so both refuse the same callers with the same words.
 */
import { parseSpiffeId, SpiffeIdError } from './spiffe.js';

/** The identity a workload runs as (a WorkloadEntry's or a WorkloadGroup template's). */
export interface WorkloadIdentity {
  namespace: string;
  /** Unset or empty means `default` (Istio). */
  serviceAccount?: string;
  /** The mesh's trust domain; when given, the caller must be in it. */
  trustDomain?: string;
}

/**
 * Why `callerSpiffeId` may not act as `workload`, in words fit for a log line and a
 * PERMISSION_DENIED status; undefined when it may. A malformed caller ID is refused too.
 */
export function workloadAuthorizationProblem(callerSpiffeId: string, workload: WorkloadIdentity): string | undefined {
  let caller;
  try {
    caller = parseSpiffeId(callerSpiffeId);
  } catch (err) {
    if (err instanceof SpiffeIdError) return `caller identity ${JSON.stringify(callerSpiffeId)} is not a workload SPIFFE ID: ${err.message}`;
    throw err;
  }
  const serviceAccount = workload.serviceAccount || 'default';
  if (workload.trustDomain !== undefined && caller.trustDomain !== workload.trustDomain) {
    return `caller ${callerSpiffeId} is not in trust domain ${workload.trustDomain}`;
  }
  if (caller.namespace !== workload.namespace || caller.serviceAccount !== serviceAccount) {
    return `caller ${callerSpiffeId} may not act as a workload of namespace ${workload.namespace}, service account ${serviceAccount}`;
  }
  return undefined;
}

/** True when `callerSpiffeId` may act as `workload` (see {@link workloadAuthorizationProblem}). */
export function mayActAsWorkload(callerSpiffeId: string, workload: WorkloadIdentity): boolean {
  return workloadAuthorizationProblem(callerSpiffeId, workload) === undefined;
}
