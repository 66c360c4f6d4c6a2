import type { Queryable } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';
import { base64ToVector } from '../memories/vector-codec.js';
import { enqueue, INDEX_QUEUE } from './queue.js';

/*
 * Contextual vectors: the vector a memory of a session has in the vector index is its own vector
 * blended with its session neighbours' — v + w·(v_prev + v_next), each normalised first, the sum
 * normalised — so that a turn that only makes sense with the turns around it ("Yes, last Friday")
 * is found by what the conversation was about. `memory_nodes.embedding` keeps the memory's own
 * vector: reuse by checksum and re-embedding rely on it, and every index vector is derived from
 * the stored ones. Measured on the LoCoMo development split (BENCHMARKS.md): w = 0.5 took the
 * built-in model's recall@10 from 41.0 to 49.8 %.
 *
 * Neighbours: the nearest live memory before and after in the session order (sequence, then
 * arrival), in the same division and session and of the same agent (or both of none). A
 * neighbour without a vector of the same model (pending, failed) adds nothing until it has one:
 * indexing it queues its neighbours again (`queueContextUpdates`). Superseded memories still
 * count: they are still part of the conversation. Memories without a session are indexed with
 * their own vector, unchanged.
 */

/** Weight of each session neighbour in a memory's indexed vector (0: own vectors only). */
export const DEFAULT_CONTEXT_WEIGHT = 0.5;

/** How the index vectors of memories are made; the same everywhere they are (worker, rebuild, backup, exact scan). */
export interface ContextOptions {
  /** Weight of each neighbour (default DEFAULT_CONTEXT_WEIGHT). */
  contextWeight?: number;
}

const side = (name: string, cmp: '<' | '>', order: 'DESC' | 'ASC', n: string) => `
  LEFT JOIN LATERAL (
    SELECT s.id, s.embedding, s.embedding_model, s.embedding_model_version FROM memory_nodes s
    WHERE ${n}.session_id IS NOT NULL AND s.division_id = ${n}.division_id AND s.session_id = ${n}.session_id
      AND s.agent_id IS NOT DISTINCT FROM ${n}.agent_id AND s.deleted_at IS NULL
      AND (s.sequence, s.vector_key) ${cmp} (${n}.sequence, ${n}.vector_key)
    ORDER BY s.sequence ${order}, s.vector_key ${order} LIMIT 1) ${name} ON true`;

/**
 * SQL joining, to each `memory_nodes` row aliased `n`, its neighbours `prev` and `next` (columns
 * id, embedding, embedding_model, embedding_model_version; null when there is none). The
 * `n.session_id IS NOT NULL` test is evaluated once per row, so memories without a session cost
 * no index probe.
 */
export const neighbourJoins = (n = 'n') => `${side('prev', '<', 'DESC', n)}${side('next', '>', 'ASC', n)}`;

/**
 * SQL select list of the neighbours' vectors of the model whose name and version are the
 * parameters `$model`, `$version` (as base64; null when absent or of another model). Use with
 * `neighbourJoins`.
 */
export const neighbourVectorColumns = (model: string, version: string) =>
  ['prev', 'next']
    .map(
      (s) =>
        `CASE WHEN ${s}.embedding_model = ${model} AND ${s}.embedding_model_version = ${version}
           THEN encode(${s}.embedding, 'base64') END AS ${s}_embedding`,
    )
    .join(', ');

/**
 * The select list and joins that give rows of `memory_nodes n` their neighbours' vectors of the
 * model in parameters `model`/`version`; none when the weight is 0 (rows then get own vectors).
 */
export function contextSql(model: string, version: string, opts: ContextOptions = {}) {
  return (opts.contextWeight ?? DEFAULT_CONTEXT_WEIGHT) === 0
    ? { columns: 'NULL::text AS prev_embedding, NULL::text AS next_embedding', joins: '' }
    : { columns: neighbourVectorColumns(model, version), joins: neighbourJoins('n') };
}

export interface NeighbourVectors {
  prev_embedding: string | null;
  next_embedding: string | null;
}

function normalise(v: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += v[i] * v[i];
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return v;
}

/**
 * A memory's index vector: its own when it has no neighbour with a vector (or the weight is 0),
 * else the normalised blend with its neighbours'.
 */
export function blendWithNeighbours(
  own: Float32Array,
  neighbours: readonly (Float32Array | null)[],
  weight: number,
): Float32Array {
  const present = neighbours.filter((v): v is Float32Array => v !== null && v.length === own.length);
  if (weight === 0 || present.length === 0) return own;
  const out = normalise(Float32Array.from(own));
  for (const v of present) {
    const unit = normalise(Float32Array.from(v));
    for (let i = 0; i < out.length; i++) out[i] += weight * unit[i];
  }
  return normalise(out);
}

/** The index vector of a memory: its own vector and its neighbours' as `neighbourVectorColumns` selects them. */
export function indexVectorOf(
  own: Float32Array,
  row: NeighbourVectors | undefined,
  opts: ContextOptions = {},
): Float32Array {
  const weight = opts.contextWeight ?? DEFAULT_CONTEXT_WEIGHT;
  if (weight === 0 || row === undefined) return own;
  const decode = (b: string | null) => (b === null ? null : base64ToVector(b));
  return blendWithNeighbours(own, [decode(row.prev_embedding), decode(row.next_embedding)], weight);
}

/** The neighbours' vectors of `model` for these memories (only those in a session appear). */
export async function neighbourVectorsOf(
  q: Queryable,
  model: EmbeddingModel,
  ids: readonly string[],
): Promise<Map<string, NeighbourVectors>> {
  if (ids.length === 0) return new Map();
  const res = await q.query<NeighbourVectors & { id: string }>(
    `SELECT n.id, ${neighbourVectorColumns('$2', '$3')} FROM memory_nodes n ${neighbourJoins('n')}
     WHERE n.id = ANY($1::uuid[]) AND n.session_id IS NOT NULL`,
    [ids, model.name, model.version],
  );
  return new Map(res.rows.map((r) => [r.id, r]));
}

/** The live session neighbours (before and after) of these memories, deleted ones included among `ids`. */
export async function neighbourIdsOf(q: Queryable, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const res = await q.query<{ id: string }>(
    `SELECT DISTINCT x.id FROM memory_nodes n ${neighbourJoins('n')},
       LATERAL (VALUES (prev.id), (next.id)) AS x(id)
     WHERE n.id = ANY($1::uuid[]) AND n.session_id IS NOT NULL AND x.id IS NOT NULL`,
    [ids],
  );
  return res.rows.map((r) => r.id).filter((id) => !ids.includes(id));
}

/**
 * Queues, in the caller's transaction, a context job for every live memory of the division that
 * is in a session: after a re-embedding's switch, whose target space holds the new model's own
 * vectors, so that they are blended with the neighbours' new vectors.
 */
export async function queueDivisionContext(
  tx: Queryable,
  divisionId: string,
  maxAttempts: number,
): Promise<void> {
  await tx.query(
    `INSERT INTO jobs (queue, payload, max_attempts)
     SELECT $1, jsonb_build_object('nodeId', n.id, 'context', true), $3 FROM memory_nodes n
     WHERE n.division_id = $2 AND n.session_id IS NOT NULL AND n.deleted_at IS NULL
     ORDER BY n.vector_key`,
    [INDEX_QUEUE, divisionId, maxAttempts],
  );
}

/**
 * Queues, in the caller's transaction, a context job for each session neighbour of these
 * memories (except those in `except`): their index vectors blend the vectors of memories that
 * arrived, changed or were deleted. A context job only re-blends and re-indexes an indexed
 * memory; it queues nothing further, so updates never ripple past the neighbours. Idempotent:
 * running one twice, or one whose memory changed since, writes what PostgreSQL holds then.
 */
export async function queueContextUpdates(
  tx: Queryable,
  ids: readonly string[],
  maxAttempts: number,
  except: ReadonlySet<string> = new Set(),
): Promise<number> {
  const neighbours = (await neighbourIdsOf(tx, ids)).filter((id) => !except.has(id));
  await enqueue(
    tx,
    INDEX_QUEUE,
    neighbours.map((nodeId) => ({ nodeId, context: true })),
    maxAttempts,
  );
  return neighbours.length;
}
