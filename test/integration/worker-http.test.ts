import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { startWorker } from '../../src/start/server.js';
import { CLI_BIN, freePort } from '../helpers/cli.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

async function get(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined; // not listening (yet)
  }
}

/** The value of an unlabelled sample in Prometheus text format. */
const sample = (text: string, name: string) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1]);

/** `memory-layer worker` as Kubernetes runs it: a real process, probed and scraped over real HTTP. */
describe.each(backends)('worker HTTP endpoint on %s', (backend) => {
  let dir: string;
  let t: TestDatabase | undefined;
  let env: Record<string, string>;
  let port: number;
  let child: ChildProcess | undefined;
  let stderr = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ml-worker-http-'));
    port = await freePort();
    env = { DATA_DIR: dir, LOG_LEVEL: 'warn', HOST: '127.0.0.1', WORKER_HTTP_PORT: String(port) };
    if (backend === 'postgres') {
      t = await openTestDatabase('postgres', { migrate: false });
      env = { ...env, DATABASE_URL: process.env.DATABASE_URL as string, DATABASE_SCHEMA: t.schema as string };
    } else {
      env = { ...env, DATABASE_URL: '' };
    }
    // Three memories waiting to be indexed, queued by an API-only process that has since stopped
    // (PGlite is single-process: the worker can only open it afterwards).
    const api = await createApp(loadConfig(env), { worker: false, logger: createLogger('silent') });
    api.start();
    for (const text of ['The sprint ends on Thursday', 'Lisbon office opens in May', 'Tea, not coffee'])
      await api.memories.create(systemAccess('test'), 'default', { text });
    await api.close();
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await t?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /healthz, /readyz and /metrics with the worker counters, and stops on SIGTERM', {
    timeout: 180_000,
  }, async () => {
    child = spawn(process.execPath, [CLI_BIN, 'worker'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const base = `http://127.0.0.1:${port}`;
    // Ready once the model is loaded; indexed once the three queued memories went through.
    const metrics = await waitFor(
      async () => {
        const res = await get(`${base}/metrics`);
        if (res?.status === 200 && sample(res.body, 'memory_layer_memories_indexed_total') === 3)
          return res.body;
        if (child && child.exitCode !== null) throw new Error(`worker exited ${child.exitCode}: ${stderr}`);
        return undefined;
      },
      { what: () => `the worker to index 3 memories: ${stderr}`, timeoutMs: 150_000, intervalMs: 250 },
    );
    expect(metrics, stderr).not.toBe('');
    expect(sample(metrics, 'memory_layer_embeddings_computed_total')).toBe(3);
    // The shared queue, read at scrape time like the API does: nothing left waiting.
    expect(metrics).toContain('# TYPE memory_layer_queue_depth gauge');
    expect(metrics).not.toMatch(/^memory_layer_queue_depth\{queue="index",status="queued"\} [1-9]/m);
    expect(metrics).toMatch(/^memory_layer_process_resident_memory_bytes \d+/m);
    // A worker serves no search: it builds no keyword index (the memories are there to index).
    expect(sample(metrics, 'memory_layer_keyword_index_memories')).toBe(0);

    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: '{"status":"ok"}' });
    const ready = await get(`${base}/readyz`);
    expect(ready?.status).toBe(200);
    expect(JSON.parse(ready?.body ?? '{}')).toMatchObject({
      status: 'ready',
      checks: { database: 'ok', queue: 'ok', vectorIndex: 'ok' },
    });
    // Only those three: the worker is no API.
    expect((await get(`${base}/v1/memories`))?.status).toBe(404);
    expect((await get(`${base}/openapi.json`))?.status).toBe(404);

    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await get(`${base}/healthz`)).toBeUndefined();
  });

  it('answers /readyz 503 naming the part that is down, like the API; WORKER_HTTP_PORT=0 opens no port', {
    timeout: 120_000,
  }, async () => {
    port = await freePort();
    const w = await startWorker(loadConfig({ ...env, WORKER_HTTP_PORT: String(port), LOG_LEVEL: 'silent' }));
    try {
      const base = `http://127.0.0.1:${port}`;
      expect((await get(`${base}/readyz`))?.status).toBe(200);
      w.app.index.check = () => Promise.reject(new Error('vector index unreachable'));
      const down = await get(`${base}/readyz`);
      expect(down?.status).toBe(503);
      expect(JSON.parse(down?.body ?? '{}')).toMatchObject({
        status: 'unavailable',
        checks: { database: 'ok', vectorIndex: 'vector index unreachable' },
      });
      expect((await get(`${base}/healthz`))?.status).toBe(200);
      // A worker that cannot read its queue is not ready either.
      w.app.index.check = () => Promise.resolve();
      await w.app.db.query('ALTER TABLE jobs RENAME TO jobs_away');
      try {
        const noQueue = await get(`${base}/readyz`);
        expect(noQueue?.status).toBe(503);
        expect(JSON.parse(noQueue?.body ?? '{}').checks.queue).toMatch(/jobs/);
      } finally {
        await w.app.db.query('ALTER TABLE jobs_away RENAME TO jobs');
      }
    } finally {
      await w.stop();
    }
    const off = await startWorker(loadConfig({ ...env, WORKER_HTTP_PORT: '0', LOG_LEVEL: 'silent' }));
    try {
      expect(off.http).toBeUndefined();
      expect(await get(`http://127.0.0.1:${port}/healthz`)).toBeUndefined();
    } finally {
      await off.stop();
    }
  });
});
