import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** One division's latest re-embedding, as the progress gauge reports it. */
export interface ReembedProgress {
  division: string;
  model: string;
  ratio: number;
}

/** One division's latest re-encryption (after a data-key rotation), as its gauge reports it. */
export interface ReencryptProgress {
  division: string;
  version: number;
  ratio: number;
}

/** What the keyword index gauges report. */
export interface KeywordIndexSize {
  memories: number;
  bytes: number;
  buildSeconds: number;
}

/**
 * Every metric the service exports, on a registry of its own (no global state: tests build
 * several apps in one process). Names are part of the operator contract: alert rules and
 * dashboards refer to them.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'memory_layer_' });
  const r = [registry];
  // Read from PostgreSQL at scrape time, so that every replica reports runs wherever they execute.
  let reembedSource: (() => Promise<ReembedProgress[]>) | null = null;
  let keywordIndexSource: (() => KeywordIndexSize) | null = null;
  let reencryptSource: (() => Promise<ReencryptProgress[]>) | null = null;
  let replicaLagSource: (() => number | undefined) | null = null;
  return {
    registry,
    /** Where the re-embedding progress gauge reads from (the app sets it once it has a database). */
    setReembedSource(source: () => Promise<ReembedProgress[]>) {
      reembedSource = source;
    },
    /** Where the re-encryption progress gauge reads from (the key-rotation part sets it). */
    setReencryptSource(source: () => Promise<ReencryptProgress[]>) {
      reencryptSource = source;
    },
    /** Where the keyword index gauges read from (the search part sets it once the index exists). */
    setKeywordIndexSource(source: () => KeywordIndexSize) {
      keywordIndexSource = source;
    },
    /** Where the replica lag gauge reads from (a replica following the change feed sets it). */
    setReplicaLagSource(source: () => number | undefined) {
      replicaLagSource = source;
    },
    replicaLag: new Gauge({
      name: 'memory_layer_replica_lag_seconds',
      help: "How old this replica's vector index may be: seconds since the start of the last change-feed read that brought it up to date (only on replicas following the feed)",
      registers: r,
      collect() {
        const lag = replicaLagSource?.();
        if (lag !== undefined) this.set(lag);
      },
    }),
    replicaChanges: new Counter({
      name: 'memory_layer_replica_changes_total',
      help: "Memory row versions this replica's vector index applied from the change feed",
      registers: r,
    }),
    keywordIndexMemories: new Gauge({
      name: 'memory_layer_keyword_index_memories',
      help: "Memories in this process's in-process keyword index",
      registers: r,
      collect() {
        if (keywordIndexSource) this.set(keywordIndexSource().memories);
      },
    }),
    keywordIndexBytes: new Gauge({
      name: 'memory_layer_keyword_index_bytes',
      help: "Estimated bytes held by this process's keyword index (postings, per-memory arrays, lexemes)",
      registers: r,
      collect() {
        if (keywordIndexSource) this.set(keywordIndexSource().bytes);
      },
    }),
    keywordIndexBuildSeconds: new Gauge({
      name: 'memory_layer_keyword_index_build_seconds',
      help: 'Time the last build of the keyword index from PostgreSQL took',
      registers: r,
      collect() {
        if (keywordIndexSource) this.set(keywordIndexSource().buildSeconds);
      },
    }),
    keywordIndexChanges: new Counter({
      name: 'memory_layer_keyword_index_changes_total',
      help: 'Memory row versions the keyword index read from the change feed after its build',
      registers: r,
    }),
    keywordIndexCatchUpSeconds: new Histogram({
      name: 'memory_layer_keyword_index_catch_up_duration_seconds',
      help: 'Time a search spent bringing the keyword index up to date with PostgreSQL',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
      registers: r,
    }),
    reembedProgress: new Gauge({
      name: 'memory_layer_reembed_progress_ratio',
      help: "Share of a division's live memories with a vector of the model it is being re-embedded to (latest run per division; 1 once switched)",
      labelNames: ['division', 'model'] as const,
      registers: r,
      async collect() {
        if (!reembedSource) return;
        const rows = await reembedSource().catch(() => null);
        if (!rows) return; // keep the last values rather than fail the scrape
        this.reset();
        for (const p of rows) this.set({ division: p.division, model: p.model }, p.ratio);
      },
    }),
    reembedMemories: new Counter({
      name: 'memory_layer_reembed_memories_total',
      help: 'Vectors written by re-embedding runs (computed, or reused from identical texts)',
      labelNames: ['division', 'model'] as const,
      registers: r,
    }),
    keyReencryptProgress: new Gauge({
      name: 'memory_layer_key_reencrypt_progress_ratio',
      help: "Share of a division's artifacts encrypted with the data-key version its latest re-encryption moves them to (1 once completed)",
      labelNames: ['division', 'version'] as const,
      registers: r,
      async collect() {
        if (!reencryptSource) return;
        const rows = await reencryptSource().catch(() => null);
        if (!rows) return;
        this.reset();
        for (const p of rows) this.set({ division: p.division, version: String(p.version) }, p.ratio);
      },
    }),
    keyReencryptObjects: new Counter({
      name: 'memory_layer_key_reencrypt_objects_total',
      help: "Artifact objects re-encrypted with their division's current data key after a rotation",
      labelNames: ['division'] as const,
      registers: r,
    }),
    memoriesIngested: new Counter({
      name: 'memory_layer_memories_ingested_total',
      help: 'Memories accepted for storage',
      labelNames: ['source'] as const,
      registers: r,
    }),
    memoriesIndexed: new Counter({
      name: 'memory_layer_memories_indexed_total',
      help: 'Memories whose vector reached the vector index',
      registers: r,
    }),
    embeddingsComputed: new Counter({
      name: 'memory_layer_embeddings_computed_total',
      help: 'Texts sent to the embedder (identical texts are embedded once)',
      registers: r,
    }),
    embeddingsReused: new Counter({
      name: 'memory_layer_embeddings_reused_total',
      help: 'Vectors reused from an identical text embedded earlier with the same model',
      registers: r,
    }),
    embedSeconds: new Histogram({
      name: 'memory_layer_embed_duration_seconds',
      help: 'Time to embed one batch',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    }),
    vectorWriteSeconds: new Histogram({
      name: 'memory_layer_vector_write_duration_seconds',
      help: 'Time to write one batch of vectors to the vector index',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: r,
    }),
    searchSeconds: new Histogram({
      name: 'memory_layer_search_duration_seconds',
      help: 'Search latency, by mode',
      labelNames: ['mode'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    searchExactFallbacks: new Counter({
      name: 'memory_layer_search_exact_fallbacks_total',
      help: 'Vector searches answered by an exact scan because the index returned too few filtered matches',
      registers: r,
    }),
    vectorIndexUp: new Gauge({
      name: 'memory_layer_vector_index_up',
      help: 'Whether the vector index answered its check at the last scrape (1) or not (0)',
      registers: r,
    }),
    ingestSeconds: new Histogram({
      name: 'memory_layer_ingest_latency_seconds',
      help: 'From a memory accepted (its index job queued) to searchable by meaning',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers: r,
    }),
    queueDepth: new Gauge({
      name: 'memory_layer_queue_depth',
      help: 'Jobs in the queue, by queue and status',
      labelNames: ['queue', 'status'] as const,
      registers: r,
    }),
    workerErrors: new Counter({
      name: 'memory_layer_worker_errors_total',
      help: 'Failed job attempts, by stage',
      labelNames: ['stage'] as const,
      registers: r,
    }),
    objectStoreSeconds: new Histogram({
      name: 'memory_layer_object_store_duration_seconds',
      help: 'Object store operation latency (uploads: until stored), by operation',
      labelNames: ['op'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120],
      registers: r,
    }),
    objectStoreErrors: new Counter({
      name: 'memory_layer_object_store_errors_total',
      help: 'Object store operations that failed (the store, not a refused upload), by operation',
      labelNames: ['op'] as const,
      registers: r,
    }),
    storageBytes: new Gauge({
      name: 'memory_layer_storage_bytes',
      help: 'Storage in use, read at scrape time: database (tables and indexes of the schema), vector_index, artifacts',
      labelNames: ['part'] as const,
      registers: r,
    }),
    httpSeconds: new Histogram({
      name: 'memory_layer_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
