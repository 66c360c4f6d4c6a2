import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createDirectoryKeyStore, kekFingerprint } from '../../src/adapters/keys/directory.js';
import { createKeyStore } from '../../src/adapters/keys/index.js';
import { KeyDestroyedError, KeyStoreError } from '../../src/adapters/keys/port.js';
import { loadConfig } from '../../src/config.js';
import { createEncryption } from '../../src/encryption/encryption.js';
import { SEGMENT } from '../../src/encryption/envelope.js';
import { AppError } from '../../src/platform/errors.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ml-keys-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const collect = async (s: AsyncIterable<unknown>) => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

describe('key directory', () => {
  it('creates one wrapped key per division, returns the same key after a restart, never writes it unwrapped', async () => {
    const dir = tempDir();
    const kek = randomBytes(32);
    const store = createDirectoryKeyStore({ dir, kek });
    const a = await store.current('alpha');
    const b = await store.current('beta');
    expect(a.key.length).toBe(32);
    expect(a.key.equals(b.key)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['alpha.json', 'beta.json']);
    const file = readFileSync(join(dir, 'alpha.json'));
    expect(file.includes(a.key)).toBe(false);
    expect(file.toString('utf8')).not.toContain(a.key.toString('base64'));
    expect(file.toString('utf8')).toContain(kekFingerprint(kek));

    const again = createDirectoryKeyStore({ dir, kek });
    await again.check();
    expect((await again.get('alpha', 1)).key.equals(a.key)).toBe(true);
    expect((await again.list()).map((k) => k.divisionId)).toEqual(['alpha', 'beta']);
  });

  it('a wrong KEK fails the check with kek_mismatch; a missing or malformed one is named; nothing changes', async () => {
    const dir = tempDir();
    await createDirectoryKeyStore({ dir, kek: randomBytes(32) }).current('alpha');
    const before = readFileSync(join(dir, 'alpha.json'), 'utf8');
    const kekFile = join(tempDir(), 'kek');
    writeFileSync(kekFile, `${randomBytes(32).toString('hex')}\n`);
    const wrong = createKeyStore(loadConfig({ KEY_DIR: dir, KEK_FILE: kekFile }));
    await expect(wrong).rejects.toMatchObject({ code: 'kek_mismatch' });
    await expect(wrong).rejects.toThrow(/KEY_DIR .*key-encryption key/);
    await expect(createKeyStore(loadConfig({ KEY_DIR: dir }))).rejects.toThrow(/KEK_FILE/);
    await expect(createKeyStore(loadConfig({ KEY_DIR: dir, KEK_FILE: join(dir, 'absent') }))).rejects.toThrow(
      /KEK_FILE: cannot read/,
    );
    writeFileSync(kekFile, 'too short');
    await expect(createKeyStore(loadConfig({ KEY_DIR: dir, KEK_FILE: kekFile }))).rejects.toThrow(
      /KEK_FILE is not a 256-bit/,
    );
    expect(readFileSync(join(dir, 'alpha.json'), 'utf8')).toBe(before);
    expect(readdirSync(dir)).toEqual(['alpha.json']);
    expect(() => loadConfig({ KEK_FILE: kekFile })).toThrow(/KEY_DIR: required with KEK_FILE/);
  });

  // Root writes into a read-only directory anyway: the refusal can only be shown as another user.
  it.skipIf(process.getuid?.() === 0)(
    'a key directory that cannot be written is named in the error (read-only mounts hold pre-provisioned keys only)',
    async () => {
      const dir = tempDir();
      const kek = randomBytes(32);
      await createDirectoryKeyStore({ dir, kek }).current('alpha');
      chmodSync(dir, 0o500);
      try {
        const store = createDirectoryKeyStore({ dir, kek });
        expect((await store.current('alpha')).version).toBe(1);
        await expect(store.current('beta')).rejects.toThrow(/cannot write the key file of beta in KEY_DIR/);
      } finally {
        chmodSync(dir, 0o700);
      }
    },
  );

  it('destroying a key leaves a tombstone: reads say erased, the key cannot come back', async () => {
    const dir = tempDir();
    const store = createDirectoryKeyStore({ dir, kek: randomBytes(32) });
    const key = await store.current('alpha');
    const gone = await store.destroy('alpha');
    expect(gone).toMatchObject({ divisionId: 'alpha', versions: [1], destroyed: true });
    expect(readFileSync(join(dir, 'alpha.json'), 'utf8')).not.toContain('wrapped');
    await expect(store.get('alpha', 1)).rejects.toBeInstanceOf(KeyDestroyedError);
    await expect(store.current('alpha')).rejects.toBeInstanceOf(KeyDestroyedError);
    expect((await store.destroy('alpha')).destroyed).toBe(false);
    expect((await store.list())[0].destroyedAt).toBe(gone.destroyedAt);
    expect(key.key.length).toBe(32);
    await expect(store.current('../x')).rejects.toBeInstanceOf(KeyStoreError);
  });
});

describe('envelope encryption', () => {
  const setup = () => {
    const store = createDirectoryKeyStore({ dir: tempDir(), kek: randomBytes(32) });
    return { store, enc: createEncryption(store) };
  };

  it('round-trips streams of every size around the segment boundary; the ciphertext never holds the plaintext', async () => {
    const { enc } = setup();
    for (const size of [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17]) {
      const plain = Buffer.alloc(size, 'secret text ');
      const e = await enc.encryptor('artifact', 'alpha', `obj-${size}`);
      if (!e) throw new Error('encryption is on');
      const cipher = await collect(Readable.from([plain]).pipe(e.stream));
      if (size > 0) expect(cipher.includes(Buffer.from('secret text'))).toBe(false);
      const back = await collect(
        Readable.from([cipher]).pipe(enc.decryptor('artifact', 'alpha', `obj-${size}`)),
      );
      expect(back.equals(plain)).toBe(true);
    }
  });

  it('refuses a changed byte, a truncation, another object id or another division with a stable code', async () => {
    const { enc } = setup();
    const plain = Buffer.alloc(2 * SEGMENT + 5, 'x');
    const sealed = await enc.seal('snapshot-part', 'alpha', 'p1', plain);
    if (!sealed) throw new Error('encryption is on');
    expect((await enc.open('snapshot-part', 'alpha', 'p1', sealed.bytes)).equals(plain)).toBe(true);

    const flipped = Buffer.from(sealed.bytes);
    flipped[flipped.length - 40] ^= 1;
    const cut = sealed.bytes.subarray(0, SEGMENT + 40);
    for (const [bytes, id, division] of [
      [flipped, 'p1', 'alpha'],
      [cut, 'p1', 'alpha'],
      [sealed.bytes, 'p2', 'alpha'],
    ] as const) {
      const err = await enc.open('snapshot-part', division, id, bytes).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('ciphertext_tampered');
    }
    await expect(enc.open('snapshot-part', 'beta', 'p1', sealed.bytes)).rejects.toMatchObject({
      code: 'ciphertext_tampered',
    });
    await expect(enc.open('artifact', 'alpha', 'p1', Buffer.from('plain text'))).rejects.toMatchObject({
      code: 'ciphertext_tampered',
    });
    // A tampered stream fails too, with the same code.
    const err = await collect(
      Readable.from([flipped]).pipe(enc.decryptor('snapshot-part', 'alpha', 'p1')),
    ).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('ciphertext_tampered');
  });

  it('after the key is destroyed, what it encrypted reads as erased', async () => {
    const { store, enc } = setup();
    const sealed = await enc.seal('audit-archive', 'alpha', 'a1', Buffer.from('payload'));
    await store.destroy('alpha');
    expect(await enc.erased('alpha')).toBe(true);
    expect(await enc.erased('beta')).toBe(false);
    await expect(
      enc.open('audit-archive', 'alpha', 'a1', sealed?.bytes ?? Buffer.alloc(0)),
    ).rejects.toMatchObject({
      code: 'division_erased',
    });
  });
});
