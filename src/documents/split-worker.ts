import { hostname } from 'node:os';
import type { Database } from '../adapters/db/port.js';
import { claim, complete, fail, type Job, renewLeases } from '../indexing/queue.js';
import { liveHolders } from '../platform/lease.js';
import type { Logger } from '../platform/logger.js';
import { createPollLoop } from '../platform/poll-loop.js';
import { DOCUMENT_QUEUE, type DocumentService } from './documents.js';

export interface SplitWorkerDeps {
  db: Database;
  documents: Pick<DocumentService, 'splitJob' | 'markFailed'>;
  logger: Logger;
  pollMs: number;
  leaseMs: number;
  backoffMs: number;
}

type SplitJob = Job<{ documentId: string; version: number }>;

/**
 * Runs split jobs one at a time (a document's chunks are written in one transaction, so one at a
 * time keeps the database's share of the work bounded), with the queue's leases, heartbeat,
 * backoff and dead-lettering. Beside the indexing worker in every process that runs workers.
 */
export function createSplitWorker(deps: SplitWorkerDeps) {
  const { db, logger } = deps;
  const workerId = `${hostname()}:${process.pid}:split:${Math.random().toString(36).slice(2, 8)}`;
  liveHolders.add(workerId);

  async function work(job: SplitJob) {
    const { documentId, version } = job.payload;
    try {
      const out = await deps.documents.splitJob(documentId, version);
      await complete(db, [job.id]);
      if (out) logger.info({ documentId, version, chunks: out.chunks }, 'document split');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.warn(
        { documentId, version, jobId: job.id, err: message },
        'split job failed; will retry or dead-letter',
      );
      await fail(db, [job.id], `split: ${message}`, deps.backoffMs);
      if (job.attempts >= job.maxAttempts) await deps.documents.markFailed(documentId, version, message);
    }
  }

  /** Claims and runs one due job; returns how many it claimed (0 or 1). */
  async function runOnce(): Promise<number> {
    const [job] = await claim<SplitJob['payload']>(
      db,
      DOCUMENT_QUEUE,
      1,
      workerId,
      deps.leaseMs,
      db.singleProcess ? [...liveHolders] : undefined,
    );
    if (!job) return 0;
    const heartbeat = setInterval(
      () => {
        renewLeases(db, [job.id], workerId, deps.leaseMs).catch((err: unknown) =>
          logger.warn({ err: err instanceof Error ? err.message : err }, 'renewing a split lease failed'),
        );
      },
      Math.max(100, Math.floor(deps.leaseMs / 3)),
    );
    heartbeat.unref?.();
    try {
      await work(job);
    } finally {
      clearInterval(heartbeat);
    }
    return 1;
  }

  const loop = createPollLoop({
    pollMs: deps.pollMs,
    once: runOnce,
    onError: (err) => logger.error({ err }, 'split worker failed'),
  });

  return {
    runOnce,
    notify: loop.notify,
    start: loop.start,
    async stop() {
      await loop.stop();
      liveHolders.delete(workerId);
    },
    /** Runs jobs until none is due (tests, CLI). */
    async drain(): Promise<void> {
      while ((await runOnce()) > 0) {}
    },
  };
}

export type SplitWorker = ReturnType<typeof createSplitWorker>;
