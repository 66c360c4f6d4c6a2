import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Database } from '../adapters/db/port.js';
import type { Embedder } from '../adapters/embedders/port.js';
import { bytesToVector, vectorToBytes } from '../adapters/vector/codec.js';
import type { VectorEntry, VectorIndex } from '../adapters/vector/port.js';
import type { Logger } from '../internal/logger.js';
import type { Metrics } from '../internal/metrics.js';
import { claim, complete, enqueue, fail, type Job } from '../internal/queue/jobs.js';
import { INDEX_QUEUE } from './memories.js';
import { normaliseText } from './text.js';

export interface IndexingWorkerDeps {
  db: Database;
  embedder: Embedder;
  index: VectorIndex;
  logger: Logger;
  metrics: Metrics;
  batchSize: number;
  pollMs: number;
  leaseMs: number;
  backoffMs: number;
}

interface NodeRow {
  id: string;
  vector_key: number;
  division_id: string;
  text: string;
  checksum: string;
  embedding: Uint8Array | null;
  embedding_model: string | null;
  embedding_model_version: string | null;
  deleted_at: Date | null;
}

type IndexJob = Job<{ nodeId: string }>;

/**
 * Makes pending memories searchable: claims index jobs in batches, embeds the texts that have no
 * vector for the active model (each distinct text once, reusing vectors of identical texts),
 * writes the vectors to PostgreSQL, then to the vector index, then marks the memories indexed.
 * Every step is idempotent, so a worker killed at any point leaves work the next claim redoes.
 */
export function createIndexingWorker(deps: IndexingWorkerDeps) {
  const { db, embedder, index, logger, metrics } = deps;
  const model = embedder.model;
  const workerId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  /** Emits `indexed` with the ids of memories that became searchable. */
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let running = false;
  let wake: (() => void) | null = null;
  let loop: Promise<void> | null = null;
  // The embedder's health as this worker last saw it (for /readyz).
  let embedError: { at: Date; message: string } | null = null;
  let embedOkAt: Date | null = null;

  async function markFailed(jobs: IndexJob[], error: unknown, stage: string) {
    const message = error instanceof Error ? error.message : String(error);
    metrics.workerErrors.inc({ stage }, jobs.length);
    logger.warn(
      { stage, jobs: jobs.map((j) => j.id), err: message },
      'index jobs failed; will retry or dead-letter',
    );
    await fail(
      db,
      jobs.map((j) => j.id),
      `${stage}: ${message}`,
      deps.backoffMs,
    );
    // Memories whose job just died are `failed` until the dead job is retried.
    await db.query(
      `UPDATE memory_nodes SET status = 'failed'
       WHERE id IN (SELECT (payload->>'nodeId')::uuid FROM jobs WHERE id = ANY($1::bigint[]) AND status = 'dead')`,
      [jobs.map((j) => j.id)],
    );
  }

  const hasActiveVector = (n: NodeRow) =>
    n.embedding !== null && n.embedding_model === model.name && n.embedding_model_version === model.version;

  /** Fills in vectors for nodes lacking one; returns the nodes that now have one. */
  async function embedMissing(nodes: NodeRow[], jobsByNode: Map<string, IndexJob[]>): Promise<NodeRow[]> {
    const missing = nodes.filter((n) => !hasActiveVector(n));
    if (missing.length === 0) return nodes;
    const checksums = [...new Set(missing.map((n) => n.checksum))];
    const reused = await db.query<{ checksum: string; embedding: Uint8Array }>(
      `SELECT DISTINCT ON (checksum) checksum, embedding FROM memory_nodes
       WHERE checksum = ANY($1) AND embedding_model = $2 AND embedding_model_version = $3 AND embedding IS NOT NULL`,
      [checksums, model.name, model.version],
    );
    const vectors = new Map<string, Buffer>(reused.rows.map((r) => [r.checksum, Buffer.from(r.embedding)]));
    metrics.embeddingsReused.inc(missing.filter((n) => vectors.has(n.checksum)).length);

    const toEmbed = checksums
      .filter((c) => !vectors.has(c))
      .map((c) => missing.find((n) => n.checksum === c) as NodeRow);
    let failed = new Set<string>();
    if (toEmbed.length > 0) {
      const stop = metrics.embedSeconds.startTimer();
      try {
        const out = await embedder.embed(toEmbed.map((n) => normaliseText(n.text)));
        for (const [i, n] of toEmbed.entries()) vectors.set(n.checksum, vectorToBytes(out[i]));
        metrics.embeddingsComputed.inc(toEmbed.length);
        embedOkAt = new Date();
      } catch (err) {
        embedError = { at: new Date(), message: err instanceof Error ? err.message : String(err) };
        const lost = missing.filter((n) => !vectors.has(n.checksum));
        failed = new Set(lost.map((n) => n.id));
        await markFailed(
          lost.flatMap((n) => jobsByNode.get(n.id) ?? []),
          err,
          'embed',
        );
      } finally {
        stop();
      }
    }

    const filled = missing.filter((n) => !failed.has(n.id));
    const superseded = new Set<string>();
    if (filled.length > 0) {
      await db.transaction(async (tx) => {
        for (const n of filled) {
          // Guarded by checksum: if the text changed meanwhile, a newer job owns this memory and
          // this vector must not reach the index.
          const res = await tx.query(
            `UPDATE memory_nodes SET embedding = $3, embedding_dim = $4, embedding_model = $5,
               embedding_model_version = $6, embedded_at = now()
             WHERE id = $1 AND checksum = $2 AND deleted_at IS NULL`,
            [n.id, n.checksum, vectors.get(n.checksum), model.dimensions, model.name, model.version],
          );
          if (res.rowCount === 0) superseded.add(n.id);
        }
      });
      for (const n of filled) {
        n.embedding = vectors.get(n.checksum) as Buffer;
        n.embedding_model = model.name;
        n.embedding_model_version = model.version;
      }
    }
    if (superseded.size > 0) {
      await complete(
        db,
        [...superseded].flatMap((id) => (jobsByNode.get(id) ?? []).map((j) => j.id)),
      );
    }
    return nodes.filter((n) => !failed.has(n.id) && !superseded.has(n.id));
  }

  /** Processes one batch; returns how many jobs it claimed. */
  async function runOnce(): Promise<number> {
    const jobs = await claim<{ nodeId: string }>(db, INDEX_QUEUE, deps.batchSize, workerId, deps.leaseMs);
    if (jobs.length === 0) return 0;
    // A memory changed twice before the worker ran has two jobs: one embedding serves both.
    const jobsByNode = new Map<string, IndexJob[]>();
    for (const j of jobs) jobsByNode.set(j.payload.nodeId, [...(jobsByNode.get(j.payload.nodeId) ?? []), j]);
    const res = await db.query<NodeRow>(
      `SELECT id, vector_key, division_id, text, checksum, embedding, embedding_model, embedding_model_version, deleted_at
       FROM memory_nodes WHERE id = ANY($1::uuid[])`,
      [[...jobsByNode.keys()]],
    );
    const live = res.rows.filter((n) => n.deleted_at === null);
    // A job whose memory is gone has nothing left to do.
    const liveIds = new Set(live.map((n) => n.id));
    const gone = jobs.filter((j) => !liveIds.has(j.payload.nodeId));
    await complete(
      db,
      gone.map((j) => j.id),
    );

    const ready = await embedMissing(live, jobsByNode);
    if (ready.length === 0) return jobs.length;
    const entries: VectorEntry[] = ready.map((n) => ({
      key: Number(n.vector_key),
      divisionId: n.division_id,
      vector: bytesToVector(n.embedding as Uint8Array),
    }));
    const readyJobs = ready.flatMap((n) => jobsByNode.get(n.id) ?? []);
    try {
      const stop = metrics.vectorWriteSeconds.startTimer();
      await index.upsert(model, entries);
      stop();
    } catch (err) {
      await markFailed(readyJobs, err, 'vector-index');
      return jobs.length;
    }
    const indexed = await db.transaction(async (tx) => {
      const res = await tx.query<{ id: string }>(
        `UPDATE memory_nodes n SET status = 'indexed'
         FROM unnest($1::uuid[], $2::text[]) AS r(id, checksum)
         WHERE n.id = r.id AND n.checksum = r.checksum AND n.embedding IS NOT NULL
           AND n.embedding_model = $3 AND n.embedding_model_version = $4
         RETURNING n.id`,
        [ready.map((n) => n.id), ready.map((n) => n.checksum), model.name, model.version],
      );
      const done = new Set(res.rows.map((r) => r.id));
      // The text changed after our vector was written: our upsert may have replaced the newer
      // vector in the index, so index the memory once more from what PostgreSQL now holds.
      const raced = ready.filter((n) => !done.has(n.id) && n.deleted_at === null);
      await enqueue(
        tx,
        INDEX_QUEUE,
        raced.map((n) => ({ nodeId: n.id })),
        jobs[0].maxAttempts,
      );
      await complete(
        tx,
        readyJobs.map((j) => j.id),
      );
      return [...done];
    });
    metrics.memoriesIndexed.inc(indexed.length);
    events.emit('indexed', indexed);
    return jobs.length;
  }

  async function run() {
    while (running) {
      let claimed = 0;
      try {
        claimed = await runOnce();
      } catch (err) {
        metrics.workerErrors.inc({ stage: 'batch' });
        logger.error({ err }, 'indexing batch failed');
      }
      if (claimed === 0 && running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, deps.pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    }
  }

  return {
    events,
    runOnce,
    /** The embedder's last failure and last success seen by this worker (null: none yet). */
    status() {
      return { embedder: { lastError: embedError, lastSuccessAt: embedOkAt } };
    },
    /** Wakes an idle worker at once (after a write in this process). */
    notify() {
      wake?.();
    },
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
      loop = null;
    },
    /** Runs batches until the queue holds nothing due (tests, CLI). */
    async drain(): Promise<void> {
      while ((await runOnce()) > 0) {}
    },
  };
}

export type IndexingWorker = ReturnType<typeof createIndexingWorker>;
