import { createHash } from 'node:crypto';
import { LOCK_KEYS } from '../../platform/locks.js';
import type { Database, Queryable } from '../db/port.js';
import { modelKey } from '../embedders/port.js';
import {
  checkDimensions,
  type VectorEntry,
  type VectorHit,
  type VectorIndex,
  type VectorSpace,
} from './port.js';

/** Rows per INSERT: 4 parameters each stays far below PostgreSQL's 65,535-parameter limit. */
const CHUNK = 500;
/** pgvector rejects hnsw.ef_search above 1,000. */
const MAX_EF_SEARCH = 1000;

/**
 * Vector index inside PostgreSQL (pgvector): one table for every space, with one partial HNSW
 * index per space on `embedding::vector(D)` (the column itself has no fixed dimension, so spaces of
 * different models share it). Nothing to flush: the data lives in the database.
 */
export function createPgvectorIndex(db: Database): VectorIndex {
  const ready = new Map<string, Promise<void>>();
  /** Spaces a `replace` is filling: writes meanwhile reach its staging rows too. */
  const replacing = new Set<string>();

  const ensure = (space: VectorSpace): Promise<void> => {
    const id = `${modelKey(space)}/${space.dimensions}`;
    let p = ready.get(id);
    if (!p) {
      p = createSpace(db, space).catch((err: unknown) => {
        ready.delete(id); // let a later call try again
        throw err;
      });
      ready.set(id, p);
    }
    return p;
  };

  return {
    name: 'pgvector',
    ensureSpace: ensure,

    async upsert(space, entries) {
      await ensure(space);
      const rows = dedupe(entries);
      for (const e of rows) checkDimensions(space, e.vector);
      if (rows.length === 0) return;
      const key = modelKey(space);
      await db.transaction(async (tx) => {
        await insertRows(tx, key, rows);
        if (replacing.has(key)) await insertRows(tx, stagingName(key), rows);
      });
    },

    async remove(space, keys) {
      await ensure(space);
      if (keys.length === 0) return;
      const key = modelKey(space);
      await db.query('DELETE FROM vector_entries WHERE space = ANY($1::text[]) AND key = ANY($2::bigint[])', [
        replacing.has(key) ? [key, stagingName(key)] : [key],
        keys,
      ]);
    },

    async search(space, divisionId, vector, limit) {
      await ensure(space);
      checkDimensions(space, vector);
      if (limit <= 0) return [];
      const d = dims(space);
      const ef = Math.min(Math.max(limit, 100), MAX_EF_SEARCH);
      // The space is a literal, not a parameter, so that the planner can prove the partial
      // index's predicate; the distance expression must match the index expression exactly.
      // relaxed_order keeps scanning the graph until `limit` rows pass the division filter, but
      // may return them slightly out of order: hence the outer sort.
      return db.transaction(async (tx) => {
        await tx.query(`SET LOCAL hnsw.ef_search = ${ef}`);
        await tx.query('SET LOCAL hnsw.iterative_scan = relaxed_order');
        const res = await tx.query<{ key: number | bigint | string; distance: number }>(
          `SELECT key, distance FROM (
             SELECT key, embedding::vector(${d}) <=> $1::vector(${d}) AS distance
             FROM vector_entries
             WHERE space = ${literal(modelKey(space))} AND division_id = $2
             ORDER BY embedding::vector(${d}) <=> $1::vector(${d})
             LIMIT $3
           ) s ORDER BY distance, key`,
          [vectorText(vector), divisionId, limit],
        );
        return res.rows.map((r): VectorHit => ({ key: Number(r.key), distance: Number(r.distance) }));
      });
    },

    async count(space, divisionId) {
      await ensure(space);
      const res =
        divisionId === undefined
          ? await db.query<{ n: number }>('SELECT count(*)::int AS n FROM vector_entries WHERE space = $1', [
              modelKey(space),
            ])
          : await db.query<{ n: number }>(
              'SELECT count(*)::int AS n FROM vector_entries WHERE space = $1 AND division_id = $2',
              [modelKey(space), divisionId],
            );
      return Number(res.rows[0].n);
    },

    async replace(space, fill) {
      await ensure(space);
      // Filled under a staging name, outside the space's partial HNSW index and its searches (fill
      // may read the database meanwhile, which on PGlite's one connection an open transaction
      // would block), then swapped in by one transaction.
      const key = modelKey(space);
      const staging = stagingName(key);
      if (replacing.has(key)) throw new Error(`space ${key} is already being replaced`);
      replacing.add(key);
      try {
        await db.query('DELETE FROM vector_entries WHERE space = $1', [staging]);
        await fill(async (entries) => {
          const rows = dedupe(entries);
          for (const e of rows) checkDimensions(space, e.vector);
          await insertRows(db, staging, rows);
        });
        await db.transaction(async (tx) => {
          await tx.query('DELETE FROM vector_entries WHERE space = $1', [key]);
          await tx.query('UPDATE vector_entries SET space = $1 WHERE space = $2', [key, staging]);
        });
      } finally {
        replacing.delete(key);
      }
    },

    async flush() {},

    async check() {
      // Fails when the extension went missing, not only when the connection did.
      await db.query("SELECT '[1]'::vector AS v");
    },

    async storageBytes() {
      // The table and its indexes; 0 before the first space created it.
      const res = await db.query<{ bytes: number | string | null }>(
        "SELECT pg_total_relation_size(to_regclass('vector_entries'))::bigint AS bytes",
      );
      return Number(res.rows[0]?.bytes ?? 0);
    },

    async close() {},
  };
}

/** Where a replace of the space writes until it swaps in. */
const stagingName = (key: string) => `${key}#replacing`;

/** Inserts or replaces rows by (space, key), CHUNK rows per statement. */
async function insertRows(q: Queryable, key: string, rows: VectorEntry[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const params: unknown[] = [];
    const values = chunk.map((e) => {
      params.push(key, e.key, e.divisionId, vectorText(e.vector));
      const n = params.length;
      return `($${n - 3}, $${n - 2}::bigint, $${n - 1}, $${n}::vector)`;
    });
    await q.query(
      `INSERT INTO vector_entries (space, key, division_id, embedding) VALUES ${values.join(', ')}
       ON CONFLICT (space, key) DO UPDATE
       SET division_id = EXCLUDED.division_id, embedding = EXCLUDED.embedding`,
      params,
    );
  }
}

/** Creates the table and the space's indexes. Serialised by an advisory lock: concurrent
 * `CREATE ... IF NOT EXISTS` from several replicas can still collide in the catalog. */
async function createSpace(db: Database, space: VectorSpace): Promise<void> {
  const d = dims(space);
  const key = modelKey(space);
  const hash = createHash('sha256').update(`${key}/${d}`).digest('hex').slice(0, 16);
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEYS.vectorEntriesDdl]);
    await tx.exec(`
      CREATE EXTENSION IF NOT EXISTS vector;
      CREATE TABLE IF NOT EXISTS vector_entries (
        space       text NOT NULL,
        key         bigint NOT NULL,
        division_id text NOT NULL,
        embedding   vector NOT NULL,
        PRIMARY KEY (space, key)
      );
      CREATE INDEX IF NOT EXISTS vector_entries_division_idx ON vector_entries (space, division_id);
      CREATE INDEX IF NOT EXISTS vector_entries_hnsw_${hash} ON vector_entries
        USING hnsw ((embedding::vector(${d})) vector_cosine_ops)
        WITH (m = 16, ef_construction = 64)
        WHERE space = ${literal(key)};
    `);
  });
}

function dims(space: VectorSpace): number {
  const d = space.dimensions;
  // Interpolated into SQL (type modifiers cannot be parameters): only a plain integer gets there.
  if (!Number.isInteger(d) || d <= 0 || d > 16000) throw new Error(`invalid vector dimensions: ${d}`);
  return d;
}

/**
 * A SQL string literal. The E'' form reads backslashes the same way whatever
 * standard_conforming_strings says, so doubling quotes and backslashes is enough.
 */
function literal(s: string): string {
  if (s.includes('\0')) throw new Error('NUL byte in a vector space name');
  return `E'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** pgvector's text form. A float32 printed as the shortest double string reads back exactly. */
function vectorText(v: Float32Array): string {
  return `[${Array.from(v).join(',')}]`;
}

/** ON CONFLICT cannot touch one row twice in a statement: the last entry for a key wins. */
function dedupe(entries: VectorEntry[]): VectorEntry[] {
  const byKey = new Map<number, VectorEntry>();
  for (const e of entries) byKey.set(e.key, e);
  return byKey.size === entries.length ? entries : [...byKey.values()];
}
