import type { Queryable } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';

/** The key a reusable vector is found by: its division and its text's checksum. */
export const reuseKey = (divisionId: string, checksum: string) => `${divisionId}\u0000${checksum}`;

/**
 * Vectors of `model` already stored for texts identical to these (same checksum), so that a text
 * is never embedded twice — but only within the same division. Reuse across divisions would tell
 * one tenant, through timings and counters, that another stored exactly this text.
 * `underConstruction` also looks at vectors a re-embedding has computed but not switched to.
 */
export async function reusableVectors(
  q: Queryable,
  model: EmbeddingModel,
  items: readonly { divisionId: string; checksum: string }[],
  opts: { underConstruction?: boolean } = {},
): Promise<Map<string, Buffer>> {
  const distinct = new Map(items.map((i) => [reuseKey(i.divisionId, i.checksum), i]));
  if (distinct.size === 0) return new Map();
  const wanted = [...distinct.values()];
  const params = [wanted.map((i) => i.divisionId), wanted.map((i) => i.checksum), model.name, model.version];
  const pending = opts.underConstruction
    ? `UNION ALL
       SELECT v.division_id, v.checksum, v.embedding FROM reembed_vectors v, wanted w
       WHERE v.division_id = w.division_id AND v.checksum = w.checksum AND v.model = $3 AND v.model_version = $4`
    : '';
  const res = await q.query<{ division_id: string; checksum: string; embedding: Uint8Array }>(
    `WITH wanted AS (SELECT * FROM unnest($1::text[], $2::text[]) AS w(division_id, checksum))
     SELECT DISTINCT ON (division_id, checksum) division_id, checksum, embedding FROM (
       SELECT n.division_id, n.checksum, n.embedding FROM memory_nodes n, wanted w
       WHERE n.division_id = w.division_id AND n.checksum = w.checksum
         AND n.embedding_model = $3 AND n.embedding_model_version = $4 AND n.embedding IS NOT NULL
       ${pending}
     ) s ORDER BY division_id, checksum`,
    params,
  );
  return new Map(res.rows.map((r) => [reuseKey(r.division_id, r.checksum), Buffer.from(r.embedding)]));
}

/** One item per distinct (division, text) among those without a vector yet: what to embed. */
export function stillToEmbed<T extends { divisionId: string; checksum: string }>(
  items: readonly T[],
  vectors: ReadonlyMap<string, Buffer>,
): T[] {
  const out = new Map<string, T>();
  for (const i of items) {
    const key = reuseKey(i.divisionId, i.checksum);
    if (!vectors.has(key) && !out.has(key)) out.set(key, i);
  }
  return [...out.values()];
}
