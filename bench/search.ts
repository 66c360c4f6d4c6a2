/** Search over HTTP: latency percentiles (client-side, request sent → JSON parsed) and recall@k. */
import { clusteredVectors, queryText, rng } from './data.js';
import { log, type Server, sumMetric } from './harness.js';
import { type Dataset, namespaceOf, RARE_NAMESPACE } from './ingest.js';
import { exactTopK, exactTopKAll, mean, recall, type Summary, summarise } from './stats.js';

interface SearchResponse {
  hits: { id: string; metadata?: { row?: number } }[];
  pending: number;
  timings: { embedMs: number; totalMs: number };
}

export interface ModeResult {
  name: string;
  queries: number;
  latency: Summary;
  /** The server's own timing (timings.totalMs): without HTTP, JSON and validation. */
  serverMs: Summary;
  /** timings.embedMs: query embedding by the built-in model (0 when cached or a vector is given). */
  embedMs: Summary;
  recall?: number;
  minRecall?: number;
  /** Queries answered with fewer than k hits. */
  short: number;
  meanHits: number;
  exactFallbacks?: number;
  /** Clients searching at once (1 unless a concurrency scenario), and the searches per second they got. */
  clients?: number;
  perSec?: number;
}

export interface SearchOptions {
  queries: number;
  warmup: number;
  filteredQueries: number;
  hybridTexts: number;
  keywordQueries: number;
  k: number;
  seed: number;
  label: string;
  /** A large write to run while one client searches (then compared with the idle searches). */
  ingestDuring?: () => Promise<unknown>;
}

async function timedSearch(s: Server, body: Record<string, unknown>) {
  const json = JSON.stringify(body);
  const t = performance.now();
  const res = await s.post<SearchResponse>('/v1/search', json);
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`search answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { ms, res: res.body };
}

/** Runs `bodies` in order; the first `warmup` are not measured. Truth (row indices) gives recall. */
async function runMode(
  s: Server,
  name: string,
  bodies: Record<string, unknown>[],
  warmup: number,
  k: number,
  truth?: (i: number) => number[],
  /** How many hits query i can have at most (default k): fewer is a short answer. */
  possible?: (i: number) => number,
): Promise<ModeResult> {
  const lat: number[] = [];
  const server: number[] = [];
  const embed: number[] = [];
  const recalls: number[] = [];
  let short = 0;
  let hits = 0;
  const fallbacksBefore = sumMetric(await s.metrics(), 'memory_layer_search_exact_fallbacks_total');
  for (let i = 0; i < bodies.length; i++) {
    const { ms, res } = await timedSearch(s, bodies[i]);
    if (i < warmup) continue;
    lat.push(ms);
    server.push(res.timings.totalMs);
    embed.push(res.timings.embedMs);
    hits += res.hits.length;
    if (res.hits.length < (possible ? possible(i - warmup) : k)) short++;
    if (truth) {
      const found = res.hits.map((h) => h.metadata?.row ?? -1);
      recalls.push(recall(found, truth(i - warmup)));
    }
  }
  const fallbacks =
    sumMetric(await s.metrics(), 'memory_layer_search_exact_fallbacks_total') - fallbacksBefore;
  const out: ModeResult = {
    name,
    queries: lat.length,
    latency: summarise(lat),
    serverMs: summarise(server),
    embedMs: summarise(embed),
    recall: truth ? mean(recalls) : undefined,
    minRecall: truth ? Math.min(...recalls) : undefined,
    short,
    meanHits: hits / lat.length,
    exactFallbacks: fallbacks,
  };
  log(
    `  ${name}: p50 ${out.latency.p50.toFixed(2)} / p95 ${out.latency.p95.toFixed(2)} / p99 ${out.latency.p99.toFixed(2)} ms` +
      (truth ? `, recall@${k} ${out.recall?.toFixed(4)}` : '') +
      (short ? `, ${short} short answers` : ''),
  );
  return out;
}

/** A scenario measured for latency only (cached embeddings, no recall): client and service times. */
const latencies = (name: string, lat: number[], server: number[]): ModeResult => ({
  name,
  queries: lat.length,
  latency: summarise(lat),
  serverMs: summarise(server),
  embedMs: summarise([0]),
  short: 0,
  meanHits: 0,
});

/**
 * `clients` searchers at once, each sending the next body as soon as its last answer came, until
 * every body is sent: latency per search and searches per second over the whole run. The first
 * `warmup` bodies go out the same way unmeasured, as every other mode warms up: the first round at
 * this concurrency opens the pool's remaining connections and prepares their statements (265/s
 * against 316/s in the round after it, commit af2dc41).
 */
async function runConcurrent(
  s: Server,
  name: string,
  bodies: Record<string, unknown>[],
  clients: number,
  warmup: number,
) {
  const lat: number[] = [];
  const server: number[] = [];
  const round = async (list: Record<string, unknown>[], measured: boolean) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < list.length) {
          const { ms, res } = await timedSearch(s, list[next++]);
          if (!measured) continue;
          lat.push(ms);
          server.push(res.timings.totalMs);
        }
      }),
    );
  };
  await round(bodies.slice(0, warmup), false);
  const measuredBodies = bodies.slice(warmup);
  const t0 = performance.now();
  await round(measuredBodies, true);
  const perSec = (measuredBodies.length * 1000) / (performance.now() - t0);
  const out: ModeResult = { ...latencies(name, lat, server), clients, perSec };
  log(
    `  ${name}: ${perSec.toFixed(0)} searches/s, p50 ${out.latency.p50.toFixed(2)} / p99 ${out.latency.p99.toFixed(2)} ms`,
  );
  return out;
}

/**
 * One client searching while `ingest` runs (a large write through the API): the latency a reader
 * sees while the service embeds and indexes, to compare with the same searches on an idle service.
 */
export async function searchDuringIngest(
  s: Server,
  bodies: Record<string, unknown>[],
  ingest: () => Promise<unknown>,
): Promise<ModeResult> {
  const lat: number[] = [];
  const server: number[] = [];
  let busy = true;
  const writing = ingest().finally(() => {
    busy = false;
  });
  for (let i = 0; busy; i++) {
    const { ms, res } = await timedSearch(s, bodies[i % bodies.length]);
    lat.push(ms);
    server.push(res.timings.totalMs);
  }
  await writing;
  const out = latencies(
    'hybrid, query embedding cached, during an ingest of texts (built-in model)',
    lat,
    server,
  );
  log(`  ${out.name}: p50 ${out.latency.p50.toFixed(2)} / p95 ${out.latency.p95.toFixed(2)} ms`);
  return out;
}

/** Query vectors, their clusters and the exact answers for rows [0, n): computed once per size. */
export interface QuerySet {
  n: number;
  k: number;
  warmup: number;
  queries: number;
  vectors: Float32Array;
  clusterOf: Uint16Array;
  truth: number[][];
  rareTruth: number[][];
  rareRows: number;
}

export function prepareQueries(d: Dataset, n: number, o: Omit<SearchOptions, 'label'>): QuerySet {
  const { k } = o;
  const vo = { dims: d.dims, clusters: d.clusters, noise: d.noise, seed: o.seed };
  const total = o.warmup + o.queries;
  const { vectors, clusterOf } = clusteredVectors(vo, d.centroids, total, o.seed + 100);
  const q = (i: number) => vectors.subarray(i * d.dims, (i + 1) * d.dims);
  log(`${n}: exact top-${k} for ${o.queries} queries over ${n} vectors (ground truth)`);
  const prefix = n * d.dims === d.vectors.length ? d.vectors : d.vectors.subarray(0, n * d.dims);
  const truth = exactTopKAll(prefix, d.dims, vectors.subarray(o.warmup * d.dims, total * d.dims), k);
  const rare = Int32Array.from({ length: n }, (_, i) => i).filter((i) => namespaceOf(i) === RARE_NAMESPACE);
  const fq = Math.min(o.filteredQueries, o.queries);
  const rareTruth = Array.from({ length: fq }, (_, i) => exactTopK(prefix, d.dims, q(o.warmup + i), k, rare));
  return {
    n,
    k,
    warmup: o.warmup,
    queries: o.queries,
    vectors,
    clusterOf,
    truth,
    rareTruth,
    rareRows: rare.length,
  };
}

/** Every search scenario against a server holding rows [0, n) of the data set. */
export async function searchScenarios(
  s: Server,
  d: Dataset,
  qs: QuerySet,
  o: SearchOptions,
): Promise<ModeResult[]> {
  const { k, n, truth, rareTruth } = qs;
  const total = o.warmup + o.queries;
  const qc = qs.clusterOf;
  const q = (i: number) => qs.vectors.subarray(i * d.dims, (i + 1) * d.dims);
  const asList = (i: number) => Array.from(q(i), (x) => Math.round(x * 1e6) / 1e6);
  const rare = { length: qs.rareRows };
  const fq = rareTruth.length;

  const results: ModeResult[] = [];
  const vectorBodies = Array.from({ length: total }, (_, i) => ({ mode: 'vector', vector: asList(i), k }));
  results.push(await runMode(s, 'vector', vectorBodies, o.warmup, k, (i) => truth[i]));

  const filteredBodies = Array.from({ length: Math.min(o.warmup, 20) + fq }, (_, i) => ({
    mode: 'vector',
    vector: asList(i < Math.min(o.warmup, 20) ? i : o.warmup + i - Math.min(o.warmup, 20)),
    namespace: RARE_NAMESPACE,
    k,
  }));
  results.push(
    await runMode(
      s,
      `vector, namespace filter (${rare.length} rows, ${((rare.length / n) * 100).toFixed(1)} %)`,
      filteredBodies,
      Math.min(o.warmup, 20),
      k,
      (i) => rareTruth[i],
    ),
  );

  // Query texts: 2 topic words of the query vector's cluster + 1 common word.
  const rand = rng(o.seed + 200);
  const texts = Array.from({ length: o.hybridTexts }, (_, i) => queryText(d.vocabulary, qc[i], rand));
  // First sight of each text: the server embeds it (cold), which is what a new question costs.
  const coldBodies = texts.map((query) => ({ mode: 'hybrid', query, k }));
  results.push(await runMode(s, 'hybrid, query embedded (first sight of each text)', coldBodies, 0, k));
  // The same texts again, cycled: their embeddings are cached, so this is the search alone.
  const cachedBodies = Array.from({ length: total }, (_, i) => ({
    mode: 'hybrid',
    query: texts[i % texts.length],
    k,
  }));
  results.push(
    await runMode(s, 'hybrid, query embedding cached (repeated texts)', cachedBodies, o.warmup, k),
  );
  // Throughput: 16 clients at once, the same cached texts (issue 13: >= 300/s, p99 <= 100 ms).
  const concurrentWarmup = 2 * o.warmup;
  const concurrentBodies = Array.from(
    { length: concurrentWarmup + Math.max(1_000, 2 * o.queries) },
    (_, i) => ({
      mode: 'hybrid',
      query: texts[i % texts.length],
      k,
    }),
  );
  results.push(
    await runConcurrent(
      s,
      'hybrid, query embedding cached, 16 clients at once',
      concurrentBodies,
      16,
      concurrentWarmup,
    ),
  );
  const keywordWarmup = Math.min(20, o.warmup);
  const keywordBodies = Array.from({ length: keywordWarmup + o.keywordQueries }, (_, i) => ({
    mode: 'keyword',
    query: texts[i % texts.length],
    k,
  }));
  results.push(await runMode(s, 'keyword (BM25 alone)', keywordBodies, keywordWarmup, k));

  // The same texts behind the 1 % namespace: k come back whenever k rows of it share a word.
  const rareRows = Array.from({ length: n }, (_, i) => i).filter((i) => namespaceOf(i) === RARE_NAMESPACE);
  const rareWords = rareRows.map((i) => new Set(d.texts[i].split(' ')));
  const expected = (query: string) => {
    const words = query.split(' ');
    return Math.min(k, rareWords.filter((w) => words.some((x) => w.has(x))).length);
  };
  const filteredKeywordBodies = keywordBodies.map((b) => ({ ...b, namespace: RARE_NAMESPACE }));
  // Short means fewer than the namespace could give (its rows may share a word with fewer than k).
  results.push(
    await runMode(
      s,
      `keyword, namespace filter (${rare.length} rows)`,
      filteredKeywordBodies,
      keywordWarmup,
      k,
      undefined,
      (i) => expected(filteredKeywordBodies[keywordWarmup + i].query),
    ),
  );
  // Last: an ingest leaves the service busy after it (index file saves), which idle figures must not see.
  if (o.ingestDuring) results.push(await searchDuringIngest(s, cachedBodies, o.ingestDuring));
  return results;
}

export interface KeywordIndexStart {
  /** Server start on the imported data (migrations checked, vector index loaded, keyword index built). */
  startMs: number;
  /** memory_layer_keyword_index_build_seconds of the new process. */
  buildSeconds: number;
  /** memory_layer_keyword_index_bytes: the index's own arrays, estimated. */
  bytes: number;
  memories: number;
  /** RSS of the new process once it answered a keyword search. */
  rss: number;
}

/** Restarts the server on its data and reads how long building the keyword index took, and its size. */
export async function keywordIndexAtStart(s: Server): Promise<KeywordIndexStart> {
  const startMs = await s.restart();
  const res = await s.post<SearchResponse>('/v1/search', { mode: 'keyword', query: 'warm up', k: 1 });
  if (res.status !== 200) throw new Error(`search answered ${res.status}`);
  const m = await s.metrics();
  const out = {
    startMs,
    buildSeconds: sumMetric(m, 'memory_layer_keyword_index_build_seconds'),
    bytes: sumMetric(m, 'memory_layer_keyword_index_bytes'),
    memories: sumMetric(m, 'memory_layer_keyword_index_memories'),
    rss: s.rss(),
  };
  log(
    `  keyword index at start: ${out.memories} memories built in ${out.buildSeconds.toFixed(2)} s, ~${(out.bytes / 2 ** 20).toFixed(0)} MiB; process RSS ${(out.rss / 2 ** 20).toFixed(0)} MiB`,
  );
  return out;
}
