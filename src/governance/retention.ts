import type { Database, Queryable } from '../adapters/db/port.js';
import { type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import type { AppendAudit, AuditEventInput } from '../audit/types.js';
import { queueContextUpdates } from '../indexing/contextual-vectors.js';
import { removeFromSpaces, type SpaceKeys, spacesOf } from '../indexing/index-maintenance.js';
import { type ModelResolver, resolverOf } from '../models/active-model.js';
import { invalid } from '../platform/errors.js';
import { createLeaderLoop, type LeaderElection } from '../platform/leader.js';
import type { Logger } from '../platform/logger.js';

/** The actor of every event the sweeper appends. */
export const RETENTION_ACTOR = 'system:retention';

const DAY_MS = 86_400_000;

/**
 * SQL boolean: the memory (table alias `alias`) is under legal hold, by its own flag or by an
 * active hold on its division or on its agent. Held memories are never expired, deleted or purged.
 */
export function isHeldSql(alias = 'n'): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(alias)) throw new Error(`not a table alias: ${alias}`);
  return `(${alias}.legal_hold OR EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL AND h.division_id = ${alias}.division_id AND (h.agent_id IS NULL OR h.agent_id = ${alias}.agent_id)))`;
}

export interface PurgedMemory {
  id: string;
  vector_key: number;
  division_id: string;
  checksum: string;
  version: number;
}

/**
 * Erases the content of memories (the shared purge statement of the sweeper and of
 * `DELETE /v1/memories/{id}?purge=true`): text, redacted text, vector, tags, metadata and flags
 * go; ids, checksum (a digest) and timestamps stay for the audit trail. A live memory is
 * soft-deleted too. Held and already purged memories are left alone: the result lists only the
 * memories this call purged. Run it in the caller's transaction, append the audit events there,
 * and remove the returned vector keys from the vector index after the commit.
 */
export async function purgeMemories(
  tx: Queryable,
  ids: string[],
  now: Date = new Date(),
): Promise<PurgedMemory[]> {
  if (ids.length === 0) return [];
  const res = await tx.query<PurgedMemory>(
    `UPDATE memory_nodes n SET
       text = '', redacted_text = NULL,
       embedding = NULL, embedding_dim = NULL, embedding_model = NULL, embedding_model_version = NULL,
       embedded_at = NULL, tags = '{}', metadata = '{}', pii_flags = '{}',
       deleted_at = coalesce(n.deleted_at, $2), purged_at = $2, updated_at = $2
     WHERE n.id = ANY($1::uuid[]) AND n.purged_at IS NULL AND NOT ${isHeldSql('n')}
     RETURNING n.id, n.vector_key, n.division_id, n.checksum, n.version`,
    [ids, now],
  );
  // Vectors a re-embedding computed from the text are content too.
  if (res.rows.length > 0) {
    await tx.query('DELETE FROM reembed_vectors WHERE node_id = ANY($1::uuid[])', [
      res.rows.map((r) => r.id),
    ]);
  }
  return res.rows.map((r) => ({ ...r, vector_key: Number(r.vector_key) }));
}

/**
 * When a new memory expires: an explicit `expiresAt` wins (null: never); else its division's
 * default TTL, else the service's. A TTL of 0 days means never. The one rule every write uses.
 */
export function expiresAtFor(
  explicit: string | null | undefined,
  divisionTtlDays: number | null,
  serviceTtlDays: number,
  now: Date = new Date(),
): Date | null {
  if (explicit === null) return null;
  if (explicit !== undefined) {
    const at = new Date(explicit);
    if (Number.isNaN(at.getTime())) throw invalid('expiresAt', 'must be an RFC 3339 date-time');
    return at;
  }
  const days = divisionTtlDays ?? serviceTtlDays;
  if (!days || days <= 0) return null;
  return new Date(now.getTime() + days * DAY_MS);
}

export interface RetentionSweeperDeps {
  db: Database;
  index: Pick<VectorIndex, 'remove'>;
  /** The configured default model (the space of divisions that name no model). */
  model: EmbeddingModel;
  /** Finds the other models divisions use (default: only `model` is known). */
  resolveModel?: ModelResolver;
  appendAudit: AppendAudit;
  /** How long a soft-deleted memory keeps its content before it is purged. */
  purgeGraceMs: number;
  /** Memories per transaction (default 500). */
  batchSize?: number;
  /** Attempts of the index jobs that re-blend expired memories' session neighbours (default 5). */
  maxJobAttempts?: number;
  logger: Pick<Logger, 'info' | 'warn'>;
  now?: () => Date;
}

interface ExpiredRow {
  id: string;
  vector_key: number;
  division_id: string;
  checksum: string;
  version: number;
  expires_at: Date;
}

/** Sorted by division then id, so that concurrent appenders lock audit chains in one order. */
const byDivisionAndId = <T extends { division_id: string; id: string }>(rows: T[]) =>
  [...rows].sort((a, b) =>
    a.division_id === b.division_id ? (a.id < b.id ? -1 : 1) : a.division_id < b.division_id ? -1 : 1,
  );

/**
 * Retention: soft-deletes expired memories, then purges the content of memories deleted longer
 * than the grace period ago; held memories are skipped by both. Each batch is one transaction
 * (change and audit events commit together), rows are claimed with SKIP LOCKED, and a memory that
 * was handled no longer matches, so a sweep killed at any point is finished by the next one and a
 * second sweep finds nothing to do. Vector index entries are removed after the commit (best
 * effort: a purged memory has no vector left to rebuild the entry from).
 */
export function createRetentionSweeper(deps: RetentionSweeperDeps) {
  const { db, index, model, appendAudit, logger } = deps;
  const batchSize = deps.batchSize ?? 500;
  const now = deps.now ?? (() => new Date());
  const resolve =
    deps.resolveModel ??
    resolverOf({ default: { model }, find: (key) => (key === modelKey(model) ? model : undefined) });

  async function removeFromIndex(spaces: SpaceKeys[], stage: string) {
    await removeFromSpaces(index, spaces, (err, space) => {
      logger.warn(
        { stage, space: modelKey(space), err: err instanceof Error ? err.message : String(err) },
        'could not remove vector index entries',
      );
    });
  }

  /** One batch of expiries; returns how many memories it soft-deleted. */
  async function expireBatch(at: Date): Promise<number> {
    const { rows, spaces } = await db.transaction(async (tx) => {
      const res = await tx.query<ExpiredRow>(
        `WITH due AS (
           SELECT n.id FROM memory_nodes n
           WHERE n.deleted_at IS NULL AND n.expires_at <= $1 AND NOT ${isHeldSql('n')}
           ORDER BY n.expires_at, n.id
           LIMIT $2
           FOR UPDATE OF n SKIP LOCKED
         )
         UPDATE memory_nodes m SET deleted_at = $1, updated_at = $1
         FROM due WHERE m.id = due.id
         RETURNING m.id, m.vector_key, m.division_id, m.checksum, m.version, m.expires_at`,
        [at, batchSize],
      );
      const expired = byDivisionAndId(res.rows);
      if (expired.length > 0) {
        await appendAudit(
          tx,
          expired.map(
            (r): AuditEventInput => ({
              divisionId: r.division_id,
              actor: RETENTION_ACTOR,
              action: 'memory.expire',
              resourceType: 'memory',
              resourceId: r.id,
              change: {
                checksum: r.checksum,
                version: r.version,
                expiresAt: new Date(r.expires_at).toISOString(),
              },
            }),
          ),
        );
      }
      const ids = expired.map((r) => r.id);
      // Their session neighbours' index vectors blended theirs.
      await queueContextUpdates(tx, ids, deps.maxJobAttempts ?? 5);
      return { rows: expired, spaces: await spacesOf(tx, resolve, ids) };
    });
    await removeFromIndex(spaces, 'expire');
    return rows.length;
  }

  /** One batch of purges: how many memories it claimed, and how many of them it purged. */
  async function purgeBatch(at: Date): Promise<{ done: number; claimed: number }> {
    const cutoff = new Date(at.getTime() - deps.purgeGraceMs);
    const purged = await db.transaction(async (tx) => {
      const due = await tx.query<{ id: string }>(
        `SELECT n.id FROM memory_nodes n
         WHERE n.deleted_at IS NOT NULL AND n.deleted_at <= $1 AND n.purged_at IS NULL AND NOT ${isHeldSql('n')}
         ORDER BY n.deleted_at, n.id
         LIMIT $2
         FOR UPDATE OF n SKIP LOCKED`,
        [cutoff, batchSize],
      );
      // Read before the purge erases the vectors; only the purged memories' entries go.
      const before = await spacesOf(
        tx,
        resolve,
        due.rows.map((r) => r.id),
      );
      const rows = byDivisionAndId(
        await purgeMemories(
          tx,
          due.rows.map((r) => r.id),
          at,
        ),
      );
      const purgedKeys = new Set(rows.map((r) => r.vector_key));
      const spaces = before.map((s) => ({ ...s, keys: s.keys.filter((k) => purgedKeys.has(k)) }));
      if (rows.length > 0) {
        await appendAudit(
          tx,
          rows.map(
            (r): AuditEventInput => ({
              divisionId: r.division_id,
              actor: RETENTION_ACTOR,
              action: 'memory.purge',
              resourceType: 'memory',
              resourceId: r.id,
              change: { checksum: r.checksum, version: r.version },
            }),
          ),
        );
      }
      return { rows, claimed: due.rows.length, spaces };
    });
    await removeFromIndex(purged.spaces, 'purge');
    return { done: purged.rows.length, claimed: purged.claimed };
  }

  return {
    /** One full sweep: every due expiry, then every due purge, batch by batch. */
    async runOnce(): Promise<{ expired: number; purged: number }> {
      const at = now();
      let expired = 0;
      let purged = 0;
      for (;;) {
        const n = await expireBatch(at);
        expired += n;
        if (n < batchSize) break;
      }
      for (;;) {
        const { done, claimed } = await purgeBatch(at);
        purged += done;
        if (claimed < batchSize) break;
      }
      if (expired > 0 || purged > 0) logger.info({ expired, purged }, 'retention sweep');
      return { expired, purged };
    },
  };
}

export type RetentionSweeper = ReturnType<typeof createRetentionSweeper>;

export interface SweeperLoopDeps {
  sweeper: Pick<RetentionSweeper, 'runOnce'>;
  leader: LeaderElection;
  intervalMs: number;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/**
 * Runs the sweeper every `intervalMs` while this process leads: it starts the election, sweeps
 * at once on winning, and stops sweeping (after the sweep in progress) on losing.
 */
export function createSweeperLoop(deps: SweeperLoopDeps) {
  return createLeaderLoop({ name: 'retention sweep', task: () => deps.sweeper.runOnce(), ...deps });
}
