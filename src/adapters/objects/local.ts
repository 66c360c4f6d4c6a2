import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertChecksum,
  assertValidKey,
  assertValidPrefix,
  type GetResult,
  HashingCounter,
  ObjectExistsError,
  type ObjectInfo,
  ObjectNotFoundError,
  type ObjectStore,
  ObjectStoreError,
  type PutOptions,
  type PutResult,
} from './port.js';

interface Meta {
  contentType?: string;
  sha256: string;
  size: number;
}

const isErrno = (err: unknown, ...codes: string[]) =>
  codes.includes((err as NodeJS.ErrnoException)?.code ?? '');

/** fsync a file or directory by path (a directory's entry must be durable as well as the file). */
async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Objects as files under `dir` (the embedded default, `DATA_DIR/objects`): `data/<key>` holds the
 * bytes, `meta/<key>.json` the content type and SHA-256, `tmp/` uploads in progress. An upload is
 * written to a temporary file and fsynced, then hard-linked into place: the link fails when the key
 * exists (never an overwrite, even between two processes), and a crash leaves at most a temporary
 * file. Files are made read-only once stored. No object lock: `capabilities().objectLock` is false.
 */
export function createLocalObjectStore(opts: { dir: string }): ObjectStore {
  const dataDir = join(opts.dir, 'data');
  const metaDir = join(opts.dir, 'meta');
  const tmpDir = join(opts.dir, 'tmp');
  const dataPath = (key: string) => join(dataDir, ...key.split('/'));
  const metaPath = (key: string) => `${join(metaDir, ...key.split('/'))}.json`;

  async function readMeta(key: string): Promise<Partial<Meta>> {
    try {
      return JSON.parse(await readFile(metaPath(key), 'utf8')) as Meta;
    } catch {
      return {};
    }
  }

  async function info(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(dataPath(key));
      if (!s.isFile()) return undefined;
      const meta = await readMeta(key);
      return {
        key,
        size: s.size,
        lastModified: s.mtime,
        ...(meta.contentType ? { contentType: meta.contentType } : {}),
        ...(meta.sha256 ? { sha256: meta.sha256 } : {}),
      };
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  async function walk(dir: string, out: string[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return;
      throw err;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path, out);
      else if (e.isFile()) out.push(relative(dataDir, path).split(sep).join('/'));
    }
  }

  return {
    kind: 'local',

    async put(key: string, body: Readable, o: PutOptions = {}): Promise<PutResult> {
      assertValidKey(key);
      const final = dataPath(key);
      if (await info(key)) throw new ObjectExistsError(key);
      await mkdir(tmpDir, { recursive: true });
      const tmp = join(tmpDir, `${randomUUID()}.part`);
      const counter = new HashingCounter(o.maxBytes);
      try {
        await pipeline(body, counter, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
        await fsyncPath(tmp);
        const sha256 = counter.digest();
        assertChecksum(o.sha256, sha256);
        await mkdir(dirname(final), { recursive: true });
        await chmod(tmp, 0o444);
        try {
          await link(tmp, final);
        } catch (err) {
          if (isErrno(err, 'EEXIST')) throw new ObjectExistsError(key);
          if (isErrno(err, 'ENOTDIR', 'EISDIR'))
            throw new ObjectStoreError('invalid_key', `object key ${key} collides with another key's path`);
          throw err;
        }
        await fsyncPath(dirname(final));
        // The data file is the commit point; metadata follows (a crash in between only loses the
        // content type and the recorded checksum, which the database also keeps).
        const meta: Meta = {
          sha256,
          size: counter.size,
          ...(o.contentType ? { contentType: o.contentType } : {}),
        };
        const mp = metaPath(key);
        await mkdir(dirname(mp), { recursive: true });
        const metaTmp = join(tmpDir, `${randomUUID()}.meta`);
        await writeFile(metaTmp, JSON.stringify(meta), { flag: 'wx', mode: 0o600 });
        await fsyncPath(metaTmp);
        await rename(metaTmp, mp);
        await fsyncPath(dirname(mp));
        return { key, size: counter.size, sha256, locked: false };
      } finally {
        await rm(tmp, { force: true });
      }
    },

    async get(key: string): Promise<GetResult> {
      assertValidKey(key);
      const found = await info(key);
      if (!found) throw new ObjectNotFoundError(key);
      return {
        body: createReadStream(dataPath(key)),
        size: found.size,
        ...(found.contentType ? { contentType: found.contentType } : {}),
        ...(found.sha256 ? { sha256: found.sha256 } : {}),
      };
    },

    async head(key: string) {
      assertValidKey(key);
      return info(key);
    },

    async delete(key: string): Promise<void> {
      assertValidKey(key);
      await rm(dataPath(key), { force: true });
      await rm(metaPath(key), { force: true });
    },

    async list(prefix: string): Promise<ObjectInfo[]> {
      assertValidPrefix(prefix);
      // Walk only the deepest directory the prefix names.
      const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
      const keys: string[] = [];
      await walk(dirPart ? dataPath(dirPart) : dataDir, keys);
      const out: ObjectInfo[] = [];
      for (const key of keys.filter((k) => k.startsWith(prefix)).sort()) {
        const found = await info(key);
        if (found) out.push(found);
      }
      return out;
    },

    async check(): Promise<void> {
      await mkdir(tmpDir, { recursive: true });
      await mkdir(dataDir, { recursive: true });
      const probe = join(tmpDir, `${randomUUID()}.probe`);
      try {
        await writeFile(probe, 'ok', { flag: 'wx' });
        await fsyncPath(probe);
      } finally {
        await rm(probe, { force: true });
      }
    },

    async capabilities() {
      return { objectLock: false };
    },
  };
}
