import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kekFingerprint, parseKek } from '../../src/adapters/keys/directory.js';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { localEmbedder } from '../helpers/app.js';
import { cliDatabase, runCli } from '../helpers/cli.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Key rotation, driven as an operator drives it: the real CLI in child processes (`keys
 * new-kek`, `rotate-data`, `reencrypt`, `rewrap`, `list`, `retire-data`, `backup`, `restore`)
 * against an installation on either database, with the S3-protocol server as the object store.
 * Between commands the service is opened in this process to upload, download and watch a
 * re-encryption run that is stopped half-way.
 */
describe.each(backends)('key rotation on %s', (backend) => {
  let root: string;
  let s3: TestS3;
  let t: TestDatabase | undefined;
  let restoredDb: TestDatabase | undefined;
  let env: Record<string, string>;
  const kek1 = () => join(root, 'kek-1');
  const kek2 = () => join(root, 'kek-2');
  const keyDir = () => join(root, 'keys');
  const access = systemAccess('test');
  const files = new Map<string, Buffer>();

  const cli = async (args: string[], extra: Record<string, string> = {}) => {
    const res = await runCli({ ...env, ...extra }, args);
    return res;
  };
  const ok = async (args: string[], extra: Record<string, string> = {}) => {
    const res = await cli(args, extra);
    expect(res.code, `${args.join(' ')}\n${res.stderr}${res.stdout}`).toBe(0);
    return res.stdout;
  };
  async function open(extra: Record<string, string> = {}, worker = false): Promise<App> {
    const config = loadConfig({ ...env, ...extra, LOG_LEVEL: 'silent', WORKER_POLL_MS: '50' });
    return createApp(config, { worker, embedder: await localEmbedder(), logger: createLogger('silent') });
  }
  async function download(app: App, id: string): Promise<Buffer> {
    const { body } = await app.artifacts.open(access, id);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  const keyFiles = () =>
    Object.fromEntries(
      readdirSync(keyDir())
        .sort()
        .map((f) => [f, readFileSync(join(keyDir(), f), 'utf8')]),
    );
  const artifactRows = async (app: App) =>
    (
      await app.db.query<{ id: string; division_id: string; key_version: number; object_key: string }>(
        'SELECT id, division_id, key_version, object_key FROM artifacts ORDER BY id',
      )
    ).rows;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ml-key-rotation-'));
    mkdirSync(join(root, 'data'));
    s3 = await startS3(`keys-${backend}`);
    const db = await cliDatabase(backend);
    t = db.t;
    env = {
      ...db.env,
      DATA_DIR: join(root, 'data'),
      OBJECT_STORE: 's3',
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      KEY_DIR: keyDir(),
      KEK_FILE: kek1(),
      ACCESS_AUDIT: 'off',
      LOG_LEVEL: 'error',
    };
  });
  afterAll(async () => {
    await t?.drop();
    await restoredDb?.drop();
    await s3?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('keys new-kek writes a 0600 key that is never overwritten', { timeout: 300_000 }, async () => {
    const out = await ok(['keys', 'new-kek', '--out', kek1()]);
    const fingerprint = kekFingerprint(parseKek(readFileSync(kek1()), 'test'));
    expect(out).toContain(`fingerprint: ${fingerprint}`);
    const again = await cli(['keys', 'new-kek', '--out', kek1()]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/EEXIST/);
    expect(kekFingerprint(parseKek(readFileSync(kek1()), 'test'))).toBe(fingerprint);
  });

  it('seeds divisions and artifacts under version 1 of their data keys', { timeout: 300_000 }, async () => {
    const app = await open();
    try {
      for (const id of ['alpha', 'gone']) await app.divisions.createDivision({ actor: 'test' }, { id });
      for (const [division, n] of [
        ['default', 4],
        ['alpha', 1],
        ['gone', 1],
      ] as const) {
        for (let i = 0; i < n; i++) {
          const bytes = randomBytes(70_000 + i * 1000); // more than one 64 KiB segment
          const a = await app.artifacts.upload(access, division, Readable.from([bytes]));
          expect(a.keyVersion).toBe(1);
          files.set(a.id, bytes);
        }
      }
      await app.erasure.erase({ actor: 'test' }, 'gone');
      for (const id of [...files.keys()]) {
        if ((await artifactRows(app)).every((r) => r.id !== id)) files.delete(id);
      }
      expect(files.size).toBe(5);
    } finally {
      await app.close();
    }
    expect(Object.keys(keyFiles())).toEqual(['alpha.json', 'default.json', 'gone.json']);
  });

  it('bad input changes nothing: an unknown division, an erased one, encryption off', {
    timeout: 300_000,
  }, async () => {
    const before = keyFiles();
    const unknown = await cli(['keys', 'rotate-data', '--division', 'nosuch']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/division_not_found: no division nosuch/);
    const erased = await cli(['keys', 'rotate-data', '--division', 'gone']);
    expect(erased.code).toBe(1);
    expect(erased.stderr).toMatch(/division_erased: division gone was erased/);
    const off = await cli(['keys', 'rotate-data', '--division', 'default'], { KEY_DIR: '', KEK_FILE: '' });
    expect(off.code).not.toBe(0);
    const status = await cli(['keys', 'reencrypt', '--status', '--division', 'nosuch']);
    expect(status.stderr).toMatch(/division_not_found/);
    expect(keyFiles()).toEqual(before);
    expect(await ok(['keys', 'reencrypt', '--status'])).toMatch(/^no re-encryption runs$/m);
  });

  it('rotating a data key: new writes use version 2, old objects stay readable', {
    timeout: 300_000,
  }, async () => {
    const out = await ok(['keys', 'rotate-data', '--division', 'default']);
    expect(out).toMatch(/^default: data key version 1 -> 2 \(new writes use v2\)$/m);
    expect(out).toMatch(/^re-encryption run \S+ queued/m);
    const again = await cli(['keys', 'rotate-data', '--division', 'default']);
    expect(again.stderr).toMatch(/reencryption_in_progress/);

    const app = await open();
    try {
      const bytes = randomBytes(10_000);
      const fresh = await app.artifacts.upload(access, 'default', Readable.from([bytes]));
      expect(fresh.keyVersion).toBe(2);
      files.set(fresh.id, bytes);
      for (const [id, b] of files) expect((await download(app, id)).equals(b)).toBe(true);
      const metrics = await app.metrics.registry.metrics();
      expect(metrics).toMatch(
        /memory_layer_key_reencrypt_progress_ratio\{division="default",version="2"\} 0/,
      );
      const events = await app.db.query<{ action: string; detail: unknown }>(
        "SELECT action, detail FROM audit_events WHERE division_id = 'default' AND action LIKE 'division.key.%'",
      );
      expect(events.rows.map((e) => e.action)).toEqual(['division.key.rotate']);
    } finally {
      await app.close();
    }
    expect(await ok(['keys', 'list'])).toMatch(
      /^default\tversions 1, 2\tcurrent v2\tartifacts: 4 under v1, 1 under v2$/m,
    );
  });

  it('the re-encryption run, stopped half-way, resumes and moves every object to version 2', {
    timeout: 300_000,
  }, async () => {
    // One artifact per batch and a long pause: the worker is stopped after the first ones.
    const app = await open({ REEMBED_BATCH_SIZE: '1', REEMBED_PAUSE_MS: '60000' }, true);
    app.start();
    try {
      await waitFor(
        async () => {
          const r = await app.db.query<{ moved: number }>('SELECT moved FROM key_reencryptions');
          return r.rows[0].moved >= 1;
        },
        { what: 'the first object to be re-encrypted', timeoutMs: 30_000, intervalMs: 50 },
      );
      expect(await app.metrics.registry.metrics()).toMatch(
        /memory_layer_key_reencrypt_objects_total\{division="default"\} 1/,
      );
    } finally {
      await app.close();
    }
    const status = await ok(['keys', 'reencrypt', '--status', '--json']);
    const [run] = JSON.parse(status).runs;
    expect(run).toMatchObject({
      divisionId: 'default',
      targetVersion: 2,
      status: 'running',
      total: 5,
      done: 2,
    });

    const out = await ok(['keys', 'reencrypt', '--division', 'default']);
    expect(out).toMatch(/^default: run \S+ to v2 completed 5\/5$/m);

    const after = await open();
    try {
      const rows = (await artifactRows(after)).filter((r) => r.division_id === 'default');
      expect(rows.every((r) => r.key_version === 2)).toBe(true);
      for (const r of rows) expect(r.object_key).toMatch(/^artifacts\/default\/[0-9a-f-]+(\.v2)?$/);
      // The objects under version 1 left the bucket; each artifact has exactly one object.
      const objects = (await after.objects.list('artifacts/default/')).map((o) => o.key).sort();
      expect(objects).toEqual(rows.map((r) => r.object_key).sort());
      for (const [id, b] of files) expect((await download(after, id)).equals(b)).toBe(true);
      const actions = await after.db.query<{ action: string; detail: { moved: number } | null }>(
        "SELECT action, detail FROM audit_events WHERE division_id = 'default' AND action LIKE 'division.key.%' ORDER BY seq",
      );
      expect(actions.rows.map((e) => e.action)).toEqual(['division.key.rotate', 'division.key.reencrypt']);
      // Each moved object in the chain with its new key (proof bundles check artifacts against it).
      const moved = await after.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM audit_events WHERE division_id = 'default' AND action = 'artifact.reencrypt'",
      );
      expect(moved.rows[0].n).toBe(4);
      expect(await after.metrics.registry.metrics()).toMatch(
        /memory_layer_key_reencrypt_progress_ratio\{division="default",version="2"\} 1/,
      );
    } finally {
      await after.close();
    }
    expect(await ok(['keys', 'reencrypt'])).toMatch(
      /every artifact is under its division's current key version/,
    );
  });

  let snapshotId = '';
  it('KEK rotation: every key re-wrapped (again: nothing to do), objects untouched, the old KEK alone refused', {
    timeout: 300_000,
  }, async () => {
    snapshotId = (await ok(['backup'])).match(/^snapshot (\S+) written$/m)?.[1] ?? '';
    expect(snapshotId).not.toBe('');
    const probe = await open();
    const objectsBefore = (await probe.objects.list('')).map((o) => `${o.key}:${o.size}`);
    await probe.close();
    const tombstone = keyFiles()['gone.json'];

    await ok(['keys', 'new-kek', '--out', kek2()]);
    const during = { KEK_FILE: kek2(), KEK_PREVIOUS_FILE: kek1() };
    const out = await ok(['keys', 'rewrap'], during);
    const newId = kekFingerprint(parseKek(readFileSync(kek2()), 'test'));
    expect(out).toMatch(
      new RegExp(`^re-wrapped 3 key file\\(s\\) with ${newId}; 0 already wrapped by it; 1 tombstone`, 'm'),
    );
    expect(await ok(['keys', 'rewrap'], during)).toMatch(
      /^re-wrapped 0 key file\(s\) with \S+; 3 already wrapped by it/m,
    );
    const now = keyFiles();
    expect(JSON.parse(now['default.json']).kekId).toBe(newId);
    expect(JSON.parse(now['alpha.json']).kekId).toBe(newId);
    // The installation's key (rows of no division in snapshots) is re-wrapped like the others.
    expect(JSON.parse(now['_installation.json']).kekId).toBe(newId);
    expect(now['gone.json']).toBe(tombstone);

    // The old KEK alone opens nothing any more, with a message that says why.
    const old = await cli(['keys', 'list']);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/wrapped by kek-[0-9a-f]+, not by the configured key-encryption key/);
    await expect(open()).rejects.toThrow(/not by the configured key-encryption key/);

    env.KEK_FILE = kek2();
    const app = await open();
    try {
      expect((await app.objects.list('')).map((o) => `${o.key}:${o.size}`)).toEqual(objectsBefore);
      for (const [id, b] of files) expect((await download(app, id)).equals(b)).toBe(true);
      const rewraps = await app.db.query<{ division_id: string }>(
        "SELECT division_id FROM audit_events WHERE action = 'division.key.rewrap' ORDER BY division_id",
      );
      expect(rewraps.rows.map((r) => r.division_id)).toEqual(['alpha', 'default']);
    } finally {
      await app.close();
    }
  });

  it('a snapshot taken before the KEK rotation restores with the new KEK, every artifact readable', {
    timeout: 300_000,
  }, async () => {
    const dataDir = join(root, 'restored');
    mkdirSync(dataDir);
    const target: Record<string, string> = { DATA_DIR: dataDir };
    if (backend === 'postgres') {
      restoredDb = await openTestDatabase('postgres', { migrate: false });
      target.DATABASE_SCHEMA = restoredDb.schema as string;
    }
    const out = await ok(['restore', snapshotId], target);
    expect(out).toMatch(/^restored snapshot \S+: checksums and audit chains verified$/m);
    expect(out).not.toMatch(/missing/);
    const app = await open(target);
    try {
      for (const [id, b] of files) expect((await download(app, id)).equals(b)).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('retiring: the current version is refused; version 1, used by no artifact, is removed', {
    timeout: 300_000,
  }, async () => {
    const current = await cli(['keys', 'retire-data', '--division', 'default', '--version', '2']);
    expect(current.stderr).toMatch(/conflict: version 2 is the current data key of default/);
    await ok(['keys', 'rotate-data', '--division', 'alpha']);
    const used = await cli(['keys', 'retire-data', '--division', 'alpha', '--version', '1']);
    expect(used.stderr).toMatch(
      /reencryption_in_progress|conflict: 1 artifact\(s\) of alpha are still encrypted with version 1/,
    );
    expect(await ok(['keys', 'retire-data', '--division', 'default', '--version', '1'])).toMatch(
      /default: data key version 1 retired/,
    );
    expect(await ok(['keys', 'list'])).toMatch(/^default\tversions 2\tcurrent v2\tartifacts: 5 under v2$/m);
  });
});
