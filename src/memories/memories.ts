import type { Database, Queryable } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';
import type { VectorEntry, VectorIndex } from '../adapters/vector/port.js';
import type { AccessAudit, AccessRead } from '../audit/access-audit.js';
import type { AppendAudit } from '../audit/types.js';
import { assertAgentExists, assertDivisionExists, divisionTtlDays } from '../divisions/divisions.js';
import { expiresAtFor, purgeMemories } from '../governance/retention.js';
import type { Backpressure } from '../indexing/backpressure.js';
import { queueContextUpdates } from '../indexing/contextual-vectors.js';
import { removeFromSpaces, spacesOf } from '../indexing/index-maintenance.js';
import { enqueue, INDEX_QUEUE } from '../indexing/queue.js';
import { type ModelResolver, readDivisionModel, requireModel } from '../models/active-model.js';
import { AppError, ErrorCode, notFound } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { type Access, accessSql, heldSql, visibleSql } from './access.js';
import { auditOf, piiReadEvents } from './audit-events.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { type IdempotencyKey, runIdempotent } from './idempotency.js';
import {
  callerFlagsAfter,
  checkText,
  checkVector,
  classify,
  type MemoryPatch,
  type NewMemory,
  type PreparedMemory,
  prepareMemory,
  refusePiiInLabels,
} from './input.js';
import { assignSequences, copyMemoryRows, insertMemoryRows } from './insert.js';
import { MEMORY_COLUMNS, type MemoryRecord, type MemoryRow, toRecord } from './records.js';
import { textChecksum } from './text.js';
import { bytesToVector } from './vector-codec.js';

export interface ListQuery {
  divisionId: string;
  namespace?: string;
  agentId?: string;
  kind?: string;
  status?: MemoryRecord['status'];
  sessionId?: string;
  occurredAfter?: string;
  occurredBefore?: string;
  limit: number;
  cursor?: string;
}

export interface MemoryServiceDeps {
  db: Database;
  index: Pick<VectorIndex, 'remove' | 'upsert'>;
  /** Each division's active model; precomputed vectors must come from it. */
  resolveModel: ModelResolver;
  appendAudit: AppendAudit;
  maxTextBytes: number;
  maxJobAttempts: number;
  defaultTtlDays: number;
  /** Called after a commit that queued work, to wake an in-process worker. */
  onQueued: () => void;
  /** The bound on the indexing queue; absent: writes are never refused for backlog. */
  backpressure?: Pick<Backpressure, 'check'>;
  /** The audit of reads (ACCESS_AUDIT); absent: only reads of personal data are audited. */
  readAudit?: Pick<AccessAudit, 'mode' | 'record'>;
  /**
   * When this process's index follows the change feed, imported rows reach it through the feed:
   * resolves true once the feed has brought in everything committed before the call (false: this
   * process does not follow, or the feed did not answer in time).
   */
  followerCaughtUp?: () => Promise<boolean>;
  /** Memories an import put in the vector index itself, with the time they were accepted. */
  onIndexedDirectly?: (count: number, acceptedAt: Date, writeSeconds?: number) => void;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Memories an import wrote as `indexed` (precomputed vectors of the division's model, outside any
 * session, so that their index vector is their own): the writer puts them in the vector index once
 * their transaction committed, instead of a job per memory for the worker.
 */
export interface DirectIndexing {
  model: EmbeddingModel;
  entries: VectorEntry[];
  ids: string[];
  acceptedAt: Date;
}

export type MemoryService = ReturnType<typeof createMemoryService>;

/** Rows per INSERT when writing many memories in one transaction (20 parameters a row). */
const INSERT_GROUP = 1_000;

const legalHoldError = (id: string) =>
  new AppError(
    ErrorCode.legalHold,
    `memory ${id} is under legal hold: it cannot be changed, deleted or purged`,
  );

export function createMemoryService(deps: MemoryServiceDeps) {
  const { db } = deps;

  async function insert(
    tx: Queryable,
    access: Access,
    divisionId: string,
    items: PreparedMemory[],
    opts: {
      write?: typeof insertMemoryRows;
      /** Collects the rows written as indexed (only imports ask: see DirectIndexing). */
      direct?: DirectIndexing[];
    } = {},
  ) {
    // Locked so that a re-embedding cannot switch the division's model before this commits.
    const division = await readDivisionModel(tx, divisionId, { lock: true });
    // An erased division takes no new memories (409 division_erased).
    await assertDivisionExists(tx, divisionId);
    const model = items.some((m) => m.supplied)
      ? requireModel(deps.resolveModel, division.ref, divisionId)
      : undefined;
    const now = new Date();
    const newRows = items.map((m) => {
      const vector = m.supplied && model ? { model, bytes: checkVector(m.supplied, model) } : null;
      // A memory of a session is indexed with its neighbours blended in: the worker's job.
      const direct = opts.direct !== undefined && vector !== null && m.sessionId === null;
      return {
        ...m,
        divisionId,
        vector,
        status: direct ? ('indexed' as const) : ('pending' as const),
        expiresAt: expiresAtFor(m.expiresAt, division.defaultTtlDays, deps.defaultTtlDays, now),
      };
    });
    await assignSequences(tx, divisionId, newRows);
    const rows = await (opts.write ?? insertMemoryRows)(tx, newRows);
    const superseded = await supersede(tx, access, divisionId, items);
    await enqueue(
      tx,
      INDEX_QUEUE,
      newRows.filter((r) => r.status === 'pending').map((r) => ({ nodeId: r.id })),
      deps.maxJobAttempts,
    );
    const direct = newRows.filter((r) => r.status === 'indexed');
    if (opts.direct && model && direct.length > 0) {
      const keyOf = new Map(rows.map((r) => [r.id, Number(r.vector_key)]));
      opts.direct.push({
        model,
        ids: direct.map((r) => r.id),
        entries: direct.map((r) => ({
          key: keyOf.get(r.id) as number,
          divisionId,
          vector: bytesToVector(r.vector?.bytes as Buffer),
        })),
        acceptedAt: now,
      });
    }
    await deps.appendAudit(
      tx,
      rows.map((r) =>
        auditOf(access, r, 'memory.create', {
          checksum: r.checksum,
          version: r.version,
          piiFlags: r.pii_flags,
          namespace: r.namespace,
          kind: r.kind,
          agentId: r.agent_id,
          expiresAt: r.expires_at ? new Date(r.expires_at).toISOString() : null,
          vectorSupplied: r.embedding_model !== null,
          sessionId: r.session_id,
          sequence: r.sequence,
          supersedes: items.find((m) => m.id === r.id)?.supersedes ?? [],
        }),
      ),
    );
    await deps.appendAudit(
      tx,
      superseded.map((old) =>
        auditOf(access, old, 'memory.supersede', { supersededBy: old.superseded_by, version: old.version }),
      ),
    );
    return rows.map((r) => toRecord(r, access.piiRead));
  }

  /**
   * Marks the memories each item names in `supersedes` as replaced by it. They must be live and
   * visible to the caller in the same division: any other id is 404, the same answer as an id that
   * does not exist, and the whole write rolls back.
   */
  async function supersede(tx: Queryable, access: Access, divisionId: string, items: PreparedMemory[]) {
    const out: MemoryRow[] = [];
    for (const m of items) {
      if (m.supersedes.length === 0) continue;
      const params: unknown[] = [m.supersedes, m.id, divisionId];
      const res = await tx.query<MemoryRow>(
        `UPDATE memory_nodes n SET superseded_by = $2, version = version + 1, updated_at = now()
         WHERE n.id = ANY($1::uuid[]) AND n.division_id = $3 AND ${visibleSql('n')} AND ${accessSql(access, params)}
         RETURNING ${MEMORY_COLUMNS}`,
        params,
      );
      const found = new Set(res.rows.map((r) => r.id));
      const missing = m.supersedes.findIndex((id) => !found.has(id));
      if (missing >= 0) {
        throw new AppError(ErrorCode.memoryNotFound, `no memory ${m.supersedes[missing]}`, [
          { field: m.field(`supersedes[${missing}]`), message: 'no such memory' },
        ]);
      }
      out.push(...res.rows);
    }
    return out;
  }

  async function checkAgents(tx: Queryable, divisionId: string, items: PreparedMemory[], prefix: string) {
    const agents = [...new Set(items.map((m) => m.agentId).filter((a): a is string => a !== null))];
    for (const agentId of agents) {
      const at = items.findIndex((m) => m.agentId === agentId);
      await assertAgentExists(tx, divisionId, agentId, prefix ? `${prefix}[${at}].agentId` : 'agentId');
    }
  }

  /**
   * Refuses (503, Retry-After) a write that would queue `jobs` index jobs past the backlog limit,
   * before its transaction starts, so it writes nothing. A retry whose Idempotency-Key already
   * holds an answer is let through: it queues nothing and gets its first answer back.
   */
  async function admit(jobs: number, key?: IdempotencyKey) {
    const refusal = await deps.backpressure?.check(jobs);
    if (!refusal) return;
    if (key) {
      const prior = await db.query(
        `SELECT 1 FROM idempotency_keys
         WHERE division_id = $1 AND key = $2 AND request_hash = $3 AND response IS NOT NULL`,
        [key.divisionId, key.key, key.requestHash],
      );
      if (prior.rows.length > 0) return;
    }
    throw refusal;
  }

  async function idempotentWrite<T>(key: IdempotencyKey | undefined, work: (tx: Queryable) => Promise<T>) {
    const out = await runIdempotent(db, key, work);
    if (!out.replayed) deps.onQueued();
    return out;
  }

  /** A memory the caller may see, or 404 — the same answer whether it is elsewhere or nowhere. */
  async function findRow(
    q: Queryable,
    access: Access,
    id: string,
    opts: { lock?: boolean; includeDeleted?: boolean } = {},
  ): Promise<MemoryRow> {
    const params: unknown[] = [id];
    const live = opts.includeDeleted ? 'n.purged_at IS NULL' : visibleSql('n');
    const res = await q.query<MemoryRow & { held: boolean }>(
      `SELECT ${MEMORY_COLUMNS}, ${heldSql('n')} AS held FROM memory_nodes n
       WHERE n.id = $1 AND ${live} AND ${accessSql(access, params)}${opts.lock ? ' FOR UPDATE OF n' : ''}`,
      params,
    );
    const row = res.rows[0];
    if (!row) throw notFound(ErrorCode.memoryNotFound, `no memory ${id}`);
    return row;
  }

  function checkVersion(row: MemoryRow, expected: number | undefined) {
    if (expected !== undefined && expected !== row.version) {
      throw new AppError(ErrorCode.versionMismatch, `memory is at version ${row.version}, not ${expected}`, [
        { field: 'If-Match', message: `current version is ${row.version}` },
      ]);
    }
  }

  /** Soft-deletes or purges locked rows, queues their neighbours' re-blending, audits each. */
  async function deleteRows(tx: Queryable, access: Access, rows: MemoryRow[], purge: boolean) {
    const ids = rows.map((r) => r.id);
    if (ids.length === 0) return [];
    // Read before a purge erases the vectors: every space that may hold these memories.
    const spaces = await spacesOf(tx, deps.resolveModel, ids);
    if (purge) {
      await purgeMemories(tx, ids);
    } else {
      await tx.query(
        'UPDATE memory_nodes SET deleted_at = now(), updated_at = now() WHERE id = ANY($1::uuid[])',
        [ids],
      );
    }
    // Their session neighbours' index vectors blended their own.
    await queueContextUpdates(tx, ids, deps.maxJobAttempts);
    await deps.appendAudit(
      tx,
      rows.map((r) =>
        auditOf(access, r, purge ? 'memory.purge' : 'memory.delete', {
          checksum: r.checksum,
          version: r.version,
        }),
      ),
    );
    return spaces;
  }

  const readMode = deps.readAudit?.mode ?? 'pii';

  /**
   * Reads are audited before their answer is sent: each memory carrying personal data shown
   * unredacted (`pii.read`, unless ACCESS_AUDIT=off), and with ACCESS_AUDIT=all the whole read
   * (one access event listing the ids, chained in batches).
   */
  async function auditReads(access: Access, rows: MemoryRow[], read: AccessRead) {
    const events = piiReadEvents(access, rows, read.via, readMode);
    if (events.length > 0) await db.transaction((tx) => deps.appendAudit(tx, events));
    await deps.readAudit?.record(access, read);
  }

  return {
    auditReads,

    async create(
      access: Access,
      divisionId: string,
      input: NewMemory,
      opts: { idempotency?: IdempotencyKey } = {},
    ) {
      const item = prepareMemory(access, input, '', deps.maxTextBytes);
      await admit(1, opts.idempotency);
      const { result, replayed } = await idempotentWrite(opts.idempotency, async (tx) => {
        await checkAgents(tx, divisionId, [item], '');
        const [memory] = await insert(tx, access, divisionId, [item]);
        return memory;
      });
      return { memory: result, replayed };
    },

    /**
     * Bulk import (import.ts): items checked one by one already, written with COPY in the
     * caller's transaction (an atomic import's one transaction).
     */
    async importInto(
      tx: Queryable,
      access: Access,
      divisionId: string,
      items: PreparedMemory[],
      direct?: DirectIndexing[],
    ) {
      await checkAgents(tx, divisionId, items, '');
      await insert(tx, access, divisionId, items, { write: copyMemoryRows, direct });
      return items.length;
    },

    /**
     * One chunk of a partial import in a transaction of its own (resumable with a key). With
     * `indexDirectly`, memories that need no worker come back in `direct`, to be given to
     * `indexDirectly()` (they are not searchable by meaning before).
     */
    async importChunk(
      access: Access,
      divisionId: string,
      items: PreparedMemory[],
      opts: { idempotency?: IdempotencyKey; indexDirectly?: boolean } = {},
    ) {
      let direct: DirectIndexing[] | undefined;
      const { result, replayed } = await idempotentWrite(opts.idempotency, async (tx) => {
        direct = opts.indexDirectly ? [] : undefined; // a retried transaction starts again
        await checkAgents(tx, divisionId, items, '');
        await insert(tx, access, divisionId, items, { write: copyMemoryRows, direct });
        return items.length;
      });
      return { count: result, replayed, direct: replayed ? [] : (direct ?? []) };
    },

    /**
     * Puts committed imports' memories in the vector index. If the index refuses them, each gets
     * a job instead, so the worker retries them like any other memory (a crash before this runs
     * is repaired by the start-up reconciliation, or on a following replica by the change feed).
     */
    async indexDirectly(batches: DirectIndexing[]): Promise<void> {
      if (batches.length === 0) return;
      // A following replica's own feed would insert each vector a second time: wait for it instead.
      if (await deps.followerCaughtUp?.()) {
        for (const b of batches) deps.onIndexedDirectly?.(b.entries.length, b.acceptedAt);
        return;
      }
      for (const b of batches) {
        try {
          const started = performance.now();
          await deps.index.upsert(b.model, b.entries);
          deps.onIndexedDirectly?.(b.entries.length, b.acceptedAt, (performance.now() - started) / 1000);
        } catch (err) {
          deps.logger?.warn(
            { err: err instanceof Error ? err.message : err, memories: b.ids.length },
            'the vector index refused imported memories: queued for the worker',
          );
          await db.transaction((tx) =>
            enqueue(
              tx,
              INDEX_QUEUE,
              b.ids.map((nodeId) => ({ nodeId })),
              deps.maxJobAttempts,
            ),
          );
          deps.onQueued();
        }
      }
    },

    /** All or nothing: one invalid item refuses the whole batch and writes nothing. */
    async createBatch(
      access: Access,
      divisionId: string,
      inputs: NewMemory[],
      opts: { idempotency?: IdempotencyKey } = {},
    ) {
      const items = inputs.map((input, i) => prepareMemory(access, input, `items[${i}]`, deps.maxTextBytes));
      await admit(items.length, opts.idempotency);
      const { result, replayed } = await idempotentWrite(opts.idempotency, async (tx) => {
        await checkAgents(tx, divisionId, items, 'items');
        return insert(tx, access, divisionId, items);
      });
      return { memories: result, replayed };
    },

    async get(access: Access, id: string): Promise<MemoryRecord> {
      const row = await findRow(db, access, id);
      await auditReads(access, [row], { divisionId: row.division_id, via: 'get', memoryIds: [row.id] });
      return toRecord(row, access.piiRead);
    },

    async update(access: Access, id: string, patch: MemoryPatch, opts: { expectedVersion?: number } = {}) {
      const text = patch.text === undefined ? undefined : checkText(patch.text, 'text', deps.maxTextBytes);
      refusePiiInLabels(patch.tags, patch.metadata, '');
      // A new text queues a re-embedding job.
      if (text !== undefined) await admit(1);
      let reembed = false;
      const updated = await db.transaction(async (tx) => {
        // A new text must not straddle a re-embedding's switch of the division's model: lock the
        // division first (the switch locks it before the memories, so the order is the same).
        if (text !== undefined) {
          await tx.query(
            'SELECT 1 FROM divisions WHERE id = (SELECT division_id FROM memory_nodes WHERE id = $1) FOR KEY SHARE',
            [id],
          );
        }
        const row = await findRow(tx, access, id, { lock: true });
        if ((row as MemoryRow & { held: boolean }).held) throw legalHoldError(id);
        checkVersion(row, opts.expectedVersion);
        const newText = text ?? row.text;
        const checksum = textChecksum(newText);
        reembed = checksum !== row.checksum;
        const { flags, redacted } = classify(newText, callerFlagsAfter(access, row, patch.piiFlags));
        const res = await tx.query<MemoryRow>(
          `UPDATE memory_nodes SET
             text = $2, namespace = coalesce($3, namespace), kind = coalesce($4, kind),
             tags = coalesce($5, tags), metadata = coalesce($6::jsonb, metadata), checksum = $7,
             pii_flags = $9, redacted_text = $10,
             expires_at = CASE WHEN $11 THEN $12::timestamptz ELSE expires_at END,
             status = CASE WHEN $8 THEN 'pending' ELSE status END,
             embedding = CASE WHEN $8 THEN NULL ELSE embedding END,
             embedding_dim = CASE WHEN $8 THEN NULL ELSE embedding_dim END,
             embedding_model = CASE WHEN $8 THEN NULL ELSE embedding_model END,
             embedding_model_version = CASE WHEN $8 THEN NULL ELSE embedding_model_version END,
             version = version + 1, updated_at = now()
           WHERE id = $1
           RETURNING ${MEMORY_COLUMNS}`,
          [
            id,
            newText,
            patch.namespace ?? null,
            patch.kind ?? null,
            patch.tags ? [...new Set(patch.tags)] : null,
            patch.metadata ? JSON.stringify(patch.metadata) : null,
            checksum,
            reembed,
            flags,
            redacted,
            patch.expiresAt !== undefined,
            patch.expiresAt ?? null,
          ],
        );
        if (reembed) await enqueue(tx, INDEX_QUEUE, [{ nodeId: id }], deps.maxJobAttempts);
        const after = res.rows[0];
        await deps.appendAudit(tx, [
          auditOf(access, after, 'memory.update', {
            fromVersion: row.version,
            version: after.version,
            checksum: after.checksum,
            previousChecksum: row.checksum,
            fields: Object.keys(patch).sort(),
            piiFlags: after.pii_flags,
          }),
          // The answer carries the text: as audited as a GET of it.
          ...piiReadEvents(access, [after], 'update', readMode),
        ]);
        return after;
      });
      // The old vector stays in the index until the new one replaces it (same key): search only
      // returns `indexed` memories, and removing it here could race a worker that already wrote
      // the new vector.
      if (reembed) deps.onQueued();
      return toRecord(updated, access.piiRead);
    },

    /**
     * Soft delete by default: the row stays (audit, retention), invisible to reads and search.
     * `purge` erases text, vector and index entry at once (erasure requests), also for a memory
     * already soft-deleted. Held memories refuse both with 409.
     */
    async remove(access: Access, id: string, opts: { expectedVersion?: number; purge?: boolean } = {}) {
      const spaces = await db.transaction(async (tx) => {
        const found = await findRow(tx, access, id, { lock: true, includeDeleted: opts.purge });
        if ((found as MemoryRow & { held: boolean }).held) throw legalHoldError(id);
        checkVersion(found, opts.expectedVersion);
        return deleteRows(tx, access, [found], opts.purge === true);
      });
      await removeFromSpaces(deps.index, spaces);
    },

    /**
     * Writes memories in the caller's transaction through the same steps as a batch (checks, PII
     * classification, rows, index jobs, audit events), in groups that keep each statement's
     * parameters within PostgreSQL's limit. Fields at fault are named `<prefix>[i].field`. The
     * caller wakes the worker after its commit (`notifyQueued`).
     */
    async createWithin(
      tx: Queryable,
      access: Access,
      divisionId: string,
      inputs: NewMemory[],
      prefix: string,
    ) {
      const items = inputs.map((input, i) =>
        prepareMemory(access, input, `${prefix}[${i}]`, deps.maxTextBytes),
      );
      await checkAgents(tx, divisionId, items, prefix);
      const out: MemoryRecord[] = [];
      for (let i = 0; i < items.length; i += INSERT_GROUP) {
        out.push(...(await insert(tx, access, divisionId, items.slice(i, i + INSERT_GROUP))));
      }
      return out;
    },

    /**
     * Deletes (or purges) memories in the caller's transaction, audited like single deletes; the
     * caller has checked legal holds. Returns the index entries to remove once it has committed
     * (`removeIndexEntries`).
     */
    async deleteWithin(tx: Queryable, access: Access, ids: string[], purge: boolean) {
      if (ids.length === 0) return [];
      const res = await tx.query<MemoryRow>(
        `SELECT ${MEMORY_COLUMNS} FROM memory_nodes n
         WHERE n.id = ANY($1::uuid[]) AND n.purged_at IS NULL${purge ? '' : ' AND n.deleted_at IS NULL'}
         ORDER BY n.id FOR UPDATE OF n`,
        [ids],
      );
      return deleteRows(tx, access, res.rows, purge);
    },

    removeIndexEntries: (spaces: Awaited<ReturnType<typeof spacesOf>>) =>
      removeFromSpaces(deps.index, spaces),
    notifyQueued: () => deps.onQueued(),

    async list(access: Access, q: ListQuery): Promise<{ items: MemoryRecord[]; nextCursor: string | null }> {
      await divisionTtlDays(db, q.divisionId);
      const after = q.cursor === undefined ? null : decodeCursor(q.cursor, q.divisionId);
      const params: unknown[] = [
        q.divisionId,
        after,
        q.namespace ?? null,
        q.agentId ?? null,
        q.kind ?? null,
        q.status ?? null,
        q.limit + 1,
        q.sessionId ?? null,
        q.occurredAfter ?? null,
        q.occurredBefore ?? null,
      ];
      const res = await db.query<MemoryRow>(
        `SELECT ${MEMORY_COLUMNS} FROM memory_nodes n
         WHERE n.division_id = $1 AND ${visibleSql('n')} AND ${accessSql(access, params)}
           AND ($2::bigint IS NULL OR n.vector_key < $2)
           AND ($3::text IS NULL OR n.namespace = $3)
           AND ($4::text IS NULL OR n.agent_id = $4)
           AND ($5::text IS NULL OR n.kind = $5)
           AND ($6::text IS NULL OR n.status = $6)
           AND ($8::text IS NULL OR n.session_id = $8)
           AND ($9::timestamptz IS NULL OR n.occurred_at >= $9)
           AND ($10::timestamptz IS NULL OR n.occurred_at < $10)
         ORDER BY n.vector_key DESC
         LIMIT $7`,
        params,
      );
      const rows = res.rows.slice(0, q.limit);
      const more = res.rows.length > q.limit;
      await auditReads(access, rows, {
        divisionId: q.divisionId,
        via: 'list',
        memoryIds: rows.map((r) => r.id),
      });
      return {
        items: rows.map((r) => toRecord(r, access.piiRead)),
        nextCursor: more ? encodeCursor(q.divisionId, Number(rows[rows.length - 1].vector_key)) : null,
      };
    },
  };
}
