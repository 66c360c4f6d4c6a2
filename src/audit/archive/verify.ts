import { gunzipSync } from 'node:zlib';
import type { JWK } from 'jose';
import type { ObjectStore } from '../../adapters/objects/port.js';
import type { Encryption } from '../../encryption/encryption.js';
import { type ChainHead, GENESIS_HASH, sha256Hex, verifyChain } from '../chain.js';
import {
  type BrokenLink,
  type CheckList,
  checkSignature,
  checkSigningKey,
  createCheckList,
  eventLabel,
  eventProblem,
  firstMalformed,
  isHash,
  isObject,
  isSeq,
} from '../offline-checks.js';
import type { AuditEvent } from '../types.js';
import { ARCHIVE_FORMAT, type ArchiveManifest, manifestKeyOf } from './format.js';
import { readManifest, readObject, storedArchives } from './stored.js';

export interface ArchiveVerification {
  ok: boolean;
  /** One line per check, in order: `ok: …`, `warn: …` or `FAIL: …`. */
  checks: string[];
  /** The first check that failed. */
  firstBroken?: BrokenLink;
  /** Every check that failed. */
  broken: BrokenLink[];
  /** The archive's events, when it could be read. */
  events?: AuditEvent[];
}

/** Decrypts an archive's bytes for verification (throws with a clear message when it cannot). */
export type DecryptArchive = (archive: Uint8Array, manifest: ArchiveManifest) => Promise<Uint8Array>;

/** A DecryptArchive from the service's encryption. */
export const archiveDecryptor =
  (encryption: Pick<Encryption, 'open'>): DecryptArchive =>
  async (archive, m) =>
    encryption.open(
      'audit-archive',
      m.encryption?.keyId ?? m.divisionId,
      m.archive.key,
      Buffer.from(archive),
    );

/**
 * Verifies an audit archive offline (no database): the archive's SHA-256 and size are the
 * manifest's; every line is an event of the division; seqs run fromSeq…toSeq without gaps; each
 * event links to the previous one (the first to `firstPrevHash`: the genesis hash for seq 1, and
 * given `previous` — the previous archive's manifest — its `lastHash`) and is hashed over its
 * content; the last is `lastHash`; the signed head signs exactly that and verifies with the
 * manifest's key, which — given `trustedKeys` — must be one of them. Every check runs;
 * `firstBroken` names the first that failed.
 */
export async function verifyArchive(
  archive: Uint8Array,
  manifest: unknown,
  opts: {
    trustedKeys?: JWK[];
    previous?: Pick<ArchiveManifest, 'toSeq' | 'lastHash'>;
    /** Opens an encrypted archive (the manifest's `encryption` names the key). */
    decrypt?: DecryptArchive;
  } = {},
): Promise<ArchiveVerification> {
  const list = createCheckList();
  const { ok, fail } = list;
  let events: AuditEvent[] | undefined;
  const result = (): ArchiveVerification => ({ ...list.verdict(), ...(events ? { events } : {}) });

  if (!isObject(manifest) || manifest.format !== ARCHIVE_FORMAT) {
    fail({ what: 'manifest', reason: `not a ${ARCHIVE_FORMAT} manifest` });
    return result();
  }
  const missing = firstMalformed([
    ['divisionId', typeof manifest.divisionId === 'string'],
    ['fromSeq', isSeq(manifest.fromSeq) && (manifest.fromSeq as number) >= 1],
    ['toSeq', isSeq(manifest.toSeq) && (manifest.toSeq as number) >= (manifest.fromSeq as number)],
    ['count', isSeq(manifest.count)],
    ['firstPrevHash', isHash(manifest.firstPrevHash)],
    ['lastHash', isHash(manifest.lastHash)],
    [
      'archive',
      isObject(manifest.archive) && isHash(manifest.archive.sha256) && isSeq(manifest.archive.size),
    ],
    ['signedHead', isObject(manifest.signedHead)],
    ['publicKey', isObject(manifest.publicKey)],
  ]);
  if (missing) {
    fail({ what: 'manifest', reason: `${missing} is missing or malformed` });
    return result();
  }
  const m = manifest as unknown as ArchiveManifest;
  ok(`format ${ARCHIVE_FORMAT}, division ${m.divisionId}, seq ${m.fromSeq} to ${m.toSeq}`);

  // The file is the one the manifest describes.
  const actual = sha256Hex(archive);
  if (actual !== m.archive.sha256) {
    fail({ what: 'archive', reason: `SHA-256 is ${actual}, the manifest says ${m.archive.sha256}` });
  } else if (archive.length !== m.archive.size) {
    fail({ what: 'archive', reason: `${archive.length} bytes, the manifest says ${m.archive.size}` });
  } else {
    ok(`archive SHA-256 ${actual} and size ${archive.length} match the manifest`);
  }

  let plain: Uint8Array = archive;
  if (m.encryption) {
    if (!opts.decrypt) {
      fail({
        what: 'archive',
        reason: `encrypted with the data key ${m.encryption.keyId} v${m.encryption.keyVersion}: verify it with KEY_DIR and KEK_FILE set`,
      });
      return result();
    }
    try {
      plain = await opts.decrypt(archive, m);
      ok(
        `archive decrypted with data key ${m.encryption.keyId} v${m.encryption.keyVersion} (every segment authenticated)`,
      );
    } catch (err) {
      fail({ what: 'archive', reason: (err as Error).message });
      return result();
    }
  }
  events = readEvents(list, plain, m.divisionId);
  if (!events) return result();
  checkChain(list, events, m);
  checkContinuity(list, m, opts.previous);

  // The signed head.
  await checkSignature(list, m.signedHead, m.publicKey);
  if (
    m.signedHead?.divisionId !== m.divisionId ||
    m.signedHead.seq !== m.toSeq ||
    m.signedHead.hash !== m.lastHash
  ) {
    fail({
      what: 'signed head',
      seq: m.signedHead?.seq,
      reason: `signs division ${String(m.signedHead?.divisionId)} seq ${String(m.signedHead?.seq)}, not the archive's last event`,
    });
  } else {
    ok(`signed head is the archive's last event (seq ${m.toSeq})`);
  }
  await checkSigningKey(list, m.publicKey, opts.trustedKeys);
  return result();
}

/** The archive's events, each one of the division; undefined (and a failure) when a line is not. */
function readEvents(list: CheckList, archive: Uint8Array, divisionId: string): AuditEvent[] | undefined {
  let text: string;
  try {
    text = gunzipSync(archive).toString('utf8');
  } catch (err) {
    list.fail({ what: 'archive', reason: `not a gzip file (${(err as Error).message})` });
    return undefined;
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const events: AuditEvent[] = [];
  for (const [index, line] of lines.entries()) {
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      list.fail({ what: `line ${index + 1}`, index, reason: 'not JSON' });
      return undefined;
    }
    const problem = eventProblem(e, divisionId);
    if (problem !== undefined) {
      list.fail({ what: eventLabel(e, `line ${index + 1}`), index, reason: problem });
      return undefined;
    }
    events.push(e as AuditEvent);
  }
  return events;
}

/** The chain inside the archive, from the manifest's firstPrevHash to its lastHash. */
function checkChain(list: CheckList, events: AuditEvent[], m: ArchiveManifest) {
  const chain = verifyChain(events, {
    start: { seq: m.fromSeq - 1, hash: m.firstPrevHash },
    startName: "the manifest's firstPrevHash",
  });
  if (!chain.ok) {
    list.fail({
      what: `audit event seq ${chain.seq}`,
      index: chain.index,
      seq: chain.seq,
      reason: chain.reason,
    });
  } else if (events.length !== m.count || events.length !== m.toSeq - m.fromSeq + 1) {
    list.fail({
      what: 'archive',
      reason: `holds ${events.length} events; the manifest says ${m.count}, seq ${m.fromSeq} to ${m.toSeq}`,
    });
  } else if (events.at(-1)?.hash !== m.lastHash) {
    list.fail({ what: 'manifest', seq: m.toSeq, reason: `lastHash is not the hash of seq ${m.toSeq}` });
  } else {
    list.ok(`audit chain: ${events.length} events, seq ${m.fromSeq} to ${m.toSeq}, every link intact`);
  }
}

/** The archive continues the chain: from the genesis hash, or from the previous archive's end. */
function checkContinuity(
  list: CheckList,
  m: ArchiveManifest,
  previous: Pick<ArchiveManifest, 'toSeq' | 'lastHash'> | undefined,
) {
  if (m.fromSeq === 1) {
    if (m.firstPrevHash === GENESIS_HASH) list.ok('starts the chain (seq 1 links to the genesis hash)');
    else list.fail({ what: 'audit event seq 1', seq: 1, reason: 'prevHash is not the genesis hash' });
  } else if (previous) {
    if (previous.toSeq + 1 !== m.fromSeq) {
      list.fail({
        what: 'continuity',
        reason: `the previous archive ends at seq ${previous.toSeq}, this one starts at seq ${m.fromSeq}`,
      });
    } else if (previous.lastHash !== m.firstPrevHash) {
      list.fail({
        what: `audit event seq ${m.fromSeq}`,
        seq: m.fromSeq,
        reason: "prevHash is not the previous archive's last hash",
      });
    } else {
      list.ok(`continues the previous archive (seq ${previous.toSeq})`);
    }
  } else {
    list.warn(`continuity not checked: pass the previous archive's manifest (seq ${m.fromSeq - 1})`);
  }
}

/**
 * Verifies every archive of a division in the store, in order: each one on its own, the first
 * starting at seq 1, and each continuing the previous one. Returns the last archived head.
 */
export async function verifyStoredArchives(
  store: ObjectStore,
  divisionId: string,
  opts: { trustedKeys?: JWK[]; decrypt?: DecryptArchive } = {},
): Promise<ArchiveVerification & { archives: number; head: ChainHead }> {
  const { complete, orphans } = await storedArchives(store, divisionId);
  const list = createCheckList();
  let previous: Pick<ArchiveManifest, 'toSeq' | 'lastHash'> = { toSeq: 0, lastHash: GENESIS_HASH };
  for (const a of complete) {
    const manifest = await readManifest(store, manifestKeyOf(a.key));
    const bytes = await readObject(store, a.key);
    const r = await verifyArchive(bytes, manifest, {
      trustedKeys: opts.trustedKeys,
      decrypt: opts.decrypt,
      ...(previous.toSeq > 0 ? { previous } : {}),
    });
    for (const line of r.checks) list.checks.push(`${a.key}: ${line}`);
    for (const b of r.broken) list.broken.push({ ...b, what: `${a.key}: ${b.what}` });
    if (previous.toSeq === 0 && a.fromSeq !== 1) {
      list.fail({ what: `${a.key}`, reason: `the first archive starts at seq ${a.fromSeq}, not 1` });
    }
    previous = { toSeq: manifest.toSeq, lastHash: manifest.lastHash };
  }
  for (const o of orphans)
    list.checks.push(`warn: ${o.key} has no manifest (an interrupted run; the next run completes it)`);
  return {
    ...list.verdict(),
    archives: complete.length,
    head: { seq: previous.toSeq, hash: previous.lastHash },
  };
}
