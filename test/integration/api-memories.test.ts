import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';
import { waitFor } from '../helpers/wait.js';

interface Memory {
  id: string;
  divisionId: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  text: string;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  status: 'pending' | 'indexed' | 'failed';
  embedding: { model: string; version: string; dimensions: number } | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

const USE_LITE = { model: 'use-lite', version: '0.2.0', dimensions: 512 };

/** Reads one un-labelled counter or gauge sample from the Prometheus text exposition. */
function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

describe.each(backends)('memories API on %s', (backend) => {
  let ta: TestApp;
  /** Every text the app sent to the embedder, in order. */
  const embedded: string[] = [];

  const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => ta.http.inject(opts);

  async function create(body: Record<string, unknown>, query = '?wait=true'): Promise<Memory> {
    const res = await inject({ method: 'POST', url: `/v1/memories${query}`, payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Memory>();
  }

  async function get(id: string, query = ''): Promise<LightMyRequestResponse> {
    return inject({ method: 'GET', url: `/v1/memories/${id}${query}` });
  }

  async function listAll(query: string): Promise<Memory[]> {
    const res = await inject({ method: 'GET', url: `/v1/memories?limit=500&${query}` });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ items: Memory[]; nextCursor: string | null }>();
    expect(body.nextCursor).toBeNull();
    return body.items;
  }

  async function search(body: Record<string, unknown>) {
    const res = await inject({ method: 'POST', url: '/v1/search', payload: body });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ hits: { id: string; text: string }[]; pending: number }>();
  }

  async function waitForStatus(id: string, status: Memory['status']): Promise<Memory> {
    let m: Memory | undefined;
    return waitFor(
      async () => {
        m = (await get(id)).json<Memory>();
        return m.status === status && m;
      },
      {
        what: () => `memory ${id} to be ${status} (it stayed ${m?.status})`,
        timeoutMs: 10_000,
        intervalMs: 50,
      },
    );
  }

  async function metrics(): Promise<string> {
    const res = await inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    return res.body;
  }

  async function rowCount(divisionId = 'default'): Promise<number> {
    const res = await ta.app.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM memory_nodes WHERE division_id = $1',
      [divisionId],
    );
    return res.rows[0].n;
  }

  beforeAll(async () => {
    const local = await localEmbedder();
    const counting: Embedder = {
      model: local.model,
      embed(texts, signal) {
        embedded.push(...texts);
        return local.embed(texts, signal);
      },
      close: async () => {},
    };
    ta = await startTestApp(backend, { embedder: counting });
  });
  afterAll(() => ta?.close());

  describe('service endpoints', () => {
    it('answers /healthz and /readyz with its checks', async () => {
      const health = await inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(200);
      expect(health.json()).toEqual({ status: 'ok' });
      const ready = await inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({
        status: 'ready',
        checks: { database: 'ok', queue: 'ok', vectorIndex: 'ok' },
        objectLock: 'unsupported',
      });
    });

    it('exports search latency and queue depth in /metrics', async () => {
      // One search and one queued memory so that both series have samples.
      await search({ query: 'anything at all', mode: 'keyword' });
      await create({ text: 'A memory so that the queue has seen a job.' }, '');
      const text = await metrics();
      expect(text).toContain('memory_layer_search_duration_seconds_bucket');
      expect(text).toMatch(/memory_layer_search_duration_seconds_count\{mode="keyword"\} [1-9]/);
      expect(text).toContain('# TYPE memory_layer_queue_depth gauge');
      expect(text).toContain('memory_layer_http_request_duration_seconds');
      // The vector index answered its check at this scrape.
      expect(text).toMatch(/^memory_layer_vector_index_up 1$/m);
      // Accepted to searchable: observed once the worker indexed a memory.
      await create({ text: 'A memory waited for until it is searchable.' }, '?wait=true');
      expect(await metrics()).toMatch(/^memory_layer_ingest_latency_seconds_count [1-9]/m);
      // Storage use: the schema's tables hold at least the memories just written.
      const bytes = (part: string) =>
        Number(
          new RegExp(`^memory_layer_storage_bytes\\{part="${part}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? -1,
        );
      expect(bytes('database')).toBeGreaterThan(100_000);
      expect(bytes('vector_index')).toBeGreaterThanOrEqual(0);
      expect(bytes('artifacts')).toBe(0);
    });

    it('publishes an OpenAPI 3.1 document with the memory and search paths', async () => {
      const res = await inject({ method: 'GET', url: '/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining(['/v1/memories', '/v1/memories/{id}', '/v1/memories/batch', '/v1/search']),
      );
      expect(Object.keys(doc.paths['/v1/memories'])).toEqual(expect.arrayContaining(['get', 'post']));
      expect(Object.keys(doc.paths['/v1/memories/{id}'])).toEqual(
        expect.arrayContaining(['get', 'patch', 'delete']),
      );
    });
  });

  describe('create, read, update, delete', () => {
    it('creates a pending memory, then with ?wait=true answers once it is indexed', async () => {
      const res = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'The octopus has three hearts and blue blood.', tags: ['biology', 'biology'] },
      });
      expect(res.statusCode).toBe(201);
      const m = res.json<Memory>();
      expect(res.headers.location).toBe(`/v1/memories/${m.id}`);
      expect(res.headers.etag).toBe('"1"');
      expect(m).toMatchObject({
        divisionId: 'default',
        agentId: null,
        namespace: 'default',
        kind: 'note',
        text: 'The octopus has three hearts and blue blood.',
        tags: ['biology'],
        metadata: {},
        status: 'pending',
        embedding: null,
        version: 1,
      });
      expect(m.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);

      const waited = await create({
        text: 'Giraffes sleep for less than two hours a day.',
        namespace: 'zoo',
        kind: 'fact',
        metadata: { source: 'book', page: 12, nested: { ok: true } },
      });
      expect(waited.status).toBe('indexed');
      expect(waited.embedding).toEqual(USE_LITE);
      expect(waited).toMatchObject({
        namespace: 'zoo',
        kind: 'fact',
        metadata: { source: 'book', page: 12, nested: { ok: true } },
      });

      const read = await get(waited.id);
      expect(read.statusCode).toBe(200);
      expect(read.headers.etag).toBe('"1"');
      expect(read.json()).toEqual(waited);

      // The first memory was queued too and gets indexed by the running worker.
      const first = await waitForStatus(m.id, 'indexed');
      expect(first.embedding).toEqual(USE_LITE);
    });

    it('lists memories newest first with a cursor that visits each exactly once', async () => {
      const div = await inject({ method: 'POST', url: '/v1/divisions', payload: { id: 'paging' } });
      expect(div.statusCode).toBe(201);
      const created: Memory[] = [];
      for (let i = 0; i < 7; i++) {
        created.push(await create({ divisionId: 'paging', text: `Paging memory number ${i}` }, ''));
      }
      const expected = created.map((m) => m.id).reverse();

      const seen: string[] = [];
      const pageSizes: number[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const url = `/v1/memories?divisionId=paging&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const res = await inject({ method: 'GET', url });
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json<{ items: Memory[]; nextCursor: string | null }>();
        pageSizes.push(body.items.length);
        seen.push(...body.items.map((m) => m.id));
        cursor = body.nextCursor;
        if (cursor === null) break;
      }
      expect(pageSizes).toEqual([3, 3, 1]);
      expect(seen).toEqual(expected);

      // A page that ends exactly at the last memory says so: no cursor to an empty page.
      const exact = await inject({ method: 'GET', url: '/v1/memories?divisionId=paging&limit=7' });
      expect(exact.json().items).toHaveLength(7);
      expect(exact.json().nextCursor).toBeNull();
      const six = await inject({ method: 'GET', url: '/v1/memories?divisionId=paging&limit=6' });
      const sixBody = six.json<{ items: Memory[]; nextCursor: string }>();
      expect(sixBody.items).toHaveLength(6);
      const last = await inject({
        method: 'GET',
        url: `/v1/memories?divisionId=paging&limit=6&cursor=${encodeURIComponent(sixBody.nextCursor)}`,
      });
      expect(last.json().items.map((m: Memory) => m.id)).toEqual([expected[6]]);
      expect(last.json().nextCursor).toBeNull();
    });

    it('filters the list by namespace, kind and status', async () => {
      await create({ divisionId: 'paging', text: 'A filtered one', namespace: 'special', kind: 'todo' });
      expect((await listAll('divisionId=paging&namespace=special')).map((m) => m.text)).toEqual([
        'A filtered one',
      ]);
      expect((await listAll('divisionId=paging&kind=todo')).map((m) => m.text)).toEqual(['A filtered one']);
      expect(await listAll('divisionId=paging&namespace=nothing-here')).toEqual([]);
      const all = await listAll('divisionId=paging');
      expect(all).toHaveLength(8);
      const indexed = await listAll('divisionId=paging&status=indexed');
      const pending = await listAll('divisionId=paging&status=pending');
      expect(indexed.length + pending.length).toBe(8);
      expect(indexed.every((m) => m.status === 'indexed')).toBe(true);
    });

    it('PATCH of the text bumps the version, re-embeds, and search follows the new text', async () => {
      const m = await create({ text: 'The meeting with Ottoline is on Monday in the blue room.' });
      expect(m.status).toBe('indexed');
      const before = await search({ query: 'Ottoline', mode: 'keyword' });
      expect(before.hits.map((h) => h.id)).toEqual([m.id]);
      const vectorsBefore = await ta.app.index.count(ta.app.embedder.model, 'default');

      const res = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { text: 'The meeting with Bartholomew moved to Thursday in the green room.' },
        headers: { 'if-match': '"1"' },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers.etag).toBe('"2"');
      const patched = res.json<Memory>();
      expect(patched.version).toBe(2);
      expect(patched.status).toBe('pending');
      expect(patched.embedding).toBeNull();
      expect(patched.checksum).not.toBe(m.checksum);
      expect(patched.createdAt).toBe(m.createdAt);
      expect(Date.parse(patched.updatedAt)).toBeGreaterThanOrEqual(Date.parse(m.updatedAt));

      const reindexed = await waitForStatus(m.id, 'indexed');
      expect(reindexed.embedding).toEqual(USE_LITE);
      expect(reindexed.version).toBe(2);
      expect(embedded).toContain('The meeting with Bartholomew moved to Thursday in the green room.');

      expect((await search({ query: 'Ottoline', mode: 'keyword' })).hits).toEqual([]);
      const after = await search({ query: 'Bartholomew', mode: 'keyword' });
      expect(after.hits.map((h) => h.id)).toEqual([m.id]);
      const byMeaning = await search({
        query: 'The meeting with Bartholomew moved to Thursday in the green room.',
        mode: 'vector',
        k: 1,
      });
      expect(byMeaning.hits.map((h) => h.id)).toEqual([m.id]);
      // The memory's vector in the index was replaced, not duplicated.
      expect(await ta.app.index.count(ta.app.embedder.model, 'default')).toBe(vectorsBefore);
    });

    it('PATCH without a text change keeps the vector and status', async () => {
      const m = await create({ text: 'Tags change, the text does not.' });
      const res = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['x', 'y'], metadata: { a: 1 }, namespace: 'moved', kind: 'event' },
      });
      expect(res.statusCode, res.body).toBe(200);
      const patched = res.json<Memory>();
      expect(patched).toMatchObject({
        version: 2,
        status: 'indexed',
        checksum: m.checksum,
        embedding: USE_LITE,
        tags: ['x', 'y'],
        metadata: { a: 1 },
        namespace: 'moved',
        kind: 'event',
      });
      // Whitespace-only differences normalise to the same text: no re-embedding either.
      const ws = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { text: '  Tags change,   the text does not. ' },
      });
      expect(ws.json<Memory>()).toMatchObject({ version: 3, status: 'indexed', checksum: m.checksum });
    });

    it('PATCH with a stale If-Match gets 412 version_mismatch and changes nothing', async () => {
      const m = await create({ text: 'Optimistic concurrency is checked.' });
      const first = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['first'] },
        headers: { 'if-match': '"1"' },
      });
      expect(first.statusCode).toBe(200);

      const stale = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['second'] },
        headers: { 'if-match': '"1"' },
      });
      const p = expectProblem(stale, 412, 'version_mismatch', 'If-Match');
      expect(p.detail).toContain('version 2');
      const read = (await get(m.id)).json<Memory>();
      expect(read.tags).toEqual(['first']);
      expect(read.version).toBe(2);

      const current = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['second'] },
        headers: { 'if-match': (await get(m.id)).headers.etag as string },
      });
      expect(current.statusCode).toBe(200);
      expect(current.json<Memory>()).toMatchObject({ version: 3, tags: ['second'] });
      // Weak ETags and bare numbers are understood as well.
      const weak = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['third'] },
        headers: { 'if-match': 'W/"3"' },
      });
      expect(weak.statusCode).toBe(200);
    });

    it('DELETE removes the memory from reads, lists and search', async () => {
      const m = await create({ text: 'The password hint mentions Quetzalcoatl the feathered serpent.' });
      expect((await search({ query: 'Quetzalcoatl', mode: 'keyword' })).hits).toHaveLength(1);
      const vectorBefore = await search({ query: m.text, mode: 'vector', k: 1 });
      expect(vectorBefore.hits[0].id).toBe(m.id);
      const indexedBefore = await ta.app.index.count(ta.app.embedder.model, 'default');

      const stale = await inject({
        method: 'DELETE',
        url: `/v1/memories/${m.id}`,
        headers: { 'if-match': '"7"' },
      });
      expectProblem(stale, 412, 'version_mismatch', 'If-Match');
      expect((await get(m.id)).statusCode).toBe(200);

      const res = await inject({ method: 'DELETE', url: `/v1/memories/${m.id}` });
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');

      expectProblem(await get(m.id), 404, 'memory_not_found');
      expect((await listAll('')).map((x) => x.id)).not.toContain(m.id);
      expect((await search({ query: 'Quetzalcoatl', mode: 'keyword' })).hits).toEqual([]);
      const vectorAfter = await search({ query: m.text, mode: 'vector', k: 10 });
      expect(vectorAfter.hits.map((h) => h.id)).not.toContain(m.id);
      const hybridAfter = await search({ query: m.text, k: 10 });
      expect(hybridAfter.hits.map((h) => h.id)).not.toContain(m.id);
      expect(await ta.app.index.count(ta.app.embedder.model, 'default')).toBe(indexedBefore - 1);

      expectProblem(await inject({ method: 'DELETE', url: `/v1/memories/${m.id}` }), 404, 'memory_not_found');
      expectProblem(
        await inject({ method: 'PATCH', url: `/v1/memories/${m.id}`, payload: { tags: ['a'] } }),
        404,
        'memory_not_found',
      );
    });
  });

  describe('embeddings', () => {
    it('stores a precomputed vector without calling the embedder', async () => {
      const text = 'Precomputed: the lighthouse keeper logs every passing ship.';
      const [vector] = await (await localEmbedder()).embed([text]);
      const m = await create({ text, vector: Array.from(vector), model: 'use-lite' });
      expect(m.status).toBe('indexed');
      expect(m.embedding).toEqual(USE_LITE);
      expect(embedded).not.toContain(text);

      const withVersion = await create({
        text: 'Precomputed with version: the ferry leaves at dawn.',
        vector: Array.from(vector),
        model: 'use-lite@0.2.0',
      });
      expect(withVersion.status).toBe('indexed');
      expect(embedded).not.toContain('Precomputed with version: the ferry leaves at dawn.');

      // The stored vector is the one given: searching with it finds both memories at distance 0.
      const res = await search({ vector: Array.from(vector), mode: 'vector', k: 2 });
      expect(res.hits.map((h) => h.id).sort()).toEqual([m.id, withVersion.id].sort());
    });

    it('refuses a vector of the wrong size or from another model', async () => {
      const before = await rowCount();
      const short = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'wrong size', vector: [0.1, 0.2, 0.3], model: 'use-lite' },
      });
      expectProblem(short, 422, 'vector_dimension_mismatch', 'vector');

      const other = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'wrong model', vector: new Array(512).fill(0.01), model: 'text-embedding-3-small' },
      });
      expectProblem(other, 422, 'unknown_model', 'model');
      const otherVersion = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'wrong version', vector: new Array(512).fill(0.01), model: 'use-lite@9.9.9' },
      });
      expectProblem(otherVersion, 422, 'unknown_model', 'model');

      const alone = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'vector without model', vector: new Array(512).fill(0.01) },
      });
      expectProblem(alone, 400, 'validation_failed', 'model');

      const inBatch = await inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: [{ text: 'ok' }, { text: 'bad', vector: [1, 2], model: 'use-lite' }] },
      });
      expectProblem(inBatch, 422, 'vector_dimension_mismatch', 'items[1].vector');
      expect(await rowCount()).toBe(before);
    });

    it('embeds identical text once and reuses the vector', async () => {
      const text = 'Identical text: the library closes at nine on Fridays.';
      const m1 = await create({ text });
      expect(m1.status).toBe('indexed');
      const before = await metrics();
      const computed = metricValue(before, 'memory_layer_embeddings_computed_total');
      const reused = metricValue(before, 'memory_layer_embeddings_reused_total');

      // Same text up to whitespace: same checksum, so the vector is reused.
      const m2 = await create({ text: `  ${text.replace(/ /g, '  ')}\n` });
      expect(m2.status).toBe('indexed');
      expect(m2.checksum).toBe(m1.checksum);
      expect(m2.embedding).toEqual(USE_LITE);

      const after = await metrics();
      expect(metricValue(after, 'memory_layer_embeddings_reused_total')).toBe(reused + 1);
      expect(metricValue(after, 'memory_layer_embeddings_computed_total')).toBe(computed);
      expect(embedded.filter((t) => t === text)).toHaveLength(1);

      const hits = await search({ query: text, mode: 'vector', k: 2 });
      expect(hits.hits.map((h) => h.id).sort()).toEqual([m1.id, m2.id].sort());
    });
  });

  describe('batches', () => {
    it('creates a batch of three', async () => {
      const res = await inject({
        method: 'POST',
        url: '/v1/memories/batch?wait=true',
        payload: {
          items: [
            { text: 'Batch one: the bakery opens at six.' },
            { text: 'Batch two: the post office is closed on Sundays.', tags: ['errands'] },
            { text: 'Batch three: the gym is free for members.', namespace: 'health' },
          ],
        },
      });
      expect(res.statusCode, res.body).toBe(201);
      const items = res.json<{ items: Memory[] }>().items;
      expect(items.map((m) => m.text)).toEqual([
        'Batch one: the bakery opens at six.',
        'Batch two: the post office is closed on Sundays.',
        'Batch three: the gym is free for members.',
      ]);
      expect(items.every((m) => m.status === 'indexed')).toBe(true);
      expect(new Set(items.map((m) => m.id)).size).toBe(3);
      expect(items[1].tags).toEqual(['errands']);
      expect(items[2].namespace).toBe('health');
      for (const m of items) expect((await get(m.id)).json<Memory>().text).toBe(m.text);
    });

    it('refuses the whole batch when one item is invalid, naming the item', async () => {
      const before = await rowCount();

      const empty = await inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: [{ text: 'fine 0' }, { text: 'fine 1' }, { text: '   ' }, { text: 'fine 3' }] },
      });
      expectProblem(empty, 400, 'validation_failed', 'items[2].text');

      const unknown = await inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: [{ text: 'fine 0' }, { text: 'fine 1' }, { text: 'fine 2', colour: 'red' }] },
      });
      expectProblem(unknown, 400, 'validation_failed', 'items[2].colour');

      const missing = await inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: [{ text: 'fine 0' }, { text: 'fine 1' }, { tags: ['no text'] }] },
      });
      expectProblem(missing, 400, 'validation_failed', 'items[2].text');

      const agent = await inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: [{ text: 'fine 0' }, { text: 'fine 1' }, { text: 'fine 2', agentId: 'ghost' }] },
      });
      expectProblem(agent, 404, 'agent_not_found', 'items[2].agentId');

      const tooMany = await inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: Array.from({ length: 1001 }, (_, i) => ({ text: `item ${i}` })) },
      });
      expectProblem(tooMany, 400, 'validation_failed', 'items');

      const none = await inject({ method: 'POST', url: '/v1/memories/batch', payload: { items: [] } });
      expectProblem(none, 400, 'validation_failed', 'items');

      expect(await rowCount()).toBe(before);
      expect((await listAll('')).filter((m) => m.text.startsWith('fine '))).toEqual([]);
    });
  });

  describe('Idempotency-Key', () => {
    it('replays the first answer for the same key and body', async () => {
      const body = { text: 'Idempotent: the dentist appointment is on the 3rd.' };
      const headers = { 'idempotency-key': 'create-dentist-1' };
      const first = await inject({ method: 'POST', url: '/v1/memories', payload: body, headers });
      expect(first.statusCode).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const second = await inject({ method: 'POST', url: '/v1/memories', payload: body, headers });
      expect(second.statusCode).toBe(201);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.json<Memory>().id).toBe(first.json<Memory>().id);
      expect(second.headers.location).toBe(first.headers.location);

      const same = (await listAll('')).filter((m) => m.text === body.text);
      expect(same).toHaveLength(1);

      const reused = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'Idempotent: a different body.' },
        headers,
      });
      expectProblem(reused, 422, 'idempotency_key_reused', 'Idempotency-Key');
      expect((await listAll('')).filter((m) => m.text === 'Idempotent: a different body.')).toEqual([]);

      // Keys are per division: the same key in another division is a new request.
      const other = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { ...body, divisionId: 'paging' },
        headers,
      });
      expect(other.statusCode).toBe(201);
      expect(other.headers['idempotent-replayed']).toBeUndefined();
      expect(other.json<Memory>().id).not.toBe(first.json<Memory>().id);
    });

    it('gives concurrent retries with one key a single memory', async () => {
      const body = { text: 'Idempotent concurrently: renew the passport before June.' };
      const headers = { 'idempotency-key': 'concurrent-passport' };
      const answers = await Promise.all(
        [0, 1, 2].map(() => inject({ method: 'POST', url: '/v1/memories', payload: body, headers })),
      );
      expect(answers.map((a) => a.statusCode)).toEqual([201, 201, 201]);
      expect(new Set(answers.map((a) => a.json<Memory>().id)).size).toBe(1);
      expect(answers.filter((a) => a.headers['idempotent-replayed'] === 'true')).toHaveLength(2);
      expect((await listAll('')).filter((m) => m.text === body.text)).toHaveLength(1);
    });

    it('replays batches too', async () => {
      const body = { items: [{ text: 'Idempotent batch A' }, { text: 'Idempotent batch B' }] };
      const headers = { 'idempotency-key': 'batch-ab' };
      const first = await inject({ method: 'POST', url: '/v1/memories/batch', payload: body, headers });
      const second = await inject({ method: 'POST', url: '/v1/memories/batch', payload: body, headers });
      expect(first.statusCode).toBe(201);
      expect(second.statusCode).toBe(201);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.json().items.map((m: Memory) => m.id)).toEqual(
        first.json().items.map((m: Memory) => m.id),
      );
      expect((await listAll('')).filter((m) => m.text.startsWith('Idempotent batch'))).toHaveLength(2);
    });
  });

  describe('divisions and agents', () => {
    it('creates divisions, refuses duplicates, and lists them with default', async () => {
      const res = await inject({
        method: 'POST',
        url: '/v1/divisions',
        payload: { id: 'acme', name: 'Acme Corp', metadata: { plan: 'pro' } },
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toMatchObject({ id: 'acme', name: 'Acme Corp', metadata: { plan: 'pro' } });

      const dup = await inject({ method: 'POST', url: '/v1/divisions', payload: { id: 'acme' } });
      expectProblem(dup, 409, 'already_exists', 'id');

      const list = await inject({ method: 'GET', url: '/v1/divisions' });
      expect(list.statusCode).toBe(200);
      const ids = list.json<{ items: { id: string }[] }>().items.map((d) => d.id);
      expect(ids).toEqual(expect.arrayContaining(['default', 'acme', 'paging']));

      const one = await inject({ method: 'GET', url: '/v1/divisions/acme' });
      expect(one.json()).toMatchObject({ id: 'acme', name: 'Acme Corp' });
      expectProblem(await inject({ method: 'GET', url: '/v1/divisions/nope' }), 404, 'division_not_found');
    });

    it('registers agents and checks agentId on memories', async () => {
      const res = await inject({
        method: 'POST',
        url: '/v1/divisions/acme/agents',
        payload: { id: 'planner', name: 'Trip planner' },
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toMatchObject({ id: 'planner', divisionId: 'acme', name: 'Trip planner' });
      expectProblem(
        await inject({ method: 'POST', url: '/v1/divisions/acme/agents', payload: { id: 'planner' } }),
        409,
        'already_exists',
      );
      expectProblem(
        await inject({ method: 'POST', url: '/v1/divisions/nope/agents', payload: { id: 'planner' } }),
        404,
        'division_not_found',
      );
      const list = await inject({ method: 'GET', url: '/v1/divisions/acme/agents' });
      expect(list.json<{ items: { id: string }[] }>().items.map((a) => a.id)).toEqual(['planner']);
      expect((await inject({ method: 'GET', url: '/v1/divisions/default/agents' })).json().items).toEqual([]);

      const m = await create({ divisionId: 'acme', agentId: 'planner', text: 'Acme planner memory.' }, '');
      expect(m.agentId).toBe('planner');
      expect(m.divisionId).toBe('acme');
      expect((await listAll('divisionId=acme&agentId=planner')).map((x) => x.id)).toEqual([m.id]);
      expect(await listAll('divisionId=acme&agentId=other')).toEqual([]);

      const before = await rowCount('acme');
      const unknown = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { divisionId: 'acme', agentId: 'stranger', text: 'From nobody.' },
      });
      expectProblem(unknown, 404, 'agent_not_found', 'agentId');
      // An agent of another division does not count.
      const elsewhere = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { agentId: 'planner', text: 'Planner is not registered in default.' },
      });
      expectProblem(elsewhere, 404, 'agent_not_found', 'agentId');
      expect(await rowCount('acme')).toBe(before);
    });

    it('answers division_not_found for create, list and search in an unknown division', async () => {
      expectProblem(
        await inject({ method: 'POST', url: '/v1/memories', payload: { divisionId: 'nowhere', text: 'x' } }),
        404,
        'division_not_found',
      );
      expectProblem(
        await inject({
          method: 'POST',
          url: '/v1/memories/batch',
          payload: { divisionId: 'nowhere', items: [{ text: 'x' }] },
        }),
        404,
        'division_not_found',
      );
      expectProblem(
        await inject({ method: 'GET', url: '/v1/memories?divisionId=nowhere' }),
        404,
        'division_not_found',
      );
      expectProblem(
        await inject({ method: 'POST', url: '/v1/search', payload: { divisionId: 'nowhere', query: 'x' } }),
        404,
        'division_not_found',
      );
      expect(await rowCount('nowhere')).toBe(0);
    });

    it("keeps one division's memories out of another's reads, lists and search", async () => {
      await inject({ method: 'POST', url: '/v1/divisions', payload: { id: 'globex' } });
      const a = await create({
        divisionId: 'acme',
        text: 'Acme secret: the launch codename is Marmalade Falcon.',
      });
      expect(a.status).toBe('indexed');

      expectProblem(await get(a.id, '?divisionId=globex'), 404, 'memory_not_found');
      expect((await get(a.id, '?divisionId=acme')).statusCode).toBe(200);
      expectProblem(
        await inject({
          method: 'PATCH',
          url: `/v1/memories/${a.id}?divisionId=globex`,
          payload: { text: 'hijacked' },
        }),
        404,
        'memory_not_found',
      );
      expectProblem(
        await inject({ method: 'DELETE', url: `/v1/memories/${a.id}?divisionId=globex` }),
        404,
        'memory_not_found',
      );
      expect((await get(a.id)).json<Memory>().text).toBe(a.text);

      expect(await listAll('divisionId=globex')).toEqual([]);
      expect((await listAll('divisionId=acme')).map((m) => m.id)).toContain(a.id);
      expect((await listAll('')).map((m) => m.id)).not.toContain(a.id);

      for (const mode of ['keyword', 'vector', 'hybrid']) {
        const inGlobex = await search({ divisionId: 'globex', query: a.text, mode });
        expect(inGlobex.hits).toEqual([]);
        const inDefault = await search({ query: a.text, mode });
        expect(inDefault.hits.map((h) => h.id)).not.toContain(a.id);
        const inAcme = await search({ divisionId: 'acme', query: a.text, mode });
        expect(inAcme.hits[0]?.id).toBe(a.id);
      }
    });
  });
});
