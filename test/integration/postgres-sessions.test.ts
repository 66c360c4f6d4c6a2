import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import { openTestDatabase } from '../helpers/db.js';

/**
 * The sessions the service opens on the PostgreSQL server: its schema first on the search_path,
 * JIT off (a 3 ms query compiled for 400 ms at 100k memories when statistics were stale), and a
 * schema that does not exist refused at start instead of writing into `public`.
 */
const url = process.env.DATABASE_URL;

describe.skipIf(!url)('PostgreSQL server sessions', () => {
  it('run with JIT off and the schema first on the search_path, on pooled and transaction connections', async () => {
    const t = await openTestDatabase('postgres');
    try {
      const pooled = await t.db.query<{ jit: string; path: string }>(
        "SELECT current_setting('jit') AS jit, current_setting('search_path') AS path",
      );
      expect(pooled.rows[0].jit).toBe('off');
      expect(pooled.rows[0].path.split(',')[0].trim()).toBe(t.schema);
      const inTx = await t.db.transaction((tx) =>
        tx.query<{ jit: string }>("SELECT current_setting('jit') AS jit"),
      );
      expect(inTx.rows[0].jit).toBe('off');
      const reserved = await t.db.reserve();
      try {
        const r = await reserved.query<{ jit: string }>("SELECT current_setting('jit') AS jit");
        expect(r.rows[0].jit).toBe('off');
      } finally {
        await reserved.release();
      }
    } finally {
      await t.drop();
    }
  });

  it('refuses a schema that does not exist, naming DATABASE_SCHEMA, and creates nothing in public', async () => {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const before = await admin.query(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
      );
      await expect(openPostgres({ url: url as string, schema: 'no_such_schema_here' })).rejects.toThrow(
        /DATABASE_SCHEMA: schema no_such_schema_here does not exist/,
      );
      const after = await admin.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'");
      expect(after.rows[0].n).toBe(before.rows[0].n);
    } finally {
      await admin.end();
    }
  });
});
