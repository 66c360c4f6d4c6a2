import { join } from 'node:path';
import { openPglite } from './pglite.js';
import type { Database } from './port.js';
import { openPostgres } from './postgres.js';
import { type PostgresTlsSettings, postgresConnection } from './tls.js';

export type { Database, Queryable, QueryResult } from './port.js';

/** One factory picks the database from config: a PostgreSQL server when a URL is given, else PGlite. */
export async function openDatabase(opts: {
  databaseUrl?: string;
  dataDir?: string;
  schema?: string;
  /** DATABASE_SSLMODE and the certificate files (src/adapters/db/tls.ts). */
  tls?: Omit<PostgresTlsSettings, 'DATABASE_URL'>;
}): Promise<Database> {
  if (opts.databaseUrl) {
    const { url, ssl, mode } = postgresConnection({ ...opts.tls, DATABASE_URL: opts.databaseUrl });
    return openPostgres({ url, schema: opts.schema, ssl, sslMode: mode });
  }
  return openPglite(opts.dataDir === undefined ? undefined : join(opts.dataDir, 'pglite'));
}
