import { randomUUID } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import type { Database, Queryable } from '../adapters/db/port.js';
import {
  HashingCounter,
  ObjectChecksumMismatchError,
  type ObjectStore,
  ObjectTooLargeError,
} from '../adapters/objects/port.js';
import type { AccessAudit } from '../audit/access-audit.js';
import { ARTIFACT_CREATE, artifactCreateChange } from '../audit/bundle-artifacts.js';
import type { AppendAudit } from '../audit/types.js';
import { assertDivisionExists } from '../divisions/divisions.js';
import { type Encryption, encryptionProblem } from '../encryption/encryption.js';
import { envelopeSize } from '../encryption/envelope.js';
import { type Access, accessSql, heldSql, visibleSql } from '../memories/access.js';
import { AppError, ErrorCode, notFound } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { checksumField, parseContentType, parseExpectedSha256 } from './declared.js';
import { ArtifactCorruptError, VerifyingStream } from './verifying-stream.js';

/** A stored file, as the API shows it. */
export interface Artifact {
  id: string;
  divisionId: string;
  /** The agent whose token uploaded it; null for services. */
  agentId: string | null;
  /** SHA-256 (hex) of the bytes. Also the download's ETag. */
  sha256: string;
  size: number;
  contentType: string;
  createdBy: string;
  createdAt: string;
}

/** The stored row: the artifact and where its bytes are. */
export interface ArtifactRecord extends Artifact {
  objectKey: string;
  versionId: string | null;
  /** The version of the division's data key its bytes are encrypted with; null: in the clear. */
  keyVersion: number | null;
}

export interface UploadOptions {
  /** The request's Content-Type (default application/octet-stream). */
  contentType?: string;
  /** The SHA-256 the caller expects (hex, or base64 as in `x-amz-checksum-sha256`). */
  sha256?: string;
  /** The request's Content-Length, when given: refused at once past the limit. */
  contentLength?: number;
  /**
   * More of the same change, run in the artifact's transaction after its row is inserted (a
   * document's row): when it throws, nothing is recorded and the object is removed again.
   */
  within?: (tx: Queryable, record: ArtifactRecord) => Promise<void>;
}

export type ArtifactService = ReturnType<typeof createArtifactService>;

/** Where an artifact's bytes were. */
export interface StoredObject {
  objectKey: string;
  versionId: string | null;
}

interface ArtifactRow {
  id: string;
  division_id: string;
  agent_id: string | null;
  sha256: string;
  size: number | string;
  content_type: string;
  object_key: string;
  object_version: string | null;
  created_by: string;
  created_at: Date | string;
  key_version: number | null;
}

const COLUMNS =
  'a.id, a.division_id, a.agent_id, a.sha256, a.size, a.content_type, a.object_key, a.object_version, a.created_by, a.created_at, a.key_version';

const toRecord = (r: ArtifactRow): ArtifactRecord => ({
  id: r.id,
  divisionId: r.division_id,
  agentId: r.agent_id,
  sha256: r.sha256,
  size: Number(r.size),
  contentType: r.content_type,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
  objectKey: r.object_key,
  versionId: r.object_version,
  keyVersion: r.key_version === null ? null : Number(r.key_version),
});

/** The API view: where the bytes are stored is the service's business. */
export const publicArtifact = ({
  objectKey: _k,
  versionId: _v,
  keyVersion: _e,
  ...a
}: ArtifactRecord): Artifact => a;

const legalHold = (memoryId: string) =>
  new AppError(
    ErrorCode.legalHold,
    `memory ${memoryId} is under legal hold: its artifacts cannot be unlinked`,
  );

/**
 * Artifacts: files uploaded once, streamed to the object store under `artifacts/<division>/<id>`
 * (a new upload is a new object; nothing is overwritten), described in PostgreSQL with their
 * SHA-256, size and content type, recorded in the audit trail (`artifact.create`), linkable from
 * memories, and verified against their checksum on every download.
 */
export function createArtifactService(deps: {
  db: Database;
  store: ObjectStore;
  appendAudit: AppendAudit;
  /** ARTIFACT_MAX_BYTES: larger uploads are refused (413) and nothing is stored. */
  maxBytes: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
  /** The audit of reads: a download is a read of the file and of the memories it is linked to. */
  readAudit?: Pick<AccessAudit, 'record'>;
  /** Envelope encryption of the bytes with the division's data key (a pass-through when off). */
  encryption?: Encryption;
}) {
  const { db, store, appendAudit, maxBytes, logger } = deps;

  const tooLarge = () =>
    new AppError(
      ErrorCode.payloadTooLarge,
      `artifacts are limited to ${maxBytes} bytes (ARTIFACT_MAX_BYTES)`,
    );

  async function find(q: Queryable, access: Access, id: string): Promise<ArtifactRecord> {
    const params: unknown[] = [id];
    const res = await q.query<ArtifactRow>(
      `SELECT ${COLUMNS} FROM artifacts a WHERE a.id = $1 AND ${accessSql(access, params, 'a')}`,
      params,
    );
    const row = res.rows[0];
    if (!row) throw notFound(ErrorCode.notFound, `no artifact ${id}`);
    return toRecord(row);
  }

  /** A memory the caller may see; its division, and whether a legal hold covers it. */
  async function findMemory(q: Queryable, access: Access, memoryId: string, lock = false) {
    const params: unknown[] = [memoryId];
    const res = await q.query<{ division_id: string; held: boolean }>(
      `SELECT n.division_id, ${heldSql('n')} AS held FROM memory_nodes n
       WHERE n.id = $1 AND ${visibleSql('n')} AND ${accessSql(access, params)}${lock ? ' FOR UPDATE OF n' : ''}`,
      params,
    );
    const row = res.rows[0];
    if (!row) throw notFound(ErrorCode.memoryNotFound, `no memory ${memoryId}`);
    return row;
  }

  return {
    maxBytes,

    /**
     * Streams `body` to the object store (SHA-256 computed on the way), then records the artifact
     * and its `artifact.create` event in one transaction. Too large: 413 and nothing stored; a
     * checksum other than the expected one: 400 and nothing stored; a failed transaction removes
     * the object again.
     */
    async upload(
      access: Access,
      divisionId: string,
      body: Readable,
      opts: UploadOptions = {},
    ): Promise<ArtifactRecord> {
      if (access.divisions !== '*' && !access.divisions.includes(divisionId)) {
        throw new AppError(ErrorCode.forbidden, 'this caller may not use this division');
      }
      const expected = parseExpectedSha256(opts.sha256);
      const contentType = parseContentType(opts.contentType);
      if (opts.contentLength !== undefined && opts.contentLength > maxBytes) throw tooLarge();
      await assertDivisionExists(db, divisionId);

      const id = randomUUID();
      const objectKey = `artifacts/${divisionId}/${id}`;
      let stored: Awaited<ReturnType<ObjectStore['put']>>;
      const sealing = await deps.encryption?.encryptor('artifact', divisionId, id);
      // Encrypted: the plaintext is hashed and counted on its way to the cipher, so the recorded
      // SHA-256 and size (the download's ETag and its check) are the file's, not the envelope's.
      const plain = sealing ? new HashingCounter(maxBytes) : undefined;
      let sourceError: unknown;
      try {
        if (sealing && plain) {
          pipeline(body, plain, sealing.stream, (err) => {
            sourceError = err;
          });
          stored = await store.put(objectKey, sealing.stream, {
            contentType: 'application/octet-stream',
            maxBytes: envelopeSize(divisionId, maxBytes),
          });
          const actual = plain.digest();
          if (expected !== undefined && expected !== actual) {
            await store.delete(objectKey, stored.versionId).catch(() => {});
            throw new ObjectChecksumMismatchError(expected, actual);
          }
          stored = { ...stored, sha256: actual, size: plain.size };
        } else {
          stored = await store.put(objectKey, body, { contentType, sha256: expected, maxBytes });
        }
      } catch (err) {
        const cause = sourceError instanceof ObjectTooLargeError ? sourceError : err;
        if (cause instanceof ObjectTooLargeError) throw tooLarge();
        if (cause instanceof ObjectChecksumMismatchError) {
          throw new AppError(
            ErrorCode.validation,
            `the body's SHA-256 is ${cause.actual}, not ${cause.expected}`,
            [{ field: checksumField, message: 'does not match the body' }],
          );
        }
        throw err;
      }
      const record: ArtifactRecord = {
        id,
        divisionId,
        agentId: access.agentId ?? null,
        sha256: stored.sha256,
        size: stored.size,
        contentType,
        createdBy: access.actor,
        createdAt: new Date().toISOString(),
        objectKey,
        versionId: stored.versionId ?? null,
        keyVersion: sealing?.keyVersion ?? null,
      };
      try {
        await db.transaction(async (tx) => {
          const res = await tx.query<{ created_at: Date | string }>(
            `INSERT INTO artifacts (id, division_id, agent_id, sha256, size, content_type, object_key, object_version, created_by, key_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING created_at`,
            [
              id,
              divisionId,
              record.agentId,
              record.sha256,
              record.size,
              contentType,
              objectKey,
              record.versionId,
              access.actor,
              record.keyVersion,
            ],
          );
          record.createdAt = new Date(res.rows[0].created_at).toISOString();
          await appendAudit(tx, [
            {
              divisionId,
              actor: access.actor,
              action: ARTIFACT_CREATE,
              resourceType: 'artifact',
              resourceId: id,
              manifestSignatureId: access.manifestSignatureId,
              change: artifactCreateChange(record),
            },
          ]);
          await opts.within?.(tx, record);
        });
      } catch (err) {
        await store.delete(objectKey, stored.versionId).catch((gcErr: unknown) => {
          logger?.error({ err: gcErr, objectKey }, 'could not remove the object of a failed artifact upload');
        });
        throw err;
      }
      return record;
    },

    /** An artifact's record (404 when the caller may not see it). */
    async get(access: Access, id: string): Promise<ArtifactRecord> {
      return find(db, access, id);
    },

    /**
     * The artifact and its bytes as a stream that fails, before its last chunk, when the bytes are
     * not the recorded ones (ArtifactCorruptError).
     */
    async open(
      access: Access,
      id: string,
      opts: { audit?: boolean } = {},
    ): Promise<{ artifact: ArtifactRecord; body: Readable }> {
      const artifact = await find(db, access, id);
      // The service reading its own files (a document's split) is no one's read of them.
      if (deps.readAudit && opts.audit !== false) {
        const linked = await db.query<{ memory_id: string }>(
          'SELECT memory_id FROM memory_artifacts WHERE artifact_id = $1 ORDER BY memory_id',
          [id],
        );
        await deps.readAudit.record(access, {
          divisionId: artifact.divisionId,
          via: 'artifact',
          memoryIds: linked.rows.map((r) => r.memory_id),
          artifactId: id,
        });
      }
      const object = await store.get(artifact.objectKey);
      const storedSize =
        artifact.keyVersion === null ? artifact.size : envelopeSize(artifact.divisionId, artifact.size);
      if (object.size !== storedSize) {
        object.body.destroy();
        const err = new ArtifactCorruptError(id, `${object.size} bytes stored, ${storedSize} expected`);
        logger?.error({ err, artifactId: id }, 'artifact corrupt in the object store');
        throw err;
      }
      const verifying = new VerifyingStream(id, artifact);
      const onEnd = (err: NodeJS.ErrnoException | null) => {
        if (
          err instanceof ArtifactCorruptError ||
          (err instanceof AppError && err.code === ErrorCode.ciphertextTampered)
        ) {
          logger?.error({ err, artifactId: id }, 'artifact corrupt in the object store');
        }
      };
      // pipeline: a failure or an early close on any side (a client gone) ends them all. Encrypted
      // bytes are authenticated segment by segment before the plaintext checksum is checked.
      if (artifact.keyVersion === null || !deps.encryption) {
        pipeline(object.body, verifying, onEnd);
      } else {
        const decrypting = deps.encryption.decryptor('artifact', artifact.divisionId, id);
        pipeline(object.body, decrypting, verifying, onEnd);
        // A tampered first segment (or an erased division's) is refused before answering.
        try {
          await decrypting.authenticated;
        } catch (err) {
          verifying.destroy();
          throw encryptionProblem(err);
        }
      }
      return { artifact, body: verifying };
    },

    /**
     * Deletes artifacts and their links in the caller's transaction (a deleted document's
     * original); returns what `deleteObjects` removes from the store once the caller committed.
     */
    async deleteWithin(tx: Queryable, ids: string[]): Promise<StoredObject[]> {
      if (ids.length === 0) return [];
      await tx.query('DELETE FROM memory_artifacts WHERE artifact_id = ANY($1::uuid[])', [ids]);
      const res = await tx.query<{ object_key: string; object_version: string | null }>(
        'DELETE FROM artifacts WHERE id = ANY($1::uuid[]) RETURNING object_key, object_version',
        [ids],
      );
      return res.rows.map((r) => ({ objectKey: r.object_key, versionId: r.object_version }));
    },

    /** Removes stored objects; a failure is logged (the rows are gone: nothing refers to them). */
    async deleteObjects(objects: StoredObject[]): Promise<void> {
      for (const o of objects) {
        await store.delete(o.objectKey, o.versionId ?? undefined).catch((err: unknown) => {
          logger?.error({ err, objectKey: o.objectKey }, 'could not remove the object of a deleted artifact');
        });
      }
    },

    /** Links an artifact to a memory of the same division (idempotent; audited once). */
    async link(access: Access, memoryId: string, artifactId: string): Promise<{ linked: boolean }> {
      return db.transaction(async (tx) => {
        const memory = await findMemory(tx, access, memoryId, true);
        const artifact = await find(tx, access, artifactId);
        if (artifact.divisionId !== memory.division_id) {
          throw notFound(ErrorCode.notFound, `no artifact ${artifactId} in the memory's division`);
        }
        const res = await tx.query(
          `INSERT INTO memory_artifacts (memory_id, artifact_id, division_id, created_by)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING artifact_id`,
          [memoryId, artifactId, memory.division_id, access.actor],
        );
        if (res.rows.length === 0) return { linked: false };
        await appendAudit(tx, [
          {
            divisionId: memory.division_id,
            actor: access.actor,
            action: 'memory.artifact.link',
            resourceType: 'memory',
            resourceId: memoryId,
            manifestSignatureId: access.manifestSignatureId,
            change: { artifactId, sha256: artifact.sha256 },
          },
        ]);
        return { linked: true };
      });
    },

    /** Removes a link (not the artifact). Refused (409) while a legal hold covers the memory. */
    async unlink(access: Access, memoryId: string, artifactId: string): Promise<{ unlinked: boolean }> {
      return db.transaction(async (tx) => {
        const memory = await findMemory(tx, access, memoryId, true);
        if (memory.held) throw legalHold(memoryId);
        const res = await tx.query(
          'DELETE FROM memory_artifacts WHERE memory_id = $1 AND artifact_id = $2 RETURNING artifact_id',
          [memoryId, artifactId],
        );
        if (res.rows.length === 0) return { unlinked: false };
        await appendAudit(tx, [
          {
            divisionId: memory.division_id,
            actor: access.actor,
            action: 'memory.artifact.unlink',
            resourceType: 'memory',
            resourceId: memoryId,
            manifestSignatureId: access.manifestSignatureId,
            change: { artifactId },
          },
        ]);
        return { unlinked: true };
      });
    },

    /** The artifacts linked to a memory, oldest link first. */
    async listForMemory(access: Access, memoryId: string): Promise<ArtifactRecord[]> {
      await findMemory(db, access, memoryId);
      const params: unknown[] = [memoryId];
      const res = await db.query<ArtifactRow>(
        `SELECT ${COLUMNS} FROM memory_artifacts l JOIN artifacts a ON a.id = l.artifact_id
         WHERE l.memory_id = $1 AND ${accessSql(access, params, 'a')}
         ORDER BY l.created_at, a.id`,
        params,
      );
      return res.rows.map(toRecord);
    },
  };
}
