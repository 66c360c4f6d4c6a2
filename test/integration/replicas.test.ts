import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, freePort } from '../helpers/cli.js';
import { openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { sleep, waitFor } from '../helpers/wait.js';

const QUERIES = [
  'replica drill about harbour cranes',
  'a note on mountain weather',
  'the recipe with lentils',
  'meeting notes from the board',
];
const TOPICS = ['harbour cranes', 'mountain weather', 'lentil recipes', 'board meetings', 'garden birds'];

interface Proc {
  child: ChildProcess;
  port: number;
  log: () => string;
}

/**
 * The deployment the chart runs with usearch: two API processes (`serve --no-worker`), each with
 * its own in-process vector index following the change feed, and one worker process (which then
 * keeps no index), all on one PostgreSQL server. Processes are real: the CLI in child processes,
 * talking HTTP. PGlite is one process's database, so this runs on the server only.
 */
describe.skipIf(!process.env.DATABASE_URL)('two API replicas and a worker on the PostgreSQL server', () => {
  let t: TestDatabase;
  let env: Record<string, string>;
  const dirs: string[] = [];
  const procs: Proc[] = [];
  let apiA: Proc;
  let apiB: Proc;

  function start(args: string[], port: number, dataDir: string): Proc {
    let log = '';
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, ...env, DATA_DIR: dataDir, PORT: String(port), WORKER_HTTP_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-20_000);
    });
    child.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-20_000);
    });
    const proc = { child, port, log: () => log };
    procs.push(proc);
    return proc;
  }

  async function ready(p: Proc) {
    await waitFor(
      async () => {
        if (p.child.exitCode !== null) throw new Error(`process exited: ${p.log()}`);
        const res = await fetch(`http://127.0.0.1:${p.port}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      { what: () => `port ${p.port} to be ready: ${p.log()}`, timeoutMs: 120_000, intervalMs: 100 },
    );
  }

  async function startApi(dataDir: string): Promise<Proc> {
    const p = start(['serve', '--no-worker'], await freePort(), dataDir);
    await ready(p);
    return p;
  }

  async function call(p: Proc, method: string, path: string, body?: unknown) {
    const res = await fetch(`http://127.0.0.1:${p.port}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async function write(p: Proc, texts: string[]) {
    const res = await call(p, 'POST', '/v1/memories/batch', { items: texts.map((text) => ({ text })) });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }

  /** A replica's vector answers to every query (ids and scores). */
  async function answers(p: Proc): Promise<string> {
    const out: string[] = [];
    for (const query of QUERIES) {
      const res = await call(p, 'POST', '/v1/search', { query, mode: 'vector', k: 8 });
      if (res.status !== 200)
        throw new Error(`search on ${p.port}: ${res.status} ${JSON.stringify(res.body)}`);
      const hits = res.body.hits as { id: string; score: number }[];
      out.push(hits.map((h) => `${h.id}:${h.score.toFixed(4)}`).join(','));
    }
    return out.join('\n');
  }

  async function queueEmpty(): Promise<boolean> {
    const jobs = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs');
    return jobs.rows[0].n === 0;
  }

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    env = {
      DATABASE_URL: process.env.DATABASE_URL as string,
      DATABASE_SCHEMA: t.schema as string,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      VECTOR_INDEX: 'usearch',
      VECTOR_INDEX_FOLLOW: 'on',
      VECTOR_FOLLOW_POLL_MS: '100',
      WORKER_POLL_MS: '50',
    };
    for (let i = 0; i < 3; i++) dirs.push(mkdtempSync(join(tmpdir(), `ml-replica-${i}-`)));
    [apiA, apiB] = await Promise.all([startApi(dirs[0]), startApi(dirs[1])]);
    const worker = start(['worker'], await freePort(), dirs[2]);
    await ready(worker);
  }, 240_000);

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await t?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('finds through one replica, within a second, what was written through the other', {
    timeout: 120_000,
  }, async () => {
    const text = 'replica drill: the harbour cranes were repainted orange in spring';
    await write(apiA, [text]);
    // Indexed by the worker process: then searchable through B within the bound.
    const indexed = await waitFor(
      async () => {
        const res = await t.db.query<{ at: Date }>(
          `SELECT now() AS at FROM memory_nodes WHERE text = $1 AND status = 'indexed'`,
          [text],
        );
        return res.rows[0]?.at ? Date.now() : undefined;
      },
      { what: 'the worker process to index the memory', timeoutMs: 60_000, intervalMs: 20 },
    );
    const found = await waitFor(
      async () => {
        const res = await call(apiB, 'POST', '/v1/search', {
          query: 'harbour cranes painted',
          mode: 'vector',
          k: 3,
        });
        const hits = (res.body.hits ?? []) as { text: string }[];
        return hits.some((h) => h.text === text) ? Date.now() : undefined;
      },
      { what: 'replica B to find the memory', timeoutMs: 10_000, intervalMs: 20 },
    );
    // Polling every 100 ms, plus the search itself: well inside the one-second bound.
    expect(found - indexed).toBeLessThan(1_000);
    const readyz = await call(apiB, 'GET', '/readyz');
    expect(readyz.body).toMatchObject({ checks: { replica: 'ok' }, replica: { opened: 'rebuilt' } });
  });

  it('converges after a replica is killed and restarted while writes go on', {
    timeout: 300_000,
  }, async () => {
    let stop = false;
    let written = 0;
    const writing = (async () => {
      while (!stop) {
        await write(
          apiA,
          Array.from(
            { length: 10 },
            (_, i) => `note ${written + i} about ${TOPICS[(written + i) % TOPICS.length]}`,
          ),
        );
        written += 10;
        await sleep(50);
      }
    })();
    await waitFor(() => written >= 50, { what: 'writes to start', timeoutMs: 60_000 });
    apiB.child.kill('SIGKILL');
    await new Promise((resolve) => apiB.child.once('exit', resolve));
    await waitFor(() => written >= 150, { what: 'writes while B is down', timeoutMs: 60_000 });
    apiB = await startApi(dirs[1]);
    await waitFor(() => written >= 250, { what: 'writes after B restarted', timeoutMs: 60_000 });
    stop = true;
    await writing;

    // Restarted from the position saved beside its files: it caught up, it did not rebuild.
    const restarted = await call(apiB, 'GET', '/readyz');
    expect(restarted.body).toMatchObject({ replica: { opened: 'resumed' } });
    let a = '';
    let b = '';
    await waitFor(
      async () => {
        if (!(await queueEmpty())) return false;
        [a, b] = [await answers(apiA), await answers(apiB)];
        return a === b;
      },
      { what: () => `both replicas to answer alike:\nA ${a}\nB ${b}`, timeoutMs: 120_000, intervalMs: 200 },
    );
    expect(a.split(',').length).toBeGreaterThan(QUERIES.length);
    const count = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM memory_nodes WHERE status = 'indexed' AND deleted_at IS NULL`,
    );
    expect(count.rows[0].n).toBe(written + 1);
  });
});
