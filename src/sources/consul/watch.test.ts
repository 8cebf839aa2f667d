import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, nextIndex, startBlockingQuery } from './watch.js';

describe("blocking query loop: Consul's index rules", () => {
  it('sends the answered index back while it grows', () => {
    assert.deepEqual(nextIndex(0n, 42n), { index: 42n, reset: false });
    assert.deepEqual(nextIndex(42n, 42n), { index: 42n, reset: false });
    assert.deepEqual(nextIndex(42n, 50n), { index: 50n, reset: false });
  });

  it('resets to 0 when the index goes backwards', () => {
    assert.deepEqual(nextIndex(50n, 7n), { index: 0n, reset: true });
  });

  it('never sends 0 back after an answer: an answered 0 becomes 1', () => {
    assert.deepEqual(nextIndex(0n, 0n), { index: 1n, reset: false });
    assert.deepEqual(nextIndex(1n, 0n), { index: 1n, reset: false });
    assert.deepEqual(nextIndex(50n, 0n), { index: 1n, reset: true });
  });

  it('handles indexes beyond 2^53 (uint64)', () => {
    assert.deepEqual(nextIndex(18446744073709551000n, 18446744073709551615n), { index: 18446744073709551615n, reset: false });
  });
});

describe('blocking query loop: back-off with jitter', () => {
  it('doubles from the initial delay up to the ceiling, each draw in [d/2, d]', () => {
    assert.equal(backoffDelay(1, 250, 5000, () => 0), 125);
    assert.equal(backoffDelay(1, 250, 5000, () => 0.999999), 250);
    assert.equal(backoffDelay(3, 250, 5000, () => 0), 500);
    assert.equal(backoffDelay(3, 250, 5000, () => 0.999999), 1000);
    assert.equal(backoffDelay(10, 250, 5000, () => 0), 2500);
    assert.equal(backoffDelay(10, 250, 5000, () => 0.999999), 5000);
    for (let a = 1; a < 20; a++) assert.ok(backoffDelay(a, 250, 5000) >= 125, 'never a busy retry');
  });
});

describe('blocking query loop: what it delivers', () => {
  it('delivers the first answer and every moved index, not an answer with the index it sent; stops promptly', async () => {
    const answers = [
      { index: 5n, body: 'a' },
      { index: 5n, body: 'a' }, // wait ended
      { index: 9n, body: 'a' }, // idempotent write: delivered, the caller compares content
      { index: 3n, body: 'restored' },
    ];
    const sent: bigint[] = [];
    const delivered: string[] = [];
    let unchanged = 0;
    let release: () => void = () => {};
    const finished = new Promise<void>((r) => (release = r));
    const q = startBlockingQuery<string>({
      query: async (index, signal) => {
        sent.push(index);
        const next = answers.shift();
        if (next) return next;
        release();
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        throw new Error('aborted');
      },
      onAnswer: (body, info) => void delivered.push(`${body}@${info.index}${info.reset ? ' reset' : ''}`),
      onUnchanged: () => void unchanged++,
      onError: (err) => assert.fail(err),
      rateLimit: { burst: 10, intervalMs: 1 },
    });
    await finished;
    q.stop();
    await q.done;
    assert.deepEqual(sent, [0n, 5n, 5n, 9n, 0n]);
    assert.deepEqual(delivered, ['a@5', 'a@9', 'restored@3 reset']);
    assert.equal(unchanged, 1);
  });

  it('reports a throw in the answer handler as an error and keeps going', async () => {
    let calls = 0;
    const errors: string[] = [];
    const q = startBlockingQuery<number>({
      query: () => Promise.resolve({ index: BigInt(++calls), body: calls }),
      onAnswer: (body) => {
        if (body === 1) throw new Error('handler bug');
      },
      onError: (err) => void errors.push(err.message),
      backoff: { initialMs: 1, maxMs: 2 },
      rateLimit: { burst: 10, intervalMs: 1 },
    });
    while (calls < 3) await new Promise((r) => setTimeout(r, 5));
    q.stop();
    await q.done;
    assert.deepEqual(errors, ['handler bug']);
  });
});
