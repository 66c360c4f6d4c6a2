import { readFileSync } from 'node:fs';
import usearch from 'usearch';
import type { VectorHit } from './port.js';

type Matches = InstanceType<typeof usearch.Matches>;

/**
 * A small partition's vectors, kept whole and searched by comparing the query with every one of
 * them. An HNSW graph cannot promise that: its neighbour choice can leave a node no link leads to
 * (see EXACT_BELOW in usearch.ts), and two replicas that built their graphs in different orders
 * then answer differently. Here every search is exact, so the same contents give the same answer.
 *
 * Unit vectors in one contiguous Float32Array (slot i at i × dimensions), so a search is one pass
 * over memory; a key's slot is in `slots`; removal moves the last slot into the hole.
 */
export class ExactVectors {
  private keys: number[] = [];
  private readonly slots = new Map<number, number>();
  private data: Float32Array;

  constructor(readonly dimensions: number) {
    this.data = new Float32Array(16 * dimensions);
  }

  get size(): number {
    return this.keys.length;
  }

  /** Inserts or replaces each key's vector. */
  add(key: number, vector: Float32Array): void {
    const d = this.dimensions;
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.keys.length;
      if ((slot + 1) * d > this.data.length) {
        const grown = new Float32Array(this.data.length * 2);
        grown.set(this.data);
        this.data = grown;
      }
      this.keys.push(key);
      this.slots.set(key, slot);
    }
    const at = slot * d;
    let norm = 0;
    for (let i = 0; i < d; i++) norm += vector[i] * vector[i];
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = 0; i < d; i++) this.data[at + i] = vector[i] * scale;
  }

  /** Removes the keys it holds; returns how many it held. */
  remove(keys: Iterable<number>): number {
    const d = this.dimensions;
    let removed = 0;
    for (const key of keys) {
      const slot = this.slots.get(key);
      if (slot === undefined) continue;
      const last = this.keys.length - 1;
      if (slot !== last) {
        const moved = this.keys[last];
        this.data.copyWithin(slot * d, last * d, (last + 1) * d);
        this.keys[slot] = moved;
        this.slots.set(moved, slot);
      }
      this.keys.pop();
      this.slots.delete(key);
      removed++;
    }
    return removed;
  }

  /**
   * The `limit` nearest by cosine distance; equal distances in key order, also across the cut, so
   * that the same contents answer the same whatever order they were written in. usearch's native
   * exact search does the comparing (SIMD: 0.14 ms at 1,999 × 512 against 1.4 ms in JavaScript,
   * and 0.47 ms for a walk of a whole f16 graph of that size).
   */
  search(query: Float32Array, limit: number): VectorHit[] {
    const n = this.keys.length;
    if (n === 0 || limit <= 0) return [];
    // A copy: the binding reads a typed array from the start of its buffer, whatever its offset.
    const q = Float32Array.from(query);
    // usearch gives a zero query distance 0 to a zero vector; cosineDistance gives 1 to all.
    if (q.every((x) => x === 0))
      return [...this.keys]
        .sort((a, b) => a - b)
        .slice(0, limit)
        .map((key) => ({ key, distance: 1 }));
    const data = this.data.subarray(0, n * this.dimensions); // starts at offset 0: data owns its buffer
    for (let k = Math.min(n, limit + 1); ; k = Math.min(n, k * 2)) {
      const res = usearch.exactSearch(data, q, this.dimensions, k, usearch.MetricKind.Cos, 1) as Matches;
      const hits: VectorHit[] = [];
      for (let i = 0; i < res.keys.length; i++)
        hits.push({ key: this.keys[Number(res.keys[i])], distance: res.distances[i] });
      hits.sort((a, b) => a.distance - b.distance || a.key - b.key);
      // Rows left out are at least as far as the last one returned: when that one is farther than
      // the cut, every row tied at the cut is among these.
      if (hits.length <= limit || hits[hits.length - 1].distance > hits[limit - 1].distance || k === n)
        return hits.slice(0, limit);
    }
  }

  /** Every key with its unit vector, in key order (so a graph built from them is built alike). */
  *entries(): Generator<[number, Float32Array]> {
    const d = this.dimensions;
    const order = this.keys.map((key, slot) => [key, slot] as const).sort((a, b) => a[0] - b[0]);
    for (const [key, slot] of order) yield [key, this.data.subarray(slot * d, (slot + 1) * d)];
  }

  /**
   * The file form: MAGIC, then dimensions and count as little-endian uint32, the keys as float64
   * (memory vector keys are safe integers), then the vectors as float32, all little-endian.
   */
  serialize(): Buffer {
    const n = this.keys.length;
    const d = this.dimensions;
    const out = Buffer.alloc(HEADER + n * 8 + n * d * 4);
    MAGIC.copy(out, 0);
    out.writeUInt32LE(d, 8);
    out.writeUInt32LE(n, 12);
    for (let i = 0; i < n; i++) out.writeDoubleLE(this.keys[i], HEADER + i * 8);
    const vectors = this.data.subarray(0, n * d);
    Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength).copy(out, HEADER + n * 8);
    return out;
  }

  static load(file: string, dimensions: number): ExactVectors {
    const bytes = readFileSync(file);
    const damaged = (why: string) => new Error(`${file} is not a vector file this service wrote: ${why}`);
    if (bytes.length < HEADER || !bytes.subarray(0, 8).equals(MAGIC)) throw damaged('no header');
    const d = bytes.readUInt32LE(8);
    const n = bytes.readUInt32LE(12);
    if (d !== dimensions) throw new Error(`${file} holds ${d}-dimensional vectors, expected ${dimensions}`);
    if (bytes.length !== HEADER + n * 8 + n * d * 4) throw damaged(`${bytes.length} bytes for ${n} vectors`);
    const store = new ExactVectors(d);
    store.data = new Float32Array(Math.max(16, n) * d);
    const raw = bytes.subarray(HEADER + n * 8);
    // Copied through a Uint8Array view: the file's buffer need not be 4-byte aligned.
    new Uint8Array(store.data.buffer).set(raw);
    for (let i = 0; i < n; i++) {
      const key = bytes.readDoubleLE(HEADER + i * 8);
      if (!Number.isSafeInteger(key) || key < 0 || store.slots.has(key)) throw damaged(`key ${key}`);
      store.keys.push(key);
      store.slots.set(key, i);
    }
    return store;
  }
}

const MAGIC = Buffer.from('MLVEC1\0\0', 'latin1');
const HEADER = 16;
