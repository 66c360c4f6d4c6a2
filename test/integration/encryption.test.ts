import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/adapters/objects/port.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
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
    };
    ta = await startTestApp(backend, { env });
  });
  afterAll(async () => {
    await ta?.close();
    await s3?.close();
    rmSync(keyDir, { recursive: true, force: true });
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
});
