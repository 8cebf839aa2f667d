/** The Skiff version and install root, found from package.json next to the sources or dist/. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding Skiff's package.json (the checkout or the installed package). */
export function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'skiff') return dir;
    }
    dir = path.dirname(dir);
  }
  return undefined;
}

/** Returns `package.json`'s version, or `0.0.0-unknown` if it cannot be found. */
export function skiffVersion(): string {
  const root = packageRoot();
  if (!root) return '0.0.0-unknown';
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0-unknown';
}
