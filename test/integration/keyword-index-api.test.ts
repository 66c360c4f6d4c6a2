import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { type Access, systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';

interface Hit {
  id: string;
  text: string;
  keywordScore?: number;
}

/**
 * Keyword search through the service with the in-process index: what a write changes is visible
 * to the very next search, deleted and superseded memories are not found, personal data stays
 * hidden from callers without pii:read, filters keep k, and writes of another process are seen.
 */
describe.each(backends)('keyword search with the in-process index (%s)', (backend) => {
  let ta: TestApp;
  const call = (opts: InjectOptions) => ta.http.inject(opts);
  const write = async (body: Record<string, unknown>) => {
    const res = await call({ method: 'POST', url: '/v1/memories', payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ id: string }>().id;
  };
  const keyword = async (query: string, extra: Record<string, unknown> = {}) => {
    const res = await call({
      method: 'POST',
      url: '/v1/search',
      payload: { query, mode: 'keyword', ...extra },
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ hits: Hit[] }>().hits;
  };
  const ids = (hits: Hit[]) => hits.map((h) => h.id);

  beforeAll(async () => {
    ta = await startTestApp(backend);
  });
  afterAll(async () => {
    await ta?.close();
  });

  it('finds a write at the very next search, and forgets a deleted memory at once', async () => {
    const id = await write({ text: 'the zeppelin hangar opens at noon' });
    expect(ids(await keyword('zeppelin'))).toEqual([id]);
    const batch = await call({
      method: 'POST',
      url: '/v1/memories/batch',
      payload: { items: [{ text: 'a zeppelin over the bay' }, { text: 'zeppelin tickets sold out' }] },
    });
    expect(batch.statusCode, batch.body).toBe(201);
    expect(await keyword('zeppelin')).toHaveLength(3);
    const del = await call({ method: 'DELETE', url: `/v1/memories/${id}` });
    expect(del.statusCode, del.body).toBe(204);
    expect(ids(await keyword('zeppelin'))).not.toContain(id);
    expect(await keyword('hangar')).toEqual([]);
  });

  it('skips superseded memories unless asked, and finds a turn by its neighbours and its date', async () => {
    const old = await write({ text: 'my locker code is 4417 by the gymnasium' });
    const fresh = await write({ text: 'new locker code at the gymnasium is 9902', supersedes: [old] });
    expect(ids(await keyword('locker gymnasium'))).toEqual([fresh]);
    expect(ids(await keyword('locker gymnasium', { includeSuperseded: true })).sort()).toEqual(
      [old, fresh].sort(),
    );

    const session = { sessionId: 'locomo-1' };
    await write({
      ...session,
      text: 'Caroline: I went to the LGBTQ support group yesterday',
      occurredAt: '2023-05-08T13:56:00Z',
    });
    const reply = await write({
      ...session,
      text: 'Melanie: what was it like?',
      occurredAt: '2023-05-08T13:57:00Z',
    });
    const answer = await write({
      ...session,
      text: 'Caroline: it was so powerful',
      occurredAt: '2023-05-08T13:58:00Z',
    });
    expect(ids(await keyword('what did Caroline find powerful about the support group'))).toContain(answer);
    // The reply holds neither word: its neighbours do. Hits still show the memory's own text.
    const group = await keyword('support group');
    expect(ids(group)).toContain(reply);
    expect(group.find((h) => h.id === reply)?.text).toBe('Melanie: what was it like?');
    expect(ids(await keyword('May 2023')).sort()).toEqual([answer, reply, ids(group)[0]].sort());
  });

  it('hides personal data from callers without pii:read', async () => {
    const id = await write({ text: 'write to wilhelmina.quast@example.org about the caravan' });
    const noPii: Access = { ...systemAccess('test'), divisions: ['default'], piiRead: false };
    const search = (query: string, access: Access = noPii) =>
      ta.app.search.search(access, { divisionId: 'default', query, k: 10, mode: 'keyword' });
    const email = 'wilhelmina.quast@example.org';
    expect((await search(email)).hits).toEqual([]);
    expect((await search('caravan')).hits.map((h) => h.id)).toEqual([id]);
    expect((await search(email, systemAccess('test'))).hits.map((h) => h.id)).toEqual([id]);
  });

  it('keeps k under a selective filter: 20 matches behind a namespace among thousands', async () => {
    // Written in SQL: the write path is not what this measures, and 3,000 embeddings take a while.
    await ta.t.db.query(
      `INSERT INTO memory_nodes (id, division_id, namespace, text, checksum)
       SELECT gen_random_uuid(), 'default', CASE WHEN i % 150 = 7 THEN 'rare' ELSE 'main' END,
              'harvest report ' || i || ' barley and wheat', md5(i::text)
       FROM generate_series(0, 2999) AS i`,
    );
    const hits = await keyword('harvest barley', { namespace: 'rare', k: 20 });
    expect(hits).toHaveLength(20);
    expect(await keyword('harvest barley', { namespace: 'rare', k: 50 })).toHaveLength(20);
    expect(await keyword('harvest barley', { k: 50 })).toHaveLength(50);
  });
});

describe.skipIf(!process.env.DATABASE_URL)('keyword search sees writes of another process', () => {
  let ta: TestApp;
  beforeAll(async () => {
    ta = await startTestApp('postgres');
  });
  afterAll(async () => {
    await ta?.close();
  });

  it('finds what a second app on the same database wrote, at its next search', async () => {
    const db = await openPostgres({ url: process.env.DATABASE_URL as string, schema: ta.t.schema, max: 3 });
    const dataDir = mkdtempSync(join(tmpdir(), 'ml-test-'));
    const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    const other = await createApp(config, {
      worker: false,
      database: db,
      embedder: await localEmbedder(),
      logger: createLogger('silent'),
    });
    try {
      const search = (query: string) =>
        ta.app.search.search(systemAccess('test'), { divisionId: 'default', query, k: 10, mode: 'keyword' });
      expect((await search('quetzal')).hits).toEqual([]);
      const written = await other.memories.create(systemAccess('other-replica'), 'default', {
        text: 'a quetzal nests in the cloud forest',
      });
      expect((await search('quetzal')).hits.map((h) => h.id)).toEqual([written.memory.id]);
    } finally {
      await other.close();
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
