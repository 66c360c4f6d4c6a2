import type { Queryable } from '../adapters/db/port.js';
import type { Access } from '../memories/access.js';
import type { KeywordHit, KeywordRetriever } from './keyword-search.js';

/**
 * Pseudo-relevance feedback for keyword search (SEARCH_FEEDBACK, or `feedback` per search): the
 * words that best characterise the first hits are asked for too, so that a question phrased
 * unlike the memory that answers it can still reach it through the words its neighbours in the
 * ranking share with it. Relevance-model weighting (RM3): a word weighs its share of each of the
 * top FEEDBACK_DOCUMENTS memories' words, times that memory's share of their scores; the
 * FEEDBACK_TERMS heaviest words not in the question are searched for, and BM25 adding up over
 * words, the final score is QUESTION_WEIGHT × the question's score + the expansion's.
 *
 * Off by default: measured on the LoCoMo development split it did not help (BENCHMARKS.md,
 * "Retrieval quality", ablation); conversations repeat their topic words, so the expansion mostly
 * re-asks for what the question already found.
 */

export const FEEDBACK_DOCUMENTS = 5;
export const FEEDBACK_TERMS = 8;
export const QUESTION_WEIGHT = 2;

/** The words (lexemes) of these memories as the caller may search them, with their counts, leaving out the text's own. */
export type FeedbackTerms = (
  keys: number[],
  text: string,
  access: Access,
) => Promise<Map<number, Map<string, number>>>;

/**
 * The memories' lexemes from PostgreSQL: `fts`, or `fts_redacted` for callers without pii:read
 * (words hidden from a caller must not steer its searches).
 */
export function sqlFeedbackTerms(db: Queryable): FeedbackTerms {
  return async (keys, text, access) => {
    const column = access.piiRead ? 'fts' : 'fts_redacted';
    const res = await db.query<{ key: number; lexeme: string; tf: number }>(
      `SELECT n.vector_key AS key, u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
       FROM memory_nodes n, unnest(n.${column}) u
       WHERE n.vector_key = ANY($1::bigint[])
         AND u.lexeme <> ALL (SELECT lexeme FROM unnest(to_tsvector('english', $2)))`,
      [keys, text],
    );
    const out = new Map<number, Map<string, number>>();
    for (const r of res.rows) {
      const key = Number(r.key);
      let terms = out.get(key);
      if (!terms) {
        terms = new Map();
        out.set(key, terms);
      }
      terms.set(r.lexeme, Number(r.tf));
    }
    return out;
  };
}

/** The expansion words for these first hits (best first), heaviest first. */
export function expansionTerms(
  top: readonly KeywordHit[],
  terms: Map<number, Map<string, number>>,
): string[] {
  const total = top.reduce((s, h) => s + h.score, 0);
  if (!(total > 0)) return [];
  const weights = new Map<string, number>();
  for (const hit of top) {
    const words = terms.get(hit.key);
    if (!words) continue;
    const length = [...words.values()].reduce((s, n) => s + n, 0);
    for (const [word, count] of words) {
      weights.set(word, (weights.get(word) ?? 0) + (count / length) * (hit.score / total));
    }
  }
  return [...weights.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, FEEDBACK_TERMS)
    .map(([word]) => word);
}

/** `retrieve` with pseudo-relevance feedback: two keyword searches, combined. */
export function withFeedback(retrieve: KeywordRetriever, termsOf: FeedbackTerms): KeywordRetriever {
  return async (text, filter, access, limit) => {
    const first = await retrieve(text, filter, access, limit);
    const top = first.slice(0, FEEDBACK_DOCUMENTS);
    if (top.length === 0) return first;
    const words = expansionTerms(
      top,
      await termsOf(
        top.map((h) => h.key),
        text,
        access,
      ),
    );
    if (words.length === 0) return first;
    // Lexemes are searched as words: stemming a stem gives it back.
    const more = await retrieve(words.join(' '), filter, access, limit);
    const scores = new Map<number, number>();
    for (const h of first) scores.set(h.key, QUESTION_WEIGHT * h.score);
    for (const h of more) scores.set(h.key, (scores.get(h.key) ?? 0) + h.score);
    return [...scores.entries()]
      .map(([key, score]) => ({ key, score }))
      .sort((a, b) => b.score - a.score || b.key - a.key)
      .slice(0, limit);
  };
}
