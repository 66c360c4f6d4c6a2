/**
 * `npm run bench:usearch-build [-- N]`: how the usearch build breadth (expansion_add) trades insertion
 * speed for recall@10 on N clustered 512-dimension vectors (default 50k), against an exact scan.
 * Chose the adapter's default (src/adapters/vector/usearch.ts).
 */
import usearch from 'usearch';
import { DIMS, makeDataset } from './ingest.js';

const N = Number(process.argv[2] ?? 50000);
const d = makeDataset(N + 200, { clusters: 200, noise: 0.03, seed: 1 });
const queries = Array.from({ length: 200 }, (_, q) => d.vectors.subarray((N + q) * DIMS, (N + q + 1) * DIMS));
// exact truth
const truth = queries.map((qv) => {
  const scores: [number, number][] = [];
  for (let i = 0; i < N; i++) {
    let dot = 0;
    const off = i * DIMS;
    for (let j = 0; j < DIMS; j++) dot += qv[j] * d.vectors[off + j];
    scores.push([dot, i]);
  }
  scores.sort((a, b) => b[0] - a[0]);
  return new Set(scores.slice(0, 10).map((s) => s[1] + 1));
});
for (const ef of [128, 64, 32]) {
  const idx = new usearch.Index({
    dimensions: DIMS,
    metric: usearch.MetricKind.Cos,
    quantization: usearch.ScalarKind.F32,
    connectivity: 16,
    expansion_add: ef,
    expansion_search: 100,
    multi: false,
  });
  const t = performance.now();
  for (let from = 0; from < N; from += 2000) {
    const to = Math.min(N, from + 2000);
    idx.add(
      BigUint64Array.from({ length: to - from }, (_, i) => BigInt(from + i + 1)),
      d.vectors.slice(from * DIMS, to * DIMS),
      0,
    );
  }
  const build = (performance.now() - t) / 1000;
  let hit = 0;
  for (const [q, qv] of queries.entries()) {
    const r = idx.search(qv, 10, 1);
    for (const k of r.keys) if (truth[q].has(Number(k))) hit++;
  }
  console.log(
    `ef_add ${ef}: build ${build.toFixed(1)} s (${Math.round(N / build)}/s), recall@10 ${(hit / 2000).toFixed(4)}`,
  );
}
