import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalObjectStore } from '../../src/adapters/objects/local.js';
import { createVectorIndex } from '../../src/adapters/vector/index.js';
import { createSnapshot } from '../../src/backup/backup.js';
import { loadVectorSnapshot } from '../../src/backup/vector-snapshot.js';
import { blendWithNeighbours } from '../../src/indexing/contextual-vectors.js';
import { INDEX_QUEUE } from '../../src/indexing/queue.js';
import { bytesToVector, cosineDistance } from '../../src/memories/vector-codec.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Conversation-aware retrieval on a small conversation written here: turns that only their
 * neighbours explain are found; hybrid search does at least as well as each retriever alone; the
 * vectors in the index blend session neighbours and follow when a neighbour changes or goes; the
 * exact scan and the vector snapshot hold the same vectors as the index.
 */

const SESSIONS: { id: string; date: string; turns: string[] }[] = [
  {
    id: 'pottery',
    date: '2023-05-08T13:56:00Z',
    turns: [
      'Ana: I finally signed up for the pottery class at the community centre.',
      'Bo: Oh nice! When does it start?',
      "Ana: Next Tuesday evening, I can't wait.",
      'Bo: Bring an old shirt, the clay gets everywhere.',
      "Ana: Good idea, I'll dig one out.",
    ],
  },
  {
    id: 'puppy',
    date: '2023-06-02T18:10:00Z',
    turns: [
      'Bo: We adopted a puppy last weekend!',
      'Ana: No way! What breed is the puppy?',
      "Bo: A border collie, she's called Maple.",
      'Ana: Collies need a lot of exercise.',
      'Bo: Tell me about it, we walk her three times a day.',
    ],
  },
  {
    id: 'wedding',
    date: '2023-07-15T09:30:00Z',
    turns: [
      'Ana: My sister is getting married in September.',
      'Bo: Congratulations to her! Where is the wedding going to be?',
      'Ana: At a vineyard near Porto.',
      'Bo: That sounds beautiful.',
      'Ana: I still need to find a dress.',
    ],
  },
  {
    id: 'errands',
    date: '2023-08-01T08:00:00Z',
    turns: [
      'Bo: The gym changed its schedule, spinning is on Tuesday now.',
      'Ana: I prefer yoga on Thursday mornings.',
      'Bo: My uncle breeds horses in the countryside.',
      'Ana: I went to Lisbon for work last year.',
      'Bo: The dentist moved my appointment to Friday.',
    ],
  },
];

/** Questions whose answer is a turn that does not say what it is about: its neighbours do. */
const QUESTIONS: { question: string; answer: [session: string, turn: number] }[] = [
  { question: 'When does the pottery class start?', answer: ['pottery', 2] },
  { question: 'What breed is the puppy Bo adopted?', answer: ['puppy', 2] },
  { question: 'Where is the wedding of Ana’s sister?', answer: ['wedding', 2] },
];

interface Hit {
  id: string;
  vectorScore?: number;
}

describe.each(backends)('conversation-aware retrieval on %s', (backend) => {
  let ta: TestApp;
  /** Memory ids by session and turn. */
  const ids = new Map<string, string[]>();
  const idOf = (session: string, turn: number) => ids.get(session)?.[turn] as string;
  const call = (opts: InjectOptions): Promise<LightMyRequestResponse> => ta.http.inject(opts);
  const search = async (body: Record<string, unknown>): Promise<Hit[]> => {
    const res = await call({ method: 'POST', url: '/v1/search', payload: body });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ hits: Hit[] }>().hits;
  };
  /** Waits until no index job is left: memories indexed and their neighbours re-blended. */
  const settled = () =>
    waitFor(
      async () => {
        await ta.app.worker.drain();
        const res = await ta.app.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM jobs WHERE queue = $1 AND status <> 'dead'",
          [INDEX_QUEUE],
        );
        return res.rows[0].n === 0;
      },
      { what: 'the index queue to be empty', timeoutMs: 60_000 },
    );
  const stored = async (id: string) => {
    const res = await ta.app.db.query<{ vector_key: number; embedding: Uint8Array }>(
      'SELECT vector_key, embedding FROM memory_nodes WHERE id = $1',
      [id],
    );
    return { key: Number(res.rows[0].vector_key), vector: bytesToVector(res.rows[0].embedding) };
  };
  /** The vector the index holds for `id`: the nearest entry to it is itself, at distance ~0. */
  const holds = async (id: string, vector: Float32Array) => {
    const { key } = await stored(id);
    const [nearest] = await ta.app.index.search(ta.app.embedder.model, 'default', vector, 1);
    return nearest?.key === key && nearest.distance < 1e-4;
  };
  const blendOf = async (id: string, neighbours: string[]) =>
    blendWithNeighbours(
      (await stored(id)).vector,
      await Promise.all(neighbours.map(async (n) => (await stored(n)).vector)),
      0.5,
    );

  beforeAll(async () => {
    ta = await startTestApp(backend);
    for (const s of SESSIONS) {
      const res = await call({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: s.turns.map((text) => ({ text, sessionId: s.id, occurredAt: s.date })) },
      });
      expect(res.statusCode, res.body).toBe(201);
      ids.set(
        s.id,
        res.json<{ items: { id: string }[] }>().items.map((m) => m.id),
      );
    }
    // Outside any session: indexed with its own vector.
    const note = await call({
      method: 'POST',
      url: '/v1/memories',
      payload: { text: 'Remember to renew the car insurance.' },
    });
    expect(note.statusCode, note.body).toBe(201);
    ids.set('none', [note.json<{ id: string }>().id]);
    await settled();
  }, 120_000);
  afterAll(async () => {
    await ta?.close();
  });

  it('finds, in hybrid search, turns that only their neighbours explain', async () => {
    for (const q of QUESTIONS) {
      const hits = await search({ query: q.question, k: 3 });
      expect(
        hits.map((h) => h.id),
        q.question,
      ).toContain(idOf(...q.answer));
    }
  });

  it('ranks with hybrid search at least as well as with either retriever alone', async () => {
    const found = { hybrid: 0, keyword: 0, vector: 0 };
    for (const q of QUESTIONS) {
      for (const mode of ['hybrid', 'keyword', 'vector'] as const) {
        const hits = await search({ query: q.question, k: 3, mode });
        if (hits.some((h) => h.id === idOf(...q.answer))) found[mode]++;
      }
    }
    expect(found.hybrid).toBeGreaterThanOrEqual(Math.max(found.keyword, found.vector));
  });

  it('expands a keyword query with words of its best hits when a search asks for feedback', async () => {
    const plain = await search({ query: 'pottery', k: 10, mode: 'keyword' });
    const expanded = await search({ query: 'pottery', k: 10, mode: 'keyword', feedback: true });
    // The question counts twice: what it found stays first; the expansion finds more.
    expect(expanded[0].id).toBe(plain[0].id);
    expect(expanded.length).toBeGreaterThan(plain.length);
    const bad = await call({
      method: 'POST',
      url: '/v1/search',
      payload: { query: 'pottery', feedback: 'yes' },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('indexes a session turn blended with its neighbours, a turn outside sessions as it is', async () => {
    const middle = idOf('puppy', 2);
    const blended = await blendOf(middle, [idOf('puppy', 1), idOf('puppy', 3)]);
    expect(await holds(middle, blended)).toBe(true);
    // The first turn has one neighbour; the blend is not the turn's own vector.
    const first = idOf('puppy', 0);
    expect(await holds(first, await blendOf(first, [idOf('puppy', 1)]))).toBe(true);
    expect(cosineDistance(blended, (await stored(middle)).vector)).toBeGreaterThan(0.01);
    const note = idOf('none', 0);
    expect(await holds(note, (await stored(note)).vector)).toBe(true);
  });

  it('re-blends the neighbours of a turn that changes or is deleted', async () => {
    const [before, changed, after] = [idOf('wedding', 2), idOf('wedding', 3), idOf('wedding', 4)];
    const old = await blendOf(before, [idOf('wedding', 1), changed]);
    expect(await holds(before, old)).toBe(true);

    const patch = await call({
      method: 'PATCH',
      url: `/v1/memories/${changed}`,
      payload: { text: 'Bo: Porto in September, the grapes will be ripe.' },
    });
    expect(patch.statusCode, patch.body).toBe(200);
    await settled();
    const renewed = await blendOf(before, [idOf('wedding', 1), changed]);
    expect(cosineDistance(old, renewed)).toBeGreaterThan(1e-3);
    expect(await holds(before, renewed)).toBe(true);
    expect(await holds(after, await blendOf(after, [changed]))).toBe(true);

    const removed = await call({ method: 'DELETE', url: `/v1/memories/${changed}` });
    expect(removed.statusCode, removed.body).toBe(204);
    await settled();
    // The deleted turn's neighbours are now each other's.
    expect(await holds(before, await blendOf(before, [idOf('wedding', 1), after]))).toBe(true);
    expect(await holds(after, await blendOf(after, [before]))).toBe(true);
  });

  it('re-blends the neighbours of a turn that expires', async () => {
    const [before, expiring, after] = [idOf('errands', 1), idOf('errands', 2), idOf('errands', 3)];
    expect(await holds(before, await blendOf(before, [idOf('errands', 0), expiring]))).toBe(true);
    await ta.app.db.query("UPDATE memory_nodes SET expires_at = now() - interval '1 minute' WHERE id = $1", [
      expiring,
    ]);
    expect((await ta.app.sweeper.runOnce()).expired).toBe(1);
    await settled();
    expect(await holds(before, await blendOf(before, [idOf('errands', 0), after]))).toBe(true);
    expect(await holds(after, await blendOf(after, [before, idOf('errands', 4)]))).toBe(true);
  });

  it('scores a turn the same whether the index or the exact scan answers', async () => {
    const question = 'What breed is the puppy?';
    // k 1: the index answers. A session filter with k above its size: the exact scan answers.
    const [top] = await search({ query: question, k: 1, mode: 'vector' });
    const scanned = await search({ query: question, k: 20, mode: 'vector', sessionId: 'puppy' });
    const same = scanned.find((h) => h.id === top.id);
    expect(same?.vectorScore).toBeCloseTo(top.vectorScore as number, 4);
    expect(scanned[0].id).toBe(top.id);
  });

  it('keeps in the vector snapshot what the index holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ml-context-snapshot-'));
    const index = await createVectorIndex('usearch', { db: ta.app.db, dataDir: join(dir, 'data') });
    try {
      const store = createLocalObjectStore({ dir: join(dir, 'store') });
      const manifest = await createSnapshot({ db: ta.app.db, store, signer: ta.app.signer });
      await loadVectorSnapshot(index, store, manifest);
      const model = ta.app.embedder.model;
      for (const id of [idOf('puppy', 2), idOf('pottery', 0), idOf('none', 0)]) {
        const { vector } = await stored(id);
        const live = await ta.app.index.search(model, 'default', vector, 5);
        const restored = await index.search(model, 'default', vector, 5);
        expect(restored.map((h) => h.key)).toEqual(live.map((h) => h.key));
        for (const [i, h] of restored.entries()) expect(h.distance).toBeCloseTo(live[i].distance, 4);
      }
    } finally {
      await index.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
