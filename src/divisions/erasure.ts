import { createHash } from 'node:crypto';
import type { Database } from '../adapters/db/port.js';
import type { KeyStore } from '../adapters/keys/port.js';
import type { ObjectStore } from '../adapters/objects/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import type { AuditSigner, SignedHead } from '../audit/signer.js';
import type { AppendAudit } from '../audit/types.js';
import { purgeMemories } from '../governance/retention.js';
import { removeFromSpaces, spacesOf } from '../indexing/index-maintenance.js';
import type { ModelResolver } from '../models/active-model.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { Actor } from './divisions.js';

export const DIVISION_ERASE = 'division.erase';

/** What `GET /v1/divisions/{id}/erasure` shows. */
export interface ErasureRecord {
  divisionId: string;
  erasedAt: string;
  erasedBy: string;
  destroyed: {
    memories: number;
    /** SHA-256 over the purged memories' ids and checksums, in id order: proves which, shows nothing. */
    memoriesDigest: string;
    artifacts: number;
    artifactBytes: number;
    /** Object keys whose bytes were deleted (copies elsewhere are unreadable without the key). */
    artifactObjectsDeleted: number;
    vectorIndexEntries: number;
    /** The versions of the division's data key destroyed; empty when encryption is off. */
    dataKeyVersions: number[];
    /** Whether the data key was destroyed: false when encryption is off (copies stay readable). */
    dataKeyDestroyed: boolean;
  };
  /** The audit chain's head at the erasure event, signed. */
  auditHead: { seq: number; hash: string };
  signedHead: SignedHead | null;
}

interface ErasureRow {
  division_id: string;
  erased_at: Date | string;
  erased_by: string;
  destroyed: ErasureRecord['destroyed'];
  audit_seq: number | string;
  audit_hash: string;
  signed_head: SignedHead | null;
}

const toRecord = (r: ErasureRow): ErasureRecord => ({
  divisionId: r.division_id,
  erasedAt: new Date(r.erased_at).toISOString(),
  erasedBy: r.erased_by,
  destroyed: r.destroyed,
  auditHead: { seq: Number(r.audit_seq), hash: r.audit_hash },
  signedHead: r.signed_head,
});

/**
 * Erasure of a whole division (`DELETE /v1/divisions/{id}?erase=true`): refused (409) under any
 * active legal hold in it; otherwise, in one transaction, every memory's content is purged (the
 * shared purge statement: ids and checksums stay for the audit trail), its artifacts and links
 * removed, the erasure appended to its audit chain with digests of what went; after the commit
 * the vector entries and artifact objects are deleted, then the division's data key is destroyed,
 * so every snapshot, archive and artifact copy taken before is unreadable. The erasure record
 * (with the signed head) is written last; a crash before it is finished by running erase again.
 */
export function createErasureService(deps: {
  db: Database;
  store: ObjectStore;
  index: Pick<VectorIndex, 'remove'>;
  resolveModel: ModelResolver;
  keys: KeyStore | undefined;
  signer: Pick<AuditSigner, 'signHead'>;
  appendAudit: AppendAudit;
  logger?: Pick<Logger, 'warn' | 'error'>;
}) {
  const { db } = deps;

  async function record(divisionId: string): Promise<ErasureRecord | undefined> {
    const res = await db.query<ErasureRow>('SELECT * FROM division_erasures WHERE division_id = $1', [
      divisionId,
    ]);
    return res.rows[0] ? toRecord(res.rows[0]) : undefined;
  }

  return {
    async erase(by: Actor, divisionId: string): Promise<ErasureRecord> {
      if (await record(divisionId)) {
        throw new AppError(ErrorCode.divisionErased, `division ${divisionId} was already erased`);
      }
      const purged = await db.transaction(async (tx) => {
        const division = await tx.query<{ id: string; erased_at: Date | null }>(
          'SELECT id, erased_at FROM divisions WHERE id = $1 FOR UPDATE',
          [divisionId],
        );
        if (!division.rows[0]) throw new AppError(ErrorCode.divisionNotFound, `no division ${divisionId}`);
        const holds = await tx.query<{ id: string }>(
          'SELECT id FROM legal_holds WHERE division_id = $1 AND released_at IS NULL ORDER BY id',
          [divisionId],
        );
        if (holds.rows.length > 0) {
          throw new AppError(
            ErrorCode.legalHold,
            `division ${divisionId} has ${holds.rows.length} active legal hold(s): release them before erasing it`,
          );
        }
        const ids = (
          await tx.query<{ id: string }>(
            'SELECT id FROM memory_nodes WHERE division_id = $1 AND purged_at IS NULL ORDER BY id FOR UPDATE',
            [divisionId],
          )
        ).rows.map((r) => r.id);
        const spaces = await spacesOf(tx, deps.resolveModel, ids);
        const memories = await purgeMemories(tx, ids);
        const digest = createHash('sha256');
        for (const m of [...memories].sort((a, b) => (a.id < b.id ? -1 : 1)))
          digest.update(`${m.id}:${m.checksum}\n`);
        await tx.query('DELETE FROM memory_artifacts WHERE division_id = $1', [divisionId]);
        // Documents (titles and labels are content; their chunks go with them).
        await tx.query('DELETE FROM documents WHERE division_id = $1', [divisionId]);
        const artifacts = await tx.query<{
          object_key: string;
          object_version: string | null;
          size: string | number;
        }>('DELETE FROM artifacts WHERE division_id = $1 RETURNING object_key, object_version, size', [
          divisionId,
        ]);
        await tx.query('DELETE FROM idempotency_keys WHERE division_id = $1', [divisionId]);
        await tx.query('UPDATE divisions SET erased_at = coalesce(erased_at, now()) WHERE id = $1', [
          divisionId,
        ]);
        const destroyed = {
          memories: memories.length,
          memoriesDigest: digest.digest('hex'),
          artifacts: artifacts.rows.length,
          artifactBytes: artifacts.rows.reduce((n, a) => n + Number(a.size), 0),
          vectorIndexEntries: spaces.reduce((n, s) => n + s.keys.length, 0),
          dataKeyWillBeDestroyed: deps.keys !== undefined,
        };
        const [event] = await deps.appendAudit(tx, [
          {
            divisionId,
            actor: by.actor,
            action: DIVISION_ERASE,
            resourceType: 'division',
            resourceId: divisionId,
            manifestSignatureId: by.manifestSignatureId,
            change: destroyed,
          },
        ]);
        return { spaces, artifacts: artifacts.rows, destroyed, head: { seq: event.seq, hash: event.hash } };
      });

      await removeFromSpaces(deps.index, purged.spaces, (err) => {
        deps.logger?.warn({ err, divisionId }, 'erasure: could not remove vector index entries');
      });
      let deleted = 0;
      for (const a of purged.artifacts) {
        try {
          await deps.store.delete(a.object_key, a.object_version ?? undefined);
          deleted += 1;
        } catch (err) {
          // Retention-locked objects stay; without the key they are unreadable.
          deps.logger?.warn({ err, objectKey: a.object_key }, 'erasure: could not delete an artifact object');
        }
      }
      const key = deps.keys ? await deps.keys.destroy(divisionId) : undefined;
      const signedHead = await deps.signer.signHead({ divisionId, ...purged.head });
      const { dataKeyWillBeDestroyed: _w, ...counts } = purged.destroyed;
      const destroyed: ErasureRecord['destroyed'] = {
        ...counts,
        artifactObjectsDeleted: deleted,
        dataKeyVersions: key?.versions ?? [],
        dataKeyDestroyed: key !== undefined,
      };
      const res = await db.query<ErasureRow>(
        `INSERT INTO division_erasures (division_id, erased_by, destroyed, audit_seq, audit_hash, signed_head)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6::jsonb)
         ON CONFLICT (division_id) DO NOTHING RETURNING *`,
        [
          divisionId,
          by.actor,
          JSON.stringify(destroyed),
          purged.head.seq,
          purged.head.hash,
          JSON.stringify(signedHead),
        ],
      );
      if (!res.rows[0])
        throw new AppError(ErrorCode.divisionErased, `division ${divisionId} was already erased`);
      return toRecord(res.rows[0]);
    },

    /** The erasure record (404 when the division was not erased). */
    async get(divisionId: string): Promise<ErasureRecord> {
      const found = await record(divisionId);
      if (found) return found;
      const division = await db.query('SELECT 1 FROM divisions WHERE id = $1', [divisionId]);
      if (division.rows.length === 0)
        throw new AppError(ErrorCode.divisionNotFound, `no division ${divisionId}`);
      throw new AppError(ErrorCode.notFound, `division ${divisionId} was not erased`);
    },
  };
}

export type ErasureService = ReturnType<typeof createErasureService>;
