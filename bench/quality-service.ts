/**
 * The service the quality benchmark asks, in this process: the real app and HTTP server over one
 * database that outlives it, so that several configurations (the ablation's variants) can be
 * started one after another over the same ingested memories, each with its own data directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openPglite } from '../src/adapters/db/pglite.js';
import type { Database } from '../src/adapters/db/port.js';
import { openPostgres } from '../src/adapters/db/postgres.js';
import type { Embedder } from '../src/adapters/embedders/port.js';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { buildHttpServer } from '../src/http/server.js';
import { rebuildIndex } from '../src/indexing/index-maintenance.js';
import { INDEX_QUEUE } from '../src/indexing/queue.js';
import { createLogger } from '../src/platform/logger.js';

const IDLE_TIMEOUT_MS = 30 * 60_000;

export interface BenchDatabase {
  db: Database;
  engine: 'pglite' | 'postgres';
  drop(): Promise<void>;
}

/** PGlite in a temporary directory, or a fresh schema on a PostgreSQL server (dropped afterwards). */
export async function openBenchDatabase(url?: string): Promise<BenchDatabase> {
  if (!url) {
    const dir = mkdtempSync(join(tmpdir(), 'ml-quality-db-'));
    const db = await openPglite(dir);
    return {
      db,
      engine: 'pglite',
      async drop() {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `bench_quality_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const db = await openPostgres({ url, schema });
  return {
    db,
    engine: 'postgres',
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

export interface Service {
  url: string;
  vectorIndex: string;
  post<T>(
    path: string,
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; ms: number }>;
  get<T>(path: string): Promise<{ status: number; body: T }>;
  /** Resolves once no memory is pending and no index job is left (neighbours' updates included). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the app (worker included) and its HTTP server on 127.0.0.1 with `env` on top of the
 * defaults. `rebuild`: rebuild the vector index from PostgreSQL first, for variants whose index
 * holds other vectors than the last one's (a changed blend of neighbours).
 */
export async function startService(
  database: BenchDatabase,
  embedder: Embedder,
  env: Record<string, string>,
  opts: { rebuild?: boolean } = {},
): Promise<Service> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-quality-'));
  const config = loadConfig({ DATA_DIR: dataDir, AUTH_MODE: 'dev', LOG_LEVEL: 'warn', ...env });
  const app = await createApp(config, {
    worker: true,
    database: database.db,
    embedder,
    logger: createLogger('warn'),
  });
  if (opts.rebuild) {
    await rebuildIndex(app.db, app.index, embedder.model, undefined, {
      contextWeight: config.VECTOR_CONTEXT_WEIGHT,
    });
  }
  const http = await buildHttpServer(app);
  await http.listen({ port: 0, host: '127.0.0.1' });
  app.start();
  const url = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`;
  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const send = () =>
      fetch(url + path, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const t0 = performance.now();
    let res: Response;
    try {
      res = await send();
    } catch (err) {
      // A kept-alive connection the server closed while this process was busy (Fastify closes
      // idle ones): reads and searches are safe to send again, writes only with an Idempotency-Key.
      if (method !== 'GET' && path !== '/v1/search' && !headers['idempotency-key']) throw err;
      res = await send();
    }
    const parsed = (await res.json()) as T;
    return { status: res.status, body: parsed, ms: performance.now() - t0 };
  };
  return {
    url,
    vectorIndex: app.index.name,
    post: (path, body, headers) => call('POST', path, body, headers),
    get: (path) => call('GET', path),
    async idle() {
      const deadline = Date.now() + IDLE_TIMEOUT_MS;
      for (;;) {
        const res = await app.db.query<{ pending: number; jobs: number }>(
          `SELECT (SELECT count(*)::int FROM memory_nodes WHERE status = 'pending' AND deleted_at IS NULL) AS pending,
             (SELECT count(*)::int FROM jobs WHERE queue = $1 AND status <> 'dead') AS jobs`,
          [INDEX_QUEUE],
        );
        const { pending, jobs } = res.rows[0];
        if (pending === 0 && jobs === 0) return;
        if (Date.now() > deadline) throw new Error(`still ${pending} memories pending, ${jobs} index jobs`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async close() {
      await http.close();
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
