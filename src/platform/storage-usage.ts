import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Queryable } from '../adapters/db/port.js';

export interface StorageUsage {
  /** Tables and indexes of the service's schema (pgvector's index table included). */
  database: number;
  /** The vector index alone: pgvector's table, or usearch's files. */
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
  index: { name: 'pgvector' | 'usearch'; dir?: string },
): Promise<StorageUsage> {
  const res = await db.query<{ database: number | string; vectors: number | string | null }>(
    `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS database,
            (SELECT pg_total_relation_size(to_regclass('vector_entries')))::bigint AS vectors
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')`,
  );
  const artifacts = await db.query<{ bytes: number | string }>(
    'SELECT coalesce(sum(size), 0)::bigint AS bytes FROM artifacts',
  );
  const vectorIndex =
    index.name === 'pgvector'
      ? Number(res.rows[0].vectors ?? 0)
      : index.dir
        ? await directoryBytes(index.dir)
        : 0;
  return {
    database: Number(res.rows[0].database),
    vectorIndex,
    artifacts: Number(artifacts.rows[0].bytes),
  };
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await directoryBytes(path);
    else if (e.isFile()) total += (await stat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
