/**
 * The fan-out benchmark's generated mesh (issue 9 §1): `services` ServiceEntries spread over
 * `namespaces` namespaces, each with `workloadsPerService` WorkloadEntries, written as YAML files
 * (one file per service: its ServiceEntry and its WorkloadEntries), so one service's endpoints
 * change by rewriting one file.
 *
 * Layout: service `j` is `svc-<j>` in namespace `ns-<j mod namespaces>`, host
 * `svc-<j>.ns-<k>.svc.cluster.local`, one HTTP port 8080, selecting `app: svc-<j>`. Workload `i`
 * belongs to service `floor(i / workloadsPerService)`, has address `10.<1 + i>>16>.<i>>8 & 255>.<i & 255>`,
 * workload port 9080 for `http` (so the sidecar's inbound listener, on the workload address, and
 * the application at 127.0.0.1:9080 leave 127.0.0.1:8080 to the outbound listener) and service
 * account `bench` of its namespace.
 *
 * Scenarios: `default` (no Sidecar: every proxy sees every service, Skiff's documented default
 * egress, the worst case) and `sidecar` (one Sidecar per namespace limiting egress to 10 services:
 * the shared service `svc-0` plus 9 services of the proxy's own namespace, the typical case).
 */
import fs from 'node:fs';
import path from 'node:path';

/** Shape of the generated mesh. */
export interface MeshShape {
  services: number;
  workloadsPerService: number;
  namespaces: number;
  scenario: 'default' | 'sidecar';
}

/** The benchmark's mesh: 1,000 services × 10 workloads in 10 namespaces. */
export const DEFAULT_SHAPE: MeshShape = { services: 1000, workloadsPerService: 10, namespaces: 10, scenario: 'default' };

/** Namespace of service `j`. */
export function serviceNamespace(shape: MeshShape, j: number): string {
  return `ns-${j % shape.namespaces}`;
}

/** Host of service `j`. */
export function serviceHost(shape: MeshShape, j: number): string {
  return `svc-${j}.${serviceNamespace(shape, j)}.svc.cluster.local`;
}

/** The EDS name (outbound cluster) of service `j`'s port 8080, as Skiff names it. */
export function serviceEdsName(shape: MeshShape, j: number): string {
  return `outbound|8080||${serviceHost(shape, j)}`;
}

/** Address of workload `i` (with `generation` > 0 the address moves to 10.200+ for a change). */
export function workloadAddress(i: number, generation = 0): string {
  const first = generation === 0 ? 10 : 11 + (generation % 200);
  return `${first}.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}

/** Namespace, service and node metadata of workload `i`. */
export function workloadInfo(shape: MeshShape, i: number): { name: string; namespace: string; service: number; address: string } {
  const service = Math.floor(i / shape.workloadsPerService);
  return { name: `we-${i}`, namespace: serviceNamespace(shape, service), service, address: workloadAddress(i) };
}

/** The YAML of service `j`'s file; `moved` maps workload index → address generation. */
export function serviceFile(shape: MeshShape, j: number, moved: ReadonlyMap<number, number> = new Map()): string {
  const ns = serviceNamespace(shape, j);
  const docs: string[] = [
    [
      'apiVersion: networking.istio.io/v1',
      'kind: ServiceEntry',
      'metadata:',
      `  name: svc-${j}`,
      `  namespace: ${ns}`,
      'spec:',
      `  hosts: [${serviceHost(shape, j)}]`,
      '  location: MESH_INTERNAL',
      '  resolution: STATIC',
      '  ports:',
      '    - {name: http, number: 8080, protocol: HTTP}',
      '  workloadSelector:',
      `    labels: {app: svc-${j}}`,
    ].join('\n'),
  ];
  for (let w = 0; w < shape.workloadsPerService; w++) {
    const i = j * shape.workloadsPerService + w;
    docs.push(
      [
        'apiVersion: networking.istio.io/v1',
        'kind: WorkloadEntry',
        'metadata:',
        `  name: we-${i}`,
        `  namespace: ${ns}`,
        'spec:',
        `  address: ${workloadAddress(i, moved.get(i) ?? 0)}`,
        '  ports: {http: 9080}',
        '  serviceAccount: bench',
        `  labels: {app: svc-${j}}`,
      ].join('\n'),
    );
  }
  return docs.join('\n---\n') + '\n';
}

/** Service indexes a proxy in namespace `ns-<k>` sees in the `sidecar` scenario. */
export function sidecarServices(shape: MeshShape, k: number): number[] {
  const own: number[] = [];
  for (let j = k; j < shape.services && own.length < 9; j += shape.namespaces) if (j !== 0) own.push(j);
  return [0, ...own];
}

function sidecarFile(shape: MeshShape, k: number): string {
  const hosts = sidecarServices(shape, k).map((j) => `"${serviceNamespace(shape, j)}/${serviceHost(shape, j)}"`);
  return [
    'apiVersion: networking.istio.io/v1',
    'kind: Sidecar',
    'metadata:',
    '  name: default',
    `  namespace: ns-${k}`,
    'spec:',
    '  egress:',
    `    - hosts: [${hosts.join(', ')}]`,
    '',
  ].join('\n');
}

/** File name of service `j`. */
export function serviceFileName(dir: string, j: number): string {
  return path.join(dir, `svc-${j}.yaml`);
}

/** Writes the whole mesh into `dir` (created if needed). */
export function writeMesh(dir: string, shape: MeshShape): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let j = 0; j < shape.services; j++) fs.writeFileSync(serviceFileName(dir, j), serviceFile(shape, j));
  if (shape.scenario === 'sidecar') for (let k = 0; k < shape.namespaces; k++) fs.writeFileSync(path.join(dir, `sidecar-ns-${k}.yaml`), sidecarFile(shape, k));
}

/**
 * Rewrites service `j`'s file so that its workload `j * workloadsPerService + 1` moves to a new
 * address (generation `generation`): the service's ClusterLoadAssignment changes and nothing else.
 * Workload `…1` is never a simulated proxy (proxies use every `stride`-th workload, stride ≥ 5).
 */
export function changeService(dir: string, shape: MeshShape, j: number, generation: number): void {
  const moved = new Map([[j * shape.workloadsPerService + 1, generation]]);
  const file = serviceFileName(dir, j);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, serviceFile(shape, j, moved));
  fs.renameSync(tmp, file);
}
