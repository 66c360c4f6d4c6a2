import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';
import { vectorToBytes } from '../adapters/vector/codec.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import { AppError, ErrorCode, type FieldError, notFound } from '../internal/errors.js';
import { enqueue } from '../internal/queue/jobs.js';
import { assertAgentExists, assertDivisionExists } from './divisions.js';
import { type IdempotencyKey, runIdempotent } from './idempotency.js';
import { MEMORY_COLUMNS, type MemoryRecord, type MemoryRow, toRecord } from './records.js';
import { normaliseText, textChecksum } from './text.js';

export const INDEX_QUEUE = 'index';

export interface NewMemory {
  text: string;
  agentId?: string | null;
  namespace?: string;
  kind?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
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
}

/** Restricts an operation to one division (callers never see another division's memories). */
export interface Scope {
  divisionId?: string;
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
  /** The model whose vectors the index serves; precomputed vectors must match it. */
  model: EmbeddingModel;
  maxTextBytes: number;
  maxJobAttempts: number;
  /** Called after a commit that queued work, to wake an in-process worker. */
  onQueued: () => void;
}

interface PreparedMemory {
  id: string;
  divisionId: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  text: string;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  embedding: Buffer | null;
}

export type MemoryService = ReturnType<typeof createMemoryService>;

export function createMemoryService(deps: MemoryServiceDeps) {
  const { db, model } = deps;

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

  function checkVector(input: NewMemory, field: (name: string) => string): Buffer | null {
    if (input.vector === undefined && input.model === undefined) return null;
    const errors: FieldError[] = [];
    if (input.vector === undefined)
      errors.push({ field: field('vector'), message: 'required when model is given' });
    if (input.model === undefined)
      errors.push({ field: field('model'), message: 'required when vector is given' });
    if (errors.length > 0)
      throw new AppError(400, ErrorCode.validation, 'vector and model go together', errors);
    const [name, version] = (input.model as string).split('@');
    if (name !== model.name || (version !== undefined && version !== model.version)) {
      throw new AppError(
        422,
        ErrorCode.unknownModel,
        `vectors must come from the configured model ${model.name}@${model.version}`,
        [{ field: field('model'), message: `expected ${model.name} or ${model.name}@${model.version}` }],
      );
    }
    const vector = input.vector as number[];
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

  function prepare(divisionId: string, input: NewMemory, prefix: string): PreparedMemory {
    const field = (name: string) => (prefix ? `${prefix}.${name}` : name);
    const text = checkText(input.text, field('text'));
    return {
      id: randomUUID(),
      divisionId,
      agentId: input.agentId ?? null,
      namespace: input.namespace ?? 'default',
      kind: input.kind ?? 'note',
      text,
      checksum: textChecksum(text),
      tags: [...new Set(input.tags ?? [])],
      metadata: input.metadata ?? {},
      embedding: checkVector(input, field),
    };
  }

  async function insert(tx: Queryable, items: PreparedMemory[]): Promise<MemoryRecord[]> {
    const cols = 14;
    const params: unknown[] = [];
    const values = items.map((m, i) => {
      params.push(
        m.id,
        m.divisionId,
        m.agentId,
        m.namespace,
        m.kind,
        m.text,
        m.checksum,
        m.tags,
        JSON.stringify(m.metadata),
        m.embedding ? model.name : null,
        m.embedding ? model.version : null,
        m.embedding ? model.dimensions : null,
        m.embedding,
        'pending',
      );
      const p = Array.from({ length: cols }, (_, j) => `$${i * cols + j + 1}`);
      p[8] = `${p[8]}::jsonb`;
      return `(${p.join(', ')})`;
    });
    const res = await tx.query<MemoryRow>(
      `INSERT INTO memory_nodes (id, division_id, agent_id, namespace, kind, text, checksum, tags, metadata,
         embedding_model, embedding_model_version, embedding_dim, embedding, status)
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
    const byId = new Map(res.rows.map((r) => [r.id, toRecord(r)]));
    return items.map((m) => byId.get(m.id) as MemoryRecord);
  }

  async function checkOwners(tx: Queryable, divisionId: string, items: PreparedMemory[], prefix: string) {
    await assertDivisionExists(tx, divisionId);
    const agents = [...new Set(items.map((m) => m.agentId).filter((a): a is string => a !== null))];
    for (const agentId of agents) {
      const at = items.findIndex((m) => m.agentId === agentId);
      await assertAgentExists(tx, divisionId, agentId, prefix ? `${prefix}[${at}].agentId` : 'agentId');
    }
  }

  async function idempotentWrite<T>(key: IdempotencyKey | undefined, work: (tx: Queryable) => Promise<T>) {
    const out = await runIdempotent(db, key, work);
    if (!out.replayed) deps.onQueued();
    return out;
  }

  async function findRow(q: Queryable, id: string, scope: Scope, lock = false): Promise<MemoryRow> {
    const res = await q.query<MemoryRow>(
      `SELECT ${MEMORY_COLUMNS} FROM memory_nodes
       WHERE id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR division_id = $2)${lock ? ' FOR UPDATE' : ''}`,
      [id, scope.divisionId ?? null],
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

  return {
    async create(divisionId: string, input: NewMemory, opts: { idempotency?: IdempotencyKey } = {}) {
      const item = prepare(divisionId, input, '');
      const { result, replayed } = await idempotentWrite(opts.idempotency, async (tx) => {
        await checkOwners(tx, divisionId, [item], '');
        const [memory] = await insert(tx, [item]);
        return memory;
      });
      return { memory: result, replayed };
    },

    /** All or nothing: one invalid item refuses the whole batch and writes nothing. */
    async createBatch(divisionId: string, inputs: NewMemory[], opts: { idempotency?: IdempotencyKey } = {}) {
      const items = inputs.map((input, i) => prepare(divisionId, input, `items[${i}]`));
      const { result, replayed } = await idempotentWrite(opts.idempotency, async (tx) => {
        await checkOwners(tx, divisionId, items, 'items');
        return insert(tx, items);
      });
      return { memories: result, replayed };
    },

    async get(id: string, scope: Scope = {}): Promise<MemoryRecord> {
      return toRecord(await findRow(db, id, scope));
    },

    async update(id: string, patch: MemoryPatch, opts: { expectedVersion?: number; scope?: Scope } = {}) {
      const text = patch.text === undefined ? undefined : checkText(patch.text, 'text');
      let reembed = false;
      const updated = await db.transaction(async (tx) => {
        const row = await findRow(tx, id, opts.scope ?? {}, true);
        checkVersion(row, opts.expectedVersion);
        const checksum = text === undefined ? row.checksum : textChecksum(text);
        reembed = checksum !== row.checksum;
        const res = await tx.query<MemoryRow>(
          `UPDATE memory_nodes SET
             text = coalesce($2, text), namespace = coalesce($3, namespace), kind = coalesce($4, kind),
             tags = coalesce($5, tags), metadata = coalesce($6::jsonb, metadata), checksum = $7,
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
            text ?? null,
            patch.namespace ?? null,
            patch.kind ?? null,
            patch.tags ? [...new Set(patch.tags)] : null,
            patch.metadata ? JSON.stringify(patch.metadata) : null,
            checksum,
            reembed,
          ],
        );
        if (reembed) await enqueue(tx, INDEX_QUEUE, [{ nodeId: id }], deps.maxJobAttempts);
        return res.rows[0];
      });
      if (reembed) {
        // The old vector no longer describes the text; a stale entry would only be filtered out.
        await deps.index.remove(model, [updated.vector_key]).catch(() => undefined);
        deps.onQueued();
      }
      return toRecord(updated);
    },

    /** Soft delete: the row stays (for audit and retention), invisible to reads and search. */
    async remove(id: string, opts: { expectedVersion?: number; scope?: Scope } = {}): Promise<void> {
      const row = await db.transaction(async (tx) => {
        const found = await findRow(tx, id, opts.scope ?? {}, true);
        checkVersion(found, opts.expectedVersion);
        await tx.query('UPDATE memory_nodes SET deleted_at = now(), updated_at = now() WHERE id = $1', [id]);
        return found;
      });
      await deps.index.remove(model, [row.vector_key]).catch(() => undefined);
    },

    async list(q: ListQuery): Promise<{ items: MemoryRecord[]; nextCursor: string | null }> {
      await assertDivisionExists(db, q.divisionId);
      const after = q.cursor === undefined ? null : decodeCursor(q.cursor, q.divisionId);
      const res = await db.query<MemoryRow>(
        `SELECT ${MEMORY_COLUMNS} FROM memory_nodes
         WHERE division_id = $1 AND deleted_at IS NULL
           AND ($2::bigint IS NULL OR vector_key < $2)
           AND ($3::text IS NULL OR namespace = $3)
           AND ($4::text IS NULL OR agent_id = $4)
           AND ($5::text IS NULL OR kind = $5)
           AND ($6::text IS NULL OR status = $6)
         ORDER BY vector_key DESC
         LIMIT $7`,
        [
          q.divisionId,
          after,
          q.namespace ?? null,
          q.agentId ?? null,
          q.kind ?? null,
          q.status ?? null,
          q.limit + 1,
        ],
      );
      const rows = res.rows.slice(0, q.limit);
      const more = res.rows.length > q.limit;
      return {
        items: rows.map(toRecord),
        nextCursor: more ? encodeCursor(q.divisionId, rows[rows.length - 1].vector_key) : null,
      };
    },
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
