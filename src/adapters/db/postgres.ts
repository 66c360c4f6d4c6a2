import pg from 'pg';
import type { Database, Queryable, QueryResult } from './port.js';

const INT8_OID = 20;

/**
 * The type parsers of our pools (not the driver's global ones, which other code in the process may
 * rely on): int8 (count(*), bigserial keys) as JS strings would leak into every caller; these stay
 * well below 2^53 in practice, so they are parsed as numbers.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number.parseInt(v, 10)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PostgresOptions {
  url: string;
  /** Schema placed first on the search_path of every connection (tests isolate themselves this way). */
  schema?: string;
  max?: number;
}

export async function openPostgres(opts: PostgresOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    types,
    options: opts.schema ? `-c search_path=${opts.schema},public` : undefined,
  });
  // An idle pooled connection that the server closes (failover, restart, pg_terminate_backend)
  // makes the pool emit 'error'; unhandled, that event would crash the process. The pool has
  // already dropped that client, and the next query opens a new connection.
  pool.on('error', () => undefined);
  // Fail at start, with the driver's message, rather than on the first request.
  const probe = await pool.connect();
  probe.release();

  const wrap = (q: Pick<pg.Pool, 'query'> | pg.PoolClient): Queryable => ({
    async query<Row>(text: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const res = await q.query(text, params as unknown[]);
      return { rows: res.rows as Row[], rowCount: res.rowCount ?? 0 };
    },
    async exec(script: string) {
      await q.query(script);
    },
  });
  let pgvector: boolean | undefined;
  return {
    engine: 'postgres',
    singleProcess: false,
    query: wrap(pool).query,
    exec: wrap(pool).exec,
    async transaction(fn) {
      const client = await pool.connect();
      // The pool listens for errors only on idle clients: a connection dropped mid-transaction
      // (failover, pg_terminate_backend) would emit an unhandled 'error' and crash the process.
      // The failing query rejects anyway; the broken client is destroyed, not pooled again.
      let broken: Error | undefined;
      const onError = (err: Error) => {
        broken = err;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    async reserve() {
      const client = await pool.connect();
      // A reserved session may die (server restart, pg_terminate_backend); its queries then fail
      // and the holder reacts. Without a listener the error event would crash the process.
      const onError = () => undefined;
      client.on('error', onError);
      return {
        ...wrap(client),
        // Destroy rather than return it to the pool, so session state (advisory locks) ends with it.
        release: async () => {
          client.off('error', onError);
          client.release(true);
        },
      };
    },
    async withExclusiveLock(key, fn) {
      const client = await pool.connect();
      const onError = () => undefined;
      client.on('error', onError);
      // Only a session known to hold no lock goes back to the pool; any other is destroyed, and
      // its session-level lock ends with it.
      let clean = false;
      try {
        const res = await client.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [key]);
        if (!res.rows[0]?.locked) {
          clean = true;
          return undefined;
        }
        try {
          return await fn();
        } finally {
          const unlocked = await client
            .query('SELECT pg_advisory_unlock($1::bigint) AS unlocked', [key])
            .catch(() => undefined);
          clean = unlocked?.rows[0]?.unlocked === true;
        }
      } finally {
        client.off('error', onError);
        client.release(clean ? undefined : true);
      }
    },
    async hasPgvector() {
      if (pgvector === undefined) {
        const res = await pool.query(
          "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'vector') AS installed, (SELECT count(*) FROM pg_available_extensions WHERE name = 'vector') AS available",
        );
        const row = res.rows[0] as { installed: number; available: number };
        pgvector = row.installed > 0 || row.available > 0;
      }
      return pgvector;
    },
    close: () => pool.end(),
  };
}
