import type { Database } from '../adapters/db/port.js';
import { ErrorCode, notFound } from '../internal/errors.js';
import { type Job, listDead, retryDead } from '../internal/queue/jobs.js';

export interface DeadJob {
  id: number;
  queue: string;
  memoryId: string | null;
  attempts: number;
  lastError: string | null;
  failedAt: string;
  createdAt: string;
}

const toDeadJob = (j: Job<{ nodeId?: string }>): DeadJob => ({
  id: j.id,
  queue: j.queue,
  memoryId: j.payload.nodeId ?? null,
  attempts: j.attempts,
  lastError: j.lastError,
  failedAt: j.updatedAt.toISOString(),
  createdAt: j.createdAt.toISOString(),
});

/** The dead-letter queue as operators see it (HTTP and CLI). */
export function createJobsAdmin(db: Database, onQueued: () => void) {
  return {
    async listDead(opts: { limit: number; afterId?: number }): Promise<DeadJob[]> {
      return (await listDead<{ nodeId?: string }>(db, opts)).map(toDeadJob);
    },
    /** Re-queues a dead job with fresh attempts; its memory becomes pending again. */
    async retry(id: number): Promise<void> {
      const ok = await db.transaction(async (tx) => {
        if (!(await retryDead(tx, id))) return false;
        await tx.query(
          `UPDATE memory_nodes SET status = 'pending'
           WHERE status = 'failed' AND id = (SELECT (payload->>'nodeId')::uuid FROM jobs WHERE id = $1)`,
          [id],
        );
        return true;
      });
      if (!ok) throw notFound(ErrorCode.jobNotFound, `no dead job ${id}`);
      onQueued();
    },
  };
}

export type JobsAdmin = ReturnType<typeof createJobsAdmin>;
