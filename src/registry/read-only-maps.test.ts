import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freezeMap, KeyOrderedMap, LayeredMap } from './read-only-maps.js';

void describe('LayeredMap', () => {
  void it('holds, after any chain of edits, what a Map copied and edited in place holds', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 30; round++) {
      const initial = new Map<string, number>();
      for (let i = 0; i < 200; i++) initial.set(`k${rand(300)}`, i);
      let model = new Map(initial);
      let edited: ReadonlyMap<string, number> = freezeMap(new Map(initial));
      for (let step = 0; step < 40; step++) {
        const set: Array<[string, number]> = [];
        const removed: string[] = [];
        const touched = new Set<string>();
        for (let c = 0; c < 1 + rand(step % 10 === 9 ? 80 : 6); c++) {
          const key = `k${rand(320)}`;
          if (touched.has(key)) continue;
          touched.add(key);
          if (rand(3) === 0) removed.push(key);
          else set.push([key, step * 1000 + c]);
        }
        const before = [...edited];
        const next = LayeredMap.edit(edited, set, removed);
        model = new Map(model);
        for (const [k, v] of set) model.set(k, v);
        for (const k of removed) model.delete(k);
        const sorted = (m: Iterable<[string, number]>) => [...m].sort((x, y) => (x[0] < y[0] ? -1 : 1));
        assert.deepEqual(sorted(next), sorted(model), `round ${round} step ${step}`);
        assert.equal(new Set(next.keys()).size, next.size, 'every key once');
        assert.equal(next.size, model.size);
        for (const k of touched) {
          assert.equal(next.has(k), model.has(k));
          assert.equal(next.get(k), model.get(k));
        }
        assert.deepEqual([...edited], before, 'the edited map is unchanged');
        assert.ok(Object.isFrozen(next));
        edited = next;
      }
    }
  });

  void it('is read-only', () => {
    const m = LayeredMap.edit(new Map([['a', 1]]), [['b', 2]]);
    assert.throws(() => (m as Map<string, number>).set('c', 3), /immutable/);
    assert.throws(() => (m as Map<string, number>).delete('a'), /immutable/);
    assert.deepEqual([...m.keys()], ['a', 'b']);
    assert.throws(() => LayeredMap.edit(new Map<string, number | undefined>(), [['c', undefined]]), /may not be undefined/);
    // A key set twice, or set and removed in one edit, is counted once or not at all.
    const twice = LayeredMap.edit(new Map([['a', 1]]), [['x', 2], ['x', 3]]);
    assert.deepEqual([twice.size, [...twice]], [2, [['a', 1], ['x', 3]]]);
    const setAndRemoved = LayeredMap.edit(new Map([['a', 1]]), [['x', 2]], ['x']);
    assert.deepEqual([setAndRemoved.size, setAndRemoved.has('x'), [...setAndRemoved]], [1, false, [['a', 1]]]);
  });
});

void describe('KeyOrderedMap', () => {
  void it('looks up through its map and iterates in the order of its arrays', () => {
    const m = new KeyOrderedMap(new Map([['b', 2], ['a', 1]]), ['a', 'b'], [1, 2]);
    assert.deepEqual([...m], [['a', 1], ['b', 2]]);
    assert.deepEqual([...m.values()], [1, 2]);
    assert.equal(m.get('b'), 2);
    assert.equal(m.size, 2);
    assert.throws(() => (m as unknown as Map<string, number>).clear(), /immutable/);
  });
});
