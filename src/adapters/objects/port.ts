import { createHash, type Hash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';

/**
 * The object-store port: immutable blobs addressed by key. Keys are content- or id-addressed
 * (`artifacts/<division>/<uuid>`, `audit/<division>/<day>/<from>-<to>.jsonl.gz`), so a store never
 * overwrites: writing a key that exists fails. Bodies are streamed both ways; the SHA-256 of every
 * upload is computed while it streams and, when the caller knows it, checked before the object
 * becomes visible.
 */
export interface ObjectStore {
  /** `local` or `s3`, for logs and /readyz. */
  readonly kind: 'local' | 's3';
  /**
   * Stores `body` under `key`. Fails with ObjectExistsError when the key exists,
   * ObjectChecksumMismatchError when `sha256` is given and the body's differs,
   * ObjectTooLargeError past `maxBytes`; in each case nothing is left under the key.
   */
  put(key: string, body: Readable, opts?: PutOptions): Promise<PutResult>;
  /** Streams an object. Fails with ObjectNotFoundError when there is none. */
  get(key: string): Promise<GetResult>;
  /** The object's facts without its body; undefined when there is none. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Removes an object (garbage collection of failed uploads only: stored data is never deleted
   * otherwise). No error when there is none. Retention-locked objects cannot be deleted. With
   * `versionId` (S3 versioned buckets) that version is removed rather than hidden by a marker.
   */
  delete(key: string, versionId?: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Readiness: resolves when the store answers and (local) can be written; throws otherwise. */
  check(): Promise<void>;
  /** What the store can do. `objectLock`: uploads given `lockUntil` are retention-locked (WORM). */
  capabilities(): Promise<ObjectStoreCapabilities>;
}

export interface PutOptions {
  contentType?: string;
  /** The body's expected SHA-256 (hex): verified before the object becomes visible. */
  sha256?: string;
  /** Refuse bodies larger than this (ObjectTooLargeError); nothing is stored. */
  maxBytes?: number;
  /**
   * Retain the object, unchangeable and undeletable, until then (S3 object lock, COMPLIANCE mode)
   * when the store supports it (see `capabilities()`); ignored otherwise.
   */
  lockUntil?: Date;
}

export interface PutResult {
  key: string;
  size: number;
  /** SHA-256 (hex) of the stored bytes. */
  sha256: string;
  /** The store's version of the object (S3 buckets with versioning). */
  versionId?: string;
  /** Whether the object was stored retention-locked. */
  locked: boolean;
}

export interface GetResult {
  body: Readable;
  size: number;
  contentType?: string;
  /** SHA-256 (hex) recorded with the object, when the store knows it. */
  sha256?: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified?: Date;
  contentType?: string;
  sha256?: string;
}

export interface ObjectStoreCapabilities {
  objectLock: boolean;
}

export type ObjectStoreErrorCode = 'exists' | 'not_found' | 'checksum_mismatch' | 'too_large' | 'invalid_key';

/** A failure a caller can act on; anything else from a store is an outage. */
export class ObjectStoreError extends Error {
  constructor(
    readonly code: ObjectStoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ObjectStoreError';
  }
}

export class ObjectExistsError extends ObjectStoreError {
  constructor(readonly key: string) {
    super('exists', `object ${key} already exists; objects are never overwritten`);
    this.name = 'ObjectExistsError';
  }
}

export class ObjectNotFoundError extends ObjectStoreError {
  constructor(readonly key: string) {
    super('not_found', `no object ${key}`);
    this.name = 'ObjectNotFoundError';
  }
}

export class ObjectChecksumMismatchError extends ObjectStoreError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('checksum_mismatch', `the body's SHA-256 is ${actual}, not the expected ${expected}`);
    this.name = 'ObjectChecksumMismatchError';
  }
}

export class ObjectTooLargeError extends ObjectStoreError {
  constructor(readonly maxBytes: number) {
    super('too_large', `the body is larger than ${maxBytes} bytes`);
    this.name = 'ObjectTooLargeError';
  }
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
const KEY_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._=-]*$/;
const MAX_KEY_LENGTH = 1024;

/**
 * Keys are `/`-separated segments of letters, digits, `.`, `_`, `-` and `=` (not starting with a
 * dot): safe as file paths (no `..`, no absolute paths) and as S3 keys.
 */
export function assertValidKey(key: string): void {
  if (
    typeof key !== 'string' ||
    key.length === 0 ||
    key.length > MAX_KEY_LENGTH ||
    !key.split('/').every((s) => KEY_SEGMENT.test(s))
  ) {
    throw new ObjectStoreError('invalid_key', `invalid object key ${JSON.stringify(key)}`);
  }
}

/** A prefix is a key, a key followed by `/`, or empty. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  assertValidKey(trimmed);
}

/**
 * Pass-through that hashes (SHA-256) and counts the bytes going by, failing with
 * ObjectTooLargeError as soon as more than `maxBytes` went through.
 */
export class HashingCounter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      done(new ObjectTooLargeError(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  /** Hex digest; call once, after the stream ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Fails with ObjectChecksumMismatchError when `expected` is given and differs from `actual`. */
export function assertChecksum(expected: string | undefined, actual: string): void {
  if (expected !== undefined && expected.toLowerCase() !== actual) {
    throw new ObjectChecksumMismatchError(expected.toLowerCase(), actual);
  }
}
