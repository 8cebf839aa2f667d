/**
 * `node --import tsx bench/fanout/profile.ts [sidecar|default] [proxies]`: where a push's time goes
 * per proxy, in-process, on the fan-out benchmark's mesh: loading the YAML directory, publishing
 * the registry snapshot, building the push context (IR), and translating it to Envoy resources
 * whole (`translateEnvoy`) or with the outbound part shared between proxies (`SharedTranslator`,
 * what `skiff serve` does). Prints one JSON object. Add `--cpu-prof` to node for a profile.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SharedTranslator } from '../../src/cli/serve/proxies.js';
import { silentLogger } from '../../src/observability/logger.js';
import { buildProxyIR } from '../../src/push/index.js';
import { parseProxyNode } from '../../src/push/node.js';
import { createRegistry } from '../../src/registry/index.js';
import { loadDirectory } from '../../src/sources/file/load.js';
import { translateEnvoy } from '../../src/translate/envoy/index.js';
import { DEFAULT_SHAPE, workloadInfo, writeMesh, type MeshShape } from './mesh.js';

const ms = (t: number): number => Math.round((performance.now() - t) * 100) / 100;

async function main(): Promise<void> {
  const scenario = process.argv[2] === 'default' ? 'default' : 'sidecar';
  const k = Number(process.argv[3] ?? 100);
  const shape: MeshShape = { ...DEFAULT_SHAPE, scenario };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-fanout-profile-'));
  try {
    writeMesh(dir, shape);
    let t = performance.now();
    const loaded = await loadDirectory(dir);
    const loadMs = ms(t);
    const registry = createRegistry({ logger: silentLogger() });
    t = performance.now();
    registry.setSource('file', loaded.resources);
    registry.flush();
    const publishMs = ms(t);
    const snapshot = registry.current();
    const irs = [];
    t = performance.now();
    for (let p = 0; p < k; p++) {
      const w = workloadInfo(shape, p * 5);
      const identity = parseProxyNode(
        { id: `sidecar~${w.address}~${w.name}.${w.namespace}~${w.namespace}.svc.cluster.local`, metadata: { NAMESPACE: w.namespace, SERVICE_ACCOUNT: 'bench', WORKLOAD_NAME: w.name, LABELS: { app: `svc-${w.service}` } } },
        'cluster.local',
      );
      irs.push(buildProxyIR(snapshot, identity, {}));
    }
    const buildMs = ms(t) / k;
    t = performance.now();
    for (const ir of irs) translateEnvoy(ir);
    const wholeMs = ms(t) / k;
    const shared = new SharedTranslator();
    t = performance.now();
    for (const ir of irs) shared.translate(ir);
    const sharedMs = ms(t) / k;
    registry.setSource('file', loaded.resources.map((r) => (r.kind === 'WorkloadEntry' && r.metadata.name === 'we-1' ? { ...r, spec: { ...r.spec, address: '11.0.0.1' } } : r)));
    t = performance.now();
    registry.flush();
    const republishMs = ms(t);
    registry.close();
    const round = (x: number): number => Math.round(x * 100) / 100;
    process.stdout.write(
      `${JSON.stringify({
        scenario,
        proxies: k,
        loadDirectoryMs: loadMs,
        registryPublishMs: { initial: publishMs, oneWorkloadChanged: republishMs },
        perProxyMs: { buildIR: round(buildMs), translateWhole: round(wholeMs), translateShared: round(sharedMs) },
        shared: shared.statistics(),
      })}\n`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
