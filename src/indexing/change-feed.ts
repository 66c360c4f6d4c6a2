import type { Queryable } from '../adapters/db/port.js';

/**
 * The change feed of memory_nodes (migrations/006_change_feed.sql). Every insert or update stamps
 * the row with `change_seq` (the next value of one sequence: the version of the row) and
 * `change_xid` (the id of the transaction that wrote it). A process holding derived data in memory
 * (the keyword index; replicas' vector indexes) catches up by reading what changed since it last
 * looked, applying each row version once.
 *
 * Why transaction ids and not only the sequence: a value is taken before its transaction commits,
 * so a later value can become visible first, and reading `change_seq > highest seen` would skip the
 * row of a transaction still running — a batch of 1,000 memories or a re-embedding switch can run
 * for seconds, so no fixed delay is safe. PostgreSQL says instead which transactions may still
 * commit: every transaction with an id below the snapshot's xmin has ended. So a reader asks for
 * the rows written by transactions from `fromXid` on, and afterwards moves `fromXid` to the xmin of
 * its read: rows of older transactions were all visible to that read. The rows of recent
 * transactions it already applied are skipped by their change_seq, so the window of transactions
 * still settling (normally empty, since xmin passes a transaction as soon as it ends) is not read
 * twice.
 */

/** change_seq values a reader already applied, [lo, hi], with the highest writer id among them. */
export interface AppliedRange {
  lo: number;
  hi: number;
  maxXid: number;
}

export interface FeedPosition {
  /** Rows written by transactions with this id or later. */
  fromXid: number;
  /** Only rows after this (change_xid, change_seq), to page through one catch-up. */
  after?: { xid: number; seq: number };
  /** Row versions not to send again. */
  skip: readonly AppliedRange[];
}

export interface FeedRow {
  change_seq: number;
  change_xid: number;
}

export interface FeedPage<Row> {
  /** Changed rows in (change_xid, change_seq) order. */
  rows: (Row & FeedRow)[];
  /** True when `limit` rows came back: there may be more. */
  more: boolean;
  /** The xmin of the read's snapshot: every transaction with a lower id had ended. */
  xmin: number;
  /** Advanced by `memory-layer index rebuild`: data derived before a change is rebuilt. */
  generation: number;
}

/**
 * One read of the feed: the rows at or after the position, at most `limit`, with the columns
 * `columns` (a constant select list over memory_nodes `n`, never caller input). One statement, so
 * the xmin reported is the one of the snapshot the rows were read in.
 */
export async function changesSince<Row>(
  db: Queryable,
  position: FeedPosition,
  limit: number,
  columns: string,
): Promise<FeedPage<Row>> {
  const after = position.after ?? { xid: position.fromXid, seq: -1 };
  const res = await db.query<
    Row & { change_seq: number | null; change_xid: number; xmin: number; generation: number }
  >(
    `WITH s AS (
       SELECT pg_snapshot_xmin(pg_current_snapshot())::text::float8 AS xmin,
              (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM derived_index_generation)::float8 AS generation)
     SELECT s.xmin, s.generation, c.* FROM s LEFT JOIN LATERAL (
       SELECT n.change_seq::float8 AS change_seq, n.change_xid::text::float8 AS change_xid, ${columns}
       FROM memory_nodes n
       WHERE n.change_xid >= $1::text::xid8 AND (n.change_xid, n.change_seq) > ($2::text::xid8, $3::bigint)
         AND NOT EXISTS (SELECT 1 FROM unnest($4::bigint[], $5::bigint[]) AS r(lo, hi)
                         WHERE n.change_seq BETWEEN r.lo AND r.hi)
       ORDER BY n.change_xid, n.change_seq
       LIMIT $6) c ON true`,
    [
      String(position.fromXid),
      String(after.xid),
      after.seq,
      position.skip.map((r) => r.lo),
      position.skip.map((r) => r.hi),
      limit,
    ],
  );
  const first = res.rows[0];
  const rows = res.rows.filter((r) => r.change_seq !== null) as (Row & FeedRow)[];
  for (const r of rows) {
    r.change_seq = Number(r.change_seq);
    r.change_xid = Number(r.change_xid);
  }
  return { rows, more: rows.length >= limit, xmin: Number(first.xmin), generation: Number(first.generation) };
}

/** Advances the generation: every process rebuilds its derived data from the rows. */
export async function requestRebuild(db: Queryable): Promise<number> {
  const res = await db.query<{ generation: number }>(
    "SELECT nextval('derived_index_generation')::float8 AS generation",
  );
  return Number(res.rows[0].generation);
}

/** Merges applied row versions into ranges of consecutive change_seq values. */
function toRanges(applied: readonly FeedRow[]): AppliedRange[] {
  const sorted = [...applied].sort((a, b) => a.change_seq - b.change_seq);
  const ranges: AppliedRange[] = [];
  for (const r of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && r.change_seq <= last.hi + 1) {
      last.hi = Math.max(last.hi, r.change_seq);
      last.maxXid = Math.max(last.maxXid, r.change_xid);
    } else ranges.push({ lo: r.change_seq, hi: r.change_seq, maxXid: r.change_xid });
  }
  return ranges;
}

/**
 * A reader of the feed that remembers where it stands. `read(apply)` pages through everything
 * changed since the last read and hands each page to `apply` (which must be idempotent per row
 * version: a row may come again after a rebuild of the reader, never an older version after a
 * newer one), then moves the position. Not reentrant: callers serialise reads.
 */
export function createChangeFeed<Row>(db: Queryable, opts: { columns: string; pageSize: number }) {
  let fromXid = 0;
  /** Row versions applied whose transactions may not all be below fromXid yet. */
  let recent: FeedRow[] = [];
  let skip: AppliedRange[] = [];

  return {
    get fromXid() {
      return fromXid;
    },
    /** Reads every change since the last read; the generation and the number of rows read. */
    async read(apply: (rows: (Row & FeedRow)[]) => void | Promise<void>) {
      let after: FeedPosition['after'];
      let xmin: number | undefined;
      let generation = 0;
      let count = 0;
      for (;;) {
        const page = await changesSince<Row>(db, { fromXid, after, skip }, opts.pageSize, opts.columns);
        // The first read's snapshot is the oldest: transactions below its xmin had ended before
        // any page was read, so all their rows were visible to every page.
        xmin ??= page.xmin;
        generation = page.generation;
        if (page.rows.length > 0) {
          await apply(page.rows);
          count += page.rows.length;
          for (const r of page.rows) recent.push({ change_seq: r.change_seq, change_xid: r.change_xid });
          const last = page.rows[page.rows.length - 1];
          after = { xid: last.change_xid, seq: last.change_seq };
        }
        if (!page.more) break;
      }
      fromXid = Math.max(fromXid, xmin);
      recent = recent.filter((r) => r.change_xid >= fromXid);
      skip = toRanges(recent);
      return { generation, rows: count };
    },
  };
}

export type ChangeFeed<Row> = ReturnType<typeof createChangeFeed<Row>>;
