/**
 * A WorkloadEntry's inbound ports as the evaluator's destination: which ports its sidecar accepts
 * and whether each is HTTP or TCP. Read the way Skiff's sidecars are configured (DESIGN.md §6):
 * the ingress ports of the Sidecar that applies to the workload (one selecting it in its
 * namespace, else its namespace's Sidecar without selector, else the root namespace's; the oldest
 * among equals), else the ports of the ServiceEntries whose workloadSelector selects it (the
 * workload's port for each: `ports[<name>]`, `targetPort`, or the service port).
 *
 * A port's protocol: HTTP, HTTP2, GRPC and GRPC-Web are HTTP; other protocols are TCP; without a
 * protocol the port name's prefix decides (`http-*`, `http2-*`, `grpc-*`, Istio's explicit
 * selection by name), else TCP.
 */
import { endpointPort } from '../registry/endpoints.js';
import { matchesSelector, workloadLabels } from '../resources/selectors.js';
import type { MeshResource, ServiceEntry, Sidecar, WorkloadEntry } from '../resources/types.js';
import type { EvaluationDestination } from './types.js';

/** One inbound port of a workload. */
export interface InboundPort {
  port: number;
  protocol: 'HTTP' | 'TCP';
  /** Where it was declared, e.g. `Sidecar demo/web ingress[0]`. */
  source: string;
}

/** A destination for `evaluate`, or why none could be built. */
export type DestinationChoice = { destination: EvaluationDestination; notes: string[] } | { error: string };

const HTTP_NAMES = ['http', 'http2', 'grpc', 'grpc-web'];

/** HTTP or TCP for a declared protocol (any case) and port name. */
export function portProtocol(protocol: string | undefined, name: string | undefined): 'HTTP' | 'TCP' {
  const p = protocol?.toLowerCase();
  if (p) return HTTP_NAMES.includes(p) ? 'HTTP' : 'TCP';
  const n = name?.toLowerCase() ?? '';
  return HTTP_NAMES.some((h) => n === h || n.startsWith(`${h}-`)) ? 'HTTP' : 'TCP';
}

function created(r: MeshResource): number {
  const t = r.metadata.creationTimestamp ? Date.parse(r.metadata.creationTimestamp) : Number.NaN;
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/** The Sidecar that configures `we`, by Istio's precedence. */
function sidecarFor(resources: readonly MeshResource[], we: WorkloadEntry, rootNamespace: string): Sidecar | undefined {
  const ns = we.metadata.namespace;
  const labels = workloadLabels(we);
  const sidecars = resources.filter((r): r is Sidecar => r.kind === 'Sidecar');
  const has = (s: Sidecar): boolean => Object.keys(s.spec.workloadSelector?.labels ?? {}).length > 0;
  const levels = [
    sidecars.filter((s) => s.metadata.namespace === ns && has(s) && matchesSelector(s.spec.workloadSelector?.labels, labels)),
    sidecars.filter((s) => s.metadata.namespace === ns && !has(s)),
    sidecars.filter((s) => s.metadata.namespace === rootNamespace && !has(s)),
  ];
  for (const level of levels) {
    if (level.length > 0) return [...level].sort((a, b) => created(a) - created(b) || (a.metadata.name < b.metadata.name ? -1 : 1))[0];
  }
  return undefined;
}

/** The inbound ports of `we` (see the module comment), sorted by port. */
export function inboundPorts(resources: readonly MeshResource[], we: WorkloadEntry, rootNamespace: string): InboundPort[] {
  const sidecar = sidecarFor(resources, we, rootNamespace);
  const out = new Map<number, InboundPort>();
  if (sidecar && (sidecar.spec.ingress?.length ?? 0) > 0) {
    (sidecar.spec.ingress ?? []).forEach((l, i) => {
      if (!out.has(l.port.number)) {
        out.set(l.port.number, { port: l.port.number, protocol: portProtocol(l.port.protocol, l.port.name), source: `Sidecar ${sidecar.metadata.namespace}/${sidecar.metadata.name} ingress[${i}]` });
      }
    });
  } else {
    const labels = workloadLabels(we);
    const services = resources.filter(
      (r): r is ServiceEntry => r.kind === 'ServiceEntry' && r.metadata.namespace === we.metadata.namespace && r.spec.workloadSelector !== undefined && matchesSelector(r.spec.workloadSelector.labels, labels),
    );
    for (const se of services) {
      (se.spec.ports ?? []).forEach((p, i) => {
        const port = endpointPort({ ports: we.spec.ports ?? {} }, p);
        if (!out.has(port)) out.set(port, { port, protocol: portProtocol(p.protocol, p.name), source: `ServiceEntry ${se.metadata.namespace}/${se.metadata.name} ports[${i}]` });
      });
    }
  }
  return [...out.values()].sort((a, b) => a.port - b.port);
}

/**
 * The evaluator destination for WorkloadEntry `we` on `port` (default: its only inbound port) with
 * `protocol` (default: the port's, TCP when the port is unknown).
 */
export function describeDestination(
  resources: readonly MeshResource[],
  we: WorkloadEntry,
  opts: { port?: number; protocol?: 'HTTP' | 'TCP'; rootNamespace: string },
): DestinationChoice {
  const notes: string[] = [];
  const ports = inboundPorts(resources, we, opts.rootNamespace);
  let port = opts.port;
  if (port === undefined) {
    if (ports.length !== 1) {
      return {
        error: ports.length === 0
          ? `workload ${we.metadata.namespace}/${we.metadata.name} has no inbound ports (no Sidecar ingress, no ServiceEntry selects it): pass --port`
          : `workload ${we.metadata.namespace}/${we.metadata.name} has several inbound ports (${ports.map((p) => p.port).join(', ')}): pass --port`,
      };
    }
    port = ports[0]!.port;
  }
  const known = ports.find((p) => p.port === port);
  let protocol = opts.protocol;
  if (protocol === undefined) {
    if (known) protocol = known.protocol;
    else {
      protocol = 'TCP';
      notes.push(`port ${port} is not an inbound port of ${we.metadata.namespace}/${we.metadata.name}: assumed TCP (pass --protocol)`);
    }
  }
  if (we.spec.address === undefined) return { error: `workload ${we.metadata.namespace}/${we.metadata.name} has no address` };
  return {
    destination: { namespace: we.metadata.namespace, labels: workloadLabels(we), ip: we.spec.address, port, protocol },
    notes,
  };
}
