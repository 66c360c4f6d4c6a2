import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemAccess } from '../../src/memories/access.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';

/**
 * Memories that know their conversation: session, sequence and occurredAt on writes, reads and
 * filters; superseded memories skipped by search; neighbours returned with hits, in session
 * order, never from another session, division or agent.
 */

interface Memory {
  id: string;
  text: string;
  sessionId: string | null;
  sequence: number | null;
  occurredAt: string | null;
  supersededBy: string | null;
  version: number;
}
interface Neighbour {
  id: string;
  text: string;
  sequence: number;
}
interface Hit {
  id: string;
  text: string;
  sessionId: string | null;
  sequence: number | null;
  context?: { before: Neighbour[]; after: Neighbour[] };
}

describe.each(backends)('conversations on %s', (backend) => {
  let ta: TestApp;
  const call = (opts: InjectOptions): Promise<LightMyRequestResponse> => ta.http.inject(opts);
  const write = async (body: Record<string, unknown>) => {
    const res = await call({ method: 'POST', url: '/v1/memories?wait=true', payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Memory>();
  };
  const search = async (body: Record<string, unknown>) => {
    const res = await call({ method: 'POST', url: '/v1/search', payload: body });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ hits: Hit[] }>().hits;
  };

  beforeAll(async () => {
    ta = await startTestApp(backend);
    for (const id of ['other']) {
      await call({ method: 'POST', url: '/v1/divisions', payload: { id } });
    }
    for (const agent of ['ana', 'bo']) {
      await call({ method: 'POST', url: '/v1/divisions/default/agents', payload: { id: agent } });
    }
  });
  afterAll(async () => {
    await ta?.close();
  });

  it('stores, returns and filters the conversation fields; sequences default to arrival order', async () => {
    const batch = await call({
      method: 'POST',
      url: '/v1/memories/batch',
      payload: {
        items: [
          {
            text: 'Ana: I adopted a grey cat named Pixel',
            sessionId: 's-1',
            occurredAt: '2023-05-08T13:56:00Z',
          },
          { text: 'Bo: what a lovely name for a cat', sessionId: 's-1', occurredAt: '2023-05-08T13:57:00Z' },
          { text: 'Ana: thanks, she sleeps all day', sessionId: 's-1' },
          { text: 'a note outside any session' },
        ],
      },
    });
    expect(batch.statusCode, batch.body).toBe(201);
    const items = batch.json<{ items: Memory[] }>().items;
    expect(items.map((m) => [m.sessionId, m.sequence])).toEqual([
      ['s-1', 0],
      ['s-1', 1],
      ['s-1', 2],
      [null, null],
    ]);
    expect(items[0].occurredAt).toBe('2023-05-08T13:56:00.000Z');
    const next = await write({ text: 'Bo: cats do that', sessionId: 's-1' });
    expect(next.sequence).toBe(3);
    const explicit = await write({ text: 'Ana: later that year', sessionId: 's-2', sequence: 7 });
    expect(explicit.sequence).toBe(7);

    const listed = await call({ method: 'GET', url: '/v1/memories?sessionId=s-1&limit=50' });
    expect(
      listed
        .json<{ items: Memory[] }>()
        .items.map((m) => m.sequence)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    const inMay = await call({
      method: 'GET',
      url: '/v1/memories?occurredAfter=2023-05-08T13:56:30Z&occurredBefore=2023-06-01T00:00:00Z',
    });
    expect(inMay.json<{ items: Memory[] }>().items.map((m) => m.id)).toEqual([items[1].id]);
    const hits = await search({
      query: 'cat',
      mode: 'keyword',
      sessionId: 's-1',
      occurredBefore: '2023-05-08T13:56:30Z',
    });
    expect(hits.map((h) => h.id)).toEqual([items[0].id]);
  });

  it('refuses bad conversation fields, naming them, and writes nothing', async () => {
    const count = async () =>
      (await ta.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes')).rows[0].n;
    const before = await count();
    expectProblem(
      await call({ method: 'POST', url: '/v1/memories', payload: { text: 'x', sessionId: 'Not An Id!' } }),
      400,
      'validation_failed',
      'sessionId',
    );
    expectProblem(
      await call({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'x', sessionId: 's', sequence: -1 },
      }),
      400,
      'validation_failed',
      'sequence',
    );
    expectProblem(
      await call({ method: 'POST', url: '/v1/memories', payload: { text: 'x', sequence: 3 } }),
      400,
      'validation_failed',
      'sequence',
    );
    expectProblem(
      await call({ method: 'POST', url: '/v1/memories', payload: { text: 'x', occurredAt: 'last May' } }),
      400,
      'validation_failed',
      'occurredAt',
    );
    expectProblem(
      await call({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: [{ text: 'ok' }, { text: 'x', sessionId: 's', sequence: 1.5 }] },
      }),
      400,
      'validation_failed',
      'items[1].sequence',
    );
    expect(await count()).toBe(before);
  });

  it('skips superseded memories in search unless asked; they stay readable and audited', async () => {
    const old = await write({ text: 'Ana lives in Lisbon near the river', sessionId: 'moves' });
    const newer = await write({
      text: 'Ana moved to Porto last spring',
      sessionId: 'moves',
      supersedes: [old.id],
    });
    const got = await call({ method: 'GET', url: `/v1/memories/${old.id}` });
    expect(got.json<Memory>()).toMatchObject({ supersededBy: newer.id, version: old.version + 1 });
    const plain = await search({ query: 'where does Ana live Lisbon', mode: 'keyword' });
    expect(plain.map((h) => h.id)).not.toContain(old.id);
    const all = await search({
      query: 'where does Ana live Lisbon',
      mode: 'keyword',
      includeSuperseded: true,
    });
    expect(all.map((h) => h.id)).toContain(old.id);
    const events = (await ta.app.audit.list('default', { limit: 1000 })).events;
    expect(events.filter((e) => e.resourceId === old.id).map((e) => e.action)).toContain('memory.supersede');
  });

  it('refuses superseding an unknown or foreign memory (404) and writes nothing', async () => {
    const foreign = await call({
      method: 'POST',
      url: '/v1/memories?wait=true',
      payload: { text: 'elsewhere', divisionId: 'other' },
    });
    const foreignId = foreign.json<Memory>().id;
    const count = async () =>
      (await ta.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes')).rows[0].n;
    const before = await count();
    for (const id of [foreignId, '00000000-0000-4000-8000-000000000000']) {
      const res = await call({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'replacement', supersedes: [id] },
      });
      expectProblem(res, 404, 'memory_not_found', 'supersedes[0]');
    }
    expect(await count()).toBe(before);
    const untouched = await call({ method: 'GET', url: `/v1/memories/${foreignId}?divisionId=other` });
    expect(untouched.json<Memory>().supersededBy).toBeNull();
  });

  it('expands hits with their session neighbours in order, never across sessions, divisions or agents', async () => {
    const turns = [];
    for (const [i, text] of [
      'Ana: we drove to the coast on Saturday',
      'Bo: how was the weather there',
      'Ana: windy but the lighthouse tour was wonderful',
      'Bo: did you climb to the top',
      'Ana: all two hundred steps',
    ].entries()) {
      turns.push(await write({ text, sessionId: 'trip', agentId: i % 2 === 0 ? 'ana' : 'bo' }));
    }
    await write({ text: 'Ana: another lighthouse story from a different chat', sessionId: 'trip-2' });
    await call({
      method: 'POST',
      url: '/v1/memories?wait=true',
      payload: { text: 'Ana: lighthouse in another division', sessionId: 'trip', divisionId: 'other' },
    });
    const hits = await search({
      query: 'lighthouse tour wonderful',
      mode: 'keyword',
      sessionId: 'trip',
      k: 1,
      expand: { before: 2, after: 1 },
    });
    expect(hits[0].id).toBe(turns[2].id);
    expect(hits[0].context?.before.map((n) => n.id)).toEqual([turns[0].id, turns[1].id]);
    expect(hits[0].context?.after.map((n) => n.id)).toEqual([turns[3].id]);

    // An agent sees only its own memories: the other agent's turns are not its neighbours.
    const asAna = { ...systemAccess('test'), divisions: ['default'], agentId: 'ana' };
    const own = await ta.app.search.search(asAna, {
      divisionId: 'default',
      query: 'lighthouse tour wonderful',
      mode: 'keyword',
      sessionId: 'trip',
      k: 1,
      expand: { before: 3, after: 3 },
    });
    expect(own.hits[0].id).toBe(turns[2].id);
    expect(own.hits[0].context?.before.map((n) => n.id)).toEqual([turns[0].id]);
    expect(own.hits[0].context?.after.map((n) => n.id)).toEqual([turns[4].id]);
  });

  it('redacts neighbours like hits for callers without pii:read', async () => {
    const a = await write({ text: 'Mail me at jane.roe@example.com about the venue', sessionId: 'pii-chat' });
    const b = await write({ text: 'Sure, the venue is booked for Friday', sessionId: 'pii-chat' });
    const noPii = { ...systemAccess('test'), divisions: ['default'], piiRead: false };
    const res = await ta.app.search.search(noPii, {
      divisionId: 'default',
      query: 'venue booked Friday',
      mode: 'keyword',
      sessionId: 'pii-chat',
      k: 1,
      expand: { before: 1 },
    });
    expect(res.hits[0].id).toBe(b.id);
    expect(res.hits[0].context?.before).toEqual([
      expect.objectContaining({ id: a.id, text: 'Mail me at [EMAIL] about the venue', redacted: true }),
    ]);
  });
});
