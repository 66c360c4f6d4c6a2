import { readFile } from 'node:fs/promises';
import type { JWK } from 'jose';
import { ARCHIVE_FORMAT, type ArchiveManifest } from '../audit/archive/format.js';
import { type DecryptArchive, verifyArchive } from '../audit/archive/verify.js';
import { BUNDLE_FORMAT } from '../audit/bundle.js';
import { describeBroken } from '../audit/offline-checks.js';

export type AuditFileKind = 'bundle' | 'archive' | 'archive-manifest' | 'unknown';

/**
 * What a file given to `audit verify` is: a gzip file (magic bytes 1f 8b) is an audit archive;
 * JSON is told apart by its `format` (a proof bundle or an archive manifest).
 */
export function detectAuditFile(bytes: Uint8Array): AuditFileKind {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return 'archive';
  // An encrypted archive (KEY_DIR): the envelope's magic.
  if (Buffer.from(bytes.subarray(0, 5)).toString('latin1') === 'MLENC') return 'archive';
  try {
    const format = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { format?: unknown })?.format;
    if (format === BUNDLE_FORMAT) return 'bundle';
    if (format === ARCHIVE_FORMAT) return 'archive-manifest';
  } catch {
    return 'unknown';
  }
  return 'unknown';
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a JSON file (${(err as Error).message})`);
  }
}

/**
 * `memory-layer audit verify ARCHIVE.jsonl.gz|ARCHIVE.manifest.json [--manifest M] [--previous P]
 * [--key trusted.jwk.json]`: checks an audit archive offline against its manifest (by default the
 * `.manifest.json` next to the `.jsonl.gz`, and the other way round), and — given the previous
 * archive's manifest — that it continues it. Prints each check; throws naming the first broken
 * link when one fails.
 */
export async function runArchiveVerify(
  file: string,
  opts: { manifest?: string; previous?: string; trustedKeys?: JWK[]; decrypt?: DecryptArchive } = {},
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<void> {
  const bytes = await readFile(file);
  const kind = detectAuditFile(bytes);
  let archiveFile: string;
  let manifestFile: string;
  if (kind === 'archive') {
    archiveFile = file;
    manifestFile = opts.manifest ?? file.replace(/\.jsonl\.gz$/, '.manifest.json');
    if (manifestFile === file) throw new Error(`${file}: name the manifest with --manifest`);
  } else if (kind === 'archive-manifest') {
    manifestFile = file;
    archiveFile = file.replace(/\.manifest\.json$/, '.jsonl.gz');
    if (archiveFile === file)
      throw new Error(`${file}: the archive must be named like the manifest, .jsonl.gz`);
  } else {
    throw new Error(`${file}: neither an audit archive (.jsonl.gz) nor its manifest`);
  }
  const manifest = await readJson(manifestFile);
  const archive = archiveFile === file ? bytes : await readFile(archiveFile);
  const previous = opts.previous ? ((await readJson(opts.previous)) as ArchiveManifest) : undefined;
  if (previous && previous.format !== ARCHIVE_FORMAT)
    throw new Error(`${opts.previous}: not an archive manifest`);
  const result = await verifyArchive(archive, manifest, {
    trustedKeys: opts.trustedKeys,
    previous,
    decrypt: opts.decrypt,
  });
  for (const line of result.checks) out(line);
  if (!result.ok && result.firstBroken) {
    throw new Error(`verification failed: ${describeBroken(result.firstBroken)}`);
  }
  out(`${archiveFile}: verified`);
}
