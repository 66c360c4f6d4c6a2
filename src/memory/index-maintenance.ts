import type { Database } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';
import { bytesToVector } from '../adapters/vector/codec.js';
import type { VectorIndex } from '../adapters/vector/port.js';

const PAGE = 2000;

/** Memories whose vector for `model` should be in the index. */
export async function countIndexable(db: Database, model: EmbeddingModel): Promise<number> {
  const res = await db.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM memory_nodes
     WHERE status = 'indexed' AND deleted_at IS NULL AND embedding_model = $1 AND embedding_model_version = $2`,
    [model.name, model.version],
  );
  return res.rows[0].count;
}

/**
 * Rebuilds a vector space from the vectors kept in PostgreSQL (no re-embedding): clears it,
 * then streams every live indexed vector of the model in key order.
 */
export async function rebuildIndex(
  db: Database,
  index: VectorIndex,
  model: EmbeddingModel,
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<number> {
  const total = await countIndexable(db, model);
  await index.ensureSpace(model);
  await index.clear(model);
  await index.ensureSpace(model);
  let after = 0;
  let done = 0;
  for (;;) {
    const res = await db.query<{ vector_key: number; division_id: string; embedding: Uint8Array }>(
      `SELECT vector_key, division_id, embedding FROM memory_nodes
       WHERE vector_key > $1 AND status = 'indexed' AND deleted_at IS NULL
         AND embedding_model = $2 AND embedding_model_version = $3
       ORDER BY vector_key LIMIT $4`,
      [after, model.name, model.version, PAGE],
    );
    if (res.rows.length === 0) break;
    await index.upsert(
      model,
      res.rows.map((r) => ({
        key: Number(r.vector_key),
        divisionId: r.division_id,
        vector: bytesToVector(r.embedding),
      })),
    );
    done += res.rows.length;
    after = Number(res.rows[res.rows.length - 1].vector_key);
    onProgress(done, total);
  }
  await index.flush();
  return done;
}

/**
 * At start: when the index does not hold exactly the vectors PostgreSQL says it should (a crash
 * between the two writes, a lost disk), rebuild it. Returns whether it rebuilt.
 */
export async function reconcileIndex(
  db: Database,
  index: VectorIndex,
  model: EmbeddingModel,
): Promise<boolean> {
  await index.ensureSpace(model);
  const [inIndex, expected] = await Promise.all([index.count(model), countIndexable(db, model)]);
  if (inIndex === expected) return false;
  await rebuildIndex(db, index, model);
  return true;
}
