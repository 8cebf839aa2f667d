/**
 * Child processes for end-to-end tests: output captured to a log (shown when a test fails),
 * waiting for a line, and killing everything at the end even if the test threw.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** A started child with its collected output. */
export interface Proc {
  name: string;
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves when `pattern` appears in the output (rejects after `timeoutMs` or on exit). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves when the process exits. */
  exited: Promise<number | null>;
}

/** Tracks processes so a test can kill them all in `after()`. */
export class ProcessGroup {
  private readonly procs: Proc[] = [];

  /** Wraps an already spawned child. */
  add(name: string, child: ChildProcess): Proc {
    let out = '';
    const waiters = new Set<() => void>();
    const onData = (d: Buffer) => {
      out += d.toString('utf8');
      if (out.length > 4_000_000) out = out.slice(-2_000_000);
      for (const w of waiters) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const proc: Proc = {
      name,
      child,
      output: () => out,
      exited,
      waitFor: (pattern, timeoutMs = 30_000) =>
        new Promise((resolve, reject) => {
          const check = () => {
            const m = out.match(pattern);
            if (m) {
              cleanup();
              resolve(m);
            }
          };
          const timer = setTimeout(() => {
            cleanup();
            reject(new Error(`${name}: timed out waiting for ${String(pattern)}; output tail:\n${out.slice(-3000)}`));
          }, timeoutMs);
          const onExit = () => {
            check();
            cleanup();
            reject(new Error(`${name}: exited while waiting for ${String(pattern)}; output tail:\n${out.slice(-3000)}`));
          };
          const cleanup = () => {
            clearTimeout(timer);
            waiters.delete(check);
            child.off('exit', onExit);
          };
          waiters.add(check);
          child.on('exit', onExit);
          check();
        }),
    };
    this.procs.push(proc);
    return proc;
  }

  /** All processes' output, for a failure message. */
  dump(): string {
    return this.procs.map((p) => `----- ${p.name} -----\n${p.output().slice(-6000)}`).join('\n');
  }

  /** SIGTERM everything, then SIGKILL what is left after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    const alive = this.procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    for (const p of alive) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(alive.map((p) => p.exited)), new Promise((r) => setTimeout(r, graceMs))]);
    for (const p of alive) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(alive.map((p) => p.exited));
  }
}

/** Returns a TCP port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
