import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/adapters/db/port.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import { createOpenAIEmbedder } from '../../src/adapters/embedders/openai.js';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import type { VectorIndex } from '../../src/adapters/vector/port.js';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { type EmbeddingsServer, startEmbeddingsServer } from '../../src/http/embeddings-server.js';
import { buildHttpServer } from '../../src/http/server.js';
import { claim, complete, renewLeases } from '../../src/indexing/queue.js';
import { liveHolders } from '../../src/platform/lease.js';
import { createLogger } from '../../src/platform/logger.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Chaos: each dependency fails while the service runs, with real components everywhere (real
 * PostgreSQL or PGlite, the real vector index, the real model behind a real HTTP embeddings
 * server). Expected: writes keep being accepted (or refused with 503 + Retry-After when the queue
 * is full: never accepted and then lost), jobs retry then dead-letter, and once the fault clears
 * every memory is indexed exactly once; /readyz names the degraded part.
 */

interface Memory {
  id: string;
  status: 'pending' | 'indexed' | 'failed';
}

interface DeadJob {
  id: number;
  memoryId: string | null;
  attempts: number;
  lastError: string | null;
}

interface Ready {
  status: 'ready' | 'degraded' | 'unavailable';
  checks: Record<string, string>;
}

/** The operations on one app every scenario uses. */
function harness(get: () => { app: App; http: FastifyInstance }) {
  const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => get().http.inject(opts);
  const count = async (sql: string) => (await get().app.db.query<{ n: number }>(sql)).rows[0].n;
  return {
    inject,
    async create(text: string, headers: Record<string, string> = {}) {
      const res = await inject({ method: 'POST', url: '/v1/memories', payload: { text }, headers });
      expect(res.statusCode, res.body).toBe(201);
      return res.json<Memory>();
    },
    async createBatch(texts: string[]) {
      const res = await inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: texts.map((text) => ({ text })) },
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json<{ items: Memory[] }>().items;
    },
    async ready() {
      const res = await inject({ method: 'GET', url: '/readyz' });
      return { code: res.statusCode, body: res.json<Ready>() };
    },
    async deadJobs() {
      const res = await inject({ method: 'GET', url: '/v1/jobs/dead?limit=500' });
      expect(res.statusCode).toBe(200);
      return res.json<{ items: DeadJob[] }>().items;
    },
    memories: () => count('SELECT count(*)::int AS n FROM memory_nodes'),
    jobs: () => count('SELECT count(*)::int AS n FROM jobs'),
    statuses: async () =>
      (
        await get().app.db.query<{ status: string; n: number }>(
          'SELECT status, count(*)::int AS n FROM memory_nodes GROUP BY status ORDER BY status',
        )
      ).rows,
    /** Entries in the vector index, all divisions. */
    vectors: () => get().app.index.count(get().app.embedder.model),
  };
}

/**
 * Fault injection by a wrapper around the real adapter: the index's own methods are replaced in
 * place (the worker, search and /readyz all hold this one object) by wrappers that throw while
 * `down` and otherwise call the real methods. Nothing in the service knows it is a test.
 */
function injectIndexFault(index: VectorIndex) {
  const real = { upsert: index.upsert, search: index.search, check: index.check };
  const state = { down: false };
  const unavailable = () => Promise.reject(new Error('vector index unavailable (injected fault)'));
  index.upsert = (...args) => (state.down ? unavailable() : real.upsert.apply(index, args));
  index.search = (...args) => (state.down ? unavailable() : real.search.apply(index, args));
  index.check = () => (state.down ? unavailable() : real.check.apply(index));
  return {
    state,
    restore() {
      Object.assign(index, real);
    },
  };
}

const texts = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix} ${i}: a note about item number ${i} in the ${prefix} run.`);

describe.each(backends)('chaos on %s', (backend) => {
  describe('vector index unavailable', () => {
    const MAX_ATTEMPTS = 3;
    let ta: TestApp;
    let fault: ReturnType<typeof injectIndexFault>;
    const h = harness(() => ta);

    beforeAll(async () => {
      ta = await startTestApp(backend, {
        worker: false,
        env: { JOB_MAX_ATTEMPTS: String(MAX_ATTEMPTS), JOB_BACKOFF_MS: '0' },
      });
      fault = injectIndexFault(ta.app.index);
    });
    afterAll(async () => {
      fault?.restore();
      await ta?.close();
    });

    it('accepts writes, dead-letters after the attempts, and indexes each memory once after retry', async () => {
      fault.state.down = true;
      const created = [
        ...(await Promise.all(texts('index-down', 4).map((t) => h.create(t)))),
        ...(await h.createBatch(texts('index-down batch', 3))),
      ];
      expect(created.every((m) => m.status === 'pending')).toBe(true);
      expect(await h.memories()).toBe(7);

      const down = await h.ready();
      expect(down.code).toBe(503);
      expect(down.body.status).toBe('unavailable');
      expect(down.body.checks.database).toBe('ok');
      expect(down.body.checks.vectorIndex).toContain('injected fault');

      // First attempt: the vectors are computed and kept in PostgreSQL, the index write fails,
      // the jobs go back to the queue (backoff 0: due again at once).
      expect(await ta.app.worker.runOnce()).toBe(7);
      const retried = await ta.app.db.query<{ status: string; attempts: number; last_error: string }>(
        'SELECT status, attempts, last_error FROM jobs',
      );
      expect(retried.rows).toHaveLength(7);
      for (const j of retried.rows) {
        expect(j).toMatchObject({ status: 'queued', attempts: 1 });
        expect(j.last_error).toContain('vector-index: vector index unavailable');
      }
      let runs = 1;
      while ((await h.deadJobs()).length < 7 && runs < 10) {
        await ta.app.worker.runOnce();
        runs++;
      }
      expect(runs).toBe(MAX_ATTEMPTS);
      const dead = await h.deadJobs();
      expect(dead.map((j) => j.memoryId).sort()).toEqual(created.map((m) => m.id).sort());
      expect(dead.every((j) => j.attempts === MAX_ATTEMPTS)).toBe(true);
      // Dead jobs are not claimed again; the memories are kept, marked failed.
      expect(await ta.app.worker.runOnce()).toBe(0);
      expect(await h.statuses()).toEqual([{ status: 'failed', n: 7 }]);
      expect(await h.memories()).toBe(7);

      // The index comes back; an operator retries the dead jobs.
      fault.state.down = false;
      expect((await h.ready()).code).toBe(200);
      for (const j of dead) {
        const res = await h.inject({ method: 'POST', url: `/v1/jobs/dead/${j.id}/retry` });
        expect(res.statusCode, res.body).toBe(202);
      }
      await ta.app.worker.drain();
      expect(await h.statuses()).toEqual([{ status: 'indexed', n: 7 }]);
      expect(await h.vectors()).toBe(7);
      expect(await h.jobs()).toBe(0);
      expect(await h.deadJobs()).toEqual([]);

      // Searchable again, from the index (k=1 is answered by the index, not the exact scan).
      const [m] = created;
      const hit = await h.inject({
        method: 'POST',
        url: '/v1/search',
        payload: { query: texts('index-down', 4)[0], mode: 'vector', k: 1 },
      });
      expect(hit.statusCode, hit.body).toBe(200);
      expect(hit.json().hits[0]?.id).toBe(m.id);
    });
  });

  describe('embedder failing, then slow, then back', () => {
    /** EMBEDDER_TIMEOUT_MS of the app's embedder: the slow server answers after longer than this. */
    const EMBEDDER_TIMEOUT_MS = 1_500;
    let ta: TestApp;
    let server: EmbeddingsServer;
    let mode: 'fail' | 'slow' | 'ok' = 'ok';
    let requests = 0;
    const h = harness(() => ta);
    const lastErrors = async () =>
      (await ta.app.db.query<{ last_error: string | null }>('SELECT last_error FROM jobs')).rows.map(
        (r) => r.last_error,
      );

    beforeAll(async () => {
      const local = await localEmbedder();
      // The real model behind a real OpenAI-compatible HTTP server, with a switch.
      const switchable: Embedder = {
        model: local.model,
        async embed(input, signal) {
          requests++;
          if (mode === 'fail') throw new Error('model overloaded');
          // Sleeps past the client's timeout; the client hanging up aborts the sleep.
          if (mode === 'slow') await sleep(EMBEDDER_TIMEOUT_MS + 1_500, undefined, { signal });
          return local.embed(input, signal);
        },
        close: async () => {},
      };
      server = await startEmbeddingsServer(switchable, { host: '127.0.0.1', port: 0 });
      ta = await startTestApp(backend, {
        worker: false,
        embedder: createOpenAIEmbedder({
          url: server.url,
          model: local.model.name,
          version: local.model.version,
          dimensions: local.model.dimensions,
          timeoutMs: EMBEDDER_TIMEOUT_MS,
          batchSize: 4,
        }),
        env: { JOB_MAX_ATTEMPTS: '5', JOB_BACKOFF_MS: '0' },
      });
    });
    afterAll(async () => {
      await ta?.close();
      await server?.close();
    });

    it('accepts writes while the embedder fails or hangs, retries, then indexes every memory once', async () => {
      mode = 'fail';
      const created = [...(await h.createBatch(texts('embedder', 6))), await h.create('embedder: one more.')];
      expect(await h.memories()).toBe(7);

      // 1st attempt: the server answers 500.
      expect(await ta.app.worker.runOnce()).toBe(7);
      expect(requests).toBeGreaterThan(0);
      for (const e of await lastErrors()) expect(e).toMatch(/^embed: .*status 500.*model overloaded/);
      let ready = await h.ready();
      // The embedder failing does not make the service unready: writes are still queued.
      expect(ready.code).toBe(200);
      expect(ready.body.status).toBe('degraded');
      expect(ready.body.checks).toMatchObject({ database: 'ok', vectorIndex: 'ok' });
      expect(ready.body.checks.embedder).toMatch(/^degraded: .*status 500/);
      expect((await h.create('embedder: written while it fails.')).status).toBe('pending');

      // 2nd attempt: the server takes longer than the client's timeout.
      mode = 'slow';
      expect(await ta.app.worker.runOnce()).toBe(8);
      for (const e of await lastErrors()) expect(e).toMatch(/^embed: .*timed out after 1500 ms/);
      ready = await h.ready();
      expect(ready.code).toBe(200);
      expect(ready.body.checks.embedder).toMatch(/^degraded: .*timed out/);
      expect(await h.jobs()).toBe(8);
      expect(await h.deadJobs()).toEqual([]);

      // Back to normal: everything is indexed, once.
      mode = 'ok';
      await ta.app.worker.drain();
      expect(await h.statuses()).toEqual([{ status: 'indexed', n: 8 }]);
      expect(await h.vectors()).toBe(8);
      expect(await h.jobs()).toBe(0);
      ready = await h.ready();
      expect(ready.code).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ready', checks: { database: 'ok', vectorIndex: 'ok' } });
      expect(ready.body.checks.embedder).toBeUndefined();
      const hit = await h.inject({
        method: 'POST',
        url: '/v1/search',
        payload: { query: texts('embedder', 6)[2], mode: 'vector', k: 1 },
      });
      expect(hit.json().hits[0]?.id).toBe(created[2].id);
    });
  });

  describe('database connection dropped mid-batch', () => {
    const BATCH = 500;
    const url = process.env.DATABASE_URL;
    // Our own app on a schema of its own, its connections tagged with an application_name of
    // their own, so that only they are terminated (other test files share the server).
    const appName = `ml_chaos_${randomBytes(4).toString('hex')}`;
    const schema = `t_${randomBytes(6).toString('hex')}`;
    let admin: pg.Client;
    let db: Database;
    let app: App;
    let http: FastifyInstance;
    let dataDir: string;
    const h = harness(() => ({ app, http }));

    /** Terminates every server connection of the app, as a failover or a network cut would. */
    const dropConnections = async () =>
      (
        await admin.query(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`,
          [appName],
        )
      ).rowCount ?? 0;
    /** Rows in our schema, read over the admin connection (the app's may be gone). */
    const rows = async (table: string) =>
      (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.${table}`)).rows[0].n;

    beforeAll(async () => {
      if (backend !== 'postgres' || !url) return;
      admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      const tagged = new URL(url);
      tagged.searchParams.set('application_name', appName);
      db = await openPostgres({ url: tagged.toString(), schema, max: 5 });
      dataDir = mkdtempSync(join(tmpdir(), 'ml-chaos-'));
      const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', WORKER_POLL_MS: '50' });
      app = await createApp(config, {
        worker: false,
        database: db,
        embedder: await localEmbedder(),
        logger: createLogger('silent'),
      });
      app.start();
      http = await buildHttpServer(app);
      await http.ready();
    });
    afterAll(async () => {
      if (!admin) return;
      await http?.close();
      await app?.close();
      await db?.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    const batch = (prefix: string) =>
      h.inject({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: texts(prefix, BATCH).map((text) => ({ text })) },
      });

    it('commits a batch whole or not at all, and later writes succeed', async (ctx) => {
      ctx.skip(
        backend === 'pglite',
        'PGlite runs inside this process: there is no server connection to drop (PostgreSQL server only)',
      );
      // 1. Deterministic: hold the batch mid-transaction (its 500 rows inserted, the INSERT into
      // jobs waiting on a table lock), then drop its connection.
      const locker = new pg.Client({ connectionString: url });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE ${schema}.jobs IN EXCLUSIVE MODE`);
        const pending = batch('dropped');
        const waiting = await waitFor(
          async () => {
            const res = await admin.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE application_name = $1 AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL`,
              [appName],
            );
            return res.rows[0].n as number;
          },
          { what: 'the batch to reach the jobs insert', timeoutMs: 10_000, intervalMs: 20 },
        );
        expect(waiting, 'the batch never reached the jobs insert').toBe(1);
        expect(await dropConnections()).toBeGreaterThanOrEqual(1);
        await locker.query('ROLLBACK');
        const res = await pending;
        expect(res.statusCode, res.body).toBeGreaterThanOrEqual(500);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      } finally {
        await locker.end();
      }
      expect(await rows('memory_nodes')).toBe(0);
      expect(await rows('jobs')).toBe(0);

      // 2. Timed: drop the connections as soon as the batch's transaction has written anything;
      // whichever way the race goes, the batch is all there or not there at all.
      let committed = 0;
      for (let round = 0; round < 3; round++) {
        const pending = batch(`race ${round}`);
        let done = false;
        void pending.finally(() => {
          done = true;
        });
        while (!done) {
          const res = await admin.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE application_name = $1 AND backend_xid IS NOT NULL`,
            [appName],
          );
          if (res.rows[0].n > 0) {
            await dropConnections();
            break;
          }
        }
        const res = await pending;
        const n = await rows('memory_nodes');
        if (res.statusCode === 201) committed += BATCH;
        else expect(res.statusCode, res.body).toBeGreaterThanOrEqual(500);
        expect(n).toBe(committed);
        expect(await rows('jobs')).toBe(committed);
      }

      // 3. Later writes succeed on fresh connections, and everything written gets indexed.
      expect((await h.create('after the connection drop')).status).toBe('pending');
      const after = await batch('after');
      expect(after.statusCode, after.body).toBe(201);
      expect(await rows('memory_nodes')).toBe(committed + BATCH + 1);
      await app.worker.drain();
      expect(await h.statuses()).toEqual([{ status: 'indexed', n: committed + BATCH + 1 }]);
      expect(await h.vectors()).toBe(committed + BATCH + 1);
    });
  });

  describe('worker killed mid-job', () => {
    const LEASE_MS = 1000;
    let ta: TestApp;
    const h = harness(() => ta);

    beforeAll(async () => {
      ta = await startTestApp(backend, {
        worker: false,
        env: { JOB_LEASE_MS: String(LEASE_MS), JOB_BACKOFF_MS: '0' },
      });
    });
    afterAll(() => ta?.close());

    it('lets a fresh worker take over after the lease and index each memory once', async () => {
      const created = await h.createBatch(texts('killed worker', 6));
      const zombie = await claim<{ nodeId: string }>(ta.app.db, 'index', 100, 'doomed-worker', LEASE_MS);
      expect(zombie).toHaveLength(6);
      // Alive until it dies below (on PGlite, a holder not alive in the process is taken over at once).
      liveHolders.add('doomed-worker');
      // The doomed worker got as far as writing half of the vectors to the index, then died
      // before marking anything indexed or completing its jobs.
      const half = await ta.app.db.query<{ vector_key: number; division_id: string; text: string }>(
        'SELECT vector_key, division_id, text FROM memory_nodes WHERE id = ANY($1::uuid[])',
        [created.slice(0, 3).map((m) => m.id)],
      );
      const vectors = await (await localEmbedder()).embed(half.rows.map((r) => r.text));
      await ta.app.index.upsert(
        ta.app.embedder.model,
        half.rows.map((r, i) => ({
          key: Number(r.vector_key),
          divisionId: r.division_id,
          vector: vectors[i],
        })),
      );
      expect(await h.vectors()).toBe(3);

      // While the lease holds, nobody else takes the jobs.
      expect(await ta.app.worker.runOnce()).toBe(0);
      // It dies, and the lease runs out: claims compare lease_until with the database clock, so
      // the rows say so.
      liveHolders.delete('doomed-worker');
      await ta.app.db.query(
        `UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = ANY($1::bigint[])`,
        [zombie.map((j) => j.id)],
      );
      expect(await ta.app.worker.runOnce()).toBe(6);
      expect(await h.statuses()).toEqual([{ status: 'indexed', n: 6 }]);
      expect(await h.vectors()).toBe(6);
      expect(await h.jobs()).toBe(0);

      // The dead worker waking up and completing its stale claim changes nothing.
      await complete(
        ta.app.db,
        zombie.map((j) => j.id),
      );
      await ta.app.worker.drain();
      expect(await h.vectors()).toBe(6);
      expect(await h.memories()).toBe(6);
    });
  });

  describe('leases that heal', () => {
    let ta: TestApp;
    const h = harness(() => ta);

    beforeAll(async () => {
      ta = await startTestApp(backend, { worker: false, env: { JOB_BACKOFF_MS: '0' } });
    });
    afterAll(() => ta?.close());

    const leaseOf = async (ids: number[]) =>
      (
        await ta.app.db.query<{ id: number; until: string }>(
          'SELECT id, lease_until::text AS until FROM jobs WHERE id = ANY($1::bigint[]) ORDER BY id',
          [ids],
        )
      ).rows.map((r) => r.until);

    it('renews only the leases its holder still holds', async () => {
      await h.createBatch(texts('heartbeat', 3));
      const held = await claim(ta.app.db, 'index', 100, 'busy-worker', 1_000);
      expect(held).toHaveLength(3);
      const ids = held.map((j) => j.id);
      const before = await leaseOf(ids);
      expect(await renewLeases(ta.app.db, ids, 'busy-worker', 600_000)).toBe(3);
      const after = await leaseOf(ids);
      for (const [i, until] of after.entries())
        expect(Date.parse(until)).toBeGreaterThan(Date.parse(before[i]));
      // Another holder's heartbeat moves nothing.
      expect(await renewLeases(ta.app.db, ids, 'someone-else', 1)).toBe(0);
      expect(await leaseOf(ids)).toEqual(after);
      await complete(ta.app.db, ids);
    });

    it("claims a dead process's jobs at once where one process owns the database, after the lease elsewhere", async () => {
      const created = await h.createBatch(texts('restarted', 4));
      // A worker of a process that has ended, with a lease still running for ten minutes.
      const zombie = await claim(ta.app.db, 'index', 100, 'ended-process-worker', 600_000);
      expect(zombie).toHaveLength(4);
      const taken = await ta.app.worker.runOnce();
      if (ta.app.db.singleProcess) {
        // PGlite: no other process can hold a claim, so the restarted service heals at once.
        expect(taken).toBe(4);
        const indexed = await ta.app.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM memory_nodes WHERE id = ANY($1::uuid[]) AND status = 'indexed'`,
          [created.map((m) => m.id)],
        );
        expect(indexed.rows[0].n).toBe(4);
      } else {
        // A server shared by replicas: the claim may be a live replica's, so it waits for the lease.
        expect(taken).toBe(0);
        await ta.app.db.query(
          `UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = ANY($1::bigint[])`,
          [zombie.map((j) => j.id)],
        );
        expect(await ta.app.worker.runOnce()).toBe(4);
      }
      expect(await h.jobs()).toBe(0);
    });
  });

  describe('queue backlog past MAX_QUEUE_BACKLOG', () => {
    let ta: TestApp;
    const h = harness(() => ta);

    beforeAll(async () => {
      ta = await startTestApp(backend, { worker: false, env: { MAX_QUEUE_BACKLOG: '5' } });
    });
    afterAll(() => ta?.close());

    const expectRefused = (res: LightMyRequestResponse) => {
      expect(res.statusCode, res.body).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.json()).toMatchObject({ code: 'service_unavailable', status: 503 });
    };

    it('refuses writes past the backlog with 503 and Retry-After, writing nothing, until drained', async () => {
      for (let i = 0; i < 4; i++) await h.create(`backlog ${i}`);
      const keyed = await h.create('backlog 4', { 'idempotency-key': 'backlog-4' });
      expect(await h.jobs()).toBe(5);

      expectRefused(await h.inject({ method: 'POST', url: '/v1/memories', payload: { text: 'backlog 5' } }));
      expectRefused(
        await h.inject({
          method: 'POST',
          url: '/v1/memories/batch',
          payload: { items: [{ text: 'backlog batch a' }, { text: 'backlog batch b' }] },
        }),
      );
      expect(await h.memories()).toBe(5);
      expect(await h.jobs()).toBe(5);

      // A retry of a write that already succeeded queues nothing: it gets its answer back.
      const replay = await h.inject({
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'backlog 4' },
        headers: { 'idempotency-key': 'backlog-4' },
      });
      expect(replay.statusCode, replay.body).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json().id).toBe(keyed.id);

      const ready = await h.ready();
      expect(ready.code).toBe(200);
      expect(ready.body).toMatchObject({
        status: 'degraded',
        checks: { database: 'ok', vectorIndex: 'ok', queue: 'backlog 5 at limit 5' },
      });

      // The workers catch up: writes are taken again at once (the cached count is refreshed when
      // it says full), and a batch counts its size.
      await ta.app.worker.drain();
      await h.create('backlog after drain');
      expect((await h.createBatch(['after a', 'after b', 'after c', 'after d'])).length).toBe(4);
      expectRefused(
        await h.inject({ method: 'POST', url: '/v1/memories', payload: { text: 'one too many' } }),
      );
      expect(await h.memories()).toBe(10);
      expect(await h.jobs()).toBe(5);
      expect((await h.ready()).body.status).toBe('degraded');

      await ta.app.worker.drain();
      expect(await h.statuses()).toEqual([{ status: 'indexed', n: 10 }]);
      expect(await h.vectors()).toBe(10);
      const after = (await h.ready()).body;
      expect(after).toMatchObject({ status: 'ready', checks: { database: 'ok', vectorIndex: 'ok' } });
      expect(after.checks.queue).toBe('ok');
    });
  });
});
