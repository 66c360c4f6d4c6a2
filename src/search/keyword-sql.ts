import type { Queryable } from '../adapters/db/port.js';
import type { Access } from '../memories/access.js';
import { filterSql, type MemoryFilter } from './filter.js';

/** BM25 parameters (the usual defaults). */
const K1 = 1.2;
const B = 0.75;
const STATS_TTL_MS = 30_000;
/**
 * A lexeme in more than this share of memories selects candidates only when the query has no
 * rarer lexeme. Such words (IDF below ln 10.5) rarely lift a memory above one matching a rare word, and
 * scoring every memory that contains one made BM25 cost ~600 ms at 100k memories.
 */
const COMMON_SHARE = 0.1;

export interface KeywordHit {
  key: number;
  score: number;
}

/** A keyword retriever: the best `limit` memories for the text among those the filter and access let through. */
export type KeywordRetriever = (
  text: string,
  filter: MemoryFilter,
  access: Access,
  limit: number,
) => Promise<KeywordHit[]>;

/** Quotes a lexeme for tsquery input: inside '...', a quote is doubled and a backslash escaped. */
const quoteLexeme = (lexeme: string) => `'${lexeme.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/**
 * Keyword search computed in SQL: BM25 over PostgreSQL full-text lexemes (english stemming and stop
 * words). Terms are OR-ed — `plainto_tsquery` would AND them and a natural question would then
 * match almost nothing — and each match is scored with IDF and length normalisation, which
 * `ts_rank` lacks. Document frequencies come from the filtered matches; the corpus size and mean
 * length per division are cached briefly (they move slowly and only scale scores). Very common
 * words only select candidates when nothing rarer is asked for (see COMMON_SHARE). Exact for any
 * filter, but its cost grows with the memories holding the query's words; the in-process index
 * (keyword-index/) answers first, and this is its fallback (keyword-search.ts).
 */
export function createSqlKeywordSearch(db: Queryable): KeywordRetriever {
  const stats = new Map<string, { n: number; avgdl: number; at: number }>();

  const common = new Map<string, { freqs: Map<string, number>; at: number }>();

  /**
   * Lexemes in more than COMMON_SHARE of the rows, with their share, from the planner's
   * statistics (ANALYZE keeps the most common elements of tsvector columns): no scan needed.
   */
  async function commonLexemes(column: 'fts' | 'fts_redacted'): Promise<Map<string, number>> {
    const cached = common.get(column);
    if (cached && Date.now() - cached.at < STATS_TTL_MS) return cached.freqs;
    const res = await db.query<{ elems: string[] | null; freqs: number[] | null }>(
      `SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs::float8[] AS freqs
       FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'memory_nodes' AND attname = $1`,
      [column],
    );
    const freqs = new Map<string, number>();
    const { elems, freqs: f } = res.rows[0] ?? { elems: null, freqs: null };
    for (const [i, lexeme] of (elems ?? []).entries()) {
      if ((f?.[i] ?? 0) > COMMON_SHARE) freqs.set(lexeme, f?.[i] ?? 0);
    }
    common.set(column, { freqs, at: Date.now() });
    return freqs;
  }

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
    const frequent = await commonLexemes(column);
    const rare = lexemes.filter((l) => !frequent.has(l));
    const pruned = rare.length > 0 && rare.length < lexemes.length;
    const run = async (selecting: string[]) => {
      // Lexemes left out of the selection are still scored on the selected memories; their
      // document frequency is then the statistics' estimate, not a count over the matches.
      const estimated = lexemes.filter((l) => !selecting.includes(l));
      const params: unknown[] = [];
      const where = filterSql(filter, access, params);
      params.push(
        selecting.map(quoteLexeme).join(' | '),
        lexemes,
        estimated,
        estimated.map((l) => (frequent.get(l) ?? 0) * n),
        n,
        avgdl,
        limit,
      );
      const p = params.length;
      const res = await db.query<{ key: number; score: number }>(
        `WITH matches AS (
           SELECT n.vector_key, length(n.${column}) AS dl, u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
           FROM memory_nodes n, unnest(n.${column}) u
           WHERE ${where} AND n.${column} @@ $${p - 6}::tsquery AND u.lexeme = ANY($${p - 5}::text[])
         ),
         df AS (
           SELECT m.lexeme, coalesce(max(e.df), count(*)) AS df
           FROM matches m LEFT JOIN unnest($${p - 4}::text[], $${p - 3}::float8[]) AS e(lexeme, df) USING (lexeme)
           GROUP BY m.lexeme
         )
         SELECT m.vector_key AS key,
           sum(ln(1 + ($${p - 2}::float8 - df.df + 0.5) / (df.df + 0.5))
               * (m.tf * ${K1 + 1}) / (m.tf + ${K1} * (${1 - B} + ${B} * m.dl / $${p - 1}::float8)))::float8 AS score
         FROM matches m JOIN df USING (lexeme)
         GROUP BY m.vector_key
         ORDER BY score DESC, m.vector_key DESC
         LIMIT $${p}`,
        params,
      );
      return res.rows;
    };
    let rows = await run(pruned ? rare : lexemes);
    // Fewer than `limit` memories hold a rare word: the common words decide the rest.
    if (pruned && rows.length < limit) rows = await run(lexemes);
    return rows.map((r) => ({ key: Number(r.key), score: r.score }));
  };
}
