import type { Queryable } from '../adapters/db/port.js';
import { lease } from '../platform/lease.js';
import { traceCarrier } from '../platform/tracing.js';

/** The queue of indexing jobs: one per memory whose vector or index entry must be (re)made. */
export const INDEX_QUEUE = 'index';

/**
 * A PostgreSQL job queue (also our outbox): jobs are inserted in the same transaction as the
 * change that needs them, claimed in batches with FOR UPDATE SKIP LOCKED, retried with
 * exponential backoff, and dead-lettered after `max_attempts`. Finished jobs are deleted.
 */
export interface Job<P = Record<string, unknown>> {
  id: number;
  queue: string;
  payload: P;
  status: 'queued' | 'running' | 'dead';
  attempts: number;
  maxAttempts: number;
  runAt: Date;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface JobRow {
  id: number;
  queue: string;
  payload: Record<string, unknown>;
  status: Job['status'];
  attempts: number;
  max_attempts: number;
  run_at: Date;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

const toJob = <P>(r: JobRow): Job<P> => ({
  id: Number(r.id),
  queue: r.queue,
  payload: r.payload as P,
  status: r.status,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  runAt: r.run_at,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * Inserts jobs (in the caller's transaction). When the caller is being traced, each payload also
 * gets `trace`: the W3C context the worker continues the trace from (consumers ignore it).
 */
export async function enqueue(
  tx: Queryable,
  queue: string,
  payloads: Record<string, unknown>[],
  maxAttempts: number,
): Promise<void> {
  if (payloads.length === 0) return;
  const trace = traceCarrier();
  await tx.query(
    `INSERT INTO jobs (queue, payload, max_attempts)
     SELECT $1, p, $3 FROM unnest($2::jsonb[]) AS p`,
    [queue, payloads.map((p) => JSON.stringify(trace ? { ...p, trace } : p)), maxAttempts],
  );
}

/**
 * Claims up to `limit` due jobs. A running job whose lease expired (its worker died) is due again,
 * and so, when `liveHolders` is given (a database one process owns), is one held by a holder not
 * in it: its process has ended. Each claim counts as an attempt.
 */
export async function claim<P>(
  db: Queryable,
  queue: string,
  limit: number,
  workerId: string,
  leaseMs: number,
  liveHolders?: readonly string[],
): Promise<Job<P>[]> {
  const res = await db.query<JobRow>(
    `UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_at = now(), ${lease.take('$3', '$4')},
       updated_at = now()
     WHERE id IN (
       SELECT id FROM jobs
       WHERE queue = $1
         AND ((status = 'queued' AND run_at <= now())
           OR (status = 'running' AND (${lease.lapsed()}
             OR ($5::text[] IS NOT NULL AND (locked_by IS NULL OR locked_by <> ALL($5::text[]))))))
       ORDER BY id
       LIMIT $2
       FOR UPDATE SKIP LOCKED)
     RETURNING *`,
    [queue, limit, workerId, leaseMs, liveHolders ?? null],
  );
  return res.rows.map((r) => toJob<P>(r)).sort((a, b) => a.id - b.id);
}

/**
 * Renews the lease of jobs `holder` still holds (its heartbeat while it works on them). Returns
 * how many it still held: a job another worker took over after a lapse is not renewed.
 */
export async function renewLeases(
  db: Queryable,
  ids: number[],
  holder: string,
  leaseMs: number,
): Promise<number> {
  if (ids.length === 0) return 0;
  const res = await db.query(
    `UPDATE jobs SET ${lease.renew('$3')}
     WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND status = 'running'`,
    [ids, holder, leaseMs],
  );
  return res.rowCount;
}

export async function complete(db: Queryable, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('DELETE FROM jobs WHERE id = ANY($1::bigint[])', [ids]);
}

/**
 * Records a failed attempt: the job runs again after `backoffMs * 2^(attempts-1)` (capped at an
 * hour), or becomes dead when it has used all its attempts.
 */
export async function fail(db: Queryable, ids: number[], error: string, backoffMs: number): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE jobs SET
       status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
       run_at = now() + make_interval(secs => least(3600, $3::double precision * power(2, attempts - 1) / 1000)),
       locked_at = NULL, ${lease.release}, last_error = $2, updated_at = now()
     WHERE id = ANY($1::bigint[])`,
    [ids, error.slice(0, 2000), backoffMs],
  );
}

/**
 * SQL keeping jobs whose memory (payload `nodeId`) lies in `divisions`; '*' keeps every job.
 * Jobs about no memory belong to no division, so only '*' sees them.
 */
function divisionFilter(divisions: readonly string[] | '*', params: unknown[]): string {
  if (divisions === '*') return 'true';
  params.push(divisions);
  return `EXISTS (SELECT 1 FROM memory_nodes m
    WHERE m.id::text = j.payload->>'nodeId' AND m.division_id = ANY($${params.length}::text[]))`;
}

export async function listDead<P>(
  db: Queryable,
  opts: { limit: number; afterId?: number; divisions?: readonly string[] | '*' },
): Promise<Job<P>[]> {
  const params: unknown[] = [opts.limit, opts.afterId ?? 0];
  const res = await db.query<JobRow>(
    `SELECT * FROM jobs j WHERE j.status = 'dead' AND j.id > $2 AND ${divisionFilter(opts.divisions ?? '*', params)}
     ORDER BY j.id LIMIT $1`,
    params,
  );
  return res.rows.map((r) => toJob<P>(r));
}

/**
 * Puts a dead job (within `divisions`) back in the queue with a fresh set of attempts. Returns
 * its queue and memory id, or undefined when there is no such dead job.
 */
export async function retryDead(
  db: Queryable,
  id: number,
  divisions: readonly string[] | '*' = '*',
): Promise<{ queue: string; nodeId?: string } | undefined> {
  const params: unknown[] = [id];
  const res = await db.query<{ queue: string; node_id: string | null }>(
    `UPDATE jobs j SET status = 'queued', attempts = 0, run_at = now(), updated_at = now()
     WHERE j.id = $1 AND j.status = 'dead' AND ${divisionFilter(divisions, params)}
     RETURNING j.queue, j.payload->>'nodeId' AS node_id`,
    params,
  );
  const row = res.rows[0];
  return row ? { queue: row.queue, nodeId: row.node_id ?? undefined } : undefined;
}

export async function queueDepth(db: Queryable): Promise<{ queue: string; status: string; count: number }[]> {
  const res = await db.query<{ queue: string; status: string; count: number }>(
    'SELECT queue, status, count(*)::int AS count FROM jobs GROUP BY queue, status',
  );
  return res.rows;
}
