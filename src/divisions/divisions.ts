import type { Database, Queryable } from '../adapters/db/port.js';
import type { AppendAudit } from '../audit/types.js';
import { type IdempotencyKey, runIdempotent } from '../memories/idempotency.js';
import { AppError, ErrorCode } from '../platform/errors.js';

export interface Division {
  id: string;
  name: string;
  metadata: Record<string, unknown>;
  /** Days until new memories expire (0: never; null: the service default). */
  defaultTtlDays: number | null;
  createdAt: string;
}

export interface Agent {
  id: string;
  divisionId: string;
  name: string;
  metadata: Record<string, unknown>;
  createdAt: string;
}

interface DivisionRow {
  id: string;
  name: string;
  metadata: Record<string, unknown>;
  default_ttl_days: number | null;
  created_at: Date;
}
interface AgentRow {
  id: string;
  division_id: string;
  name: string;
  metadata: Record<string, unknown>;
  created_at: Date;
}

const toDivision = (r: DivisionRow): Division => ({
  id: r.id,
  name: r.name,
  metadata: r.metadata,
  defaultTtlDays: r.default_ttl_days,
  createdAt: new Date(r.created_at).toISOString(),
});
const toAgent = (r: AgentRow): Agent => ({
  id: r.id,
  divisionId: r.division_id,
  name: r.name,
  metadata: r.metadata,
  createdAt: new Date(r.created_at).toISOString(),
});

export async function assertDivisionExists(
  q: Queryable,
  divisionId: string,
  field = 'divisionId',
): Promise<void> {
  const res = await q.query<{ erased: boolean }>(
    'SELECT erased_at IS NOT NULL AS erased FROM divisions WHERE id = $1',
    [divisionId],
  );
  if (res.rows.length === 0) {
    throw new AppError(ErrorCode.divisionNotFound, `no division ${divisionId}`, [
      { field, message: 'unknown division' },
    ]);
  }
  // An erased division takes no new data: its id stays taken so that its trail stays its own.
  if (res.rows[0].erased) {
    throw new AppError(ErrorCode.divisionErased, `division ${divisionId} was erased`, [
      { field, message: 'erased' },
    ]);
  }
}

/** The division's default TTL in days (null: the service default); 404 when there is no such division. */
export async function divisionTtlDays(
  q: Queryable,
  divisionId: string,
  field = 'divisionId',
): Promise<number | null> {
  const res = await q.query<{ default_ttl_days: number | null; erased: boolean }>(
    'SELECT default_ttl_days, erased_at IS NOT NULL AS erased FROM divisions WHERE id = $1',
    [divisionId],
  );
  if (res.rows.length === 0) {
    throw new AppError(ErrorCode.divisionNotFound, `no division ${divisionId}`, [
      { field, message: 'unknown division' },
    ]);
  }
  if (res.rows[0].erased) {
    throw new AppError(ErrorCode.divisionErased, `division ${divisionId} was erased`, [
      { field, message: 'erased' },
    ]);
  }
  return res.rows[0].default_ttl_days;
}

export async function assertAgentExists(q: Queryable, divisionId: string, agentId: string, field: string) {
  const res = await q.query('SELECT 1 FROM agents WHERE division_id = $1 AND id = $2', [divisionId, agentId]);
  if (res.rows.length === 0) {
    throw new AppError(ErrorCode.agentNotFound, `no agent ${agentId} in division ${divisionId}`, [
      { field, message: 'unknown agent; register it with POST /v1/divisions/{id}/agents' },
    ]);
  }
}

export type DivisionService = ReturnType<typeof createDivisionService>;

/** Who asks, as the audit trail names them. */
export interface Actor {
  actor: string;
  manifestSignatureId?: string;
}

/**
 * Divisions and their agents. Creating either is audited in the division's own chain (the
 * division's first event is its creation), in the same transaction as the row.
 */
export function createDivisionService(deps: { db: Database; appendAudit: AppendAudit }) {
  const { db } = deps;
  return {
    async createDivision(
      by: Actor,
      input: {
        id: string;
        name?: string;
        metadata?: Record<string, unknown>;
        defaultTtlDays?: number | null;
      },
      opts: { idempotency?: IdempotencyKey } = {},
    ) {
      return runIdempotent(db, opts.idempotency, async (tx) => {
        const res = await tx.query<DivisionRow>(
          `INSERT INTO divisions (id, name, metadata, default_ttl_days) VALUES ($1, $2, $3::jsonb, $4)
           ON CONFLICT (id) DO NOTHING RETURNING *`,
          [
            input.id,
            input.name ?? input.id,
            JSON.stringify(input.metadata ?? {}),
            input.defaultTtlDays ?? null,
          ],
        );
        if (res.rows.length === 0) {
          throw new AppError(ErrorCode.alreadyExists, `division ${input.id} already exists`, [
            { field: 'id', message: 'taken' },
          ]);
        }
        const division = toDivision(res.rows[0]);
        await deps.appendAudit(tx, [
          {
            divisionId: division.id,
            actor: by.actor,
            action: 'division.create',
            resourceType: 'division',
            resourceId: division.id,
            manifestSignatureId: by.manifestSignatureId,
            change: { name: division.name, defaultTtlDays: division.defaultTtlDays },
          },
        ]);
        return division;
      });
    },

    async listDivisions(): Promise<Division[]> {
      const res = await db.query<DivisionRow>('SELECT * FROM divisions ORDER BY id LIMIT 1000');
      return res.rows.map(toDivision);
    },

    async getDivision(id: string): Promise<Division> {
      const res = await db.query<DivisionRow>('SELECT * FROM divisions WHERE id = $1', [id]);
      if (!res.rows[0]) throw new AppError(ErrorCode.divisionNotFound, `no division ${id}`);
      return toDivision(res.rows[0]);
    },

    async createAgent(
      by: Actor,
      divisionId: string,
      input: { id: string; name?: string; metadata?: Record<string, unknown> },
      opts: { idempotency?: IdempotencyKey } = {},
    ) {
      return runIdempotent(db, opts.idempotency, async (tx) => {
        await assertDivisionExists(tx, divisionId, 'id');
        const res = await tx.query<AgentRow>(
          `INSERT INTO agents (division_id, id, name, metadata) VALUES ($1, $2, $3, $4::jsonb)
           ON CONFLICT (division_id, id) DO NOTHING RETURNING *`,
          [divisionId, input.id, input.name ?? input.id, JSON.stringify(input.metadata ?? {})],
        );
        if (res.rows.length === 0) {
          throw new AppError(ErrorCode.alreadyExists, `agent ${input.id} already exists in ${divisionId}`, [
            { field: 'id', message: 'taken' },
          ]);
        }
        const agent = toAgent(res.rows[0]);
        await deps.appendAudit(tx, [
          {
            divisionId,
            actor: by.actor,
            action: 'agent.create',
            resourceType: 'agent',
            resourceId: agent.id,
            manifestSignatureId: by.manifestSignatureId,
            change: { name: agent.name },
          },
        ]);
        return agent;
      });
    },

    async listAgents(divisionId: string): Promise<Agent[]> {
      await assertDivisionExists(db, divisionId, 'id');
      const res = await db.query<AgentRow>(
        'SELECT * FROM agents WHERE division_id = $1 ORDER BY id LIMIT 1000',
        [divisionId],
      );
      return res.rows.map(toAgent);
    },
  };
}
