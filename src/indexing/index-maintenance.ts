import type { Database, Queryable } from '../adapters/db/port.js';
import { type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import { base64ToVector } from '../memories/vector-codec.js';
import { type ModelResolver, refOf } from '../models/active-model.js';
import {
  type ContextOptions,
  contextSql,
  indexVectorOf,
  type NeighbourVectors,
} from './contextual-vectors.js';

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
 * Vectors of `model` a re-embedding computed and put in the model's space, for live memories
 * whose text has not changed since and whose own row does not already count them.
 */
const UNDER_CONSTRUCTION = `FROM reembed_vectors v JOIN memory_nodes n ON n.id = v.node_id
  WHERE v.model = $1 AND v.model_version = $2 AND n.deleted_at IS NULL AND v.checksum = n.checksum
    AND NOT (n.status = 'indexed' AND n.embedding_model IS NOT DISTINCT FROM $1
      AND n.embedding_model_version IS NOT DISTINCT FROM $2)`;

export async function countUnderConstruction(db: Database, model: EmbeddingModel): Promise<number> {
  const res = await db.query<{ count: number }>(`SELECT count(*)::int AS count ${UNDER_CONSTRUCTION}`, [
    model.name,
    model.version,
  ]);
  return res.rows[0].count;
}

/**
 * Rebuilds a vector space from the vectors kept in PostgreSQL (no re-embedding): replaces its
 * entries (searches answer from the old ones meanwhile) with every live indexed vector of the
 * model in key order, blended with its session neighbours' as the worker blends them, then the
 * vectors a re-embedding toward the model has computed so far (own vectors: the switch queues the
 * division's memories for blending).
 */
export async function rebuildIndex(
  db: Database,
  index: VectorIndex,
  model: EmbeddingModel,
  onProgress: (done: number, total: number) => void = () => undefined,
  context: ContextOptions = {},
): Promise<number> {
  const total = (await countIndexable(db, model)) + (await countUnderConstruction(db, model));
  await index.ensureSpace(model);
  let done = 0;
  const blend = contextSql('$1', '$2', context);
  const sources = [
    `SELECT n.vector_key, n.division_id, encode(n.embedding, 'base64') AS embedding, ${blend.columns}
     FROM memory_nodes n ${blend.joins}
     WHERE n.vector_key > $3 AND n.status = 'indexed' AND n.deleted_at IS NULL
       AND n.embedding_model = $1 AND n.embedding_model_version = $2
     ORDER BY n.vector_key LIMIT $4`,
    `SELECT n.vector_key, n.division_id, encode(v.embedding, 'base64') AS embedding,
       NULL::text AS prev_embedding, NULL::text AS next_embedding
     ${UNDER_CONSTRUCTION} AND n.vector_key > $3
     ORDER BY n.vector_key LIMIT $4`,
  ];
  // Searches keep the old entries until every page is in (index.replace).
  await index.replace(model, async (write) => {
    for (const sql of sources) {
      let after = 0;
      for (;;) {
        const res = await db.query<
          { vector_key: number; division_id: string; embedding: string } & NeighbourVectors
        >(sql, [model.name, model.version, after, PAGE]);
        if (res.rows.length === 0) break;
        await write(
          res.rows.map((r) => ({
            key: Number(r.vector_key),
            divisionId: r.division_id,
            vector: indexVectorOf(base64ToVector(r.embedding), r, context),
          })),
        );
        done += res.rows.length;
        after = Number(res.rows[res.rows.length - 1].vector_key);
        onProgress(done, total);
      }
    }
  });
  await index.flush();
  return done;
}

/**
 * At start: when the index does not hold exactly the vectors PostgreSQL says it should (a crash
 * between the two writes, a lost disk), or cannot say (a damaged file), rebuild it. Returns why it
 * rebuilt, or undefined when it did not.
 */
export async function reconcileIndex(
  db: Database,
  index: VectorIndex,
  model: EmbeddingModel,
  context: ContextOptions = {},
): Promise<string | undefined> {
  await index.ensureSpace(model);
  const [inIndex, indexed, building] = await Promise.all([
    // A rebuild replaces files without reading them, so one that cannot be read is rebuilt too.
    index.count(model).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    countIndexable(db, model),
    countUnderConstruction(db, model),
  ]);
  if (inIndex === indexed + building) return undefined;
  await rebuildIndex(db, index, model, undefined, context);
  return inIndex instanceof Error
    ? `the index could not be read (${inIndex.message})`
    : `the index held ${inIndex} vectors, PostgreSQL ${indexed + building}`;
}

/**
 * Every space the index should hold: the default model's, the models divisions use, and the
 * models re-embeddings are building. A model the service is no longer configured with keeps its
 * space when stored vectors give its dimensions.
 */
export async function modelsInUse(db: Queryable, resolve: ModelResolver): Promise<EmbeddingModel[]> {
  const res = await db.query<{ model: string; version: string; dim: number | null }>(
    `SELECT DISTINCT embedding_model AS model, embedding_model_version AS version, NULL::int AS dim
     FROM divisions WHERE embedding_model IS NOT NULL
     UNION
     SELECT DISTINCT model, model_version, dim FROM reembed_vectors`,
  );
  const models = new Map<string, EmbeddingModel>();
  const fallback = resolve(null);
  if (fallback) models.set(modelKey(fallback), fallback);
  for (const r of res.rows) {
    const model =
      resolve(refOf(r.model, r.version)) ??
      (r.dim === null ? undefined : { name: r.model, version: r.version, dimensions: r.dim });
    if (model && !models.has(modelKey(model))) models.set(modelKey(model), model);
  }
  return [...models.values()];
}

/** Index keys to remove, by space. */
export interface SpaceKeys {
  space: EmbeddingModel;
  keys: number[];
}

/**
 * Every space that may hold an entry of these memories: the space of the vector each one holds,
 * its division's active model's (a memory whose text changed keeps its old entry there until
 * the new vector replaces it), and those of vectors a re-embedding computed. Read it before a
 * purge erases the vectors; remove the entries after the commit (removeFromSpaces).
 */
export async function spacesOf(q: Queryable, resolve: ModelResolver, ids: string[]): Promise<SpaceKeys[]> {
  if (ids.length === 0) return [];
  const res = await q.query<{
    vector_key: number;
    model: string | null;
    version: string | null;
    dim: number | null;
  }>(
    `SELECT n.vector_key, n.embedding_model AS model, n.embedding_model_version AS version, n.embedding_dim AS dim
     FROM memory_nodes n WHERE n.id = ANY($1::uuid[]) AND n.embedding_model IS NOT NULL
     UNION
     SELECT n.vector_key, d.embedding_model, d.embedding_model_version, NULL::int
     FROM memory_nodes n JOIN divisions d ON d.id = n.division_id WHERE n.id = ANY($1::uuid[])
     UNION
     SELECT n.vector_key, v.model, v.model_version, v.dim
     FROM reembed_vectors v JOIN memory_nodes n ON n.id = v.node_id WHERE v.node_id = ANY($1::uuid[])`,
    [ids],
  );
  const spaces = new Map<string, SpaceKeys>();
  for (const r of res.rows) {
    const ref = refOf(r.model, r.version);
    const space =
      resolve(ref) ??
      (ref && r.dim !== null ? { name: ref.name, version: ref.version, dimensions: r.dim } : undefined);
    if (!space) continue;
    const entry = spaces.get(modelKey(space)) ?? { space, keys: [] };
    if (!entry.keys.includes(Number(r.vector_key))) entry.keys.push(Number(r.vector_key));
    spaces.set(modelKey(space), entry);
  }
  return [...spaces.values()];
}

/** Removes the entries spacesOf found; best effort per space (the index is derived data). */
export async function removeFromSpaces(
  index: Pick<VectorIndex, 'remove'>,
  spaces: SpaceKeys[],
  onError: (err: unknown, space: EmbeddingModel) => void = () => undefined,
): Promise<void> {
  for (const { space, keys } of spaces) {
    if (keys.length === 0) continue;
    await index.remove(space, keys).catch((err: unknown) => onError(err, space));
  }
}
