import { randomUUID } from 'node:crypto';
import type { Database } from '../adapters/db/port.js';
import { type KeyStore, KeyStoreError, type RewrapResult } from '../adapters/keys/port.js';
import type { AppendAudit } from '../audit/types.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import { encryptionProblem } from './encryption.js';

/** Audit actions of key operations (each in the division's own chain). */
export const KEY_ACTIONS = {
  rotate: 'division.key.rotate',
  reencrypted: 'division.key.reencrypt',
  retire: 'division.key.retire',
  rewrap: 'division.key.rewrap',
} as const;

export interface ReencryptionRun {
  id: string;
  divisionId: string;
  targetVersion: number;
  status: 'queued' | 'running' | 'completed' | 'failed';
  total: number;
  done: number;
  moved: number;
  error: string | null;
  requestedBy: string;
  createdAt: string;
  finishedAt: string | null;
}

export interface ReencryptionRow {
  id: string;
  division_id: string;
  target_version: number;
  status: ReencryptionRun['status'];
  total: number;
  done: number;
  moved: number;
  error: string | null;
  requested_by: string;
  created_at: Date | string;
  finished_at: Date | string | null;
}

export const toRun = (r: ReencryptionRow): ReencryptionRun => ({
  id: r.id,
  divisionId: r.division_id,
  targetVersion: Number(r.target_version),
  status: r.status,
  total: Number(r.total),
  done: Number(r.done),
  moved: Number(r.moved),
  error: r.error,
  requestedBy: r.requested_by,
  createdAt: new Date(r.created_at).toISOString(),
  finishedAt: r.finished_at === null ? null : new Date(r.finished_at).toISOString(),
});

/** One division's latest re-encryption, as the progress gauge reports it. */
export interface ReencryptionProgress {
  division: string;
  version: number;
  ratio: number;
}

/**
 * Rotation of the keys behind envelope encryption: the KEK (every data key re-wrapped, nothing
 * encrypted rewritten) and a division's data key (a new current version, then a leased,
 * resumable run that re-encrypts the division's artifact objects, see reencrypt-runner.ts). Each
 * operation appends an event to the chain of every division it touches.
 */
export function createKeyRotationService(deps: {
  db: Database;
  keys: KeyStore | undefined;
  appendAudit: AppendAudit;
  /** A run was queued: wakes a runner in this process. */
  onRequested?: () => void;
}) {
  const { db, appendAudit } = deps;

  function store(): KeyStore {
    if (!deps.keys) {
      throw new AppError(
        ErrorCode.keyUnavailable,
        'encryption is off: set KEY_DIR and KEK_FILE to manage keys',
      );
    }
    return deps.keys;
  }

  /** The division must exist and not be erased: 404 division_not_found, 409 division_erased. */
  async function assertLiveDivision(divisionId: string) {
    const res = await db.query<{ erased: boolean }>(
      'SELECT erased_at IS NOT NULL AS erased FROM divisions WHERE id = $1',
      [divisionId],
    );
    if (!res.rows[0]) throw new AppError(ErrorCode.divisionNotFound, `no division ${divisionId}`);
    if (res.rows[0].erased) {
      throw new AppError(
        ErrorCode.divisionErased,
        `division ${divisionId} was erased: it has no key to rotate`,
      );
    }
  }

  async function activeRun(divisionId: string): Promise<ReencryptionRun | undefined> {
    const res = await db.query<ReencryptionRow>(
      `SELECT * FROM key_reencryptions WHERE division_id = $1 AND status IN ('queued', 'running')`,
      [divisionId],
    );
    return res.rows[0] ? toRun(res.rows[0]) : undefined;
  }

  /** Queues a run to `version` (in `tx`), with its audit event. */
  async function queueRun(divisionId: string, version: number, actor: string) {
    const res = await db.query<ReencryptionRow>(
      `INSERT INTO key_reencryptions (id, division_id, target_version, requested_by)
       VALUES ($1, $2, $3, $4) RETURNING *`,
      [randomUUID(), divisionId, version, actor],
    );
    return toRun(res.rows[0]);
  }

  return {
    /**
     * Rotates the division's data key: a new version becomes current (new writes use it), the
     * older ones stay readable, and a re-encryption run to the new version is queued. Refused
     * while a run is under way (409 reencryption_in_progress): finish it first.
     */
    async rotateDataKey(actor: string, divisionId: string) {
      const keys = store();
      await assertLiveDivision(divisionId);
      const active = await activeRun(divisionId);
      if (active) {
        throw new AppError(
          ErrorCode.reencryptionInProgress,
          `division ${divisionId} is being re-encrypted to version ${active.targetVersion} (run ${active.id}): let it finish first`,
        );
      }
      const before = await keys.current(divisionId).catch((err: unknown) => {
        throw encryptionProblem(err);
      });
      const key = await keys.rotate(divisionId).catch((err: unknown) => {
        throw encryptionProblem(err);
      });
      // The key file changed first: a crash here leaves a new current version and no run, and
      // `keys reencrypt --division` queues the run that is missing.
      const run = await db.transaction(async (tx) => {
        const res = await tx.query<ReencryptionRow>(
          `INSERT INTO key_reencryptions (id, division_id, target_version, requested_by)
           VALUES ($1, $2, $3, $4) RETURNING *`,
          [randomUUID(), divisionId, key.version, actor],
        );
        await appendAudit(tx, [
          {
            divisionId,
            actor,
            action: KEY_ACTIONS.rotate,
            resourceType: 'key',
            resourceId: divisionId,
            change: { from: before.version, to: key.version, kekId: keys.kekId, runId: res.rows[0].id },
            keepChange: true,
          },
        ]);
        return toRun(res.rows[0]);
      });
      deps.onRequested?.();
      return { divisionId, previousVersion: before.version, version: key.version, run };
    },

    /**
     * Makes sure the division's objects are (being) moved to its current key version: the active
     * run, or a new one when objects remain under an older version (or in the clear), or
     * undefined when every object is already current.
     */
    async ensureRun(actor: string, divisionId: string): Promise<ReencryptionRun | undefined> {
      const keys = store();
      await assertLiveDivision(divisionId);
      const active = await activeRun(divisionId);
      if (active) return active;
      const key = await keys.current(divisionId).catch((err: unknown) => {
        throw encryptionProblem(err);
      });
      const behind = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM artifacts
         WHERE division_id = $1 AND (key_version IS NULL OR key_version <> $2)`,
        [divisionId, key.version],
      );
      if (behind.rows[0].n === 0) return undefined;
      const run = await queueRun(divisionId, key.version, actor);
      deps.onRequested?.();
      return run;
    },

    /** The latest run of each division (or of one), newest first. */
    async runs(divisionId?: string): Promise<ReencryptionRun[]> {
      if (divisionId !== undefined) {
        const exists = await db.query('SELECT 1 FROM divisions WHERE id = $1', [divisionId]);
        if (exists.rows.length === 0)
          throw new AppError(ErrorCode.divisionNotFound, `no division ${divisionId}`);
      }
      const res = await db.query<ReencryptionRow>(
        `SELECT DISTINCT ON (division_id) * FROM key_reencryptions
         WHERE $1::text IS NULL OR division_id = $1
         ORDER BY division_id, created_at DESC`,
        [divisionId ?? null],
      );
      return res.rows.map(toRun);
    },

    async run(id: string): Promise<ReencryptionRun | undefined> {
      const res = await db.query<ReencryptionRow>('SELECT * FROM key_reencryptions WHERE id = $1', [id]);
      return res.rows[0] ? toRun(res.rows[0]) : undefined;
    },

    /** For the progress gauge: each division's latest run (1 once completed). */
    async progress(): Promise<ReencryptionProgress[]> {
      const res = await db.query<ReencryptionRow>(
        'SELECT DISTINCT ON (division_id) * FROM key_reencryptions ORDER BY division_id, created_at DESC',
      );
      return res.rows.map((r) => ({
        division: r.division_id,
        version: Number(r.target_version),
        ratio: r.status === 'completed' ? 1 : Number(r.total) === 0 ? 0 : Number(r.done) / Number(r.total),
      }));
    },

    /**
     * Retires an old version of the division's data key: refused while an artifact still uses it
     * or a re-encryption is under way. Snapshots and audit archives written under it become
     * unreadable for this division (`referencedBy` in the answer counts none of them: they are
     * outside PostgreSQL), which is why retiring is a separate, explicit step.
     */
    async retire(actor: string, divisionId: string, version: number) {
      const keys = store();
      await assertLiveDivision(divisionId);
      if (await activeRun(divisionId)) {
        throw new AppError(ErrorCode.reencryptionInProgress, `division ${divisionId} is being re-encrypted`);
      }
      const current = await keys.current(divisionId).catch((err: unknown) => {
        throw encryptionProblem(err);
      });
      if (current.version === version) {
        throw new AppError(
          ErrorCode.conflict,
          `version ${version} is the current data key of ${divisionId}: rotate before retiring it`,
        );
      }
      const used = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM artifacts WHERE division_id = $1 AND key_version = $2',
        [divisionId, version],
      );
      if (used.rows[0].n > 0) {
        throw new AppError(
          ErrorCode.conflict,
          `${used.rows[0].n} artifact(s) of ${divisionId} are still encrypted with version ${version}: run \`memory-layer keys reencrypt --division ${divisionId}\` first`,
        );
      }
      try {
        await keys.retire(divisionId, version);
      } catch (err) {
        if (err instanceof KeyStoreError && err.code === 'key_version_current') {
          throw new AppError(ErrorCode.conflict, err.message);
        }
        throw encryptionProblem(err);
      }
      await db.transaction((tx) =>
        appendAudit(tx, [
          {
            divisionId,
            actor,
            action: KEY_ACTIONS.retire,
            resourceType: 'key',
            resourceId: divisionId,
            change: { version },
            keepChange: true,
          },
        ]),
      );
    },

    /**
     * KEK rotation: re-wraps the key files still wrapped by KEK_PREVIOUS_FILE with KEK_FILE's
     * key and checks them all; each division re-wrapped now gets a `division.key.rewrap` event
     * (no key leaves the store; the events name the KEK fingerprint only).
     */
    async rewrapKek(actor: string): Promise<RewrapResult> {
      const result = await store().rewrap();
      const live = await db.query<{ id: string }>(
        'SELECT id FROM divisions WHERE id = ANY($1::text[]) AND erased_at IS NULL ORDER BY id',
        [result.rewrapped],
      );
      if (live.rows.length > 0) {
        await db.transaction((tx) =>
          appendAudit(
            tx,
            live.rows.map((r) => ({
              divisionId: r.id,
              actor,
              action: KEY_ACTIONS.rewrap,
              resourceType: 'key',
              resourceId: r.id,
              change: { kekId: result.kekId },
              keepChange: true,
            })),
          ),
        );
      }
      return result;
    },
  };
}

export type KeyRotationService = ReturnType<typeof createKeyRotationService>;
