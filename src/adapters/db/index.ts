import { join } from 'node:path';
import { openPglite } from './pglite.js';
import type { Database } from './port.js';
import { openPostgres } from './postgres.js';

export type { Database, Queryable, QueryResult } from './port.js';

/** One factory picks the database from config: a PostgreSQL server when a URL is given, else PGlite. */
export function openDatabase(opts: {
  databaseUrl?: string;
  dataDir?: string;
  schema?: string;
}): Promise<Database> {
  if (opts.databaseUrl) return openPostgres({ url: opts.databaseUrl, schema: opts.schema });
  return openPglite(opts.dataDir === undefined ? undefined : join(opts.dataDir, 'pglite'));
}
