/**
 * One Consul blocking query, repeated forever, following the rules of
 * https://developer.hashicorp.com/consul/api-docs/features/blocking ("Implementation Details"):
 *
 * - The first query carries no index (Consul answers at once); each next one sends the last
 *   `X-Consul-Index` and waits for a change.
 * - **Reset if the index goes backwards**: an index lower than the previous one (a snapshot
 *   restore, a new cluster) is delivered and the next query starts again from index 0.
 * - **Sanity check index > 0**: an answered index of 0 is never sent back; 1 is used instead
 *   (always safe), so a buggy answer cannot turn the loop into a busy loop.
 * - **Rate limit** with a token bucket (default burst 2, then one query per second): quick
 *   successive answers are delivered at once, a churning index degrades into polling.
 * - Errors back off exponentially with jitter (delay `d` drawn from [d/2, d], `d` doubling from
 *   `initialMs` up to `maxMs`), reset by the next success; the loop never spins.
 *
 * An answer whose index equals the one sent (the wait ended, or the index did not move) is not
 * delivered: nothing can have changed. Everything else is delivered, even when the content is
 * the same (an idempotent write moves the index): the caller compares content.
 */

/** One answer: the `X-Consul-Index` and the checked body. */
export interface BlockingAnswer<T> {
  index: bigint;
  body: T;
}

/** Options of {@link startBlockingQuery}. */
export interface BlockingQueryOptions<T> {
  /** Runs one query; `index` 0 means "answer at once". Rejects on any failure. */
  query(index: bigint, signal: AbortSignal): Promise<BlockingAnswer<T>>;
  /** A new answer (see the module comment); `reset` is true when the index went backwards. */
  onAnswer(body: T, info: { index: bigint; reset: boolean }): void;
  /** The wait ended (or the index did not move): nothing changed. */
  onUnchanged?(): void;
  /** A failed query; the next attempt runs after `retryInMs`. */
  onError(err: Error, info: { attempt: number; retryInMs: number }): void;
  /** Back-off after failures, in ms (default 250 → 5000). */
  backoff?: { initialMs: number; maxMs: number };
  /** Token bucket (default burst 2, one token per 1000 ms). */
  rateLimit?: { burst: number; intervalMs: number };
  /** Random source in [0, 1) for the jitter (tests pin it). */
  random?: () => number;
}

/** A running query loop. */
export interface BlockingQuery {
  /** The index the next query sends. */
  index(): bigint;
  /** Aborts the query in flight and ends the loop; `done` resolves when it has. */
  stop(): void;
  readonly done: Promise<void>;
}

/** The delay before retry number `attempt` (1-based): in [d/2, d] with d = min(max, initial·2^(attempt-1)). */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + random() * (d / 2));
}

/** The index to send after an answer with `answered` when `previous` was sent (the two rules above). */
export function nextIndex(previous: bigint, answered: bigint): { index: bigint; reset: boolean } {
  // An index of 0 is a Consul bug, not a restore: waiting from 1 is always safe.
  if (answered < 1n) return { index: 1n, reset: previous > 1n };
  if (answered < previous) return { index: 0n, reset: true };
  return { index: answered, reset: false };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Starts the loop (see the module comment). */
export function startBlockingQuery<T>(opts: BlockingQueryOptions<T>): BlockingQuery {
  const { initialMs, maxMs } = opts.backoff ?? { initialMs: 250, maxMs: 5000 };
  const { burst, intervalMs } = opts.rateLimit ?? { burst: 2, intervalMs: 1000 };
  const random = opts.random ?? Math.random;
  const controller = new AbortController();
  const signal = controller.signal;
  let index = 0n;
  let tokens = burst;
  let refilledAt = Date.now();

  const refill = (): void => {
    const now = Date.now();
    tokens = Math.min(burst, tokens + (now - refilledAt) / intervalMs);
    refilledAt = now;
  };

  async function loop(): Promise<void> {
    let attempt = 0;
    let first = true;
    while (!signal.aborted) {
      refill();
      if (tokens < 1) {
        await sleep(Math.ceil((1 - tokens) * intervalMs), signal);
        refill();
      }
      tokens -= 1;
      if (signal.aborted) break;
      const sent = index;
      let answer: BlockingAnswer<T>;
      try {
        answer = await opts.query(sent, signal);
      } catch (err) {
        if (signal.aborted) break;
        attempt++;
        const retryInMs = backoffDelay(attempt, initialMs, maxMs, random);
        opts.onError(err instanceof Error ? err : new Error(String(err)), { attempt, retryInMs });
        await sleep(retryInMs, signal);
        continue;
      }
      if (signal.aborted) break;
      attempt = 0;
      const next = nextIndex(sent, answer.index);
      index = next.index;
      if (!first && !next.reset && answer.index === sent) {
        opts.onUnchanged?.();
        continue;
      }
      first = false;
      try {
        opts.onAnswer(answer.body, { index: answer.index, reset: next.reset });
      } catch (err) {
        // A throw in the caller's handler is reported like a failed query and retried.
        attempt++;
        const retryInMs = backoffDelay(attempt, initialMs, maxMs, random);
        opts.onError(err instanceof Error ? err : new Error(String(err)), { attempt, retryInMs });
        index = 0n;
        await sleep(retryInMs, signal);
      }
    }
  }

  // onError itself throwing would end the loop: report that last error once more rather than lose it.
  const done = loop().catch((err: unknown) => {
    opts.onError(err instanceof Error ? err : new Error(String(err)), { attempt: 0, retryInMs: 0 });
  });
  return {
    index: () => index,
    stop: () => controller.abort(),
    done,
  };
}
