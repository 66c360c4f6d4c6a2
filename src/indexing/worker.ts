import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Database } from '../adapters/db/port.js';
import { type Embedder, type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import type { VectorEntry, VectorIndex } from '../adapters/vector/port.js';
import { normaliseText } from '../memories/text.js';
import { bytesToVector, vectorToBytes } from '../memories/vector-codec.js';
import { type ModelResolver, refOf } from '../models/active-model.js';
import { liveHolders } from '../platform/lease.js';
import type { Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import { createPollLoop } from '../platform/poll-loop.js';
import { noTracing, type Tracing } from '../platform/tracing.js';
import {
  type ContextOptions,
  indexVectorOf,
  neighbourVectorsOf,
  queueContextUpdates,
} from './contextual-vectors.js';
import { claim, complete, enqueue, fail, INDEX_QUEUE, type Job, renewLeases } from './queue.js';
import { reusableVectors, reuseKey, stillToEmbed } from './vector-reuse.js';

/** Memories whose vectors one statement writes: on PGlite ~15 ms, the longest a search then waits for it. */
const VECTOR_WRITE_SLICE = 32;

export interface IndexingWorkerDeps {
  db: Database;
  /** The embedder of each model (the registry): a memory is embedded with its division's model. */
  embedders: { get(model: EmbeddingModel): Promise<Embedder> };
  resolveModel: ModelResolver;
  index: VectorIndex;
  logger: Logger;
  metrics: Metrics;
  /** Jobs claimed per batch. */
  batchSize: number;
  /** Texts per call to the embedder (default: all of a batch's at once). */
  embedBatchSize?: number;
  /** Batches worked on at once by this worker (default 1). */
  lanes?: number;
  pollMs: number;
  leaseMs: number;
  backoffMs: number;
  /** Spans per claimed batch and per job (default: none). */
  tracing?: Tracing;
  /** How index vectors blend session neighbours (src/indexing/contextual-vectors.ts). */
  context?: ContextOptions;
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
  /** The division's active model (null: the configured default). */
  active_model: string | null;
  active_model_version: string | null;
}

/**
 * `context`: only a session neighbour of the memory changed; its index vector is blended again
 * (if it has a vector by now) and nothing more is queued.
 */
type IndexJob = Job<{ nodeId: string; context?: boolean }>;

/**
 * Makes pending memories searchable: claims index jobs in batches, embeds the texts that have no
 * vector for their division's active model (each distinct text once, reusing vectors of identical
 * texts), writes the vectors to PostgreSQL, then to the vector index (blended with their session
 * neighbours', see contextual-vectors.ts), then marks the memories indexed and queues their
 * neighbours' re-blending. Every step is idempotent, so a worker killed at any point leaves work
 * the next claim redoes.
 */
export function createIndexingWorker(deps: IndexingWorkerDeps) {
  const { db, index, logger, metrics } = deps;
  const workerId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  // Alive from creation (drain() works without start()) until stop().
  liveHolders.add(workerId);
  /** Emits `indexed` with the ids of memories that became searchable. */
  const events = new EventEmitter();
  events.setMaxListeners(0);
  // The embedder's health as this worker last saw it (for /readyz).
  let embedError: { at: Date; message: string } | null = null;
  let embedOkAt: Date | null = null;

  async function markFailed(jobs: IndexJob[], error: unknown, stage: string) {
    const message = error instanceof Error ? error.message : String(error);
    metrics.workerErrors.inc({ stage }, jobs.length);
    logger.warn(
      { stage, jobs: jobs.map((j) => j.id), memoryIds: jobs.map((j) => j.payload.nodeId), err: message },
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

  const hasVectorOf = (n: NodeRow, model: EmbeddingModel) =>
    n.embedding !== null && n.embedding_model === model.name && n.embedding_model_version === model.version;

  /** Fills in vectors of the embedder's model for nodes lacking one; returns the nodes that now have one. */
  async function embedMissing(
    embedder: Embedder,
    nodes: NodeRow[],
    jobsByNode: Map<string, IndexJob[]>,
  ): Promise<NodeRow[]> {
    const model = embedder.model;
    const missing = nodes.filter((n) => !hasVectorOf(n, model));
    if (missing.length === 0) return nodes;
    const items = missing.map((n) => ({ node: n, divisionId: n.division_id, checksum: n.checksum }));
    const vectors = await reusableVectors(db, model, items);
    const keyOf = (n: NodeRow) => reuseKey(n.division_id, n.checksum);
    metrics.embeddingsReused.inc(missing.filter((n) => vectors.has(keyOf(n))).length);

    const toEmbed = stillToEmbed(items, vectors).map((i) => i.node);
    let failed = new Set<string>();
    if (toEmbed.length > 0) {
      const stop = metrics.embedSeconds.startTimer();
      try {
        const step = deps.embedBatchSize ?? toEmbed.length;
        for (let from = 0; from < toEmbed.length; from += step) {
          const part = toEmbed.slice(from, from + step);
          const out = await embedder.embed(part.map((n) => normaliseText(n.text)));
          for (const [i, n] of part.entries()) vectors.set(keyOf(n), vectorToBytes(out[i]));
          metrics.embeddingsComputed.inc(part.length);
          embedOkAt = new Date();
        }
      } catch (err) {
        embedError = { at: new Date(), message: err instanceof Error ? err.message : String(err) };
        const lost = missing.filter((n) => !vectors.has(keyOf(n)));
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
      // In slices, each its own statement: no transaction is needed (each row's guard stands alone,
      // and a vector written before a crash is found by the retry instead of embedded again), and
      // with PGlite a search waits for one slice at most. A statement per memory in one transaction
      // had held searches for 150–190 ms per batch of 256 during an ingest; one statement for the
      // batch still 100–140 ms (each row's new version is indexed again).
      for (let from = 0; from < filled.length; from += VECTOR_WRITE_SLICE) {
        const slice = filled.slice(from, from + VECTOR_WRITE_SLICE);
        const written = await writeVectors(slice, (n) => vectors.get(keyOf(n)) as Buffer, model);
        for (const n of slice) if (!written.has(n.id)) superseded.add(n.id);
      }
      for (const n of filled) {
        n.embedding = vectors.get(keyOf(n)) as Buffer;
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

  /**
   * Stores vectors in one statement. Guarded by checksum: if the text changed meanwhile, a newer
   * job owns the memory and this vector must not reach the index. Guarded by the vector we saw
   * too: if a re-embedding switched the division meanwhile, the memory holds its new model's
   * vector. `id = ANY` with array_position keeps the primary-key lookup (see the status update
   * below). Returns the ids written.
   */
  async function writeVectors(nodes: NodeRow[], vectorOf: (n: NodeRow) => Buffer, model: EmbeddingModel) {
    const bytes = nodes.map(vectorOf);
    const starts: number[] = [];
    let at = 1; // substring() counts from 1
    for (const b of bytes) {
      starts.push(at);
      at += b.length;
    }
    const res = await db.query<{ id: string }>(
      `UPDATE memory_nodes n SET
         embedding = substring($3::bytea FROM ($4::int[])[array_position($1::uuid[], n.id)]
                                         FOR ($5::int[])[array_position($1::uuid[], n.id)]),
         embedding_dim = $6, embedding_model = $7, embedding_model_version = $8, embedded_at = now()
       WHERE n.id = ANY($1::uuid[])
         AND n.checksum = ($2::text[])[array_position($1::uuid[], n.id)]
         AND n.deleted_at IS NULL
         AND n.embedding_model IS NOT DISTINCT FROM ($9::text[])[array_position($1::uuid[], n.id)]
         AND n.embedding_model_version IS NOT DISTINCT FROM ($10::text[])[array_position($1::uuid[], n.id)]
       RETURNING n.id`,
      [
        nodes.map((n) => n.id),
        nodes.map((n) => n.checksum),
        Buffer.concat(bytes),
        starts,
        bytes.map((b) => b.length),
        model.dimensions,
        model.name,
        model.version,
        nodes.map((n) => n.embedding_model),
        nodes.map((n) => n.embedding_model_version),
      ],
    );
    return new Set(res.rows.map((r) => r.id));
  }

  /** Processes one batch; returns how many jobs it claimed. */
  async function runOnce(): Promise<number> {
    const jobs = await claim<IndexJob['payload']>(
      db,
      INDEX_QUEUE,
      deps.batchSize,
      workerId,
      deps.leaseMs,
      db.singleProcess ? [...liveHolders] : undefined,
    );
    if (jobs.length === 0) return 0;
    // Heartbeat: the lease is renewed three times per lease period while the batch is worked on,
    // so a short lease (a dead worker's jobs are claimed again within it) never lapses under a
    // live but slow worker (a cold model, a large batch).
    const ids = jobs.map((j) => j.id);
    const heartbeat = setInterval(
      () => {
        renewLeases(db, ids, workerId, deps.leaseMs).catch((err: unknown) =>
          logger.warn({ err: err instanceof Error ? err.message : err }, 'renewing job leases failed'),
        );
      },
      Math.max(100, Math.floor(deps.leaseMs / 3)),
    );
    heartbeat.unref?.();
    try {
      return await (deps.tracing ?? noTracing).traceBatch(INDEX_QUEUE, jobs, () => indexBatch(jobs));
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function indexBatch(jobs: IndexJob[]): Promise<number> {
    // A memory changed twice before the worker ran has two jobs: one embedding serves both.
    const jobsByNode = new Map<string, IndexJob[]>();
    for (const j of jobs) jobsByNode.set(j.payload.nodeId, [...(jobsByNode.get(j.payload.nodeId) ?? []), j]);
    const res = await db.query<NodeRow>(
      `SELECT n.id, n.vector_key, n.division_id, n.text, n.checksum, n.embedding, n.embedding_model,
         n.embedding_model_version, n.deleted_at, d.embedding_model AS active_model,
         d.embedding_model_version AS active_model_version
       FROM memory_nodes n JOIN divisions d ON d.id = n.division_id WHERE n.id = ANY($1::uuid[])`,
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

    // Each division is indexed with its own active model: one pass per model in the batch.
    const byModel = new Map<string, NodeRow[]>();
    for (const n of live) {
      const key = n.active_model === null ? '' : `${n.active_model}@${n.active_model_version}`;
      byModel.set(key, [...(byModel.get(key) ?? []), n]);
    }
    const indexed: string[] = [];
    for (const nodes of byModel.values()) {
      indexed.push(...(await indexWithModel(nodes, jobsByNode, jobs[0].maxAttempts)));
    }
    metrics.memoriesIndexed.inc(indexed.length);
    // Accepted (the oldest job of the memory was queued with its write) to searchable.
    const now = Date.now();
    for (const id of indexed) {
      const queued = Math.min(...(jobsByNode.get(id) ?? []).map((j) => j.createdAt.getTime()));
      if (Number.isFinite(queued)) metrics.ingestSeconds.observe(Math.max(0, now - queued) / 1000);
    }
    events.emit('indexed', indexed);
    return jobs.length;
  }

  /** Embeds, writes and indexes nodes of divisions that share one active model; returns the ids indexed. */
  async function indexWithModel(
    all: NodeRow[],
    jobsByNode: Map<string, IndexJob[]>,
    maxAttempts: number,
  ): Promise<string[]> {
    const jobsOf = (list: NodeRow[]) => list.flatMap((n) => jobsByNode.get(n.id) ?? []);
    const ref = refOf(all[0].active_model, all[0].active_model_version);
    const model = deps.resolveModel(ref);
    // A neighbour's change means nothing to a memory without a vector yet: its own job indexes it.
    const contextOnly = new Set(
      all.filter((n) => jobsOf([n]).every((j) => j.payload.context === true)).map((n) => n.id),
    );
    const idle = all.filter((n) => contextOnly.has(n.id) && (!model || !hasVectorOf(n, model)));
    await complete(
      db,
      jobsOf(idle).map((j) => j.id),
    );
    const nodes = all.filter((n) => !idle.includes(n));
    if (nodes.length === 0) return [];
    let embedder: Embedder;
    try {
      if (!model) throw new Error(`the embedding model ${ref ? modelKey(ref) : '?'} is not configured`);
      embedder = await deps.embedders.get(model);
    } catch (err) {
      embedError = { at: new Date(), message: err instanceof Error ? err.message : String(err) };
      await markFailed(jobsOf(nodes), err, 'embed');
      return [];
    }
    const ready = await embedMissing(embedder, nodes, jobsByNode);
    if (ready.length === 0) return [];
    // Read after this batch's vectors were written: neighbours within the batch blend each other.
    const neighbours = await neighbourVectorsOf(
      db,
      model,
      ready.map((n) => n.id),
    );
    const entries: VectorEntry[] = ready.map((n) => ({
      key: Number(n.vector_key),
      divisionId: n.division_id,
      vector: indexVectorOf(bytesToVector(n.embedding as Uint8Array), neighbours.get(n.id), deps.context),
    }));
    const readyJobs = jobsOf(ready);
    try {
      const stop = metrics.vectorWriteSeconds.startTimer();
      await index.upsert(model, entries);
      stop();
    } catch (err) {
      await markFailed(readyJobs, err, 'vector-index');
      return [];
    }
    return db.transaction(async (tx) => {
      const res = await tx.query<{ id: string }>(
        // `id = ANY` keeps the primary-key lookup whatever the statistics say: a join with
        // unnest() was planned as a scan of the whole table while statistics lagged a bulk
        // import (0.5 s per batch at 6k memories on PGlite).
        `UPDATE memory_nodes n SET status = 'indexed'
         WHERE n.id = ANY($1::uuid[])
           AND n.checksum = ($2::text[])[array_position($1::uuid[], n.id)]
           AND n.embedding IS NOT NULL
           AND n.embedding_model = $3 AND n.embedding_model_version = $4
         RETURNING n.id`,
        [ready.map((n) => n.id), ready.map((n) => n.checksum), model.name, model.version],
      );
      const done = new Set(res.rows.map((r) => r.id));
      // The text (or the division's model) changed after our vector was written: our upsert may
      // have replaced the newer vector in the index, so index the memory once more from what
      // PostgreSQL now holds.
      const raced = ready.filter((n) => !done.has(n.id) && n.deleted_at === null);
      await enqueue(
        tx,
        INDEX_QUEUE,
        raced.map((n) => ({ nodeId: n.id })),
        maxAttempts,
      );
      // Memories that arrived or changed: their neighbours' blends follow. Neighbours in this
      // batch were blended with them already.
      await queueContextUpdates(
        tx,
        [...done].filter((id) => !contextOnly.has(id)),
        maxAttempts,
        new Set(ready.map((n) => n.id)),
      );
      await complete(
        tx,
        readyJobs.map((j) => j.id),
      );
      // Re-blends of memories already searchable are not news (metrics, `indexed` events).
      return [...done].filter((id) => !contextOnly.has(id));
    });
  }

  // Lanes: each claims and works on its own batch, so that one embeds while another writes to
  // PostgreSQL and the index — with one lane the model idled during every batch's writes. The
  // queue's SKIP LOCKED claims keep their batches apart, as between worker processes.
  /** Batches the lanes are working on now (drain() waits for them). */
  const inFlight = new Set<Promise<number>>();
  const laneRound = () => {
    const round = runOnce();
    inFlight.add(round);
    return round.finally(() => inFlight.delete(round));
  };
  const loops = Array.from({ length: Math.max(1, deps.lanes ?? 1) }, () =>
    createPollLoop({
      pollMs: deps.pollMs,
      once: laneRound,
      onError(err) {
        metrics.workerErrors.inc({ stage: 'batch' });
        logger.error({ err }, 'indexing batch failed');
      },
    }),
  );

  return {
    events,
    runOnce,
    /** The embedder's last failure and last success seen by this worker (null: none yet). */
    status() {
      return { embedder: { lastError: embedError, lastSuccessAt: embedOkAt } };
    },
    /** Wakes an idle worker at once (after a write in this process). */
    notify() {
      for (const loop of loops) loop.notify();
    },
    start() {
      for (const loop of loops) loop.start();
    },
    async stop() {
      await Promise.all(loops.map((loop) => loop.stop()));
      liveHolders.delete(workerId);
    },
    /**
     * Runs batches until the queue holds nothing due and no lane of this worker holds a batch
     * (tests, CLI): a running lane may have claimed the jobs this call would have found.
     */
    async drain(): Promise<void> {
      for (;;) {
        if ((await runOnce()) > 0) continue;
        if (inFlight.size === 0) return;
        await Promise.allSettled([...inFlight]);
      }
    },
  };
}

export type IndexingWorker = ReturnType<typeof createIndexingWorker>;
