import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Bulk import (POST /v1/memories/import): NDJSON streamed line by line, good lines written with
 * COPY, bad lines reported by number (or, atomic, everything rolled back), chunks resumable with
 * an Idempotency-Key. Precomputed vectors keep it fast; lines without one are embedded by the
 * built-in model like any write.
 */

interface Report {
  divisionId: string;
  imported: number;
  replayed: number;
  failed: number;
  lines: number;
  errors: { line: number; code: string; field: string; message: string }[];
  errorsTruncated: boolean;
}

/** A unit vector of the built-in model's 512 dimensions, distinct per seed. */
function vector(seed: number): number[] {
  const v = Array.from({ length: 512 }, (_, i) => Math.sin(seed * 7.3 + i * 0.37));
  const norm = Math.hypot(...v);
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

const ndjson = (lines: unknown[]) =>
  `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`;

describe.each(backends)('bulk import on %s', (backend) => {
  let ta: TestApp;
  const call = (opts: InjectOptions): Promise<LightMyRequestResponse> => ta.http.inject(opts);
  const importBody = (body: string, query = 'divisionId=default', headers: Record<string, string> = {}) =>
    call({
      method: 'POST',
      url: `/v1/memories/import?${query}`,
      headers: { 'content-type': 'application/x-ndjson', ...headers },
      payload: body,
    });
  const count = async (divisionId: string) => {
    const res = await ta.t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM memory_nodes WHERE division_id = $1',
      [divisionId],
    );
    return res.rows[0].n;
  };
  const auditCount = async (divisionId: string) => {
    const res = await ta.t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit_events WHERE division_id = $1',
      [divisionId],
    );
    return res.rows[0].n;
  };

  beforeAll(async () => {
    ta = await startTestApp(backend, { env: { IMPORT_CHUNK_LINES: '4', MAX_TEXT_BYTES: '2048' } });
    for (const id of ['imp-partial', 'imp-atomic', 'imp-resume', 'imp-limits']) {
      expect((await call({ method: 'POST', url: '/v1/divisions', payload: { id } })).statusCode).toBe(201);
    }
    await call({ method: 'POST', url: '/v1/divisions/imp-partial/agents', payload: { id: 'ana' } });
    await call({ method: 'POST', url: '/v1/divisions/imp-atomic/agents', payload: { id: 'bea' } });
  });
  afterAll(async () => {
    await ta?.close();
  });

  it('writes the good lines, reports each bad one by number and code, and indexes what it wrote', async () => {
    const body = ndjson([
      {
        text: 'Ana: my sister Maya moved to Lisbon last spring',
        vector: vector(1),
        model: 'use-lite',
        sessionId: 'chat-1',
        agentId: 'ana',
      },
      {
        text: 'Bo: Lisbon has the best custard tarts',
        vector: vector(2),
        model: 'use-lite',
        sessionId: 'chat-1',
      },
      '{"text": "broken',
      { text: 'a line with an unknown field', colour: 'blue' },
      '',
      { text: '   ' },
      { text: 'mail me at ana@example.com', tags: ['ana@example.com'] },
      { text: 'wrong size of vector', vector: [0.1, 0.2], model: 'use-lite' },
      { text: 'an agent that does not exist', agentId: 'nobody' },
      { text: 'replaces something unknown', supersedes: ['00000000-0000-4000-8000-000000000000'] },
      {
        text: 'Ana: call me on ana@example.com about the kayak trip',
        sessionId: 'chat-1',
        occurredAt: '2023-05-08T13:56:00Z',
      },
    ]);
    const res = await importBody(body, 'divisionId=imp-partial');
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json<Report>();
    expect(report).toMatchObject({
      divisionId: 'imp-partial',
      imported: 3,
      replayed: 0,
      failed: 7,
      lines: 11,
    });
    expect(report.errors.map((e) => [e.line, e.code, e.field])).toEqual([
      [3, 'malformed_json', ''],
      [4, 'validation_failed', 'colour'],
      [6, 'validation_failed', 'text'],
      [7, 'pii_in_labels', 'tags[0]'],
      [8, 'vector_dimension_mismatch', 'vector'],
      [9, 'agent_not_found', 'agentId'],
      [10, 'memory_not_found', 'supersedes[0]'],
    ]);
    expect(await count('imp-partial')).toBe(3);

    // Stored like any write: the session in arrival order, PII flagged, audited, then indexed.
    const list = await call({
      method: 'GET',
      url: '/v1/memories?divisionId=imp-partial&sessionId=chat-1&limit=10',
    });
    const items = list.json<{
      items: { text: string; sequence: number; piiFlags: string[]; status: string }[];
    }>().items;
    expect(items.map((m) => m.sequence).sort()).toEqual([0, 1, 2]);
    expect(items.find((m) => m.text.includes('kayak'))?.piiFlags).toContain('email');
    expect(await auditCount('imp-partial')).toBeGreaterThanOrEqual(3);
    await waitFor(async () => (await pendingIn('imp-partial')) === 0, {
      what: 'the imported memories to be indexed',
      timeoutMs: 60_000,
    });
    const search = await call({
      method: 'POST',
      url: '/v1/search',
      payload: { divisionId: 'imp-partial', query: 'custard tarts', mode: 'keyword', k: 3 },
    });
    expect(search.json<{ hits: { text: string }[] }>().hits[0].text).toContain('custard tarts');
  });

  const pendingIn = async (divisionId: string) => {
    const res = await ta.t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM memory_nodes WHERE division_id = $1 AND status = 'pending'",
      [divisionId],
    );
    return res.rows[0].n;
  };

  it('atomic: one bad line rolls everything back (422 naming the line) and writes nothing', async () => {
    // An agent to check: the check must run in the import's own transaction (PGlite has one
    // connection, and a query beside the open transaction would wait for it forever).
    const good = Array.from({ length: 9 }, (_, i) => ({
      text: `atomic fact ${i}`,
      vector: vector(100 + i),
      model: 'use-lite',
      agentId: 'bea',
    }));
    const auditBefore = await auditCount('imp-atomic');
    const bad = await importBody(
      ndjson([...good.slice(0, 6), { text: '' }, ...good.slice(6)]),
      'divisionId=imp-atomic&atomic=true',
    );
    const problem = expectProblem(bad, 422, 'validation_failed', 'lines[7].text');
    expect(problem.errors).toHaveLength(1);
    expect(await count('imp-atomic')).toBe(0);
    expect(await auditCount('imp-atomic')).toBe(auditBefore);

    const ok = await importBody(ndjson(good), 'divisionId=imp-atomic&atomic=true');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json<Report>()).toMatchObject({ imported: 9, failed: 0 });
    expect(await count('imp-atomic')).toBe(9);
  });

  it('resumes with the same Idempotency-Key: chunks written before are skipped, the rest written once', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => ({
      text: `resumable fact ${i}`,
      vector: vector(200 + i),
      model: 'use-lite',
    }));
    // Interrupted after two chunks of four lines.
    const first = await importBody(ndjson(lines.slice(0, 8)), 'divisionId=imp-resume', {
      'idempotency-key': 'load-1',
    });
    expect(first.json<Report>()).toMatchObject({ imported: 8, replayed: 0 });
    const again = await importBody(ndjson(lines), 'divisionId=imp-resume', { 'idempotency-key': 'load-1' });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<Report>()).toMatchObject({ imported: 2, replayed: 8, failed: 0, lines: 10 });
    expect(await count('imp-resume')).toBe(10);
    // Another key is another import.
    const other = await importBody(ndjson(lines.slice(0, 2)), 'divisionId=imp-resume', {
      'idempotency-key': 'load-2',
    });
    expect(other.json<Report>()).toMatchObject({ imported: 2, replayed: 0 });
    expect(await count('imp-resume')).toBe(12);
  });

  it('refuses what is not NDJSON, an unknown division, a bad key and a body over the limit', async () => {
    const line = ndjson([{ text: 'never stored' }]);
    expectProblem(
      await call({
        method: 'POST',
        url: '/v1/memories/import?divisionId=imp-limits',
        headers: { 'content-type': 'application/json' },
        payload: line,
      }),
      415,
      'unsupported_media_type',
      'Content-Type',
    );
    expectProblem(await importBody(line, ''), 400, 'validation_failed', 'divisionId');
    expectProblem(await importBody(line, 'divisionId=no-such-division'), 404, 'division_not_found');
    expectProblem(
      await importBody(line, 'divisionId=imp-limits', { 'idempotency-key': 'bad key' }),
      400,
      'validation_failed',
      'Idempotency-Key',
    );
    // A line longer than a memory can be: reported, and the next line still imported.
    const huge = JSON.stringify({ text: 'x'.repeat(400_000) });
    const res = await importBody(
      `${huge}\n${JSON.stringify({ text: 'after the long line', vector: vector(300), model: 'use-lite' })}\n`,
      'divisionId=imp-limits',
    );
    expect(res.json<Report>()).toMatchObject({ imported: 1, failed: 1 });
    expect(res.json<Report>().errors[0]).toMatchObject({ line: 1, code: 'text_too_large' });
    expect(await count('imp-limits')).toBe(1);
  });
});

describe.each(backends)('bulk import size limit on %s', (backend) => {
  let ta: TestApp;
  beforeAll(async () => {
    ta = await startTestApp(backend, { env: { MAX_IMPORT_BYTES: '4096' } });
  });
  afterAll(async () => {
    await ta?.close();
  });

  it('stops a body over MAX_IMPORT_BYTES with 413; atomic imports write nothing', async () => {
    const body = ndjson(
      Array.from({ length: 100 }, (_, i) => ({ text: `line number ${i} of a large import` })),
    );
    const res = await ta.http.inject({
      method: 'POST',
      url: '/v1/memories/import?divisionId=default&atomic=true',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: body,
    });
    expectProblem(res, 413, 'payload_too_large', 'body');
    const n = await ta.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes');
    expect(n.rows[0].n).toBe(0);
  });
});

describe.each(backends)('imports indexed by the server itself on %s', (backend) => {
  // No worker: whatever is searchable by meaning when the import answers, the import indexed.
  let ta: TestApp;
  beforeAll(async () => {
    ta = await startTestApp(backend, { worker: false, env: { IMPORT_CHUNK_LINES: '4' } });
    for (const id of ['direct-partial', 'direct-atomic'])
      expect(
        (await ta.http.inject({ method: 'POST', url: '/v1/divisions', payload: { id } })).statusCode,
      ).toBe(201);
  });
  afterAll(async () => {
    await ta?.close();
  });

  const statusOf = async (divisionId: string) => {
    const res = await ta.t.db.query<{ text: string; status: string }>(
      'SELECT text, status FROM memory_nodes WHERE division_id = $1 ORDER BY text',
      [divisionId],
    );
    return Object.fromEntries(res.rows.map((r) => [r.text, r.status]));
  };
  const jobsFor = async (divisionId: string) => {
    const res = await ta.t.db.query<{ text: string }>(
      `SELECT n.text FROM jobs j JOIN memory_nodes n ON n.id = (j.payload->>'nodeId')::uuid
       WHERE n.division_id = $1 ORDER BY n.text`,
      [divisionId],
    );
    return res.rows.map((r) => r.text);
  };
  const nearest = async (divisionId: string, seed: number) => {
    const res = await ta.http.inject({
      method: 'POST',
      url: '/v1/search',
      payload: { divisionId, mode: 'vector', vector: vector(seed), k: 1 },
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ hits: { text: string; score: number }[] }>().hits[0];
  };

  it.each([
    ['direct-partial', ''],
    ['direct-atomic', '&atomic=true'],
  ])(
    '%s: vectors outside sessions are searchable when the import answers; the rest wait for the worker',
    async (divisionId, query) => {
      const lines = [
        ...Array.from({ length: 6 }, (_, i) => ({
          text: `loose fact ${i}`,
          vector: vector(300 + i),
          model: 'use-lite',
        })),
        { text: 'session turn 0', vector: vector(310), model: 'use-lite', sessionId: 's1' },
        { text: 'session turn 1', vector: vector(311), model: 'use-lite', sessionId: 's1' },
        { text: 'a fact to embed' },
      ];
      const res = await ta.http.inject({
        method: 'POST',
        url: `/v1/memories/import?divisionId=${divisionId}${query}`,
        headers: { 'content-type': 'application/x-ndjson' },
        payload: ndjson(lines),
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<Report>()).toMatchObject({ imported: 9, failed: 0 });

      const status = await statusOf(divisionId);
      for (let i = 0; i < 6; i++) expect(status[`loose fact ${i}`]).toBe('indexed');
      // Blended with their neighbours, or embedded: the worker's jobs, still queued.
      expect(await jobsFor(divisionId)).toEqual(['a fact to embed', 'session turn 0', 'session turn 1']);
      for (const t of ['session turn 0', 'session turn 1', 'a fact to embed'])
        expect(status[t]).toBe('pending');
      for (let i = 0; i < 6; i++) {
        const hit = await nearest(divisionId, 300 + i);
        expect(hit.text).toBe(`loose fact ${i}`);
        expect(hit.score).toBeCloseTo(1, 4);
      }
    },
  );
});
