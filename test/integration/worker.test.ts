import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenAIEmbedder } from '../../src/adapters/embedders/openai.js';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { type EmbeddingsServer, startEmbeddingsServer } from '../../src/http/embeddings-server.js';
import { claim, complete } from '../../src/indexing/queue.js';
import { liveHolders } from '../../src/platform/lease.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';

interface Memory {
  id: string;
  status: 'pending' | 'indexed' | 'failed';
  embedding: { model: string; version: string; dimensions: number } | null;
}

interface DeadJob {
  id: number;
  queue: string;
  memoryId: string | null;
  attempts: number;
  lastError: string | null;
  failedAt: string;
  createdAt: string;
}

const LEASE_MS = 1000;

describe.each(backends)('indexing worker on %s', (backend) => {
  let ta: TestApp;
  let server: EmbeddingsServer;
  /** While true the embeddings server answers 500 to every request. */
  let failing = false;
  let requests = 0;
  /** A request for this text waits until `release` is called (a slow worker, held mid-embedding). */
  let held: { text: string; reached: () => void; gate: Promise<void> } | null = null;

  const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => ta.http.inject(opts);
  const getMemory = async (id: string) =>
    (await inject({ method: 'GET', url: `/v1/memories/${id}` })).json<Memory>();
  const deadJobs = async () => {
    const res = await inject({ method: 'GET', url: '/v1/jobs/dead' });
    expect(res.statusCode).toBe(200);
    return res.json<{ items: DeadJob[] }>().items;
  };
  const jobsOf = async (memoryId: string) =>
    (
      await ta.app.db.query<{ id: number; status: string; attempts: number }>(
        `SELECT id, status, attempts FROM jobs WHERE payload->>'nodeId' = $1 ORDER BY id`,
        [memoryId],
      )
    ).rows;
  const vectors = () => ta.app.index.count(ta.app.embedder.model, 'default');

  async function createMemory(text: string): Promise<Memory> {
    const res = await inject({ method: 'POST', url: '/v1/memories', payload: { text } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Memory>();
  }

  beforeAll(async () => {
    const local = await localEmbedder();
    // The real embeddings server, over the real model, with a switch that makes it fail.
    const switchable: Embedder = {
      model: local.model,
      async embed(texts, signal) {
        requests++;
        if (failing) throw new Error('model overloaded');
        if (held && texts.includes(held.text)) {
          held.reached();
          await held.gate;
        }
        return local.embed(texts, signal);
      },
      close: async () => {},
    };
    server = await startEmbeddingsServer(switchable, { host: '127.0.0.1', port: 0 });
    ta = await startTestApp(backend, {
      worker: false,
      embedder: createOpenAIEmbedder({
        url: server.url,
        model: 'use-lite',
        version: '0.2.0',
        dimensions: 512,
        timeoutMs: 15_000, // generous: a loaded CI machine must not turn slowness into failures
        batchSize: 8,
      }),
      env: { JOB_MAX_ATTEMPTS: '2', JOB_BACKOFF_MS: '0', JOB_LEASE_MS: String(LEASE_MS) },
    });
  });
  afterAll(async () => {
    await ta?.close();
    await server?.close();
  });

  it('indexes through the OpenAI-compatible embedder', async () => {
    const m = await createMemory('Indexed through HTTP: the boiler was serviced in March.');
    expect(m.status).toBe('pending');
    const before = requests;
    await ta.app.worker.drain();
    expect(requests).toBe(before + 1);
    const read = await getMemory(m.id);
    expect(read.status).toBe('indexed');
    expect(read.embedding).toEqual({ model: 'use-lite', version: '0.2.0', dimensions: 512 });
    expect(await jobsOf(m.id)).toEqual([]);
    expect(await vectors()).toBe(1);
  });

  it('dead-letters a job after its attempts, then a retry indexes the memory', async () => {
    failing = true;
    const m = await createMemory('Dead letter: the embedder is down for maintenance.');
    const deadBefore = (await deadJobs()).length;

    let dead: DeadJob | undefined;
    let runs = 0;
    for (; runs < 10 && !dead; runs++) {
      await ta.app.worker.runOnce();
      dead = (await deadJobs()).find((j) => j.memoryId === m.id);
    }
    expect(dead, 'the job never reached the dead-letter queue').toBeDefined();
    const job = dead as DeadJob;
    expect(runs).toBe(2); // JOB_MAX_ATTEMPTS
    expect(job).toMatchObject({ queue: 'index', memoryId: m.id, attempts: 2 });
    expect(job.lastError).toContain('500');
    expect(job.lastError).toContain('model overloaded');
    expect(Date.parse(job.failedAt)).toBeGreaterThanOrEqual(Date.parse(job.createdAt));
    expect(await deadJobs()).toHaveLength(deadBefore + 1);
    expect((await getMemory(m.id)).status).toBe('failed');
    // A dead job is not claimed again.
    expect(await ta.app.worker.runOnce()).toBe(0);

    const metrics = await inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/memory_layer_queue_depth\{queue="index",status="dead"\} 1/);
    expect(metrics.body).toMatch(/memory_layer_worker_errors_total\{stage="embed"\} 2/);
    const failed = await inject({ method: 'GET', url: '/v1/memories?status=failed' });
    expect(failed.json<{ items: Memory[] }>().items.map((x) => x.id)).toEqual([m.id]);

    failing = false;
    const retry = await inject({ method: 'POST', url: `/v1/jobs/dead/${job.id}/retry` });
    expect(retry.statusCode, retry.body).toBe(202);
    expect(retry.json()).toEqual({ id: job.id, status: 'queued' });
    expect((await getMemory(m.id)).status).toBe('pending');
    expect(await deadJobs()).toHaveLength(deadBefore);

    await ta.app.worker.drain();
    const read = await getMemory(m.id);
    expect(read.status).toBe('indexed');
    expect(read.embedding).toEqual({ model: 'use-lite', version: '0.2.0', dimensions: 512 });
    expect(await deadJobs()).toEqual([]);
    expect(await jobsOf(m.id)).toEqual([]);

    // Retrying again: the job is gone, not dead.
    const again = await inject({ method: 'POST', url: `/v1/jobs/dead/${job.id}/retry` });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toMatchObject({ code: 'job_not_found' });
  });

  it('answers 404 job_not_found for an unknown or live job', async () => {
    const unknown = await inject({ method: 'POST', url: '/v1/jobs/dead/999999/retry' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(unknown.json()).toMatchObject({ code: 'job_not_found' });

    const m = await createMemory('Live job: queued, not dead.');
    const [live] = await jobsOf(m.id);
    expect(live.status).toBe('queued');
    const res = await inject({ method: 'POST', url: `/v1/jobs/dead/${live.id}/retry` });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'job_not_found' });
    expect((await jobsOf(m.id))[0]).toMatchObject({ id: live.id, status: 'queued', attempts: 0 });
    await ta.app.worker.drain();
    expect((await getMemory(m.id)).status).toBe('indexed');
  });

  it('lists dead jobs page by page', async () => {
    failing = true;
    const a = await createMemory('Dead page A');
    const b = await createMemory('Dead page B');
    for (let i = 0; i < 10 && (await deadJobs()).length < 2; i++) await ta.app.worker.runOnce();
    failing = false;
    const all = await deadJobs();
    expect(all.map((j) => j.memoryId)).toEqual([a.id, b.id]);
    const first = await inject({ method: 'GET', url: '/v1/jobs/dead?limit=1' });
    expect(first.json().items.map((j: DeadJob) => j.memoryId)).toEqual([a.id]);
    const second = await inject({ method: 'GET', url: `/v1/jobs/dead?limit=1&after=${all[0].id}` });
    expect(second.json().items.map((j: DeadJob) => j.memoryId)).toEqual([b.id]);
    const bad = await inject({ method: 'GET', url: '/v1/jobs/dead?limit=0' });
    expect(bad.statusCode).toBe(400);

    for (const j of all) {
      expect((await inject({ method: 'POST', url: `/v1/jobs/dead/${j.id}/retry` })).statusCode).toBe(202);
    }
    await ta.app.worker.drain();
    expect((await getMemory(a.id)).status).toBe('indexed');
    expect((await getMemory(b.id)).status).toBe('indexed');
    expect(await deadJobs()).toEqual([]);
  });

  it('retries a failed attempt without dead-lettering when the next attempt succeeds', async () => {
    failing = true;
    const m = await createMemory('Transient failure: one bad answer, then fine.');
    await ta.app.worker.runOnce();
    expect(await jobsOf(m.id)).toEqual([expect.objectContaining({ status: 'queued', attempts: 1 })]);
    expect((await getMemory(m.id)).status).toBe('pending');
    failing = false;
    await ta.app.worker.drain();
    expect((await getMemory(m.id)).status).toBe('indexed');
    expect(await deadJobs()).toEqual([]);
  });

  it('picks up the job of a worker that died holding it, after the lease, and indexes once', async () => {
    const m = await createMemory('Lease: the first worker crashed mid-job.');
    const vectorsBefore = await vectors();

    const [zombie] = await claim<{ nodeId: string }>(ta.app.db, 'index', 10, 'doomed-worker', LEASE_MS);
    expect(zombie.payload.nodeId).toBe(m.id);
    expect(zombie.attempts).toBe(1);
    // While its holder lives and the lease holds, nobody else takes the job (on PGlite a holder
    // not alive in this process would be taken over at once: see chaos.test.ts).
    liveHolders.add('doomed-worker');
    expect(await ta.app.worker.runOnce()).toBe(0);
    expect((await getMemory(m.id)).status).toBe('pending');

    // It dies, and the lease runs out: claims compare lease_until with the database clock, so the
    // row says so.
    liveHolders.delete('doomed-worker');
    await ta.app.db.query(`UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1`, [
      zombie.id,
    ]);
    expect(await ta.app.worker.runOnce()).toBe(1);
    const read = await getMemory(m.id);
    expect(read.status).toBe('indexed');
    expect(await jobsOf(m.id)).toEqual([]);
    expect(await vectors()).toBe(vectorsBefore + 1);

    // The dead worker waking up and completing its stale claim changes nothing.
    await complete(ta.app.db, [zombie.id]);
    await ta.app.worker.drain();
    expect(await vectors()).toBe(vectorsBefore + 1);
    const search = await inject({
      method: 'POST',
      url: '/v1/search',
      payload: { query: 'Lease: the first worker crashed mid-job.', mode: 'vector', k: 10 },
    });
    expect(search.json().hits.filter((h: { id: string }) => h.id === m.id)).toHaveLength(1);
  });

  it('completes the job of a memory deleted before it was indexed', async () => {
    const m = await createMemory('Deleted before indexing.');
    const vectorsBefore = await vectors();
    const before = requests;
    expect((await inject({ method: 'DELETE', url: `/v1/memories/${m.id}` })).statusCode).toBe(204);
    await ta.app.worker.drain();
    expect(await jobsOf(m.id)).toEqual([]);
    expect(await vectors()).toBe(vectorsBefore);
    expect(requests).toBe(before);
  });

  it('keeps the new vector when a worker indexes a changed text before PATCH finishes', async () => {
    const m = await createMemory('Race: the old text about mountains.');
    await ta.app.worker.drain();
    const vectorsBefore = await vectors();
    // A worker in another process claims the re-embedding job the moment PATCH commits, i.e.
    // before PATCH gets to drop the old vector from the index.
    const index = ta.app.index;
    const remove = index.remove;
    index.remove = async (space, keys) => {
      await ta.app.worker.drain();
      return remove.call(index, space, keys);
    };
    try {
      const patch = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { text: 'Race: the new text about the ocean.' },
      });
      expect(patch.statusCode).toBe(200);
    } finally {
      index.remove = remove;
    }
    await ta.app.worker.drain();
    expect((await getMemory(m.id)).status).toBe('indexed');
    // The memory is indexed, so its vector must be in the index...
    expect(await vectors()).toBe(vectorsBefore);
    // ...and a search answered from the index (k=1) finds it.
    const hit = await inject({
      method: 'POST',
      url: '/v1/search',
      payload: { query: 'Race: the new text about the ocean.', mode: 'vector', k: 1 },
    });
    expect(hit.json().hits[0]?.id).toBe(m.id);
  });

  it('does not let a slow worker overwrite the vector of a newer text', async () => {
    const oldText = 'Slow worker: the picnic is at the lake.';
    const newText = 'Slow worker: the board meeting is in the city office.';
    const m = await createMemory(oldText);
    let release = () => {};
    let reached = () => {};
    const atGate = new Promise<void>((r) => {
      reached = r;
    });
    held = { text: oldText, reached, gate: new Promise<void>((r) => (release = r)) };
    try {
      // Worker A claims the job of the old text and is held while embedding it.
      const slow = ta.app.worker.runOnce();
      await atGate;
      // Meanwhile the text changes and worker B indexes the new text.
      const patch = await inject({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { text: newText },
      });
      expect(patch.statusCode).toBe(200);
      expect(await ta.app.worker.runOnce()).toBe(1);
      expect((await getMemory(m.id)).status).toBe('indexed');
      // Worker A finishes late.
      release();
      await slow;
    } finally {
      held = null;
      release();
    }
    expect((await getMemory(m.id)).status).toBe('indexed');
    const [expected] = await (await localEmbedder()).embed([newText]);
    const hit = await inject({
      method: 'POST',
      url: '/v1/search',
      payload: { vector: Array.from(expected), mode: 'vector', k: 1 },
    });
    // k=1 is answered from the vector index (a larger k on this small corpus falls back to the
    // exact scan of PostgreSQL's vectors, which are right). The index must hold the vector of
    // the text the memory has now, not the one worker A computed for the old text.
    expect(hit.json().hits[0].id).toBe(m.id);
    expect(hit.json().hits[0].vectorScore).toBeCloseTo(1, 4);
  });

  it('embeds only the newest text when a memory changes before the worker runs', async () => {
    const m = await createMemory('Version one of the text.');
    const patch = await inject({
      method: 'PATCH',
      url: `/v1/memories/${m.id}`,
      payload: { text: 'Version two of the text, about sailing boats.' },
    });
    expect(patch.statusCode).toBe(200);
    const vectorsBefore = await vectors();
    await ta.app.worker.drain();
    const read = await getMemory(m.id);
    expect(read.status).toBe('indexed');
    expect(await vectors()).toBe(vectorsBefore + 1);
    const [expected] = await (await localEmbedder()).embed(['Version two of the text, about sailing boats.']);
    const hit = await inject({
      method: 'POST',
      url: '/v1/search',
      payload: { vector: Array.from(expected), mode: 'vector', k: 1 },
    });
    expect(hit.json().hits[0].id).toBe(m.id);
    expect(hit.json().hits[0].vectorScore).toBeCloseTo(1, 4);
    // Both jobs of the memory (create, then patch) are finished: none is left running until its
    // lease runs out, to be claimed and counted as an attempt again.
    expect(await jobsOf(m.id)).toEqual([]);
  });
});
