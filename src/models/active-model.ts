import type { Queryable } from '../adapters/db/port.js';
import { type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import { AppError, ErrorCode } from '../platform/errors.js';

/** A model named by its stored columns; the dimensions come from the registry. */
export interface ModelRef {
  name: string;
  version: string;
}

/**
 * Turns a division's model columns into a model: `null` (no model recorded) is the configured
 * default; undefined when this service is not configured with the named model.
 */
export type ModelResolver = (ref: ModelRef | null) => EmbeddingModel | undefined;

export const refOf = (name: string | null, version: string | null): ModelRef | null =>
  name === null || version === null ? null : { name, version };

/** A resolver over the embedder registry (or anything with a default model and a lookup). */
export function resolverOf(catalog: {
  default: { model: EmbeddingModel };
  find(key: string): EmbeddingModel | undefined;
}): ModelResolver {
  return (ref) => (ref === null ? catalog.default.model : catalog.find(modelKey(ref)));
}

export interface DivisionModel {
  defaultTtlDays: number | null;
  /** The division's active model as stored (null: the configured default). */
  ref: ModelRef | null;
}

/**
 * The division's TTL and active model; 404 when there is no such division. `lock` takes a
 * FOR KEY SHARE lock: a re-embedding switches a division's model under FOR UPDATE, so a write
 * that checked the model this way cannot straddle the switch.
 */
export async function readDivisionModel(
  q: Queryable,
  divisionId: string,
  opts: { lock?: boolean; field?: string } = {},
): Promise<DivisionModel> {
  const res = await q.query<{
    default_ttl_days: number | null;
    embedding_model: string | null;
    embedding_model_version: string | null;
  }>(
    `SELECT default_ttl_days, embedding_model, embedding_model_version FROM divisions WHERE id = $1${
      opts.lock ? ' FOR KEY SHARE' : ''
    }`,
    [divisionId],
  );
  const row = res.rows[0];
  if (!row) {
    throw new AppError(ErrorCode.divisionNotFound, `no division ${divisionId}`, [
      { field: opts.field ?? 'divisionId', message: 'unknown division' },
    ]);
  }
  return {
    defaultTtlDays: row.default_ttl_days,
    ref: refOf(row.embedding_model, row.embedding_model_version),
  };
}

/** The model itself; 503 when the division uses a model this service is not configured with. */
export function requireModel(
  resolve: ModelResolver,
  ref: ModelRef | null,
  divisionId: string,
): EmbeddingModel {
  const model = resolve(ref);
  if (model) return model;
  throw new AppError(
    ErrorCode.modelUnavailable,
    `division ${divisionId} uses the embedding model ${modelKey(ref as ModelRef)}, which this service is not configured with (EMBEDDING_MODELS_FILE)`,
  );
}
