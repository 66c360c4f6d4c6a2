import type { Queryable } from '../adapters/db/port.js';
import type { Access } from './access.js';
import { filterSql, type MemoryFilter } from './search-filter.js';

/** BM25 parameters (the usual defaults). */
const K1 = 1.2;
const B = 0.75;
const STATS_TTL_MS = 30_000;

export interface KeywordHit {
  key: number;
  score: number;
}

/** Quotes a lexeme for tsquery input: inside '...', a quote is doubled and a backslash escaped. */
const quoteLexeme = (lexeme: string) => `'${lexeme.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/**
 * Keyword search ranked by BM25 over PostgreSQL full-text lexemes (english stemming and stop
 * words). Terms are OR-ed — `plainto_tsquery` would AND them and a natural question would then
 * match almost nothing — and each match is scored with IDF and length normalisation, which
 * `ts_rank` lacks. Document frequencies come from the filtered matches; the corpus size and mean
 * length per division are cached briefly (they move slowly and only scale scores).
 */
export function createKeywordSearch(db: Queryable) {
  const stats = new Map<string, { n: number; avgdl: number; at: number }>();

  async function divisionStats(divisionId: string) {
    const cached = stats.get(divisionId);
    if (cached && Date.now() - cached.at < STATS_TTL_MS) return cached;
    const res = await db.query<{ n: number; avgdl: number }>(
      `SELECT count(*)::int AS n, coalesce(avg(length(fts)), 1)::float8 AS avgdl
       FROM memory_nodes WHERE division_id = $1 AND deleted_at IS NULL`,
      [divisionId],
    );
    const fresh = { n: Math.max(1, res.rows[0].n), avgdl: Math.max(1, res.rows[0].avgdl), at: Date.now() };
    stats.set(divisionId, fresh);
    return fresh;
  }

  /**
   * Callers without pii:read search the redacted text's lexemes (`fts_redacted`), so they cannot
   * find a memory by the personal data hidden from them.
   */
  return async function keywordSearch(
    text: string,
    filter: MemoryFilter,
    access: Access,
    limit: number,
  ): Promise<KeywordHit[]> {
    const column = access.piiRead ? 'fts' : 'fts_redacted';
    const lex = await db.query<{ lexeme: string }>(
      "SELECT lexeme FROM unnest(to_tsvector('english', $1)) ORDER BY lexeme",
      [text],
    );
    const lexemes = lex.rows.map((r) => r.lexeme);
    if (lexemes.length === 0) return [];
    const { n, avgdl } = await divisionStats(filter.divisionId);
    const params: unknown[] = [];
    const where = filterSql(filter, access, params);
    params.push(lexemes.map(quoteLexeme).join(' | '), lexemes, n, avgdl, limit);
    const p = params.length;
    const res = await db.query<{ key: number; score: number }>(
      `WITH matches AS (
         SELECT n.vector_key, length(n.${column}) AS dl, u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
         FROM memory_nodes n, unnest(n.${column}) u
         WHERE ${where} AND n.${column} @@ $${p - 4}::tsquery AND u.lexeme = ANY($${p - 3}::text[])
       ),
       df AS (SELECT lexeme, count(*) AS df FROM matches GROUP BY lexeme)
       SELECT m.vector_key AS key,
         sum(ln(1 + ($${p - 2}::float8 - df.df + 0.5) / (df.df + 0.5))
             * (m.tf * ${K1 + 1}) / (m.tf + ${K1} * (${1 - B} + ${B} * m.dl / $${p - 1}::float8)))::float8 AS score
       FROM matches m JOIN df USING (lexeme)
       GROUP BY m.vector_key
       ORDER BY score DESC, m.vector_key DESC
       LIMIT $${p}`,
      params,
    );
    return res.rows.map((r) => ({ key: Number(r.key), score: r.score }));
  };
}
