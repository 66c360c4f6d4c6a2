import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Database } from '../adapters/db/port.js';
import type { ObjectStore } from '../adapters/objects/port.js';
import { createLeaderLoop, type LeaderElection } from '../platform/leader.js';
import type { Logger } from '../platform/logger.js';
import { auditHead, listAudit } from './audit-log.js';
import { canonicalJson, eventHash, GENESIS_HASH } from './chain.js';
import { isHash, isObject, isSeq, malformedEventField } from './event-shape.js';
import { type AuditSigner, type SignedHead, verifySignedHead } from './signer.js';
import type { AuditEvent } from './types.js';
import type { BrokenLink } from './verify.js';

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
}

export interface ArchivedPart {
  divisionId: string;
  key: string;
  manifestKey: string;
  fromSeq: number;
  toSeq: number;
  count: number;
  sha256: string;
  locked: boolean;
  /** True when the archive was already stored by an interrupted run and only its manifest was written. */
  repaired?: boolean;
}

export interface ArchiveDeps {
  db: Database;
  store: ObjectStore;
  signer: AuditSigner;
  now?: () => Date;
  /** AUDIT_ARCHIVE_RETENTION_DAYS: retention lock on archives and manifests (0: none). */
  retentionDays?: number;
  /** Events per archive file at most (default 50,000): a busy day is split into several files. */
  maxEventsPerArchive?: number;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

export interface ArchiveOptions {
  /** Only this division (default: every division with events). */
  divisionId?: string;
  /** Archive events up to the end of this UTC day (YYYY-MM-DD). */
  day?: string;
  /** Archive events before this instant (default: now; the daily run passes the start of today). */
  until?: Date;
}

export interface ArchiveResult {
  archives: ArchivedPart[];
  /** Whether the store retention-locks archives (false: say so in /readyz and the logs). */
  objectLock: boolean;
}

const DAY_MS = 86_400_000;
const PAGE = 5_000;
const SEQ_DIGITS = 12;
const ARCHIVE_LOCK_KEY = 727_000_003;
const LOCK_WAIT_MS = 60_000;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

const pad = (n: number) => String(n).padStart(SEQ_DIGITS, '0');
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Midnight UTC starting the day of `d`. */
export const startOfUtcDay = (d: Date) => new Date(Math.floor(d.getTime() / DAY_MS) * DAY_MS);

/** `audit/<division>/<day>/<from>-<to>.jsonl.gz` (seqs zero-padded so that keys sort by seq). */
export function archiveKey(divisionId: string, day: string, fromSeq: number, toSeq: number): string {
  return `audit/${divisionId}/${day}/${pad(fromSeq)}-${pad(toSeq)}.jsonl.gz`;
}

export const manifestKeyOf = (key: string) => key.replace(/\.jsonl\.gz$/, '.manifest.json');
export const archiveKeyOf = (manifestKey: string) => manifestKey.replace(/\.manifest\.json$/, '.jsonl.gz');

const KEY_PATTERN = /^audit\/([^/]+)\/(\d{4}-\d{2}-\d{2})\/(\d+)-(\d+)\.(jsonl\.gz|manifest\.json)$/;

export function parseArchiveKey(
  key: string,
):
  | { divisionId: string; day: string; fromSeq: number; toSeq: number; kind: 'archive' | 'manifest' }
  | undefined {
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

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

// One archiver at a time: advisory lock across processes on the server; in-process queue on PGlite
// (a single session, whose advisory locks are re-entrant).
const queues = new WeakMap<Database, Promise<unknown>>();

async function exclusively<T>(db: Database, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(db) ?? Promise.resolve();
  const run = previous
    .catch(() => undefined)
    .then(() => (db.kind === 'pglite' ? fn() : withAdvisoryLock(db, fn)));
  queues.set(db, run);
  return run;
}

async function withAdvisoryLock<T>(db: Database, fn: () => Promise<T>): Promise<T> {
  const session = await db.reserve();
  try {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      const res = await session.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1::bigint) AS locked',
        [ARCHIVE_LOCK_KEY],
      );
      if (res.rows[0]?.locked) break;
      if (Date.now() > deadline)
        throw new Error('another process has been archiving the audit trail for a minute');
      await sleep(250);
    }
    try {
      return await fn();
    } finally {
      await session.query('SELECT pg_advisory_unlock($1::bigint)', [ARCHIVE_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await session.release();
  }
}

/** Reads and parses a stored manifest. */
export async function readManifest(store: ObjectStore, key: string): Promise<ArchiveManifest> {
  const text = (await readAll((await store.get(key)).body)).toString('utf8');
  const manifest = JSON.parse(text) as ArchiveManifest;
  if (manifest?.format !== ARCHIVE_FORMAT) throw new Error(`${key}: not a ${ARCHIVE_FORMAT} manifest`);
  return manifest;
}

/** The division's archives in the store, in seq order: complete ones (with a manifest) and orphans. */
async function storedArchives(store: ObjectStore, divisionId: string) {
  const parsed = (await store.list(`audit/${divisionId}/`))
    .map((o) => ({ key: o.key, ...parseArchiveKey(o.key) }))
    .filter((p): p is typeof p & NonNullable<ReturnType<typeof parseArchiveKey>> => p.kind !== undefined)
    .filter((p) => p.divisionId === divisionId);
  const manifests = new Set(parsed.filter((p) => p.kind === 'manifest').map((p) => archiveKeyOf(p.key)));
  const archives = parsed.filter((p) => p.kind === 'archive').sort((a, b) => a.fromSeq - b.fromSeq);
  return {
    complete: archives.filter((a) => manifests.has(a.key)),
    orphans: archives.filter((a) => !manifests.has(a.key)),
  };
}

/**
 * Writes a division's audit events to the object store as gzip-compressed JSONL (one canonical
 * JSON event per line), one file per UTC day (split past `maxEventsPerArchive` events), each with a
 * manifest holding its SHA-256, its seq range and chain ends, and the signed chain head at its
 * last event; both are retention-locked when the store supports it. It continues from the last
 * archive in the store, so running it again writes nothing new, and an interrupted run (an archive
 * without its manifest) is completed. One archiver runs at a time.
 *
 * Daily: `{ until: startOfUtcDay(now) }` (complete days); on demand: no options (up to now).
 */
export async function archiveAudit(deps: ArchiveDeps, opts: ArchiveOptions = {}): Promise<ArchiveResult> {
  return exclusively(deps.db, () => archiveUnlocked(deps, opts));
}

async function archiveUnlocked(deps: ArchiveDeps, opts: ArchiveOptions): Promise<ArchiveResult> {
  const { db, store, signer, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const maxEvents = Math.max(1, deps.maxEventsPerArchive ?? 50_000);
  if (opts.day !== undefined && !(DAY.test(opts.day) && !Number.isNaN(Date.parse(`${opts.day}T00:00:00Z`)))) {
    throw new Error(`day must be YYYY-MM-DD, not ${opts.day}`);
  }
  const until = opts.day ? new Date(Date.parse(`${opts.day}T00:00:00Z`) + DAY_MS) : (opts.until ?? now());
  const { objectLock } = await store.capabilities();
  const retentionDays = deps.retentionDays ?? 0;

  const divisions = opts.divisionId
    ? [opts.divisionId]
    : (
        await db.query<{ division_id: string }>(
          'SELECT division_id FROM audit_heads WHERE seq > 0 ORDER BY division_id',
        )
      ).rows.map((r) => r.division_id);

  const written: ArchivedPart[] = [];
  for (const divisionId of divisions) {
    const { complete, orphans } = await storedArchives(store, divisionId);
    let last = { seq: 0, hash: GENESIS_HASH };
    const newest = complete.at(-1);
    if (newest) {
      const m = await readManifest(store, manifestKeyOf(newest.key));
      last = { seq: m.toSeq, hash: m.lastHash };
    }

    const lockUntil = () =>
      retentionDays > 0 ? new Date(now().getTime() + retentionDays * DAY_MS) : undefined;

    const writeManifest = async (
      events: AuditEvent[],
      key: string,
      day: string,
      stored: { sha256: string; size: number; locked: boolean },
      repaired: boolean,
    ) => {
      const first = events[0];
      const end = events[events.length - 1];
      const retainUntil = lockUntil();
      const manifest: ArchiveManifest = {
        format: ARCHIVE_FORMAT,
        divisionId,
        day,
        fromSeq: first.seq,
        toSeq: end.seq,
        count: events.length,
        firstPrevHash: first.prevHash,
        lastHash: end.hash,
        archive: { key, sha256: stored.sha256, size: stored.size, contentType: ARCHIVE_CONTENT_TYPE },
        signedHead: await signer.signHead({ divisionId, seq: end.seq, hash: end.hash }),
        publicKey: signer.publicJwk,
        createdAt: now().toISOString(),
        retainUntil: stored.locked && retainUntil ? retainUntil.toISOString() : null,
      };
      const bytes = Buffer.from(canonicalJson(manifest));
      const manifestKey = manifestKeyOf(key);
      await store.put(manifestKey, Readable.from([bytes]), {
        contentType: 'application/json',
        sha256: sha256Hex(bytes),
        lockUntil: retainUntil,
      });
      const part: ArchivedPart = {
        divisionId,
        key,
        manifestKey,
        fromSeq: first.seq,
        toSeq: end.seq,
        count: events.length,
        sha256: stored.sha256,
        locked: stored.locked,
        ...(repaired ? { repaired: true } : {}),
      };
      written.push(part);
      last = { seq: end.seq, hash: end.hash };
      logger?.info({ ...part }, 'audit archive written');
    };

    const checkContinuity = (events: AuditEvent[]) => {
      if (events[0].seq !== last.seq + 1 || events[0].prevHash !== last.hash) {
        throw new Error(
          `audit chain of division ${divisionId}: seq ${events[0].seq} does not follow the last archived event (seq ${last.seq}); verify the chain`,
        );
      }
    };

    // Archives an interrupted run stored without their manifest: complete each one that holds
    // exactly the database's events for its range.
    for (;;) {
      const orphan = orphans.find((o) => o.fromSeq === last.seq + 1);
      if (!orphan) break;
      const events = await listAudit(db, divisionId, {
        afterSeq: orphan.fromSeq - 1,
        untilSeq: orphan.toSeq,
        limit: orphan.toSeq - orphan.fromSeq + 1,
      });
      const bytes = await readAll((await store.get(orphan.key)).body);
      let same = false;
      try {
        same = events.length > 0 && gunzipSync(bytes).toString('utf8') === toJsonl(events);
      } catch {
        same = false;
      }
      if (!same) {
        throw new Error(
          `${orphan.key} has no manifest and does not hold the database's events ${orphan.fromSeq}-${orphan.toSeq}: inspect it before archiving further`,
        );
      }
      checkContinuity(events);
      const locked = objectLock && retentionDays > 0;
      await writeManifest(
        events,
        orphan.key,
        orphan.day,
        { sha256: sha256Hex(bytes), size: bytes.length, locked },
        true,
      );
    }

    const head = await auditHead(db, divisionId);
    let chunk: AuditEvent[] = [];
    let chunkDay = '';
    const flush = async () => {
      if (chunk.length === 0) return;
      const events = chunk;
      chunk = [];
      checkContinuity(events);
      const gz = gzipSync(Buffer.from(toJsonl(events), 'utf8'), { level: 9 });
      const sha256 = sha256Hex(gz);
      const key = archiveKey(divisionId, chunkDay, events[0].seq, events[events.length - 1].seq);
      const stored = await store.put(key, Readable.from([gz]), {
        contentType: ARCHIVE_CONTENT_TYPE,
        sha256,
        lockUntil: lockUntil(),
      });
      await writeManifest(events, key, chunkDay, stored, false);
    };
    let after = last.seq;
    scan: while (after < head.seq) {
      const page = await listAudit(db, divisionId, { afterSeq: after, untilSeq: head.seq, limit: PAGE });
      if (page.length === 0) break;
      for (const e of page) {
        // In seq order; `at` is taken just before the chain lock, so around a cut-off it may step
        // back by a few milliseconds: the first event at or past `until` ends the run.
        if (Date.parse(e.at) >= until.getTime()) break scan;
        const day = e.at.slice(0, 10);
        if (chunk.length > 0 && (day > chunkDay || chunk.length >= maxEvents)) await flush();
        if (chunk.length === 0) chunkDay = day;
        chunk.push(e);
        after = e.seq;
      }
    }
    await flush();
  }
  if (!objectLock && written.length > 0 && (deps.retentionDays ?? 0) > 0) {
    logger?.warn(
      { store: store.kind },
      'the object store has no object lock: audit archives are not retention-locked',
    );
  }
  return { archives: written, objectLock };
}

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
  opts: { trustedKeys?: JWK[]; previous?: Pick<ArchiveManifest, 'toSeq' | 'lastHash'> } = {},
): Promise<ArchiveVerification> {
  const checks: string[] = [];
  const broken: BrokenLink[] = [];
  let events: AuditEvent[] | undefined;
  const ok = (line: string) => checks.push(`ok: ${line}`);
  const warn = (line: string) => checks.push(`warn: ${line}`);
  const fail = (link: BrokenLink) => {
    checks.push(`FAIL: ${link.what}: ${link.reason}`);
    broken.push(link);
  };
  const result = (): ArchiveVerification => ({
    ok: broken.length === 0,
    checks,
    broken,
    ...(broken[0] ? { firstBroken: broken[0] } : {}),
    ...(events ? { events } : {}),
  });

  if (!isObject(manifest) || manifest.format !== ARCHIVE_FORMAT) {
    fail({ what: 'manifest', reason: `not a ${ARCHIVE_FORMAT} manifest` });
    return result();
  }
  const shape: [string, boolean][] = [
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
  ];
  const missing = shape.find(([, good]) => !good);
  if (missing) {
    fail({ what: 'manifest', reason: `${missing[0]} is missing or malformed` });
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

  // Its events.
  let text: string;
  try {
    text = gunzipSync(archive).toString('utf8');
  } catch (err) {
    fail({ what: 'archive', reason: `not a gzip file (${(err as Error).message})` });
    return result();
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const parsed: AuditEvent[] = [];
  for (const [index, line] of lines.entries()) {
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      fail({ what: `line ${index + 1}`, index, reason: 'not JSON' });
      return result();
    }
    const field = malformedEventField(e);
    const label = isObject(e) && isSeq(e.seq) ? `audit event seq ${e.seq}` : `line ${index + 1}`;
    if (field !== undefined) {
      fail({ what: label, index, reason: `malformed (field ${field})` });
      return result();
    }
    if ((e as AuditEvent).divisionId !== m.divisionId) {
      fail({ what: label, index, reason: `belongs to division ${(e as AuditEvent).divisionId}` });
      return result();
    }
    parsed.push(e as AuditEvent);
  }
  events = parsed;

  // The chain inside the archive.
  let prev = m.firstPrevHash;
  let chainOk = true;
  for (const [index, e] of parsed.entries()) {
    const expectedSeq = m.fromSeq + index;
    const what = `audit event seq ${e.seq}`;
    let reason: string | undefined;
    if (e.seq !== expectedSeq) {
      reason = `found where seq ${expectedSeq} was expected: an event is missing, duplicated or out of order`;
    } else if (e.prevHash !== prev) {
      reason =
        index === 0
          ? "prevHash is not the manifest's firstPrevHash"
          : `prevHash does not match the hash of seq ${expectedSeq - 1}`;
    } else if (eventHash(e) !== e.hash) {
      reason = 'hash does not match its content';
    }
    if (reason) {
      fail({ what, index, seq: e.seq, reason });
      chainOk = false;
      break;
    }
    prev = e.hash;
  }
  if (chainOk) {
    const last = parsed.at(-1);
    if (parsed.length !== m.count || parsed.length !== m.toSeq - m.fromSeq + 1) {
      fail({
        what: 'archive',
        reason: `holds ${parsed.length} events; the manifest says ${m.count}, seq ${m.fromSeq} to ${m.toSeq}`,
      });
    } else if (last?.hash !== m.lastHash) {
      fail({ what: 'manifest', seq: m.toSeq, reason: `lastHash is not the hash of seq ${m.toSeq}` });
    } else {
      ok(`audit chain: ${parsed.length} events, seq ${m.fromSeq} to ${m.toSeq}, every link intact`);
    }
  }

  // Continuity with what came before.
  if (m.fromSeq === 1) {
    if (m.firstPrevHash === GENESIS_HASH) ok('starts the chain (seq 1 links to the genesis hash)');
    else fail({ what: 'audit event seq 1', seq: 1, reason: 'prevHash is not the genesis hash' });
  } else if (opts.previous) {
    if (opts.previous.toSeq + 1 !== m.fromSeq) {
      fail({
        what: 'continuity',
        reason: `the previous archive ends at seq ${opts.previous.toSeq}, this one starts at seq ${m.fromSeq}`,
      });
    } else if (opts.previous.lastHash !== m.firstPrevHash) {
      fail({
        what: `audit event seq ${m.fromSeq}`,
        seq: m.fromSeq,
        reason: "prevHash is not the previous archive's last hash",
      });
    } else {
      ok(`continues the previous archive (seq ${opts.previous.toSeq})`);
    }
  } else {
    warn(`continuity not checked: pass the previous archive's manifest (seq ${m.fromSeq - 1})`);
  }

  // The signed head.
  const signature = await verifySignedHead(m.signedHead, m.publicKey);
  if (signature.ok) ok(`signed head: Ed25519 signature valid (key ${m.signedHead.keyId})`);
  else fail({ what: 'signed head', reason: signature.reason });
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
  let thumbprint: string | undefined;
  try {
    thumbprint = await calculateJwkThumbprint(m.publicKey);
  } catch {
    thumbprint = undefined;
  }
  if (opts.trustedKeys && opts.trustedKeys.length > 0) {
    const trusted = new Set<string>();
    for (const k of opts.trustedKeys) trusted.add(await calculateJwkThumbprint(k));
    if (thumbprint !== undefined && trusted.has(thumbprint)) ok(`signing key ${thumbprint} is trusted`);
    else
      fail({
        what: 'signing key',
        reason: `${thumbprint ?? '(invalid key)'} is not one of the trusted keys`,
      });
  } else {
    warn('signing key not pinned: pass a trusted public key to know who signed the head');
  }
  return result();
}

/**
 * Verifies every archive of a division in the store, in order: each one on its own, the first
 * starting at seq 1, and each continuing the previous one. Returns the last archived head.
 */
export async function verifyStoredArchives(
  store: ObjectStore,
  divisionId: string,
  opts: { trustedKeys?: JWK[] } = {},
): Promise<ArchiveVerification & { archives: number; head: { seq: number; hash: string } }> {
  const { complete, orphans } = await storedArchives(store, divisionId);
  const checks: string[] = [];
  const broken: BrokenLink[] = [];
  let previous: Pick<ArchiveManifest, 'toSeq' | 'lastHash'> = { toSeq: 0, lastHash: GENESIS_HASH };
  for (const a of complete) {
    const manifest = await readManifest(store, manifestKeyOf(a.key));
    const bytes = await readAll((await store.get(a.key)).body);
    const r = await verifyArchive(bytes, manifest, {
      trustedKeys: opts.trustedKeys,
      ...(previous.toSeq > 0 ? { previous } : {}),
    });
    for (const line of r.checks) checks.push(`${a.key}: ${line}`);
    for (const b of r.broken) broken.push({ ...b, what: `${a.key}: ${b.what}` });
    if (previous.toSeq === 0 && a.fromSeq !== 1) {
      const link = { what: `${a.key}`, reason: `the first archive starts at seq ${a.fromSeq}, not 1` };
      checks.push(`FAIL: ${link.what}: ${link.reason}`);
      broken.push(link);
    }
    previous = { toSeq: manifest.toSeq, lastHash: manifest.lastHash };
  }
  for (const o of orphans)
    checks.push(`warn: ${o.key} has no manifest (an interrupted run; the next run completes it)`);
  return {
    ok: broken.length === 0,
    checks,
    broken,
    ...(broken[0] ? { firstBroken: broken[0] } : {}),
    archives: complete.length,
    head: { seq: previous.toSeq, hash: previous.lastHash },
  };
}

/**
 * Runs `run` (the daily archive) every `intervalMs` while this process is the elected leader, so
 * that one replica archives. Failures are logged and retried at the next interval.
 */
export function createArchiveLoop(deps: {
  run: () => Promise<ArchiveResult>;
  leader: LeaderElection;
  intervalMs: number;
  logger: Pick<Logger, 'error' | 'warn'>;
}) {
  let warned = false;
  return createLeaderLoop({
    name: 'audit archive',
    leader: deps.leader,
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    async task() {
      const result = await deps.run();
      if (!result.objectLock && !warned) {
        warned = true;
        deps.logger.warn('audit archives are not retention-locked: the object store has no object lock');
      }
    },
  });
}
