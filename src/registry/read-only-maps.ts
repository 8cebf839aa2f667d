/**
 * The read-only maps of a registry snapshot. A snapshot derived from the previous one must not
 * copy a 10,000-entry map to change one entry (a copy costs about a millisecond each, and a
 * snapshot has several), so an edited map is a {@link LayeredMap}: the entries that changed over an
 * unchanged base, both immutable, flattened into a plain map once the changes outgrow an eighth of
 * the base. `byKey` keeps the key order of a full build with {@link KeyOrderedMap}.
 */

function readOnly(): never {
  throw new TypeError('a registry snapshot is immutable');
}

/** Makes a Map read-only at run time too (its mutators throw), then freezes it. */
export function freezeMap<K, V>(map: Map<K, V>): ReadonlyMap<K, V> {
  Object.defineProperties(map, { set: { value: readOnly }, delete: { value: readOnly }, clear: { value: readOnly } });
  return Object.freeze(map);
}

/** The mutators of the read-only maps below: they throw, as a frozen Map's do (a snapshot's maps are immutable). */
abstract class ReadOnlyMutators {
  /** Throws: a snapshot's maps are immutable. */
  set(): never {
    return readOnly();
  }

  /** Throws, see `set`. */
  delete(): never {
    return readOnly();
  }

  /** Throws, see `set`. */
  clear(): never {
    return readOnly();
  }
}

/** Marks a key the layer removes. */
const GONE: unique symbol = Symbol('gone');

/** Flatten when the changed entries exceed this many and an eighth of the base. */
const FLATTEN_MIN = 64;

/**
 * A read-only map made of an immutable base and the entries changed over it (a value, or removed).
 * Iterates every entry once: the base's keys in the base's order (changed values where they were),
 * then keys the base lacks; its order is not otherwise meaningful (a snapshot's index maps are for
 * lookups).
 */
export class LayeredMap<K, V> extends ReadOnlyMutators implements ReadonlyMap<K, V> {
  private constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly layer: ReadonlyMap<K, V | typeof GONE>,
    readonly size: number,
  ) {
    super();
    Object.freeze(this);
  }

  /**
   * `map` with `set` entries set and `removed` keys removed (a key in both is removed); `map` is
   * not changed. Values may not be `undefined` (a TypeError). Returns a LayeredMap over `map`'s base, or a new frozen Map once the changes are
   * many.
   */
  static edit<K, V>(map: ReadonlyMap<K, V>, set: Iterable<readonly [K, V]>, removed: Iterable<K> = []): ReadonlyMap<K, V> {
    const base = map instanceof LayeredMap ? (map.base as ReadonlyMap<K, V>) : map;
    const layer = new Map<K, V | typeof GONE>(map instanceof LayeredMap ? (map.layer as ReadonlyMap<K, V | typeof GONE>) : []);
    let size = map.size;
    // Whether `k` is present as edited so far (a key may come twice, or be set and then removed).
    const present = (k: K): boolean => {
      const v = layer.get(k);
      return v === undefined ? base.has(k) : v !== GONE;
    };
    for (const [k, v] of set) {
      if (v === undefined) throw new TypeError('LayeredMap: a value may not be undefined');
      if (!present(k)) size++;
      layer.set(k, v);
    }
    for (const k of removed) {
      if (present(k)) size--;
      if (base.has(k)) layer.set(k, GONE);
      else layer.delete(k);
    }
    const edited = new LayeredMap(base, layer, size);
    if (layer.size <= Math.max(FLATTEN_MIN, base.size / 8)) return edited;
    return freezeMap(new Map(edited));
  }

  get(key: K): V | undefined {
    const v = this.layer.get(key);
    if (v === undefined) return this.base.get(key);
    return v === GONE ? undefined : v;
  }

  has(key: K): boolean {
    const v = this.layer.get(key);
    if (v === undefined) return this.base.has(key);
    return v !== GONE;
  }

  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.base) {
      const changed = this.layer.get(k);
      if (changed === undefined) yield [k, v];
      else if (changed !== GONE) yield [k, changed];
    }
    for (const [k, v] of this.layer) if (v !== GONE && !this.base.has(k)) yield [k, v];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }

  get [Symbol.toStringTag](): string {
    return 'LayeredMap';
  }
}

/**
 * A read-only map of resources by key that iterates in key order: lookups go to `lookup`, iteration
 * walks `keys` and `values` (parallel arrays, sorted by key).
 */
export class KeyOrderedMap<V> extends ReadOnlyMutators implements ReadonlyMap<string, V> {
  constructor(
    /** The same entries, for lookups (any order). */
    readonly lookup: ReadonlyMap<string, V>,
    private readonly sortedKeys: readonly string[],
    private readonly sortedValues: readonly V[],
  ) {
    super();
    Object.freeze(this);
  }

  get size(): number {
    return this.sortedKeys.length;
  }

  get(key: string): V | undefined {
    return this.lookup.get(key);
  }

  has(key: string): boolean {
    return this.lookup.has(key);
  }

  *entries(): MapIterator<[string, V]> {
    for (let i = 0; i < this.sortedKeys.length; i++) yield [this.sortedKeys[i]!, this.sortedValues[i]!];
  }

  keys(): MapIterator<string> {
    return this.sortedKeys.values();
  }

  values(): MapIterator<V> {
    return this.sortedValues.values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (let i = 0; i < this.sortedKeys.length; i++) callback.call(thisArg, this.sortedValues[i]!, this.sortedKeys[i]!, this);
  }

  get [Symbol.toStringTag](): string {
    return 'KeyOrderedMap';
  }
}
