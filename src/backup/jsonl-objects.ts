import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Readable, type Transform } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { ObjectStore } from '../adapters/objects/port.js';
import { ErrorCode } from '../platform/errors.js';
import type { SnapshotPart } from './manifest.js';
import { snapshotError } from './manifest.js';

/** Streams pages of JSON lines into one gzip object; returns the part as the manifest records it. */
export async function putJsonLines(
  store: ObjectStore,
  key: string,
  pages: AsyncIterable<string[]>,
  /** Encrypts the compressed bytes on their way to the store (a division's data key). */
  encrypt?: Transform,
): Promise<SnapshotPart & { rows: number }> {
  let rows = 0;
  async function* lines() {
    for await (const page of pages) {
      rows += page.length;
      yield Buffer.from(page.map((l) => `${l}\n`).join(''), 'utf8');
    }
  }
  const gzip = createGzip();
  const source = Readable.from(lines());
  source.on('error', (err) => gzip.destroy(err));
  source.pipe(gzip);
  let body: Readable = gzip;
  if (encrypt) {
    gzip.on('error', (err) => encrypt.destroy(err));
    body = gzip.pipe(encrypt);
  }
  const stored = await store.put(key, body, {
    contentType: encrypt ? 'application/octet-stream' : 'application/x-ndjson+gzip',
  });
  return { key, sha256: stored.sha256, size: stored.size, rows };
}

/**
 * Reads a part back in pages of lines, hashing the stored bytes on the way; throws
 * `snapshot_corrupt` at the end when they are not what the manifest says. Callers that must not
 * act on unverified data call `verifyPart` first.
 */
export async function* readJsonLines(
  store: ObjectStore,
  part: SnapshotPart,
  pageSize = 500,
  /** Decrypts the stored bytes before they are decompressed (encrypted parts). */
  decrypt?: Transform,
) {
  const { body } = await store.get(part.key);
  const hash = createHash('sha256');
  let size = 0;
  body.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  const gunzip = createGunzip();
  if (decrypt) {
    body.on('error', (err) => decrypt.destroy(err));
    decrypt.on('error', (err) => gunzip.destroy(err));
    body.pipe(decrypt).pipe(gunzip);
  } else {
    body.on('error', (err) => gunzip.destroy(err));
    body.pipe(gunzip);
  }
  let page: string[] = [];
  for await (const line of createInterface({ input: gunzip, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (line === '') continue;
    page.push(line);
    if (page.length >= pageSize) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
  assertPart(part, hash.digest('hex'), size);
}

/** Downloads a part and checks its size and SHA-256 against the manifest. */
export async function verifyPart(store: ObjectStore, part: SnapshotPart): Promise<void> {
  let body: Readable;
  try {
    ({ body } = await store.get(part.key));
  } catch (err) {
    throw snapshotError(ErrorCode.snapshotCorrupt, `part ${part.key} is missing: ${(err as Error).message}`);
  }
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  assertPart(part, hash.digest('hex'), size);
}

function assertPart(part: SnapshotPart, sha256: string, size: number) {
  if (sha256 !== part.sha256 || size !== part.size) {
    throw snapshotError(
      ErrorCode.snapshotCorrupt,
      `part ${part.key} does not match the manifest (sha256 ${sha256}, ${size} bytes; expected ${part.sha256}, ${part.size} bytes)`,
    );
  }
}
