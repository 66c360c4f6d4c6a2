import type { Queryable } from '../adapters/db/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';

export interface StorageUsage {
  /** Tables and indexes of the service's schema (a vector index kept there included). */
  database: number;
  /** The vector index alone, wherever it keeps its data (the index says). */
  vectorIndex: number;
  /** Bytes of stored artifacts, as recorded when they were uploaded. */
  artifacts: number;
}

/**
 * What the service stores, for `memory_layer_storage_bytes`. Catalog sizes only (no table scans)
 * except the artifact sum, which reads one narrow column; cheap enough for every scrape.
 */
export async function storageUsage(
  db: Queryable,
  index: Pick<VectorIndex, 'storageBytes'>,
): Promise<StorageUsage> {
  const res = await db.query<{ database: number | string }>(
    `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS database
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')`,
  );
  const artifacts = await db.query<{ bytes: number | string }>(
    'SELECT coalesce(sum(size), 0)::bigint AS bytes FROM artifacts',
  );
  return {
    database: Number(res.rows[0].database),
    vectorIndex: await index.storageBytes(),
    artifacts: Number(artifacts.rows[0].bytes),
  };
}
