/**
 * Starting real Skiff processes for end-to-end tests: the control plane (`skiff serve`), bootstrap
 * tokens (`skiff token create`) and agents (`skiff agent`, optionally inside a lab VM's network
 * namespace). Every process is the real CLI, as an operator would run it.
 */
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from './netns.js';
import type { Proc, ProcessGroup } from './processes.js';

/** The repository root. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** argv prefix that runs the CLI from source. */
export const SKIFF = [process.execPath, '--import', 'tsx', path.join(REPO, 'src', 'cli', 'main.ts')];

/** A started control plane and where to reach it. */
export interface ControlPlaneProc {
  proc: Proc;
  grpcPort: number;
  monitoringPort: number;
  /** The HTTP API port. */
  apiPort: number;
  address: string;
  dataDir: string;
  /** Fetches a Prometheus metric family's samples as `labels → value`. */
  metric(name: string): Promise<Map<string, number>>;
}

/** Runs `skiff serve` and waits for its "control plane listening" log line. */
export async function startControlPlaneProc(
  group: ProcessGroup,
  opts: { configDir: string; dataDir: string; address: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv },
): Promise<ControlPlaneProc> {
  const [cmd, ...pre] = SKIFF as [string, ...string[]];
  const child = spawn(
    cmd,
    [...pre, 'serve', '--config-dir', opts.configDir, '--data-dir', opts.dataDir, '--listen-address', opts.address, '--grpc-port', '0', '--monitoring-port', '0', '--api-port', '0', '--ip', opts.address, ...(opts.extraArgs ?? [])],
    { cwd: REPO, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const proc = group.add('control-plane', child);
  const m = await proc.waitFor(/"grpcPort":(\d+),"monitoringPort":(\d+),"apiPort":(\d+)/, 60_000);
  const grpcPort = Number(m[1]);
  const monitoringPort = Number(m[2]);
  const apiPort = Number(m[3]);
  return {
    proc,
    grpcPort,
    monitoringPort,
    apiPort,
    address: opts.address,
    dataDir: opts.dataDir,
    metric: async (name) => {
      const res = await fetch(`http://${opts.address}:${monitoringPort}/metrics`);
      const text = await res.text();
      const out = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const mm = /^(\S+?)(\{[^}]*\})?\s+(\S+)$/.exec(line);
        if (mm && mm[1] === name) out.set(mm[2] ?? '', Number(mm[3]));
      }
      return out;
    },
  };
}

/** Runs `skiff token create` and returns the token. */
export function createToken(dataDir: string, namespace: string, serviceAccount: string, extra: string[] = []): string {
  const [cmd, ...pre] = SKIFF as [string, ...string[]];
  return execFileSync(cmd, [...pre, 'token', 'create', '--data-dir', dataDir, '--namespace', namespace, '--service-account', serviceAccount, ...extra], {
    cwd: REPO,
    encoding: 'utf8',
  }).trim();
}

/** Flags for one agent. */
export interface AgentSpec {
  name: string;
  controlPlane: string;
  rootCert: string;
  tokenFile: string;
  namespace: string;
  serviceAccount: string;
  workloadName: string;
  workloadIp: string;
  stateDir: string;
  socketDir: string;
  adminPort: number;
  certTtl?: string;
  labels?: Record<string, string>;
  extraArgs?: string[];
}

/** argv for `skiff agent` from an {@link AgentSpec}. */
export function agentArgs(spec: AgentSpec): string[] {
  const args = [
    'agent',
    '--control-plane', spec.controlPlane,
    '--root-cert', spec.rootCert,
    '--token-file', spec.tokenFile,
    '--namespace', spec.namespace,
    '--service-account', spec.serviceAccount,
    '--workload-name', spec.workloadName,
    '--workload-ip', spec.workloadIp,
    '--state-dir', spec.stateDir,
    '--socket-dir', spec.socketDir,
    '--envoy-admin-port', String(spec.adminPort),
  ];
  if (spec.certTtl) args.push('--cert-ttl', spec.certTtl);
  for (const [k, v] of Object.entries(spec.labels ?? {})) args.push('--label', `${k}=${v}`);
  return [...args, ...(spec.extraArgs ?? [])];
}

/** Starts `skiff agent` on the host, or inside lab VM `vm` when `lab` is given. */
export function startAgentProc(group: ProcessGroup, spec: AgentSpec, lab?: { lab: Lab; vm: string }): Proc {
  const [cmd, ...pre] = SKIFF as [string, ...string[]];
  const argv = [...pre, ...agentArgs(spec)];
  const child = lab
    ? lab.lab.spawnIn(lab.vm, cmd, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(cmd, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  return group.add(`agent-${spec.name}`, child);
}

/** Starts the echo app (examples/apps/echo.ts). */
export function startEcho(group: ProcessGroup, name: string, listen: string, lab?: { lab: Lab; vm: string }): Proc {
  const argv = ['--import', 'tsx', path.join(REPO, 'examples', 'apps', 'echo.ts'), '--listen', listen, '--name', name];
  const child = lab ? lab.lab.spawnIn(lab.vm, process.execPath, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(process.execPath, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  return group.add(`app-${name}`, child);
}

/** One JSON line printed by test/helpers/probe.ts. */
export interface ProbeResult {
  ok: boolean;
  status?: number;
  error?: string;
  received?: string;
  body?: { app?: string; headers?: Record<string, string> } | string;
  at?: number;
}

/** Runs test/helpers/probe.ts inside lab VM `vm` (or on the host) and parses its JSON lines. */
export function probe(args: string[], lab?: { lab: Lab; vm: string }): Promise<ProbeResult[]> {
  const argv = ['--import', 'tsx', path.join(REPO, 'test', 'helpers', 'probe.ts'), ...args];
  const child = lab ? lab.lab.spawnIn(lab.vm, process.execPath, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(process.execPath, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`probe exited ${code}: ${err}`));
      resolve(
        out
          .split('\n')
          .filter((l) => l.trim().length > 0)
          .map((l) => JSON.parse(l) as ProbeResult),
      );
    });
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
