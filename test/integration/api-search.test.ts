import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { sleep } from '../helpers/wait.js';

interface Memory {
  id: string;
  text: string;
  status: string;
  createdAt: string;
}

interface Hit {
  id: string;
  score: number;
  vectorScore?: number;
  keywordScore?: number;
  text: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  tags: string[];
  metadata: Record<string, unknown>;
  createdAt: string;
}

interface SearchResult {
  hits: Hit[];
  mode: string;
  pending: number;
  timings: { embedMs: number; totalMs: number };
}

interface Item {
  text: string;
  agentId?: string;
  namespace: string;
  kind: string;
  tags: string[];
  metadata?: Record<string, unknown>;
}

/** A small, realistic corpus. Keys name the memories in assertions. */
const CORPUS: Record<string, Item> = {
  coffee: {
    text: 'Zbigniew prefers his coffee black with no sugar.',
    agentId: 'planner',
    namespace: 'prefs',
    kind: 'preference',
    tags: ['coffee', 'user'],
    metadata: { source: 'chat', priority: 1 },
  },
  cat: {
    text: 'The cat is sleeping on the sofa.',
    namespace: 'home',
    kind: 'observation',
    tags: ['pets'],
  },
  tax: {
    text: 'Quarterly tax filings are due at the end of April.',
    namespace: 'finance',
    kind: 'deadline',
    tags: ['tax'],
    metadata: { source: 'email' },
  },
  outage: {
    text: 'The deployment pipeline failed because the staging database ran out of disk space.',
    namespace: 'ops',
    kind: 'incident',
    tags: ['infra'],
    metadata: { source: 'pager', severity: 'high' },
  },
  standup: {
    text: 'Our team meets every Tuesday at 10am to plan the sprint.',
    namespace: 'work',
    kind: 'note',
    tags: ['meetings'],
  },
  allergy: {
    text: 'The user is allergic to peanuts and shellfish.',
    agentId: 'scribe',
    namespace: 'prefs',
    kind: 'preference',
    tags: ['health', 'user'],
    metadata: { source: 'chat', priority: 2 },
  },
  paris: {
    text: 'Paris is the capital of France.',
    namespace: 'facts',
    kind: 'fact',
    tags: ['geo'],
  },
  revenue: {
    text: 'The quarterly revenue grew by twelve percent compared to last year.',
    namespace: 'finance',
    kind: 'fact',
    tags: ['metrics'],
  },
  garden: {
    text: 'Remember to water the tomato plants in the garden every morning.',
    namespace: 'home',
    kind: 'todo',
    tags: ['garden'],
  },
  flight: {
    text: 'The flight to Tokyo departs from gate 42 at 7:15 pm.',
    agentId: 'planner',
    namespace: 'travel',
    kind: 'note',
    tags: ['travel'],
  },
  ratelimit: {
    text: 'The API rate limit is one hundred requests per minute per key.',
    namespace: 'ops',
    kind: 'fact',
    tags: ['infra'],
    metadata: { source: 'docs' },
  },
  recital: {
    text: "My daughter's piano recital is on Saturday afternoon.",
    namespace: 'family',
    kind: 'event',
    tags: ['family', 'user'],
    metadata: { source: 'calendar' },
  },
};
type Key = keyof typeof CORPUS;
const FIRST_BATCH: Key[] = ['coffee', 'cat', 'tax', 'outage', 'standup', 'allergy'];
const SECOND_BATCH: Key[] = ['paris', 'revenue', 'garden', 'flight', 'ratelimit', 'recital'];

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.each(backends)('search API on %s', (backend) => {
  let ta: TestApp;
  const ids = {} as Record<Key, string>;
  const keyOf = new Map<string, Key>();
  let secondBatchCreatedAt: string;

  const post = (url: string, payload: object) => ta.http.inject({ method: 'POST', url, payload });

  async function search(body: Record<string, unknown>): Promise<SearchResult> {
    const res = await post('/v1/search', body);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<SearchResult>();
  }
  /** Hits as corpus keys (or ids for memories outside the corpus). */
  const keys = (r: SearchResult) => r.hits.map((h) => keyOf.get(h.id) ?? h.id);
  const sorted = (xs: string[]) => [...xs].sort();

  async function createBatch(divisionId: string, items: unknown[]): Promise<Memory[]> {
    const res = await post('/v1/memories/batch', { divisionId, items });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ items: Memory[] }>().items;
  }

  beforeAll(async () => {
    // No worker loop: the tests decide when memories get indexed (app.worker.drain()).
    ta = await startTestApp(backend, { worker: false });
    for (const id of ['planner', 'scribe']) {
      const res = await post('/v1/divisions/default/agents', { id });
      expect(res.statusCode).toBe(201);
    }
    const first = await createBatch(
      'default',
      FIRST_BATCH.map((k) => CORPUS[k]),
    );
    await sleep(25); // the second batch gets a later created_at
    const second = await createBatch(
      'default',
      SECOND_BATCH.map((k) => CORPUS[k]),
    );
    secondBatchCreatedAt = second[0].createdAt;
    expect(Date.parse(first[0].createdAt)).toBeLessThan(Date.parse(secondBatchCreatedAt));
    for (const [i, m] of [...first, ...second].entries()) {
      const key = [...FIRST_BATCH, ...SECOND_BATCH][i];
      ids[key] = m.id;
      keyOf.set(m.id, key);
    }
    await ta.app.worker.drain();
  });
  afterAll(() => ta?.close());

  describe('modes', () => {
    it('indexed the whole corpus', async () => {
      const res = await ta.http.inject({ method: 'GET', url: '/v1/memories?status=indexed' });
      expect(res.json<{ items: Memory[] }>().items).toHaveLength(12);
      expect(await ta.app.index.count(ta.app.embedder.model, 'default')).toBe(12);
    });

    it('keyword mode finds a rare name and nothing else', async () => {
      const r = await search({ query: 'Zbigniew', mode: 'keyword' });
      expect(r.mode).toBe('keyword');
      expect(keys(r)).toEqual(['coffee']);
      expect(r.hits[0].keywordScore).toBeGreaterThan(0);
      expect(r.hits[0].vectorScore).toBeUndefined();
      expect(r.hits[0]).toMatchObject({
        text: CORPUS.coffee.text,
        agentId: 'planner',
        namespace: 'prefs',
        kind: 'preference',
        tags: ['coffee', 'user'],
        metadata: { source: 'chat', priority: 1 },
      });
      expect(r.pending).toBe(0);
      expect(r.timings.totalMs).toBeGreaterThanOrEqual(0);
    });

    it('keyword mode stems words and ranks the better match first', async () => {
      const r = await search({ query: 'quarterly filings', mode: 'keyword' });
      expect(keys(r)).toEqual(['tax', 'revenue']);
      expect(r.hits[0].score).toBeGreaterThan(r.hits[1].score);
      // "sleeps" stems to the same lexeme as "sleeping".
      expect(keys(await search({ query: 'sleeps', mode: 'keyword' }))).toEqual(['cat']);
      // Only stop words: nothing to look for.
      expect((await search({ query: 'the and of', mode: 'keyword' })).hits).toEqual([]);
    });

    it('vector mode finds a paraphrase that shares no words', async () => {
      const query = 'A kitten naps on the couch';
      expect((await search({ query, mode: 'keyword' })).hits).toEqual([]);
      const r = await search({ query, mode: 'vector', k: 3 });
      expect(r.mode).toBe('vector');
      expect(keys(r)[0]).toBe('cat');
      expect(r.hits[0].vectorScore).toBeGreaterThan(r.hits[1].vectorScore as number);
      expect(r.hits[0].keywordScore).toBeUndefined();
      expect(r.hits[0].score).toBeCloseTo(r.hits[0].vectorScore as number, 6);
      expect(r.timings.embedMs).toBeGreaterThanOrEqual(0);

      const money = await search({ query: 'When must I pay my taxes?', mode: 'vector', k: 1 });
      expect(keys(money)).toEqual(['tax']);
      const food = await search({ query: 'Which foods make the person sick?', mode: 'vector', k: 1 });
      expect(keys(food)).toEqual(['allergy']);
    });

    it('hybrid mode returns keyword and meaning matches together', async () => {
      const r = await search({ query: 'Zbigniew kitten napping on the couch', k: 3 });
      expect(r.mode).toBe('hybrid');
      const found = keys(r);
      expect(found).toContain('coffee');
      expect(found).toContain('cat');
      const coffee = r.hits.find((h) => h.id === ids.coffee) as Hit;
      const cat = r.hits.find((h) => h.id === ids.cat) as Hit;
      expect(coffee.keywordScore).toBeGreaterThan(0);
      expect(cat.keywordScore).toBeUndefined();
      expect(cat.vectorScore).toBeGreaterThan(0);
      expect(found[0]).toBe('coffee');
      // Fused scores are reciprocal-rank sums, ordered.
      const scores = r.hits.map((h) => h.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
    });

    it('searches by a given vector', async () => {
      const [v] = await ta.app.embedder.embed([CORPUS.garden.text]);
      const r = await search({ vector: Array.from(v), mode: 'vector', k: 1 });
      expect(keys(r)).toEqual(['garden']);
      expect(r.hits[0].vectorScore).toBeCloseTo(1, 4);
      const hybrid = await search({ vector: Array.from(v), k: 2 });
      expect(keys(hybrid)[0]).toBe('garden');
    });

    it('honours k', async () => {
      expect((await search({ query: 'what is happening', mode: 'vector', k: 1 })).hits).toHaveLength(1);
      expect((await search({ query: 'what is happening', mode: 'vector', k: 5 })).hits).toHaveLength(5);
      expect((await search({ query: 'what is happening', mode: 'vector', k: 100 })).hits).toHaveLength(12);
      expect((await search({ query: 'what is happening', k: 4 })).hits).toHaveLength(4);
      expect((await search({ query: 'quarterly', mode: 'keyword', k: 1 })).hits).toHaveLength(1);
      expect((await search({ query: 'what is happening' })).hits).toHaveLength(10);
    });

    it("follows a change of the division's model at the next search", async () => {
      // The model is remembered between searches; a search must still see it changed (as a
      // re-embedding switches it), here to one this service is not configured with.
      for (const mode of ['hybrid', 'vector', 'keyword']) await search({ query: 'coffee', mode, k: 2 });
      const before = await ta.t.db.query<{
        embedding_model: string | null;
        embedding_model_version: string | null;
      }>("SELECT embedding_model, embedding_model_version FROM divisions WHERE id = 'default'");
      const set = (name: string | null, version: string | null) =>
        ta.t.db.query(
          "UPDATE divisions SET embedding_model = $1, embedding_model_version = $2 WHERE id = 'default'",
          [name, version],
        );
      await set('elsewhere', '9');
      try {
        for (const mode of ['hybrid', 'vector']) {
          const res = await post('/v1/search', { query: 'coffee', mode, k: 2 });
          expect(res.statusCode, res.body).toBe(503);
          expect(res.body).toContain('model_unavailable');
        }
        expect((await search({ query: 'coffee', mode: 'keyword', k: 2 })).hits).not.toEqual([]);
      } finally {
        await set(before.rows[0].embedding_model, before.rows[0].embedding_model_version);
      }
      expect(keys(await search({ query: 'coffee', k: 1 }))).toEqual(['coffee']);
    });
  });

  describe('filters', () => {
    const everyMode = ['vector', 'hybrid', 'keyword'] as const;

    it('namespace', async () => {
      const r = await search({ query: 'server problems', mode: 'vector', namespace: 'ops' });
      expect(sorted(keys(r))).toEqual(['outage', 'ratelimit']);
      expect(r.hits.every((h) => h.namespace === 'ops')).toBe(true);
      const kw = await search({ query: 'quarterly', mode: 'keyword', namespace: 'finance' });
      expect(sorted(keys(kw))).toEqual(['revenue', 'tax']);
      expect((await search({ query: 'quarterly', mode: 'keyword', namespace: 'home' })).hits).toEqual([]);
    });

    it('agentId', async () => {
      for (const mode of ['vector', 'hybrid'] as const) {
        const r = await search({ query: 'anything about travel or drinks', mode, agentId: 'planner' });
        expect(sorted(keys(r))).toEqual(['coffee', 'flight']);
      }
      expect(keys(await search({ query: 'peanuts', mode: 'keyword', agentId: 'scribe' }))).toEqual([
        'allergy',
      ]);
      expect((await search({ query: 'peanuts', mode: 'keyword', agentId: 'planner' })).hits).toEqual([]);
      expect((await search({ query: 'peanuts', agentId: 'nobody' })).hits).toEqual([]);
    });

    it('tags: every listed tag must match', async () => {
      const r = await search({ query: 'infrastructure', mode: 'vector', tags: ['infra'] });
      expect(sorted(keys(r))).toEqual(['outage', 'ratelimit']);
      const both = await search({
        query: 'what does the user like',
        mode: 'vector',
        tags: ['user', 'coffee'],
      });
      expect(keys(both)).toEqual(['coffee']);
      expect((await search({ query: 'x', mode: 'vector', tags: ['infra', 'user'] })).hits).toEqual([]);
    });

    it('a filter matching exactly three memories returns exactly three', async () => {
      for (const mode of everyMode) {
        const query =
          mode === 'keyword' ? 'user daughter coffee allergic' : 'an unrelated question about volcanoes';
        const r = await search({ query, mode, tags: ['user'], k: 10 });
        expect(sorted(keys(r)), mode).toEqual(['allergy', 'coffee', 'recital']);
      }
    });

    it('kind', async () => {
      const r = await search({ query: 'what does the person like', mode: 'vector', kind: 'preference' });
      expect(sorted(keys(r))).toEqual(['allergy', 'coffee']);
      expect(r.hits.every((h) => h.kind === 'preference')).toBe(true);
    });

    it('metadata equality', async () => {
      const chat = await search({ query: 'preferences', mode: 'vector', metadata: { source: 'chat' } });
      expect(sorted(keys(chat))).toEqual(['allergy', 'coffee']);
      const one = await search({
        query: 'preferences',
        mode: 'vector',
        metadata: { source: 'chat', priority: 1 },
      });
      expect(keys(one)).toEqual(['coffee']);
      // Equality is typed: the string "1" is not the number 1.
      const typed = await search({ query: 'preferences', mode: 'vector', metadata: { priority: '1' } });
      expect(typed.hits).toEqual([]);
      const kw = await search({ query: 'disk', mode: 'keyword', metadata: { severity: 'high' } });
      expect(keys(kw)).toEqual(['outage']);
      expect((await search({ query: 'disk', mode: 'keyword', metadata: { severity: 'low' } })).hits).toEqual(
        [],
      );
    });

    it('createdAfter and createdBefore', async () => {
      for (const mode of ['vector', 'hybrid'] as const) {
        const after = await search({ query: 'anything', mode, k: 100, createdAfter: secondBatchCreatedAt });
        expect(sorted(keys(after)), mode).toEqual(sorted(SECOND_BATCH));
        const before = await search({ query: 'anything', mode, k: 100, createdBefore: secondBatchCreatedAt });
        expect(sorted(keys(before)), mode).toEqual(sorted(FIRST_BATCH));
      }
      const window = await search({
        query: 'quarterly',
        mode: 'keyword',
        createdAfter: '2000-01-01T00:00:00Z',
        createdBefore: secondBatchCreatedAt,
      });
      expect(keys(window)).toEqual(['tax']);
      const future = await search({
        query: 'anything',
        mode: 'vector',
        createdAfter: '2999-01-01T00:00:00Z',
      });
      expect(future.hits).toEqual([]);
    });

    it('combines filters', async () => {
      const r = await search({
        query: 'what should I remember',
        mode: 'vector',
        namespace: 'prefs',
        agentId: 'planner',
        kind: 'preference',
        tags: ['coffee'],
        metadata: { source: 'chat' },
        createdBefore: secondBatchCreatedAt,
      });
      expect(keys(r)).toEqual(['coffee']);
    });
  });

  describe('pending and the filtered-search rule', () => {
    it('counts memories not yet indexed as pending, keyword-searchable at once', async () => {
      const items = [
        { text: 'Later: the plumber Wojciech comes on Wednesday.', namespace: 'later' },
        { text: 'Later: the car needs new winter tyres.', namespace: 'later' },
      ];
      const created = await createBatch('default', items);
      expect(created.every((m) => m.status === 'pending')).toBe(true);

      const vector = await search({ query: 'plumber visit', mode: 'vector', namespace: 'later' });
      expect(vector.pending).toBe(2);
      expect(vector.hits).toEqual([]);
      expect((await search({ query: 'plumber', mode: 'hybrid' })).pending).toBe(2);
      expect((await search({ query: 'plumber', mode: 'vector', namespace: 'ops' })).pending).toBe(0);
      const keyword = await search({ query: 'Wojciech', mode: 'keyword' });
      expect(keyword.hits.map((h) => h.id)).toEqual([created[0].id]);
      expect(keyword.pending).toBe(2);

      await ta.app.worker.drain();
      const after = await search({ query: 'plumber visit', mode: 'vector', namespace: 'later' });
      expect(after.pending).toBe(0);
      expect(after.hits.map((h) => h.id)).toEqual([created[0].id, created[1].id]);
    });

    it('finds every filtered match even when the nearest neighbours are all filtered out', async () => {
      expect((await post('/v1/divisions', { id: 'crowd' })).statusCode).toBe(201);
      const rand = rng(42);
      const dims = ta.app.embedder.model.dimensions;
      const base = Array.from({ length: dims }, () => rand() * 2 - 1);
      const near = () => base.map((x) => x + (rand() - 0.5) * 0.2);
      const far = () => base.map((x) => -x + (rand() - 0.5) * 0.2);
      // 60 memories right next to the query, and 3 tagged ones pointing the other way.
      const crowd = Array.from({ length: 60 }, (_, i) => ({
        text: `Crowd memory ${i}`,
        tags: ['crowd'],
        vector: near(),
        model: 'use-lite',
      }));
      const needles = Array.from({ length: 3 }, (_, i) => ({
        text: `Needle memory ${i}`,
        tags: ['needle'],
        vector: far(),
        model: 'use-lite',
      }));
      const created = await createBatch('crowd', [...crowd.slice(0, 30), ...needles, ...crowd.slice(30)]);
      await ta.app.worker.drain();
      expect(await ta.app.index.count(ta.app.embedder.model, 'crowd')).toBe(63);
      const needleIds = created.filter((m) => m.text.startsWith('Needle')).map((m) => m.id);

      const r = await search({ divisionId: 'crowd', vector: base, mode: 'vector', tags: ['needle'], k: 10 });
      expect(sorted(r.hits.map((h) => h.id))).toEqual(sorted(needleIds));
      const two = await search({ divisionId: 'crowd', vector: base, mode: 'vector', tags: ['needle'], k: 2 });
      expect(two.hits).toHaveLength(2);
      const unfiltered = await search({ divisionId: 'crowd', vector: base, mode: 'vector', k: 10 });
      expect(unfiltered.hits).toHaveLength(10);
      expect(unfiltered.hits.every((h) => h.text.startsWith('Crowd'))).toBe(true);
      // The other division's corpus is never mixed in.
      expect((await search({ divisionId: 'crowd', query: 'Zbigniew', mode: 'keyword' })).hits).toEqual([]);
    });

    it('keeps k filtered matches when a first round’s few matches underestimate the filter', async () => {
      expect((await post('/v1/divisions', { id: 'sparse' })).statusCode).toBe(201);
      const rand = rng(7);
      const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      const dims = ta.app.embedder.model.dimensions;
      const centre = Array.from({ length: dims }, () => gauss() / Math.sqrt(dims));
      const around = (sign: number) => centre.map((x) => sign * x + gauss() * 0.03);
      const item = (text: string, tags: string[], vector: number[]) => ({
        text,
        tags,
        vector,
        model: 'use-lite',
      });
      // The query's own memory is tagged, 984 untagged ones surround it and 15 tagged ones point
      // the other way: the first round (40 candidates) keeps 1 match, which reads as a 2.5 %
      // filter; the second asks for 600 and still keeps 1 (widerFetch, unit-tested, then asks for
      // the widest list). Whichever round answers, the ten are the tagged ones nearest first.
      const near = around(1);
      const items = [
        item('Needle near', ['needle'], near),
        ...Array.from({ length: 984 }, (_, i) => item(`Crowd ${i}`, ['crowd'], around(1))),
        ...Array.from({ length: 15 }, (_, i) => item(`Needle far ${i}`, ['needle'], around(-1))),
      ];
      const created = [
        ...(await createBatch('sparse', items.slice(0, 500))),
        ...(await createBatch('sparse', items.slice(500))),
      ];
      await ta.app.worker.drain();
      expect(await ta.app.index.count(ta.app.embedder.model, 'sparse')).toBe(1000);
      const needles = new Set(created.filter((m) => m.text.startsWith('Needle')).map((m) => m.id));

      const r = await search({ divisionId: 'sparse', vector: near, mode: 'vector', tags: ['needle'], k: 10 });
      expect(r.hits).toHaveLength(10);
      expect(r.hits[0].text).toBe('Needle near');
      expect(r.hits.every((h) => needles.has(h.id))).toBe(true);
    });
  });
});
