import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { copyStatement } from './copy.js';
import type { Database, Queryable, QueryResult } from './port.js';

/**
 * Embedded PostgreSQL (WASM). One connection in-process; PGlite serialises queries and
 * transactions itself. `dataDir` undefined keeps everything in memory (tests).
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pg = await PGlite.create({ dataDir, extensions: { vector } });
  await pg.exec('CREATE EXTENSION IF NOT EXISTS vector');

  const wrap = (q: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query<Row>(text: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const res = await q.query<Row>(text, params as unknown[]);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(script: string) {
      await q.exec(script);
    },
    async copyFrom(table, columns, data) {
      const res = await q.query(copyStatement(table, columns, "'/dev/blob'"), [], { blob: new Blob([data]) });
      return res.affectedRows ?? 0;
    },
  });
  const root = wrap(pg);
  // Exclusive locks taken through the port; one process owns the database, so in-process is enough.
  const heldLocks = new Set<number>();
  return {
    engine: 'pglite',
    singleProcess: true,
    query: root.query,
    exec: root.exec,
    copyFrom: root.copyFrom,
    transaction: (fn) => pg.transaction((tx) => fn(wrap(tx))),
    hasPgvector: async () => true,
    // One process owns the embedded database, so its single session is the reserved one.
    reserve: async () => ({ ...root, release: async () => undefined }),
    async withExclusiveLock(key, fn) {
      if (heldLocks.has(key)) return undefined;
      heldLocks.add(key);
      try {
        return await fn();
      } finally {
        heldLocks.delete(key);
      }
    },
    lockKey: (key) => key,
    close: () => pg.close(),
  };
}
