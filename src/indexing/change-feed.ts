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
 *
 * Rows travel packed, one JSON array of text per row: PGlite's protocol layer spends most of a
 * large read decoding fields one by one, and one field a row read several times faster.
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

/** A changed row: its version, its writer, its key, and the values of the reader's columns. */
export interface FeedRow {
  seq: number;
  xid: number;
  key: number;
  values: unknown[];
}

export interface FeedPage {
  /** Changed rows in (change_xid, change_seq) order (key order for a first read). */
  rows: FeedRow[];
  /** True when `limit` rows came back: there may be more. */
  more: boolean;
  /** The xmin of the read's snapshot: every transaction with a lower id had ended. */
  xmin: number;
  /** Advanced by `memory-layer index rebuild`: data derived before a change is rebuilt. */
  generation: number;
}

const SNAPSHOT = `SELECT json_build_object(
    'xmin', pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
    'generation', (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM derived_index_generation))::text AS r`;

/** One JSON array per row: change_seq, change_xid, vector_key, then the columns (SQL expressions over `n`). */
const packed = (columns: readonly string[]) =>
  `json_build_array(n.change_seq, n.change_xid::text::bigint, n.vector_key${columns.map((c) => `, ${c}`).join('')})::text AS r`;

/** Splits a statement's rows into the snapshot object and the changed rows (no order assumed). */
function toPage(raw: { r: string }[], limit: number): FeedPage {
  let snapshot = { xmin: 0, generation: 0 };
  const rows: FeedRow[] = [];
  for (const { r } of raw) {
    const value = JSON.parse(r) as unknown;
    if (Array.isArray(value)) {
      rows.push({
        seq: Number(value[0]),
        xid: Number(value[1]),
        key: Number(value[2]),
        values: value.slice(3),
      });
    } else snapshot = value as typeof snapshot;
  }
  return {
    rows,
    more: rows.length >= limit,
    xmin: Number(snapshot.xmin),
    generation: Number(snapshot.generation),
  };
}

/**
 * One read of the feed: the rows at or after the position, at most `limit`, with `columns`
 * (constant SQL expressions over memory_nodes `n`, never caller input; none to list the changes
 * only). One statement, so the xmin reported is the one of the snapshot the rows were read in;
 * clauses that would not filter anything are left out (planning is most of the cost of a read
 * that finds nothing).
 */
export async function changesSince(
  db: Queryable,
  position: FeedPosition,
  limit: number,
  columns: readonly string[] = [],
): Promise<FeedPage> {
  const params: unknown[] = [String(position.fromXid), limit];
  const where = ['n.change_xid >= $1::text::xid8'];
  if (position.after) {
    params.push(String(position.after.xid), position.after.seq);
    where.push(
      `(n.change_xid, n.change_seq) > ($${params.length - 1}::text::xid8, $${params.length}::bigint)`,
    );
  }
  if (position.skip.length > 0) {
    params.push(
      position.skip.map((r) => r.lo),
      position.skip.map((r) => r.hi),
    );
    where.push(`NOT EXISTS (SELECT 1 FROM unnest($${params.length - 1}::bigint[], $${params.length}::bigint[]) AS r(lo, hi)
      WHERE n.change_seq BETWEEN r.lo AND r.hi)`);
  }
  const res = await db.query<{ r: string }>(
    `${SNAPSHOT} UNION ALL (SELECT ${packed(columns)} FROM memory_nodes n
       WHERE ${where.join(' AND ')} ORDER BY n.change_xid, n.change_seq LIMIT $2)`,
    params,
  );
  return toPage(res.rows, limit);
}

/**
 * A first read, from nothing: every row in key order (the unique key index pages it cheaply, where
 * (change_xid, change_seq) order over the whole table would sort it for every page).
 */
async function rowsAfterKey(db: Queryable, afterKey: number, limit: number, columns: readonly string[]) {
  const res = await db.query<{ r: string }>(
    `${SNAPSHOT} UNION ALL (SELECT ${packed(columns)} FROM memory_nodes n
       WHERE n.vector_key > $1 ORDER BY n.vector_key LIMIT $2)`,
    [afterKey, limit],
  );
  return toPage(res.rows, limit);
}

/** The current rows of these keys (their latest versions, which may be newer than the feed said). */
export async function currentRows(db: Queryable, keys: readonly number[], columns: readonly string[]) {
  const res = await db.query<{ r: string }>(
    `SELECT ${packed(columns)} FROM memory_nodes n WHERE n.vector_key = ANY($1::bigint[]) ORDER BY n.change_seq`,
    [keys],
  );
  return toPage(res.rows, Number.POSITIVE_INFINITY).rows;
}

/**
 * Where the feed stands now: the xmin of a fresh snapshot (every transaction below it has ended)
 * and the rebuild generation. Data built from the rows after this call holds every change of
 * transactions below `xmin`, so a feed started at it misses nothing.
 */
export async function feedSnapshot(db: Queryable): Promise<{ xmin: number; generation: number }> {
  const res = await db.query<{ r: string }>(SNAPSHOT);
  const value = JSON.parse(res.rows[0].r) as { xmin: number; generation: number };
  return { xmin: Number(value.xmin), generation: Number(value.generation) };
}

/** Advances the generation: every process rebuilds its derived data from the rows. */
export async function requestRebuild(db: Queryable): Promise<number> {
  const res = await db.query<{ generation: number }>(
    "SELECT nextval('derived_index_generation')::float8 AS generation",
  );
  return Number(res.rows[0].generation);
}

/** Merges applied row versions into ranges of consecutive change_seq values. */
function toRanges(applied: readonly { seq: number; xid: number }[]): AppliedRange[] {
  const sorted = [...applied].sort((a, b) => a.seq - b.seq);
  const ranges: AppliedRange[] = [];
  for (const r of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && r.seq <= last.hi + 1) {
      last.hi = Math.max(last.hi, r.seq);
      last.maxXid = Math.max(last.maxXid, r.xid);
    } else ranges.push({ lo: r.seq, hi: r.seq, maxXid: r.xid });
  }
  return ranges;
}

/**
 * A reader of the feed that remembers where it stands. `read(apply)` pages through everything
 * changed since the last read and hands each page to `apply` (which must be idempotent per row
 * version: a row may come again, or come newer than the feed listed it, but never older than a
 * version already handed over), then moves the position. The first read takes every row, in key
 * order. With `probe`, a later page first lists the changed keys only and their rows are read when
 * there are any: a read that finds nothing — most reads, before a search — then costs one small
 * statement. Not reentrant: callers serialise reads.
 */
export function createChangeFeed(
  db: Queryable,
  opts: {
    columns: readonly string[];
    pageSize: number;
    /**
     * Start from this position instead of reading every row first: a reader whose derived data
     * already holds every change of transactions below it (saved beside the data, or the xmin of
     * `feedSnapshot` taken before a rebuild). Rows read again are applied again (idempotently).
     */
    fromXid?: number;
  },
) {
  let fromXid = opts.fromXid ?? 0;
  /** Row versions applied whose transactions may not all be below fromXid yet. */
  let recent: { seq: number; xid: number }[] = [];
  let skip: AppliedRange[] = [];

  return {
    get fromXid() {
      return fromXid;
    },
    /** Reads every change since the last read; the generation and the number of rows read. */
    async read(apply: (rows: FeedRow[]) => void | Promise<void>, read: { probe?: boolean } = {}) {
      let after: FeedPosition['after'];
      let xmin: number | undefined;
      let generation = 0;
      let count = 0;
      const first = fromXid === 0;
      const probe = read.probe === true && !first;
      for (;;) {
        const page = first
          ? await rowsAfterKey(db, after?.seq ?? 0, opts.pageSize, opts.columns)
          : await changesSince(db, { fromXid, after, skip }, opts.pageSize, probe ? [] : opts.columns);
        // The first read's snapshot is the oldest: transactions below its xmin had ended before
        // any page was read, so all their rows were visible to every page.
        xmin ??= page.xmin;
        generation = page.generation;
        if (page.rows.length > 0) {
          const rows = probe
            ? await currentRows(
                db,
                page.rows.map((r) => r.key),
                opts.columns,
              )
            : page.rows;
          await apply(rows);
          count += rows.length;
          for (const r of page.rows) recent.push({ seq: r.seq, xid: r.xid });
          const last = page.rows[page.rows.length - 1];
          // A first read pages by key (kept in `seq`), later ones by (change_xid, change_seq).
          after = first ? { xid: 0, seq: last.key } : { xid: last.xid, seq: last.seq };
        }
        if (!page.more) break;
      }
      fromXid = Math.max(fromXid, xmin);
      recent = recent.filter((r) => r.xid >= fromXid);
      skip = toRanges(recent);
      return { generation, rows: count };
    },
  };
}

export type ChangeFeed = ReturnType<typeof createChangeFeed>;
