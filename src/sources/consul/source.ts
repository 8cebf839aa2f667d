/**
 * The Consul source (DESIGN.md §1): follows the Consul catalog with blocking queries and hands the
 * mapped resources (`mapping.ts`) to the registry.
 *
 * - One blocking query on `GET /v1/catalog/services` chooses the services: every service but
 *   `consul` itself whose tags include the configured ones and whose name can be a host label
 *   (others are reported once). One blocking query per chosen service on
 *   `GET /v1/health/service/<name>` follows its instances and checks; the watch of a service that
 *   leaves the list is stopped and its resources removed.
 * - After each answer the service is mapped again; `onUpdate` gets the full resource set only when
 *   the mapped content changed, so index churn from unrelated writes (another service, a check's
 *   output) pushes nothing.
 * - Outage: a failed query (unreachable, HTTP error, invalid JSON, a body of the wrong shape) keeps
 *   the last known resources of what it covers — nothing is deleted because Consul cannot be
 *   asked — and the source becomes stale: `skiff_consul_stale` 1, a detail on `/readyz` (which stays
 *   ready: the mesh keeps serving what it knows), one warning when it becomes stale and one info
 *   line when every query answers again. Queries retry with jittered back-off and catch up from
 *   their last index when Consul returns.
 * - Problems with single instances or services (bad meta, a name that is not a host label, an
 *   entry of the wrong shape) are logged once when they appear, and the instance is left out; the
 *   rest is served.
 */
import type { Logger } from '../../observability/logger.js';
import type { ControlPlaneMetrics } from '../../observability/metrics.js';
import type { MeshResource } from '../../resources/types.js';
import { checkCatalogServices, checkHealthEntries, type CatalogServices, type CheckedHealthEntries, type HealthServiceEntry } from './api.js';
import { createConsulClient, type ConsulClient } from './client.js';
import type { ConsulSourceConfig } from './config.js';
import { mapConsulService, serviceNameProblem, type MappedService } from './mapping.js';
import { startBlockingQuery, type BlockingQuery } from './watch.js';

/** Metrics the source updates. */
export type ConsulSourceMetrics = Pick<ControlPlaneMetrics, 'consulStale' | 'consulLastSuccess' | 'consulQueries' | 'consulInstances'>;

/** Options of {@link createConsulSource}. */
export interface ConsulSourceOptions {
  config: ConsulSourceConfig;
  logger: Logger;
  metrics?: ConsulSourceMetrics;
  /** Called with the full resource set whenever it changed. */
  onUpdate: (resources: MeshResource[]) => void;
  /** A client to use instead of one made from `config` (tests). */
  client?: ConsulClient;
}

/** One followed service, for `/debug/consul`. */
export interface ConsulServiceStatus {
  name: string;
  /** The index its next query sends. */
  index: string;
  /** Instances in the mesh / left out because of a problem. */
  instances: number;
  skipped: number;
  /** Why its last query failed, while it fails. */
  error?: string;
}

/** What the source knows about itself. */
export interface ConsulSourceStatus {
  /** The services list and every chosen service have answered at least once. */
  synced: boolean;
  /** Some query fails: the last known resources are served. */
  stale: boolean;
  /** RFC 3339 times. */
  staleSince?: string;
  lastSuccess?: string;
  /** The first failing query's error, while stale. */
  lastError?: string;
  /** The Consul address the next request goes to. */
  address: string;
  /** Resources delivered to the registry. */
  resources: number;
  services: ConsulServiceStatus[];
}

/** A Consul source; nothing happens until `start()`. */
export interface ConsulSource {
  /**
   * Starts following Consul. Resolves once the first answers are in (the initial sync) or after
   * `initialSyncTimeoutMs` (default 5000), whichever comes first; never rejects (an unreachable
   * Consul is a stale source, not a failed start).
   */
  start(initialSyncTimeoutMs?: number): Promise<void>;
  /** Stops every query (aborting those in flight) and closes connections. */
  stop(): Promise<void>;
  status(): ConsulSourceStatus;
  /**
   * The `/readyz` check: always ok (stale data keeps the mesh working, and an unready control plane
   * would only make things worse), with a detail while stale or before the initial sync.
   */
  readiness(): { ok: boolean; detail?: string };
}

interface Watched {
  name: string;
  query: BlockingQuery;
  answered: boolean;
  entries: HealthServiceEntry[];
  entryProblems: string[];
  mapped?: MappedService;
  /** JSON of the mapped resources, to see whether an answer changed anything. */
  key: string;
}

const LIST = 'GET /v1/catalog/services';

/** Creates the source (see the module comment). */
export function createConsulSource(opts: ConsulSourceOptions): ConsulSource {
  const { config, logger, metrics, onUpdate } = opts;
  const client = opts.client ?? createConsulClient(config);
  const watched = new Map<string, Watched>();
  /** Failing queries → their error. */
  const failing = new Map<string, string>();
  let listQuery: BlockingQuery | undefined;
  let listAnswered = false;
  let listProblems: string[] = [];
  let logged = new Set<string>();
  let published: string | undefined;
  let resourceCount = 0;
  let staleSince: number | undefined;
  let lastSuccess: number | undefined;
  let stopped = false;
  let onSynced: (() => void) | undefined;

  for (const endpoint of ['services', 'health']) for (const outcome of ['changed', 'unchanged', 'error']) metrics?.consulQueries.inc({ endpoint, outcome }, 0);
  metrics?.consulStale.set(0);

  const isSynced = (): boolean => listAnswered && [...watched.values()].every((w) => w.answered);

  function fresh(loop: string): void {
    lastSuccess = Date.now();
    metrics?.consulLastSuccess.set(lastSuccess / 1000);
    if (!failing.delete(loop)) return;
    settleStaleness();
  }

  /** Leaves the stale state when no query fails any more. */
  function settleStaleness(): void {
    if (failing.size > 0 || staleSince === undefined) return;
    const seconds = ((Date.now() - staleSince) / 1000).toFixed(1);
    staleSince = undefined;
    metrics?.consulStale.set(0);
    logger.info({ staleSeconds: Number(seconds), address: client.address() }, `Consul answers again after ${seconds} s: the Consul source is current`);
  }

  function failed(loop: string, err: Error, retryInMs: number, endpoint: 'services' | 'health'): void {
    metrics?.consulQueries.inc({ endpoint, outcome: 'error' });
    failing.set(loop, err.message);
    if (staleSince === undefined) {
      staleSince = Date.now();
      metrics?.consulStale.set(1);
      logger.warn(
        { error: err.message, retryInMs, resources: resourceCount },
        `Consul source is stale: ${err.message}; keeping the last known ${resourceCount} resources from Consul and retrying with back-off`,
      );
    } else {
      logger.debug({ error: err.message, retryInMs }, 'Consul query failed again');
    }
  }

  /** Logs problems that are new since the last call (once each). */
  function reportProblems(): void {
    const now = new Set<string>(listProblems);
    for (const w of watched.values()) {
      for (const p of w.entryProblems) now.add(p);
      for (const p of w.mapped?.problems ?? []) now.add(p);
    }
    for (const p of now) if (!logged.has(p)) logger.warn({ source: 'consul' }, p);
    logged = now;
    let mapped = 0;
    let skipped = 0;
    for (const w of watched.values()) {
      mapped += w.mapped?.counts.mapped ?? 0;
      skipped += (w.mapped?.counts.skipped ?? 0) + w.entryProblems.length;
    }
    metrics?.consulInstances.set({ state: 'mapped' }, mapped);
    metrics?.consulInstances.set({ state: 'skipped' }, skipped);
  }

  /** Hands the full set to the registry when it differs from what was handed last. */
  function publish(): boolean {
    const resources: MeshResource[] = [];
    for (const name of [...watched.keys()].sort()) {
      const m = watched.get(name)!.mapped;
      if (m) resources.push(...m.serviceEntries, ...m.workloadEntries);
    }
    const key = JSON.stringify(resources);
    if (key === published) return false;
    published = key;
    resourceCount = resources.length;
    onUpdate(resources);
    return true;
  }

  function checkSynced(): void {
    if (onSynced && isSynced()) {
      onSynced();
      onSynced = undefined;
    }
  }

  function watch(name: string): Watched {
    const w: Watched = { name, answered: false, entries: [], entryProblems: [], key: '', query: undefined as unknown as BlockingQuery };
    const loop = `GET /v1/health/service/${name}`;
    w.query = startBlockingQuery<CheckedHealthEntries>({
      query: async (index, signal) => {
        const answer = await client.health(name, index, signal);
        try {
          return { index: answer.index, body: checkHealthEntries(answer.body) };
        } catch (err) {
          throw new Error(`${loop} on ${client.address()}: ${(err as Error).message}`);
        }
      },
      onAnswer: (checked) => {
        if (stopped || watched.get(name) !== w) return;
        w.answered = true;
        w.entries = checked.entries;
        w.entryProblems = checked.problems.map((p) => `consul service ${JSON.stringify(name)}: ${loop}: ${p}`);
        w.mapped = mapConsulService(name, w.entries, config.mapping, config.datacenter);
        const key = JSON.stringify([w.mapped.serviceEntries, w.mapped.workloadEntries]);
        const changed = key !== w.key;
        w.key = key;
        metrics?.consulQueries.inc({ endpoint: 'health', outcome: changed ? 'changed' : 'unchanged' });
        fresh(loop);
        if (changed) publish();
        reportProblems();
        checkSynced();
      },
      onUnchanged: () => {
        metrics?.consulQueries.inc({ endpoint: 'health', outcome: 'unchanged' });
        fresh(loop);
      },
      onError: (err, info) => {
        if (stopped || watched.get(name) !== w) return;
        failed(loop, err, info.retryInMs, 'health');
      },
      backoff: config.retry,
      rateLimit: config.rateLimit,
    });
    return w;
  }

  function onServices(services: CatalogServices): void {
    const problems: string[] = [];
    const chosen: string[] = [];
    for (const name of Object.keys(services).sort()) {
      if (name === 'consul') continue; // Consul's own servers
      const tags = services[name] ?? [];
      if (!config.mapping.tags.every((t) => tags.includes(t))) continue;
      const problem = serviceNameProblem(name);
      if (problem !== undefined) {
        problems.push(`consul service ${JSON.stringify(name)}: ${problem}: service skipped`);
        continue;
      }
      chosen.push(name);
    }
    listProblems = problems;
    let changed = false;
    for (const name of chosen) {
      if (watched.has(name)) continue;
      watched.set(name, watch(name));
      changed = true;
    }
    for (const [name, w] of watched) {
      if (chosen.includes(name)) continue;
      w.query.stop();
      watched.delete(name);
      failing.delete(`GET /v1/health/service/${name}`);
      logger.info({ service: name }, `consul service ${JSON.stringify(name)} is gone from the catalog: stopped watching it`);
      changed = true;
    }
    listAnswered = true;
    metrics?.consulQueries.inc({ endpoint: 'services', outcome: changed ? 'changed' : 'unchanged' });
    fresh(LIST);
    settleStaleness();
    publish();
    reportProblems();
    checkSynced();
  }

  return {
    start(initialSyncTimeoutMs = 5000) {
      if (listQuery) return Promise.resolve();
      const synced = new Promise<void>((resolve) => {
        onSynced = resolve;
        const timer = setTimeout(resolve, initialSyncTimeoutMs);
        timer.unref();
      });
      listQuery = startBlockingQuery<CatalogServices>({
        query: async (index, signal) => {
          const answer = await client.services(index, signal);
          try {
            return { index: answer.index, body: checkCatalogServices(answer.body) };
          } catch (err) {
            throw new Error(`${LIST} on ${client.address()}: ${(err as Error).message}`);
          }
        },
        onAnswer: (services) => {
          if (!stopped) onServices(services);
        },
        onUnchanged: () => {
          metrics?.consulQueries.inc({ endpoint: 'services', outcome: 'unchanged' });
          fresh(LIST);
        },
        onError: (err, info) => {
          if (!stopped) failed(LIST, err, info.retryInMs, 'services');
        },
        backoff: config.retry,
        rateLimit: config.rateLimit,
      });
      logger.info({ addresses: config.addresses, datacenter: config.datacenter, tags: config.mapping.tags }, 'following the Consul catalog');
      return synced;
    },
    async stop() {
      stopped = true;
      onSynced?.();
      const loops = [listQuery, ...[...watched.values()].map((w) => w.query)].filter((q): q is BlockingQuery => q !== undefined);
      for (const q of loops) q.stop();
      await Promise.all(loops.map((q) => q.done));
      client.close();
    },
    status() {
      const firstError = [...failing.values()][0];
      const out: ConsulSourceStatus = {
        synced: isSynced(),
        stale: staleSince !== undefined,
        address: client.address(),
        resources: resourceCount,
        services: [...watched.values()]
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((w) => {
            const s: ConsulServiceStatus = { name: w.name, index: w.query.index().toString(), instances: w.mapped?.counts.mapped ?? 0, skipped: (w.mapped?.counts.skipped ?? 0) + w.entryProblems.length };
            const error = failing.get(`GET /v1/health/service/${w.name}`);
            if (error !== undefined) s.error = error;
            return s;
          }),
      };
      if (staleSince !== undefined) out.staleSince = new Date(staleSince).toISOString();
      if (lastSuccess !== undefined) out.lastSuccess = new Date(lastSuccess).toISOString();
      if (staleSince !== undefined && firstError !== undefined) out.lastError = firstError;
      return out;
    },
    readiness() {
      if (staleSince !== undefined) {
        const seconds = Math.round((Date.now() - staleSince) / 1000);
        return {
          ok: true,
          detail: `stale for ${seconds} s (${[...failing.values()][0] ?? 'queries failing'}): serving the last known ${resourceCount} resources from Consul`,
        };
      }
      if (!isSynced()) return { ok: true, detail: 'waiting for the first answers from Consul' };
      return { ok: true };
    },
  };
}
