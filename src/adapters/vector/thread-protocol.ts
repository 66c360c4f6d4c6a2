import type { VectorEntry, VectorHit } from './port.js';

/**
 * What crosses between the service's thread and the vector index's thread (see in-thread.ts).
 * Vectors and hits travel packed in typed arrays whose buffers are transferred, not cloned: a
 * chunk of 10,000 imported vectors is one 20 MB buffer instead of 10,000 objects to copy.
 */

export interface PackedEntries {
  keys: Float64Array;
  /** The division of each entry, as an index into `divisions`. */
  divisionOf: Uint32Array;
  divisions: string[];
  vectors: Float32Array;
  dimensions: number;
}

export interface PackedHits {
  keys: Float64Array;
  distances: Float64Array;
}

export type Request =
  | { id: number; method: 'ensureSpace' | 'flush' | 'check' | 'storageBytes' | 'close'; args: unknown[] }
  | { id: number; method: 'upsert'; args: [space: unknown, entries: PackedEntries] }
  | { id: number; method: 'remove'; args: [space: unknown, keys: number[]] }
  | {
      id: number;
      method: 'search';
      args: [space: unknown, division: string, vector: Float32Array, limit: number];
    }
  | { id: number; method: 'count'; args: [space: unknown, division?: string] }
  /** Starts a replace whose fill is the `replaceWrite` calls that follow, until `replaceEnd`. */
  | { id: number; method: 'replaceBegin'; args: [space: unknown] }
  | { id: number; method: 'replaceWrite'; args: [replace: number, entries: PackedEntries] }
  | { id: number; method: 'replaceEnd'; args: [replace: number, error?: string] };

export type Reply = { id: number; value?: unknown; hits?: PackedHits; error?: string };

/** Entries whose vectors all have `dimensions` numbers (checked by the caller). */
export function packEntries(
  entries: VectorEntry[],
  dimensions: number,
): { packed: PackedEntries; transfer: ArrayBuffer[] } {
  const keys = new Float64Array(entries.length);
  const divisionOf = new Uint32Array(entries.length);
  const vectors = new Float32Array(entries.length * dimensions);
  const divisions: string[] = [];
  const slot = new Map<string, number>();
  entries.forEach((e, i) => {
    keys[i] = e.key;
    let d = slot.get(e.divisionId);
    if (d === undefined) {
      d = divisions.push(e.divisionId) - 1;
      slot.set(e.divisionId, d);
    }
    divisionOf[i] = d;
    vectors.set(e.vector, i * dimensions);
  });
  const packed = { keys, divisionOf, divisions, vectors, dimensions };
  return { packed, transfer: [keys.buffer, divisionOf.buffer, vectors.buffer] as ArrayBuffer[] };
}

export function unpackEntries(p: PackedEntries): VectorEntry[] {
  return Array.from(p.keys, (key, i) => ({
    key,
    divisionId: p.divisions[p.divisionOf[i]],
    vector: p.vectors.subarray(i * p.dimensions, (i + 1) * p.dimensions),
  }));
}

export function packHits(hits: VectorHit[]): { packed: PackedHits; transfer: ArrayBuffer[] } {
  const keys = Float64Array.from(hits, (h) => h.key);
  const distances = Float64Array.from(hits, (h) => h.distance);
  return { packed: { keys, distances }, transfer: [keys.buffer, distances.buffer] as ArrayBuffer[] };
}

export function unpackHits(p: PackedHits): VectorHit[] {
  return Array.from(p.keys, (key, i) => ({ key, distance: p.distances[i] }));
}
