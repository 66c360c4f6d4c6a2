import { type Database, openDatabase } from './adapters/db/index.js';
import { migrate } from './adapters/db/migrate.js';
import { createStatisticsKeeper } from './adapters/db/statistics.js';
import { createEmbedder } from './adapters/embedders/index.js';
import { type Embedder, modelKey } from './adapters/embedders/port.js';
import { createEmbedderRegistry, loadModelSpecs, type ModelSpec } from './adapters/embedders/registry.js';
import { createKeyStore } from './adapters/keys/index.js';
import { createObjectStore, instrumentObjectStore } from './adapters/objects/index.js';
import type { ObjectStore } from './adapters/objects/port.js';
import { createVectorIndex, followerPositionFile } from './adapters/vector/index.js';
import { createWriteOnlyIndex } from './adapters/vector/write-only.js';
import { createArtifactService } from './artifacts/artifacts.js';
import { createAccessAudit } from './audit/access-audit.js';
import { type ArchiveOptions, archiveAudit } from './audit/archive/writer.js';
import { appendAudit } from './audit/audit-log.js';
import { createAuditService } from './audit/audit-service.js';
import { createNatsSink } from './audit/nats-sink.js';
import { createAuditPublisher, createNoopSink } from './audit/publisher.js';
import { createAuditSigner } from './audit/signer.js';
import type { Config } from './config.js';
import { createDivisionService } from './divisions/divisions.js';
import { createErasureService } from './divisions/erasure.js';
import { createDocumentService } from './documents/documents.js';
import { createSplitWorker } from './documents/split-worker.js';
import { createEncryption } from './encryption/encryption.js';
import { createKeyRotationService } from './encryption/key-rotation.js';
import { createReencryptRunner } from './encryption/reencrypt-runner.js';
import { createLegalHoldService } from './governance/legal-holds.js';
import { createRetentionSweeper } from './governance/retention.js';
import { createBackpressure } from './indexing/backpressure.js';
import type { ContextOptions } from './indexing/contextual-vectors.js';
import { createJobsAdmin } from './indexing/dead-letters.js';
import { modelsInUse, reconcileIndex } from './indexing/index-maintenance.js';
import { INDEX_QUEUE } from './indexing/queue.js';
import { createVectorFollower } from './indexing/vector-follower.js';
import { createIndexingWorker } from './indexing/worker.js';
import { createImporter } from './memories/import.js';
import { createMemoryService } from './memories/memories.js';
import { resolverOf } from './models/active-model.js';
import { createReembedService } from './models/reembed.js';
import { createReembedRunner } from './models/reembed-runner.js';
import { createLogger, type Logger } from './platform/logger.js';
import { createMetrics } from './platform/metrics.js';
import { createTracing } from './platform/tracing.js';
import { createKeywordIndex } from './search/keyword-index/index.js';
import { createSearchService } from './search/search.js';

export interface PartsOptions {
  /**
   * This process runs the indexing worker (started by `App.start()`): its own writes and
   * re-embedding requests wake it at once, and it publishes audit events. Default: false.
   */
  worker?: boolean;
  logger?: Logger;
  /** Tests and benchmarks may bring their own embedder (e.g. one shared by several apps); not closed. */
  embedder?: Embedder;
  /** An already open database (tests: a schema of their own); not closed. */
  database?: Database;
  /** Instead of the configured object store (`backup --store-dir`). */
  objectStore?: ObjectStore;
  /** Skip the start-up check that the vector index matches PostgreSQL. */
  skipReconcile?: boolean;
  /**
   * A worker-only process (`memory-layer worker`). With VECTOR_INDEX_FOLLOW and an in-process
   * index it keeps none: the API replicas follow the change feed instead.
   */
  workerOnly?: boolean;
  /**
   * This process's vector index is the one its searches read (a server built by createApp), so an
   * import may put vectors in it directly. A CLI command's in-process usearch index is not: no
   * server would see what it holds, so its imports leave the indexing to the workers' jobs.
   */
  servesIndex?: boolean;
}

const DAY_MS = 86_400_000;
const STATISTICS_INTERVAL_MS = 15_000;

/**
 * The object graph, each part defined once: built on first use from the parts it needs, never
 * twice, and closed by `close()` in the reverse order of building. The server asks for every part
 * (`createApp`); a CLI command only for those it uses, so `migrate` opens nothing but the database
 * and `backup` loads no embedding model. Building opens connections and reads files; it starts no
 * timer and no loop (that is `App.start()`).
 */
export function createParts(config: Config, opts: PartsOptions = {}) {
  const logger = opts.logger ?? createLogger(config.LOG_LEVEL ?? 'info');
  const metrics = createMetrics();
  /** How index vectors blend session neighbours: the same in the worker, rebuilds, search and backups. */
  const context: ContextOptions = Object.freeze({ contextWeight: config.VECTOR_CONTEXT_WEIGHT });
  const closers: (() => Promise<void>)[] = [];
  const part = <T>(build: () => Promise<T>, close?: (built: T) => Promise<void>) => {
    let built: Promise<T> | undefined;
    return (): Promise<T> => {
      built ??= build().then((value) => {
        if (close) closers.push(() => close(value));
        return value;
      });
      return built;
    };
  };
  // A write or a re-embedding request in this process wakes its own worker at once; without one
  // here, workers elsewhere find the work by polling.
  let wakeWorker = () => {};
  let wakeRunner = () => {};
  let wakeSplitter = () => {};
  let wakeReencrypt = () => {};

  let specs: ModelSpec[] | undefined;
  /** EMBEDDING_MODELS_FILE, read and checked once (a ConfigError names what is wrong). */
  const modelSpecs = (): ModelSpec[] => {
    specs ??= config.EMBEDDING_MODELS_FILE ? loadModelSpecs(config.EMBEDDING_MODELS_FILE, config.env) : [];
    return specs;
  };

  // Off unless OTEL_* variables ask for it; then the database, embedders and index are wrapped so
  // that traced requests and worker batches get a span per query, embedding call and index write.
  // Built before every part it wraps, so closed after them: their last spans are exported.
  const tracing = part(
    () => createTracing(config, logger.child({ component: 'tracing' })),
    (t) => t.shutdown(),
  );
  const db = part(
    async () =>
      (await tracing()).database(
        opts.database ??
          (await openDatabase({
            databaseUrl: config.DATABASE_URL,
            dataDir: config.DATA_DIR,
            schema: config.DATABASE_SCHEMA,
            tls: config,
          })),
      ),
    async (d) => {
      if (!opts.database) await d.close();
    },
  );
  /** Applies pending migrations (once); the names applied. */
  const migrated = part(async () => {
    const applied = await migrate(await db());
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    return applied;
  });
  const statistics = part(
    async () => {
      await migrated();
      const keeper = createStatisticsKeeper({ db: await db(), logger, intervalMs: STATISTICS_INTERVAL_MS });
      await keeper.refresh();
      return keeper;
    },
    (k) => k.stop(),
  );

  const embedder = part(
    async () => (await tracing()).embedder(opts.embedder ?? (await createEmbedder(config))),
    async (e) => {
      if (!opts.embedder) await e.close();
    },
  );
  // Every model a division may use: the configured one (the default), the built-in one, and
  // those of EMBEDDING_MODELS_FILE (re-embedding targets); each created on first use.
  const embedders = part(
    async () => {
      const t = await tracing();
      return createEmbedderRegistry({
        default: await embedder(),
        specs: modelSpecs(),
        env: config.env,
        timeoutMs: config.EMBEDDER_TIMEOUT_MS,
        batchSize: config.EMBEDDER_BATCH_SIZE,
        wrap: (e) => t.embedder(e),
      });
    },
    (r) => r.close(),
  );
  const resolveModel = part(async () => resolverOf(await embedders()));
  /** Set when this process keeps no vector index (a worker-only process of a following deployment). */
  let writeOnlyIndex = false;
  const index = part(
    async () => {
      const created = await createVectorIndex(config.VECTOR_INDEX, {
        db: await db(),
        dataDir: config.DATA_DIR,
        usearchQuantization: config.USEARCH_QUANTIZATION,
      });
      if (config.VECTOR_INDEX_FOLLOW && opts.workerOnly && created.name === 'usearch') {
        writeOnlyIndex = true;
        await created.close();
        return (await tracing()).vectorIndex(createWriteOnlyIndex(created.name));
      }
      return (await tracing()).vectorIndex(created);
    },
    async (i) => {
      await i.flush();
      await i.close();
    },
  );
  /**
   * A replica's in-process index following the change feed (VECTOR_INDEX_FOLLOW with usearch);
   * undefined where the index is shared (pgvector), written only by this process, or kept nowhere.
   */
  const follower = part(
    async () => {
      const i = await index();
      if (!config.VECTOR_INDEX_FOLLOW || i.name !== 'usearch' || opts.workerOnly) return undefined;
      return createVectorFollower({
        db: await db(),
        index: i,
        resolveModel: await resolveModel(),
        context,
        positionFile: followerPositionFile(config.DATA_DIR, config.USEARCH_QUANTIZATION),
        pollMs: config.VECTOR_FOLLOW_POLL_MS,
        logger: logger.child({ component: 'vector-follower' }),
        onCatchUp: (rows) => metrics.replicaChanges.inc(rows),
      });
    },
    async (f) => {
      await f?.stop();
    },
  );

  /**
   * What a process needs before it reads or writes memories: the schema migrated, planner
   * statistics fresh, and each vector space in use (the configured model's, the models divisions
   * use, those re-embeddings are building) present and matching PostgreSQL, else rebuilt from it.
   */
  const ready = part(async () => {
    await statistics();
    const [d, resolve] = [await db(), await resolveModel()];
    const i = await index();
    // A following replica resumes from the position its files hold, or rebuilds.
    const f = await follower();
    if (f) {
      await f.open();
      metrics.setReplicaLagSource(() => f.lagSeconds());
      return;
    }
    if (writeOnlyIndex) return; // nothing kept here to check
    for (const inUse of await modelsInUse(d, resolve)) {
      await i.ensureSpace(inUse);
      const rebuilt = opts.skipReconcile ? undefined : await reconcileIndex(d, i, inUse, context);
      if (rebuilt)
        logger.warn(
          { index: i.name, model: modelKey(inUse), why: rebuilt },
          'vector index did not match PostgreSQL; rebuilt it',
        );
    }
  });

  const worker = part(
    async () => {
      const w = createIndexingWorker({
        db: await db(),
        embedders: await embedders(),
        resolveModel: await resolveModel(),
        index: await index(),
        logger: logger.child({ component: 'indexing-worker' }),
        metrics,
        batchSize: config.INDEX_BATCH_SIZE,
        lanes: config.INDEX_LANES,
        embedBatchSize: config.EMBEDDER_BATCH_SIZE,
        pollMs: config.WORKER_POLL_MS,
        leaseMs: config.JOB_LEASE_MS,
        backoffMs: config.JOB_BACKOFF_MS,
        tracing: await tracing(),
        context,
      });
      if (opts.worker) wakeWorker = () => w.notify();
      return w;
    },
    (w) => w.stop(),
  );
  const backpressure = part(async () =>
    createBackpressure({
      db: await db(),
      queue: INDEX_QUEUE,
      maxBacklog: config.MAX_QUEUE_BACKLOG,
      retryAfterSeconds: config.QUEUE_RETRY_AFTER_SECONDS,
    }),
  );
  /** The audit of reads (ACCESS_AUDIT); closing it chains what is staged, before the database closes. */
  const readAudit = part(
    async () => {
      await migrated();
      return createAccessAudit({
        db: await db(),
        appendAudit,
        mode: config.ACCESS_AUDIT,
        batch: config.ACCESS_AUDIT_BATCH,
        flushMs: config.ACCESS_AUDIT_FLUSH_MS,
        logger: logger.child({ component: 'access-audit' }),
      });
    },
    (a) => a.stop(),
  );
  const memories = part(async () =>
    createMemoryService({
      db: await db(),
      index: await index(),
      resolveModel: await resolveModel(),
      appendAudit,
      maxTextBytes: config.MAX_TEXT_BYTES,
      maxJobAttempts: config.JOB_MAX_ATTEMPTS,
      defaultTtlDays: config.DEFAULT_TTL_DAYS,
      onQueued: () => wakeWorker(),
      backpressure: await backpressure(),
      readAudit: await readAudit(),
      logger: logger.child({ component: 'memories' }),
      followerCaughtUp: async () => {
        const f = await follower();
        return f !== undefined && (await f.caughtUp(config.VECTOR_FOLLOW_MAX_LAG_MS));
      },
      onIndexedDirectly: (count, acceptedAt, writeSeconds) => {
        metrics.memoriesIndexed.inc(count);
        if (writeSeconds !== undefined) metrics.vectorWriteSeconds.observe(writeSeconds);
        const seconds = Math.max(0, Date.now() - acceptedAt.getTime()) / 1000;
        for (let i = 0; i < count; i++) metrics.ingestSeconds.observe(seconds);
      },
    }),
  );
  /** Bulk imports (NDJSON → COPY), for the import route and `memory-layer ingest`. */
  const importer = part(async () => {
    const pressure = await backpressure();
    return createImporter({
      db: await db(),
      memories: await memories(),
      resolveModel: await resolveModel(),
      maxTextBytes: config.MAX_TEXT_BYTES,
      admit: (jobs) => pressure.check(jobs),
      onQueued: () => wakeWorker(),
      // pgvector is shared by every process; an in-process index only by the server that holds it.
      indexDirectly: opts.servesIndex === true || (await index()).name === 'pgvector',
    });
  });
  const divisions = part(async () => createDivisionService({ db: await db(), appendAudit }));
  /** Built from PostgreSQL when first asked for: by the search part, so at start in the server. */
  const keywordIndex = part(async () => {
    await migrated();
    const built = createKeywordIndex({
      db: await db(),
      logger: logger.child({ component: 'keyword-index' }),
      onCatchUp: (applied, seconds) => {
        metrics.keywordIndexChanges.inc(applied);
        metrics.keywordIndexCatchUpSeconds.observe(seconds);
      },
    });
    // A worker-only process serves no search: its index would be built on a first search only.
    if (!opts.workerOnly) await built.ready();
    metrics.setKeywordIndexSource(() => built.stats());
    return built;
  });
  const search = part(async () =>
    createSearchService({
      db: await db(),
      embedders: await embedders(),
      resolveModel: await resolveModel(),
      index: await index(),
      metrics,
      auditReads: (await memories()).auditReads,
      keywordIndex: await keywordIndex(),
      context,
      fusion: { method: config.SEARCH_FUSION, keywordWeight: config.SEARCH_KEYWORD_WEIGHT },
      feedback: config.SEARCH_FEEDBACK,
    }),
  );
  const reembedRunner = part(
    async () => {
      const runner = createReembedRunner({
        db: await db(),
        index: await index(),
        embedders: await embedders(),
        resolveModel: await resolveModel(),
        appendAudit,
        metrics,
        logger: logger.child({ component: 'reembed' }),
        batchSize: config.REEMBED_BATCH_SIZE,
        pauseMs: config.REEMBED_PAUSE_MS,
        pollMs: config.WORKER_POLL_MS,
        leaseMs: config.JOB_LEASE_MS,
        backoffMs: config.JOB_BACKOFF_MS,
        maxAttempts: config.JOB_MAX_ATTEMPTS,
      });
      if (opts.worker) wakeRunner = () => runner.notify();
      return runner;
    },
    (r) => r.stop(),
  );
  const reembed = part(async () => {
    const service = createReembedService({
      db: await db(),
      models: await embedders(),
      resolveModel: await resolveModel(),
      appendAudit,
      onRequested: () => wakeRunner(),
    });
    metrics.setReembedSource(() => service.progress());
    return service;
  });
  const jobs = part(async () =>
    createJobsAdmin({ db: await db(), appendAudit, onQueued: () => wakeWorker() }),
  );
  const holds = part(async () =>
    createLegalHoldService({ db: await db(), appendAudit, readMode: config.ACCESS_AUDIT }),
  );

  const signer = part(() =>
    createAuditSigner({ keyFile: config.AUDIT_SIGNING_KEY_FILE, dataDir: config.DATA_DIR }),
  );
  const audit = part(async () =>
    createAuditService({ db: await db(), signer: await signer(), readAudit: await readAudit() }),
  );
  /** KEY_DIR and its KEK, checked before anything is encrypted; undefined when encryption is off. */
  const keys = part(() => createKeyStore(config));
  const encryption = part(async () => createEncryption(await keys()));
  const objects = part(async () =>
    instrumentObjectStore(opts.objectStore ?? createObjectStore(config), (op, seconds, outcome) => {
      metrics.objectStoreSeconds.observe({ op }, seconds);
      if (outcome === 'error') metrics.objectStoreErrors.inc({ op });
    }),
  );
  const artifacts = part(async () =>
    createArtifactService({
      db: await db(),
      store: await objects(),
      appendAudit,
      maxBytes: config.ARTIFACT_MAX_BYTES,
      logger: logger.child({ component: 'artifacts' }),
      readAudit: await readAudit(),
      encryption: await encryption(),
    }),
  );
  const documents = part(async () =>
    createDocumentService({
      db: await db(),
      artifacts: await artifacts(),
      memories: await memories(),
      appendAudit,
      backpressure: await backpressure(),
      chunking: documentChunking(config),
      maxJobAttempts: config.JOB_MAX_ATTEMPTS,
      onQueued: () => wakeSplitter(),
    }),
  );
  /** Splits uploaded documents into memories (started with the indexing worker). */
  const splitWorker = part(
    async () => {
      const w = createSplitWorker({
        db: await db(),
        documents: await documents(),
        logger: logger.child({ component: 'document-splitter' }),
        pollMs: config.WORKER_POLL_MS,
        leaseMs: config.JOB_LEASE_MS,
        backoffMs: config.JOB_BACKOFF_MS,
      });
      if (opts.worker) wakeSplitter = () => w.notify();
      return w;
    },
    (w) => w.stop(),
  );
  const erasure = part(async () =>
    createErasureService({
      db: await db(),
      store: await objects(),
      index: await index(),
      resolveModel: await resolveModel(),
      keys: await keys(),
      signer: await signer(),
      appendAudit,
      logger: logger.child({ component: 'erasure' }),
    }),
  );
  /** Key rotation (KEK and data keys) and the runs that re-encrypt after a data-key rotation. */
  const keyRotation = part(async () => {
    const service = createKeyRotationService({
      db: await db(),
      keys: await keys(),
      appendAudit,
      onRequested: () => wakeReencrypt(),
    });
    metrics.setReencryptSource(() => service.progress());
    return service;
  });
  const reencryptRunner = part(
    async () => {
      const runner = createReencryptRunner({
        db: await db(),
        store: await objects(),
        encryption: await encryption(),
        appendAudit,
        metrics,
        logger: logger.child({ component: 'reencrypt' }),
        batchSize: config.REEMBED_BATCH_SIZE,
        pauseMs: config.REEMBED_PAUSE_MS,
        pollMs: config.WORKER_POLL_MS,
        leaseMs: config.JOB_LEASE_MS,
        backoffMs: config.JOB_BACKOFF_MS,
        maxAttempts: config.JOB_MAX_ATTEMPTS,
      });
      if (opts.worker) wakeReencrypt = () => runner.notify();
      return runner;
    },
    (r) => r.stop(),
  );
  /** Archives the audit trail not yet archived (the daily loop, and on demand). */
  const archive = part(async () => {
    const deps = {
      db: await db(),
      store: await objects(),
      signer: await signer(),
      retentionDays: config.AUDIT_ARCHIVE_RETENTION_DAYS,
      logger: logger.child({ component: 'audit-archive' }),
      encryption: await encryption(),
    };
    return (o?: ArchiveOptions) => archiveAudit(deps, o);
  });
  const publisher = part(
    async () => {
      const auditLogger = logger.child({ component: 'audit' });
      // Only processes that run the worker publish, so API-only replicas need no broker connection.
      const publishes = opts.worker === true && config.AUDIT_SINK === 'nats';
      const sink = publishes
        ? await createNatsSink({ url: config.NATS_URL, subject: config.AUDIT_SUBJECT })
        : createNoopSink();
      if (publishes)
        auditLogger.info({ subject: config.AUDIT_SUBJECT }, 'publishing audit events to NATS JetStream');
      return createAuditPublisher({ db: await db(), sink, logger: auditLogger });
    },
    // Stops its timer, waits for a batch in flight and closes the sink.
    (p) => p.stop(),
  );
  const sweeper = part(async () =>
    createRetentionSweeper({
      db: await db(),
      index: await index(),
      model: (await embedder()).model,
      resolveModel: await resolveModel(),
      appendAudit,
      purgeGraceMs: config.PURGE_GRACE_DAYS * DAY_MS,
      maxJobAttempts: config.JOB_MAX_ATTEMPTS,
      logger: logger.child({ component: 'retention' }),
    }),
  );

  let closed = false;
  return {
    config,
    context,
    logger,
    metrics,
    modelSpecs,
    tracing,
    db,
    migrated,
    statistics,
    embedder,
    embedders,
    resolveModel,
    index,
    follower,
    keywordIndex,
    ready,
    worker,
    backpressure,
    readAudit,
    memories,
    importer,
    divisions,
    search,
    reembedRunner,
    reembed,
    jobs,
    holds,
    signer,
    audit,
    keys,
    encryption,
    erasure,
    keyRotation,
    reencryptRunner,
    objects,
    artifacts,
    documents,
    splitWorker,
    archive,
    publisher,
    sweeper,
    /**
     * Closes every part built, the last built first: loops stop before the index and database they
     * use close, and tracing (built before what it wraps) closes last.
     */
    async close() {
      if (closed) return;
      closed = true;
      for (const close of closers.reverse()) await close();
    },
  };
}

export type Parts = ReturnType<typeof createParts>;

/**
 * The chunk bounds of documents, capped so that every chunk fits MAX_TEXT_BYTES: a chunk is a
 * memory, and no UTF-16 unit takes more than three bytes of UTF-8.
 */
function documentChunking(config: Config) {
  const maxChars = Math.max(1, Math.min(config.DOCUMENT_CHUNK_CHARS, Math.floor(config.MAX_TEXT_BYTES / 3)));
  return { maxChars, overlap: Math.min(config.DOCUMENT_CHUNK_OVERLAP, Math.floor(maxChars / 2)) };
}
