import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder, EmbeddingModel } from '../../src/adapters/embedders/port.js';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { type EmbeddingsServer, startEmbeddingsServer } from '../../src/http/embeddings-server.js';
import { buildHttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/platform/logger.js';
import { localEmbedder } from '../helpers/app.js';
import { CLI_BIN, cliDatabase, runCli } from '../helpers/cli.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';
import { sleep, waitFor } from '../helpers/wait.js';

const USE_LITE: EmbeddingModel = { name: 'use-lite', version: '0.2.0', dimensions: 512 };
const REMOTE: EmbeddingModel = { name: 'use-lite-remote', version: '2', dimensions: 512 };
const REMOTE_KEY = 'use-lite-remote@2';

interface Memory {
  id: string;
  text: string;
  status: string;
  embedding: { model: string; version: string; dimensions: number } | null;
}
interface Run {
  id: string;
  divisionId: string;
  model: string;
  fromModel: string | null;
  status: string;
  total: number;
  done: number;
  progress: number;
  embedded: number;
  error: string | null;
}
interface Hit {
  id: string;
  vectorScore?: number;
}

const TOPICS = [
  'the boiler was serviced in March by a technician',
  'Caroline adopted a grey cat named Pixel',
  'quarterly revenue grew by twelve percent',
  'the office moves to Lisbon next spring',
  'Melanie prefers tea over coffee in the morning',
  'backups are verified every night at two',
  'the deploy pipeline runs every Friday at noon',
  'the garden needs watering twice a week in summer',
  'Jon plays the cello in a community orchestra',
  'the car is due for its inspection in October',
  'the team celebrates birthdays with a cake on Mondays',
  'a leak in the kitchen ceiling was fixed in June',
  'the library closes early on public holidays',
  'Priya is learning Japanese for her trip to Kyoto',
];
const textsFor = (division: string, n: number) =>
  TOPICS.slice(0, n).map((topic, i) => `${division} note ${i + 1}: ${topic}.`);

describe.each(backends)('re-embedding on %s', (backend) => {
  let t: TestDatabase;
  let server: EmbeddingsServer;
  let dir: string;
  let modelsFile: string;
  /** Every text the second model was asked to embed, in order (queries included). */
  const received: string[] = [];
  /** The first request holding this text waits until released: a runner stopped mid-run. */
  let hold: { text: string; taken: boolean; reached: () => void; gate: Promise<void> } | null = null;
  const opened: { close(): Promise<void> }[] = [];

  /** Holds the request that carries `text`; resolves `reached` when it arrives. */
  function holdAt(text: string) {
    let reached!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((r) => {
      reached = r;
    });
    const gate = new Promise<void>((r) => {
      release = r;
    });
    hold = { text, taken: false, reached, gate };
    return {
      arrived,
      release() {
        hold = null;
        release();
      },
    };
  }

  interface Started {
    app: App;
    http: FastifyInstance;
    inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
    close(): Promise<void>;
  }

  /** A whole service on the shared database, configured with the second model. */
  async function startApp(opts: { worker: boolean; env?: Record<string, string> }): Promise<Started> {
    const dataDir = mkdtempSync(join(dir, 'app-'));
    const config = loadConfig({
      DATA_DIR: dataDir,
      LOG_LEVEL: 'silent',
      WORKER_POLL_MS: '50',
      EMBEDDING_MODELS_FILE: modelsFile,
      REEMBED_BATCH_SIZE: '2',
      REEMBED_PAUSE_MS: '0',
      JOB_BACKOFF_MS: '50',
      ...opts.env,
    });
    const app = await createApp(config, {
      worker: opts.worker,
      database: t.db,
      embedder: await localEmbedder(),
      logger: createLogger('silent'),
    });
    app.start();
    const http = await buildHttpServer(app);
    await http.ready();
    let closed = false;
    const started: Started = {
      app,
      http,
      inject: (o) => http.inject(o),
      async close() {
        if (closed) return;
        closed = true;
        await http.close();
        await app.close();
      },
    };
    opened.push(started);
    return started;
  }

  beforeAll(async () => {
    const local = await localEmbedder();
    // The second model: the built-in one served over the OpenAI-compatible API, its dimensions
    // reversed. Real vectors, but not comparable with the first model's: a query of one model
    // against vectors of the other finds nothing near, so any mix shows as a wrong top hit.
    const second: Embedder = {
      model: REMOTE,
      async embed(texts, signal) {
        received.push(...texts);
        const h = hold;
        if (h && !h.taken && texts.includes(h.text)) {
          h.taken = true;
          h.reached();
          await h.gate;
        }
        return (await local.embed(texts, signal)).map((v) => v.slice().reverse());
      },
      close: async () => {},
    };
    server = await startEmbeddingsServer(second, { host: '127.0.0.1', port: 0 });
    dir = mkdtempSync(join(tmpdir(), 'ml-reembed-'));
    modelsFile = join(dir, 'models.json');
    writeFileSync(
      modelsFile,
      JSON.stringify([
        { name: REMOTE.name, version: REMOTE.version, dimensions: 512, url: server.url, batchSize: 8 },
      ]),
    );
    t = await openTestDatabase(backend);
    await t.db.exec(`INSERT INTO divisions (id, name) VALUES
      ('alpha', 'Alpha'), ('beta', 'Beta'), ('gamma', 'Gamma'), ('delta', 'Delta')`);
  });
  afterAll(async () => {
    hold = null;
    for (const s of opened.reverse()) await s.close().catch(() => undefined);
    await t?.drop();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const post = (s: Started, url: string, payload: object) => s.inject({ method: 'POST', url, payload });
  const getRun = async (s: Started, id: string) => {
    const res = await s.inject({ method: 'GET', url: `/v1/reembed/${id}` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Run>();
  };
  const finished = (s: Started, id: string) =>
    waitFor(
      async () => {
        const r = await getRun(s, id);
        return ['completed', 'failed', 'cancelled'].includes(r.status) && r;
      },
      { what: `re-embedding run ${id} to finish`, timeoutMs: 60_000 },
    );
  async function seed(s: Started, division: string, texts: string[]): Promise<Memory[]> {
    const res = await post(s, '/v1/memories/batch', {
      divisionId: division,
      items: texts.map((text) => ({ text })),
    });
    expect(res.statusCode, res.body).toBe(201);
    await s.app.worker.drain();
    return res.json<{ items: Memory[] }>().items;
  }
  const memoriesOf = async (division: string) =>
    (
      await t.db.query<{
        id: string;
        text: string;
        status: string;
        embedding_model: string;
        embedding_model_version: string;
      }>(
        `SELECT id, text, status, embedding_model, embedding_model_version FROM memory_nodes
         WHERE division_id = $1 AND deleted_at IS NULL ORDER BY vector_key`,
        [division],
      )
    ).rows;
  const modelsOf = async (division: string) =>
    new Set((await memoriesOf(division)).map((m) => `${m.embedding_model}@${m.embedding_model_version}`));
  async function topHit(s: Started, division: string, query: string): Promise<Hit> {
    const res = await post(s, '/v1/search', { divisionId: division, query, k: 3, mode: 'vector' });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ hits: Hit[] }>().hits[0];
  }

  it('refuses bad requests with problem+json naming the field', async () => {
    const api = await startApp({ worker: false }); // runs stay queued: nothing executes them here
    try {
      expectProblem(await post(api, '/v1/reembed', { model: 'use-lite' }), 400, 'validation_failed', 'model');
      expectProblem(await post(api, '/v1/reembed', { model: 'a@b@c' }), 400, 'validation_failed', 'model');
      expectProblem(await post(api, '/v1/reembed', {}), 400, 'validation_failed', 'model');
      expectProblem(
        await post(api, '/v1/reembed', { model: REMOTE_KEY, colour: 'blue' }),
        400,
        'validation_failed',
        'colour',
      );
      const unknown = expectProblem(
        await post(api, '/v1/reembed', { model: 'ghost@1' }),
        422,
        'unknown_model',
        'model',
      );
      expect(unknown.errors?.[0].message).toContain(REMOTE_KEY);
      expectProblem(
        await post(api, '/v1/reembed', { model: 'use-lite@0.2.0' }),
        409,
        'model_already_active',
        'model',
      );
      expectProblem(
        await post(api, '/v1/reembed', { model: REMOTE_KEY, divisionId: 'nowhere' }),
        404,
        'division_not_found',
        'divisionId',
      );
      expectProblem(
        await api.inject({ method: 'GET', url: '/v1/reembed/7d444840-9dc0-11d1-b245-5ffdce74fad2' }),
        404,
        'reembed_not_found',
      );
      expectProblem(
        await api.inject({ method: 'GET', url: '/v1/reembed/not-a-uuid' }),
        400,
        'validation_failed',
        'id',
      );

      // One run at a time per division; cancelling keeps the division's model.
      const first = await post(api, '/v1/reembed', { model: REMOTE_KEY, divisionId: 'delta' });
      expect(first.statusCode, first.body).toBe(202);
      const queued = first.json<Run>();
      expect(queued).toMatchObject({
        divisionId: 'delta',
        model: REMOTE_KEY,
        fromModel: 'use-lite@0.2.0',
        status: 'queued',
      });
      const again = expectProblem(
        await post(api, '/v1/reembed', { model: 'use-lite@0.2.0', divisionId: 'delta' }),
        409,
        'model_already_active',
      );
      expect(again.errors?.[0].field).toBe('model');
      expectProblem(
        await post(api, '/v1/reembed', { model: REMOTE_KEY, divisionId: 'delta' }),
        409,
        'reembed_in_progress',
        'divisionId',
      );
      const listed = await api.inject({ method: 'GET', url: '/v1/reembed?divisionId=delta' });
      expect(listed.json<{ items: Run[] }>().items.map((r) => r.id)).toEqual([queued.id]);
      const cancel = await post(api, `/v1/reembed/${queued.id}/cancel`, {});
      expect(cancel.statusCode, cancel.body).toBe(200);
      expect(cancel.json<Run>().status).toBe('cancelled');
      expectProblem(await post(api, `/v1/reembed/${queued.id}/cancel`, {}), 409, 'conflict');
      expect(await modelsOf('delta')).toEqual(new Set());
      const division = await t.db.query('SELECT embedding_model FROM divisions WHERE id = $1', ['delta']);
      expect(division.rows[0]).toEqual({ embedding_model: null });
    } finally {
      await api.close();
    }
  });

  it('serves the old vectors until the division is complete, then switches it alone', {
    timeout: 180_000,
  }, async () => {
    const s = await startApp({ worker: true });
    const alpha = await seed(s, 'alpha', textsFor('alpha', 10));
    const beta = await seed(s, 'beta', textsFor('beta', 3));
    expect(await modelsOf('alpha')).toEqual(new Set(['use-lite@0.2.0']));

    // Stop the runner in its third batch (two memories per batch).
    const held = holdAt(alpha[4].text);
    const res = await post(s, '/v1/reembed', { model: REMOTE_KEY, divisionId: 'alpha' });
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<Run>().id;
    await held.arrived;

    const midway = await getRun(s, id);
    expect(midway.status).toBe('running');
    expect(midway.done).toBe(4);
    expect(midway.total).toBe(10);
    expect(midway.progress).toBeCloseTo(0.4);
    const scrape = (await s.inject({ method: 'GET', url: '/metrics' })).body;
    expect(scrape).toContain(
      `memory_layer_reembed_progress_ratio{division="alpha",model="${REMOTE_KEY}"} 0.4`,
    );

    // Midway, search answers from the old model only: the exact text is its own nearest neighbour.
    expect(await modelsOf('alpha')).toEqual(new Set(['use-lite@0.2.0']));
    for (const m of [alpha[0], alpha[7]]) {
      const hit = await topHit(s, 'alpha', m.text);
      expect(hit.id).toBe(m.id);
      expect(hit.vectorScore).toBeGreaterThan(0.99);
    }
    // Written during the run: indexed with the division's current model, and taken by the run.
    const written = await post(s, '/v1/memories?wait=true', {
      divisionId: 'alpha',
      text: 'alpha note written midway: the piano tuner comes on Thursday.',
    });
    expect(written.statusCode, written.body).toBe(201);
    const late = written.json<Memory>();
    expect(late.embedding).toMatchObject({ model: 'use-lite', version: '0.2.0' });
    // A text changed after the run embedded it: the run must embed the new text.
    const patched = await s.inject({
      method: 'PATCH',
      url: `/v1/memories/${alpha[0].id}`,
      payload: { text: 'alpha note 1 rewritten: the boiler is replaced by a heat pump.' },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    await s.app.worker.drain();
    const hitLate = await topHit(s, 'alpha', late.text);
    expect(hitLate.id).toBe(late.id);

    held.release();
    const done = await finished(s, id);
    expect(done).toMatchObject({ status: 'completed', total: 11, done: 11, progress: 1, error: null });

    // Every memory of alpha now holds the second model's vector, none of beta does.
    expect(await modelsOf('alpha')).toEqual(new Set([REMOTE_KEY]));
    expect((await memoriesOf('alpha')).every((m) => m.status === 'indexed')).toBe(true);
    expect(await modelsOf('beta')).toEqual(new Set(['use-lite@0.2.0']));
    const read = await s.inject({ method: 'GET', url: `/v1/memories/${late.id}` });
    expect(read.json<Memory>().embedding).toEqual({
      model: REMOTE.name,
      version: REMOTE.version,
      dimensions: 512,
    });

    // Search now embeds queries with the second model and reads its space.
    for (const [division, m] of [
      ['alpha', alpha[7]],
      ['alpha', late],
      ['beta', beta[1]],
    ] as const) {
      const hit = await topHit(s, division, m.text);
      expect(hit.id).toBe(m.id);
      expect(hit.vectorScore).toBeGreaterThan(0.99);
    }
    const rewritten = await topHit(
      s,
      'alpha',
      'alpha note 1 rewritten: the boiler is replaced by a heat pump.',
    );
    expect(rewritten).toMatchObject({ id: alpha[0].id });
    expect(rewritten.vectorScore).toBeGreaterThan(0.99);

    // The old space no longer holds alpha; the new one holds exactly its memories; beta untouched.
    expect(await s.app.index.count(USE_LITE, 'alpha')).toBe(0);
    expect(await s.app.index.count(REMOTE, 'alpha')).toBe(11);
    expect(await s.app.index.count(USE_LITE, 'beta')).toBe(3);
    expect(await s.app.index.count(REMOTE, 'beta')).toBe(0);
    const leftovers = await t.db.query('SELECT 1 FROM reembed_vectors WHERE division_id = $1', ['alpha']);
    expect(leftovers.rows).toEqual([]);
    const audit = await t.db.query<{ action: string; actor: string }>(
      `SELECT action, actor FROM audit_events WHERE division_id = 'alpha' AND resource_type IN ('reembed', 'division') ORDER BY seq`,
    );
    expect(audit.rows).toEqual([
      { action: 'reembed.request', actor: 'dev' },
      { action: 'division.model.switch', actor: 'system:reembed' },
    ]);

    // After the switch, writes follow the division's model: the worker embeds with it, and a
    // precomputed vector must come from it.
    const after = await post(s, '/v1/memories?wait=true', {
      divisionId: 'alpha',
      text: 'alpha note written after: the roof gets new tiles in May.',
    });
    expect(after.json<Memory>().embedding).toMatchObject({ model: REMOTE.name, version: REMOTE.version });
    const vector = new Array(512).fill(0.01);
    expectProblem(
      await post(s, '/v1/memories', { divisionId: 'alpha', text: 'x', vector, model: 'use-lite' }),
      422,
      'unknown_model',
      'model',
    );
    const supplied = await post(s, '/v1/memories', {
      divisionId: 'alpha',
      text: 'y',
      vector,
      model: REMOTE_KEY,
    });
    expect(supplied.statusCode, supplied.body).toBe(201);
    expect(supplied.json<Memory>().embedding).toMatchObject({ model: REMOTE.name });
    const betaSupplied = await post(s, '/v1/memories', {
      divisionId: 'beta',
      text: 'z',
      vector,
      model: 'use-lite',
    });
    expect(betaSupplied.statusCode, betaSupplied.body).toBe(201);

    const metrics = (await s.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain(
      `memory_layer_reembed_progress_ratio{division="alpha",model="${REMOTE_KEY}"} 1`,
    );
    expect(metrics).toMatch(
      new RegExp(`memory_layer_reembed_memories_total\\{division="alpha",model="${REMOTE_KEY}"\\} \\d+`),
    );
    await s.close();
  });

  it('resumes a run whose runner stopped, without re-embedding what is stored', {
    timeout: 180_000,
  }, async () => {
    const texts = textsFor('gamma', 10);
    // A runner that hangs holding its lease (a stuck or crashed process).
    const first = await startApp({ worker: true, env: { JOB_LEASE_MS: '1000' } });
    await seed(first, 'gamma', texts);
    const held = holdAt(texts[4]);
    const res = await post(first, '/v1/reembed', { model: REMOTE_KEY, divisionId: 'gamma' });
    const id = res.json<Run>().id;
    await held.arrived;
    const stored = (await getRun(first, id)).done;
    expect(stored).toBe(4);
    const sent = received.length;

    // Another process on the same database claims it once the lease expires, and finishes it.
    // The runner compares the lease with the database clock: the row says it has run out.
    await t.db.query(`UPDATE reembed_runs SET lease_until = now() - interval '1 second' WHERE id = $1`, [id]);
    const second = await startApp({ worker: true });
    const done = await finished(second, id);
    expect(done).toMatchObject({ status: 'completed', done: 10 });
    const sentAfter = received.slice(sent).filter((t) => texts.includes(t));
    expect(sentAfter.sort()).toEqual(texts.slice(stored).sort());
    expect(done.embedded).toBe(10); // each text once: the held batch was never stored

    // The stuck runner wakes up, finds the run is no longer its own, and changes nothing.
    held.release();
    await sleep(300);
    expect((await getRun(second, id)).status).toBe('completed');
    expect(await modelsOf('gamma')).toEqual(new Set([REMOTE_KEY]));
    const hit = await topHit(second, 'gamma', texts[6]);
    expect(hit.vectorScore).toBeGreaterThan(0.99);
    await first.close();
    await second.close();
  });

  it('memory-layer reembed shows progress, survives being killed, and continues', {
    timeout: 300_000,
  }, async () => {
    const cliDir = mkdtempSync(join(dir, 'cli-'));
    let env: Record<string, string> = {
      DATA_DIR: cliDir,
      LOG_LEVEL: 'error',
      EMBEDDING_MODELS_FILE: modelsFile,
      REEMBED_BATCH_SIZE: '2',
      REEMBED_PAUSE_MS: '0',
      JOB_LEASE_MS: '1000',
    };
    const { env: databaseEnv, t: cliDb } = await cliDatabase(backend);
    env = { ...env, ...databaseEnv };
    const cli = (...args: string[]) => runCli(env, args, 120_000);
    try {
      const texts = textsFor('cli', 8);
      const file = join(cliDir, 'memories.jsonl');
      writeFileSync(file, `${texts.map((text) => JSON.stringify({ text })).join('\n')}\n`);
      const ingested = await cli('ingest', file);
      expect(ingested.code, ingested.stderr).toBe(0);

      const bad = await cli('reembed', '--to', 'ghost@1');
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('no embedding model ghost@1 is configured');

      // Killed (SIGKILL: no clean-up at all) while its third batch is being embedded.
      const held = holdAt(texts[4]);
      const child = spawn(process.execPath, [CLI_BIN, 'reembed', '--to', REMOTE_KEY], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      });
      const exited = new Promise<string | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      );
      await held.arrived;
      const sent = received.length;
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      held.release();

      const status = await cli('reembed', '--status', '--json');
      expect(status.code, status.stderr).toBe(0);
      const [row] = JSON.parse(status.stdout) as { division: string; model: string; latestRun: Run }[];
      expect(row).toMatchObject({ division: 'default', model: 'use-lite@0.2.0' });
      expect(row.latestRun).toMatchObject({ status: 'running', done: 4, total: 8 });

      const resumed = await cli('reembed', '--to', REMOTE_KEY);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain(`default: resuming run ${row.latestRun.id}`);
      expect(resumed.stdout).toContain(`default: now uses ${REMOTE_KEY} (8 memories; 8 texts embedded)`);
      expect(
        received
          .slice(sent)
          .filter((t) => texts.includes(t))
          .sort(),
      ).toEqual(texts.slice(4).sort());

      const search = await cli('search', texts[6], '--mode', 'vector', '--json');
      expect(search.code, search.stderr).toBe(0);
      const hits = JSON.parse(search.stdout).hits as { text: string; vectorScore: number }[];
      expect(hits[0]).toMatchObject({ text: texts[6] });
      expect(hits[0].vectorScore).toBeGreaterThan(0.99);
      const again = await cli('reembed', '--to', REMOTE_KEY);
      expect(again.stdout).toContain(`default: already uses ${REMOTE_KEY}`);
    } finally {
      hold = null;
      await cliDb?.drop();
    }
  });
});
