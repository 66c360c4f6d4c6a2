import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExactVectors } from '../../src/adapters/vector/exact-vectors.js';
import { cosineDistance } from '../../src/memories/vector-codec.js';

const D = 8;
const unit = (i: number) => Float32Array.from({ length: D }, (_, j) => (j === i ? 1 : 0));

describe('ExactVectors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ml-exact-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers by cosine distance, equal distances in key order even across the cut', () => {
    const store = new ExactVectors(D);
    // Ten copies of one vector written in scrambled key order, and two others.
    for (const key of [17, 3, 12, 9, 1, 20, 5, 14, 8, 11]) store.add(key, unit(0));
    store.add(
      2,
      Float32Array.from(unit(0), (x, j) => (j === 1 ? 1 : x)),
    ); // 45° away
    store.add(30, unit(3));
    const hits = store.search(
      Float32Array.from(unit(0), (x) => x * 3),
      4,
    );
    expect(hits.map((h) => h.key)).toEqual([1, 3, 5, 8]);
    expect(hits.every((h) => Math.abs(h.distance) < 1e-6)).toBe(true);
    const all = store.search(unit(0), 12);
    expect(all.map((h) => h.key)).toEqual([1, 3, 5, 8, 9, 11, 12, 14, 17, 20, 2, 30]);
    expect(all[10].distance).toBeCloseTo(
      cosineDistance(unit(0), Float32Array.from([1, 1, 0, 0, 0, 0, 0, 0])),
      6,
    );
    expect(all[11].distance).toBeCloseTo(1, 6);
  });

  it('replaces a key in place, removes by moving the last slot into the hole', () => {
    const store = new ExactVectors(D);
    for (let i = 0; i < D; i++) store.add(i + 1, unit(i));
    store.add(1, unit(7)); // key 1 now points where key 8 does
    expect(store.size).toBe(D);
    expect(store.remove([3, 99, 3])).toBe(1);
    expect(store.size).toBe(D - 1);
    // Key 8 was in the last slot and moved into key 3's: it still answers with its own vector.
    expect(store.search(unit(7), 2).map((h) => h.key)).toEqual([1, 8]);
    expect(store.search(unit(2), 1)[0].distance).toBeCloseTo(1, 6);
    expect([...store.entries()].map(([key]) => key)).toEqual([1, 2, 4, 5, 6, 7, 8]);
  });

  it('gives a zero query distance 1 to everything, and reads a query that is a view into a larger buffer', () => {
    const store = new ExactVectors(D);
    for (let i = 0; i < 4; i++) store.add(10 - i, unit(i));
    expect(store.search(new Float32Array(D), 2)).toEqual([
      { key: 7, distance: 1 },
      { key: 8, distance: 1 },
    ]);
    const buffer = new Float32Array(3 * D);
    buffer.set(unit(2), 2 * D);
    expect(store.search(buffer.subarray(2 * D), 1)[0].key).toBe(8);
  });

  it('grows past its first allocation and comes back whole from its file form', () => {
    const store = new ExactVectors(D);
    for (let key = 1; key <= 100; key++)
      store.add(
        key,
        Float32Array.from({ length: D }, (_, j) => Math.sin(key * (j + 1))),
      );
    const file = join(dir, 'a.vectors');
    writeFileSync(file, store.serialize());
    const loaded = ExactVectors.load(file, D);
    expect(loaded.size).toBe(100);
    const q = Float32Array.from({ length: D }, (_, j) => Math.cos(j));
    expect(loaded.search(q, 100)).toEqual(store.search(q, 100));
    loaded.add(101, q);
    expect(loaded.search(q, 1)[0].key).toBe(101);
    expect(() => ExactVectors.load(file, D + 1)).toThrow(/holds 8-dimensional vectors, expected 9/);
  });

  it('refuses a file it did not write', () => {
    const file = join(dir, 'other.vectors');
    writeFileSync(file, Buffer.from('not vectors at all'));
    expect(() => ExactVectors.load(file, D)).toThrow(/not a vector file this service wrote/);
  });
});
