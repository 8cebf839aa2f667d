/**
 * supervisord for end-to-end tests of the Ansible roles (issue 7 §3): one supervisord per
 * simulated host, with Debian's layout under that host's prefix
 * (`<prefix>/etc/supervisor/supervisord.conf` including `<prefix>/etc/supervisor/conf.d/*.conf`),
 * which is where the roles put their programs when `skiff_service_manager: supervisor`. Started
 * inside a lab VM's network namespace, every program it runs (the agent, and Envoy under it) is on
 * that VM's network, like a service on a real VM.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Lab } from './netns.js';
import type { Proc, ProcessGroup } from './processes.js';

/**
 * Installs the Debian packages of the given commands that are missing (`{command: package}`),
 * when this process is root (as in CI; .ci/run installs them too). Returns the commands still
 * missing afterwards, so a test can skip naming them.
 */
export function ensureDebianCommands(commands: Record<string, string>): string[] {
  const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  const absent = Object.keys(commands).filter((c) => !have(c));
  if (absent.length > 0 && process.getuid?.() === 0 && have('apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
    spawnSync('apt-get', ['install', '-y', '-qq', ...new Set(absent.map((c) => commands[c]!))], { stdio: 'ignore', env, timeout: 600_000 });
  }
  return Object.keys(commands).filter((c) => !have(c));
}

/** True when Debian's `supervisor` package (supervisord and supervisorctl) is installed. */
export function haveSupervisor(): boolean {
  try {
    execFileSync('supervisorctl', ['-h'], { stdio: 'ignore' });
    execFileSync('supervisord', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A running supervisord. */
export interface Supervisord {
  /** `<prefix>/etc/supervisor/supervisord.conf`. */
  configPath: string;
  proc: Proc;
  /** Runs `supervisorctl -c <config> ...args` and returns its stdout (supervisorctl exit codes are not errors here). */
  ctl(args: string[]): string;
  /** The pid of program `name`, or undefined when it is not running. */
  pid(name: string): number | undefined;
  /** Stops every program (waiting for their stop timeouts), then supervisord itself. */
  stop(): Promise<void>;
}

/** Writes the supervisord configuration for a host whose paths start with `prefix`. */
export function writeSupervisordConfig(prefix: string): string {
  const etc = path.join(prefix, 'etc', 'supervisor');
  const run = path.join(prefix, 'run');
  const log = path.join(prefix, 'var', 'log', 'supervisor');
  for (const d of [path.join(etc, 'conf.d'), run, log]) fs.mkdirSync(d, { recursive: true });
  const config = path.join(etc, 'supervisord.conf');
  fs.writeFileSync(
    config,
    [
      '[unix_http_server]',
      `file=${path.join(run, 'supervisor.sock')}`,
      'chmod=0700',
      '',
      '[supervisord]',
      `logfile=${path.join(log, 'supervisord.log')}`,
      `pidfile=${path.join(run, 'supervisord.pid')}`,
      `childlogdir=${log}`,
      'nodaemon=true',
      'user=root',
      '',
      '[rpcinterface:supervisor]',
      'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
      '',
      '[supervisorctl]',
      `serverurl=unix://${path.join(run, 'supervisor.sock')}`,
      '',
      '[include]',
      `files = ${path.join(etc, 'conf.d')}/*.conf`,
      '',
    ].join('\n'),
  );
  return config;
}

/**
 * Starts supervisord for `prefix` (inside lab VM `on.vm` when given) and waits until
 * supervisorctl can talk to it.
 */
export async function startSupervisord(group: ProcessGroup, name: string, prefix: string, on?: { lab: Lab; vm: string }): Promise<Supervisord> {
  const configPath = writeSupervisordConfig(prefix);
  const argv = ['-n', '-c', configPath];
  const child = on ? on.lab.spawnIn(on.vm, 'supervisord', argv, { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn('supervisord', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = group.add(`supervisord-${name}`, child);
  const ctl = (args: string[]): string => {
    try {
      return execFileSync('supervisorctl', ['-c', configPath, ...args], { encoding: 'utf8', timeout: 120_000 });
    } catch (err) {
      const e = err as { stdout?: string };
      return e.stdout ?? '';
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      execFileSync('supervisorctl', ['-c', configPath, 'pid'], { stdio: 'ignore', timeout: 5000 });
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`supervisord for ${name} did not start:\n${proc.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    configPath,
    proc,
    ctl,
    pid: (program) => {
      const n = Number(ctl(['pid', program]).trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      ctl(['stop', 'all']);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}
