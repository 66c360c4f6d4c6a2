import { hostname } from 'node:os';
import type { Database, Queryable } from '../adapters/db/port.js';
import { lease, liveHolders } from './lease.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/**
 * Tables of long runs worked through in batches by one runner at a time: a row per run with
 * `status` (queued, running, completed, failed), `error`, the lease columns (lease.ts),
 * `created_at`, `started_at`, `finished_at` and `updated_at`.
 */
export type RunTable = 'reembed_runs' | 'key_reencryptions';

export interface RunRow {
  id: string;
  division_id: string;
}

/**
 * What one step of a run did: `progress` (a batch done: pause, then the next), `again` (nothing
 * done, look again at once), `done` (the run completed; the step recorded it).
 */
export type StepResult = 'progress' | 'again' | 'done';

/** The run was cancelled, or another runner took it over: stop without touching it. */
export class LostRun extends Error {}

export interface RunContext {
  readonly runnerId: string;
  /** Aborted when the runner stops (passed to the work in flight, e.g. an embedder call). */
  readonly signal: AbortSignal;
  /** False once the runner is stopping: a step doing several things checks it between them. */
  running(): boolean;
  /** The run's logger; open() may replace it with a child naming more. */
  log: Logger;
  /**
   * Updates the run (`set`, with `params` as $4…) and renews its lease, only while the run is
   * still this runner's; throws LostRun otherwise.
   */
  whileOurs(q: Pick<Queryable, 'query'>, set: string, params?: unknown[]): Promise<void>;
}

export interface LeasedRunnerOptions<Run extends RunRow> {
  db: Database;
  table: RunTable;
  /** The work, as logs name it ('re-embedding'), and the `stage` of the worker error metric. */
  what: string;
  stage: string;
  logger: Logger;
  metrics: Pick<Metrics, 'workerErrors'>;
  /** Pause after a batch (the throttle), and how often an idle runner looks for runs. */
  pauseMs: number;
  pollMs: number;
  /** A run whose runner has not renewed its lease for this long is claimed by another. */
  leaseMs: number;
  /** Retry delay after a failed step (doubling, at most a minute), and how many in a row fail the run. */
  backoffMs: number;
  maxAttempts: number;
  /** Whether this process can do the work (otherwise start() leaves the runs to others). */
  enabled?(): boolean;
  /**
   * Opens a claimed run: the step to repeat until it returns `done`, or the reason the run fails
   * at once. The step's state (a cursor, counts) lives in its closure: a run claimed again after
   * a failure or a stop starts from what the rows say.
   */
  open(run: Run, ctx: RunContext): Promise<(() => Promise<StepResult>) | { fail: string }>;
}

/**
 * The runner shared by re-embedding and re-encryption: claims the oldest queued run (or one whose
 * runner stopped renewing its lease; on PGlite, one held by a runner no longer alive in this
 * process, at once), repeats its step with a pause after each batch, retries a failed step with
 * backoff and fails the run after `maxAttempts` in a row, and on stop gives the run back so that
 * the next runner continues it. One run at a time per runner.
 */
export function createLeasedRunner<Run extends RunRow>(o: LeasedRunnerOptions<Run>) {
  const { db, table } = o;
  const runnerId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  let running = false;
  let loop: Promise<void> | null = null;
  let abort = new AbortController();
  let wakeIdle: (() => void) | null = null;

  /** Sleeps `ms`; stop() ends it at once, and so does notify() when `idle`. */
  function sleep(ms: number, idle = false): Promise<void> {
    if (!running || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        abort.signal.removeEventListener('abort', done);
        if (idle) wakeIdle = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      abort.signal.addEventListener('abort', done);
      if (idle) wakeIdle = done;
    });
  }

  async function staleLeases(): Promise<string[]> {
    if (!db.singleProcess) return [];
    const res = await db.query<{ id: string; locked_by: string }>(
      `SELECT id, locked_by FROM ${table} WHERE status = 'running' AND locked_by IS NOT NULL`,
    );
    return res.rows.filter((r) => !liveHolders.has(r.locked_by)).map((r) => r.id);
  }

  async function claim(): Promise<Run | null> {
    const res = await db.query<Run>(
      `UPDATE ${table} SET status = 'running', ${lease.take('$1', '$2')},
         started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = (
         SELECT id FROM ${table}
         WHERE status = 'queued'
           OR (status = 'running' AND (${lease.lapsed()} OR id = ANY($3::uuid[])))
         ORDER BY created_at, id LIMIT 1
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [runnerId, o.leaseMs, await staleLeases()],
    );
    return res.rows[0] ?? null;
  }

  async function fail(run: Run, error: string) {
    await db.query(
      `UPDATE ${table} SET status = 'failed', error = $3, finished_at = now(), updated_at = now(),
         ${lease.release}
       WHERE id = $1 AND locked_by = $2 AND status = 'running'`,
      [run.id, runnerId, error.slice(0, 2000)],
    );
  }

  /** Gives the run back (stopping): another runner, or this one later, continues it at once. */
  async function release(run: Run) {
    await db.query(
      `UPDATE ${table} SET ${lease.release}, updated_at = now()
       WHERE id = $1 AND locked_by = $2 AND status = 'running'`,
      [run.id, runnerId],
    );
  }

  async function execute(run: Run) {
    const ctx: RunContext = {
      runnerId,
      signal: abort.signal,
      running: () => running,
      log: o.logger.child({ run: run.id, division: run.division_id }),
      async whileOurs(q, set, params = []) {
        const res = await q.query(
          `UPDATE ${table} SET ${set}, ${lease.renew('$2')}, updated_at = now()
           WHERE id = $1 AND locked_by = $3 AND status = 'running'`,
          [run.id, o.leaseMs, runnerId, ...params],
        );
        if (res.rowCount === 0) throw new LostRun();
      },
    };
    const step = await o.open(run, ctx);
    const { log } = ctx;
    if (typeof step !== 'function') {
      log.error({ reason: step.fail }, `${o.what} cannot run; the run fails`);
      await fail(run, step.fail);
      return;
    }
    log.info(`${o.what} started`);
    let failures = 0;
    while (running) {
      try {
        const result = await step();
        if (result === 'done') return;
        if (result === 'progress') {
          failures = 0;
          await sleep(o.pauseMs);
        }
      } catch (err) {
        if (err instanceof LostRun) {
          log.info('the run was cancelled or taken over; stopping');
          return;
        }
        if (!running) break;
        failures++;
        const message = err instanceof Error ? err.message : String(err);
        o.metrics.workerErrors.inc({ stage: o.stage });
        log.warn({ err: message, failures }, `${o.what} batch failed`);
        if (failures >= o.maxAttempts) {
          await fail(run, message);
          return;
        }
        await sleep(Math.min(o.backoffMs * 2 ** (failures - 1), 60_000));
      }
    }
    await release(run).catch(() => undefined);
  }

  async function work() {
    while (running) {
      let run: Run | null = null;
      try {
        run = await claim();
        if (run) await execute(run);
      } catch (err) {
        o.logger.error({ err }, `${o.what} runner failed`);
        if (run) await release(run).catch(() => undefined);
        await sleep(o.pollMs);
      }
      if (!run) await sleep(o.pollMs, true);
    }
  }

  return {
    id: runnerId,
    /** Wakes an idle runner (a run was just requested in this process). */
    notify() {
      wakeIdle?.();
    },
    start() {
      if (running || (o.enabled && !o.enabled())) return;
      running = true;
      abort = new AbortController();
      liveHolders.add(runnerId);
      loop = work();
    },
    /** Stops after aborting the step in flight; the run is released for the next runner. */
    async stop() {
      if (!running) return;
      running = false;
      abort.abort();
      await loop;
      loop = null;
      liveHolders.delete(runnerId);
    },
  };
}

export type LeasedRunner = ReturnType<typeof createLeasedRunner>;
