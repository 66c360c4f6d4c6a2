import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import { createChangeFeed, requestRebuild } from '../../src/indexing/change-feed.js';
import type { Access } from '../../src/memories/access.js';
import { createKeywordIndex, type KeywordIndex } from '../../src/search/keyword-index/index.js';
import { createSqlKeywordSearch } from '../../src/search/keyword-sql.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

const access: Access = { divisions: '*', actor: 'service:test', piiRead: true };

/**
 * The in-process keyword index against a real database: the change feed it reads, BM25 equal to
 * the SQL BM25 on plain memories, contextual documents, and incremental upkeep equal to a build.
 */
describe.each(backends)('keyword index on %s', (backend) => {
  let t: TestDatabase;
  let division = 0;
  /** A division of its own per test, so statistics never mix. */
  const newDivision = async () => {
    const id = `d${++division}`;
    await t.db.query('INSERT INTO divisions (id, name) VALUES ($1, $1)', [id]);
    return id;
  };
  const insert = async (
    divisionId: string,
    text: string,
    extra: {
      session?: string;
      sequence?: number;
      agent?: string;
      occurredAt?: string;
      redacted?: string;
    } = {},
  ) => {
    if (extra.agent) {
      await t.db.query(
        'INSERT INTO agents (division_id, id, name) VALUES ($1, $2, $2) ON CONFLICT DO NOTHING',
        [divisionId, extra.agent],
      );
    }
    const res = await t.db.query<{ vector_key: number }>(
      `INSERT INTO memory_nodes (id, division_id, text, checksum, session_id, sequence, agent_id, occurred_at, redacted_text)
       VALUES (gen_random_uuid(), $1, $2, md5($2), $3, $4, $5, $6, $7) RETURNING vector_key`,
      [
        divisionId,
        text,
        extra.session ?? null,
        extra.sequence ?? null,
        extra.agent ?? null,
        extra.occurredAt ?? null,
        extra.redacted ?? null,
      ],
    );
    return Number(res.rows[0].vector_key);
  };
  const lexemes = async (text: string) =>
    (
      await t.db.query<{ lexeme: string }>("SELECT lexeme FROM unnest(to_tsvector('english', $1))", [text])
    ).rows.map((r) => r.lexeme);
  const keys = (hits: { key: number }[]) => hits.map((h) => h.key);
  let index: KeywordIndex;
  const find = async (divisionId: string, text: string, k = 10, view: 'full' | 'redacted' = 'full') => {
    await index.catchUp();
    return index.search(divisionId, view, await lexemes(text), k);
  };

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    index = createKeywordIndex({ db: t.db });
    await index.ready();
  }, 120_000);
  afterAll(async () => {
    await t?.drop();
  });

  it('ranks plain memories exactly as the SQL BM25 does (same scores)', async () => {
    const d = await newDivision();
    // 200 words, 80 memories of 4-11 words: every word in few memories, so the SQL BM25 prunes none.
    const words = Array.from({ length: 200 }, (_, i) => `w${i.toString(36)}x${'abcdefghij'[i % 10]}`);
    let seed = 3;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 80; i++) {
      const n = 4 + Math.floor(rand() * 8);
      await insert(d, Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(' '));
    }
    const sql = createSqlKeywordSearch(t.db);
    for (let q = 0; q < 25; q++) {
      const query = Array.from({ length: 1 + (q % 4) }, () => words[Math.floor(rand() * words.length)]).join(
        ' ',
      );
      // Every match, so that ties at a cut-off cannot differ.
      const want = await sql(query, { divisionId: d }, access, 1000);
      const got = await find(d, query, 1000);
      const byKey = new Map(got.map((h) => [h.key, h.score]));
      expect(got.length, query).toBe(want.length);
      for (const h of want) expect(byKey.get(h.key), query).toBeCloseTo(h.score, 9);
    }
  });

  it('finds a turn by the words of its neighbours in the session, its own words first', async () => {
    const d = await newDivision();
    const s = { session: 'conv-1' };
    const first = await insert(d, 'Caroline: I went to the LGBTQ support group yesterday', {
      ...s,
      sequence: 0,
    });
    const middle = await insert(d, 'Melanie: what was it like?', { ...s, sequence: 1 });
    const third = await insert(d, 'Caroline: it was so powerful', { ...s, sequence: 2 });
    await insert(d, 'Melanie: I am painting a lake at sunrise', { ...s, sequence: 3 });
    await insert(d, 'Jon: the new drill is powerful');
    expect(keys(await find(d, 'what did Caroline find powerful about the support group'))).toContain(third);
    // The middle turn holds none of these words: its neighbours explain it.
    expect(keys(await find(d, 'support group'))).toEqual([first, middle]);
    expect(keys(await find(d, 'Caroline powerful'))[0]).toBe(third);
  });

  it("never takes context from another agent's turns or another session", async () => {
    const d = await newDivision();
    await insert(d, 'the secret password is marmalade', { session: 'c', sequence: 0, agent: 'ana' });
    const bo = await insert(d, 'ok noted', { session: 'c', sequence: 1, agent: 'bo' });
    await insert(d, 'penguins everywhere', { session: 'other', sequence: 2, agent: 'bo' });
    expect(keys(await find(d, 'marmalade'))).not.toContain(bo);
    expect(keys(await find(d, 'penguins'))).not.toContain(bo);
  });

  it('finds a memory by the date words of occurredAt', async () => {
    const d = await newDivision();
    const may = await insert(d, 'we adopted a cat', { occurredAt: '2023-05-08T13:56:00Z' });
    await insert(d, 'we adopted a dog', { occurredAt: '2023-06-08T13:56:00Z' });
    expect(keys(await find(d, 'May 2023'))[0]).toBe(may);
    expect(keys(await find(d, 'what happened on 8 May?'))[0]).toBe(may);
  });

  it('follows updates, deletions and redactions; the redacted view hides the redacted words', async () => {
    const d = await newDivision();
    const a = await insert(d, 'call Ignatius at the harbour', { redacted: 'call [PERSON] at the harbour' });
    const b = await insert(d, 'harbour cranes at dawn');
    expect(keys(await find(d, 'Ignatius'))).toEqual([a]);
    expect(await find(d, 'Ignatius', 10, 'redacted')).toEqual([]);
    expect(keys(await find(d, 'harbour', 10, 'redacted')).sort()).toEqual([a, b].sort());
    await t.db.query(
      "UPDATE memory_nodes SET text = 'harbour lights', redacted_text = NULL WHERE vector_key = $1",
      [b],
    );
    expect(keys(await find(d, 'cranes'))).toEqual([]);
    expect(keys(await find(d, 'lights'))).toEqual([b]);
    await t.db.query('UPDATE memory_nodes SET deleted_at = now() WHERE vector_key = $1', [a]);
    expect(keys(await find(d, 'harbour'))).toEqual([b]);
  });

  it('keeps every document equal to a fresh build through inserts, moves, edits and deletions', async () => {
    const d = await newDivision();
    const words = [
      'apple',
      'river',
      'stone',
      'lantern',
      'violet',
      'copper',
      'meadow',
      'falcon',
      'harbor',
      'quill',
    ];
    let seed = 11;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = () => words[Math.floor(rand() * words.length)];
    const live: number[] = [];
    for (let step = 0; step < 120; step++) {
      const r = rand();
      if (r < 0.55 || live.length < 5) {
        live.push(
          await insert(d, `${pick()} ${pick()} ${pick()}`, {
            session: `s${Math.floor(rand() * 3)}`,
            sequence: Math.floor(rand() * 20),
            agent: rand() < 0.3 ? 'ana' : undefined,
          }),
        );
      } else if (r < 0.75) {
        const key = live[Math.floor(rand() * live.length)];
        await t.db.query('UPDATE memory_nodes SET text = $2 WHERE vector_key = $1', [
          key,
          `${pick()} ${pick()}`,
        ]);
      } else if (r < 0.85) {
        const key = live[Math.floor(rand() * live.length)];
        await t.db.query('UPDATE memory_nodes SET sequence = $2 WHERE vector_key = $1', [
          key,
          Math.floor(rand() * 20),
        ]);
      } else {
        const [key] = live.splice(Math.floor(rand() * live.length), 1);
        await t.db.query('UPDATE memory_nodes SET deleted_at = now() WHERE vector_key = $1', [key]);
      }
      // Catch up now and then, so that changes land both one by one and in batches.
      if (rand() < 0.3) await index.catchUp();
    }
    const fresh = createKeywordIndex({ db: t.db });
    await fresh.ready();
    for (const word of words) {
      const got = await find(d, word, 1000);
      const want = fresh.search(d, 'full', await lexemes(word), 1000);
      expect(got.map((h) => h.key).sort(), word).toEqual(want.map((h) => h.key).sort());
      const wantScore = new Map(want.map((h) => [h.key, h.score]));
      for (const h of got) expect(h.score, word).toBeCloseTo(wantScore.get(h.key) as number, 9);
    }
  });

  it('rebuilds itself when `index rebuild` advances the generation', async () => {
    const d = await newDivision();
    const key = await insert(d, 'a quiet lighthouse');
    const before = index.stats().buildSeconds;
    await requestRebuild(t.db);
    await index.catchUp();
    // The rebuild runs in the background and swaps in when done.
    await waitFor(() => index.stats().buildSeconds !== before, {
      what: 'the rebuilt keyword index',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    expect(keys(await find(d, 'lighthouse'))).toEqual([key]);
  });
});

describe.skipIf(!process.env.DATABASE_URL)('change feed on the PostgreSQL server', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase('postgres');
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('hands over a row whose transaction took an earlier change_seq but committed later', async () => {
    const other = await openPostgres({ url: process.env.DATABASE_URL as string, schema: t.schema, max: 2 });
    const feed = createChangeFeed(t.db, { columns: ['n.text'], pageSize: 100 });
    const seen: string[] = [];
    const read = () => feed.read((rows) => void seen.push(...rows.map((r) => r.values[0] as string)));
    const add = (q: { query: typeof t.db.query }, text: string) =>
      q.query(
        "INSERT INTO memory_nodes (id, division_id, text, checksum) VALUES (gen_random_uuid(), 'default', $1, md5($1))",
        [text],
      );
    await read();
    const slow = await other.reserve();
    try {
      await slow.query('BEGIN');
      await add(slow, 'slow');
      await add(t.db, 'fast');
      await read();
      expect(seen).toEqual(['fast']);
      await slow.query('COMMIT');
      await read();
      expect(seen).toEqual(['fast', 'slow']);
      await read();
      expect(seen).toEqual(['fast', 'slow']);
    } finally {
      await slow.release();
      await other.close();
    }
  });
});
