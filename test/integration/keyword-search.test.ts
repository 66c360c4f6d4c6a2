import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Access } from '../../src/memories/access.js';
import { createKeywordSearch } from '../../src/search/keyword-search.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';

const access: Access = { divisions: '*', actor: 'service:test', piiRead: true };
const filter = { divisionId: 'default' };

/**
 * BM25 with very common words: they only select candidates when nothing rarer is asked for, and
 * the answer falls back to every match when the rare words select fewer than k memories.
 */
describe.each(backends)('keyword search with common words (%s)', (backend) => {
  let t: TestDatabase;
  const textOf = new Map<number, string>();

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    // Every memory says "ordinary"; 20 also say "zebra", 5 say "quokka".
    for (let i = 0; i < 300; i++) {
      const extra = i % 15 === 0 ? ' zebra' : i % 60 === 7 ? ' quokka' : '';
      const text = `an ordinary note number ${i}${extra}`;
      const res = await t.db.query<{ vector_key: number }>(
        `INSERT INTO memory_nodes (id, division_id, text, checksum)
         VALUES (gen_random_uuid(), 'default', $1, md5($1)) RETURNING vector_key`,
        [text],
      );
      textOf.set(Number(res.rows[0].vector_key), text);
    }
    await t.db.exec('ANALYZE memory_nodes');
  }, 120_000);
  afterAll(async () => {
    await t?.drop();
  });

  it('knows "ordinary" as a common word from the planner statistics', async () => {
    const res = await t.db.query<{ elems: string[] }>(
      `SELECT most_common_elems::text::text[] AS elems FROM pg_stats
       WHERE schemaname = current_schema() AND tablename = 'memory_nodes' AND attname = 'fts'`,
    );
    expect(res.rows[0]?.elems).toContain('ordinari');
  });

  it('ranks the memories with the rare word first', async () => {
    const search = createKeywordSearch(t.db);
    const hits = await search('ordinary zebra', filter, access, 10);
    expect(hits).toHaveLength(10);
    for (const h of hits) expect(textOf.get(h.key)).toContain('zebra');
    // Scores descend; equal scores in key order (newest first), as without pruning.
    for (let i = 1; i < hits.length; i++) {
      expect(hits[i].score < hits[i - 1].score || hits[i].key < hits[i - 1].key).toBe(true);
    }
  });

  it('falls back to the common word when fewer than k memories hold the rare one', async () => {
    const search = createKeywordSearch(t.db);
    const hits = await search('ordinary quokka', filter, access, 10);
    expect(hits).toHaveLength(10);
    const withQuokka = hits.filter((h) => textOf.get(h.key)?.includes('quokka'));
    expect(withQuokka).toHaveLength(5);
    expect(hits.slice(0, 5)).toEqual(withQuokka);
  });

  it('searches by the common word alone when nothing rarer is asked for', async () => {
    const search = createKeywordSearch(t.db);
    const hits = await search('ordinary', filter, access, 10);
    expect(hits).toHaveLength(10);
    for (const h of hits) expect(textOf.get(h.key)).toContain('ordinary');
  });
});
