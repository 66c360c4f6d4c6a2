/**
 * `npm run bench:usearch-build [-- N [kind:ef ...]]`: how the usearch build breadth (expansion_add)
 * and the scalar kind (USEARCH_QUANTIZATION) trade insertion speed and bytes for recall@10 on N
 * clustered 512-dimension vectors (default 50k), against an exact scan. Searches walk as the
 * adapter's do (its breadth for the size). Chose the adapter's defaults
 * (src/adapters/vector/usearch.ts). Variants default to f32:128 f32:64 f32:32 f16:128 f16:64 i8:128.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import usearch from 'usearch';
import { breadthFor } from '../src/adapters/vector/usearch.js';
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
const named = process.argv.slice(3).map((v) => v.split(':') as [keyof typeof SCALARS, string]);
const variants: [quantization: keyof typeof SCALARS, ef: number][] = named.length
  ? named.map(([q, ef]) => [q, Number(ef)])
  : [
      ['f32', 128],
      ['f32', 64],
      ['f32', 32],
      ['f16', 128],
      ['f16', 64],
      ['i8', 128],
    ];
const SCALARS = { f32: usearch.ScalarKind.F32, f16: usearch.ScalarKind.F16, i8: usearch.ScalarKind.I8 };
const dir = mkdtempSync(join(tmpdir(), 'usearch-build-'));
for (const [quantization, ef] of variants) {
  const idx = new usearch.Index({
    dimensions: DIMS,
    metric: usearch.MetricKind.Cos,
    quantization: SCALARS[quantization],
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
  let worst = 1;
  for (const [q, qv] of queries.entries()) {
    const r = idx.search(qv, Math.max(10, breadthFor(N)), 1);
    let found = 0;
    for (const k of r.keys.slice(0, 10)) if (truth[q].has(Number(k))) found++;
    hit += found;
    worst = Math.min(worst, found / 10);
  }
  const file = join(dir, `${quantization}-${ef}.usearch`);
  idx.save(file);
  const mib = statSync(file).size / 2 ** 20;
  console.log(
    `${quantization} ef_add ${ef}: build ${build.toFixed(1)} s (${Math.round(N / build)}/s), ` +
      `recall@10 ${(hit / (queries.length * 10)).toFixed(4)} (worst query ${worst.toFixed(2)}), ` +
      `file ${mib.toFixed(0)} MiB (${Math.round((mib * 2 ** 20) / N)} B per vector)`,
  );
}
rmSync(dir, { recursive: true, force: true });
