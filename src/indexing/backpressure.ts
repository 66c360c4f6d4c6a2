import type { Queryable } from '../adapters/db/port.js';
import { AppError, ErrorCode } from '../platform/errors.js';

export interface BackpressureOptions {
  db: Queryable;
  /** The queue whose backlog bounds writes. */
  queue: string;
  /** Jobs waiting or running past which writes are refused; 0 turns the bound off. */
  maxBacklog: number;
  /** Sent as `Retry-After` with the refusal. */
  retryAfterSeconds: number;
  /** How long a counted backlog is trusted before it is counted again; default 1 s. */
  cacheMs?: number;
}

export type Backpressure = ReturnType<typeof createBackpressure>;

/**
 * The bound on the indexing queue. Writes queue their jobs in the same transaction as the memory,
 * so an unbounded queue would grow for as long as the embedder or the vector index is down; past
 * `maxBacklog` jobs waiting (due or backing off) or running, a write is refused with 503 and
 * `Retry-After` before it writes anything: never accepted and then dropped.
 *
 * The count is cached for at most `cacheMs` so writes do not each pay a `count(*)`; in between, the
 * cached figure grows by what this process admitted. When it says the queue is full it is counted
 * again at once, so a queue the workers just drained does not refuse writes for a second.
 */
export function createBackpressure(opts: BackpressureOptions) {
  const cacheMs = opts.cacheMs ?? 1_000;
  const limit = opts.maxBacklog;
  let cached: { value: number; at: number } | null = null;
  let counting: Promise<number> | null = null;

  /** Counts the backlog; concurrent callers share one query. */
  function count(): Promise<number> {
    counting ??= opts.db
      .query<{ n: number }>(
        `SELECT count(*)::int AS n FROM jobs WHERE queue = $1 AND status IN ('queued', 'running')`,
        [opts.queue],
      )
      .then((res) => {
        const value = Number(res.rows[0]?.n ?? 0);
        cached = { value, at: Date.now() };
        return value;
      })
      .finally(() => {
        counting = null;
      });
    return counting;
  }

  async function current(maxAgeMs = cacheMs): Promise<{ value: number; fresh: boolean }> {
    if (cached && Date.now() - cached.at <= maxAgeMs) return { value: cached.value, fresh: false };
    return { value: await count(), fresh: true };
  }

  // A batch larger than the whole limit still gets into an empty queue: it must not be refused forever.
  const full = (backlog: number, incoming: number) => backlog > 0 && backlog + incoming > limit;

  return {
    limit,
    retryAfterSeconds: opts.retryAfterSeconds,

    /** Jobs waiting or running, counted at most `maxAgeMs` ago (default `cacheMs`; 0: count now). */
    async backlog(maxAgeMs = cacheMs): Promise<number> {
      return (await current(maxAgeMs)).value;
    },

    /**
     * Null when `incoming` more jobs may be queued (they are then counted in the cached backlog);
     * otherwise the 503 to answer with.
     */
    async check(incoming: number): Promise<AppError | null> {
      if (limit === 0) return null;
      let { value, fresh } = await current();
      if (full(value, incoming) && !fresh) value = await count();
      if (full(value, incoming)) {
        return new AppError(
          ErrorCode.unavailable,
          `the indexing queue holds ${value} jobs, at its limit of ${limit}; nothing was written, retry after ${opts.retryAfterSeconds} s`,
          [],
          { headers: { 'retry-after': String(opts.retryAfterSeconds) } },
        );
      }
      if (cached) cached.value += incoming;
      return null;
    },
  };
}
