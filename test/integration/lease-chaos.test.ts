import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { CLI_BIN, freePort } from '../helpers/cli.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

const MEMORIES = 600;

/** The sum of a metric's samples (every label set) in Prometheus text format, or NaN when absent. */
function total(text: string, name: string): number {
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) =>
    Number(m[1]),
  );
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0);
}

async function scrape(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
    return res.status === 200 ? await res.text() : undefined;
  } catch {
    return undefined; // not listening (yet), or just killed
  }
}

/**
 * A worker process killed with SIGKILL in the middle of a batch (no chance to release anything):
 * the jobs it held are done by the next worker, within the lease on a shared server and at once on
 * PGlite (whose lease here is ten minutes, longer than the test may take), and each memory ends
 * indexed exactly once.
 */
describe.each(backends)('a worker killed mid-batch on %s', (backend) => {
  let dir: string;
  let t: TestDatabase | undefined;
  let env: Record<string, string>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ml-lease-chaos-'));
    env = {
      DATA_DIR: dir,
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      // Small batches, so that the kill lands between a claim and its completion.
      EMBEDDER_BATCH_SIZE: '8',
      WORKER_POLL_MS: '50',
      JOB_LEASE_MS: backend === 'postgres' ? '3000' : '600000',
    };
    if (backend === 'postgres') {
      t = await openTestDatabase('postgres', { migrate: false });
      env = {
        ...env,
        DATABASE_URL: process.env.DATABASE_URL as string,
        DATABASE_SCHEMA: t.schema as string,
      };
    } else {
      env = { ...env, DATABASE_URL: '' };
    }
    const api = await createApp(loadConfig(env), { worker: false, logger: createLogger('silent') });
    for (let from = 0; from < MEMORIES; from += 200) {
      const texts = Array.from({ length: 200 }, (_, i) => ({
        text: `crash drill note ${from + i}: item ${(from + i) * 7}`,
      }));
      await api.memories.createBatch(systemAccess('test'), 'default', texts);
    }
    await api.close();
  }, 120_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await t?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startWorker(): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
    const port = await freePort();
    let stderr = '';
    const child = spawn(process.execPath, [CLI_BIN, 'worker'], {
      env: { ...process.env, ...env, WORKER_HTTP_PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    children.push(child);
    return { child, port, stderr: () => stderr };
  }

  it('leaves no job behind and indexes each memory once', { timeout: 300_000 }, async () => {
    const first = await startWorker();
    // Killed once it has indexed some memories but not all: it holds a batch in hand.
    const indexedBefore = await waitFor(
      async () => {
        const m = await scrape(first.port);
        const n = m ? total(m, 'memory_layer_memories_indexed_total') : Number.NaN;
        if (first.child.exitCode !== null) throw new Error(`worker exited: ${first.stderr()}`);
        return n > 0 ? n : undefined;
      },
      {
        what: () => `the first worker to index something: ${first.stderr()}`,
        timeoutMs: 150_000,
        intervalMs: 20,
      },
    );
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    expect(indexedBefore).toBeLessThan(MEMORIES);

    const second = await startWorker();
    await waitFor(
      async () => {
        const m = await scrape(second.port);
        if (second.child.exitCode !== null) throw new Error(`worker exited: ${second.stderr()}`);
        // Read from the shared queue at scrape time: no sample at all once nothing is queued or running.
        return m?.includes('# TYPE memory_layer_queue_depth gauge') &&
          !(total(m, 'memory_layer_queue_depth') > 0)
          ? true
          : undefined;
      },
      {
        what: () => `the second worker to empty the queue: ${second.stderr()}`,
        timeoutMs: 200_000,
        intervalMs: 100,
      },
    );
    second.child.kill('SIGTERM');
    await new Promise((resolve) => second.child.once('exit', resolve));

    const app = await createApp(loadConfig(env), { worker: false, logger: createLogger('silent') });
    try {
      const statuses = await app.db.query<{ status: string; n: number }>(
        'SELECT status, count(*)::int AS n FROM memory_nodes GROUP BY status',
      );
      expect(statuses.rows).toEqual([{ status: 'indexed', n: MEMORIES }]);
      const jobs = await app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs');
      expect(jobs.rows[0].n).toBe(0);
      // One vector per memory in the index, and a search by meaning finds a memory the killed
      // worker held or never reached.
      expect(await app.index.count(app.embedder.model)).toBe(MEMORIES);
      const hits = await app.search.search(systemAccess('test'), {
        divisionId: 'default',
        query: `crash drill note ${MEMORIES - 1}: item ${(MEMORIES - 1) * 7}`,
        mode: 'vector',
        k: 1,
      });
      expect(hits.hits[0]?.text).toBe(`crash drill note ${MEMORIES - 1}: item ${(MEMORIES - 1) * 7}`);
    } finally {
      await app.close();
    }
  });
});
