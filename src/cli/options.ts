/** Shared CLI defaults (issue 2 §1): data dir and config dir resolution. */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { packageRoot } from './version.js';

/** `--data-dir` default: `./.skiff` when run from a checkout (packaged units pass /var/lib/skiff). */
export function defaultDataDir(): string {
  return path.resolve('.skiff');
}

/** `--config-dir` default: `./mesh` if it exists, else the bundled `examples/basic`. */
export function defaultConfigDir(): string {
  const local = path.resolve('mesh');
  if (fs.existsSync(local)) return local;
  return path.join(packageRoot() ?? process.cwd(), 'examples', 'basic');
}

/** Commander argument parser for a TCP port (0 = ephemeral). */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port 0-65535, got "${value}"`);
  return n;
}

/** Commander collector for repeatable flags. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
