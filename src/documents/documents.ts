import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Database, Queryable } from '../adapters/db/port.js';
import type { ArtifactRecord, ArtifactService, StoredObject } from '../artifacts/artifacts.js';
import type { AppendAudit } from '../audit/types.js';
import { assertAgentExists, assertDivisionExists } from '../divisions/divisions.js';
import type { Backpressure } from '../indexing/backpressure.js';
import { enqueue } from '../indexing/queue.js';
import { type Access, accessSql } from '../memories/access.js';
import { decodeCursor, encodeCursor } from '../memories/cursor.js';
import {
  claimIdempotencyKey,
  type IdempotencyKey,
  priorAnswer,
  storeIdempotentResponse,
} from '../memories/idempotency.js';
import type { MemoryService } from '../memories/memories.js';
import { AppError, ErrorCode, notFound } from '../platform/errors.js';
import { type ChunkOptions, splitDocument } from './chunking.js';
import { type DocumentType, decodeDocument, refusePiiInDocumentLabels } from './input.js';
import { DOCUMENT_COLUMNS, type DocumentRecord, type DocumentRow, toDocument } from './records.js';

/** Thrown inside an upload's transaction when a retry finds its key taken: the upload rolls back. */
class ReplayedUpload extends Error {}

/** A new document as created (no chunks yet). */
const recordOf = (row: DocumentRow): DocumentRecord =>
  toDocument({ ...row, chunk_count: 0, chunks_indexed: 0, chunks_failed: 0 });

/** Chunks per transaction of a split: bounds how long one holds the database. */
const SPLIT_BATCH = 200;

/** The queue of split jobs: `{documentId, version}`. */
export const DOCUMENT_QUEUE = 'document';

export interface NewDocument {
  contentType: DocumentType;
  /** The document, checked (decodeDocument). */
  text: string;
  title?: string;
  /** Default: the document's id. */
  sessionId?: string;
  occurredAt?: string;
  namespace?: string;
  kind?: string;
  agentId?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
}

/** What a replacement brings: a new body, and optionally a new title. */
export type DocumentReplacement = Pick<NewDocument, 'contentType' | 'text' | 'title'>;

export interface DocumentServiceDeps {
  db: Database;
  artifacts: Pick<ArtifactService, 'upload' | 'open' | 'deleteWithin' | 'deleteObjects'>;
  memories: Pick<MemoryService, 'createWithin' | 'deleteWithin' | 'removeIndexEntries' | 'notifyQueued'>;
  appendAudit: AppendAudit;
  backpressure?: Pick<Backpressure, 'check'>;
  chunking: Omit<ChunkOptions, 'markdown' | 'title'>;
  maxJobAttempts: number;
  /** Chunks written per transaction by the split job (default SPLIT_BATCH). */
  splitBatch?: number;
  /** Called after a commit that queued a split job (wakes an in-process worker). */
  onQueued: () => void;
}

export type DocumentService = ReturnType<typeof createDocumentService>;

const legalHold = (id: string) =>
  new AppError(
    ErrorCode.legalHold,
    `document ${id} is under legal hold (one of its chunks, its agent or its division): it cannot be replaced, deleted or purged`,
  );

/** SQL: a legal hold covers the document: one of its chunks, or its division or agent. */
const HELD_SQL = `(EXISTS (SELECT 1 FROM document_chunks c JOIN memory_nodes m ON m.id = c.memory_id
    WHERE c.document_id = d.id AND m.legal_hold)
  OR EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL AND h.division_id = d.division_id
    AND (h.agent_id IS NULL OR h.agent_id = d.agent_id)))`;

/**
 * Documents: a text or Markdown file uploaded once, kept as an artifact (its original), and split
 * by a worker job (`splitJob`) into memories of one session — one per chunk, in order — written
 * through the memory service like any batch (PII detection, index jobs, audit events). Replacing a
 * document deletes its chunks and splits the new version; deleting it deletes its chunks and its
 * original. Both are refused under a legal hold.
 */
export function createDocumentService(deps: DocumentServiceDeps) {
  const { db, appendAudit } = deps;

  const audit = (
    tx: Queryable,
    access: Access,
    doc: { id: string; division_id: string },
    action: string,
    change: unknown,
  ) =>
    appendAudit(tx, [
      {
        divisionId: doc.division_id,
        actor: access.actor,
        action,
        resourceType: 'document',
        resourceId: doc.id,
        manifestSignatureId: access.manifestSignatureId,
        change,
      },
    ]);

  /** A document the caller may see (404 otherwise: the same answer as for no document). */
  async function find(
    q: Queryable,
    access: Access,
    id: string,
    opts: { lock?: boolean; includeDeleted?: boolean } = {},
  ): Promise<DocumentRow & { held: boolean }> {
    const params: unknown[] = [id];
    const live = opts.includeDeleted ? 'd.purged_at IS NULL' : 'd.deleted_at IS NULL';
    const res = await q.query<DocumentRow & { held: boolean }>(
      `SELECT ${DOCUMENT_COLUMNS}, ${HELD_SQL} AS held FROM documents d
       WHERE d.id = $1 AND ${live} AND ${accessSql(access, params, 'd')}${opts.lock ? ' FOR UPDATE OF d' : ''}`,
      params,
    );
    const row = res.rows[0];
    if (!row) throw notFound(ErrorCode.notFound, `no document ${id}`);
    return row;
  }

  const chunkIdsOf = async (q: Queryable, documentId: string) =>
    (
      await q.query<{ memory_id: string }>(
        'SELECT memory_id FROM document_chunks WHERE document_id = $1 ORDER BY position',
        [documentId],
      )
    ).rows.map((r) => r.memory_id);

  /** Refuses, before anything is stored, a split that would overfill the indexing queue (503). */
  async function admit(bytes: number) {
    const refusal = await deps.backpressure?.check(Math.ceil(bytes / deps.chunking.maxChars) + 1);
    if (refusal) throw refusal;
  }

  const upload = (
    access: Access,
    divisionId: string,
    input: Pick<NewDocument, 'text' | 'contentType'>,
    within: (tx: Queryable, a: ArtifactRecord) => Promise<void>,
  ) => {
    const bytes = Buffer.from(input.text, 'utf8');
    return deps.artifacts.upload(access, divisionId, Readable.from([bytes]), {
      contentType: `${input.contentType}; charset=utf-8`,
      contentLength: bytes.length,
      within,
    });
  };

  /** The document, its progress and (unless asked not to) its chunks in order. */
  async function get(access: Access, id: string, opts: { chunks?: boolean } = {}): Promise<DocumentRecord> {
    const row = await find(db, access, id);
    const doc = toDocument(row);
    if (opts.chunks === false) return doc;
    const res = await db.query<{ position: number; memory_id: string; status: string }>(
      `SELECT c.position, c.memory_id, m.status FROM document_chunks c JOIN memory_nodes m ON m.id = c.memory_id
       WHERE c.document_id = $1 ORDER BY c.position`,
      [id],
    );
    return {
      ...doc,
      chunks: res.rows.map((r) => ({ position: r.position, memoryId: r.memory_id, status: r.status })),
    };
  }

  return {
    /**
     * Checks everything that can be checked first (type, UTF-8, labels, division, agent, queue
     * room), so a refused document stores nothing; then stores the original, the document row, its
     * split job and `document.create` in the artifact's transaction.
     */
    async create(
      access: Access,
      divisionId: string,
      input: NewDocument,
      opts: { idempotency?: IdempotencyKey } = {},
    ): Promise<{ document: DocumentRecord; replayed: boolean }> {
      // A retry of a stored upload gets the first answer before anything is uploaded again.
      if (opts.idempotency) {
        const prior = await priorAnswer<DocumentRecord>(db, opts.idempotency);
        if (prior) return { document: prior, replayed: true };
      }
      decodeDocument(input.text);
      refusePiiInDocumentLabels(input.title, input.tags, input.metadata);
      if (access.agentId !== undefined && input.agentId !== undefined && input.agentId !== access.agentId) {
        throw new AppError(ErrorCode.forbidden, 'an agent token writes only its own documents', [
          { field: 'agentId', message: `must be ${access.agentId} or absent` },
        ]);
      }
      const agentId = access.agentId ?? input.agentId ?? null;
      await assertDivisionExists(db, divisionId);
      if (agentId !== null) await assertAgentExists(db, divisionId, agentId, 'agentId');
      await admit(Buffer.byteLength(input.text, 'utf8'));
      const id = randomUUID();
      let created: DocumentRow | undefined;
      let replayed: DocumentRecord | undefined;
      await upload(access, divisionId, input, async (tx, artifact) => {
        if (opts.idempotency) {
          // A concurrent retry committed first: leave, so that the upload removes its object.
          const prior = await claimIdempotencyKey<DocumentRecord>(tx, opts.idempotency);
          if (prior) {
            replayed = prior.response;
            throw new ReplayedUpload();
          }
        }
        const res = await tx.query<DocumentRow>(
          `INSERT INTO documents (id, division_id, agent_id, namespace, kind, title, content_type, session_id,
             occurred_at, tags, metadata, artifact_id, size, sha256, created_by, updated_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz, $10, $11::jsonb, $12, $13, $14, $15, $15)
           RETURNING *`,
          [
            id,
            divisionId,
            agentId,
            input.namespace ?? 'default',
            input.kind ?? 'document',
            input.title ?? null,
            input.contentType,
            input.sessionId ?? id,
            input.occurredAt ?? null,
            [...new Set(input.tags ?? [])],
            JSON.stringify(input.metadata ?? {}),
            artifact.id,
            artifact.size,
            artifact.sha256,
            access.actor,
          ],
        );
        created = res.rows[0];
        await enqueue(tx, DOCUMENT_QUEUE, [{ documentId: id, version: 1 }], deps.maxJobAttempts);
        await audit(tx, access, created, 'document.create', {
          version: 1,
          artifactId: artifact.id,
          sha256: artifact.sha256,
          size: artifact.size,
          contentType: input.contentType,
          sessionId: created.session_id,
        });
        if (opts.idempotency) await storeIdempotentResponse(tx, opts.idempotency, recordOf(created));
      }).catch((err: unknown) => {
        if (!(err instanceof ReplayedUpload)) throw err;
      });
      if (replayed) return { document: replayed, replayed: true };
      deps.onQueued();
      return { document: recordOf(created as DocumentRow), replayed: false };
    },

    /**
     * A new version: the new original is stored, the old chunks and original deleted, and the new
     * version split, in one transaction with `document.replace`. Refused (409) under a legal hold.
     */
    async replace(access: Access, id: string, input: DocumentReplacement): Promise<DocumentRecord> {
      decodeDocument(input.text);
      refusePiiInDocumentLabels(input.title, undefined, undefined);
      // Refused before the upload when the answer is already known.
      const before = await find(db, access, id);
      if (before.held) throw legalHold(id);
      await admit(Buffer.byteLength(input.text, 'utf8'));
      let spaces: Awaited<ReturnType<MemoryService['deleteWithin']>> = [];
      let oldObjects: StoredObject[] = [];
      await upload(access, before.division_id, input, async (tx, artifact) => {
        const doc = await find(tx, access, id, { lock: true });
        if (doc.held) throw legalHold(id);
        const chunkIds = await chunkIdsOf(tx, id);
        spaces = await deps.memories.deleteWithin(tx, access, chunkIds, false);
        await tx.query('DELETE FROM document_chunks WHERE document_id = $1', [id]);
        oldObjects = doc.artifact_id ? await deps.artifacts.deleteWithin(tx, [doc.artifact_id]) : [];
        await tx.query(
          `UPDATE documents SET artifact_id = $2, version = version + 1, status = 'pending', error = NULL,
             size = $3, sha256 = $4, content_type = $5, title = coalesce($6, title), updated_by = $7,
             updated_at = now()
           WHERE id = $1`,
          [
            id,
            artifact.id,
            artifact.size,
            artifact.sha256,
            input.contentType,
            input.title ?? null,
            access.actor,
          ],
        );
        await enqueue(
          tx,
          DOCUMENT_QUEUE,
          [{ documentId: id, version: doc.version + 1 }],
          deps.maxJobAttempts,
        );
        await audit(tx, access, doc, 'document.replace', {
          fromVersion: doc.version,
          version: doc.version + 1,
          artifactId: artifact.id,
          previousArtifactId: doc.artifact_id,
          sha256: artifact.sha256,
          size: artifact.size,
          chunksDeleted: chunkIds.length,
        });
      });
      await deps.memories.removeIndexEntries(spaces);
      await deps.artifacts.deleteObjects(oldObjects);
      deps.onQueued();
      return get(access, id, { chunks: false });
    },

    get,

    /** A division's documents, newest first, `limit` at a time. */
    async list(access: Access, q: { divisionId: string; limit: number; cursor?: string }) {
      const after = q.cursor === undefined ? null : decodeCursor(q.cursor, q.divisionId);
      const params: unknown[] = [q.divisionId, after, q.limit + 1];
      const res = await db.query<DocumentRow>(
        `SELECT ${DOCUMENT_COLUMNS} FROM documents d
         WHERE d.division_id = $1 AND d.deleted_at IS NULL AND ${accessSql(access, params, 'd')}
           AND ($2::bigint IS NULL OR d.seq < $2)
         ORDER BY d.seq DESC LIMIT $3`,
        params,
      );
      const rows = res.rows.slice(0, q.limit);
      return {
        items: rows.map(toDocument),
        nextCursor:
          res.rows.length > q.limit ? encodeCursor(q.divisionId, Number(rows[rows.length - 1].seq)) : null,
      };
    },

    /**
     * Deletes the document, its chunks (soft-deleted like memories, or purged with `purge`) and
     * its original, with `document.delete` (or `document.purge`). Refused (409) under a legal hold.
     */
    async remove(access: Access, id: string, opts: { purge?: boolean } = {}) {
      const purge = opts.purge === true;
      const { spaces, objects } = await db.transaction(async (tx) => {
        const doc = await find(tx, access, id, { lock: true, includeDeleted: purge });
        if (doc.held) throw legalHold(id);
        const chunkIds = await chunkIdsOf(tx, id);
        const spaces = await deps.memories.deleteWithin(tx, access, chunkIds, purge);
        const objects = doc.artifact_id ? await deps.artifacts.deleteWithin(tx, [doc.artifact_id]) : [];
        await tx.query(
          `UPDATE documents SET deleted_at = coalesce(deleted_at, now()), artifact_id = NULL, updated_at = now()
             ${purge ? `, purged_at = now(), title = NULL, tags = '{}', metadata = '{}'` : ''}
           WHERE id = $1`,
          [id],
        );
        await audit(tx, access, doc, purge ? 'document.purge' : 'document.delete', {
          version: doc.version,
          artifactId: doc.artifact_id,
          sha256: doc.sha256,
          chunks: chunkIds.length,
        });
        return { spaces, objects };
      });
      await deps.memories.removeIndexEntries(spaces);
      await deps.artifacts.deleteObjects(objects);
    },

    /**
     * The split job: reads the original of `version`, splits it, and writes the chunks
     * `SPLIT_BATCH` at a time, each batch in one transaction with its order (`document_chunks`) and
     * links to the original; the last one also sets `split` and appends `document.split`. Each
     * batch locks the document and continues from the chunks already written, so the job is
     * idempotent and resumable: a job run again after its lease lapsed (or twice at once) writes
     * no chunk twice, and a version replaced or deleted meanwhile stops it. Between batches the
     * chunks written are already being indexed, and other work (on PGlite: every request) gets the
     * database.
     */
    async splitJob(documentId: string, version: number): Promise<{ chunks: number } | null> {
      const claimed = await db.query<DocumentRow>(
        `UPDATE documents SET status = 'splitting', error = NULL, updated_at = now()
         WHERE id = $1 AND version = $2 AND deleted_at IS NULL AND status <> 'split' RETURNING *`,
        [documentId, version],
      );
      const doc = claimed.rows[0];
      if (!doc?.artifact_id) return null;
      const artifactId = doc.artifact_id;
      const system: Access = { divisions: [doc.division_id], actor: doc.updated_by, piiRead: true };
      const { body } = await deps.artifacts.open(system, artifactId, { audit: false });
      const parts: Buffer[] = [];
      for await (const part of body) parts.push(Buffer.from(part as Uint8Array));
      const chunks = splitDocument(Buffer.concat(parts).toString('utf8'), {
        ...deps.chunking,
        markdown: doc.content_type === 'text/markdown',
        title: doc.title ?? undefined,
      });
      const batch = deps.splitBatch ?? SPLIT_BATCH;
      for (;;) {
        const step = await db.transaction(async (tx) => {
          const locked = await tx.query<{ status: string }>(
            'SELECT status FROM documents WHERE id = $1 AND version = $2 AND deleted_at IS NULL FOR UPDATE',
            [documentId, version],
          );
          if (locked.rows[0]?.status !== 'splitting') return 'stopped' as const;
          const written = await tx.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM document_chunks WHERE document_id = $1',
            [documentId],
          );
          const from = Number(written.rows[0].n);
          const next = chunks.slice(from, from + batch);
          const memories = await deps.memories.createWithin(
            tx,
            system,
            doc.division_id,
            next.map((c, i) => ({
              text: c.text,
              agentId: doc.agent_id,
              namespace: doc.namespace,
              kind: doc.kind,
              tags: doc.tags,
              metadata: {
                ...doc.metadata,
                document: { id: documentId, version, chunk: from + i, chunks: chunks.length },
              },
              sessionId: doc.session_id,
              sequence: from + i,
              ...(doc.occurred_at ? { occurredAt: new Date(doc.occurred_at).toISOString() } : {}),
            })),
            'chunks',
          );
          const ids = memories.map((m) => m.id);
          await tx.query(
            `INSERT INTO document_chunks (document_id, position, memory_id, division_id)
             SELECT $1, $4 + p - 1, m, $3 FROM unnest($2::uuid[]) WITH ORDINALITY AS t(m, p)`,
            [documentId, ids, doc.division_id, from],
          );
          await tx.query(
            `INSERT INTO memory_artifacts (memory_id, artifact_id, division_id, created_by)
             SELECT m, $2, $3, $4 FROM unnest($1::uuid[]) AS m`,
            [ids, artifactId, doc.division_id, doc.updated_by],
          );
          if (from + next.length < chunks.length) return 'more' as const;
          await tx.query(`UPDATE documents SET status = 'split', updated_at = now() WHERE id = $1`, [
            documentId,
          ]);
          await audit(tx, system, doc, 'document.split', { version, artifactId, chunks: chunks.length });
          return 'done' as const;
        });
        deps.memories.notifyQueued();
        if (step === 'stopped') return null;
        if (step === 'done') return { chunks: chunks.length };
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    },

    /** A split job was dead-lettered: the document says so. */
    async markFailed(documentId: string, version: number, error: string) {
      await db.query(
        `UPDATE documents SET status = 'failed', error = $3, updated_at = now()
         WHERE id = $1 AND version = $2 AND status <> 'split'`,
        [documentId, version, error.slice(0, 2000)],
      );
    },
  };
}
