import { type EmbeddingModel, modelKey } from '../embedders/port.js';

/**
 * A vector space: all vectors of one model version. An index holds one or more spaces,
 * each partitioned by division so that a division's search never sees another's vectors.
 */
export type VectorSpace = EmbeddingModel;

export interface VectorEntry {
  /** `memory_nodes.vector_key`. */
  key: number;
  divisionId: string;
  vector: Float32Array;
}

export interface VectorHit {
  key: number;
  /** Cosine distance, 0 (same direction) to 2 (opposite). */
  distance: number;
}

/**
 * The vector index port. Derived data: everything in it can be rebuilt from the vectors kept in
 * PostgreSQL (`memory-layer index rebuild`). Approximate: callers that filter on more than the
 * division check the result count and fall back to an exact scan (see src/search/search.ts).
 */
export interface VectorIndex {
  readonly name: 'pgvector' | 'usearch';
  /** Prepares storage for a space (idempotent). */
  ensureSpace(space: VectorSpace): Promise<void>;
  /** Inserts or replaces entries by key. */
  upsert(space: VectorSpace, entries: VectorEntry[]): Promise<void>;
  remove(space: VectorSpace, keys: number[]): Promise<void>;
  /** Up to `limit` nearest keys of one division, nearest first. */
  search(space: VectorSpace, divisionId: string, vector: Float32Array, limit: number): Promise<VectorHit[]>;
  /** Number of entries, in one division or in the whole space. */
  count(space: VectorSpace, divisionId?: string): Promise<number>;
  /**
   * Replaces every entry of a space with the entries `fill` writes (a rebuild, a restore; nothing
   * written empties it). Searches answer from the old entries until `fill` has finished, then from
   * the new ones; writes made meanwhile through `upsert` and `remove` reach both.
   */
  replace(
    space: VectorSpace,
    fill: (write: (entries: VectorEntry[]) => Promise<void>) => Promise<void>,
  ): Promise<void>;
  /** Persists pending changes where the adapter keeps state outside PostgreSQL. */
  flush(): Promise<void>;
  /** Throws when the index cannot serve (for /readyz). */
  check(): Promise<void>;
  /** Bytes the index occupies, wherever it keeps them (for `memory_layer_storage_bytes`). */
  storageBytes(): Promise<number>;
  close(): Promise<void>;
}

/** Throws unless `v` has the space's dimensions (every adapter checks before it stores or searches). */
export function checkDimensions(space: VectorSpace, v: Float32Array): void {
  if (v.length !== space.dimensions)
    throw new Error(`vector has ${v.length} dimensions, space ${modelKey(space)} has ${space.dimensions}`);
}
