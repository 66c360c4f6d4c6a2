import type { Database, Queryable } from '../adapters/db/port.js';
import type { Logger } from './logger.js';

export interface LeaderElectionDeps {
  db: Database;
  /** The advisory lock key: one per job that must run in exactly one process. */
  lockKey: number;
  /** How often a candidate tries for the lock and the leader checks its session. */
  retryMs: number;
  logger: Pick<Logger, 'info' | 'warn'>;
}

export interface LeaderElection {
  /**
   * Starts campaigning. `onLead` runs when this process takes the lock, `onLose` when it no
   * longer holds it (its session failed, or `stop()`).
   */
  start(onLead: () => void, onLose: () => void): void;
  isLeader(): boolean;
  /** Gives the lock up (if held) and stops campaigning. */
  stop(): Promise<void>;
}

type Session = Queryable & { release(): Promise<void> };

/**
 * Leader election by a PostgreSQL session-level advisory lock. Each candidate reserves a session
 * and tries `pg_try_advisory_lock` every `retryMs`; the winner keeps that session (and so the
 * lock) and pings it every `retryMs`. When the ping fails, the session and with it the lock may
 * be gone: the leader steps down and drops the session. A replica that dies loses its
 * connection, the server releases its lock, and another candidate takes over on its next try.
 *
 * On PGlite there is one session per process and one process per database: it always leads.
 */
export function createLeaderElection(deps: LeaderElectionDeps): LeaderElection {
  const { db, lockKey, retryMs, logger } = deps;
  let session: Session | null = null;
  let leader = false;
  let running = false;
  let timer: NodeJS.Timeout | null = null;
  let tick: Promise<void> = Promise.resolve();
  let callbacks: { onLead: () => void; onLose: () => void } | null = null;

  const call = (fn: (() => void) | undefined, which: string) => {
    try {
      fn?.();
    } catch (err) {
      logger.warn({ err, lockKey }, `leader ${which} callback failed`);
    }
  };

  async function dropSession() {
    const s = session;
    session = null;
    if (s) await s.release().catch(() => undefined);
  }

  function stepDown(reason: string, err?: unknown) {
    if (!leader) return;
    leader = false;
    logger.warn({ lockKey, reason, err: err instanceof Error ? err.message : err }, 'no longer leader');
    call(callbacks?.onLose, 'onLose');
  }

  async function attempt() {
    if (!running) return;
    try {
      if (leader) {
        await (session as Session).query('SELECT 1');
        return;
      }
      session ??= await db.reserve();
      const res = await session.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1::bigint) AS locked',
        [lockKey],
      );
      if (res.rows[0]?.locked === true) {
        if (!running) {
          // stop() came while we were asking: give the lock straight back.
          await session.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]).catch(() => undefined);
          return;
        }
        leader = true;
        logger.info({ lockKey }, 'became leader');
        call(callbacks?.onLead, 'onLead');
      }
    } catch (err) {
      if (leader) stepDown('session check failed', err);
      else
        logger.warn({ lockKey, err: err instanceof Error ? err.message : err }, 'leader election try failed');
      await dropSession();
    }
  }

  function schedule(delay: number) {
    if (!running) return;
    timer = setTimeout(() => {
      timer = null;
      tick = attempt().finally(() => schedule(retryMs));
    }, delay);
    timer.unref?.();
  }

  return {
    start(onLead, onLose) {
      if (running) return;
      running = true;
      callbacks = { onLead, onLose };
      schedule(0);
    },

    isLeader: () => leader,

    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
      await tick;
      if (leader && session) {
        // Explicit on PGlite, whose single session outlives this election.
        await session.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]).catch(() => undefined);
      }
      if (leader) {
        leader = false;
        logger.info({ lockKey }, 'gave up leadership');
        call(callbacks?.onLose, 'onLose');
      }
      await dropSession();
    },
  };
}

/**
 * Runs `task` at once and then every `intervalMs` while this process is the elected leader, so
 * that exactly one replica runs it. Runs never overlap (the next is scheduled when one ends);
 * a failure is logged and the task runs again at the next interval. `stop()` waits for a run in
 * progress, then gives up the leadership.
 */
export function createLeaderLoop(deps: {
  name: string;
  task: () => Promise<unknown>;
  leader: LeaderElection;
  intervalMs: number;
  logger: Pick<Logger, 'error'>;
}) {
  const { name, task, leader, intervalMs, logger } = deps;
  let timer: NodeJS.Timeout | null = null;
  let current: Promise<void> = Promise.resolve();
  let active = false;

  const clear = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  const schedule = (delay: number) => {
    clear();
    if (!active) return;
    timer = setTimeout(() => {
      timer = null;
      current = runOnce().finally(() => schedule(intervalMs));
    }, delay);
    timer.unref?.();
  };
  async function runOnce() {
    if (!active || !leader.isLeader()) return;
    try {
      await task();
    } catch (err) {
      logger.error({ err: err instanceof Error ? err.message : String(err) }, `${name} failed`);
    }
  }

  return {
    start() {
      leader.start(
        () => {
          active = true;
          schedule(0);
        },
        () => {
          active = false;
          clear();
        },
      );
    },
    async stop() {
      active = false;
      clear();
      await current;
      await leader.stop();
    },
  };
}
