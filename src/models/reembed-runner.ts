import type { Database } from '../adapters/db/port.js';
import { type Embedder, type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import type { AppendAudit } from '../audit/types.js';
import { queueDivisionContext } from '../indexing/contextual-vectors.js';
import { reusableVectors, reuseKey, stillToEmbed } from '../indexing/vector-reuse.js';
import { normaliseText } from '../memories/text.js';
import { bytesToVector, vectorToBytes } from '../memories/vector-codec.js';
import { lease } from '../platform/lease.js';
import { createLeasedRunner, LostRun, type RunContext } from '../platform/leased-runs.js';
import type { Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import { type ModelRef, type ModelResolver, refOf } from './active-model.js';
import type { RunRow } from './reembed.js';

export interface ReembedRunnerDeps {
  db: Database;
  index: Pick<VectorIndex, 'ensureSpace' | 'upsert' | 'remove' | 'count'>;
  embedders: { get(model: EmbeddingModel): Promise<Embedder> };
  resolveModel: ModelResolver;
  appendAudit: AppendAudit;
  metrics: Metrics;
  logger: Logger;
  /** Texts per batch, and the pause between batches: the throttle. */
  batchSize: number;
  pauseMs: number;
  /** How often an idle runner looks for runs. */
  pollMs: number;
  /** A run whose runner has not renewed its lease for this long is claimed by another. */
  leaseMs: number;
  /** Retry delay after a failed batch (doubling), and how many failures in a row fail the run. */
  backoffMs: number;
  maxAttempts: number;
}

/** The actor of the audit event a switch appends. */
export const REEMBED_ACTOR = 'system:reembed';

/** Live memories of division $1 without a vector of model $2@$3 for their current text. */
const MISSING = `n.division_id = $1 AND n.deleted_at IS NULL AND NOT EXISTS (
  SELECT 1 FROM reembed_vectors v
  WHERE v.node_id = n.id AND v.model = $2 AND v.model_version = $3 AND v.checksum = n.checksum)`;

const PAGE = 2000;

interface PageRow {
  id: string;
  vector_key: number;
  text: string;
  checksum: string;
}

/**
 * Re-embeds divisions, one run at a time per process. A run pages through the division's live
 * memories lacking a vector of the target model for their current text, embeds them in batches
 * (throttled), puts them in the target model's vector space, then stores them in
 * reembed_vectors; search keeps using the old model meanwhile. When nothing is missing, one
 * transaction re-checks that under a lock on the division (new writes wait), copies the vectors
 * into memory_nodes, switches the division's model and completes the run; then the division's
 * entries leave the old space. A runner that dies leaves its vectors stored: whoever claims the
 * run next continues from them.
 */
export function createReembedRunner(deps: ReembedRunnerDeps) {
  const { db, index, metrics, logger } = deps;
  /** The context of the run this runner works on (one at a time; set by open()). */
  let ctx: RunContext;

  async function recount(run: RunRow, target: EmbeddingModel): Promise<{ total: number; done: number }> {
    const res = await db.query<{ total: number; done: number }>(
      `SELECT count(*)::int AS total, count(v.node_id)::int AS done FROM memory_nodes n
       LEFT JOIN reembed_vectors v ON v.node_id = n.id AND v.model = $2 AND v.model_version = $3
         AND v.checksum = n.checksum
       WHERE n.division_id = $1 AND n.deleted_at IS NULL`,
      [run.division_id, target.name, target.version],
    );
    const counts = res.rows[0];
    await ctx.whileOurs(db, 'total = $4, done = $5', [counts.total, counts.done]);
    return counts;
  }

  async function missingPage(run: RunRow, target: EmbeddingModel, after: number): Promise<PageRow[]> {
    const res = await db.query<PageRow>(
      `SELECT n.id, n.vector_key, n.text, n.checksum FROM memory_nodes n
       WHERE ${MISSING} AND n.vector_key > $4
       ORDER BY n.vector_key LIMIT $5`,
      [run.division_id, target.name, target.version, after, deps.batchSize],
    );
    return res.rows.map((r) => ({ ...r, vector_key: Number(r.vector_key) }));
  }

  /** Embeds one page (each distinct text once, reusing vectors of identical texts), indexes, stores. */
  async function embedPage(run: RunRow, target: EmbeddingModel, embedder: Embedder, page: PageRow[]) {
    // One division per run: the reuse key's division part is the run's.
    const items = page.map((n) => ({ node: n, divisionId: run.division_id, checksum: n.checksum }));
    const vectors = await reusableVectors(db, target, items, { underConstruction: true });
    const keyOf = (n: PageRow) => reuseKey(run.division_id, n.checksum);
    const toEmbed = stillToEmbed(items, vectors).map((i) => i.node);
    if (toEmbed.length > 0) {
      const stop = metrics.embedSeconds.startTimer();
      try {
        const out = await embedder.embed(
          toEmbed.map((n) => normaliseText(n.text)),
          ctx.signal,
        );
        for (const [i, n] of toEmbed.entries()) {
          if (out[i]?.length !== target.dimensions)
            throw new Error(`${modelKey(target)} returned a vector of ${out[i]?.length} dimensions`);
          vectors.set(keyOf(n), vectorToBytes(out[i]));
        }
      } finally {
        stop();
      }
      metrics.embeddingsComputed.inc(toEmbed.length);
    }
    metrics.embeddingsReused.inc(page.length - toEmbed.length);

    // The index first: a vector stored below is then always in the target space too.
    await index.upsert(
      target,
      page.map((n) => ({
        key: n.vector_key,
        divisionId: run.division_id,
        vector: bytesToVector(vectors.get(keyOf(n)) as Buffer),
      })),
    );
    await db.transaction(async (tx) => {
      await ctx.whileOurs(tx, 'done = done + $4, embedded = embedded + $5', [page.length, toEmbed.length]);
      const params: unknown[] = [target.name, target.version, run.division_id, target.dimensions];
      const values = page.map((n) => {
        params.push(n.id, n.checksum, vectors.get(keyOf(n)));
        const p = params.length;
        return `($${p - 2}::uuid, $1, $2, $3, $4, $${p - 1}, $${p})`;
      });
      await tx.query(
        `INSERT INTO reembed_vectors (node_id, model, model_version, division_id, dim, checksum, embedding)
         VALUES ${values.join(', ')}
         ON CONFLICT (node_id, model, model_version) DO UPDATE
         SET checksum = EXCLUDED.checksum, embedding = EXCLUDED.embedding, dim = EXCLUDED.dim, created_at = now()`,
        params,
      );
    });
    metrics.reembedMemories.inc({ division: run.division_id, model: modelKey(target) }, page.length);
  }

  /**
   * Makes sure the target space holds every stored vector of the division before search may use
   * it (its entries can be lost apart from PostgreSQL: unflushed files, a restore from backup).
   */
  async function verifySpace(run: RunRow, target: EmbeddingModel, stored: number) {
    if ((await index.count(target, run.division_id)) >= stored) return;
    logger.warn({ run: run.id, division: run.division_id }, 'target vector space incomplete; refilling it');
    let after = 0;
    for (;;) {
      const res = await db.query<{ vector_key: number; embedding: Uint8Array }>(
        `SELECT n.vector_key, v.embedding FROM reembed_vectors v JOIN memory_nodes n ON n.id = v.node_id
         WHERE v.division_id = $1 AND v.model = $2 AND v.model_version = $3 AND n.deleted_at IS NULL
           AND v.checksum = n.checksum AND n.vector_key > $4
         ORDER BY n.vector_key LIMIT $5`,
        [run.division_id, target.name, target.version, after, PAGE],
      );
      if (res.rows.length === 0) return;
      await index.upsert(
        target,
        res.rows.map((r) => ({
          key: Number(r.vector_key),
          divisionId: run.division_id,
          vector: bytesToVector(r.embedding),
        })),
      );
      after = Number(res.rows[res.rows.length - 1].vector_key);
    }
  }

  /**
   * The switch, in one transaction: the division row locked FOR UPDATE (writes of new memories
   * and new texts wait: they take FOR KEY SHARE), completeness re-checked, vectors copied into
   * memory_nodes, the division's model set, the run completed, the audit event appended.
   * Returns null when memories arrived since the last pass.
   */
  async function trySwitch(run: RunRow, target: EmbeddingModel) {
    return db.transaction(async (tx) => {
      const division = await tx.query<{
        embedding_model: string | null;
        embedding_model_version: string | null;
      }>('SELECT embedding_model, embedding_model_version FROM divisions WHERE id = $1 FOR UPDATE', [
        run.division_id,
      ]);
      const owner = await tx.query<{ status: string; locked_by: string | null }>(
        'SELECT status, locked_by FROM reembed_runs WHERE id = $1 FOR UPDATE',
        [run.id],
      );
      if (owner.rows[0]?.status !== 'running' || owner.rows[0]?.locked_by !== ctx.runnerId)
        throw new LostRun();
      const params = [run.division_id, target.name, target.version];
      const missing = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM memory_nodes n WHERE ${MISSING}`,
        params,
      );
      if (missing.rows[0].n > 0) return null;
      const copied = await tx.query(
        `UPDATE memory_nodes n SET embedding = v.embedding, embedding_dim = v.dim, embedding_model = v.model,
           embedding_model_version = v.model_version, embedded_at = now(), status = 'indexed'
         FROM reembed_vectors v
         WHERE v.node_id = n.id AND v.division_id = $1 AND v.model = $2 AND v.model_version = $3
           AND n.deleted_at IS NULL AND v.checksum = n.checksum`,
        params,
      );
      // Vectors of memories deleted during the run: their entries leave the target space.
      const dead = await tx.query<{ vector_key: number }>(
        `SELECT n.vector_key FROM reembed_vectors v JOIN memory_nodes n ON n.id = v.node_id
         WHERE v.division_id = $1 AND v.model = $2 AND v.model_version = $3 AND n.deleted_at IS NOT NULL`,
        params,
      );
      await tx.query(
        'DELETE FROM reembed_vectors WHERE division_id = $1 AND model = $2 AND model_version = $3',
        params,
      );
      await tx.query(
        'UPDATE divisions SET embedding_model = $2, embedding_model_version = $3 WHERE id = $1',
        params,
      );
      // The target space holds own vectors: the worker blends session neighbours in (contextual-vectors.ts).
      await queueDivisionContext(tx, run.division_id, deps.maxAttempts);
      await tx.query(
        `UPDATE reembed_runs SET status = 'completed', total = $2, done = $2, finished_at = now(),
           updated_at = now(), ${lease.release}
         WHERE id = $1`,
        [run.id, copied.rowCount],
      );
      const from = refOf(division.rows[0].embedding_model, division.rows[0].embedding_model_version);
      const fromModel = deps.resolveModel(from);
      await deps.appendAudit(tx, [
        {
          divisionId: run.division_id,
          actor: REEMBED_ACTOR,
          action: 'division.model.switch',
          resourceType: 'division',
          resourceId: run.division_id,
          change: {
            runId: run.id,
            from: fromModel ? modelKey(fromModel) : from && modelKey(from),
            to: modelKey(target),
            memories: copied.rowCount,
          },
        },
      ]);
      return {
        memories: copied.rowCount,
        from: fromModel,
        deadKeys: dead.rows.map((r) => Number(r.vector_key)),
      };
    });
  }

  /** After the switch: the division's entries leave the old space (search no longer reads it there). */
  async function clearOldSpace(run: RunRow, from: EmbeddingModel | undefined, target: EmbeddingModel) {
    if (!from || modelKey(from) === modelKey(target)) return;
    let after = 0;
    for (;;) {
      const res = await db.query<{ vector_key: number }>(
        `SELECT vector_key FROM memory_nodes WHERE division_id = $1 AND vector_key > $2
         ORDER BY vector_key LIMIT $3`,
        [run.division_id, after, PAGE],
      );
      if (res.rows.length === 0) return;
      const keys = res.rows.map((r) => Number(r.vector_key));
      await index.remove(from, keys);
      after = keys[keys.length - 1];
    }
  }

  return createLeasedRunner<RunRow>({
    ...deps, // the throttle, lease and retry settings, logger and metrics
    table: 'reembed_runs',
    what: 're-embedding',
    stage: 'reembed',
    async open(run, context) {
      ctx = context;
      const ref: ModelRef = { name: run.model, version: run.model_version };
      const target = deps.resolveModel(ref);
      if (!target) return { fail: `the embedding model ${modelKey(ref)} is not configured` };
      context.log = context.log.child({ model: modelKey(target) });
      let after = 0;
      let counted = false;
      return async () => {
        const embedder = await deps.embedders.get(target);
        await index.ensureSpace(target);
        if (!counted) {
          await recount(run, target); // progress from where an earlier runner stopped
          counted = true;
        }
        const page = await missingPage(run, target, after);
        if (page.length > 0) {
          await embedPage(run, target, embedder, page);
          after = page[page.length - 1].vector_key;
          return 'progress';
        }
        // One more pass from the start: texts may have changed behind the cursor.
        if (after > 0) {
          after = 0;
          return 'again';
        }
        const { done } = await recount(run, target);
        await verifySpace(run, target, done);
        const switched = await trySwitch(run, target);
        if (!switched) return 'again'; // memories arrived since the pass: another pass takes them
        context.log.info(
          { memories: switched.memories },
          're-embedding complete; the division uses the new model',
        );
        await index.remove(target, switched.deadKeys).catch(() => undefined);
        await clearOldSpace(run, switched.from, target).catch((err: unknown) => {
          context.log.warn({ err: (err as Error).message }, 'could not clear the old vector space');
        });
        return 'done';
      };
    },
  });
}

export type ReembedRunner = ReturnType<typeof createReembedRunner>;
