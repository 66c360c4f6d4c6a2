import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { cliDatabase, runCli } from '../helpers/cli.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';

/** The real CLI in a child process, as an operator runs it. */
describe.each(backends)('memory-layer CLI on %s', (backend) => {
  let dir: string;
  let t: TestDatabase | undefined;
  let env: Record<string, string>;

  const cli = (...args: string[]) => runCli(env, args, 120_000);
  const count = async (sql: string): Promise<number> => {
    if (t) return (await t.db.query<{ n: number }>(sql)).rows[0].n;
    const db = await openPglite(join(dir, 'pglite'));
    try {
      return (await db.query<{ n: number }>(sql)).rows[0].n;
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ml-cli-'));
    env = { DATA_DIR: dir, LOG_LEVEL: 'error' };
    const database = await cliDatabase(backend);
    t = database.t;
    env = { ...env, ...database.env };
  });
  afterAll(async () => {
    await t?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ingests a JSONL file resumably, stops at a bad line naming it, and never duplicates', {
    timeout: 240_000,
  }, async () => {
    const file = join(dir, 'memories.jsonl');
    const lines = [
      { text: 'The deploy pipeline runs every Friday at noon', namespace: 'ops' },
      { text: 'Caroline adopted a grey cat named Pixel', tags: ['caroline'] },
      { text: 'Quarterly revenue grew by twelve percent' },
      { text: 'Melanie prefers tea over coffee in the morning' },
      { text: 'The office moves to Lisbon next spring', colour: 'blue' },
      { text: 'Backups are verified every night' },
    ];
    writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const bad = await cli('ingest', file, '--batch', '2');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/line 5: colour is not a known field \(validation_failed\)/);
    expect(JSON.parse(readFileSync(`${file}.progress`, 'utf8')).line).toBe(4);
    expect(await count('SELECT count(*)::int AS n FROM memory_nodes')).toBe(4);

    // The operator fixes line 5: the lines before it are unchanged, so the import resumes there.
    lines[4] = { text: 'The office moves to Lisbon next spring' };
    writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const ok = await cli('ingest', file, '--batch', '2');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('imported 2 memories into default');
    expect(ok.stdout).toMatch(/indexed/);
    expect(await count('SELECT count(*)::int AS n FROM memory_nodes')).toBe(6);

    // Progress lost (a crash before it was saved): the replayed batches are recognised, not duplicated.
    rmSync(`${file}.progress`);
    const again = await cli('ingest', file, '--batch', '2');
    expect(again.code, again.stderr).toBe(0);
    expect(await count('SELECT count(*)::int AS n FROM memory_nodes')).toBe(6);
  });

  it('searches, rebuilds the index, and lists dead jobs', { timeout: 240_000 }, async () => {
    const found = await cli('search', 'Which pet did Caroline adopt?', '--json');
    expect(found.code, found.stderr).toBe(0);
    const result = JSON.parse(found.stdout) as { hits: { text: string }[]; pending: number };
    expect(result.hits[0].text).toBe('Caroline adopted a grey cat named Pixel');
    expect(result.pending).toBe(0);

    const rebuilt = await cli('index', 'rebuild');
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const n = await count("SELECT count(*)::int AS n FROM memory_nodes WHERE status = 'indexed'");
    expect(rebuilt.stdout).toContain(`${n} vectors`);

    const dead = await cli('jobs', 'dead');
    expect(dead.code, dead.stderr).toBe(0);
    expect(dead.stdout).toContain('no dead jobs');
    const retry = await cli('jobs', 'retry', '999999');
    expect(retry.code).not.toBe(0);
    expect(retry.stderr).toContain('no dead job 999999');
  });

  it('migrates with nothing but the database: no model, vector index, signing key or object store', {
    timeout: 120_000,
  }, async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'ml-cli-migrate-'));
    const db = backend === 'postgres' ? await openTestDatabase('postgres', { migrate: false }) : undefined;
    const saved = env;
    // An embedder that cannot be reached: building the application would fail (or hang) on it.
    env = {
      ...env,
      DATA_DIR: fresh,
      ...(db ? { DATABASE_SCHEMA: db.schema as string } : {}),
      EMBEDDER: 'openai',
      EMBEDDER_URL: 'http://127.0.0.1:9/v1',
      EMBEDDER_MODEL: 'unreachable',
      EMBEDDER_DIMENSIONS: '8',
      OBJECT_STORE: 's3',
      S3_BUCKET: 'no-such-bucket',
      S3_ENDPOINT: 'http://127.0.0.1:9',
    };
    try {
      const first = await cli('migrate');
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toMatch(/^applied 001_core\.sql$/m);
      expect(first.stdout).toMatch(/^\d+ migrations applied$/m);
      const again = await cli('migrate');
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toBe('migrations are up to date\n');
      // What building the whole application leaves behind is not there.
      expect(readdirSync(fresh).filter((f) => f !== 'pglite')).toEqual([]);
    } finally {
      env = saved;
      await db?.drop();
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('refuses a bad setting with a message naming the variable', async () => {
    const res = await cli('migrate');
    expect(res.code).toBe(0);
    env.VECTOR_INDEX = 'faiss';
    const bad = await cli('migrate');
    delete env.VECTOR_INDEX;
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('VECTOR_INDEX');
  });
});
