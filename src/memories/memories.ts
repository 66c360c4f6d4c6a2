import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../adapters/db/port.js';
import { type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import { vectorToBytes } from '../adapters/vector/codec.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import type { AppendAudit, AuditEventInput } from '../audit/types.js';
import { assertAgentExists, divisionTtlDays } from '../divisions/divisions.js';
import { detectPii, findPiiInLabels, redactText } from '../governance/pii.js';
import { purgeMemories } from '../governance/retention.js';
import type { Backpressure } from '../indexing/backpressure.js';
import { removeFromSpaces, spacesOf } from '../indexing/index-maintenance.js';
import { enqueue } from '../indexing/queue.js';
import { type ModelResolver, readDivisionModel, requireModel } from '../models/active-model.js';
import { AppError, ErrorCode, type FieldError, notFound } from '../platform/errors.js';
import { type Access, accessSql, heldSql, visibleSql } from './access.js';
import { type IdempotencyKey, runIdempotent } from './idempotency.js';
import { MEMORY_COLUMNS, type MemoryRecord, type MemoryRow, toRecord } from './records.js';
import { normaliseText, textChecksum } from './text.js';

export const INDEX_QUEUE = 'index';
const DAY_MS = 86_400_000;

export interface NewMemory {
  text: string;
  agentId?: string | null;
  namespace?: string;
  kind?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  /** Flags the caller adds to the detected ones (e.g. `name`, `health`). */
  piiFlags?: string[];
  /** ISO time; null = never expires; absent = the division's (or the service's) default TTL. */
  expiresAt?: string | null;
  /** A precomputed embedding; then `model` names the model that produced it. */
  vector?: number[];
  model?: string;
}

export interface MemoryPatch {
  text?: string;
  namespace?: string;
  kind?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  piiFlags?: string[];
  expiresAt?: string | null;
}

export interface ListQuery {
  divisionId: string;
  namespace?: string;
  agentId?: string;
  kind?: string;
  status?: MemoryRecord['status'];
  limit: number;
  cursor?: string;
}

export interface MemoryServiceDeps {
  db: Database;
  index: Pick<VectorIndex, 'remove'>;
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
}

interface PreparedMemory {
  id: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  text: string;
  redactedText: string | null;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  piiFlags: string[];
  expiresAt: string | null | undefined;
  /** A precomputed vector, checked against the division's model inside the write's transaction. */
  supplied: { vector: number[]; model: string; field: (name: string) => string } | null;
  embedding: Buffer | null;
}

export type MemoryService = ReturnType<typeof createMemoryService>;

/** Detected PII plus the caller's flags; and the redacted text callers without pii:read get. */
function classify(text: string, extraFlags: string[]) {
  const flags = [...new Set([...detectPii(text).flags, ...extraFlags])].sort();
  return { flags, redacted: redactText(text, flags) };
}

function refusePiiInLabels(
  tags: string[] | undefined,
  metadata: Record<string, unknown> | undefined,
  prefix: string,
) {
  const found = findPiiInLabels(tags, metadata, prefix);
  if (found) {
    throw new AppError(
      400,
      ErrorCode.piiInLabels,
      `${found.field} holds personal data (${found.flag}); put it in the text, where it is flagged and redacted`,
      [{ field: found.field, message: `holds personal data (${found.flag})` }],
    );
  }
}

const legalHoldError = (id: string) =>
  new AppError(
    409,
    ErrorCode.legalHold,
    `memory ${id} is under legal hold: it cannot be changed, deleted or purged`,
  );

export function createMemoryService(deps: MemoryServiceDeps) {
  const { db } = deps;

  function checkText(text: string, field: string): string {
    if (normaliseText(text) === '') {
      throw new AppError(400, ErrorCode.validation, 'text must not be empty', [{ field, message: 'empty' }]);
    }
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > deps.maxTextBytes) {
      throw new AppError(
        413,
        ErrorCode.textTooLarge,
        `text is ${bytes} bytes; the limit is ${deps.maxTextBytes}`,
        [{ field, message: `at most ${deps.maxTextBytes} bytes` }],
      );
    }
    return text;
  }

  function suppliedVector(input: NewMemory, field: (name: string) => string): PreparedMemory['supplied'] {
    if (input.vector === undefined && input.model === undefined) return null;
    const errors: FieldError[] = [];
    if (input.vector === undefined)
      errors.push({ field: field('vector'), message: 'required when model is given' });
    if (input.model === undefined)
      errors.push({ field: field('model'), message: 'required when vector is given' });
    if (errors.length > 0)
      throw new AppError(400, ErrorCode.validation, 'vector and model go together', errors);
    return { vector: input.vector as number[], model: input.model as string, field };
  }

  /** A precomputed vector must come from the division's active model (checked under its lock). */
  function checkVector(supplied: NonNullable<PreparedMemory['supplied']>, model: EmbeddingModel): Buffer {
    const { field } = supplied;
    const [name, version] = supplied.model.split('@');
    if (name !== model.name || (version !== undefined && version !== model.version)) {
      throw new AppError(
        422,
        ErrorCode.unknownModel,
        `vectors for this division must come from its model ${modelKey(model)}`,
        [{ field: field('model'), message: `expected ${model.name} or ${modelKey(model)}` }],
      );
    }
    const vector = supplied.vector;
    if (vector.length !== model.dimensions) {
      throw new AppError(
        422,
        ErrorCode.vectorDimensionMismatch,
        `${model.name} vectors have ${model.dimensions} dimensions, got ${vector.length}`,
        [{ field: field('vector'), message: `expected ${model.dimensions} numbers` }],
      );
    }
    return vectorToBytes(Float32Array.from(vector));
  }

  function prepare(access: Access, input: NewMemory, prefix: string): PreparedMemory {
    const field = (name: string) => (prefix ? `${prefix}.${name}` : name);
    const text = checkText(input.text, field('text'));
    if (access.agentId !== undefined && input.agentId != null && input.agentId !== access.agentId) {
      throw new AppError(403, ErrorCode.forbidden, 'an agent token writes only its own memories', [
        { field: field('agentId'), message: `must be ${access.agentId} or absent` },
      ]);
    }
    refusePiiInLabels(input.tags, input.metadata, prefix);
    const { flags, redacted } = classify(text, input.piiFlags ?? []);
    return {
      id: randomUUID(),
      agentId: access.agentId ?? input.agentId ?? null,
      namespace: input.namespace ?? 'default',
      kind: input.kind ?? 'note',
      text,
      redactedText: redacted,
      checksum: textChecksum(text),
      tags: [...new Set(input.tags ?? [])],
      metadata: input.metadata ?? {},
      piiFlags: flags,
      expiresAt: input.expiresAt,
      supplied: suppliedVector(input, field),
      embedding: null,
    };
  }

  async function insert(tx: Queryable, access: Access, divisionId: string, items: PreparedMemory[]) {
    // Locked so that a re-embedding cannot switch the division's model before this commits.
    const division = await readDivisionModel(tx, divisionId, { lock: true });
    const model = items.some((m) => m.supplied)
      ? requireModel(deps.resolveModel, division.ref, divisionId)
      : undefined;
    for (const m of items) if (m.supplied && model) m.embedding = checkVector(m.supplied, model);
    const ttlDays = division.defaultTtlDays ?? deps.defaultTtlDays;
    const defaultExpiry = ttlDays === 0 ? null : new Date(Date.now() + ttlDays * DAY_MS).toISOString();
    const cols = 17;
    const params: unknown[] = [];
    const values = items.map((m, i) => {
      params.push(
        m.id,
        divisionId,
        m.agentId,
        m.namespace,
        m.kind,
        m.text,
        m.checksum,
        m.tags,
        JSON.stringify(m.metadata),
        m.embedding && model ? model.name : null,
        m.embedding && model ? model.version : null,
        m.embedding && model ? model.dimensions : null,
        m.embedding,
        'pending',
        m.piiFlags,
        m.redactedText,
        m.expiresAt === undefined ? defaultExpiry : m.expiresAt,
      );
      const p = Array.from({ length: cols }, (_, j) => `$${i * cols + j + 1}`);
      p[8] = `${p[8]}::jsonb`;
      p[16] = `${p[16]}::timestamptz`;
      return `(${p.join(', ')})`;
    });
    const res = await tx.query<MemoryRow>(
      `INSERT INTO memory_nodes (id, division_id, agent_id, namespace, kind, text, checksum, tags, metadata,
         embedding_model, embedding_model_version, embedding_dim, embedding, status, pii_flags, redacted_text, expires_at)
       VALUES ${values.join(', ')}
       RETURNING ${MEMORY_COLUMNS}`,
      params,
    );
    await enqueue(
      tx,
      INDEX_QUEUE,
      items.map((m) => ({ nodeId: m.id })),
      deps.maxJobAttempts,
    );
    const byId = new Map(res.rows.map((r) => [r.id, r]));
    const rows = items.map((m) => byId.get(m.id) as MemoryRow);
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
        }),
      ),
    );
    return rows.map((r) => toRecord(r, access.piiRead));
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
      throw new AppError(
        412,
        ErrorCode.versionMismatch,
        `memory is at version ${row.version}, not ${expected}`,
        [{ field: 'If-Match', message: `current version is ${row.version}` }],
      );
    }
  }

  /** Reading personal data is itself audited. */
  async function auditPiiReads(access: Access, rows: MemoryRow[], via: string) {
    const events = piiReadEvents(access, rows, via);
    if (events.length > 0) await db.transaction((tx) => deps.appendAudit(tx, events));
  }

  return {
    auditPiiReads,

    async create(
      access: Access,
      divisionId: string,
      input: NewMemory,
      opts: { idempotency?: IdempotencyKey } = {},
    ) {
      const item = prepare(access, input, '');
      await admit(1, opts.idempotency);
      const { result, replayed } = await idempotentWrite(opts.idempotency, async (tx) => {
        await checkAgents(tx, divisionId, [item], '');
        const [memory] = await insert(tx, access, divisionId, [item]);
        return memory;
      });
      return { memory: result, replayed };
    },

    /** All or nothing: one invalid item refuses the whole batch and writes nothing. */
    async createBatch(
      access: Access,
      divisionId: string,
      inputs: NewMemory[],
      opts: { idempotency?: IdempotencyKey } = {},
    ) {
      const items = inputs.map((input, i) => prepare(access, input, `items[${i}]`));
      await admit(items.length, opts.idempotency);
      const { result, replayed } = await idempotentWrite(opts.idempotency, async (tx) => {
        await checkAgents(tx, divisionId, items, 'items');
        return insert(tx, access, divisionId, items);
      });
      return { memories: result, replayed };
    },

    async get(access: Access, id: string): Promise<MemoryRecord> {
      const row = await findRow(db, access, id);
      await auditPiiReads(access, [row], 'get');
      return toRecord(row, access.piiRead);
    },

    async update(access: Access, id: string, patch: MemoryPatch, opts: { expectedVersion?: number } = {}) {
      const text = patch.text === undefined ? undefined : checkText(patch.text, 'text');
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
          ...piiReadEvents(access, [after], 'update'),
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
        // Read before a purge erases the vectors: every space that may hold this memory.
        const spaces = await spacesOf(tx, deps.resolveModel, [id]);
        if (opts.purge) {
          await purgeMemories(tx, [id]);
        } else {
          await tx.query('UPDATE memory_nodes SET deleted_at = now(), updated_at = now() WHERE id = $1', [
            id,
          ]);
        }
        await deps.appendAudit(tx, [
          auditOf(access, found, opts.purge ? 'memory.purge' : 'memory.delete', {
            checksum: found.checksum,
            version: found.version,
          }),
        ]);
        return spaces;
      });
      await removeFromSpaces(deps.index, spaces);
    },

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
      ];
      const res = await db.query<MemoryRow>(
        `SELECT ${MEMORY_COLUMNS} FROM memory_nodes n
         WHERE n.division_id = $1 AND ${visibleSql('n')} AND ${accessSql(access, params)}
           AND ($2::bigint IS NULL OR n.vector_key < $2)
           AND ($3::text IS NULL OR n.namespace = $3)
           AND ($4::text IS NULL OR n.agent_id = $4)
           AND ($5::text IS NULL OR n.kind = $5)
           AND ($6::text IS NULL OR n.status = $6)
         ORDER BY n.vector_key DESC
         LIMIT $7`,
        params,
      );
      const rows = res.rows.slice(0, q.limit);
      const more = res.rows.length > q.limit;
      await auditPiiReads(access, rows, 'list');
      return {
        items: rows.map((r) => toRecord(r, access.piiRead)),
        nextCursor: more ? encodeCursor(q.divisionId, Number(rows[rows.length - 1].vector_key)) : null,
      };
    },
  };
}

/** `pii.read` events for the rows carrying PII flags that `access` gets unredacted. */
export function piiReadEvents(access: Access, rows: MemoryRow[], via: string): AuditEventInput[] {
  if (!access.piiRead) return [];
  return rows
    .filter((r) => r.pii_flags.length > 0)
    .map((r) => auditOf(access, r, 'pii.read', { via, piiFlags: r.pii_flags, version: r.version }));
}

/**
 * The flags a caller sets (beyond those detected in the text) after a patch. Without `pii:read`,
 * a caller sees the redacted text only, so it may add flags but never drop one: dropping
 * `health` from a memory would unmask a text it was not allowed to read. Flags detected in the old
 * text are derived, not kept: the new text's detection decides them.
 */
function callerFlagsAfter(access: Access, row: MemoryRow, requested: string[] | undefined): string[] {
  const detected = new Set(detectPii(row.text).flags);
  const callerSet = row.pii_flags.filter((f) => !detected.has(f));
  if (requested === undefined) return callerSet;
  if (!access.piiRead) {
    const dropped = callerSet.filter((f) => !requested.includes(f));
    if (dropped.length > 0) {
      throw new AppError(
        403,
        ErrorCode.forbidden,
        `removing PII flags (${dropped.join(', ')}) needs the pii:read scope`,
        [
          {
            field: 'piiFlags',
            message: `keep ${dropped.join(', ')}; only callers with pii:read may remove flags`,
          },
        ],
      );
    }
  }
  return requested;
}

export function auditOf(access: Access, r: MemoryRow, action: string, change: unknown): AuditEventInput {
  return {
    divisionId: r.division_id,
    actor: access.actor,
    action,
    resourceType: 'memory',
    resourceId: r.id,
    manifestSignatureId: access.manifestSignatureId,
    change,
  };
}

/** Cursors are opaque to callers and bound to the division they were issued for. */
function encodeCursor(divisionId: string, key: number): string {
  return Buffer.from(JSON.stringify({ d: divisionId, k: key })).toString('base64url');
}

function decodeCursor(cursor: string, divisionId: string): number {
  const invalid = new AppError(400, ErrorCode.invalidCursor, 'cursor is not valid for this listing', [
    { field: 'cursor', message: 'use the nextCursor of a previous page' },
  ]);
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
      d?: unknown;
      k?: unknown;
    };
    if (parsed.d !== divisionId || typeof parsed.k !== 'number' || !Number.isSafeInteger(parsed.k))
      throw invalid;
    return parsed.k;
  } catch {
    throw invalid;
  }
}
