import { buffer } from 'node:stream/consumers';
import type { ObjectStore } from '../../adapters/objects/port.js';
import {
  ARCHIVE_FORMAT,
  type ArchiveManifest,
  archiveKeyOf,
  type ParsedArchiveKey,
  parseArchiveKey,
} from './format.js';

/** Reading archives back from the object store (the writer continues from them; verifiers check them). */

/** An object's bytes. */
export async function readObject(store: ObjectStore, key: string): Promise<Buffer> {
  return buffer((await store.get(key)).body);
}

/** Reads and parses a stored manifest. */
export async function readManifest(store: ObjectStore, key: string): Promise<ArchiveManifest> {
  const text = (await readObject(store, key)).toString('utf8');
  const manifest = JSON.parse(text) as ArchiveManifest;
  if (manifest?.format !== ARCHIVE_FORMAT) throw new Error(`${key}: not a ${ARCHIVE_FORMAT} manifest`);
  return manifest;
}

export type StoredArchive = ParsedArchiveKey & { key: string };

/**
 * The division's archives in the store, in seq order: complete ones (with a manifest) and orphans
 * (an interrupted run stored the archive but not its manifest).
 */
export async function storedArchives(
  store: ObjectStore,
  divisionId: string,
): Promise<{ complete: StoredArchive[]; orphans: StoredArchive[] }> {
  const parsed: StoredArchive[] = [];
  for (const o of await store.list(`audit/${divisionId}/`)) {
    const p = parseArchiveKey(o.key);
    if (p?.divisionId === divisionId) parsed.push({ key: o.key, ...p });
  }
  const manifests = new Set(parsed.filter((p) => p.kind === 'manifest').map((p) => archiveKeyOf(p.key)));
  const archives = parsed.filter((p) => p.kind === 'archive').sort((a, b) => a.fromSeq - b.fromSeq);
  return {
    complete: archives.filter((a) => manifests.has(a.key)),
    orphans: archives.filter((a) => !manifests.has(a.key)),
  };
}
