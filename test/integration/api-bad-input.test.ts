import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { expectProblem, type Problem } from '../helpers/problem.js';

interface Memory {
  id: string;
  text: string;
  tags: string[];
  metadata: Record<string, unknown>;
  status: string;
}

const MAX_TEXT_BYTES = 100;
const BODY_LIMIT_BYTES = 2048;

const INJECTIONS = [
  "'); DROP TABLE memory_nodes; --",
  "' OR 1=1 --",
  '"; DELETE FROM jobs; --',
  "\\'; SELECT pg_sleep(5); --",
];

describe.each(backends)('bad input on %s', (backend) => {
  let ta: TestApp;
  let written: { memories: number; keys: number };

  const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => ta.http.inject(opts);
  const post = (url: string, payload: object | string, headers?: Record<string, string>) =>
    inject({ method: 'POST', url, payload, headers });

  /** Rows that a refused request must not leave behind (soft-deleted memories count too). */
  async function counts() {
    const n = async (sql: string) => (await ta.app.db.query<{ n: number }>(sql)).rows[0].n;
    return {
      memories: await n('SELECT count(*)::int AS n FROM memory_nodes'),
      keys: await n('SELECT count(*)::int AS n FROM idempotency_keys'),
    };
  }
  const expectNothingWritten = async () => expect(await counts()).toEqual(written);

  let existing: Memory;

  beforeAll(async () => {
    ta = await startTestApp(backend, {
      env: { MAX_TEXT_BYTES: String(MAX_TEXT_BYTES), BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES) },
    });
    const res = await post('/v1/memories?wait=true', { text: 'The canary sings at dawn.', tags: ['bird'] });
    expect(res.statusCode).toBe(201);
    existing = res.json<Memory>();
  });
  afterAll(() => ta?.close());
  beforeEach(async () => {
    written = await counts();
  });

  describe('body format', () => {
    it('answers malformed JSON with 400 malformed_json', async () => {
      const res = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: '{"text": "unterminated',
        headers: { 'content-type': 'application/json' },
      });
      const p = expectProblem(res, 400, 'malformed_json', '(body)');
      expect(p.instance).toBe('/v1/memories');
      const trailing = await inject({
        method: 'POST',
        url: '/v1/search',
        payload: '{"query": "x",}',
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(trailing, 400, 'malformed_json', '(body)');
      const empty = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: '',
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(empty, 400, 'malformed_json');
      await expectNothingWritten();
    });

    it('answers a body that is not JSON with 415', async () => {
      for (const type of ['application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data']) {
        const res = await inject({
          method: 'POST',
          url: '/v1/memories',
          payload: 'text=hello',
          headers: { 'content-type': type },
        });
        expectProblem(res, 415, 'unsupported_media_type', 'Content-Type');
      }
      await expectNothingWritten();
    });

    it('answers a JSON body sent as text/plain with 415, not a schema error', async () => {
      const res = await inject({
        method: 'POST',
        url: '/v1/memories',
        payload: JSON.stringify({ text: 'sent as text/plain' }),
        headers: { 'content-type': 'text/plain' },
      });
      expectProblem(res, 415, 'unsupported_media_type', 'Content-Type');
      await expectNothingWritten();
    });

    it('answers a body over BODY_LIMIT_BYTES with 413 payload_too_large', async () => {
      const res = await post('/v1/memories', { text: 'a', metadata: { pad: 'x'.repeat(BODY_LIMIT_BYTES) } });
      expectProblem(res, 413, 'payload_too_large');
      const batch = await post('/v1/memories/batch', {
        items: Array.from({ length: 200 }, (_, i) => ({ text: `item ${i}` })),
      });
      expectProblem(batch, 413, 'payload_too_large');
      await expectNothingWritten();
    });

    it('answers text over MAX_TEXT_BYTES with 413 text_too_large, counting bytes not characters', async () => {
      const long = await post('/v1/memories', { text: 'x'.repeat(MAX_TEXT_BYTES + 1) });
      const p = expectProblem(long, 413, 'text_too_large', 'text');
      expect(p.detail).toContain(String(MAX_TEXT_BYTES));
      // 40 characters, 120 bytes.
      expectProblem(await post('/v1/memories', { text: '€'.repeat(40) }), 413, 'text_too_large', 'text');
      expectProblem(
        await post('/v1/memories/batch', {
          items: [{ text: 'ok' }, { text: 'y'.repeat(MAX_TEXT_BYTES + 1) }],
        }),
        413,
        'text_too_large',
        'items[1].text',
      );
      expectProblem(
        await inject({
          method: 'PATCH',
          url: `/v1/memories/${existing.id}`,
          payload: { text: 'z'.repeat(MAX_TEXT_BYTES + 1) },
        }),
        413,
        'text_too_large',
        'text',
      );
      await expectNothingWritten();

      const exact = await post('/v1/memories', { text: 'w'.repeat(MAX_TEXT_BYTES) });
      expect(exact.statusCode).toBe(201);
    });
  });

  describe('schema validation', () => {
    it('refuses unknown fields, naming them', async () => {
      const res = await post('/v1/memories', { text: 'hello', colour: 'red' });
      const p = expectProblem(res, 400, 'validation_failed', 'colour');
      expect(p.errors?.[0]).toMatchObject({ in: 'body', message: 'unknown field' });
      expectProblem(await post('/v1/search', { query: 'x', limit: 3 }), 400, 'validation_failed', 'limit');
      expectProblem(
        await post('/v1/divisions', { id: 'newdiv', owner: 'me' }),
        400,
        'validation_failed',
        'owner',
      );
      const q = await inject({ method: 'GET', url: '/v1/memories?colour=red' });
      expect(expectProblem(q, 400, 'validation_failed', 'colour').errors?.[0].in).toBe('query');
      expectProblem(
        await post('/v1/memories?wait=true&sync=1', { text: 'hello' }),
        400,
        'validation_failed',
        'sync',
      );
      await expectNothingWritten();
    });

    it('refuses values of the wrong type without coercing them', async () => {
      expectProblem(await post('/v1/search', { query: 'x', k: '10' }), 400, 'validation_failed', 'k');
      expectProblem(await post('/v1/search', { query: 'x', k: 2.5 }), 400, 'validation_failed', 'k');
      expectProblem(await post('/v1/memories', { text: 42 }), 400, 'validation_failed', 'text');
      expectProblem(await post('/v1/memories', { text: ['a'] }), 400, 'validation_failed', 'text');
      expectProblem(await post('/v1/memories', { text: null }), 400, 'validation_failed', 'text');
      expectProblem(await post('/v1/memories', { text: 'a', tags: 'a,b' }), 400, 'validation_failed', 'tags');
      expectProblem(
        await post('/v1/memories', { text: 'a', tags: [1] }),
        400,
        'validation_failed',
        'tags[0]',
      );
      expectProblem(
        await post('/v1/memories', { text: 'a', tags: [''] }),
        400,
        'validation_failed',
        'tags[0]',
      );
      expectProblem(
        await post('/v1/memories', { text: 'a', metadata: ['x'] }),
        400,
        'validation_failed',
        'metadata',
      );
      expectProblem(
        await post('/v1/memories', { text: 'a', metadata: 'x' }),
        400,
        'validation_failed',
        'metadata',
      );
      expectProblem(
        await post('/v1/memories', { text: 'a', vector: ['1'], model: 'use-lite' }),
        400,
        'validation_failed',
        'vector[0]',
      );
      expectProblem(await post('/v1/memories', [{ text: 'a' }]), 400, 'validation_failed', '(root)');
      expectProblem(
        await post('/v1/memories', JSON.stringify('just a string'), { 'content-type': 'application/json' }),
        400,
        'validation_failed',
        '(root)',
      );
      expectProblem(await post('/v1/memories', {}), 400, 'validation_failed', 'text');
      expectProblem(
        await post('/v1/memories', { text: 'a', namespace: 'has space' }),
        400,
        'validation_failed',
        'namespace',
      );
      expectProblem(
        await post('/v1/memories', { text: 'a', kind: 'Capital' }),
        400,
        'validation_failed',
        'kind',
      );
      expectProblem(
        await post('/v1/memories', { text: 'a', divisionId: 'UPPER' }),
        400,
        'validation_failed',
        'divisionId',
      );
      await expectNothingWritten();
    });

    it('refuses empty and whitespace-only text', async () => {
      for (const text of ['', ' ', '   \n\t  ', '\u00a0\u2003']) {
        expectProblem(await post('/v1/memories', { text }), 400, 'validation_failed', 'text');
      }
      expectProblem(
        await inject({ method: 'PATCH', url: `/v1/memories/${existing.id}`, payload: { text: '  ' } }),
        400,
        'validation_failed',
        'text',
      );
      await expectNothingWritten();
    });

    it('refuses NUL characters with a 400, not a database error', async () => {
      expectProblem(
        await post('/v1/memories', { text: 'before\u0000after' }),
        400,
        'validation_failed',
        'text',
      );
      await expectNothingWritten();
    });

    it('refuses NUL characters in metadata with a 400, not a database error', async () => {
      expectProblem(
        await post('/v1/memories', { text: 'fine', metadata: { note: 'a\u0000b' } }),
        400,
        'validation_failed',
      );
      await expectNothingWritten();
    });

    it('answers a search query holding a NUL character without a server error', async () => {
      const res = await post('/v1/search', { query: 'canary\u0000dawn', mode: 'keyword' });
      expect(res.statusCode, res.body).toBeLessThan(500);
    });

    it('refuses an invalid memory id in the path', async () => {
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const res = await inject({
          method,
          url: '/v1/memories/not-a-uuid',
          payload: method === 'PATCH' ? { tags: ['a'] } : undefined,
        });
        const p = expectProblem(res, 400, 'validation_failed', 'id');
        expect(p.errors?.[0].in).toBe('params');
      }
      expectProblem(
        await inject({ method: 'GET', url: `/v1/memories/${existing.id}x` }),
        400,
        'validation_failed',
        'id',
      );
      expectProblem(
        await inject({ method: 'GET', url: '/v1/memories/00000000-0000-4000-8000-000000000000' }),
        404,
        'memory_not_found',
      );
    });

    it('refuses k out of range, and list limits out of range', async () => {
      expectProblem(await post('/v1/search', { query: 'x', k: 0 }), 400, 'validation_failed', 'k');
      expectProblem(await post('/v1/search', { query: 'x', k: 101 }), 400, 'validation_failed', 'k');
      expectProblem(await post('/v1/search', { query: 'x', k: -1 }), 400, 'validation_failed', 'k');
      expect((await post('/v1/search', { query: 'x', k: 100 })).statusCode).toBe(200);
      expectProblem(
        await inject({ method: 'GET', url: '/v1/memories?limit=0' }),
        400,
        'validation_failed',
        'limit',
      );
      expectProblem(
        await inject({ method: 'GET', url: '/v1/memories?limit=501' }),
        400,
        'validation_failed',
        'limit',
      );
      expectProblem(
        await inject({ method: 'GET', url: '/v1/memories?limit=ten' }),
        400,
        'validation_failed',
        'limit',
      );
      expectProblem(
        await post('/v1/search', { query: 'x', mode: 'semantic' }),
        400,
        'validation_failed',
        'mode',
      );
      expectProblem(
        await post('/v1/search', { query: 'x', createdAfter: 'yesterday' }),
        400,
        'validation_failed',
        'createdAfter',
      );
      expectProblem(await post('/v1/search', { query: '' }), 400, 'validation_failed', 'query');
    });

    it('asks for a query or a vector in search', async () => {
      expectProblem(await post('/v1/search', {}), 400, 'query_required', 'query');
      expectProblem(await post('/v1/search', { k: 5, mode: 'vector' }), 400, 'query_required', 'query');
      expectProblem(
        await post('/v1/search', { vector: [0.1, 0.2], mode: 'keyword' }),
        400,
        'query_required',
        'query',
      );
      expectProblem(
        await post('/v1/search', { vector: [1, 2, 3], mode: 'vector' }),
        422,
        'vector_dimension_mismatch',
        'vector',
      );
    });

    it('refuses a malformed or foreign cursor with invalid_cursor', async () => {
      await post('/v1/divisions', { id: 'div-a' });
      await post('/v1/divisions', { id: 'div-b' });
      for (let i = 0; i < 3; i++) {
        expect((await post('/v1/memories', { divisionId: 'div-a', text: `a${i}` })).statusCode).toBe(201);
      }
      written = await counts();
      const page = await inject({ method: 'GET', url: '/v1/memories?divisionId=div-a&limit=1' });
      const cursor = page.json<{ nextCursor: string }>().nextCursor;
      expect(cursor).toEqual(expect.any(String));

      for (const bad of [
        'garbage',
        'e30',
        Buffer.from('{"d":"div-a","k":"1"}').toString('base64url'),
        '%00',
      ]) {
        expectProblem(
          await inject({ method: 'GET', url: `/v1/memories?divisionId=div-a&cursor=${bad}` }),
          400,
          'invalid_cursor',
          'cursor',
        );
      }
      expectProblem(
        await inject({ method: 'GET', url: `/v1/memories?divisionId=div-b&cursor=${cursor}` }),
        400,
        'invalid_cursor',
        'cursor',
      );
      expectProblem(
        await inject({ method: 'GET', url: `/v1/memories?cursor=${cursor}` }),
        400,
        'invalid_cursor',
        'cursor',
      );
      const next = await inject({
        method: 'GET',
        url: `/v1/memories?divisionId=div-a&limit=1&cursor=${cursor}`,
      });
      expect(next.statusCode).toBe(200);
      expect(next.json().items).toHaveLength(1);
      await expectNothingWritten();
    });

    it('refuses malformed If-Match and Idempotency-Key headers', async () => {
      expectProblem(
        await inject({
          method: 'PATCH',
          url: `/v1/memories/${existing.id}`,
          payload: { tags: ['a'] },
          headers: { 'if-match': 'yesterday' },
        }),
        400,
        'precondition_invalid',
        'If-Match',
      );
      expectProblem(
        await inject({
          method: 'PATCH',
          url: `/v1/memories/${existing.id}`,
          payload: {},
        }),
        400,
        'validation_failed',
      );
      expectProblem(
        await post('/v1/memories', { text: 'keyed' }, { 'idempotency-key': 'has space' }),
        400,
        'validation_failed',
        'Idempotency-Key',
      );
      expectProblem(
        await post('/v1/memories', { text: 'keyed' }, { 'idempotency-key': 'k'.repeat(256) }),
        400,
        'validation_failed',
        'Idempotency-Key',
      );
      await expectNothingWritten();
      const read = await inject({ method: 'GET', url: `/v1/memories/${existing.id}` });
      expect(read.json<Memory>().tags).toEqual(['bird']);
    });

    it('answers an unknown route with a 404 problem', async () => {
      const res = await inject({ method: 'GET', url: '/v1/nothing-here?x=1' });
      const p = expectProblem(res, 404, 'not_found');
      expect(p.detail).toContain('/v1/nothing-here');
      expect(p.instance).toBe('/v1/nothing-here');
      expectProblem(await inject({ method: 'PUT', url: '/v1/memories', payload: {} }), 404, 'not_found');
      expectProblem(await post('/v1/jobs/dead/abc/retry', {}), 400, 'validation_failed', 'id');
    });

    it('echoes a valid request id and replaces an invalid one', async () => {
      const ok = await inject({
        method: 'POST',
        url: '/v1/search',
        payload: {},
        headers: { 'x-request-id': 'req-123' },
      });
      expect(ok.headers['x-request-id']).toBe('req-123');
      expect(ok.json<Problem>().requestId).toBe('req-123');
      const bad = await inject({
        method: 'POST',
        url: '/v1/search',
        payload: {},
        headers: { 'x-request-id': 'no spaces allowed' },
      });
      expect(bad.headers['x-request-id']).not.toBe('no spaces allowed');
      expect(bad.json<Problem>().requestId).toBe(bad.headers['x-request-id']);
    });
  });

  describe('SQL injection', () => {
    it('stores hostile text, tags and metadata verbatim and finds only them', async () => {
      const ids: string[] = [];
      for (const [i, s] of INJECTIONS.entries()) {
        const res = await post('/v1/memories?wait=true', {
          text: `Injection ${i}: ${s}`,
          tags: [s, `tag-${i}`],
          metadata: { [s]: s, plain: s },
        });
        expect(res.statusCode, res.body).toBe(201);
        const m = res.json<Memory>();
        expect(m.text).toBe(`Injection ${i}: ${s}`);
        expect(m.tags).toEqual([s, `tag-${i}`]);
        expect(m.metadata).toEqual({ [s]: s, plain: s });
        expect(m.status).toBe('indexed');
        const read = await inject({ method: 'GET', url: `/v1/memories/${m.id}` });
        expect(read.json<Memory>()).toMatchObject({ text: m.text, tags: m.tags, metadata: m.metadata });
        ids.push(m.id);
      }

      for (const [i, s] of INJECTIONS.entries()) {
        for (const mode of ['keyword', 'vector', 'hybrid']) {
          const byTag = await post('/v1/search', { query: s, tags: [s], mode });
          expect(byTag.statusCode, byTag.body).toBe(200);
          expect(byTag.json().hits.map((h: { id: string }) => h.id)).toEqual([ids[i]]);
          const byMeta = await post('/v1/search', { query: 'injection', metadata: { [s]: s }, mode });
          expect(byMeta.statusCode, byMeta.body).toBe(200);
          expect(byMeta.json().hits.map((h: { id: string }) => h.id)).toEqual([ids[i]]);
          const byValue = await post('/v1/search', { query: 'injection', metadata: { plain: s }, mode });
          expect(byValue.json().hits.map((h: { id: string }) => h.id)).toEqual([ids[i]]);
        }
        const keyword = await post('/v1/search', { query: s, mode: 'keyword', k: 100 });
        expect(keyword.statusCode, keyword.body).toBe(200);
        const found = keyword.json<{ hits: { id: string; text: string }[] }>().hits;
        expect(found.map((h) => h.id)).not.toContain(existing.id);
        expect(found.every((h) => h.text.startsWith('Injection'))).toBe(true);
      }
    });

    it('refuses hostile strings in identifier-like filters instead of running them', async () => {
      for (const s of INJECTIONS) {
        const q = encodeURIComponent(s);
        for (const param of ['namespace', 'agentId', 'kind', 'divisionId']) {
          expectProblem(
            await inject({ method: 'GET', url: `/v1/memories?${param}=${q}` }),
            400,
            'validation_failed',
            param,
          );
          expectProblem(
            await post('/v1/search', { query: 'x', [param]: s }),
            400,
            'validation_failed',
            param,
          );
          expectProblem(
            await post('/v1/memories', { text: 'x', [param]: s }),
            400,
            'validation_failed',
            param,
          );
        }
        expectProblem(
          await inject({ method: 'GET', url: `/v1/memories/${q}` }),
          400,
          'validation_failed',
          'id',
        );
        expectProblem(
          await inject({ method: 'GET', url: `/v1/divisions/${q}` }),
          400,
          'validation_failed',
          'id',
        );
        expectProblem(
          await inject({ method: 'GET', url: `/v1/memories?cursor=${q}` }),
          400,
          'invalid_cursor',
          'cursor',
        );
        expectProblem(
          await post('/v1/search', { query: 'x', createdAfter: s }),
          400,
          'validation_failed',
          'createdAfter',
        );
      }
      await expectNothingWritten();
    });

    it('leaves every table in place', async () => {
      const tables = await ta.app.db.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`,
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining(['agents', 'divisions', 'idempotency_keys', 'jobs', 'memory_nodes']),
      );
      const list = await inject({ method: 'GET', url: '/v1/memories?limit=500' });
      expect(list.statusCode).toBe(200);
      expect(list.json().items.map((m: Memory) => m.id)).toContain(existing.id);
      expect((await counts()).memories).toBeGreaterThanOrEqual(INJECTIONS.length + 1);
    });
  });
});
