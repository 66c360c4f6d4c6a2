import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import { copyStatement } from './copy.js';
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
  /** TLS to the server (src/adapters/db/tls.ts builds it from the settings); unset: plain. */
  ssl?: false | ConnectionOptions;
  /** The sslmode `ssl` was built for, named in a failed first connection's error. */
  sslMode?: string;
}

export async function openPostgres(opts: PostgresOptions): Promise<Database> {
  const clientConfig: pg.ClientConfig = {
    connectionString: opts.url,
    types,
    // JIT off: our queries are short (a few ms), and JIT compiles a plan whose estimated cost
    // passes jit_above_cost, which stale statistics after a bulk load make common. Measured at
    // 100k memories: the pending count of every search took 400 ms of compilation for 3 ms of
    // execution (BENCHMARKS.md notes), so searches went from ~10 ms to ~200 ms.
    options: [opts.schema ? `-c search_path=${opts.schema},public` : '', '-c jit=off']
      .filter(Boolean)
      .join(' '),
    ...(opts.ssl !== undefined ? { ssl: opts.ssl } : {}),
  };
  const pool = new pg.Pool({ ...clientConfig, max: opts.max ?? 10 });
  // An idle pooled connection that the server closes (failover, restart, pg_terminate_backend)
  // makes the pool emit 'error'; unhandled, that event would crash the process. The pool has
  // already dropped that client, and the next query opens a new connection.
  pool.on('error', () => undefined);
  const locks = createLockSession(clientConfig);
  const lockKey = schemaLockKey(opts.schema);
  // Fail at start, with the driver's message, rather than on the first request.
  try {
    const probe = await pool.connect();
    try {
      // A schema that does not exist would leave `public` first on the search_path: migrations
      // and every write would silently land there.
      if (opts.schema) {
        const found = await probe.query('SELECT to_regnamespace($1) IS NOT NULL AS ok', [opts.schema]);
        if (!found.rows[0]?.ok) throw new MissingSchemaError(opts.schema);
      }
    } finally {
      probe.release();
    }
  } catch (err) {
    if (err instanceof MissingSchemaError) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    await pool.end().catch(() => undefined);
    if (!opts.sslMode) throw err;
    // A certificate that does not verify surfaces as a bare TLS message; say where it came from.
    throw new Error(`PostgreSQL connection (sslmode=${opts.sslMode}) failed: ${(err as Error).message}`, {
      cause: err,
    });
  }

  const wrap = (q: pg.Pool | pg.PoolClient | pg.Client): Queryable => ({
    async query<Row>(text: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const name = preparedName(text, params);
      const res = await q.query(
        name === undefined
          ? { text, values: params as unknown[] }
          : { name, text, values: params as unknown[] },
      );
      return { rows: res.rows as Row[], rowCount: res.rowCount ?? 0 };
    },
    async exec(script: string) {
      await q.query(script);
    },
    async copyFrom(table, columns, data) {
      // COPY needs one connection for its whole stream: the transaction's, or one of the pool's.
      if (!(q instanceof pg.Pool)) return copyOn(q, table, columns, data);
      const client = await q.connect();
      try {
        return await copyOn(client, table, columns, data);
      } finally {
        client.release();
      }
    },
  });
  let pgvector: boolean | undefined;
  return {
    engine: 'postgres',
    singleProcess: false,
    query: wrap(pool).query,
    exec: wrap(pool).exec,
    copyFrom: wrap(pool).copyFrom,
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
      // A connection of its own, outside the query pool: sessions held for long (leader
      // elections) must never take the connections queries need.
      const client = new pg.Client(clientConfig);
      // A reserved session may die (server restart, pg_terminate_backend); its queries then fail
      // and the holder reacts. Without a listener the error event would crash the process.
      client.on('error', () => undefined);
      await client.connect();
      return {
        ...wrap(client),
        // Ending the session ends its session state (advisory locks) with it.
        release: () => client.end().catch(() => undefined),
      };
    },
    withExclusiveLock: (key, fn) => locks.withLock(lockKey(key), fn),
    lockKey,
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
    async close() {
      await locks.close();
      await pool.end();
    },
  };
}

/**
 * Installations that share one database in different schemas (tests do) keep their own lock
 * namespace: a key is moved into a block derived from the schema. Without a schema the key is
 * used as it is, so processes of one installation always agree on it.
 */
function schemaLockKey(schema: string | undefined): (key: number) => number {
  if (!schema) return (key) => key;
  // 21 bits of the schema's digest above 2^31 (our keys are below it) stay below 2^53.
  const block = (createHash('sha256').update(schema).digest().readUInt32BE(0) & 0x1fffff) + 1;
  return (key) => block * 2 ** 31 + key;
}

/**
 * Session-level advisory locks on one connection of their own, opened on first use and kept:
 * a lock held while `fn` runs must not occupy a pooled connection that `fn` itself (or the
 * process's other work) needs, and opening a connection per call would cost a server process
 * per call. Session locks are re-entrant per session, so the keys held in this process are also
 * kept here: a second caller for a held key is turned away like another process would be.
 */
function createLockSession(config: pg.ClientConfig) {
  let session: Promise<pg.Client> | undefined;
  const held = new Set<number>();

  function connect(): Promise<pg.Client> {
    if (!session) {
      const client = new pg.Client(config);
      const opened = client.connect().then(() => client);
      session = opened;
      const drop = () => {
        if (session === opened) session = undefined;
      };
      // A dropped session has released its locks on the server; the next caller opens another.
      client.on('error', drop);
      client.on('end', drop);
      opened.catch(drop);
    }
    return session;
  }

  return {
    async withLock<T>(key: number, fn: () => Promise<T>): Promise<T | undefined> {
      if (held.has(key)) return undefined;
      held.add(key);
      try {
        const client = await connect();
        const res = await client.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [key]);
        if (!res.rows[0]?.locked) return undefined;
        try {
          return await fn();
        } finally {
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch(() => undefined);
        }
      } finally {
        held.delete(key);
      }
    },
    async close() {
      const s = session;
      session = undefined;
      if (s) await s.then((c) => c.end()).catch(() => undefined);
    },
  };
}

/** Streams COPY text to the server on one connection; resolves to the rows loaded. */
async function copyOn(
  client: pg.PoolClient | pg.Client,
  table: string,
  columns: readonly string[],
  data: string,
): Promise<number> {
  const stream = client.query(copyFromStdin(copyStatement(table, columns, 'STDIN')));
  await pipeline(Readable.from([Buffer.from(data, 'utf8')]), stream);
  return stream.rowCount ?? 0;
}

class MissingSchemaError extends Error {
  constructor(schema: string) {
    super(
      `DATABASE_SCHEMA: schema ${schema} does not exist; create it (CREATE SCHEMA ${schema}) or unset DATABASE_SCHEMA`,
    );
    this.name = 'MissingSchemaError';
  }
}

/** Statements prepared by name on every connection that runs them (see preparedName). */
const PREPARED_MAX = 512;
const PREPARED_MAX_TEXT = 8_000;
const prepared = new Map<string, string>();

/**
 * A name under which each connection prepares this statement once and then only binds and runs
 * it: the server skips parsing and, once a generic plan proves as cheap as the custom ones, planning
 * too. Searches send the same few statements thousands of times a second. Only statements with
 * parameters (the service's own; scripts and DDL run unprepared), at most PREPARED_MAX texts per
 * process (each connection keeps what it prepared), none longer than PREPARED_MAX_TEXT.
 */
function preparedName(text: string, params: readonly unknown[]): string | undefined {
  if (params.length === 0 || text.length > PREPARED_MAX_TEXT) return undefined;
  const known = prepared.get(text);
  if (known !== undefined || prepared.size >= PREPARED_MAX) return known;
  const name = `ml_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
  prepared.set(text, name);
  return name;
}
