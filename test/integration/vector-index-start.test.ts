import { readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { localEmbedder, openFollowerOnce, startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';

const access = systemAccess('test');
const TEXTS = [
  'A crate of oranges arrived from Valencia',
  'The lighthouse keeper retired in June',
  'Our dog refuses to walk in the rain',
];

/**
 * The usearch files are derived data: a start whose files cannot be read (a disk that tore a file,
 * a file from elsewhere) rebuilds them from PostgreSQL instead of failing, and answers as before,
 * whether the process checks its index against PostgreSQL or follows the change feed.
 */
describe.each(backends)('a usearch index whose file is damaged, at start, on %s', (backend) => {
  let first: TestApp;
  let second: App | undefined;

  beforeAll(async () => {
    first = await startTestApp(backend, { env: { VECTOR_INDEX: 'usearch' } });
  });
  afterAll(async () => {
    await second?.close();
    await first.close();
  });

  const answers = async (app: App) =>
    (
      await app.search.search(access, {
        divisionId: 'default',
        query: 'fruit from Spain',
        mode: 'vector',
        k: 3,
      })
    ).hits.map((h) => h.id);

  it('rebuilds it from PostgreSQL and answers as before', async () => {
    const vectors = await (await localEmbedder()).embed(TEXTS);
    const body = TEXTS.map((text, i) =>
      JSON.stringify({ text, vector: Array.from(vectors[i]), model: 'use-lite' }),
    );
    const res = await first.http.inject({
      method: 'POST',
      url: '/v1/memories/import?divisionId=default',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: `${body.join('\n')}\n`,
    });
    expect(res.json()).toMatchObject({ imported: 3, failed: 0 });
    const before = await answers(first.app);
    expect(before).toHaveLength(3);

    // Closed (which flushes the index), then its one file torn.
    await first.http.close();
    await first.app.close();
    const dir = join(first.dataDir, 'usearch-f16');
    const [space] = readdirSync(dir).filter((name) => !name.includes('.'));
    const files = readdirSync(join(dir, space));
    expect(files).toEqual(['default.vectors']);
    truncateSync(join(dir, space, 'default.vectors'), 20);

    const config = loadConfig({ DATA_DIR: first.dataDir, LOG_LEVEL: 'silent', VECTOR_INDEX: 'usearch' });
    second = await createApp(config, {
      worker: false,
      database: first.t.db,
      embedder: await localEmbedder(),
      logger: createLogger('silent'),
    });
    second.start();
    expect(await answers(second)).toEqual(before);
  });

  it('a replica following the change feed rebuilds it too, instead of resuming from its position', async () => {
    const before = await answers(second as App);
    const replicaDir = join(first.dataDir, 'replica');
    const config = loadConfig({
      DATA_DIR: replicaDir,
      LOG_LEVEL: 'silent',
      VECTOR_INDEX: 'usearch',
      VECTOR_INDEX_FOLLOW: 'on',
    });
    const open = () => openFollowerOnce(config, first.t.db);
    expect(await open()).toBe('rebuilt'); // no saved position yet
    expect(await open()).toBe('resumed');
    const dir = join(replicaDir, 'usearch-f16');
    const [space] = readdirSync(dir).filter((name) => !name.includes('.'));
    truncateSync(join(dir, space, 'default.vectors'), 20);
    expect(await open()).toBe('rebuilt');

    const replica = await createApp(config, {
      worker: false,
      database: first.t.db,
      embedder: await localEmbedder(),
      logger: createLogger('silent'),
    });
    try {
      replica.start();
      expect(await answers(replica)).toEqual(before);
    } finally {
      await replica.close();
    }
  });
});
