import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDirectoryKeyStore, kekFingerprint } from '../../src/adapters/keys/directory.js';

/** The key directory's rotation on real files: re-wrap (resumable) and data-key versions. */
describe('key directory rotation', () => {
  let dir: string;
  const kek1 = randomBytes(32);
  const kek2 = randomBytes(32);
  const fileOf = (id: string) => JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8'));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ml-keydir-rotation-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('re-wraps what an interrupted run left, keeps the data keys, skips tombstones and temporary files', async () => {
    const old = createDirectoryKeyStore({ dir, kek: kek1 });
    const a = await old.current('a');
    const b = await old.current('b');
    await old.current('gone');
    await old.destroy('gone');
    const tombstone = readFileSync(join(dir, 'gone.json'), 'utf8');

    // An interrupted run: `a` already re-wrapped (here by a rotation under the new KEK), `b` not,
    // and a temporary file left by a write that never reached its rename.
    const during = createDirectoryKeyStore({ dir, kek: kek2, previousKek: kek1 });
    const a2 = await during.rotate('a');
    expect(fileOf('a').kekId).toBe(kekFingerprint(kek2));
    expect(fileOf('b').kekId).toBe(kekFingerprint(kek1));
    writeFileSync(join(dir, 'b.json.0a1b2c3d.tmp'), '{"half": ');
    // Both open during the change.
    expect((await during.get('b', 1)).key.equals(b.key)).toBe(true);

    const result = await during.rewrap();
    expect(result).toEqual({
      kekId: kekFingerprint(kek2),
      rewrapped: ['b'],
      alreadyCurrent: ['a'],
      tombstones: ['gone'],
    });
    expect(await during.rewrap()).toMatchObject({ rewrapped: [], alreadyCurrent: ['a', 'b'] });
    expect(readFileSync(join(dir, 'gone.json'), 'utf8')).toBe(tombstone);

    // The new KEK alone opens every version, with the same data keys.
    const after = createDirectoryKeyStore({ dir, kek: kek2 });
    await after.check();
    expect((await after.get('a', 1)).key.equals(a.key)).toBe(true);
    expect((await after.get('a', 2)).key.equals(a2.key)).toBe(true);
    expect((await after.get('b', 1)).key.equals(b.key)).toBe(true);
    expect((await after.current('a')).version).toBe(2);
    // The old one alone opens nothing, and says which KEK wraps the files.
    await expect(createDirectoryKeyStore({ dir, kek: kek1 }).check()).rejects.toMatchObject({
      code: 'kek_mismatch',
      message: expect.stringContaining(kekFingerprint(kek2)),
    });
    // A third KEK with the right previous one is no help either: files name the new KEK.
    await expect(
      createDirectoryKeyStore({ dir, kek: randomBytes(32), previousKek: kek1 }).check(),
    ).rejects.toMatchObject({ code: 'kek_mismatch' });
  });

  it('retires an old version only, and an erased division has nothing to rotate', async () => {
    const store = createDirectoryKeyStore({ dir, kek: kek1 });
    await store.current('d');
    await store.rotate('d');
    await expect(store.retire('d', 2)).rejects.toMatchObject({ code: 'key_version_current' });
    await expect(store.retire('d', 7)).rejects.toMatchObject({ code: 'key_missing' });
    await store.retire('d', 1);
    await expect(store.get('d', 1)).rejects.toMatchObject({ code: 'key_missing' });
    expect((await store.current('d')).version).toBe(2);
    expect(fileOf('d').versions.map((v: { version: number }) => v.version)).toEqual([2]);

    await store.destroy('d');
    const before = readFileSync(join(dir, 'd.json'), 'utf8');
    await expect(store.rotate('d')).rejects.toMatchObject({ code: 'key_destroyed' });
    await expect(store.rotate('never')).rejects.toMatchObject({ code: 'key_missing' });
    expect(readFileSync(join(dir, 'd.json'), 'utf8')).toBe(before);
  });
});
