import type { Queryable } from '../adapters/db/port.js';
import type { Access } from '../memories/access.js';
import { filterSql, type MemoryFilter } from './filter.js';
import type { KeywordIndex } from './keyword-index/index.js';
import { createSqlKeywordSearch, type KeywordHit } from './keyword-sql.js';

export type { KeywordHit, KeywordRetriever } from './keyword-sql.js';

/** The keys, among `keys`, of memories the filter and access let through. */
export type KeyCheck = (keys: number[]) => Promise<Set<number>>;

/**
 * The keyword retriever, whose first check of candidates can be made by the caller: `firstCheck`
 * (when given) answers it, so that a search can put it into one statement with its other checks.
 */
export type StagedKeywordRetriever = (
  text: string,
  filter: MemoryFilter,
  access: Access,
  limit: number,
  firstCheck?: KeyCheck,
) => Promise<KeywordHit[]>;

/** Query lexemes kept per division and text (a search repeated is common: agents re-ask). */
const LEXEME_CACHE_SIZE = 1000;
/** Candidates asked of the index at most, when filters reject most of them. */
const MAX_FETCH = 10_000;
/** A filter letting fewer memories through is answered by scoring exactly those in the index. */
const MAX_ALLOWED = 20_000;

/**
 * The keyword retriever. Without an index: BM25 in SQL (keyword-sql.ts). With the in-process
 * index (keyword-index/): it catches up with PostgreSQL, ranks the division's memories by BM25 over
 * their contextual documents, and keeps the candidates that pass the filters and the caller's
 * confinement, checked in SQL on their keys like vector search does. When fewer than `limit`
 * survive and the index had more, it asks for 16× more once (when the share that passed promises
 * enough); still short, it ranks exactly the memories the filter lets through when they are few
 * (≤ 20,000), else falls back to the SQL BM25 (exact too, over the memories' own words).
 *
 * Query lexemes come from `to_tsvector('english', text)` like the stored ones, so stemming and stop
 * words match. They are cached per division: a cache shared across divisions would tell a tenant,
 * by its speed, that another asked the same.
 */
export function createKeywordSearch(db: Queryable, index?: KeywordIndex): StagedKeywordRetriever {
  const sql = createSqlKeywordSearch(db);
  if (!index) return sql;
  const lexemeCache = new Map<string, string[]>();

  async function queryLexemes(divisionId: string, text: string): Promise<string[]> {
    const cacheKey = `${divisionId}\n${text}`;
    const hit = lexemeCache.get(cacheKey);
    if (hit) {
      lexemeCache.delete(cacheKey);
      lexemeCache.set(cacheKey, hit);
      return hit;
    }
    const res = await db.query<{ lexeme: string }>("SELECT lexeme FROM unnest(to_tsvector('english', $1))", [
      text,
    ]);
    const lexemes = res.rows.map((r) => r.lexeme);
    lexemeCache.set(cacheKey, lexemes);
    if (lexemeCache.size > LEXEME_CACHE_SIZE) lexemeCache.delete(lexemeCache.keys().next().value as string);
    return lexemes;
  }

  /** The keys, among `keys`, of memories the filter and access let through. */
  async function passing(keys: number[], filter: MemoryFilter, access: Access): Promise<Set<number>> {
    if (keys.length === 0) return new Set();
    const params: unknown[] = [];
    const where = filterSql(filter, access, params);
    params.push(keys);
    const res = await db.query<{ vector_key: number }>(
      `SELECT n.vector_key FROM memory_nodes n WHERE ${where} AND n.vector_key = ANY($${params.length}::bigint[])`,
      params,
    );
    return new Set(res.rows.map((r) => Number(r.vector_key)));
  }

  /**
   * Keys of the memories the filter and access let through, when there are at most `max`. As one
   * text value: thousands of one-field rows cost PGlite far more to decode than one long field.
   */
  async function allowedKeys(filter: MemoryFilter, access: Access, max: number): Promise<number[] | null> {
    const params: unknown[] = [];
    const where = filterSql(filter, access, params);
    params.push(max + 1);
    const res = await db.query<{ keys: string | null }>(
      `SELECT string_agg(k::text, ',') AS keys FROM (
         SELECT n.vector_key AS k FROM memory_nodes n WHERE ${where} LIMIT $${params.length}) s`,
      params,
    );
    const keys = res.rows[0]?.keys ? res.rows[0].keys.split(',').map(Number) : [];
    return keys.length > max ? null : keys;
  }

  return async function keywordSearch(text, filter, access, limit, firstCheck): Promise<KeywordHit[]> {
    const lexemes = await queryLexemes(filter.divisionId, text);
    if (lexemes.length === 0 || limit <= 0) return [];
    await index.catchUp();
    // Callers without pii:read search the redacted text's lexemes, so they cannot find a memory by
    // the personal data hidden from them.
    const view = access.piiRead ? 'full' : 'redacted';
    let fetch = limit + Math.max(limit, 20);
    for (let round = 0; ; round++) {
      const hits = index.search(filter.divisionId, view, lexemes, fetch);
      const keys = hits.map((h) => h.key);
      const ok = round === 0 && firstCheck ? await firstCheck(keys) : await passing(keys, filter, access);
      const kept = hits.filter((h) => ok.has(h.key));
      // Fewer hits than asked: every match of the division was among them.
      if (kept.length >= limit || hits.length < fetch) return kept.slice(0, limit);
      const wider = Math.min(fetch * 16, MAX_FETCH);
      // Widen once, and only when the share that passed promises enough from the wider list.
      if (round > 0 || wider === fetch || (kept.length / hits.length) * wider < limit) break;
      fetch = wider;
    }
    const allowed = await allowedKeys(filter, access, MAX_ALLOWED);
    if (allowed) return index.search(filter.divisionId, view, lexemes, limit, allowed);
    return sql(text, filter, access, limit);
  };
}
