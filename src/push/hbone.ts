/**
 * Which workloads speak HBONE (HTTP/2 CONNECT over mTLS on port 15008), by Istio's marker: the
 * label `networking.istio.io/tunnel` whose comma-separated value lists `http`
 * (pilot/pkg/model `TunnelLabel`/`SupportsTunnel`). A WorkloadEntry carrying it says its proxy
 * accepts tunnelled traffic; Skiff then gives that proxy an HBONE listener and tunnels traffic to
 * it from the other Envoy sidecars.
 */

/** Istio's label for workloads that accept tunnelled traffic (value: CSV of protocols, e.g. `http`). */
export const TUNNEL_LABEL = 'networking.istio.io/tunnel';

/** Whether `labels` say the workload accepts HBONE (`networking.istio.io/tunnel` lists `http`). */
export function speaksHbone(labels: Readonly<Record<string, string>> | undefined): boolean {
  const value = labels?.[TUNNEL_LABEL];
  return value !== undefined && value.split(',').some((p) => p.trim() === 'http');
}
