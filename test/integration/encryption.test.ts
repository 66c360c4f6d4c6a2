import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/adapters/objects/port.js';
import { createVectorIndex } from '../../src/adapters/vector/index.js';
import { createApp } from '../../src/app.js';
import { archiveDecryptor, verifyArchive, verifyStoredArchives } from '../../src/audit/archive/verify.js';
import { createSnapshot } from '../../src/backup/backup.js';
import { restoreSnapshot } from '../../src/backup/restore.js';
import { loadConfig } from '../../src/config.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { backends, openTestDatabase } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MARK = 'plaintext-marker-7f3a';

async function readObject(store: ObjectStore, key: string): Promise<Buffer> {
  const { body } = await store.get(key);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Every object in the bucket, with its bytes. */
async function everyObject(store: ObjectStore): Promise<{ key: string; bytes: Buffer }[]> {
  const out: { key: string; bytes: Buffer }[] = [];
  for (const o of await store.list('')) out.push({ key: o.key, bytes: await readObject(store, o.key) });
  return out;
}

describe.each(backends)('envelope encryption on %s', (backend) => {
  let s3: TestS3;
  let ta: TestApp;
  let keyDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    s3 = await startS3();
    keyDir = mkdtempSync(join(tmpdir(), 'ml-keydir-'));
    const kekFile = join(keyDir, '..', `kek-${randomBytes(4).toString('hex')}`);
    writeFileSync(kekFile, randomBytes(32).toString('base64'));
    env = {
      OBJECT_STORE: 's3',
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      KEY_DIR: keyDir,
      KEK_FILE: kekFile,
      // Searches would append reads to the trail; the heads compared below are the writes'.
      ACCESS_AUDIT: 'off',
    };
    ta = await startTestApp(backend, { env });
  });
  afterAll(async () => {
    await ta?.close();
    await s3?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('a wrong or missing key-encryption key stops the start before anything is written', async () => {
    const target = await openTestDatabase(backend, { migrate: false });
    const dataDir = mkdtempSync(join(tmpdir(), 'ml-kek-'));
    const wrongKek = join(dataDir, 'wrong-kek');
    // A key file wrapped by the right KEK, for the wrong one to fail on.
    await ta.app.encryption.seal('artifact', 'default', 'probe', Buffer.from('probe'));
    writeFileSync(wrongKek, randomBytes(32).toString('hex'));
    try {
      for (const [overrides, message] of [
        [
          { KEK_FILE: wrongKek },
          /KEY_DIR .* wrapped by kek-[0-9a-f]+, not by the configured key-encryption key/,
        ],
        [{ KEK_FILE: join(dataDir, 'absent') }, /KEK_FILE: cannot read the key-encryption key/],
      ] as const) {
        const config = loadConfig({ ...env, ...overrides, DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
        await expect(
          createApp(config, { worker: false, database: target.db, embedder: await localEmbedder() }),
        ).rejects.toThrow(message);
      }
      // Not even the migrations ran.
      const ledger = await target.db.query<{ t: string | null }>(
        "SELECT to_regclass('schema_migrations')::text AS t",
      );
      expect(ledger.rows[0].t).toBeNull();
    } finally {
      await target.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('artifacts: the bucket holds only ciphertext; downloads decrypt and verify the plaintext checksum', async () => {
    const bytes = Buffer.from(`${MARK} `.repeat(20_000));
    const posted = await ta.http.inject({
      method: 'POST',
      url: '/v1/artifacts',
      payload: bytes,
      headers: { 'content-type': 'application/octet-stream', 'x-checksum-sha256': sha(bytes) },
    });
    expect(posted.statusCode).toBe(201);
    expect(posted.json()).toMatchObject({ sha256: sha(bytes), size: bytes.length });
    const id = posted.json().id as string;

    const got = await ta.http.inject({ method: 'GET', url: `/v1/artifacts/${id}` });
    expect(got.statusCode).toBe(200);
    expect(got.rawPayload.equals(bytes)).toBe(true);
    expect(got.headers.etag).toBe(`"${sha(bytes)}"`);

    const stored = await everyObject(ta.app.objects);
    const artifact = stored.find((o) => o.key.endsWith(id));
    expect(artifact?.bytes.subarray(0, 5).toString()).toBe('MLENC');
    for (const o of stored) expect(o.bytes.includes(Buffer.from(MARK))).toBe(false);

    // A wrong expected checksum is still refused, and nothing is recorded.
    const wrong = await ta.http.inject({
      method: 'POST',
      url: '/v1/artifacts',
      payload: bytes,
      headers: { 'x-checksum-sha256': sha(Buffer.from('other')) },
    });
    expectProblem(wrong, 400, 'validation_failed', 'X-Checksum-SHA256');
  });

  it('a tampered ciphertext is refused with ciphertext_tampered, before any byte is sent', async () => {
    const bytes = Buffer.from(`${MARK} small file`);
    const posted = await ta.http.inject({ method: 'POST', url: '/v1/artifacts', payload: bytes });
    const id = posted.json().id as string;
    const [{ object_key: key }] = (
      await ta.app.db.query<{ object_key: string }>('SELECT object_key FROM artifacts WHERE id = $1', [id])
    ).rows;
    const cipher = await readObject(ta.app.objects, key);
    const tampered = Buffer.from(cipher);
    tampered[tampered.length - 20] ^= 0x01;
    await ta.app.objects.delete(key);
    await ta.app.objects.put(key, Readable.from([tampered]));
    const got = await ta.http.inject({ method: 'GET', url: `/v1/artifacts/${id}` });
    const problem = expectProblem(got, 500, 'ciphertext_tampered');
    expect(problem.detail).toMatch(/failed authentication/);
    expect(got.body).not.toContain(MARK);
  });

  it('audit archives: encrypted with the division key, verified with it, refused without it or when changed', async () => {
    const result = await ta.app.archiveAudit({ until: new Date(Date.now() + 60_000) });
    const part = result.archives.find((a) => a.divisionId === 'default');
    if (!part) throw new Error('no archive of the default division');
    const bytes = await readObject(ta.app.objects, part.key);
    expect(bytes.subarray(0, 5).toString()).toBe('MLENC');
    const decrypt = archiveDecryptor(ta.app.encryption);
    const verified = await verifyStoredArchives(ta.app.objects, 'default', { decrypt });
    expect(verified.ok, JSON.stringify(verified.broken)).toBe(true);
    const without = await verifyStoredArchives(ta.app.objects, 'default');
    expect(without.ok).toBe(false);
    expect(without.broken[0].reason).toMatch(/encrypted with the data key default v1/);
    const manifest = JSON.parse((await readObject(ta.app.objects, part.manifestKey)).toString('utf8'));
    expect(manifest.encryption).toEqual({ keyId: 'default', keyVersion: 1 });
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 3] ^= 1;
    const r = await verifyArchive(
      tampered,
      { ...manifest, archive: { ...manifest.archive, sha256: sha(tampered) } },
      { decrypt },
    );
    expect(r.ok).toBe(false);
    expect(r.broken.map((b) => b.reason).join(' ')).toMatch(/failed authentication/);
  });

  it('erasure: snapshot, erase, restore the old snapshot with the current keys — nothing of the erased division, the others identical', async () => {
    const { http } = ta;
    for (const id of ['keep', 'gone']) {
      expect((await http.inject({ method: 'POST', url: '/v1/divisions', payload: { id } })).statusCode).toBe(
        201,
      );
      const res = await http.inject({
        method: 'POST',
        url: '/v1/memories/batch?wait=true',
        payload: {
          divisionId: id,
          items: [
            { text: `${MARK} ${id} the quarterly tax filing is due in April` },
            { text: `${MARK} ${id} water the tomato plants in the garden`, sessionId: 's1' },
          ],
        },
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    const goneArtifact = await http.inject({
      method: 'POST',
      url: '/v1/artifacts?divisionId=gone',
      payload: Buffer.from(`${MARK} gone's file`),
    });
    expect(goneArtifact.statusCode).toBe(201);
    await ta.app.worker.drain();
    const search = async (t: TestApp, divisionId: string) => {
      const res = await t.http.inject({
        method: 'POST',
        url: '/v1/search',
        payload: { divisionId, query: 'tax filing', k: 10 },
      });
      return res;
    };
    const head = async (t: TestApp, divisionId: string) => {
      const { seq, hash } = (
        await t.http.inject({ method: 'GET', url: `/v1/audit/head?divisionId=${divisionId}` })
      ).json();
      return { seq, hash };
    };
    const keepHits = (await search(ta, 'keep')).json().hits.map((h: { id: string }) => h.id);
    expect(keepHits.length).toBeGreaterThan(0);
    const keepHead = await head(ta, 'keep');

    const manifest = await createSnapshot({
      db: ta.app.db,
      store: ta.app.objects,
      signer: ta.app.signer,
      encryption: ta.app.encryption,
    });
    expect(manifest.tables.filter((p) => p.name === 'memory_nodes').map((p) => p.keyId)).toEqual(
      expect.arrayContaining(['keep', 'gone']),
    );
    expect(manifest.tables.every((p) => p.keyId !== undefined && p.keyVersion === 1)).toBe(true);
    for (const o of await everyObject(ta.app.objects))
      expect(o.bytes.includes(Buffer.from(MARK))).toBe(false);

    // Under a legal hold: refused, nothing changed.
    const hold = await http.inject({
      method: 'POST',
      url: '/v1/legal-holds',
      payload: { divisionId: 'gone', reason: 'litigation' },
    });
    expect(hold.statusCode, hold.body).toBe(201);
    expectProblem(
      await http.inject({ method: 'DELETE', url: '/v1/divisions/gone?erase=true' }),
      409,
      'legal_hold',
    );
    expect((await search(ta, 'gone')).json().hits.length).toBeGreaterThan(0);
    const released = await http.inject({
      method: 'DELETE',
      url: `/v1/legal-holds/${hold.json().id}?divisionId=gone`,
    });
    expect(released.statusCode, released.body).toBeLessThan(300);

    expectProblem(
      await http.inject({ method: 'DELETE', url: '/v1/divisions/gone' }),
      400,
      'validation_failed',
      'erase',
    );
    const erased = await http.inject({ method: 'DELETE', url: '/v1/divisions/gone?erase=true' });
    expect(erased.statusCode, erased.body).toBe(200);
    expect(erased.json()).toMatchObject({
      divisionId: 'gone',
      destroyed: { memories: 2, artifacts: 1, dataKeyDestroyed: true, dataKeyVersions: [1] },
    });
    const record = await http.inject({ method: 'GET', url: '/v1/divisions/gone/erasure' });
    expect(record.statusCode).toBe(200);
    expect(record.json().signedHead).toMatchObject({ divisionId: 'gone', seq: record.json().auditHead.seq });
    expect(record.json().erasedBy).toBeTruthy();
    expectProblem(await http.inject({ method: 'GET', url: '/v1/divisions/keep/erasure' }), 404, 'not_found');
    expectProblem(
      await http.inject({ method: 'DELETE', url: '/v1/divisions/gone?erase=true' }),
      409,
      'division_erased',
    );
    // Nothing of it is readable live: no hits, no artifact, no new writes.
    expect((await search(ta, 'gone')).json().hits).toEqual([]);
    expect(
      (await http.inject({ method: 'GET', url: `/v1/artifacts/${goneArtifact.json().id}` })).statusCode,
    ).toBe(404);
    const write = await http.inject({
      method: 'POST',
      url: '/v1/memories',
      payload: { divisionId: 'gone', text: 'x' },
    });
    expect(write.statusCode).toBe(409);

    // The old snapshot into a fresh installation, with the current keys.
    const target = {
      t: await openTestDatabase(backend, { migrate: false }),
      dataDir: mkdtempSync(join(tmpdir(), 'ml-restore-')),
    };
    const config = loadConfig({ ...env, DATA_DIR: target.dataDir, LOG_LEVEL: 'silent' });
    const index = await createVectorIndex(config.VECTOR_INDEX, { db: target.t.db, dataDir: target.dataDir });
    // Without the keys: refused, nothing written.
    await expect(
      restoreSnapshot({ db: target.t.db, store: ta.app.objects, index }, manifest.id),
    ).rejects.toMatchObject({
      code: 'key_unavailable',
    });
    const result = await restoreSnapshot(
      { db: target.t.db, store: ta.app.objects, index, encryption: ta.app.encryption },
      manifest.id,
    );
    await index.close();
    expect(result.erasedDivisions).toEqual(['gone']);
    const restored = await startTestApp(backend, { env, existing: target });
    try {
      const gone = await restored.app.db.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM memory_nodes WHERE division_id = 'gone')::int
              + (SELECT count(*) FROM artifacts WHERE division_id = 'gone')::int
              + (SELECT count(*) FROM audit_events WHERE division_id = 'gone')::int AS n`,
      );
      expect(gone.rows[0].n).toBe(0);
      const division = await restored.app.db.query<{ erased: boolean }>(
        "SELECT erased_at IS NOT NULL AS erased FROM divisions WHERE id = 'gone'",
      );
      expect(division.rows[0].erased).toBe(true);
      expect((await search(restored, 'gone')).json().hits ?? []).toEqual([]);
      expect(await head(restored, 'keep')).toEqual(keepHead);
      await restored.app.worker.drain();
      expect((await search(restored, 'keep')).json().hits.map((h: { id: string }) => h.id)).toEqual(keepHits);
    } finally {
      await restored.close();
    }
  }, 300_000);
});
