import { join } from 'node:path';
import type { Database } from '../db/port.js';
import type { VectorIndex } from './port.js';
import type { UsearchQuantization } from './usearch.js';

export type { VectorEntry, VectorHit, VectorIndex, VectorSpace } from './port.js';

export type VectorIndexKind = 'auto' | 'pgvector' | 'usearch';
export type { UsearchQuantization } from './usearch.js';

/**
 * Where the usearch adapter keeps its files: one directory per scalar kind, so that changing
 * USEARCH_QUANTIZATION starts from an empty directory (rebuilt from PostgreSQL at start) instead of
 * loading files of another kind.
 */
const usearchDir = (dataDir: string, quantization: UsearchQuantization = 'f32') =>
  join(dataDir, quantization === 'f32' ? 'usearch' : `usearch-${quantization}`);

/** Where a replica following the change feed records the position its usearch files hold. */
export const followerPositionFile = (dataDir: string, quantization?: UsearchQuantization) =>
  join(usearchDir(dataDir, quantization), 'follower-position.json');

/**
 * Tables a vector index may keep in the service's schema (pgvector's). Derived data, rebuilt from
 * the vectors in `memory_nodes`: backups leave them out, whichever index is configured now.
 */
export const VECTOR_INDEX_TABLES: readonly string[] = Object.freeze(['vector_entries']);

/**
 * Picks the vector index from config. 'auto' keeps vectors in PostgreSQL when pgvector is there
 * (one store to back up, shared by every replica) and falls back to the embedded usearch files.
 * Adapters are imported on demand so that a deployment never loads a native module it does not use.
 */
export async function createVectorIndex(
  kind: VectorIndexKind,
  deps: { db: Database; dataDir: string; usearchQuantization?: UsearchQuantization },
): Promise<VectorIndex> {
  const usePgvector = kind === 'pgvector' || (kind === 'auto' && (await deps.db.hasPgvector()));
  if (usePgvector) {
    if (kind === 'pgvector' && !(await deps.db.hasPgvector()))
      throw new Error(
        'vector index "pgvector" was requested, but the database has no pgvector extension: install it, or choose "usearch" or "auto"',
      );
    const { createPgvectorIndex } = await import('./pgvector.js');
    return createPgvectorIndex(deps.db);
  }
  // In a thread of its own: usearch's calls are synchronous (see in-thread.ts).
  const { startUsearchThread } = await import('./in-thread.js');
  return startUsearchThread({
    dir: usearchDir(deps.dataDir, deps.usearchQuantization),
    quantization: deps.usearchQuantization,
  });
}
