import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import { collectStartupGarbage } from './memory.js';

/** Start-up-like garbage: ~8 MB of small objects, unreachable once this returns. */
function makeGarbage(): number {
  const junk: { id: number; name: string }[] = [];
  for (let i = 0; i < 100_000; i++) junk.push({ id: i, name: `entry-${i}` });
  return junk.length;
}

describe('collectStartupGarbage', () => {
  it('frees unreachable objects at once (the heap in use shrinks by what start-up left behind)', () => {
    collectStartupGarbage();
    const before = v8.getHeapStatistics().used_heap_size;
    assert.equal(makeGarbage(), 100_000);
    const withGarbage = v8.getHeapStatistics().used_heap_size;
    collectStartupGarbage();
    const after = v8.getHeapStatistics().used_heap_size;
    assert.ok(withGarbage - before > 4_000_000, `the test allocated too little to tell (${withGarbage - before} bytes)`);
    assert.ok(after < before + (withGarbage - before) / 4, `heap in use: ${before} before, ${withGarbage} with garbage, ${after} after collecting`);
  });

  it('can run repeatedly and never throws', () => {
    assert.doesNotThrow(() => {
      collectStartupGarbage();
      collectStartupGarbage();
    });
  });
});
