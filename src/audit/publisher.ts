import type { Database, Queryable } from '../adapters/db/port.js';
import { LOCK_KEYS } from '../platform/locks.js';
import type { Logger } from '../platform/logger.js';
import { AUDIT_EVENT_COLUMNS, type AuditEventRow, toAuditEvent } from './audit-log.js';
import type { AuditEvent } from './types.js';

/**
 * Where audit events go for archiving (a queue). Delivery is at least once: a consumer that must
 * not see duplicates keys on (divisionId, seq).
 */
export interface AuditSink {
  /** Resolves once the sink holds every event (e.g. acknowledged by the server); throws otherwise. */
  publish(events: AuditEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** AUDIT_SINK=none: events count as published (the outbox is emptied; the chain stays in the database). */
export function createNoopSink(): AuditSink {
  return { publish: async () => undefined, close: async () => undefined };
}

/** Logs each event's chain position and action (events never carry memory text). */
export function createLogSink(logger: Logger): AuditSink {
  return {
    async publish(events) {
      for (const e of events) {
        logger.info(
          {
            audit: {
              divisionId: e.divisionId,
              seq: e.seq,
              action: e.action,
              actor: e.actor,
              resourceType: e.resourceType,
              resourceId: e.resourceId,
              hash: e.hash,
            },
          },
          'audit event',
        );
      }
    },
    close: async () => undefined,
  };
}

export interface PublishResult {
  published: number;
  failed: number;
  /** Another replica holds the publishing lock. */
  skipped?: boolean;
  /** Outbox rows whose event was deleted from the database (logged as an error, then dropped). */
  missing?: number;
}

const MAX_ERROR_LENGTH = 1000;

/** An outbox row and its event's columns (all null when the event is gone). */
type OutboxRow = { [K in keyof AuditEventRow]: AuditEventRow[K] | null } & {
  outbox_id: number | string;
  outbox_division_id: string;
  outbox_seq: number | string;
};

/**
 * Drains `audit_outbox` (written with each event, in its transaction) into the sink, oldest first.
 * Rows are deleted only after the sink accepted them; a failure keeps them, counting attempts and
 * keeping the last error, so no event is ever lost. A batch is published while holding the
 * exclusive lock `auditPublish`, so that replicas do not publish the same rows (one publisher at a
 * time keeps the order of the stream); a replica that finds it held skips its turn.
 */
export function createAuditPublisher(deps: {
  db: Database;
  sink: AuditSink;
  logger: Logger;
  batch?: number;
}) {
  const { db, sink, logger } = deps;
  const batch = deps.batch ?? 500;
  let running: Promise<PublishResult> | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function drainBatch(q: Queryable): Promise<PublishResult> {
    const columns = AUDIT_EVENT_COLUMNS.split(', ')
      .map((c) => `e.${c}`)
      .join(', ');
    const res = await q.query<OutboxRow>(
      `SELECT o.id AS outbox_id, o.division_id AS outbox_division_id, o.seq AS outbox_seq, ${columns}
       FROM audit_outbox o LEFT JOIN audit_events e ON e.division_id = o.division_id AND e.seq = o.seq
       ORDER BY o.id LIMIT $1`,
      [batch],
    );
    if (res.rows.length === 0) return { published: 0, failed: 0 };
    // The event and its outbox row are written in one transaction: a row without its event means
    // the event was deleted from the database. Say so loudly, and do not let it block the outbox.
    const orphans = res.rows.filter((r) => r.hash === null);
    if (orphans.length > 0) {
      logger.error(
        { events: orphans.map((r) => ({ divisionId: r.outbox_division_id, seq: Number(r.outbox_seq) })) },
        'audit events missing from the database (deleted after they were written): the chain is broken',
      );
      await q.query('DELETE FROM audit_outbox WHERE id = ANY($1::bigint[])', [
        orphans.map((r) => Number(r.outbox_id)),
      ]);
    }
    const rows = res.rows.filter((r): r is OutboxRow & AuditEventRow => r.hash !== null);
    if (rows.length === 0) return { published: 0, failed: 0, missing: orphans.length };
    const ids = rows.map((r) => Number(r.outbox_id));
    try {
      await sink.publish(rows.map(toAuditEvent));
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH);
      await q.query(
        'UPDATE audit_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[])',
        [ids, message],
      );
      logger.warn({ err: message, events: ids.length }, 'audit events not published; kept in the outbox');
      return { published: 0, failed: ids.length, ...(orphans.length ? { missing: orphans.length } : {}) };
    }
    await q.query('DELETE FROM audit_outbox WHERE id = ANY($1::bigint[])', [ids]);
    return { published: ids.length, failed: 0, ...(orphans.length ? { missing: orphans.length } : {}) };
  }

  async function once(): Promise<PublishResult> {
    // Not in a transaction: on PGlite it would block every other query while the sink works. Rows
    // are deleted only once the sink accepted them, so a crash in between publishes them again.
    const result = await db.withExclusiveLock(LOCK_KEYS.auditPublish, () => drainBatch(db));
    return result ?? { published: 0, failed: 0, skipped: true };
  }

  const publisher = {
    /** Publishes one batch of the oldest outbox rows. Calls do not overlap. */
    runOnce(): Promise<PublishResult> {
      running ??= once().finally(() => {
        running = undefined;
      });
      return running;
    },

    /** Publishes until the outbox is empty or a batch fails. */
    async drain(): Promise<PublishResult> {
      const total: PublishResult = { published: 0, failed: 0 };
      for (;;) {
        const r = await publisher.runOnce();
        total.published += r.published;
        total.failed += r.failed;
        if (r.missing) total.missing = (total.missing ?? 0) + r.missing;
        if (r.published + (r.missing ?? 0) < batch || r.failed > 0 || r.skipped) return total;
      }
    },

    /** Drains the outbox every `intervalMs` until stopped. */
    start(intervalMs: number) {
      if (timer) return;
      const tick = () => {
        publisher
          .drain()
          .catch((err: unknown) => logger.error({ err }, 'audit publisher failed'))
          .finally(() => {
            if (timer) timer = setTimeout(tick, intervalMs);
          });
      };
      timer = setTimeout(tick, intervalMs);
    },

    /** Stops the timer, waits for a batch in flight and closes the sink. */
    async stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running?.catch(() => undefined);
      await sink.close();
    },
  };
  return publisher;
}
