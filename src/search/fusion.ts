/**
 * Hybrid search: how the keyword and vector rankings become one.
 *
 * `score` (default): each retriever's scores become standard scores — how many standard
 * deviations a candidate stands above the mean of the retriever's best NORMALISED_DEPTH candidates
 * (so the scale does not depend on how deep k made the lists) — and are summed with weights
 * keywordWeight and 1 − keywordWeight. A memory one retriever did not return counts as that
 * retriever's lowest candidate: it scored no better than that one. Unlike reciprocal ranks, this
 * keeps how far ahead a retriever's best hits are: a BM25 hit that matches the rare words of a
 * question by a wide margin is not pulled level with the model's tenth guess, and the model's
 * clear favourite is not lost among keyword hits that barely differ. Standard scores rather than
 * min-max: one outlying best score does not squash every other candidate of its list.
 *
 * Measured on the LoCoMo development split (BENCHMARKS.md, "Retrieval quality"; 760 questions,
 * built-in model, contextual BM25 and vectors), recall@10: keyword search alone 72.5 %, vector
 * search alone 49.8 %; weighted reciprocal rank fusion 68.5 % (below keyword search alone);
 * min-max fusion 71.3 / 73.6 / 73.1 / 73.5 % and standard-score fusion 72.0 / 72.9 / 73.9 /
 * 73.2 % at keyword weight 0.5 / 0.6 / 0.65 / 0.7. Overall recall is flat from 0.6 to 0.7, and
 * 0.65 is the middle of that plateau, not a peak chosen for these five conversations. Standard
 * scores at 0.65 beat both retrievers alone in each question category at recall@10 and @20;
 * min-max at 0.6 lost the single-hop questions to keyword search alone (83.0 against 83.5 %).
 *
 * `minmax`: the same with min-max normalisation over the best NORMALISED_DEPTH (the best 1, the
 * NORMALISED_DEPTH-th 0, lower ones clipped to 0), kept for comparison (SEARCH_FUSION=minmax).
 *
 * `rrf`: weighted reciprocal rank fusion (keyword 1.0, vector 0.7, k 60), the fusion before
 * issue 10, kept for comparison (SEARCH_FUSION=rrf).
 */

export interface FusionOptions {
  method: 'score' | 'minmax' | 'rrf';
  /** Share of the keyword retriever in `score` fusion; the vector retriever gets the rest. */
  keywordWeight: number;
}

export const DEFAULT_FUSION: FusionOptions = Object.freeze({ method: 'score', keywordWeight: 0.65 });

/** Candidates whose scores set the normalisation (the hybrid depth for k <= 25). */
export const NORMALISED_DEPTH = 50;

const RRF_K = 60;
const RRF_KEYWORD_WEIGHT = 1.0;
const RRF_VECTOR_WEIGHT = 0.7;

export interface Ranked {
  key: number;
  /** Higher is better: BM25 for keyword hits, cosine similarity for vector hits. */
  score: number;
}

export interface Fused {
  key: number;
  score: number;
  keywordScore?: number;
  vectorScore?: number;
}

/**
 * Standard scores of a list (best first) by the mean and deviation of its best NORMALISED_DEPTH;
 * when those are all equal (one candidate, ties), 1 each. `floor`: what a memory absent from the
 * list counts as (the lowest candidate's score; 0 below an all-equal list).
 */
function standardised(list: readonly Ranked[]): { scores: number[]; floor: number } {
  if (list.length === 0) return { scores: [], floor: 0 };
  const head = list.slice(0, NORMALISED_DEPTH);
  const mean = head.reduce((s, r) => s + r.score, 0) / head.length;
  const sd = Math.sqrt(head.reduce((s, r) => s + (r.score - mean) ** 2, 0) / head.length);
  if (!(sd > 0)) return { scores: list.map(() => 1), floor: 0 };
  const scores = list.map((r) => (r.score - mean) / sd);
  return { scores, floor: Math.min(...scores) };
}

/** Min-max over the best NORMALISED_DEPTH: the best 1, the NORMALISED_DEPTH-th 0, lower ones clipped to 0. */
function minMax(list: readonly Ranked[]): { scores: number[]; floor: number } {
  if (list.length === 0) return { scores: [], floor: 0 };
  const hi = list[0].score;
  const lo = list[Math.min(list.length, NORMALISED_DEPTH) - 1].score;
  if (!(hi > lo)) return { scores: list.map(() => 1), floor: 0 };
  return { scores: list.map((r) => Math.max(0, (r.score - lo) / (hi - lo))), floor: 0 };
}

/** The fused ranking of two rankings (each best first), best first; ties by the newer key. */
export function fuse(keyword: readonly Ranked[], vector: readonly Ranked[], opts: FusionOptions): Fused[] {
  const out = new Map<number, Fused>();
  const entry = (key: number) => {
    let e = out.get(key);
    if (!e) {
      e = { key, score: 0 };
      out.set(key, e);
    }
    return e;
  };
  if (opts.method === 'rrf') {
    vector.forEach((r, rank) => {
      entry(r.key).score += RRF_VECTOR_WEIGHT / (RRF_K + rank + 1);
    });
    keyword.forEach((r, rank) => {
      entry(r.key).score += RRF_KEYWORD_WEIGHT / (RRF_K + rank + 1);
    });
  } else {
    // Measured from each list's floor (a constant shift): scores stay >= 0, absent counts 0.
    const normalise = opts.method === 'minmax' ? minMax : standardised;
    const k = normalise(keyword);
    const v = normalise(vector);
    const w = opts.keywordWeight;
    vector.forEach((r, i) => {
      entry(r.key).score += (1 - w) * (v.scores[i] - v.floor);
    });
    keyword.forEach((r, i) => {
      entry(r.key).score += w * (k.scores[i] - k.floor);
    });
  }
  for (const r of vector) entry(r.key).vectorScore = r.score;
  for (const r of keyword) entry(r.key).keywordScore = r.score;
  return [...out.values()].sort((a, b) => b.score - a.score || b.key - a.key);
}
