import type { PostingList } from './postings.js';
import type { Segment } from './segment.js';

/** BM25 parameters, the same as the SQL BM25 (src/search/keyword-sql.ts). */
export const K1 = 1.2;
export const B = 0.75;

export interface ScoredDoc {
  doc: number;
  score: number;
}

// Scratch space reused by every search (scoring is synchronous, so searches never overlap).
let acc = new Float64Array(1024);
let touched = new Int32Array(1024);
let selectBuf = new Float64Array(1024);

function ensureScratch(docs: number): void {
  if (acc.length < docs) {
    const size = Math.max(docs, acc.length * 2);
    acc = new Float64Array(size);
    touched = new Int32Array(size);
    selectBuf = new Float64Array(size);
  }
}

/** The k-th largest of values[0..n) (n >= k >= 1), by quickselect on a copy. */
function kthLargest(values: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] > pivot) i++;
      while (values[j] < pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i] = values[j];
        values[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return values[target];
}

interface Term {
  list: PostingList;
  idf: number;
  /** Highest score the term can add to any document. */
  bound: number;
}

/**
 * The top `k` documents of a segment by BM25 over the query's terms (ids, each counted once),
 * ties broken by the higher memory key, as the SQL BM25 orders them. `allowed`, when given, marks
 * the only document ids that may be returned.
 *
 * Term at a time with MaxScore pruning: terms are taken from the one that can add the most (rare
 * words) to the least (common words). Once k documents are held and the terms left could not lift
 * a document never seen above the current k-th score, the remaining (common) terms only complete
 * the scores of the documents that can still make the top k, by seeking in their postings instead
 * of scanning them. The result is exact: the same documents and scores as scoring every match.
 */
export function topDocuments(
  seg: Segment,
  termIds: readonly number[],
  k: number,
  keyOf: (doc: number) => number,
  allowed?: Uint8Array,
): ScoredDoc[] {
  const n = seg.live;
  if (n === 0 || k <= 0) return [];
  const avgLength = seg.totalLength / n;
  const minNorm = K1 * (1 - B + (B * seg.minLength) / avgLength);
  const terms: Term[] = [];
  for (const id of termIds) {
    const list = seg.postings[id];
    if (!list || list.live === 0) continue;
    const df = list.live;
    const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
    const maxTf = list.maxWeight / 2;
    terms.push({ list, idf, bound: (idf * maxTf * (K1 + 1)) / (maxTf + minNorm) });
  }
  if (terms.length === 0) return [];
  terms.sort((a, b) => b.bound - a.bound);
  // left[i]: the most the terms from i on can add to one document.
  const left = new Float64Array(terms.length + 1);
  for (let i = terms.length - 1; i >= 0; i--) left[i] = left[i + 1] + terms[i].bound;

  ensureScratch(seg.docs);
  const alive = seg.alive;
  const lengthOf = seg.lengthOf;
  const base = K1 * (1 - B);
  const perLength = (K1 * B) / avgLength;
  let count = 0;
  let threshold = 0;
  let t = 0;
  // Phase 1: score every posting of the terms that can still bring in new documents.
  for (; t < terms.length; t++) {
    if (t > 0 && count >= k) {
      for (let i = 0; i < count; i++) selectBuf[i] = acc[touched[i]];
      threshold = kthLargest(selectBuf, count, k);
      if (left[t] < threshold) break;
    }
    const { list, idf } = terms[t];
    const data = list.data;
    const len = list.length;
    for (let i = 0; i < len; i++) {
      const entry = data[i];
      const doc = entry >>> 8;
      if (alive[doc] === 0 || (allowed !== undefined && allowed[doc] === 0)) continue;
      const tf = (entry & 0xff) * 0.5;
      const score = (idf * tf * (K1 + 1)) / (tf + base + perLength * lengthOf[doc]);
      if (acc[doc] === 0) touched[count++] = doc;
      acc[doc] += score;
    }
  }
  let candidates = touched.subarray(0, count);
  if (t < terms.length) {
    // Phase 2: only documents that can still reach the k-th score get the remaining terms.
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const doc = touched[i];
      if (acc[doc] + left[t] >= threshold) touched[kept++] = doc;
      else acc[doc] = 0;
    }
    candidates = touched.subarray(0, kept).sort();
    for (; t < terms.length; t++) {
      const { list, idf } = terms[t];
      const data = list.data;
      let pos = 0;
      for (let i = 0; i < candidates.length && pos < list.length; i++) {
        const doc = candidates[i];
        pos = list.seek(doc, pos);
        if (pos < list.length && data[pos] >>> 8 === doc) {
          const tf = (data[pos] & 0xff) * 0.5;
          acc[doc] += (idf * tf * (K1 + 1)) / (tf + base + perLength * lengthOf[doc]);
        }
      }
    }
  }
  return takeTop(candidates, k, keyOf);
}

/** The k best of the candidates (score, then key, descending); clears their accumulators. */
function takeTop(candidates: Int32Array, k: number, keyOf: (doc: number) => number): ScoredDoc[] {
  const m = candidates.length;
  let cut = Number.NEGATIVE_INFINITY;
  if (m > k) {
    for (let i = 0; i < m; i++) selectBuf[i] = acc[candidates[i]];
    cut = kthLargest(selectBuf, m, k);
  }
  const out: ScoredDoc[] = [];
  for (let i = 0; i < m; i++) {
    const doc = candidates[i];
    if (acc[doc] >= cut) out.push({ doc, score: acc[doc] });
    acc[doc] = 0;
  }
  out.sort((a, b) => b.score - a.score || keyOf(b.doc) - keyOf(a.doc));
  if (out.length > k) out.length = k;
  return out;
}
