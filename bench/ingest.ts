/** Writes through the API: bulk import of precomputed vectors, and texts embedded by the built-in model. */
import { createLocalEmbedder } from '../src/adapters/embedders/local.js';
import { centroids, clusteredVectors, memoryText, rng, type Vocabulary, vocabulary } from './data.js';
import { log, type Server, sumMetric, waitIndexed } from './harness.js';

export const DIMS = 512;
export const MODEL = 'use-lite';
/** The namespace holding 1 % of the rows (every 100th), for the filtered search. */
export const RARE_NAMESPACE = 'rare';

export interface Dataset {
  n: number;
  dims: number;
  vectors: Float32Array;
  clusterOf: Uint16Array;
  texts: string[];
  centroids: Float32Array;
  vocabulary: Vocabulary;
  clusters: number;
  noise: number;
}

export function makeDataset(n: number, o: { clusters: number; noise: number; seed: number }): Dataset {
  const vo = { dims: DIMS, clusters: o.clusters, noise: o.noise, seed: o.seed };
  const cents = centroids(vo);
  const { vectors, clusterOf } = clusteredVectors(vo, cents, n, o.seed + 1);
  const vocab = vocabulary(o.clusters);
  const rand = rng(o.seed + 2);
  const texts = Array.from({ length: n }, (_, i) => memoryText(vocab, clusterOf[i], rand));
  return {
    n,
    dims: DIMS,
    vectors,
    clusterOf,
    texts,
    centroids: cents,
    vocabulary: vocab,
    clusters: o.clusters,
    noise: o.noise,
  };
}

export const namespaceOf = (i: number) => (i % 100 === 37 ? RARE_NAMESPACE : 'main');

/** Memories per POST /v1/memories/import request (NDJSON, ~4.7 kB a line: ~47 MB a request). */
export const IMPORT_LINES = 10_000;

/**
 * Rows [from, to) as NDJSON lines, written by hand: 6-decimal components keep a line ~4.5 kB.
 * `metadata.row` names the row, so that search hits map back to the data set.
 */
function importLines(d: Dataset, from: number, to: number): string {
  const lines: string[] = [];
  for (let i = from; i < to; i++) {
    const comps: number[] = new Array(d.dims);
    const off = i * d.dims;
    for (let j = 0; j < d.dims; j++) comps[j] = Math.round(d.vectors[off + j] * 1e6) / 1e6;
    lines.push(
      `{"text":${JSON.stringify(d.texts[i])},"namespace":"${namespaceOf(i)}","metadata":{"row":${i}},"model":"${MODEL}","vector":[${comps.join(',')}]}\n`,
    );
  }
  return lines.join('');
}

export interface ImportResult {
  n: number;
  /** First request sent → last batch accepted (201). */
  acceptMs: number;
  /** First request sent → nothing pending any more. */
  indexedMs: number;
  acceptedPerSec: number;
  indexedPerSec: number;
  bodyBytes: number;
  vectorWriteSec: number;
}

/**
 * Streams rows [0, n) of the data set to POST /v1/memories/import, IMPORT_LINES per request,
 * `concurrency` requests in flight, then waits until every memory is indexed.
 */
export async function importVectors(
  s: Server,
  d: Dataset,
  n: number,
  o: { concurrency: number; label: string },
): Promise<ImportResult> {
  const starts: number[] = [];
  for (let i = 0; i < n; i += IMPORT_LINES) starts.push(i);
  // Written out before the clock starts: turning 512 numbers a line into text took the benchmark's
  // own process a quarter of the machine's two cores during the import, which a client elsewhere
  // would not take from the service. Kept as Buffers (outside the JavaScript heap): 4.7 GB at 1M.
  log(`${o.label}: writing ${n} NDJSON lines`);
  const bodies = starts.map((from) => Buffer.from(importLines(d, from, Math.min(n, from + IMPORT_LINES))));
  const bodyBytes = bodies.reduce((sum, b) => sum + b.length, 0);
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < starts.length) {
      const i = next++;
      const from = starts[i];
      const to = Math.min(n, from + IMPORT_LINES);
      const body = bodies[i];
      // Keyed, so that a request sent again after a dropped connection skips what it wrote.
      const res = await s.post<{ imported: number; replayed: number; failed: number }>(
        '/v1/memories/import?divisionId=default',
        body,
        {
          'content-type': 'application/x-ndjson',
          'idempotency-key': `bench-${o.label.replaceAll('/', '-')}-${from}`,
        },
      );
      if (res.status !== 200 || res.body.failed > 0 || res.body.imported + res.body.replayed !== to - from)
        throw new Error(`import answered ${res.status}: ${JSON.stringify(res.body).slice(0, 2000)}`);
      done += to - from;
      log(`${o.label}: ${done}/${n} accepted (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, lane));
  const accepted = performance.now();
  const indexed = await waitIndexed(s);
  const acceptMs = accepted - t0;
  const indexedMs = indexed - t0;
  log(
    `${o.label}: ${n} indexed in ${(indexedMs / 1000).toFixed(1)} s (${Math.round((n * 1000) / indexedMs)}/s)`,
  );
  const m = await s.metrics();
  return {
    n,
    acceptMs,
    indexedMs,
    acceptedPerSec: (n * 1000) / acceptMs,
    indexedPerSec: (n * 1000) / indexedMs,
    bodyBytes,
    vectorWriteSec: sumMetric(m, 'memory_layer_vector_write_duration_seconds_sum'),
  };
}

export interface RawEmbedResult {
  texts: number;
  batch: number;
  ms: number;
  perSec: number;
}

/** The built-in model alone, in this process: `createLocalEmbedder().embed` in batches. */
export async function rawEmbedThroughput(texts: string[], batch: number): Promise<RawEmbedResult> {
  const embedder = await createLocalEmbedder();
  // Warm-up (kernels, allocations) on texts outside the measured set.
  await embedder.embed(Array.from({ length: batch }, (_, i) => `warm-up sentence number ${i} about nothing`));
  const t0 = performance.now();
  for (let i = 0; i < texts.length; i += batch) await embedder.embed(texts.slice(i, i + batch));
  const ms = performance.now() - t0;
  await embedder.close();
  return { texts: texts.length, batch, ms, perSec: (texts.length * 1000) / ms };
}

export interface ApiEmbedResult {
  texts: number;
  acceptMs: number;
  indexedMs: number;
  perSec: number;
  /** Worker time inside embedder.embed / the vector index write, from the server's /metrics. */
  embedSec: number;
  embedBatches: number;
  vectorWriteSec: number;
}

/** POSTs the texts without vectors (the worker embeds them) and times accepted → indexed. */
export async function apiEmbedThroughput(s: Server, texts: string[], batch: number): Promise<ApiEmbedResult> {
  // Warm the server's model with one search (its query is embedded), outside the measurement.
  const warm = await s.post('/v1/search', { query: 'warm-up query about a dentist appointment', k: 1 });
  if (warm.status !== 200) throw new Error(`warm-up search answered ${warm.status}`);
  const before = await s.metrics();
  const t0 = performance.now();
  for (let i = 0; i < texts.length; i += batch) {
    const res = await s.post('/v1/memories/batch', {
      items: texts.slice(i, i + batch).map((text) => ({ text, namespace: 'embed' })),
    });
    if (res.status !== 201) throw new Error(`batch answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  const acceptMs = performance.now() - t0;
  const indexedMs = (await waitIndexed(s, { pollMs: 50 })) - t0;
  const after = await s.metrics();
  const delta = (name: string) => sumMetric(after, name) - sumMetric(before, name);
  return {
    texts: texts.length,
    acceptMs,
    indexedMs,
    perSec: (texts.length * 1000) / indexedMs,
    embedSec: delta('memory_layer_embed_duration_seconds_sum'),
    embedBatches: delta('memory_layer_embed_duration_seconds_count'),
    vectorWriteSec: delta('memory_layer_vector_write_duration_seconds_sum'),
  };
}
