/**
 * The whole database port: run one parameterised statement, or several inside a transaction.
 * Small on purpose (as pg-boss does) so that PGlite and a `pg.Pool` are each a few lines.
 */
export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface Queryable {
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /**
   * Loads rows given in COPY text format (src/adapters/db/copy.ts builds it) into `table`: the
   * bulk path, several times faster than INSERT for thousands of rows. Returns the rows loaded.
   * Triggers, defaults and generated columns apply as for INSERT.
   */
  copyFrom(table: string, columns: readonly string[], data: string): Promise<number>;
}

export interface Database extends Queryable {
  /**
   * Which engine this is, to record (snapshot manifests, start-up log). Code outside the adapters
   * must not branch on it: the port offers the capability instead (`singleProcess`, `reserve`,
   * `hasPgvector`).
   */
  readonly engine: 'pglite' | 'postgres';
  /**
   * True when this process is the only one that can use the database (embedded PGlite: one
   * session, owned by the process). A lease held by anything but this process is then stale.
   */
  readonly singleProcess: boolean;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * A connection of one's own, kept until released, outside the pool queries use: session-level
   * state such as advisory locks (leader election) lives on it. PGlite has a single session
   * shared by the process.
   */
  reserve(): Promise<Queryable & { release(): Promise<void> }>;
  /**
   * Runs `fn` while holding the process-wide exclusive lock `key` (one of `LOCK_KEYS`), released
   * when `fn` settles; resolves to undefined, without running `fn`, when another holder has it.
   * It never waits: a caller that must wait retries. PostgreSQL: a session-level advisory lock on
   * a connection of its own, so other processes are excluded too; PGlite, which one process owns:
   * an in-process lock per key.
   */
  withExclusiveLock<T>(key: number, fn: () => Promise<T>): Promise<T | undefined>;
  /**
   * This database's number for a service lock key (one of `LOCK_KEYS`), for advisory locks taken
   * on a reserved session: installations sharing one database in different schemas get their
   * own numbers, so they never exclude each other. `withExclusiveLock` applies it itself.
   */
  lockKey(key: number): number;
  /** True when the pgvector extension is installed or can be created. */
  hasPgvector(): Promise<boolean>;
  close(): Promise<void>;
}
