/**
 * Reads every `*.yaml`, `*.yml` and `*.json` file under a directory (recursively, in sorted path
 * order so results are deterministic), parses them with `parseResources` and runs the set-level
 * checks of `validateResourceSet` over all of them together.
 *
 * Hidden files and directories (names starting with `.`, e.g. editor swap files or the `..data`
 * directory of a Kubernetes ConfigMap mount) are skipped; symbolic links are followed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { PathSegment, ResourceLocator } from '../../resources/issues.js';
import { parseResources } from '../../resources/parse.js';
import type { MeshResource, ResourceIssue } from '../../resources/types.js';
import { validateResourceSet } from '../../resources/validate.js';

/** File names the file source reads. */
export const CONFIG_FILE_PATTERN = /\.(ya?ml|json)$/i;

/** Everything found under a directory; the configuration is valid when `errors` is empty. */
export interface LoadResult {
  resources: MeshResource[];
  warnings: ResourceIssue[];
  errors: ResourceIssue[];
}

function errorMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file or directory';
  if (e.code === 'EACCES') return 'permission denied';
  return e.message ?? String(err);
}

/** Lists config files under `dir` (relative paths joined onto `dir`), sorted. */
async function listConfigFiles(dir: string, errors: ResourceIssue[]): Promise<string[]> {
  const out: string[] = [];
  const seenDirs = new Set<string>();
  const walk = async (current: string): Promise<void> => {
    const real = await fs.realpath(current);
    if (seenDirs.has(real)) return; // a symlink loop
    seenDirs.add(real);
    const entries = await fs.readdir(current, { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const p = path.join(current, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const st = await fs.stat(p);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch (err) {
          errors.push({ file: p, line: 0, path: '', message: `cannot read: ${errorMessage(err)}` });
          continue;
        }
      }
      if (isDir) await walk(p);
      else if (isFile && CONFIG_FILE_PATTERN.test(entry.name)) out.push(p);
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Loads and validates every config file under `dir`, or the single file `dir` names. Never
 * rejects for bad input: a missing directory, an unreadable file or an invalid resource each
 * become an entry of `errors` (`file:line path: message` with `formatIssue`).
 */
export async function loadDirectory(dir: string): Promise<LoadResult> {
  const resources: MeshResource[] = [];
  const warnings: ResourceIssue[] = [];
  const errors: ResourceIssue[] = [];
  const locators = new Map<MeshResource, ResourceLocator>();

  let files: string[];
  try {
    const st = await fs.stat(dir);
    files = st.isDirectory() ? await listConfigFiles(dir, errors) : [dir];
  } catch (err) {
    errors.push({ file: dir, line: 0, path: '', message: `cannot read config: ${errorMessage(err)}` });
    return { resources, warnings, errors };
  }

  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      errors.push({ file, line: 0, path: '', message: `cannot read: ${errorMessage(err)}` });
      continue;
    }
    const parsed = parseResources(text, file);
    resources.push(...parsed.resources);
    warnings.push(...parsed.warnings);
    errors.push(...parsed.errors);
    for (const r of parsed.resources) locators.set(r, parsed.locate);
  }

  const locate: ResourceLocator = (r: MeshResource, p: readonly PathSegment[]) => locators.get(r)?.(r, p);
  const set = validateResourceSet(resources, locate);
  warnings.push(...set.warnings);
  errors.push(...set.errors);
  return { resources, warnings, errors };
}
