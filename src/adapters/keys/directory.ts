import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type DataKey,
  type DestroyedKey,
  KeyDestroyedError,
  type KeyInfo,
  KeyMissingError,
  type KeyStore,
  KeyStoreError,
  type RewrapResult,
} from './port.js';

/** Key ids: division ids, or `_` followed by the same letters for keys of the installation. */
const KEY_ID = /^_?[a-z0-9][a-z0-9_-]{0,62}$/;
const FILE_FORMAT = 'memory-layer-data-key/1';

interface WrappedVersion {
  version: number;
  /** base64 of nonce (12) ‖ AES-256-GCM(KEK, DEK) (32) ‖ tag (16). */
  wrapped: string;
  createdAt: string;
}

interface KeyFile {
  format: typeof FILE_FORMAT;
  divisionId: string;
  kekId: string;
  versions: WrappedVersion[];
  createdAt: string;
  /** Set by erasure: the wrapped keys are gone, this record stays. */
  destroyedAt?: string;
  destroyedVersions?: number[];
}

/**
 * Reads a key-encryption key: 32 raw bytes, or 64 hex characters, or base64 of 32 bytes (a file
 * from a Secret may end in a newline). Anything else is refused with a message saying why.
 */
export function parseKek(raw: Buffer | string, source: string): Buffer {
  if (typeof raw !== 'string' && raw.length === 32) return Buffer.from(raw);
  const text = raw.toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (key.length === 32) return key;
  }
  throw new KeyStoreError(
    'key_store_invalid',
    `${source} is not a 256-bit key-encryption key (32 raw bytes, 64 hex characters or base64 of 32 bytes)`,
  );
}

/** A KEK's public fingerprint: which KEK wrapped a file, without revealing it. */
export const kekFingerprint = (kek: Buffer) =>
  `kek-${createHash('sha256').update('memory-layer/kek-id').update(kek).digest('hex').slice(0, 16)}`;

const wrapAad = (divisionId: string, version: number) =>
  Buffer.from(`memory-layer/data-key/v1\0${divisionId}\0${version}`, 'utf8');

function wrap(kek: Buffer, divisionId: string, version: number, dek: Buffer): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(wrapAad(divisionId, version));
  const sealed = Buffer.concat([cipher.update(dek), cipher.final()]);
  return Buffer.concat([nonce, sealed, cipher.getAuthTag()]).toString('base64');
}

function unwrap(kek: Buffer, divisionId: string, version: number, wrapped: string): Buffer {
  const bytes = Buffer.from(wrapped, 'base64');
  if (bytes.length !== 12 + 32 + 16) {
    throw new KeyStoreError(
      'key_store_invalid',
      `data key ${divisionId} v${version} is not a wrapped 256-bit key`,
    );
  }
  const decipher = createDecipheriv('aes-256-gcm', kek, bytes.subarray(0, 12));
  decipher.setAAD(wrapAad(divisionId, version));
  decipher.setAuthTag(bytes.subarray(44));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(12, 44)), decipher.final()]);
  } catch {
    throw new KeyStoreError(
      'kek_mismatch',
      `data key ${divisionId} v${version} does not unwrap with this key-encryption key (wrong KEK, or the file was changed)`,
    );
  }
}

/**
 * The key directory: `<dir>/<divisionId>.json` per division, each holding its data key versions
 * wrapped (AES-256-GCM, associated data: division and version) by the KEK. Made to be mounted
 * from a Secret or the Vault CSI driver; files are written atomically (temporary file, rename)
 * with mode 0600. Unwrapped keys are cached in memory for the life of the process.
 *
 * During a KEK rotation `previousKek` (KEK_PREVIOUS_FILE) opens the files not re-wrapped yet, so
 * that every process keeps working while `memory-layer keys rewrap` moves them to `kek`; new
 * files and re-wrapped ones are always wrapped by `kek`.
 */
export function createDirectoryKeyStore(opts: { dir: string; kek: Buffer; previousKek?: Buffer }): KeyStore {
  const { dir, kek } = opts;
  if (kek.length !== 32)
    throw new KeyStoreError('key_store_invalid', 'the key-encryption key must be 32 bytes');
  if (opts.previousKek && opts.previousKek.length !== 32)
    throw new KeyStoreError('key_store_invalid', 'the previous key-encryption key must be 32 bytes');
  const kekId = kekFingerprint(kek);
  const previous =
    opts.previousKek && !opts.previousKek.equals(kek)
      ? { id: kekFingerprint(opts.previousKek), kek: opts.previousKek }
      : undefined;
  /** The KEK that wraps a file's keys: the current one, or the previous one during a rotation. */
  const kekOf = (file: KeyFile) => (previous && file.kekId === previous.id ? previous.kek : kek);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cache = new Map<string, Buffer>();
  /** Creation of a division's first key is serialised in this process. */
  const creating = new Map<string, Promise<DataKey>>();

  const fileOf = (divisionId: string) => {
    if (!KEY_ID.test(divisionId)) {
      throw new KeyStoreError('key_store_invalid', `invalid key id ${JSON.stringify(divisionId)}`);
    }
    return join(dir, `${divisionId}.json`);
  };

  async function read(divisionId: string): Promise<KeyFile | undefined> {
    let text: string;
    try {
      text = await readFile(fileOf(divisionId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return parseFile(divisionId, text);
  }

  function parseFile(divisionId: string, text: string): KeyFile {
    let file: KeyFile;
    try {
      file = JSON.parse(text) as KeyFile;
    } catch {
      throw new KeyStoreError('key_store_invalid', `key file of ${divisionId} is not JSON`);
    }
    if (file.format !== FILE_FORMAT || file.divisionId !== divisionId || !Array.isArray(file.versions)) {
      throw new KeyStoreError(
        'key_store_invalid',
        `key file of ${divisionId} is not a ${FILE_FORMAT} file for it`,
      );
    }
    if (file.destroyedAt === undefined && file.kekId !== kekId && file.kekId !== previous?.id) {
      throw new KeyStoreError(
        'kek_mismatch',
        `the data keys of ${divisionId} are wrapped by ${file.kekId}, not by the configured key-encryption key ${kekId}${previous ? ` nor by the previous one ${previous.id}` : ' (during a KEK rotation set KEK_PREVIOUS_FILE to the old KEK)'}`,
      );
    }
    return file;
  }

  /** Writes a key file; a directory that cannot be written (a read-only mount) is named as such. */
  async function write(file: KeyFile, exclusive: boolean): Promise<void> {
    try {
      await writeFile(file, exclusive);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw err;
      throw new KeyStoreError(
        'key_store_invalid',
        `cannot write the key file of ${file.divisionId} in KEY_DIR (${code ?? (err as Error).message}): new division keys and erasures need a writable key directory shared by every process`,
      );
    }
  }

  async function writeFile(file: KeyFile, exclusive: boolean): Promise<void> {
    const target = fileOf(file.divisionId);
    const body = `${JSON.stringify(file, null, 2)}\n`;
    if (exclusive) {
      // wx: two processes creating the same division's first key — one wins, the other reads it.
      const handle = await open(target, 'wx', 0o600);
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return;
    }
    const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  }

  function keyOf(file: KeyFile, version: number): DataKey {
    if (file.destroyedAt !== undefined) throw new KeyDestroyedError(file.divisionId, file.destroyedAt);
    const cacheKey = `${file.divisionId}\x00${version}`;
    let key = cache.get(cacheKey);
    if (!key) {
      const v = file.versions.find((x) => x.version === version);
      if (!v) throw new KeyMissingError(file.divisionId, version);
      key = unwrap(kekOf(file), file.divisionId, version, v.wrapped);
      cache.set(cacheKey, key);
    }
    return { divisionId: file.divisionId, version, key };
  }

  async function create(divisionId: string): Promise<DataKey> {
    const now = new Date().toISOString();
    const dek = randomBytes(32);
    const file: KeyFile = {
      format: FILE_FORMAT,
      divisionId,
      kekId,
      versions: [{ version: 1, wrapped: wrap(kek, divisionId, 1, dek), createdAt: now }],
      createdAt: now,
    };
    try {
      await write(file, true);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const existing = await read(divisionId);
      if (!existing) throw err;
      return keyOf(existing, Math.max(...existing.versions.map((v) => v.version)));
    }
    cache.set(`${divisionId}\x001`, dek);
    return { divisionId, version: 1, key: dek };
  }

  /** The ids of the key files in the directory, in order. */
  const keyIds = () =>
    readdirSync(dir)
      .sort()
      .map((name) => /^(.+)\.json$/.exec(name)?.[1])
      .filter((id): id is string => id !== undefined && KEY_ID.test(id));

  /** A division's live key file, or why there is none to change. */
  async function live(divisionId: string): Promise<KeyFile> {
    const file = await read(divisionId);
    if (!file) throw new KeyMissingError(divisionId);
    if (file.destroyedAt !== undefined) throw new KeyDestroyedError(divisionId, file.destroyedAt);
    return file;
  }

  return {
    kind: 'directory',
    kekId,

    async current(divisionId) {
      const file = await read(divisionId);
      if (file) {
        if (file.destroyedAt === undefined && file.versions.length === 0)
          throw new KeyMissingError(divisionId);
        return keyOf(file, Math.max(0, ...file.versions.map((v) => v.version)));
      }
      let pending = creating.get(divisionId);
      if (!pending) {
        pending = create(divisionId).finally(() => creating.delete(divisionId));
        creating.set(divisionId, pending);
      }
      return pending;
    },

    async get(divisionId, version) {
      const file = await read(divisionId);
      if (!file) throw new KeyMissingError(divisionId, version);
      return keyOf(file, version);
    },

    async destroy(divisionId) {
      const file = await read(divisionId);
      const now = new Date().toISOString();
      for (const k of [...cache.keys()]) if (k.startsWith(`${divisionId}\x00`)) cache.delete(k);
      if (!file) {
        // Never had a key (nothing was encrypted for it): a tombstone all the same, so that
        // later reads say "erased" and a restore cannot bring a key back.
        await write(
          {
            format: FILE_FORMAT,
            divisionId,
            kekId,
            versions: [],
            createdAt: now,
            destroyedAt: now,
            destroyedVersions: [],
          },
          false,
        );
        return { divisionId, versions: [], destroyedAt: now, destroyed: false };
      }
      if (file.destroyedAt !== undefined) {
        return {
          divisionId,
          versions: file.destroyedVersions ?? [],
          destroyedAt: file.destroyedAt,
          destroyed: false,
        };
      }
      const versions = file.versions.map((v) => v.version);
      await write({ ...file, versions: [], destroyedAt: now, destroyedVersions: versions }, false);
      return { divisionId, versions, destroyedAt: now, destroyed: true } satisfies DestroyedKey;
    },

    async list() {
      const out: KeyInfo[] = [];
      for (const name of readdirSync(dir).sort()) {
        const m = /^(.+)\.json$/.exec(name);
        if (!m || !KEY_ID.test(m[1])) continue;
        const file = await read(m[1]);
        if (!file) continue;
        out.push({
          divisionId: file.divisionId,
          versions: file.destroyedVersions ?? file.versions.map((v) => v.version),
          createdAt: file.createdAt,
          ...(file.destroyedAt ? { destroyedAt: file.destroyedAt } : {}),
        });
      }
      return out;
    },

    async check() {
      for (const id of keyIds()) {
        const file = parseFile(id, readFileSync(join(dir, `${id}.json`), 'utf8'));
        for (const v of file.destroyedAt === undefined ? file.versions : []) keyOf(file, v.version);
      }
    },

    async rotate(divisionId) {
      const file = await live(divisionId);
      // Every existing version must unwrap before another is added next to them.
      for (const v of file.versions) keyOf(file, v.version);
      const version = Math.max(0, ...file.versions.map((v) => v.version)) + 1;
      const dek = randomBytes(32);
      // Re-wrapped with the current KEK as a whole: a file holds versions of one KEK only.
      const versions = file.versions.map((v) => ({
        ...v,
        wrapped: wrap(kek, divisionId, v.version, keyOf(file, v.version).key),
      }));
      versions.push({
        version,
        wrapped: wrap(kek, divisionId, version, dek),
        createdAt: new Date().toISOString(),
      });
      await write({ ...file, kekId, versions }, false);
      cache.set(`${divisionId}\x00${version}`, dek);
      return { divisionId, version, key: dek };
    },

    async retire(divisionId, version) {
      const file = await live(divisionId);
      const current = Math.max(0, ...file.versions.map((v) => v.version));
      if (!file.versions.some((v) => v.version === version)) throw new KeyMissingError(divisionId, version);
      if (version === current) {
        throw new KeyStoreError(
          'key_version_current',
          `version ${version} is the current data key of ${divisionId}: rotate before retiring it`,
        );
      }
      await write({ ...file, versions: file.versions.filter((v) => v.version !== version) }, false);
      cache.delete(`${divisionId}\x00${version}`);
    },

    async rewrap() {
      const result: RewrapResult = { kekId, rewrapped: [], alreadyCurrent: [], tombstones: [] };
      for (const id of keyIds()) {
        const file = await read(id);
        if (!file) continue;
        if (file.destroyedAt !== undefined) {
          result.tombstones.push(id);
          continue;
        }
        if (file.kekId === kekId) {
          result.alreadyCurrent.push(id);
          continue;
        }
        // Unwrapped with the previous KEK (authenticated), wrapped again with the current one;
        // the file is replaced by rename, so an interruption leaves it wholly old or wholly new.
        const versions = file.versions.map((v) => ({
          ...v,
          wrapped: wrap(kek, id, v.version, keyOf(file, v.version).key),
        }));
        await write({ ...file, kekId, versions }, false);
        result.rewrapped.push(id);
      }
      // The proof: every live file opens with the current KEK alone.
      const alone = createDirectoryKeyStore({ dir, kek });
      await alone.check();
      return result;
    },
  };
}
