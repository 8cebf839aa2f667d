/**
 * Prometheus metrics (prom-client). Each control plane or agent instance owns its own registry;
 * nothing is registered process-globally, so tests can run several instances in one process.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The control plane's metric set. Names follow Istio's pilot where one exists. */
export interface ControlPlaneMetrics {
  registry: Registry;
  /** xDS pushes sent, by type URL. */
  xdsPushes: Counter<'type'>;
  /** NACKs received from proxies, by type URL (Istio: pilot_total_xds_rejects). */
  xdsRejects: Counter<'type'>;
  /** ACKs received, by type URL. */
  xdsAcks: Counter<'type'>;
  /** Currently connected xDS streams (Istio: pilot_xds). */
  xdsConnections: Gauge<'kind'>;
  /** Config reloads refused because of invalid input, by source. */
  configRejected: Counter<'source'>;
  /** Config reloads accepted, by source. */
  configAccepted: Counter<'source'>;
  /** Certificates signed by the CA, by outcome (`ok`, `denied`, `invalid`). */
  csrSigned: Counter<'outcome'>;
  /** Seconds from a registry change to every affected proxy having been sent its push. */
  pushSeconds: Histogram;
  /** 1 while the Consul source serves its last known catalog because a query fails, else 0. */
  consulStale: Gauge;
  /** Unix time (s) of the last successful answer from Consul. */
  consulLastSuccess: Gauge;
  /**
   * Consul blocking-query answers by endpoint (`services`, `health`) and outcome: `changed` (the
   * mapped resources changed), `unchanged` (index moved or wait ended, same content) or `error`.
   */
  consulQueries: Counter<'endpoint' | 'outcome'>;
  /** Consul service instances by state: `mapped` (in the mesh) or `skipped` (invalid, see the logs). */
  consulInstances: Gauge<'state'>;
}

/** Creates a fresh metric set on its own registry. */
export function createControlPlaneMetrics(): ControlPlaneMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    xdsPushes: new Counter({ name: 'skiff_xds_pushes_total', help: 'xDS responses sent', labelNames: ['type'], registers }),
    xdsRejects: new Counter({ name: 'skiff_xds_rejects_total', help: 'xDS NACKs received', labelNames: ['type'], registers }),
    xdsAcks: new Counter({ name: 'skiff_xds_acks_total', help: 'xDS ACKs received', labelNames: ['type'], registers }),
    xdsConnections: new Gauge({ name: 'skiff_xds_connections', help: 'connected xDS streams', labelNames: ['kind'], registers }),
    configRejected: new Counter({ name: 'skiff_config_rejected_total', help: 'config changes rejected as invalid', labelNames: ['source'], registers }),
    configAccepted: new Counter({ name: 'skiff_config_accepted_total', help: 'config changes accepted', labelNames: ['source'], registers }),
    csrSigned: new Counter({ name: 'skiff_ca_csr_total', help: 'certificate signing requests by outcome', labelNames: ['outcome'], registers }),
    pushSeconds: new Histogram({ name: 'skiff_push_seconds', help: 'change to push latency', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers }),
    consulStale: new Gauge({ name: 'skiff_consul_stale', help: '1 while the Consul source serves its last known catalog because queries fail', registers }),
    consulLastSuccess: new Gauge({ name: 'skiff_consul_last_success_timestamp_seconds', help: 'unix time of the last successful Consul answer', registers }),
    consulQueries: new Counter({ name: 'skiff_consul_queries_total', help: 'Consul blocking-query answers by endpoint and outcome (changed, unchanged, error)', labelNames: ['endpoint', 'outcome'], registers }),
    consulInstances: new Gauge({ name: 'skiff_consul_instances', help: 'Consul service instances by state (mapped, skipped)', labelNames: ['state'], registers }),
  };
}
