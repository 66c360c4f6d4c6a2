import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../adapters/db/port.js';
import type { Access } from '../memories/access.js';
import type { Logger } from '../platform/logger.js';
import { untraced } from '../platform/tracing.js';
import type { AppendAudit, AuditEventInput } from './types.js';

/** ACCESS_AUDIT: every read of memory content, only reads of personal data (`pii.read`), or none. */
export type AccessAuditMode = 'all' | 'pii' | 'off';

/** The action of access events; `pii.read` events (per memory, with its flags) are reads too. */
export const ACCESS_ACTION = 'memory.access';
export const READ_ACTIONS = [ACCESS_ACTION, 'pii.read'] as const;

/** Marks a read of every memory of a division (a proof export) in the "who saw" index. */
export const WHOLE_DIVISION = '*';

/**
 * Ids one event lists at most. A request that shows more (a search of 100 hits with 10
 * neighbours each before and after) is recorded as several events, `part` 1..`parts`, so that no
 * event grows without bound.
 */
export const MAX_IDS_PER_EVENT = 500;

/** One read of memory content, as the domain sees it. */
export interface AccessRead {
  divisionId: string;
  /** What read it: `get`, `list`, `search`, `artifact`, `export`. */
  via: string;
  /** The memories whose content the answer carries (search: the hits). */
  memoryIds: readonly string[];
  /** Search with `expand`: the session neighbours returned with the hits. */
  neighbourIds?: readonly string[];
  /** An artifact download: the file (`memoryIds` are the memories it is linked to). */
  artifactId?: string;
  /** Every memory of the division (a proof export). */
  wholeDivision?: boolean;
}

/** What an access event keeps (ids, routes, credentials, never text); hashed into its digest. */
export interface AccessDetail {
  readId: string;
  via: string;
  readAt: string;
  route?: string;
  requestId?: string;
  agentId?: string;
  tokenId?: string;
  memoryIds: string[];
  neighbourIds?: string[];
  artifactId?: string;
  wholeDivision?: true;
  part?: number;
  parts?: number;
}

interface StagedRead {
  divisionId: string;
  actor: string;
  manifestSignatureId: string | null;
  detail: AccessDetail;
  memoryIds: string[];
}

/** The staged rows of one read: one, or one per MAX_IDS_PER_EVENT ids. */
export function stagedReads(access: Access, read: AccessRead, now = new Date()): StagedRead[] {
  const ids: [string, 'hit' | 'neighbour'][] = [
    ...read.memoryIds.map((id): [string, 'hit'] => [id, 'hit']),
    ...(read.neighbourIds ?? []).map((id): [string, 'neighbour'] => [id, 'neighbour']),
  ];
  const chunks: (typeof ids)[] = [];
  for (let i = 0; i < ids.length; i += MAX_IDS_PER_EVENT) chunks.push(ids.slice(i, i + MAX_IDS_PER_EVENT));
  if (chunks.length === 0) chunks.push([]);
  const readId = randomUUID();
  return chunks.map((chunk, i) => {
    const hits = chunk.filter(([, k]) => k === 'hit').map(([id]) => id);
    const neighbours = chunk.filter(([, k]) => k === 'neighbour').map(([id]) => id);
    const detail: AccessDetail = { readId, via: read.via, readAt: now.toISOString(), memoryIds: hits };
    if (access.request) {
      detail.route = access.request.route;
      detail.requestId = access.request.id;
    }
    if (access.agentId !== undefined) detail.agentId = access.agentId;
    if (access.tokenId !== undefined) detail.tokenId = access.tokenId;
    if (read.neighbourIds !== undefined) detail.neighbourIds = neighbours;
    if (read.artifactId !== undefined) detail.artifactId = read.artifactId;
    if (read.wholeDivision) detail.wholeDivision = true;
    if (chunks.length > 1) {
      detail.part = i + 1;
      detail.parts = chunks.length;
    }
    return {
      divisionId: read.divisionId,
      actor: access.actor,
      manifestSignatureId: access.manifestSignatureId ?? null,
      detail,
      memoryIds: read.wholeDivision ? [WHOLE_DIVISION] : [...new Set([...hits, ...neighbours])],
    };
  });
}

interface PendingRow {
  id: number | string;
  division_id: string;
  actor: string;
  manifest_signature_id: string | null;
  detail: AccessDetail | string;
  memory_ids: string[];
}

export interface AccessAuditDeps {
  db: Database;
  appendAudit: AppendAudit;
  mode: AccessAuditMode;
  /** Staged reads that start a flush at once; also the most chained in one transaction. */
  batch: number;
  /** How often staged reads are chained. */
  flushMs: number;
  logger?: Pick<Logger, 'error'>;
}

export type AccessAudit = ReturnType<typeof createAccessAudit>;

/** Most staged reads in one INSERT (five parameters each, far below PostgreSQL's 65,535). */
const STAGE_MAX = 1000;

/**
 * The audit of reads. A read stages its record (`access_pending`, one INSERT, no lock on the
 * chain) before its answer is sent; flushes move staged records into the hash chain in batches —
 * when `batch` were staged here, every `flushMs`, before the trail is read or exported, and at
 * shutdown — deleting them in the same transaction. A crash loses no read that was answered: any
 * process's next flush chains what is staged.
 */
export function createAccessAudit(deps: AccessAuditDeps) {
  const { db, mode } = deps;
  let stagedSinceFlush = 0;
  let running: Promise<number> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  /** Staging INSERTs started and not finished (they never reject). */
  const inflight = new Set<Promise<void>>();
  /**
   * Reads recorded while a staging INSERT runs wait in `open` and are staged together by the next
   * one: under load, one transaction of four statements stages many reads instead of one each
   * (16 searchers on the server made it ~40 % of a search's statements). Alone, a read is staged
   * at once.
   */
  let open: { rows: StagedRead[]; divisions: Set<string> } | undefined;
  let previous: Promise<void> = Promise.resolve();

  function enqueue(rows: StagedRead[], divisionId: string) {
    if (!open || open.rows.length + rows.length > STAGE_MAX) {
      const batch = { rows: [] as StagedRead[], divisions: new Set<string>() };
      open = batch;
      const staging: Promise<void> = previous.then(() => {
        if (open === batch) open = undefined;
        return stageBatch(batch.rows, batch.divisions);
      });
      previous = staging;
      inflight.add(staging);
      staging.finally(() => inflight.delete(staging));
    }
    open.rows.push(...rows);
    open.divisions.add(divisionId);
  }

  /**
   * Committed without waiting for the WAL to reach disk (a flush per read is a disk write per
   * read): only a crash of the database server can lose the last moments' staged rows. Outside
   * the request's trace: the answer does not wait for it. Never rejects: a failure is logged.
   */
  async function stageBatch(rows: StagedRead[], divisions: Set<string>): Promise<void> {
    try {
      await untraced(() =>
        db.transaction(async (tx) => {
          await tx.query('SET LOCAL synchronous_commit = off');
          await stage(tx, rows);
        }),
      );
      stagedSinceFlush += rows.length;
      if (stagedSinceFlush >= deps.batch) flushQuietly();
    } catch (err) {
      deps.logger?.error({ err, divisionIds: [...divisions], reads: rows.length }, 'recording reads failed');
    }
  }

  async function stage(q: Queryable, rows: StagedRead[]) {
    const params: unknown[] = [];
    const values = rows.map((r) => {
      params.push(r.divisionId, r.actor, r.manifestSignatureId, JSON.stringify(r.detail), r.memoryIds);
      const n = params.length;
      return `($${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}::jsonb, $${n}::text[])`;
    });
    await q.query(
      `INSERT INTO access_pending (division_id, actor, manifest_signature_id, detail, memory_ids)
       VALUES ${values.join(', ')}`,
      params,
    );
  }

  /** Chains one batch of staged reads; how many. */
  async function chainBatch(): Promise<number> {
    return db.transaction(async (tx) => {
      const res = await tx.query<PendingRow>(
        `DELETE FROM access_pending WHERE id IN (
           SELECT id FROM access_pending ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, division_id, actor, manifest_signature_id, detail, memory_ids`,
        [deps.batch],
      );
      const rows = res.rows.sort((a, b) => Number(a.id) - Number(b.id));
      await deps.appendAudit(
        tx,
        rows.map((r): AuditEventInput => {
          const detail = typeof r.detail === 'string' ? (JSON.parse(r.detail) as AccessDetail) : r.detail;
          return {
            divisionId: r.division_id,
            actor: r.actor,
            action: ACCESS_ACTION,
            resourceType: 'access',
            resourceId: `${detail.readId}${detail.part ? `#${detail.part}` : ''}`,
            manifestSignatureId: r.manifest_signature_id ?? undefined,
            change: detail,
            keepChange: true,
            readMemoryIds: r.memory_ids,
          };
        }),
      );
      return rows.length;
    });
  }

  /** Waits until the reads recorded so far are staged (their INSERTs done). */
  async function settled(): Promise<void> {
    await Promise.all([...inflight]);
  }

  /** Chains everything staged so far, the reads recorded before this call included. */
  async function flush(): Promise<number> {
    await settled();
    return chainStaged();
  }

  /** Chains what is staged (by any process); one at a time in this process. */
  function chainStaged(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    stagedSinceFlush = 0;
    running = (async () => {
      let total = 0;
      do {
        again = false;
        for (;;) {
          const n = await chainBatch();
          total += n;
          if (n < deps.batch) break;
        }
      } while (again);
      return total;
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  const flushQuietly = () => {
    flush().catch((err) => deps.logger?.error({ err }, 'chaining recorded reads failed'));
  };

  return {
    mode,
    /**
     * Stages the record of a read (ACCESS_AUDIT=all; a no-op otherwise). The staging INSERT is
     * started, not awaited: the answer does not wait for it (awaiting it cost search p95 14-28 %
     * on the PostgreSQL server, BENCHMARKS.md). Flushes wait for the INSERTs in flight, so a read
     * answered before the trail is read is in it; a crash of this process can lose the reads whose
     * INSERT was still in flight or waiting for the one before it (answered in its last
     * milliseconds); a failed INSERT is logged.
     */
    async record(access: Access, read: AccessRead): Promise<void> {
      if (mode !== 'all') return;
      // An empty page shows nothing; a file download always shows the file, linked or not.
      const shown = read.memoryIds.length + (read.neighbourIds ?? []).length;
      if (shown === 0 && !read.wholeDivision && read.artifactId === undefined) return;
      enqueue(stagedReads(access, read), read.divisionId);
    },
    flush,
    settled,
    /** Flushes every `flushMs` (idempotent). */
    start() {
      // Whatever the mode: reads staged before a restart with another mode are chained too.
      if (timer) return;
      timer = setInterval(flushQuietly, deps.flushMs);
      timer.unref();
    },
    /** Stops the timer and chains what is staged (shutdown). */
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await flush();
    },
  };
}
