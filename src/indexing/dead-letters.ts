import type { Database } from '../adapters/db/port.js';
import type { AppendAudit } from '../audit/types.js';
import type { Access } from '../memories/access.js';
import { withoutAddresses } from '../platform/addresses.js';
import { ErrorCode, notFound } from '../platform/errors.js';
import { type Job, listDead, retryDead } from './queue.js';

export interface DeadJob {
  id: number;
  queue: string;
  memoryId: string | null;
  attempts: number;
  lastError: string | null;
  failedAt: string;
  createdAt: string;
}

/**
 * Errors can name internal endpoints (an embedder's URL); callers confined to some divisions see
 * them without addresses. Operators of every division see the full text.
 */
const scrubbed = (error: string | null) => (error === null ? null : withoutAddresses(error));

const toDeadJob = (j: Job<{ nodeId?: string }>, full: boolean): DeadJob => ({
  id: j.id,
  queue: j.queue,
  memoryId: j.payload.nodeId ?? null,
  attempts: j.attempts,
  lastError: full ? j.lastError : scrubbed(j.lastError),
  failedAt: j.updatedAt.toISOString(),
  createdAt: j.createdAt.toISOString(),
});

/**
 * The dead-letter queue as operators see it (HTTP and CLI). A job belongs to the division of the
 * memory it works on: callers confined to some divisions see and retry only those jobs (another
 * division's job is 404, like one that does not exist); jobs about no memory are for operators of
 * every division. A retry is audited in the memory's division.
 */
export function createJobsAdmin(deps: { db: Database; appendAudit: AppendAudit; onQueued: () => void }) {
  const { db } = deps;
  return {
    async listDead(access: Access, opts: { limit: number; afterId?: number }): Promise<DeadJob[]> {
      const jobs = await listDead<{ nodeId?: string }>(db, { ...opts, divisions: access.divisions });
      return jobs.map((j) => toDeadJob(j, access.divisions === '*'));
    },
    /** Re-queues a dead job with fresh attempts; its memory becomes pending again. */
    async retry(access: Access, id: number): Promise<void> {
      const ok = await db.transaction(async (tx) => {
        const retried = await retryDead(tx, id, access.divisions);
        if (!retried) return false;
        const res = await tx.query<{ id: string; division_id: string }>(
          `UPDATE memory_nodes SET status = CASE WHEN status = 'failed' THEN 'pending' ELSE status END
           WHERE id = $1::uuid RETURNING id, division_id`,
          [retried.nodeId ?? null],
        );
        const memory = res.rows[0];
        if (memory) {
          await deps.appendAudit(tx, [
            {
              divisionId: memory.division_id,
              actor: access.actor,
              action: 'job.retry',
              resourceType: 'memory',
              resourceId: memory.id,
              manifestSignatureId: access.manifestSignatureId,
              change: { jobId: id, queue: retried.queue },
            },
          ]);
        }
        return true;
      });
      if (!ok) throw notFound(ErrorCode.jobNotFound, `no dead job ${id}`);
      deps.onQueued();
    },
  };
}

export type JobsAdmin = ReturnType<typeof createJobsAdmin>;
