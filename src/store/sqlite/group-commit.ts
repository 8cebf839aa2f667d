/**
 * Group commit for the SQLite store's high-rate writes (the certificate ledger: one row per issued
 * certificate). With `synchronous=FULL` every commit waits for an fsync of the WAL, a few
 * milliseconds during which better-sqlite3 blocks the event loop; one transaction per row caps the
 * CA at a few hundred certificates per second whatever the CPU could sign.
 *
 * Rows submitted while the event loop is busy (requests that arrived together, or during the
 * previous commit) are queued and written by one transaction on the next turn of the loop
 * (`setImmediate`), the technique databases call group commit. Each submitter's promise settles
 * only after the transaction holding its row has committed, so an acknowledged row is as durable
 * as before: it survives `kill -9` and power loss. If that transaction fails, it is rolled back
 * and exactly the submitters whose rows it held are rejected with the error; later rows go into a
 * later transaction.
 */

/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions {
  /** Most rows in one transaction (default 512); more queued rows go into the next one. */
  maxBatch?: number;
}

interface Pending<T> {
  row: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Batches rows into shared transactions. `write(rows)` must write all of `rows` in ONE
 * synchronous transaction (e.g. better-sqlite3 `db.transaction(...).immediate()`) and throw if it
 * did not commit.
 */
export class GroupCommit<T> {
  private queue: Pending<T>[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly maxBatch: number;

  constructor(
    private readonly write: (rows: readonly T[]) => void,
    opts: GroupCommitOptions = {},
  ) {
    this.maxBatch = Math.max(1, Math.floor(opts.maxBatch ?? 512));
  }

  /** Queues `row`; resolves once the transaction that wrote it has committed, rejects if it failed. */
  submit(row: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.commit(this.take());
      // More than one batch queued: the rest goes on a later turn, so the loop can serve others.
      if (this.queue.length > 0) this.schedule();
    });
  }

  /** Removes and returns the next batch (at most `maxBatch` rows, oldest first). */
  private take(): Pending<T>[] {
    if (this.queue.length <= this.maxBatch) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, this.maxBatch);
  }

  /** Rows queued and not yet committed. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Writes every queued row now, in transactions of at most `maxBatch` rows (the store calls this
   * before closing the database). Settles the submitters' promises; never throws.
   */
  flush(): void {
    if (this.scheduled) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    while (this.queue.length > 0) this.commit(this.take());
  }

  private commit(batch: Pending<T>[]): void {
    try {
      this.write(batch.map((p) => p.row));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (const p of batch) p.resolve();
  }
}
