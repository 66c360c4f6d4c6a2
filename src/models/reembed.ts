import { randomUUID } from 'node:crypto';
import type { Database } from '../adapters/db/port.js';
import { type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import { MODEL_REF } from '../adapters/embedders/registry.js';
import type { AppendAudit } from '../audit/types.js';
import type { Access } from '../memories/access.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import { lease } from '../platform/lease.js';
import type { ReembedProgress } from '../platform/metrics.js';
import { type ModelResolver, readDivisionModel, refOf } from './active-model.js';

export type ReembedStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A re-embedding run as the API and the CLI show it. */
export interface ReembedRun {
  id: string;
  divisionId: string;
  /** The target model, `name@version`. */
  model: string;
  /** The division's model when the run was requested. */
  fromModel: string | null;
  status: ReembedStatus;
  /** Live memories of the division, and how many have a vector of the target model. */
  total: number;
  done: number;
  /** done / total (1 once completed). */
  progress: number;
  /** Texts sent to the embedder (identical texts and work done before a crash are not sent again). */
  embedded: number;
  error: string | null;
  requestedBy: string;
  createdAt: string;
  startedAt: string | null;
  updatedAt: string;
  finishedAt: string | null;
}

export interface RunRow {
  id: string;
  division_id: string;
  model: string;
  model_version: string;
  from_model: string | null;
  from_model_version: string | null;
  status: ReembedStatus;
  total: number;
  done: number;
  embedded: number;
  error: string | null;
  requested_by: string;
  locked_by: string | null;
  lease_until: Date | null;
  created_at: Date;
  started_at: Date | null;
  updated_at: Date;
  finished_at: Date | null;
}

export const ACTIVE_STATUSES = ['queued', 'running'] as const;

const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());

export const progressOf = (r: Pick<RunRow, 'status' | 'total' | 'done'>) =>
  r.status === 'completed' ? 1 : r.total > 0 ? Math.min(1, r.done / r.total) : 0;

export function toRun(r: RunRow): ReembedRun {
  const from = refOf(r.from_model, r.from_model_version);
  return {
    id: r.id,
    divisionId: r.division_id,
    model: `${r.model}@${r.model_version}`,
    fromModel: from ? modelKey(from) : null,
    status: r.status,
    // The total is counted now and then; memories written since may make `done` pass it.
    total: Math.max(r.total, r.done),
    done: r.done,
    progress: progressOf(r),
    embedded: r.embedded,
    error: r.error,
    requestedBy: r.requested_by,
    createdAt: iso(r.created_at) as string,
    startedAt: iso(r.started_at),
    updatedAt: iso(r.updated_at) as string,
    finishedAt: iso(r.finished_at),
  };
}

const notFound = (id: string) =>
  new AppError(ErrorCode.reembedNotFound, `no re-embedding run ${id}`, [
    { field: 'id', message: 'unknown run' },
  ]);

export interface ReembedServiceDeps {
  db: Database;
  /** The models this service can embed with (the registry). */
  models: { find(key: string): EmbeddingModel | undefined; list(): EmbeddingModel[] };
  resolveModel: ModelResolver;
  appendAudit: AppendAudit;
  /** Called after a run was queued, to wake an in-process runner. */
  onRequested: () => void;
}

export type ReembedService = ReturnType<typeof createReembedService>;

/**
 * Re-embedding runs: asking for one, reading them, cancelling. The work itself is done by the
 * runner (reembed-runner.ts) in processes that run the worker, or by `memory-layer reembed`.
 */
export function createReembedService(deps: ReembedServiceDeps) {
  const { db } = deps;

  /** `name@version` of a model this service has; 400 when malformed, 422 when unknown. */
  function targetOf(model: string): EmbeddingModel {
    if (!MODEL_REF.test(model)) {
      throw new AppError(ErrorCode.validation, 'model must be name@version', [
        { field: 'model', message: 'must be name@version, e.g. use-lite@0.2.0' },
      ]);
    }
    const target = deps.models.find(model);
    if (!target) {
      const known = deps.models.list().map(modelKey).join(', ');
      throw new AppError(ErrorCode.unknownModel, `no embedding model ${model} is configured`, [
        { field: 'model', message: `not configured; known models: ${known}` },
      ]);
    }
    return target;
  }

  async function get(id: string, divisions: readonly string[] | '*' = '*'): Promise<ReembedRun> {
    const res = await db.query<RunRow>('SELECT * FROM reembed_runs WHERE id = $1', [id]);
    const row = res.rows[0];
    // Another division's run is as absent as a run that does not exist.
    if (!row || (divisions !== '*' && !divisions.includes(row.division_id))) throw notFound(id);
    return toRun(row);
  }

  async function activeRun(divisionId: string): Promise<ReembedRun | null> {
    const res = await db.query<RunRow>(
      'SELECT * FROM reembed_runs WHERE division_id = $1 AND status = ANY($2::text[])',
      [divisionId, ACTIVE_STATUSES],
    );
    return res.rows[0] ? toRun(res.rows[0]) : null;
  }

  return {
    activeRun,
    get,

    /**
     * Queues a run moving the division to `model`. 409 when the division already uses it or a
     * run is already under way (at most one per division: a unique index says so).
     */
    async request(access: Access, input: { divisionId: string; model: string }): Promise<ReembedRun> {
      const target = targetOf(input.model);
      const inProgress = (run: ReembedRun | null) =>
        new AppError(
          ErrorCode.reembedInProgress,
          `division ${input.divisionId} is already being re-embedded${run ? ` to ${run.model} (run ${run.id})` : ''}`,
          [{ field: 'divisionId', message: 'wait for the run in progress, or cancel it' }],
        );
      try {
        const row = await db.transaction(async (tx) => {
          const division = await readDivisionModel(tx, input.divisionId);
          const current = deps.resolveModel(division.ref);
          const currentKey = current ? modelKey(current) : division.ref && modelKey(division.ref);
          if (currentKey === modelKey(target)) {
            throw new AppError(
              ErrorCode.modelAlreadyActive,
              `division ${input.divisionId} already uses ${modelKey(target)}`,
              [{ field: 'model', message: "already the division's model" }],
            );
          }
          const res = await tx.query<RunRow>(
            `INSERT INTO reembed_runs (id, division_id, model, model_version, from_model, from_model_version, requested_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
            [
              randomUUID(),
              input.divisionId,
              target.name,
              target.version,
              current?.name ?? division.ref?.name ?? null,
              current?.version ?? division.ref?.version ?? null,
              access.actor,
            ],
          );
          const run = res.rows[0];
          await deps.appendAudit(tx, [
            {
              divisionId: input.divisionId,
              actor: access.actor,
              action: 'reembed.request',
              resourceType: 'reembed',
              resourceId: run.id,
              manifestSignatureId: access.manifestSignatureId,
              change: { from: currentKey, to: modelKey(target) },
            },
          ]);
          return run;
        });
        deps.onRequested();
        return toRun(row);
      } catch (err) {
        // The unique index on unfinished runs: another request won.
        if ((err as { code?: string }).code === '23505') throw inProgress(await activeRun(input.divisionId));
        throw err;
      }
    },

    /** Newest first. */
    async list(opts: { divisionId?: string; divisions?: readonly string[] | '*'; limit: number }) {
      const divisions = opts.divisions ?? '*';
      const res = await db.query<RunRow>(
        `SELECT * FROM reembed_runs
         WHERE ($1::text IS NULL OR division_id = $1) AND ($2::text[] IS NULL OR division_id = ANY($2::text[]))
         ORDER BY created_at DESC, id LIMIT $3`,
        [opts.divisionId ?? null, divisions === '*' ? null : divisions, opts.limit],
      );
      return res.rows.map(toRun);
    },

    /**
     * Stops a run that has not finished: the runner notices at its next batch. The vectors it
     * computed stay, so asking again continues where it stopped.
     */
    async cancel(access: Access, id: string, divisions: readonly string[] | '*' = '*'): Promise<ReembedRun> {
      const run = await get(id, divisions);
      const row = await db.transaction(async (tx) => {
        const res = await tx.query<RunRow>(
          `UPDATE reembed_runs SET status = 'cancelled', finished_at = now(), updated_at = now(),
             ${lease.release}
           WHERE id = $1 AND status = ANY($2::text[]) RETURNING *`,
          [id, ACTIVE_STATUSES],
        );
        if (!res.rows[0]) {
          throw new AppError(ErrorCode.conflict, `run ${id} has already finished (${run.status})`, [
            { field: 'id', message: `run is ${run.status}` },
          ]);
        }
        await deps.appendAudit(tx, [
          {
            divisionId: run.divisionId,
            actor: access.actor,
            action: 'reembed.cancel',
            resourceType: 'reembed',
            resourceId: id,
            manifestSignatureId: access.manifestSignatureId,
            change: { to: run.model, done: res.rows[0].done, total: res.rows[0].total },
          },
        ]);
        return res.rows[0];
      });
      return toRun(row);
    },

    /** The latest run of each division, for the progress gauge. */
    async progress(): Promise<ReembedProgress[]> {
      const res = await db.query<RunRow>(
        'SELECT DISTINCT ON (division_id) * FROM reembed_runs ORDER BY division_id, created_at DESC',
      );
      return res.rows.map((r) => ({
        division: r.division_id,
        model: `${r.model}@${r.model_version}`,
        ratio: progressOf(r),
      }));
    },
  };
}
