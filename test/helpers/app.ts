import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../src/adapters/db/port.js';
import { createLocalEmbedder } from '../../src/adapters/embedders/local.js';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { type App, createApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { buildHttpServer } from '../../src/http/server.js';
import { createParts } from '../../src/parts.js';
import { createLogger } from '../../src/platform/logger.js';
import { type Backend, openTestDatabase, type TestDatabase } from './db.js';

let sharedModel: Promise<Embedder> | undefined;
/** The built-in model, loaded once per test file. */
export const localEmbedder = () => {
  sharedModel ??= createLocalEmbedder();
  return sharedModel;
};

export interface TestApp {
  app: App;
  http: FastifyInstance;
  t: TestDatabase;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * A whole service on a database of its own: real PostgreSQL (PGlite or the server), the real
 * vector index the factory picks, the built-in model unless an embedder is given, and the HTTP
 * layer driven with `http.inject` (Fastify's in-process requests through the full stack).
 */
export async function startTestApp(
  backend: Backend,
  opts: {
    env?: Record<string, string>;
    embedder?: Embedder;
    worker?: boolean;
    /** An existing database and data directory (e.g. restored from a snapshot); closed with the app. */
    existing?: { t: TestDatabase; dataDir: string };
  } = {},
): Promise<TestApp> {
  const t = opts.existing?.t ?? (await openTestDatabase(backend));
  const dataDir = opts.existing?.dataDir ?? mkdtempSync(join(tmpdir(), 'ml-test-'));
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', WORKER_POLL_MS: '50', ...opts.env });
  const app = await createApp(config, {
    worker: opts.worker ?? true,
    database: t.db,
    embedder: opts.embedder ?? (await localEmbedder()),
    logger: createLogger(config.LOG_LEVEL ?? 'silent'),
  });
  app.start();
  const http = await buildHttpServer(app);
  await http.ready();
  return {
    app,
    http,
    t,
    dataDir,
    async close() {
      await http.close();
      await app.close();
      await t.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a replica that follows the change feed (config with VECTOR_INDEX_FOLLOW=on) by hand, to
 * see how it opened ('resumed' from its saved position or 'rebuilt'), then closes it.
 */
export async function openFollowerOnce(config: Config, database: Database) {
  const parts = createParts(config, {
    database,
    embedder: await localEmbedder(),
    logger: createLogger('silent'),
  });
  try {
    return await (await parts.follower())?.open();
  } finally {
    await parts.close();
  }
}
