import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Database } from '../../adapters/db/port.js';
import type { ObjectStore } from '../../adapters/objects/port.js';
import { type Encryption, INSTALLATION_KEY } from '../../encryption/encryption.js';
import { parseHeader } from '../../encryption/envelope.js';
import { LOCK_KEYS } from '../../platform/locks.js';
import type { Logger } from '../../platform/logger.js';
import { auditHead, listAudit } from '../audit-log.js';
import { type ChainHead, canonicalJson, GENESIS_HASH, sha256Hex } from '../chain.js';
import type { AuditSigner } from '../signer.js';
import type { AuditEvent } from '../types.js';
import {
  ARCHIVE_CONTENT_TYPE,
  ARCHIVE_FORMAT,
  type ArchiveManifest,
  archiveKey,
  manifestKeyOf,
  toJsonl,
} from './format.js';
import { readManifest, readObject, storedArchives } from './stored.js';

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
  /** Encrypts each archive with its division's data key when on (KEY_DIR). */
  encryption?: Encryption;
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
const LOCK_WAIT_MS = 60_000;
const LOCK_RETRY_MS = 250;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Midnight UTC starting the day of `d`. */
export const startOfUtcDay = (d: Date) => new Date(Math.floor(d.getTime() / DAY_MS) * DAY_MS);

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

// One archiver at a time. Runs of this process queue behind each other; a run of another process
// holds the database's exclusive lock, waited for up to a minute.
const queues = new WeakMap<Database, Promise<unknown>>();

function exclusively<T>(db: Database, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(db) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => whileLocked(db, fn));
  queues.set(db, run);
  return run;
}

async function whileLocked<T>(db: Database, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    // Wrapped, so that "not run" (undefined) cannot be mistaken for a result.
    const done = await db.withExclusiveLock(LOCK_KEYS.auditArchive, async () => ({ value: await fn() }));
    if (done) return done.value;
    if (Date.now() > deadline)
      throw new Error('another process has been archiving the audit trail for a minute');
    await sleep(LOCK_RETRY_MS);
  }
}

async function archiveUnlocked(deps: ArchiveDeps, opts: ArchiveOptions): Promise<ArchiveResult> {
  const { db, store, logger } = deps;
  const now = deps.now ?? (() => new Date());
  if (opts.day !== undefined && !(DAY.test(opts.day) && !Number.isNaN(Date.parse(`${opts.day}T00:00:00Z`)))) {
    throw new Error(`day must be YYYY-MM-DD, not ${opts.day}`);
  }
  const until = opts.day ? new Date(Date.parse(`${opts.day}T00:00:00Z`) + DAY_MS) : (opts.until ?? now());
  const { objectLock } = await store.capabilities();

  const divisions = opts.divisionId
    ? [opts.divisionId]
    : (
        await db.query<{ division_id: string }>(
          'SELECT division_id FROM audit_heads WHERE seq > 0 ORDER BY division_id',
        )
      ).rows.map((r) => r.division_id);

  const written: ArchivedPart[] = [];
  for (const divisionId of divisions) {
    written.push(...(await archiveDivision({ ...deps, now, objectLock }, divisionId, until)));
  }
  if (!objectLock && written.length > 0 && (deps.retentionDays ?? 0) > 0) {
    logger?.warn(
      { store: store.kind },
      'the object store has no object lock: audit archives are not retention-locked',
    );
  }
  return { archives: written, objectLock };
}

type DivisionRun = ArchiveDeps & { now: () => Date; objectLock: boolean };

/** Archives one division's events before `until`, continuing from its last stored archive. */
async function archiveDivision(run: DivisionRun, divisionId: string, until: Date): Promise<ArchivedPart[]> {
  const { db, store, signer, logger, now, objectLock } = run;
  const maxEvents = Math.max(1, run.maxEventsPerArchive ?? 50_000);
  const retentionDays = run.retentionDays ?? 0;
  const written: ArchivedPart[] = [];

  const { complete, orphans } = await storedArchives(store, divisionId);
  let last: ChainHead = { seq: 0, hash: GENESIS_HASH };
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
    encryption?: ArchiveManifest['encryption'],
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
      ...(encryption ? { encryption } : {}),
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
    const bytes = await readObject(store, orphan.key);
    let same = false;
    // An encrypted orphan names its key in its envelope header.
    let sealedWith: ArchiveManifest['encryption'];
    try {
      let gz = bytes;
      const header = bytes.subarray(0, 5).toString('latin1') === 'MLENC' ? parseHeader(bytes) : undefined;
      if (header && run.encryption) {
        sealedWith = { keyId: header.header.keyId, keyVersion: header.header.keyVersion };
        gz = await run.encryption.open('audit-archive', header.header.keyId, orphan.key, bytes);
      }
      same = events.length > 0 && gunzipSync(gz).toString('utf8') === toJsonl(events);
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
      sealedWith,
    );
  }

  // The events after the last archive, in files of one UTC day and at most `maxEvents` events.
  const head = await auditHead(db, divisionId);
  let chunk: AuditEvent[] = [];
  let chunkDay = '';
  const flush = async () => {
    if (chunk.length === 0) return;
    const events = chunk;
    chunk = [];
    checkContinuity(events);
    const gz = gzipSync(Buffer.from(toJsonl(events), 'utf8'), { level: 9 });
    const key = archiveKey(divisionId, chunkDay, events[0].seq, events[events.length - 1].seq);
    let payload: Buffer = gz;
    let sealedWith: ArchiveManifest['encryption'];
    if (run.encryption?.enabled) {
      // An erased division's remaining trail (its key is gone) goes under the installation's key.
      const keyId = (await run.encryption.erased(divisionId)) ? INSTALLATION_KEY : divisionId;
      const sealed = await run.encryption.seal('audit-archive', keyId, key, gz);
      if (sealed) {
        payload = sealed.bytes;
        sealedWith = { keyId, keyVersion: sealed.keyVersion };
      }
    }
    const stored = await store.put(key, Readable.from([payload]), {
      contentType: ARCHIVE_CONTENT_TYPE,
      sha256: sha256Hex(payload),
      lockUntil: lockUntil(),
    });
    await writeManifest(events, key, chunkDay, stored, false, sealedWith);
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
  return written;
}
