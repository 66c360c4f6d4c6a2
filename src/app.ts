import { type Database, openDatabase } from './adapters/db/index.js';
import { migrate } from './adapters/db/migrate.js';
import { createStatisticsKeeper } from './adapters/db/statistics.js';
import { createEmbedder } from './adapters/embedders/index.js';
import { type Embedder, modelKey } from './adapters/embedders/port.js';
import { createEmbedderRegistry, loadModelSpecs } from './adapters/embedders/registry.js';
import { createObjectStore, instrumentObjectStore } from './adapters/objects/index.js';
import { createVectorIndex } from './adapters/vector/index.js';
import { createArtifactService } from './artifacts/artifacts.js';
import { type ArchiveOptions, archiveAudit, createArchiveLoop, startOfUtcDay } from './audit/archive.js';
import { appendAudit } from './audit/audit-log.js';
import { createAuditService } from './audit/audit-service.js';
import { createNatsSink } from './audit/nats-sink.js';
import { createAuditPublisher, createNoopSink } from './audit/publisher.js';
import { createAuditSigner } from './audit/signer.js';
import type { Config } from './config.js';
import { createDivisionService } from './divisions/divisions.js';
import { createLegalHoldService } from './governance/legal-holds.js';
import { createRetentionSweeper, createSweeperLoop } from './governance/retention.js';
import { createBackpressure } from './indexing/backpressure.js';
import { createJobsAdmin } from './indexing/dead-letters.js';
import { modelsInUse, reconcileIndex } from './indexing/index-maintenance.js';
import { createIndexingWorker } from './indexing/worker.js';
import { INDEX_QUEUE } from './indexing/queue.js';
import { createMemoryService } from './memories/memories.js';
import { resolverOf } from './models/active-model.js';
import { createReembedService } from './models/reembed.js';
import { createReembedRunner } from './models/reembed-runner.js';
import { createLeaderElection } from './platform/leader.js';
import { createLogger, type Logger } from './platform/logger.js';
import { createMetrics } from './platform/metrics.js';
import { createTracing } from './platform/tracing.js';
import { createSearchService } from './search/search.js';

export interface AppOptions {
  /** Run the indexing worker loop in this process. */
  worker: boolean;
  logger?: Logger;
  /** Tests and benchmarks may bring their own embedder (e.g. one shared by several apps). */
  embedder?: Embedder;
  /** An already open database (tests: a schema of their own); the app then does not close it. */
  database?: Database;
  /** Run the retention sweeper (under leader election; default: with the worker). */
  sweeper?: boolean;
  /** Skip the start-up check that the vector index matches PostgreSQL. */
  skipReconcile?: boolean;
}

const FLUSH_INTERVAL_MS = 5_000;
// One advisory lock key per job that must run in a single process at a time.
const SWEEPER_LOCK_KEY = 727_000_002;
// 727_000_003 is taken by archiveAudit itself (one archiver at a time).
const ARCHIVE_LEADER_LOCK_KEY = 727_000_004;
const ARCHIVE_INTERVAL_MS = 60 * 60_000;
const DAY_MS = 86_400_000;

/**
 * The composition root: builds every dependency from config, once. Nothing else opens
 * connections or reads config.
 */
export async function createApp(config: Config, opts: AppOptions) {
  const logger = opts.logger ?? createLogger(config.LOG_LEVEL);
  const metrics = createMetrics();
  // Read first: a bad models file stops the start before anything is opened.
  const modelSpecs = config.EMBEDDING_MODELS_FILE
    ? loadModelSpecs(config.EMBEDDING_MODELS_FILE, process.env)
    : [];
  // Off unless OTEL_* variables ask for it; then the database, embedder and index are wrapped so
  // that traced requests and worker batches get a span per query, embedding call and index write.
  const tracing = await createTracing(config, logger.child({ component: 'tracing' }));
  const db = tracing.database(
    opts.database ??
      (await openDatabase({
        databaseUrl: config.DATABASE_URL,
        dataDir: config.DATA_DIR,
        schema: config.DATABASE_SCHEMA,
      })),
  );
  const applied = await migrate(db);
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');

  const statistics = createStatisticsKeeper({ db, logger, intervalMs: 15_000 });
  await statistics.start();

  const embedder = tracing.embedder(opts.embedder ?? (await createEmbedder(config)));
  const model = embedder.model;
  // Every model a division may use: the configured one (the default), the built-in one, and
  // those of EMBEDDING_MODELS_FILE (re-embedding targets); each created on first use.
  const embedders = createEmbedderRegistry({
    default: embedder,
    specs: modelSpecs,
    env: process.env,
    timeoutMs: config.EMBEDDER_TIMEOUT_MS,
    batchSize: config.EMBEDDER_BATCH_SIZE,
    wrap: (e) => tracing.embedder(e),
  });
  const resolveModel = resolverOf(embedders);
  const index = tracing.vectorIndex(
    await createVectorIndex(config.VECTOR_INDEX, { db, dataDir: config.DATA_DIR }),
  );
  for (const inUse of await modelsInUse(db, resolveModel)) {
    await index.ensureSpace(inUse);
    if (!opts.skipReconcile && (await reconcileIndex(db, index, inUse))) {
      logger.warn(
        { index: index.name, model: modelKey(inUse) },
        'vector index did not match PostgreSQL; rebuilt it',
      );
    }
  }
  logger.info(
    {
      database: db.kind,
      vectorIndex: index.name,
      model: `${model.name}@${model.version}`,
      dims: model.dimensions,
    },
    'memory layer ready',
  );

  const worker = createIndexingWorker({
    db,
    embedders,
    resolveModel,
    index,
    logger: logger.child({ component: 'indexing-worker' }),
    metrics,
    batchSize: config.EMBEDDER_BATCH_SIZE,
    pollMs: config.WORKER_POLL_MS,
    leaseMs: config.JOB_LEASE_MS,
    backoffMs: config.JOB_BACKOFF_MS,
    tracing,
  });
  // A process without a worker still queues; a worker elsewhere picks the jobs up by polling.
  const onQueued = opts.worker ? () => worker.notify() : () => undefined;

  const backpressure = createBackpressure({
    db,
    queue: INDEX_QUEUE,
    maxBacklog: config.MAX_QUEUE_BACKLOG,
    retryAfterSeconds: config.QUEUE_RETRY_AFTER_SECONDS,
  });
  const memories = createMemoryService({
    db,
    index,
    resolveModel,
    appendAudit,
    maxTextBytes: config.MAX_TEXT_BYTES,
    maxJobAttempts: config.JOB_MAX_ATTEMPTS,
    defaultTtlDays: config.DEFAULT_TTL_DAYS,
    onQueued,
    backpressure,
  });
  const divisions = createDivisionService({ db, appendAudit });
  const search = createSearchService({
    db,
    embedders,
    resolveModel,
    index,
    metrics,
    auditPiiReads: memories.auditPiiReads,
  });
  const reembedRunner = createReembedRunner({
    db,
    index,
    embedders,
    resolveModel,
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
  const reembed = createReembedService({
    db,
    models: embedders,
    resolveModel,
    appendAudit,
    // Processes without the worker leave runs to one that has it (it polls).
    onRequested: opts.worker ? () => reembedRunner.notify() : () => undefined,
  });
  metrics.setReembedSource(() => reembed.progress());
  const jobs = createJobsAdmin({ db, appendAudit, onQueued });
  const holds = createLegalHoldService({ db, appendAudit });

  const signer = await createAuditSigner({
    keyFile: config.AUDIT_SIGNING_KEY_FILE,
    dataDir: config.DATA_DIR,
  });
  const audit = createAuditService({ db, signer });
  const objects = instrumentObjectStore(createObjectStore(config), (op, seconds, outcome) => {
    metrics.objectStoreSeconds.observe({ op }, seconds);
    if (outcome === 'error') metrics.objectStoreErrors.inc({ op });
  });
  const artifacts = createArtifactService({
    db,
    store: objects,
    appendAudit,
    maxBytes: config.ARTIFACT_MAX_BYTES,
    logger: logger.child({ component: 'artifacts' }),
  });
  const archiveLogger = logger.child({ component: 'audit-archive' });
  const archiveDeps = {
    db,
    store: objects,
    signer,
    retentionDays: config.AUDIT_ARCHIVE_RETENTION_DAYS,
    logger: archiveLogger,
  };
  // Daily archives of complete UTC days, by one elected process; on demand: app.archiveAudit().
  const archiveLoop = createArchiveLoop({
    run: () => archiveAudit(archiveDeps, { until: startOfUtcDay(new Date()) }),
    leader: createLeaderElection({
      db,
      lockKey: ARCHIVE_LEADER_LOCK_KEY,
      retryMs: 30_000,
      logger: logger.child({ component: 'leader' }),
    }),
    intervalMs: ARCHIVE_INTERVAL_MS,
    logger: archiveLogger,
  });
  const auditLogger = logger.child({ component: 'audit' });
  // Only processes that run the worker publish, so API-only replicas need no broker connection.
  const publishes = opts.worker && config.AUDIT_SINK === 'nats';
  const sink = publishes
    ? await createNatsSink({ url: config.NATS_URL, subject: config.AUDIT_SUBJECT })
    : createNoopSink();
  if (publishes)
    auditLogger.info({ subject: config.AUDIT_SUBJECT }, 'publishing audit events to NATS JetStream');
  const publisher = createAuditPublisher({ db, sink, logger: auditLogger });
  const sweeper = createRetentionSweeper({
    db,
    index,
    model,
    resolveModel,
    appendAudit,
    purgeGraceMs: config.PURGE_GRACE_DAYS * DAY_MS,
    logger: logger.child({ component: 'retention' }),
  });
  const sweeperLoop = createSweeperLoop({
    sweeper,
    leader: createLeaderElection({
      db,
      lockKey: SWEEPER_LOCK_KEY,
      retryMs: Math.min(5_000, config.SWEEP_INTERVAL_MS),
      logger: logger.child({ component: 'leader' }),
    }),
    intervalMs: config.SWEEP_INTERVAL_MS,
    logger: logger.child({ component: 'retention' }),
  });

  if (opts.worker) {
    worker.start();
    publisher.start(config.WORKER_POLL_MS);
    reembedRunner.start();
  }
  if (opts.sweeper ?? opts.worker) {
    sweeperLoop.start();
    archiveLoop.start();
  }
  const headSigner = setInterval(() => {
    audit.signChangedHeads().catch((err) => logger.error({ err }, 'signing audit heads failed'));
  }, config.AUDIT_SIGN_INTERVAL_MS);
  headSigner.unref();
  const flusher = setInterval(() => {
    index.flush().catch((err) => logger.error({ err }, 'vector index flush failed'));
  }, FLUSH_INTERVAL_MS);
  flusher.unref();

  let closed = false;
  return {
    config,
    logger,
    tracing,
    metrics,
    db,
    embedder,
    embedders,
    index,
    worker,
    reembed,
    reembedRunner,
    backpressure,
    memories,
    divisions,
    search,
    jobs,
    holds,
    audit,
    signer,
    sweeper,
    publisher,
    objects,
    artifacts,
    archiveAudit: (o?: ArchiveOptions) => archiveAudit(archiveDeps, o),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(flusher);
      await statistics.stop();
      clearInterval(headSigner);
      await sweeperLoop.stop();
      await archiveLoop.stop();
      await publisher.stop();
      await reembedRunner.stop();
      await worker.stop();
      await index.flush();
      await index.close();
      await embedders.close();
      if (!opts.embedder) await embedder.close();
      if (!opts.database) await db.close();
      // Last, so that the spans of everything above are exported.
      await tracing.shutdown();
    },
  };
}

export type App = Awaited<ReturnType<typeof createApp>>;
