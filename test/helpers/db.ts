import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/adapters/db/migrate.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import type { Database } from '../../src/adapters/db/port.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';

export type Backend = 'pglite' | 'postgres';

/** PGlite always; the PostgreSQL server too when DATABASE_URL is set. */
export const backends: Backend[] = process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

export interface TestDatabase {
  db: Database;
  /** The schema (postgres) this test owns; undefined on PGlite. */
  schema?: string;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database owned by one test file: an in-memory PGlite, or a new schema on the
 * PostgreSQL server (dropped afterwards) so that test files never see each other's rows.
 */
export async function openTestDatabase(
  backend: Backend,
  opts: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  if (backend === 'pglite') {
    const db = await openPglite();
    if (opts.migrate !== false) await migrate(db);
    return { db, drop: () => db.close() };
  }
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const db = await openPostgres({ url, schema, max: 5 });
  if (opts.migrate !== false) await migrate(db);
  return {
    db,
    schema,
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}
