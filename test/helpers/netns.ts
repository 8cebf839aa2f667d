/**
 * Simulated VMs for end-to-end tests (DESIGN.md §10): each VM is its own network namespace with
 * its own loopback and one address from 198.18.0.0/15 (reserved for lab testing, never leaves the
 * machine) on a veth pair attached to a bridge in the host namespace. The host side of the bridge
 * (`.1`) is where the control plane listens. Requires root (CI runs as root).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import crypto from 'node:crypto';

/** One simulated VM. */
export interface LabVm {
  name: string;
  /** Network namespace name. */
  ns: string;
  /** The VM's address on the lab bridge. */
  ip: string;
}

/** A lab network: a bridge, the host's address on it, and the VMs. */
export interface Lab {
  hostIp: string;
  vms: Record<string, LabVm>;
  /** Spawns a command inside a VM's namespace. */
  spawnIn(vm: string, command: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs a command inside a VM's namespace and returns stdout. */
  execIn(vm: string, command: string, args: string[]): string;
  /** Deletes the namespaces and the bridge. Idempotent. */
  destroy(): void;
}

/** True when this process may create network namespaces (root with `ip` available). */
export function canCreateNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Creates a lab with the given VM names. `subnet` is the third octet of 198.18.<subnet>.0/24;
 * pick distinct values for tests that may run at the same time.
 */
export function createLab(vmNames: string[], subnet: number): Lab {
  const id = crypto.randomBytes(2).toString('hex');
  const bridge = `skb${id}`;
  const prefix = `198.18.${subnet}`;
  const hostIp = `${prefix}.1`;
  const vms: Record<string, LabVm> = {};
  const cleanups: (() => void)[] = [];
  const destroy = () => {
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch {
        /* already gone */
      }
    }
    cleanups.length = 0;
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    cleanups.push(() => ip('link', 'del', bridge));
    ip('addr', 'add', `${hostIp}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    vmNames.forEach((name, i) => {
      const ns = `sk${id}${name}`;
      const hostEnd = `skh${id}${i}`;
      const vmEnd = `skv${id}${i}`;
      const vmIp = `${prefix}.${i + 2}`;
      ip('netns', 'add', ns);
      cleanups.push(() => ip('netns', 'del', ns));
      ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', vmEnd);
      cleanups.push(() => ip('link', 'del', hostEnd));
      ip('link', 'set', vmEnd, 'netns', ns);
      ip('link', 'set', hostEnd, 'master', bridge);
      ip('link', 'set', hostEnd, 'up');
      ip('-n', ns, 'addr', 'add', `${vmIp}/24`, 'dev', vmEnd);
      ip('-n', ns, 'link', 'set', vmEnd, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'route', 'add', 'default', 'via', hostIp);
      vms[name] = { name, ns, ip: vmIp };
    });
  } catch (err) {
    destroy();
    throw err;
  }
  const nsOf = (vm: string): string => {
    const v = vms[vm];
    if (!v) throw new Error(`no VM ${vm} in lab`);
    return v.ns;
  };
  return {
    hostIp,
    vms,
    spawnIn: (vm, command, args, opts = {}) => spawn('ip', ['netns', 'exec', nsOf(vm), command, ...args], opts),
    execIn: (vm, command, args) => execFileSync('ip', ['netns', 'exec', nsOf(vm), command, ...args], { encoding: 'utf8' }),
    destroy,
  };
}
