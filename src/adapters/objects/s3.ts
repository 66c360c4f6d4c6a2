import { createHash } from 'node:crypto';
import { Agent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  assertChecksum,
  assertValidKey,
  assertValidPrefix,
  type GetResult,
  ObjectExistsError,
  type ObjectInfo,
  ObjectNotFoundError,
  type ObjectStore,
  type ObjectStoreCapabilities,
  ObjectTooLargeError,
  type PutOptions,
  type PutResult,
} from './port.js';

export interface S3ObjectStoreOptions {
  bucket: string;
  /** e.g. `http://127.0.0.1:9000` (MinIO); unset for AWS. */
  endpoint?: string;
  region?: string;
  /** `http://host/bucket/key` rather than `http://bucket.host/key` (MinIO and most S3-compatible stores). */
  forcePathStyle?: boolean;
  /** Without them, the SDK's default chain (environment, profile, instance or pod role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Multipart part size in bytes (S3's minimum is 5 MiB; default 8 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 2): memory use is about (this + 1) × partSize per upload. */
  concurrency?: number;
  /** CA certificates (PEM) trusted for an https endpoint instead of the system's. */
  ca?: Buffer;
  /**
   * Server-side encryption asked on every write (PutObject, CreateMultipartUpload): S3-managed keys
   * (`AES256`) or a KMS key (`aws:kms` with `kmsKeyId`). A store that cannot honour it refuses the write.
   */
  sse?: 'AES256' | 'aws:kms';
  kmsKeyId?: string;
  /** An already configured client (tests). */
  client?: S3Client;
}

const MIB = 1024 * 1024;
const MIN_PART = 5 * MIB;
/** S3 allows 10,000 parts per upload. */
const MAX_PARTS = 10_000;
/** How long a "this bucket has no object lock" answer is trusted before asking again. */
const CAPABILITY_TTL_MS = 60_000;

interface S3Failure {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}
const statusOf = (err: unknown) => (err as S3Failure)?.$metadata?.httpStatusCode;
const isNotFound = (err: unknown) =>
  statusOf(err) === 404 || ['NotFound', 'NoSuchKey'].includes((err as S3Failure)?.name ?? '');
/** What S3 answers a conditional write (`If-None-Match: *`) when the key exists, or is being written. */
const isExists = (err: unknown) => statusOf(err) === 412 || statusOf(err) === 409;

const md5Base64 = (b: Buffer) => createHash('md5').update(b).digest('base64');

/**
 * Cuts a stream into parts of exactly `size` bytes (the last one shorter), each copied into a
 * buffer of its own, hashing and counting every byte; fails with ObjectTooLargeError past
 * `maxBytes`. Only the part being filled is held here.
 */
async function* parts(
  body: Readable,
  size: number,
  maxBytes: number,
  state: { hash: ReturnType<typeof createHash>; size: number },
) {
  let part = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const raw of body) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
    state.size += chunk.length;
    if (state.size > maxBytes) throw new ObjectTooLargeError(maxBytes);
    state.hash.update(chunk);
    let offset = 0;
    while (offset < chunk.length) {
      const n = chunk.copy(part, filled, offset);
      filled += n;
      offset += n;
      if (filled === size) {
        yield part;
        part = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0 || state.size === 0) yield part.subarray(0, filled);
}

/**
 * Objects in an S3 bucket through the AWS SDK v3 (AWS S3, MinIO and other S3-compatible stores).
 *
 * Uploads stream in parts: a body that fits in one part is a single PutObject, a larger one a
 * multipart upload. The SHA-256 is computed while streaming and checked against the expected one
 * before the object becomes visible (before PutObject, or before CompleteMultipartUpload, which is
 * aborted on a mismatch), so a wrong body never lands and never gets locked. Every part carries
 * its Content-MD5. Overwrites are refused twice: a HEAD before the upload, and `If-None-Match: *` on
 * the final request for stores that honour it (AWS, MinIO). With `lockUntil` on a bucket with
 * object lock enabled, the object is stored under COMPLIANCE-mode retention until then.
 * SDK checksums are only sent when an operation requires them, which every S3-compatible store
 * understands.
 */
export function createS3ObjectStore(opts: S3ObjectStoreOptions): ObjectStore {
  const bucket = opts.bucket;
  const partSize = Math.max(opts.partSize ?? 8 * MIB, MIN_PART);
  const concurrency = Math.max(1, opts.concurrency ?? 2);
  const client =
    opts.client ??
    new S3Client({
      region: opts.region ?? 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.accessKeyId && opts.secretAccessKey
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK's own agent keeps connections alive with up to 50 sockets; the same, trusting `ca`.
      ...(opts.ca
        ? { requestHandler: { httpsAgent: new Agent({ ca: opts.ca, keepAlive: true, maxSockets: 50 }) } }
        : {}),
    });
  const encryption = opts.sse
    ? {
        ServerSideEncryption: opts.sse,
        ...(opts.sse === 'aws:kms' && opts.kmsKeyId ? { SSEKMSKeyId: opts.kmsKeyId } : {}),
      }
    : {};

  let lockCache: { value: ObjectStoreCapabilities; at: number } | undefined;

  async function capabilities(): Promise<ObjectStoreCapabilities> {
    if (lockCache && (lockCache.value.objectLock || Date.now() - lockCache.at < CAPABILITY_TTL_MS)) {
      return lockCache.value;
    }
    let objectLock: boolean;
    try {
      const res = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
      objectLock = res.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      // The store answered (no configuration, not implemented, not allowed): no lock. A failure
      // to reach it is an outage, not an answer.
      if (statusOf(err) === undefined) throw err;
      objectLock = false;
    }
    lockCache = { value: { objectLock }, at: Date.now() };
    return lockCache.value;
  }

  async function head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return {
        key,
        size: Number(res.ContentLength ?? 0),
        ...(res.LastModified ? { lastModified: res.LastModified } : {}),
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
        ...(res.Metadata?.sha256 ? { sha256: res.Metadata.sha256 } : {}),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async function lockParams(lockUntil: Date | undefined) {
    if (!lockUntil || !(await capabilities()).objectLock) return {};
    return { ObjectLockMode: 'COMPLIANCE' as const, ObjectLockRetainUntilDate: lockUntil };
  }

  return {
    kind: 's3',

    async put(key: string, body: Readable, o: PutOptions = {}): Promise<PutResult> {
      assertValidKey(key);
      if (await head(key)) throw new ObjectExistsError(key);
      const lock = await lockParams(o.lockUntil);
      const locked = 'ObjectLockMode' in lock;
      const expected = o.sha256?.toLowerCase();
      const maxBytes = o.maxBytes ?? Number.POSITIVE_INFINITY;
      const state = { hash: createHash('sha256'), size: 0 };
      const iterator = parts(body, partSize, maxBytes, state)[Symbol.asyncIterator]();

      const first = await iterator.next();
      const firstPart = first.value as Buffer;
      const second = first.done ? first : await iterator.next();
      if (second.done) {
        // One part: the whole body is known before anything is sent.
        const sha256 = state.hash.digest('hex');
        assertChecksum(expected, sha256);
        try {
          const res = await client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: firstPart,
              ContentLength: firstPart.length,
              ContentMD5: md5Base64(firstPart),
              ContentType: o.contentType,
              Metadata: { sha256 },
              IfNoneMatch: '*',
              ...lock,
              ...encryption,
            }),
          );
          return {
            key,
            size: state.size,
            sha256,
            locked,
            ...(res.VersionId ? { versionId: res.VersionId } : {}),
          };
        } catch (err) {
          if (isExists(err)) throw new ObjectExistsError(key);
          throw err;
        }
      }

      const created = await client.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          ContentType: o.contentType,
          // The digest is only known up front when the caller gave it (it is checked before completing).
          ...(expected ? { Metadata: { sha256: expected } } : {}),
          ...lock,
          ...encryption,
        }),
      );
      const uploadId = created.UploadId as string;
      const done: CompletedPart[] = [];
      const inFlight = new Set<Promise<void>>();
      let failure: unknown;
      const send = (part: Buffer, partNumber: number) => {
        if (partNumber > MAX_PARTS) throw new Error(`more than ${MAX_PARTS} parts: raise the part size`);
        const p: Promise<void> = client
          .send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: partNumber,
              Body: part,
              ContentLength: part.length,
              ContentMD5: md5Base64(part),
            }),
          )
          .then(
            (res) => {
              done.push({ PartNumber: partNumber, ETag: res.ETag });
            },
            (err: unknown) => {
              failure ??= err;
            },
          )
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      };
      try {
        let partNumber = 1;
        send(firstPart, partNumber);
        for (let next: IteratorResult<Buffer, void> = second; !next.done; next = await iterator.next()) {
          while (inFlight.size >= concurrency) await Promise.race(inFlight);
          if (failure) throw failure;
          partNumber += 1;
          send(next.value as Buffer, partNumber);
        }
        await Promise.all(inFlight);
        if (failure) throw failure;
        const sha256 = state.hash.digest('hex');
        assertChecksum(expected, sha256);
        done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
        let res: { VersionId?: string };
        try {
          res = await client.send(
            new CompleteMultipartUploadCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              MultipartUpload: { Parts: done },
              IfNoneMatch: '*',
            }),
          );
        } catch (err) {
          if (isExists(err)) throw new ObjectExistsError(key);
          throw err;
        }
        return {
          key,
          size: state.size,
          sha256,
          locked,
          ...(res.VersionId ? { versionId: res.VersionId } : {}),
        };
      } catch (err) {
        await Promise.allSettled(inFlight);
        await iterator.return?.(undefined).catch(() => undefined);
        await client
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
        throw err;
      }
    },

    async get(key: string): Promise<GetResult> {
      assertValidKey(key);
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return {
          body: res.Body as Readable,
          size: Number(res.ContentLength ?? 0),
          ...(res.ContentType ? { contentType: res.ContentType } : {}),
          ...(res.Metadata?.sha256 ? { sha256: res.Metadata.sha256 } : {}),
        };
      } catch (err) {
        if (isNotFound(err)) throw new ObjectNotFoundError(key);
        throw err;
      }
    },

    async head(key: string) {
      assertValidKey(key);
      return head(key);
    },

    async delete(key: string, versionId?: string): Promise<void> {
      assertValidKey(key);
      try {
        await client.send(
          new DeleteObjectCommand({
            Bucket: bucket,
            Key: key,
            ...(versionId ? { VersionId: versionId } : {}),
          }),
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },

    async list(prefix: string): Promise<ObjectInfo[]> {
      assertValidPrefix(prefix);
      const out: ObjectInfo[] = [];
      let token: string | undefined;
      do {
        const res = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of res.Contents ?? []) {
          if (!o.Key) continue;
          out.push({
            key: o.Key,
            size: Number(o.Size ?? 0),
            ...(o.LastModified ? { lastModified: o.LastModified } : {}),
          });
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    /**
     * The bucket answers HeadBucket with these credentials. Nothing is written: on a bucket with
     * default retention every probe object would stay for the retention period.
     */
    async check(): Promise<void> {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) throw new Error(`S3 bucket ${bucket} does not exist`);
        if (status === 403) throw new Error(`S3 bucket ${bucket}: access denied`);
        throw new Error(
          `S3 bucket ${bucket} unreachable: ${(err as Error).message || (err as S3Failure).name}`,
        );
      }
    },

    capabilities,
  };
}
