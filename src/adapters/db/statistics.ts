import type { Logger } from '../../platform/logger.js';
import type { Database } from './port.js';

const TABLES = ['memory_nodes', 'jobs', 'audit_events'];

/**
 * Keeps planner statistics fresh where nothing else does. PGlite runs no autovacuum (and its
 * cumulative statistics are not flushed, so n_mod_since_analyze stays 0); without statistics the
 * planner picks plans ten times slower at 50k rows (an agent_id index scan over the whole division
 * instead of the vector_key lookup). So: analyse at start, then whenever the number of memories
 * ever written (the vector_key sequence) grew by 10 % (at least 500) since the last analysis.
 * The PostgreSQL server's autovacuum does this itself, so this only runs for PGlite, or for a
 * server whose autovacuum is off. `refresh()` is the check at start; `start()` schedules it.
 */
export function createStatisticsKeeper(deps: { db: Database; logger: Logger; intervalMs: number }) {
  const { db, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let analysedAt = -1;

  async function written(): Promise<number> {
    const res = await db.query<{ n: number }>(
      'SELECT last_value::int8 AS n FROM memory_nodes_vector_key_seq',
    );
    return Number(res.rows[0]?.n ?? 0);
  }

  async function analyseIfGrown() {
    const now = await written();
    if (analysedAt >= 0 && now - analysedAt < Math.max(500, analysedAt / 10)) return;
    const started = performance.now();
    // pgvector's table exists once the index adapter created it; without statistics its filtered
    // searches took 41 ms instead of 1.6 ms at 10k rows (BENCHMARKS.md).
    const vectors = await db.query<{ t: string | null }>("SELECT to_regclass('vector_entries')::text AS t");
    const tables = vectors.rows[0]?.t ? [...TABLES, 'vector_entries'] : TABLES;
    for (const table of tables) await db.exec(`ANALYZE ${table}`);
    analysedAt = now;
    logger.debug({ rows: now, ms: Math.round(performance.now() - started) }, 'tables analysed');
  }

  // PGlite, or a server whose autovacuum is off (then nothing analyses a bulk-loaded table: on
  // such a server, keyword and vector search at 100k memories took 60-150 ms for want of plans).
  let needed = db.engine === 'pglite';

  return {
    /** Analyses now if the tables grew enough (at start, before the first queries). */
    async refresh() {
      if (!needed) {
        const res = await db.query<{ on: string }>("SELECT current_setting('autovacuum') AS on");
        needed = res.rows[0]?.on !== 'on';
      }
      if (needed) await analyseIfGrown();
    },
    /** Checks every `intervalMs` from now on, until `stop()`. */
    start() {
      if (!needed || timer) return;
      timer = setInterval(() => {
        if (running) return;
        running = analyseIfGrown()
          .catch((err) => logger.warn({ err }, 'analysing tables failed'))
          .finally(() => {
            running = undefined;
          });
      }, deps.intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}

export type StatisticsKeeper = ReturnType<typeof createStatisticsKeeper>;
