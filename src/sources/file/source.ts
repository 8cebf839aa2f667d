/**
 * The file source: watches a config directory (chokidar 4) and, after a burst of changes has gone
 * quiet, reloads the whole directory with `loadDirectory`. The source keeps a `LoadCache`, so a
 * reload re-parses only the files whose content changed; the set-level checks still run over the
 * whole directory, and unchanged files give back the same resource objects (which makes the
 * no-change comparison below cheap).
 *
 * All or nothing (DESIGN.md §3): if any file has any error the whole reload is rejected — each
 * issue is logged as `file:line path: message`, `configRejected{source="file"}` is counted,
 * `lastError()` says why, and `onUpdate` is not called, so the previous resources keep serving.
 * A valid reload counts `configAccepted`, logs its warnings and calls `onUpdate(resources)` —
 * unless the resources equal the ones last delivered, origins included, then nothing is called. A
 * renamed file (or a resource moved to another line) is delivered again, so `origin` names where
 * each resource is now.
 *
 * Swaps through symbolic links. chokidar watches the inodes the paths resolve to when it starts, so
 * two ways of replacing a whole configuration at once would go unseen:
 * - a Kubernetes ConfigMap/Secret mount (kubelet's atomic writer): `dir/a.yaml -> ..data/a.yaml`,
 *   `..data -> ..2026_11_29_10_00_00.123`; an update writes a new timestamped directory, points a
 *   new `..data_tmp` symlink at it and renames it over `..data`. The source also watches the
 *   directory's own entries (`fs.watch`, not recursive) and reloads on any event on an entry whose
 *   name starts with `..`. Those entries are never loaded themselves (`load.ts` skips dot-names):
 *   their files are read once, through the top-level symlinks.
 * - `dir` (or a directory above it) is a symlink that gets re-pointed (`ln -sfn v2 current`).
 *   Every `targetCheckMs` (default 1000 ms) the source resolves `dir` and `dir/..data` with
 *   `realpath` (two system calls); when either resolves elsewhere than before, it watches the new
 *   target (for `dir`) and reloads. The ConfigMap case is also caught by this check should an
 *   `fs.watch` event be lost.
 */
import { watch as watchEntries, promises as fsp, type FSWatcher as EntryWatcher } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../../observability/logger.js';
import type { ControlPlaneMetrics } from '../../observability/metrics.js';
import { sameResourceList } from '../../resources/equal.js';
import { ConfigRejectedError, formatIssue } from '../../resources/issues.js';
import type { MeshResource } from '../../resources/types.js';
import { CONFIG_FILE_PATTERN, createLoadCache, loadDirectory } from './load.js';

/** Options for {@link createFileSource}. */
export interface FileSourceOptions {
  /** The directory to watch (or a single file). */
  dir: string;
  logger: Logger;
  /** Counts accepted and rejected reloads under `source="file"`. */
  metrics?: Pick<ControlPlaneMetrics, 'configAccepted' | 'configRejected'>;
  /** Quiet period after the last change before reloading, in ms (default 100). */
  debounceMs?: number;
  /** Longest wait after the first change of a burst before reloading anyway, in ms (default 1000). */
  maxWaitMs?: number;
  /**
   * How often `dir` and `dir/..data` are resolved to notice a symlink re-pointed to another
   * directory, in ms (default 1000; 0 turns the check off).
   */
  targetCheckMs?: number;
  /** Called with the full resource set after each valid load that changed it (and the initial one). */
  onUpdate: (resources: MeshResource[]) => void;
}

/** A running file source. */
export interface FileSource {
  /**
   * Starts watching and loads the directory once. Rejects with a {@link ConfigRejectedError}
   * listing every issue when the initial configuration is invalid (nothing is watched then).
   */
  start(): Promise<void>;
  /** Stops watching and waits for a reload in progress. Idempotent. */
  stop(): Promise<void>;
  /** Why the last load was rejected (one `file:line path: message` per line), or undefined after a valid one. */
  lastError(): string | undefined;
  /**
   * Reloads now (as a change would); resolves true when the configuration was accepted. After
   * `stop()` nothing is loaded and it resolves with the state of the last load.
   */
  reload(): Promise<boolean>;
}

/** Creates a file source for `opts.dir`; nothing happens until `start()`. */
export function createFileSource(opts: FileSourceOptions): FileSource {
  const { dir, logger, metrics, onUpdate } = opts;
  const debounceMs = opts.debounceMs ?? 100;
  const maxWaitMs = opts.maxWaitMs ?? 1000;
  const targetCheckMs = opts.targetCheckMs ?? 1000;
  const root = path.resolve(dir);
  // Export both series from the start so increase() sees the first rejection.
  metrics?.configRejected.inc({ source: 'file' }, 0);
  metrics?.configAccepted.inc({ source: 'file' }, 0);

  let watcher: FSWatcher | undefined;
  /** `fs.watch` of the directory's own entries, for the `..data` swaps chokidar does not report. */
  let entryWatcher: EntryWatcher | undefined;
  let targetTimer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;
  /** What `dir` and `dir/..data` resolved to at the last check (`''`: did not resolve). */
  let targets: Targets | undefined;
  /** The watched directory, held open while watched (see `startWatching`). */
  let rootPin: FileHandle | undefined;
  /** The "does not resolve" warning was logged (once per episode). */
  let missingLogged = false;
  let timer: NodeJS.Timeout | undefined;
  let burstStart: number | undefined;
  let running: Promise<void> | undefined;
  let rerun = false;
  let stopped = false;
  let rejection: ConfigRejectedError | undefined;
  let delivered: readonly MeshResource[] | undefined;
  const cache = createLoadCache();

  /** Loads once; a rejection is kept in `rejection`. */
  async function load(): Promise<void> {
    const result = await loadDirectory(dir, cache);
    if (result.errors.length > 0) {
      rejection = new ConfigRejectedError(`config in ${dir} rejected (${result.errors.length} errors)`, result.errors);
      for (const issue of result.errors) logger.error({ file: issue.file, line: issue.line, path: issue.path }, formatIssue(issue));
      logger.error(
        { errors: result.errors.length },
        delivered === undefined ? 'config rejected; nothing is served until it is fixed' : 'config rejected; the previous configuration keeps serving',
      );
      metrics?.configRejected.inc({ source: 'file' });
      return;
    }
    if (result.resources.length === 0 && delivered !== undefined && delivered.length > 0) {
      // A directory caught mid-deploy (rm then cp, a checkout, rsync --delete) must not tear the
      // mesh down. Removing every resource on purpose takes a restart with the empty directory.
      const issue = { file: dir, line: 0, path: '', message: `no resources found (the serving config has ${delivered.length}); refusing to remove every resource — restart the control plane to serve an empty mesh` };
      rejection = new ConfigRejectedError(`config in ${dir} rejected: empty`, [issue]);
      logger.error({ serving: delivered.length }, formatIssue(issue));
      metrics?.configRejected.inc({ source: 'file' });
      return;
    }
    const wasRejected = rejection !== undefined;
    rejection = undefined;
    for (const issue of result.warnings) logger.warn({ file: issue.file, line: issue.line, path: issue.path }, formatIssue(issue));
    metrics?.configAccepted.inc({ source: 'file' });
    const sameContent = delivered !== undefined && sameResourceList(delivered, result.resources);
    if (sameContent && sameOrigins(delivered ?? [], result.resources)) {
      if (wasRejected) logger.info({ resources: result.resources.length }, 'config valid again; the serving configuration is unchanged');
      else logger.debug({ resources: result.resources.length }, 'config reloaded: no change');
      return;
    }
    if (sameContent) logger.info({ resources: result.resources.length }, 'config files renamed or reformatted: same resources, new file locations');
    else logger.info({ resources: result.resources.length, warnings: result.warnings.length }, 'config loaded');
    delivered = result.resources;
    try {
      onUpdate(result.resources);
    } catch (err) {
      logger.error({ err }, 'config update handler failed');
    }
  }

  /** Runs loads one at a time; a change during a load causes one more load after it. */
  function runLoads(): Promise<void> {
    if (running) {
      rerun = true;
      return running;
    }
    running = (async () => {
      do {
        rerun = false;
        try {
          await load();
        } catch (err) {
          logger.error({ err }, 'config reload failed');
        }
      } while (rerun && !stopped);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    const now = Date.now();
    burstStart ??= now;
    if (timer) clearTimeout(timer);
    const wait = Math.max(0, Math.min(debounceMs, burstStart + maxWaitMs - now));
    timer = setTimeout(() => {
      timer = undefined;
      burstStart = undefined;
      void runLoads();
    }, wait);
  }

  function ignored(p: string): boolean {
    const abs = path.resolve(p);
    if (abs === root) return false;
    return path.basename(abs).startsWith('.');
  }

  /** Starts chokidar on `dir` and, for a directory, `fs.watch` on its own entries. */
  async function startWatching(): Promise<void> {
    const w = watch(dir, { ignoreInitial: true, ignored });
    watcher = w;
    w.on('all', (event, p) => {
      if (event === 'addDir' || event === 'unlinkDir' || CONFIG_FILE_PATTERN.test(p)) schedule();
    });
    w.on('error', (err) => logger.error({ err }, 'watching the config directory failed'));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
    if (stopped) return;
    let isDir = false;
    try {
      isDir = (await fsp.stat(dir)).isDirectory();
    } catch {
      // A missing directory: the load reports it.
    }
    if (!isDir || stopped) return;
    try {
      // Holding the directory open keeps its inode allocated after an `rm -rf`, so a directory
      // re-created at the same path cannot reuse the inode number (`checkTargets` compares it).
      rootPin = await fsp.open(dir, 'r');
    } catch {
      // Unreadable or gone: the load reports it; the path check still runs.
    }
    if (stopped) {
      await rootPin?.close();
      rootPin = undefined;
      return;
    }
    try {
      // Kubernetes' atomic writer renames `..data_tmp` over `..data`: an event on a `..` entry.
      const ew = watchEntries(dir, (_event, name) => {
        if (name === null || name.startsWith('..')) schedule();
      });
      ew.on('error', (err) => {
        logger.error({ err }, 'watching the config directory entries failed');
        ew.close();
      });
      entryWatcher = ew;
    } catch (err) {
      logger.error({ err }, 'watching the config directory entries failed');
    }
  }

  async function stopWatching(): Promise<void> {
    entryWatcher?.close();
    entryWatcher = undefined;
    const pin = rootPin;
    rootPin = undefined;
    await pin?.close().catch(() => undefined);
    const w = watcher;
    watcher = undefined;
    if (w) await w.close();
  }

  /**
   * Compares what `dir` and `dir/..data` resolve to (path and inode) with the last check;
   * re-watches and reloads on a change. A directory replaced at the same path (`rm -rf` and a
   * copy, or a rename swap) has a new inode: the watchers were on the old one.
   */
  async function checkTargets(): Promise<void> {
    const now = await resolveTargets(dir);
    const before = targets;
    if (stopped || before === undefined) return;
    if (now.root === '') {
      // Caught mid-replacement (`ln -sfn` is unlink + symlink), or gone: look again next time.
      if (!missingLogged) logger.warn({ dir }, 'config directory does not resolve (missing, or a dangling symlink); the last configuration keeps serving');
      missingLogged = true;
      return;
    }
    missingLogged = false;
    targets = now;
    if (now.root !== before.root || now.rootId !== before.rootId) {
      const replaced = now.root === before.root;
      logger.info({ dir, target: now.root, previous: before.root }, replaced ? 'config directory was replaced; watching the new one' : 'config directory now resolves to another directory; watching it');
      await stopWatching();
      if (stopped) return;
      await startWatching();
      schedule();
    } else if (now.data !== before.data) {
      logger.debug({ dir, target: now.data }, 'config ..data now resolves to another directory');
      schedule();
    }
  }

  async function stop(): Promise<void> {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (targetTimer) clearInterval(targetTimer);
    targetTimer = undefined;
    if (checking) await checking;
    await stopWatching();
    if (running) await running;
  }

  return {
    async start() {
      await startWatching();
      targets = await resolveTargets(dir);
      await runLoads();
      const rejected = rejection;
      if (rejected) {
        await stop();
        throw rejected;
      }
      if (targetCheckMs > 0 && !stopped) {
        targetTimer = setInterval(() => {
          if (checking) return;
          checking = checkTargets()
            .catch((err: unknown) => logger.error({ err }, 'checking where the config directory resolves failed'))
            .finally(() => {
              checking = undefined;
            });
        }, targetCheckMs);
        targetTimer.unref();
      }
      logger.info({ dir }, 'watching config directory');
    },
    stop,
    lastError: () => (rejection ? rejection.issues.map(formatIssue).join('\n') : undefined),
    async reload() {
      if (stopped) return rejection === undefined;
      // A replaced directory (new inode, or a re-pointed symlink) is watched anew first.
      if (targets !== undefined) {
        while (checking) await checking;
        const check = checkTargets()
          .catch((err: unknown) => logger.error({ err }, 'checking where the config directory resolves failed'))
          .finally(() => {
            checking = undefined;
          });
        checking = check;
        await check;
      }
      await runLoads();
      return rejection === undefined;
    },
  };
}

/** Where `dir` and `dir/..data` resolve to (`''` when a path does not resolve). */
interface Targets {
  root: string;
  /** `dev:ino` of `root` ('' when it does not resolve): a directory replaced at the same path differs. */
  rootId: string;
  data: string;
}

async function resolveTargets(dir: string): Promise<Targets> {
  const real = (p: string): Promise<string> => fsp.realpath(p).catch(() => '');
  const [root, data] = await Promise.all([real(dir), real(path.join(dir, '..data'))]);
  const st = root === '' ? undefined : await fsp.stat(root).catch(() => undefined);
  return { root, rootId: st ? `${st.dev}:${st.ino}` : '', data };
}

/** True when both lists' resources come from the same files and lines, index by index (the lists have equal lengths). */
function sameOrigins(a: readonly MeshResource[], b: readonly MeshResource[]): boolean {
  return a.every((r, i) => r.origin?.file === b[i]?.origin?.file && r.origin?.line === b[i]?.origin?.line);
}
