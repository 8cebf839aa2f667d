/**
 * Reads every `*.yaml`, `*.yml` and `*.json` file under a directory (recursively, in sorted path
 * order so results are deterministic), parses them with `parseResources` and runs the set-level
 * checks of `validateResourceSet` over all of them together.
 *
 * Hidden files and directories (names starting with `.`, e.g. editor swap files or the `..data`
 * directory of a Kubernetes ConfigMap mount) are skipped; symbolic links are followed. So a
 * ConfigMap mount's files are read once each, through its top-level `a.yaml -> ..data/a.yaml`
 * links, under the top-level names (which their resources' `origin.file` gives).
 *
 * Incremental reloads: given a {@link LoadCache} (the file source keeps one), each file's parse
 * result is kept keyed by its path and its exact bytes. A reload still lists and reads every file,
 * but re-parses only a file whose bytes differ from those of its last parse; other files give back
 * the very same resource objects as before. Bytes, not size/mtime/inode, decide: a same-size
 * rewrite within one timestamp tick (an address `10.x` → `12.x` written twice in a millisecond)
 * would look unchanged to `stat`, while comparing the bytes costs one read per file (~20 ms per
 * 1,000 small files). Set-level checks always run over the whole set: an edit in one file can
 * break a reference in another.
 */
import { readFile } from 'node:fs';
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

/** One file's last parse (an entry of {@link LoadCache}): its bytes and what `parseResources` made of them. */
export interface CachedFile {
  /** The path the file was listed (and its resources' `origin.file` set) under. */
  file: string;
  bytes: Buffer;
  resources: MeshResource[];
  warnings: ResourceIssue[];
  errors: ResourceIssue[];
  /**
   * Lines found for set-level issues, per resource and JSON path (`JSON.stringify` of the path),
   * so an issue that stays (a ServiceEntry that selects nothing yet) does not cost a re-parse of
   * its file on every reload.
   */
  lines: Map<MeshResource, Map<string, number | undefined>>;
}

/**
 * Parse results kept between {@link loadDirectory} calls, by file path. Reusing one makes a reload
 * re-parse only the files whose content changed. Holds each config file's bytes and resources
 * (not the YAML syntax trees), so its size is about that of the parsed configuration. Safe to
 * share between loads of one directory run one after another; every entry is checked against the
 * file's current bytes before use, so a stale entry is never served.
 */
export interface LoadCache {
  /** Entries by file path (as listed, joined onto the loaded directory); only `loadDirectory` changes it. */
  readonly files: Map<string, CachedFile>;
}

/** An empty {@link LoadCache}. */
export function createLoadCache(): LoadCache {
  return { files: new Map() };
}

/** Reads of config files in flight at once (libuv's pool has 4 threads; more only queue). */
const READ_CONCURRENCY = 16;

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

/** `fs.readFile` as a promise (the callback form: one libuv request, faster than `fs.promises`'s open/stat/read/close). */
function readBytes(file: string): Promise<Buffer> {
  return new Promise((resolve, reject) => readFile(file, (err, data) => (err ? reject(err) : resolve(data))));
}

/** Reads every file (at most {@link READ_CONCURRENCY} at once); each slot holds the bytes or the error. */
async function readAll(files: readonly string[]): Promise<(Buffer | { error: unknown })[]> {
  const out: (Buffer | { error: unknown })[] = new Array<Buffer | { error: unknown }>(files.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      try {
        out[i] = await readBytes(files[i]!);
      } catch (error) {
        out[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, files.length) }, worker));
  return out;
}

/**
 * Loads and validates every config file under `dir`, or the single file `dir` names. Never
 * rejects for bad input: a missing directory, an unreadable file or an invalid resource each
 * become an entry of `errors` (`file:line path: message` with `formatIssue`).
 *
 * With `cache` (see {@link createLoadCache}) only files whose bytes changed since the previous load
 * with that cache are parsed again; the result is the same as without it, except that resources
 * of unchanged files are the same objects as last time (callers must not mutate them). Entries of
 * files no longer listed are dropped (kept while the listing is empty).
 */
export async function loadDirectory(dir: string, cache: LoadCache = createLoadCache()): Promise<LoadResult> {
  const resources: MeshResource[] = [];
  const warnings: ResourceIssue[] = [];
  const errors: ResourceIssue[] = [];

  let files: string[];
  try {
    const st = await fs.stat(dir);
    files = st.isDirectory() ? await listConfigFiles(dir, errors) : [dir];
  } catch (err) {
    errors.push({ file: dir, line: 0, path: '', message: `cannot read config: ${errorMessage(err)}` });
    return { resources, warnings, errors };
  }

  const contents = await readAll(files);
  /** Which file entry each resource came from, for locating set-level issues. */
  const entryOf = new Map<MeshResource, CachedFile>();
  /** Locators of the files parsed in this load (their syntax trees live until the load ends). */
  const fresh = new Map<CachedFile, ResourceLocator>();
  // Drop the entries of files no longer listed, except when nothing is listed: a directory caught
  // empty mid-deploy (which the file source refuses) usually comes back with the same files.
  if (files.length > 0) {
    const listed = new Set(files);
    for (const p of cache.files.keys()) if (!listed.has(p)) cache.files.delete(p);
  }

  files.forEach((file, i) => {
    const bytes = contents[i]!;
    if (!Buffer.isBuffer(bytes)) {
      cache.files.delete(file);
      errors.push({ file, line: 0, path: '', message: `cannot read: ${errorMessage(bytes.error)}` });
      return;
    }
    let entry = cache.files.get(file);
    if (entry === undefined || !entry.bytes.equals(bytes)) {
      const parsed = parseResources(bytes.toString('utf8'), file);
      entry = { file, bytes, resources: parsed.resources, warnings: parsed.warnings, errors: parsed.errors, lines: new Map() };
      cache.files.set(file, entry);
      fresh.set(entry, parsed.locate);
    }
    for (const r of entry.resources) {
      resources.push(r);
      entryOf.set(r, entry);
    }
    for (const w of entry.warnings) warnings.push(w);
    for (const e of entry.errors) errors.push(e);
  });

  // Set-level issues are rare: a file parsed in an earlier load is parsed again (from the bytes
  // that made its cached resources) only when one of its resources needs a line number not
  // found before.
  const relocated = new Map<CachedFile, ResourceLocator>();
  const lineIn = (entry: CachedFile, r: MeshResource, p: readonly PathSegment[]): number | undefined => {
    const own = fresh.get(entry);
    if (own) return own(r, p);
    let again = relocated.get(entry);
    if (again === undefined) {
      const reparsed = parseResources(entry.bytes.toString('utf8'), entry.file);
      // Parsing is deterministic: the n-th resource of the re-parse is the n-th cached one.
      const twin = new Map(entry.resources.map((x, n) => [x, reparsed.resources[n]]));
      again = (x, q) => {
        const t = twin.get(x);
        return t === undefined ? undefined : reparsed.locate(t, q);
      };
      relocated.set(entry, again);
    }
    return again(r, p);
  };
  const locate: ResourceLocator = (r: MeshResource, p: readonly PathSegment[]) => {
    const entry = entryOf.get(r);
    if (entry === undefined) return undefined;
    const key = JSON.stringify(p);
    let known = entry.lines.get(r);
    if (known === undefined) entry.lines.set(r, (known = new Map<string, number | undefined>()));
    if (known.has(key)) return known.get(key);
    const line = lineIn(entry, r, p);
    known.set(key, line);
    return line;
  };
  const set = validateResourceSet(resources, locate);
  for (const w of set.warnings) warnings.push(w);
  for (const e of set.errors) errors.push(e);
  return { resources, warnings, errors };
}
