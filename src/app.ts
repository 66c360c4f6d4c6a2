import { createArchiveLoop } from './audit/archive/loop.js';
import { startOfUtcDay } from './audit/archive/writer.js';
import type { Config } from './config.js';
import { createSweeperLoop } from './governance/retention.js';
import { createSavePacer } from './indexing/save-pacing.js';
import { createParts, type Parts, type PartsOptions } from './parts.js';
import { createLeaderElection } from './platform/leader.js';
import { LOCK_KEYS } from './platform/locks.js';

export interface AppOptions extends PartsOptions {
  /**
   * `start()` runs the indexing worker, the document splitter, the re-embedding runner and the
   * audit publisher.
   */
  worker: boolean;
  /**
   * `start()` runs the retention sweeper and the daily audit archive, each in one elected process
   * (default: with the worker).
   */
  sweeper?: boolean;
}

/** The vector index is saved this often at most (paced further when a save is slow). */
const FLUSH_INTERVAL_MS = 5_000;
const ARCHIVE_INTERVAL_MS = 60 * 60_000;

/**
 * The composition root: the whole service, from the parts every process builds the same way
 * (src/parts.ts; CLI commands build only the parts they use). Creating the app builds it and gets
 * it ready (schema migrated, vector index checked against PostgreSQL) but runs nothing in the
 * background: `start()` starts the timers and loops the options ask for, `close()` stops them and
 * closes what was opened.
 */
export async function createApp(config: Config, opts: AppOptions) {
  const parts = createParts(config, { ...opts, servesIndex: true });
  let services: Services;
  let background: Background;
  try {
    services = await buildServices(parts);
    background = createBackground(services, await parts.statistics(), opts);
  } catch (err) {
    await parts.close().catch(() => undefined);
    throw err;
  }
  let closed = false;
  return {
    ...services,
    /** Starts the background work (idempotent); the server and worker processes call it once. */
    start: background.start,
    async close() {
      if (closed) return;
      closed = true;
      await background.stop();
      await parts.close();
    },
  };
}

export type App = Awaited<ReturnType<typeof createApp>>;

/** Every part, ready: the schema migrated and the vector index checked against PostgreSQL. */
async function buildServices(parts: Parts) {
  const { config, logger } = parts;
  // Read first: a bad models file stops the start before anything is opened.
  parts.modelSpecs();
  // And the key store: a missing or wrong key-encryption key stops the start before any write.
  await parts.keys();
  await parts.ready();
  const db = await parts.db();
  const index = await parts.index();
  const embedder = await parts.embedder();
  const { model } = embedder;
  logger.info(
    {
      database: db.engine,
      vectorIndex: index.name,
      model: `${model.name}@${model.version}`,
      dims: model.dimensions,
    },
    'memory layer ready',
  );

  return {
    config,
    logger,
    tracing: await parts.tracing(),
    metrics: parts.metrics,
    db,
    embedder,
    embedders: await parts.embedders(),
    index,
    /** Set on a replica whose in-process index follows the change feed (VECTOR_INDEX_FOLLOW). */
    follower: await parts.follower(),
    worker: await parts.worker(),
    reembed: await parts.reembed(),
    reembedRunner: await parts.reembedRunner(),
    backpressure: await parts.backpressure(),
    readAudit: await parts.readAudit(),
    memories: await parts.memories(),
    importer: await parts.importer(),
    divisions: await parts.divisions(),
    search: await parts.search(),
    jobs: await parts.jobs(),
    holds: await parts.holds(),
    audit: await parts.audit(),
    signer: await parts.signer(),
    sweeper: await parts.sweeper(),
    publisher: await parts.publisher(),
    objects: await parts.objects(),
    artifacts: await parts.artifacts(),
    documents: await parts.documents(),
    splitWorker: await parts.splitWorker(),
    encryption: await parts.encryption(),
    erasure: await parts.erasure(),
    keyRotation: await parts.keyRotation(),
    reencryptRunner: await parts.reencryptRunner(),
    /** Archives the audit trail not yet archived, now (`memory-layer audit archive`, tests). */
    archiveAudit: await parts.archive(),
  };
}

type Services = Awaited<ReturnType<typeof buildServices>>;
type Background = ReturnType<typeof createBackground>;

/**
 * The timers and loops of a long-running process. Always: planner statistics (PGlite), flushing
 * the vector index, signing changed audit heads. With the worker: indexing, re-embedding,
 * publishing audit events. With the sweeper: retention sweeps and daily audit archives, each run
 * by one process elected by advisory lock.
 */
function createBackground(
  app: Services,
  statistics: { start(): void; stop(): Promise<void> },
  opts: AppOptions,
) {
  const { config, logger, db } = app;
  const leader = (lockKey: number, retryMs: number) =>
    createLeaderElection({
      db,
      lockKey: db.lockKey(lockKey),
      retryMs,
      logger: logger.child({ component: 'leader' }),
    });
  const sweeperLoop = createSweeperLoop({
    sweeper: app.sweeper,
    leader: leader(LOCK_KEYS.sweeperLeader, Math.min(5_000, config.SWEEP_INTERVAL_MS)),
    intervalMs: config.SWEEP_INTERVAL_MS,
    logger: logger.child({ component: 'retention' }),
  });
  // Archives complete UTC days.
  const archiveLoop = createArchiveLoop({
    run: () => app.archiveAudit({ until: startOfUtcDay(new Date()) }),
    leader: leader(LOCK_KEYS.auditArchiveLeader, 30_000),
    intervalMs: ARCHIVE_INTERVAL_MS,
    logger: logger.child({ component: 'audit-archive' }),
  });
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, task: () => Promise<unknown>, failure: string) => {
    const timer = setInterval(() => {
      task().catch((err) => logger.error({ err }, failure));
    }, ms);
    timer.unref();
    timers.push(timer);
  };
  let started = false;

  return {
    start() {
      if (started) return;
      started = true;
      statistics.start();
      const flushes = createSavePacer(FLUSH_INTERVAL_MS);
      every(
        FLUSH_INTERVAL_MS,
        async () => {
          if (flushes.due()) await flushes.run(() => app.index.flush());
        },
        'vector index flush failed',
      );
      app.follower?.start();
      every(config.AUDIT_SIGN_INTERVAL_MS, () => app.audit.signChangedHeads(), 'signing audit heads failed');
      // Chains recorded reads every ACCESS_AUDIT_FLUSH_MS (and when a batch fills); stopping flushes.
      app.readAudit.start();
      if (opts.worker) {
        app.worker.start();
        app.splitWorker.start();
        app.publisher.start(config.WORKER_POLL_MS);
        app.reembedRunner.start();
        app.reencryptRunner.start();
      }
      if (opts.sweeper ?? opts.worker) {
        sweeperLoop.start();
        archiveLoop.start();
      }
    },
    /**
     * Stops everything, started here or not (a caller may have started the runner itself). The
     * publisher stops when its part closes, with its sink.
     */
    async stop() {
      for (const timer of timers.splice(0)) clearInterval(timer);
      await statistics.stop();
      await sweeperLoop.stop();
      await archiveLoop.stop();
      await app.reembedRunner.stop();
      await app.reencryptRunner.stop();
      await app.splitWorker.stop();
      await app.worker.stop();
      await app.follower?.stop();
      // Reads staged until now join the chain before the database closes (the part's close
      // flushes again, for an app that was never started).
      await app.readAudit.stop();
    },
  };
}
