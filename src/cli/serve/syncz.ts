/**
 * `/debug/syncz`: per connected proxy, whether it runs the config of the current registry
 * snapshot (like `istioctl proxy-status`). A proxy is `synced` when its config was computed from
 * the current snapshot and, on every type of every one of its streams, nothing is pending and the
 * last response sent was ACKed. Tests wait on this instead of sleeping.
 */
import type { StreamInfo } from '../../xds/server/index.js';

/** One proxy's sync state. */
export interface ProxySyncStatus {
  nodeId: string;
  spiffeId: string;
  computedVersion: number;
  synced: boolean;
  types: { typeUrl: string; sent?: string; acked?: string; pending: boolean; nack?: string }[];
}

/** The whole `/debug/syncz` answer. */
export interface SyncStatus {
  registryVersion: number;
  synced: boolean;
  proxies: ProxySyncStatus[];
}

/** Joins the pusher's view (computed versions) with the server's stream states. */
export function syncStatus(
  registryVersion: number,
  proxies: readonly { nodeId: string; spiffeId: string; computedVersion: number }[],
  streams: readonly StreamInfo[],
): SyncStatus {
  const out = proxies.map((p): ProxySyncStatus => {
    const types = streams
      .filter((s) => s.authorized && s.node?.id === p.nodeId)
      .flatMap((s) => s.types)
      .map((t) => ({ typeUrl: t.typeUrl, sent: t.lastSentVersion, acked: t.ackedVersion, pending: t.pending, nack: t.lastNack?.message }));
    const typesSynced = types.every((t) => !t.pending && t.sent === t.acked);
    return { ...p, types, synced: p.computedVersion === registryVersion && typesSynced };
  });
  return { registryVersion, synced: out.every((p) => p.synced), proxies: out };
}
