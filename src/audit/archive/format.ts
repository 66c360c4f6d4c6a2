import type { JWK } from 'jose';
import { canonicalJson } from '../chain.js';
import type { SignedHead } from '../signer.js';
import type { AuditEvent } from '../types.js';

/**
 * The audit archive format: per division and UTC day, gzip-compressed JSONL (one canonical JSON
 * event per line) next to a manifest, under keys that sort by seq.
 */

/** The archive manifest format; a verifier refuses any other. */
export const ARCHIVE_FORMAT = 'memory-layer-audit-archive/1';
export const ARCHIVE_CONTENT_TYPE = 'application/gzip';

/**
 * What sits next to each archive (`…/<from>-<to>.manifest.json`, canonical JSON): the archive's
 * checksum, the range of events it holds and their chain ends, and the chain head at its last
 * event signed with the server's Ed25519 key.
 */
export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT;
  divisionId: string;
  /** UTC day (YYYY-MM-DD) of the archive's first event. */
  day: string;
  fromSeq: number;
  toSeq: number;
  count: number;
  /** The first event's prevHash: the previous archive's lastHash (the genesis hash for seq 1). */
  firstPrevHash: string;
  /** The last event's hash. */
  lastHash: string;
  archive: {
    key: string;
    /** SHA-256 (hex) of the gzip file. */
    sha256: string;
    size: number;
    contentType: typeof ARCHIVE_CONTENT_TYPE;
  };
  /** The chain head at `toSeq` (`hash` = lastHash), signed. */
  signedHead: SignedHead;
  publicKey: JWK;
  createdAt: string;
  /** Until when the archive and this manifest are retention-locked; null when the store cannot. */
  retainUntil: string | null;
  /**
   * Present when the archive is encrypted (KEY_DIR): the data key that opens it (the division's,
   * or `_installation` for an erased division's remaining trail). `archive.sha256` is then the
   * envelope's; the events inside are checked once it is decrypted.
   */
  encryption?: { keyId: string; keyVersion: number };
}

const SEQ_DIGITS = 12;
const pad = (n: number) => String(n).padStart(SEQ_DIGITS, '0');

/** `audit/<division>/<day>/<from>-<to>.jsonl.gz` (seqs zero-padded so that keys sort by seq). */
export function archiveKey(divisionId: string, day: string, fromSeq: number, toSeq: number): string {
  return `audit/${divisionId}/${day}/${pad(fromSeq)}-${pad(toSeq)}.jsonl.gz`;
}

export const manifestKeyOf = (key: string) => key.replace(/\.jsonl\.gz$/, '.manifest.json');
export const archiveKeyOf = (manifestKey: string) => manifestKey.replace(/\.manifest\.json$/, '.jsonl.gz');

const KEY_PATTERN = /^audit\/([^/]+)\/(\d{4}-\d{2}-\d{2})\/(\d+)-(\d+)\.(jsonl\.gz|manifest\.json)$/;

/** What an archive's or a manifest's key says. */
export type ParsedArchiveKey = Pick<ArchiveManifest, 'divisionId' | 'day' | 'fromSeq' | 'toSeq'> & {
  kind: 'archive' | 'manifest';
};

export function parseArchiveKey(key: string): ParsedArchiveKey | undefined {
  const m = KEY_PATTERN.exec(key);
  if (!m) return undefined;
  return {
    divisionId: m[1],
    day: m[2],
    fromSeq: Number(m[3]),
    toSeq: Number(m[4]),
    kind: m[5] === 'jsonl.gz' ? 'archive' : 'manifest',
  };
}

/** One event per line, canonical JSON (RFC 8785), newline-terminated. */
export const toJsonl = (events: readonly AuditEvent[]) => events.map((e) => `${canonicalJson(e)}\n`).join('');
