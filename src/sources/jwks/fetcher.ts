/**
 * The JWKS fetcher: the control plane fetches each RequestAuthentication `jwksUri` itself (as
 * istiod does with `PILOT_JWT_ENABLE_REMOTE_JWKS=istiod`) and ships the keys to proxies inline, so
 * a VM's Envoy never needs a route to the identity provider.
 *
 * - `track(uris)` sets the URIs to follow: new ones are fetched at once, dropped ones forgotten.
 * - Each URI is refreshed every `refreshIntervalMs` (default 5 min, Istio's JWKS cache duration).
 *   A failed fetch (network error, timeout, non-2xx status, a body that is not a valid JWKS as
 *   `resources/jwks.ts` checks it) keeps the last good keys and is retried with back-off (1 s,
 *   doubling, at most the refresh interval).
 * - Logged once per state change: the first failure (warn) and the recovery (info), never each
 *   retry. URLs are logged, bodies never.
 * - `onChange(fn)` is called with the URI whenever its keys change (the first successful fetch
 *   included), so the caller can push new inline keys to proxies. Equal key sets (ignoring JSON
 *   formatting) fire nothing.
 *
 * Uses the global `fetch` (undici) with `AbortSignal` timeouts; timers are unref'd.
 */
import type { Logger } from '../../observability/logger.js';
import { parseJwks } from '../../resources/jwks.js';

/** Options for {@link createJwksFetcher}. */
export interface JwksFetcherOptions {
  logger: Logger;
  /** How often keys are re-fetched, in ms (default 300 000 = 5 min). */
  refreshIntervalMs?: number;
  /** Per-request timeout, in ms (default 5 000, Istio's JWKS fetch timeout). */
  timeoutMs?: number;
  /** First retry delay after a failure, in ms (default 1 000); doubles up to `refreshIntervalMs`. */
  retryInitialMs?: number;
  /** Response bodies larger than this are refused, in bytes (default 1 MiB). */
  maxBytes?: number;
}

/** A running JWKS fetcher. */
export interface JwksFetcher {
  /** Follows exactly `uris` from now on (duplicates ignored). */
  track(uris: readonly string[]): void;
  /** The last good JWKS JSON for `uri`, or undefined before the first successful fetch. */
  get(uri: string): string | undefined;
  /** Calls `fn(uri)` after the keys of `uri` changed; returns an unsubscribe function. */
  onChange(fn: (uri: string) => void): () => void;
  /** Fetches every tracked URI now; resolves when all attempts finished (never rejects). */
  refresh(): Promise<void>;
  /** Stops all timers and aborts requests in flight. */
  stop(): void;
}

interface UriState {
  uri: string;
  /** The last good JWKS text (as served). */
  keys?: string;
  /** `JSON.stringify(JSON.parse(keys))`, to compare key sets across refreshes. */
  canonical?: string;
  failing: boolean;
  retryMs: number;
  timer?: NodeJS.Timeout;
  inFlight?: Promise<void>;
  abort?: AbortController;
}

/** Reads a response body up to `maxBytes`; throws when larger. */
async function readBody(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new Error(`response is larger than ${maxBytes} bytes`);
  const buf = Buffer.from(await res.arrayBuffer());
  if (buf.length > maxBytes) throw new Error(`response is larger than ${maxBytes} bytes`);
  return buf.toString('utf8');
}

/** Creates a JWKS fetcher (see the module comment). Nothing is fetched until `track()`. */
export function createJwksFetcher(opts: JwksFetcherOptions): JwksFetcher {
  const logger = opts.logger;
  const refreshMs = opts.refreshIntervalMs ?? 300_000;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const retryInitialMs = Math.min(opts.retryInitialMs ?? 1_000, refreshMs);
  const maxBytes = opts.maxBytes ?? 1 << 20;
  const states = new Map<string, UriState>();
  const listeners = new Set<(uri: string) => void>();
  let stopped = false;

  const schedule = (s: UriState, delayMs: number): void => {
    if (s.timer) clearTimeout(s.timer);
    if (stopped || states.get(s.uri) !== s) return;
    s.timer = setTimeout(() => void fetchOne(s), delayMs);
    s.timer.unref();
  };

  const fail = (s: UriState, why: string): void => {
    if (!s.failing) {
      s.failing = true;
      logger.warn(
        { jwksUri: s.uri, err: why, keeping: s.keys !== undefined ? 'last good keys' : 'no keys yet' },
        'fetching JWKS failed; retrying with back-off',
      );
    } else {
      logger.debug({ jwksUri: s.uri, err: why }, 'fetching JWKS failed again');
    }
    const delay = s.retryMs;
    s.retryMs = Math.min(s.retryMs * 2, refreshMs);
    schedule(s, delay);
  };

  const attempt = async (s: UriState): Promise<void> => {
    const abort = new AbortController();
    s.abort = abort;
    const timer = setTimeout(() => abort.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    let body: string;
    try {
      const res = await fetch(s.uri, { signal: abort.signal, headers: { accept: 'application/json' }, redirect: 'follow' });
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        throw new Error(`HTTP status ${res.status}`);
      }
      body = await readBody(res, maxBytes);
    } catch (err) {
      if (stopped || states.get(s.uri) !== s) return;
      const reason: unknown = abort.signal.aborted ? abort.signal.reason : err;
      fail(s, reason instanceof Error ? reason.message : String(reason));
      return;
    } finally {
      clearTimeout(timer);
      if (s.abort === abort) s.abort = undefined;
    }
    if (stopped || states.get(s.uri) !== s) return;
    const parsed = parseJwks(body);
    if ('error' in parsed) {
      fail(s, `not a valid JWKS: ${parsed.error}`);
      return;
    }
    if (s.failing) logger.info({ jwksUri: s.uri }, 'fetching JWKS works again');
    s.failing = false;
    s.retryMs = retryInitialMs;
    const canonical = JSON.stringify(JSON.parse(body));
    const changed = canonical !== s.canonical;
    s.keys = body;
    s.canonical = canonical;
    schedule(s, refreshMs);
    if (changed) {
      logger.info({ jwksUri: s.uri, keys: parsed.keys.length }, 'JWKS keys updated');
      for (const fn of [...listeners]) {
        try {
          fn(s.uri);
        } catch (err) {
          logger.error({ err, jwksUri: s.uri }, 'a JWKS change listener threw');
        }
      }
    }
  };

  /** Runs one fetch for `s` unless one is already running (then waits for that one). */
  const fetchOne = (s: UriState): Promise<void> => {
    if (s.inFlight) return s.inFlight;
    if (s.timer) clearTimeout(s.timer);
    const p = attempt(s).finally(() => {
      s.inFlight = undefined;
    });
    s.inFlight = p;
    return p;
  };

  return {
    track(uris) {
      if (stopped) return;
      const wanted = new Set(uris);
      for (const [uri, s] of states) {
        if (wanted.has(uri)) continue;
        if (s.timer) clearTimeout(s.timer);
        s.abort?.abort(new Error('no longer tracked'));
        states.delete(uri);
      }
      for (const uri of wanted) {
        if (states.has(uri)) continue;
        const s: UriState = { uri, failing: false, retryMs: retryInitialMs };
        states.set(uri, s);
        void fetchOne(s);
      }
    },
    get(uri) {
      return states.get(uri)?.keys;
    },
    onChange(fn) {
      listeners.add(fn);
      return () => {
        listeners.delete(fn);
      };
    },
    async refresh() {
      await Promise.all([...states.values()].map((s) => fetchOne(s)));
    },
    stop() {
      stopped = true;
      for (const s of states.values()) {
        if (s.timer) clearTimeout(s.timer);
        s.abort?.abort(new Error('stopped'));
      }
      listeners.clear();
    },
  };
}
