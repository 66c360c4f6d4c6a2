import type { Database } from '../adapters/db/port.js';
import type { AccessAuditMode } from '../audit/access-audit.js';
import type { AppendAudit } from '../audit/types.js';
import { assertAgentExists, divisionTtlDays } from '../divisions/divisions.js';
import { type Access, accessSql } from '../memories/access.js';
import { auditOf, piiReadEvents } from '../memories/audit-events.js';
import { MEMORY_COLUMNS, type MemoryRecord, type MemoryRow, toRecord } from '../memories/records.js';
import { AppError, ErrorCode, notFound } from '../platform/errors.js';

export interface LegalHold {
  id: number;
  divisionId: string;
  agentId: string | null;
  reason: string;
  createdBy: string;
  createdAt: string;
  releasedAt: string | null;
  releasedBy: string | null;
}

interface HoldRow {
  id: number;
  division_id: string;
  agent_id: string | null;
  reason: string;
  created_by: string;
  created_at: Date;
  released_at: Date | null;
  released_by: string | null;
}

const toHold = (r: HoldRow): LegalHold => ({
  id: Number(r.id),
  divisionId: r.division_id,
  agentId: r.agent_id,
  reason: r.reason,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
  releasedAt: r.released_at ? new Date(r.released_at).toISOString() : null,
  releasedBy: r.released_by,
});

/** The audit event of a division or agent hold placed or released. */
function holdEvent(access: Access, hold: LegalHold, action: string, extra: Record<string, unknown> = {}) {
  return {
    divisionId: hold.divisionId,
    actor: access.actor,
    action,
    resourceType: hold.agentId ? 'agent' : 'division',
    resourceId: hold.agentId ?? hold.divisionId,
    manifestSignatureId: access.manifestSignatureId,
    change: { holdId: hold.id, ...extra },
  };
}

/** A deleted memory as a hold's answer shows it: ids, flags and state, no text, tags or metadata. */
function withoutContent(row: MemoryRow): MemoryRecord {
  return { ...toRecord(row, false), text: '', redacted: true, checksum: '', tags: [], metadata: {} };
}

/**
 * Legal holds: on one memory (a flag on its row) or on a whole division or agent (a row in
 * legal_holds). While any hold covers a memory it is never expired, deleted or purged.
 * Every change is audited in the same transaction.
 */
export function createLegalHoldService(deps: {
  db: Database;
  appendAudit: AppendAudit;
  /** ACCESS_AUDIT: with `off`, a hold's answer records no `pii.read` (default `all`). */
  readMode?: AccessAuditMode;
}) {
  const { db } = deps;
  return {
    /**
     * Places or releases the hold on one memory. A soft-deleted memory can be held too (that is
     * how a pending purge is stopped), but it is not readable: the answer then carries no content.
     * Agents may place holds on their own memories, never release one: a hold exists to stop
     * exactly the parties whose data it keeps.
     */
    async setMemoryHold(access: Access, id: string, hold: boolean, reason?: string): Promise<MemoryRecord> {
      if (hold && !reason) {
        throw new AppError(ErrorCode.validation, 'a legal hold needs a reason', [
          { field: 'reason', message: 'required when hold is true' },
        ]);
      }
      if (!hold && access.agentId !== undefined) {
        throw new AppError(ErrorCode.forbidden, 'agent tokens cannot release legal holds', [
          { field: 'hold', message: 'only a service with legal-hold:write may release a hold' },
        ]);
      }
      return db.transaction(async (tx) => {
        const params: unknown[] = [id, hold];
        const res = await tx.query<MemoryRow>(
          `UPDATE memory_nodes n SET legal_hold = $2, updated_at = now()
           WHERE n.id = $1 AND n.purged_at IS NULL AND ${accessSql(access, params)}
           RETURNING ${MEMORY_COLUMNS}`,
          params,
        );
        const row = res.rows[0];
        if (!row) throw notFound(ErrorCode.memoryNotFound, `no memory ${id}`);
        const deleted = row.deleted_at !== null;
        await deps.appendAudit(tx, [
          auditOf(access, row, hold ? 'legal-hold.set' : 'legal-hold.release', { reason: reason ?? null }),
          ...(deleted ? [] : piiReadEvents(access, [row], 'legal-hold', deps.readMode)),
        ]);
        return deleted ? withoutContent(row) : toRecord(row, access.piiRead);
      });
    },

    async createHold(access: Access, divisionId: string, input: { agentId?: string; reason: string }) {
      return db.transaction(async (tx) => {
        await divisionTtlDays(tx, divisionId);
        if (input.agentId !== undefined) await assertAgentExists(tx, divisionId, input.agentId, 'agentId');
        const res = await tx.query<HoldRow>(
          `INSERT INTO legal_holds (division_id, agent_id, reason, created_by) VALUES ($1, $2, $3, $4) RETURNING *`,
          [divisionId, input.agentId ?? null, input.reason, access.actor],
        );
        const hold = toHold(res.rows[0]);
        await deps.appendAudit(tx, [holdEvent(access, hold, 'legal-hold.set', { reason: input.reason })]);
        return hold;
      });
    },

    async releaseHold(access: Access, divisionId: string, holdId: number): Promise<LegalHold> {
      return db.transaction(async (tx) => {
        const res = await tx.query<HoldRow>(
          `UPDATE legal_holds SET released_at = now(), released_by = $3
           WHERE id = $1 AND division_id = $2 AND released_at IS NULL RETURNING *`,
          [holdId, divisionId, access.actor],
        );
        if (!res.rows[0]) throw notFound(ErrorCode.notFound, `no active legal hold ${holdId}`);
        const hold = toHold(res.rows[0]);
        await deps.appendAudit(tx, [holdEvent(access, hold, 'legal-hold.release')]);
        return hold;
      });
    },

    async listHolds(divisionId: string): Promise<LegalHold[]> {
      await divisionTtlDays(db, divisionId);
      const res = await db.query<HoldRow>(
        'SELECT * FROM legal_holds WHERE division_id = $1 ORDER BY id DESC LIMIT 1000',
        [divisionId],
      );
      return res.rows.map(toHold);
    },
  };
}

export type LegalHoldService = ReturnType<typeof createLegalHoldService>;
