import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../config.js';
import { createLocalObjectStore } from './local.js';
import { type ObjectStore, ObjectStoreError } from './port.js';
import { createS3ObjectStore } from './s3.js';

export type { ObjectStore } from './port.js';

/** The settings the object store reads (the same names as in src/config.ts). */
export interface ObjectStoreConfig {
  OBJECT_STORE: 'local' | 's3';
  /** The local store lives in `DATA_DIR/objects`. */
  DATA_DIR: string;
  S3_ENDPOINT?: string;
  S3_REGION?: string;
  S3_BUCKET?: string;
  S3_FORCE_PATH_STYLE?: boolean;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  S3_CA_FILE?: string;
  S3_SSE?: 'AES256' | 'aws:kms';
  S3_SSE_KMS_KEY_ID?: string;
}

/** S3_CA_FILE's certificates, read once when the store is built; a ConfigError names the setting. */
function readCa(file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError([
      `S3_CA_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`,
    ]);
  }
}

/** The store the config asks for: `local` (files under DATA_DIR/objects) or `s3`. */
export function createObjectStore(c: ObjectStoreConfig, opts: { bucket?: string } = {}): ObjectStore {
  if (c.OBJECT_STORE === 's3') {
    const bucket = opts.bucket ?? c.S3_BUCKET;
    if (!bucket) throw new Error('OBJECT_STORE=s3 needs S3_BUCKET');
    return createS3ObjectStore({
      bucket,
      endpoint: c.S3_ENDPOINT,
      region: c.S3_REGION,
      forcePathStyle: c.S3_FORCE_PATH_STYLE,
      accessKeyId: c.S3_ACCESS_KEY_ID,
      secretAccessKey: c.S3_SECRET_ACCESS_KEY,
      ca: readCa(c.S3_CA_FILE),
      sse: c.S3_SSE,
      kmsKeyId: c.S3_SSE_KMS_KEY_ID,
    });
  }
  return createLocalObjectStore({ dir: join(c.DATA_DIR, 'objects') });
}

export type ObjectStoreOperation = 'put' | 'get' | 'head' | 'delete' | 'list' | 'check' | 'capabilities';

/**
 * The same store, reporting each operation's duration and outcome (for metrics). Streaming reads
 * are timed until the object is opened, not until its body is consumed. Caller errors (an existing
 * key, a checksum mismatch, a body too large, a missing object) count as `ok`: the store worked.
 */
export function instrumentObjectStore(
  store: ObjectStore,
  observe: (op: ObjectStoreOperation, seconds: number, outcome: 'ok' | 'error') => void,
): ObjectStore {
  const timed = <A extends unknown[], R>(op: ObjectStoreOperation, fn: (...args: A) => Promise<R>) => {
    return async (...args: A): Promise<R> => {
      const start = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
      try {
        const out = await fn(...args);
        observe(op, seconds(), 'ok');
        return out;
      } catch (err) {
        observe(op, seconds(), err instanceof ObjectStoreError ? 'ok' : 'error');
        throw err;
      }
    };
  };
  return {
    kind: store.kind,
    put: timed('put', store.put.bind(store)),
    get: timed('get', store.get.bind(store)),
    head: timed('head', store.head.bind(store)),
    delete: timed('delete', store.delete.bind(store)),
    list: timed('list', store.list.bind(store)),
    check: timed('check', store.check.bind(store)),
    capabilities: timed('capabilities', store.capabilities.bind(store)),
  };
}

/**
 * The object store's part of `/readyz`: `store` is 'ok' or why not; `objectLock` says whether
 * audit archives are retention-locked (a bucket without object lock is not a readiness failure,
 * but the operator should know).
 */
export async function objectStoreReadiness(
  store: ObjectStore,
): Promise<{ store: string; objectLock: 'enabled' | 'unsupported' | 'unknown' }> {
  let status = 'ok';
  try {
    await store.check();
  } catch (err) {
    status = (err as Error).message || 'unavailable';
  }
  let objectLock: 'enabled' | 'unsupported' | 'unknown' = 'unknown';
  if (status === 'ok') {
    try {
      objectLock = (await store.capabilities()).objectLock ? 'enabled' : 'unsupported';
    } catch {
      objectLock = 'unknown';
    }
  }
  return { store: status, objectLock };
}
