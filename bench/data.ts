/**
 * Synthetic, reproducible workloads: clustered unit vectors (random centroids plus gaussian
 * noise) with texts drawn from a small vocabulary tied to the clusters, so that keyword and
 * hybrid search have real matches, and short English sentences for the built-in model.
 */

/** mulberry32: small, fast, seedable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Normalises `v[off .. off+dims)` in place and rounds each component to 6 decimals (what is sent as JSON). */
function normaliseRounded(v: Float32Array, off: number, dims: number): void {
  let norm = 0;
  for (let j = 0; j < dims; j++) norm += v[off + j] * v[off + j];
  norm = Math.sqrt(norm) || 1;
  for (let j = 0; j < dims; j++) v[off + j] = Math.round((v[off + j] / norm) * 1e6) / 1e6;
}

export interface VectorSetOptions {
  dims: number;
  clusters: number;
  /** Standard deviation of the per-component noise added to a unit centroid. */
  noise: number;
  seed: number;
}

/** The centroids of a clustered data set (unit vectors). */
export function centroids(o: VectorSetOptions): Float32Array {
  const g = gaussian(rng(o.seed));
  const out = new Float32Array(o.clusters * o.dims);
  for (let i = 0; i < out.length; i++) out[i] = g();
  for (let c = 0; c < o.clusters; c++) normaliseRounded(out, c * o.dims, o.dims);
  return out;
}

/**
 * `n` vectors, each its cluster's centroid plus gaussian noise, normalised and rounded to 6
 * decimals so that the JSON sent and the Float32Array kept for ground truth hold the same values.
 * Vector i belongs to cluster `clusterOf[i]`.
 */
export function clusteredVectors(
  o: VectorSetOptions,
  cents: Float32Array,
  n: number,
  seed: number,
): { vectors: Float32Array; clusterOf: Uint16Array } {
  const rand = rng(seed);
  const g = gaussian(rand);
  const vectors = new Float32Array(n * o.dims);
  const clusterOf = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rand() * o.clusters);
    clusterOf[i] = c;
    const off = i * o.dims;
    for (let j = 0; j < o.dims; j++) vectors[off + j] = cents[c * o.dims + j] + o.noise * g();
    normaliseRounded(vectors, off, o.dims);
  }
  return { vectors, clusterOf };
}

export const vectorAt = (vectors: Float32Array, dims: number, i: number): number[] =>
  Array.from(vectors.subarray(i * dims, (i + 1) * dims));

// --- texts for keyword search: pseudo-words (consonant-vowel syllables, no 'e', so none is an
// English stop word) that the english text-search configuration keeps as lexemes.

const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aiou';

function pseudoWords(count: number, seed: number): string[] {
  const rand = rng(seed);
  const seen = new Set<string>();
  const out: string[] = [];
  while (out.length < count) {
    const syllables = 2 + Math.floor(rand() * 2);
    let w = '';
    for (let s = 0; s < syllables; s++) {
      w += CONSONANTS[Math.floor(rand() * CONSONANTS.length)] + VOWELS[Math.floor(rand() * VOWELS.length)];
    }
    if (!seen.has(w)) {
      seen.add(w);
      out.push(w);
    }
  }
  return out;
}

/**
 * Vocabulary: every cluster owns `topicWords` words of its own; `generalWords` more are shared by
 * all texts and drawn with a Zipf distribution (s = 1), as natural language is: the commonest
 * appears in about half of all texts, the rarest in a few per 10,000.
 */
export interface Vocabulary {
  topic: string[][];
  general: string[];
  /** Cumulative Zipf weights over `general`. */
  zipf: Float64Array;
}

export function vocabulary(clusters: number, topicWords = 8, generalWords = 1000, seed = 7): Vocabulary {
  const words = pseudoWords(clusters * topicWords + generalWords, seed);
  const topic = Array.from({ length: clusters }, (_, c) => words.slice(c * topicWords, (c + 1) * topicWords));
  const general = words.slice(clusters * topicWords);
  const zipf = new Float64Array(general.length);
  let sum = 0;
  for (let r = 0; r < general.length; r++) {
    sum += 1 / (r + 1);
    zipf[r] = sum;
  }
  for (let r = 0; r < general.length; r++) zipf[r] /= sum;
  return { topic, general, zipf };
}

function zipfWord(v: Vocabulary, rand: () => number): string {
  const x = rand();
  let lo = 0;
  let hi = v.zipf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v.zipf[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return v.general[lo];
}

function pick<T>(items: T[], count: number, rand: () => number): T[] {
  const copy = [...items];
  const out: T[] = [];
  for (let i = 0; i < count && copy.length > 0; i++)
    out.push(copy.splice(Math.floor(rand() * copy.length), 1)[0]);
  return out;
}

/** A memory text: 3 of its cluster's topic words and 6 general words, shuffled. */
export function memoryText(v: Vocabulary, cluster: number, rand: () => number): string {
  const words = [...pick(v.topic[cluster], 3, rand)];
  for (let i = 0; i < 6; i++) words.push(zipfWord(v, rand));
  return pick(words, words.length, rand).join(' ');
}

/** A search text: 2 topic words of the cluster and 1 general word. */
export function queryText(v: Vocabulary, cluster: number, rand: () => number): string {
  return [...pick(v.topic[cluster], 2, rand), zipfWord(v, rand)].join(' ');
}

// --- short English sentences for the built-in model (real words: its tokenizer and its cost per
// text depend on them).

const SUBJECTS = [
  'Alice',
  'Bob',
  'Carol',
  'Dave',
  'Erin',
  'Frank',
  'Grace',
  'Heidi',
  'Ivan',
  'Judy',
  'The customer',
  'My manager',
  'The support team',
  'Our agent',
  'The new hire',
  'A user',
  'The vendor',
  'Her brother',
  'The landlord',
  'His doctor',
];
const VERBS = [
  'prefers',
  'asked about',
  'complained about',
  'booked',
  'cancelled',
  'forgot',
  'mentioned',
  'paid for',
  'wants to change',
  'reviewed',
  'recommended',
  'is allergic to',
  'signed up for',
  'returned',
  'scheduled',
  'is worried about',
  'loves',
  'lost',
  'ordered',
  'renewed',
];
const OBJECTS = [
  'the quarterly report',
  'a window seat',
  'vegetarian meals',
  'the premium plan',
  'a dentist appointment',
  'the hotel in Lisbon',
  'the red bicycle',
  'a refund',
  'peanuts',
  'the yoga class',
  'the API key',
  'the project deadline',
  'a flight to Tokyo',
  'the birthday party',
  'the broken laptop',
  'a table for four',
  'the insurance claim',
  'the piano lessons',
  'dark roast coffee',
  'the lease',
];
const TAILS = [
  'last Tuesday',
  'this morning',
  'before the holidays',
  'every weekend',
  'after the meeting',
  'twice this month',
  'in the evening',
  'during the call',
  'next Friday',
  'since January',
];

/** `n` distinct short sentences (at most 80,000 exist). */
export function sentences(n: number, seed = 11): string[] {
  const total = SUBJECTS.length * VERBS.length * OBJECTS.length * TAILS.length;
  if (n > total) throw new Error(`at most ${total} distinct sentences`);
  const rand = rng(seed);
  const seen = new Set<number>();
  const out: string[] = [];
  while (out.length < n) {
    const k = Math.floor(rand() * total);
    if (seen.has(k)) continue;
    seen.add(k);
    let r = k;
    const s = SUBJECTS[r % SUBJECTS.length];
    r = Math.floor(r / SUBJECTS.length);
    const v = VERBS[r % VERBS.length];
    r = Math.floor(r / VERBS.length);
    const o = OBJECTS[r % OBJECTS.length];
    r = Math.floor(r / OBJECTS.length);
    out.push(`${s} ${v} ${o} ${TAILS[r]}.`);
  }
  return out;
}
