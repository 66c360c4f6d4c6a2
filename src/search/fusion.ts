/**
 * Hybrid search: how the keyword and vector rankings become one.
 *
 * `score` (default): each retriever's scores are min-max normalised over its best
 * NORMALISED_DEPTH candidates (the best 1, the NORMALISED_DEPTH-th 0, anything below clipped at
 * 0, so that the scale does not depend on how deep k made the lists), then summed with weights
 * keywordWeight and 1 − keywordWeight; a memory one retriever did not find gets 0 from it. Unlike
 * reciprocal ranks, this keeps how far ahead a retriever's best hits are: a BM25 hit that matches
 * the rare words of a question by a wide margin is not pulled level with the model's tenth guess.
 *
 * Measured on the LoCoMo development split (BENCHMARKS.md, "Retrieval quality"; 760 questions,
 * the built-in model, recall@10, contextual vectors): keyword weight 0.5 / 0.6 / 0.7 gave
 * 68.8 / 68.5 / 68.5 % with BM25 over each memory's own words, and 71.4 / 72.5 / 73.2 % with
 * BM25 over contextual documents (own words twice, neighbours, dates); weighted reciprocal rank
 * fusion (1.0 / 0.7, k 60) 57.4 % and 67.3 %, below keyword search alone (60.4 %, 70.8 %). 0.6
 * is the weight that beat both retrievers alone on every question category with either keyword
 * retriever; 0.7 lost the open-domain category to keyword search alone at recall@5.
 *
 * `rrf`: weighted reciprocal rank fusion (keyword 1.0, vector 0.7, k 60), the fusion before
 * issue 10, kept for comparison (SEARCH_FUSION=rrf).
 */

export interface FusionOptions {
  method: 'score' | 'rrf';
  /** Share of the keyword retriever in `score` fusion; the vector retriever gets the rest. */
  keywordWeight: number;
}

export const DEFAULT_FUSION: FusionOptions = Object.freeze({ method: 'score', keywordWeight: 0.6 });

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

/** Each score mapped to [0, 1] by the list's best and its NORMALISED_DEPTH-th (lists are best first). */
function normalised(list: readonly Ranked[]): number[] {
  if (list.length === 0) return [];
  const hi = list[0].score;
  const lo = list[Math.min(list.length, NORMALISED_DEPTH) - 1].score;
  if (!(hi > lo)) return list.map(() => 1);
  return list.map((r) => Math.max(0, (r.score - lo) / (hi - lo)));
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
    const k = normalised(keyword);
    const v = normalised(vector);
    vector.forEach((r, i) => {
      entry(r.key).score += (1 - opts.keywordWeight) * v[i];
    });
    keyword.forEach((r, i) => {
      entry(r.key).score += opts.keywordWeight * k[i];
    });
  }
  for (const r of vector) entry(r.key).vectorScore = r.score;
  for (const r of keyword) entry(r.key).keywordScore = r.score;
  return [...out.values()].sort((a, b) => b.score - a.score || b.key - a.key);
}
