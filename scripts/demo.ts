/**
 * `npm run demo`: the quick start. Starts the control plane on examples/basic and two simulated
 * VMs on this machine without root — frontend-1 on 127.0.0.2 and backend-1 on 127.0.0.3, each
 * with a real `skiff agent`, a real Envoy (distinct admin ports, --use-dynamic-base-id) and an echo
 * app — then sends traffic and prints what happened: requests, identities, allowed/refused.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ProcessGroup, freePort } from '../test/helpers/processes.js';
import { REPO, createToken, eventually, probe, startAgentProc, startControlPlaneProc, startEcho } from '../test/helpers/skiff.js';

const BACKEND = 'backend.demo.svc.cluster.local';
const group = new ProcessGroup();
const socketDirs: string[] = [];
const say = (s: string) => process.stdout.write(s + '\n');

async function plaintext(target: string): Promise<string> {
  return new Promise((resolve) => {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const sock = net.connect({ host, port });
    let got = '';
    sock.setTimeout(3000, () => sock.destroy());
    sock.on('connect', () => sock.write('GET / HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n'));
    sock.on('data', (d: Buffer) => (got += d.toString()));
    sock.on('close', () => resolve(got ? `answered: ${got.split('\r\n')[0]}` : 'refused (connection closed without a response)'));
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(`refused (${e.code ?? e.message})`));
  });
}

async function main(): Promise<void> {
  const dataDir = path.join(REPO, '.skiff', 'demo');
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  say('skiff demo: control plane + two simulated VMs (frontend-1 on 127.0.0.2, backend-1 on 127.0.0.3)');

  const cp = await startControlPlaneProc(group, { configDir: path.join(REPO, 'examples', 'basic'), dataDir, address: '127.0.0.1' });
  say(`  control plane: xDS+CA on 127.0.0.1:${cp.grpcPort}, monitoring on 127.0.0.1:${cp.monitoringPort}, mesh from examples/basic`);

  const vms = [
    { name: 'frontend', ip: '127.0.0.2', app: 9081 },
    { name: 'backend', ip: '127.0.0.3', app: 9082 },
  ];
  for (const vm of vms) {
    const tokenFile = path.join(dataDir, `${vm.name}.token`);
    fs.writeFileSync(tokenFile, createToken(dataDir, 'demo', vm.name, ['--ttl', '15m', '--single-use']) + '\n', { mode: 0o600 });
    startEcho(group, `${vm.name}-1`, `127.0.0.1:${vm.app}`);
    const socketDir = fs.mkdtempSync('/tmp/skd-');
    socketDirs.push(socketDir);
    startAgentProc(group, {
      name: vm.name,
      controlPlane: `127.0.0.1:${cp.grpcPort}`,
      rootCert: path.join(dataDir, 'trust-bundle.pem'),
      tokenFile,
      namespace: 'demo',
      serviceAccount: vm.name,
      workloadName: `${vm.name}-1`,
      workloadIp: vm.ip,
      stateDir: path.join(dataDir, `vm-${vm.name}`),
      socketDir,
      adminPort: await freePort(),
      labels: { app: vm.name },
    });
    say(`  VM ${vm.name}-1: agent + Envoy on ${vm.ip}, app on 127.0.0.1:${vm.app}, identity spiffe://cluster.local/ns/demo/sa/${vm.name}`);
  }

  await eventually('the frontend sidecar to route to the backend', async () => {
    const [r] = await probe(['http', '--url', 'http://127.0.0.1:8080/', '--host', BACKEND]);
    return r?.status === 200;
  }, 90_000, 500);

  const results = await probe(['http', '--url', 'http://127.0.0.1:8080/orders', '--host', BACKEND, '--count', '10', '--interval-ms', '50']);
  const ok = results.filter((r) => r.status === 200);
  const identities = new Set(
    ok.map((r) => /URI=([^;,]+)/.exec((r.body as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] ?? '')?.[1] ?? '(none)'),
  );
  const apps = new Set(ok.map((r) => (r.body as { app: string }).app));
  const direct = await plaintext('127.0.0.3:8080');
  const rejects = [...(await cp.metric('skiff_xds_rejects_total')).values()].reduce((a, b) => a + b, 0);
  const acks = [...(await cp.metric('skiff_xds_acks_total')).values()].reduce((a, b) => a + b, 0);
  const signed = await cp.metric('skiff_ca_csr_total');

  say('');
  say('summary');
  say(`  requests frontend → backend via sidecars (mTLS): ${ok.length}/${results.length} succeeded (HTTP 200), answered by ${[...apps].join(', ')}`);
  say(`  identity the backend saw (x-forwarded-client-cert): ${[...identities].join(', ')}`);
  say(`  plaintext straight to the backend's sidecar (127.0.0.3:8080, mesh-wide STRICT): ${direct}`);
  say(`  certificates signed by the CA: ${[...signed.entries()].map(([k, v]) => `${k || 'total'}=${v}`).join(' ')}`);
  say(`  xDS: ${acks} ACKs, ${rejects} NACKs`);
  const success = ok.length === results.length && identities.has('spiffe://cluster.local/ns/demo/sa/frontend') && direct.startsWith('refused') && rejects === 0;
  say(success ? 'demo: OK' : 'demo: FAILED');
  if (!success) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n${group.dump()}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await group.stopAll();
    for (const d of socketDirs) fs.rmSync(d, { recursive: true, force: true });
  });
