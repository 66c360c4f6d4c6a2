/**
 * `npm run bench:usearch-build [-- N [kind:ef[:m] ...]]`: how the usearch build breadth
 * (expansion_add), the links per node (HNSW M, default 24 as the adapter's) and the scalar kind
 * (USEARCH_QUANTIZATION) trade insertion speed and bytes for recall@10 on N clustered
 * 512-dimension vectors (default 50k), against usearch's exact search, over 2,000 queries.
 * Searches walk as the adapter's do (its breadth for the size). A query is "stranded" when the
 * walk finds none of its ten true neighbours: a region the graph left unreachable. Chose the
 * adapter's defaults (src/adapters/vector/usearch.ts). Variants default to f32:128 f32:64 f32:32
 * f16:128 f16:64 i8:128.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import usearch from 'usearch';
import { breadthFor } from '../src/adapters/vector/usearch.js';
import { DIMS, makeDataset } from './ingest.js';

const N = Number(process.argv[2] ?? 50000);
const QUERIES = 2000;
const d = makeDataset(N + QUERIES, { clusters: 200, noise: 0.03, seed: 1 });
const queries = Array.from({ length: QUERIES }, (_, q) =>
  d.vectors.subarray((N + q) * DIMS, (N + q + 1) * DIMS),
);
// The true ten nearest (inner product of unit vectors: the cosine order). Copies, not views: the
// binding reads a typed array from the start of its buffer.
const exact = usearch.exactSearch(
  d.vectors.slice(0, N * DIMS),
  d.vectors.slice(N * DIMS, (N + QUERIES) * DIMS),
  DIMS,
  10,
  usearch.MetricKind.IP,
  0,
);
// Keys in the index are row + 1.
const truth = queries.map(
  (_, q) => new Set(Array.from(exact.keys.subarray(q * 10, q * 10 + 10), (k) => Number(k) + 1)),
);
const SCALARS = { f32: usearch.ScalarKind.F32, f16: usearch.ScalarKind.F16, i8: usearch.ScalarKind.I8 };
type Variant = { quantization: keyof typeof SCALARS; ef: number; m: number };
const named = process.argv.slice(3).map((v): Variant => {
  const [quantization, ef, m] = v.split(':');
  if (!(quantization in SCALARS)) throw new Error(`${v}: the kind is f32, f16 or i8`);
  return { quantization: quantization as Variant['quantization'], ef: Number(ef), m: Number(m ?? 24) };
});
const variants: Variant[] = named.length
  ? named
  : (
      [
        ['f32', 128],
        ['f32', 64],
        ['f32', 32],
        ['f16', 128],
        ['f16', 64],
        ['i8', 128],
      ] as const
    ).map(([quantization, ef]) => ({ quantization, ef, m: 24 }));
const dir = mkdtempSync(join(tmpdir(), 'usearch-build-'));
for (const { quantization, ef, m } of variants) {
  const idx = new usearch.Index({
    dimensions: DIMS,
    metric: usearch.MetricKind.Cos,
    quantization: SCALARS[quantization],
    connectivity: m,
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
  let stranded = 0;
  for (const [q, qv] of queries.entries()) {
    const r = idx.search(qv, Math.max(10, breadthFor(N)), 1);
    let found = 0;
    for (const k of r.keys.slice(0, 10)) if (truth[q].has(Number(k))) found++;
    hit += found;
    worst = Math.min(worst, found / 10);
    if (found === 0) stranded++;
  }
  const file = join(dir, `${quantization}-${ef}-${m}.usearch`);
  idx.save(file);
  const mib = statSync(file).size / 2 ** 20;
  console.log(
    `${quantization} ef_add ${ef} M ${m}: build ${build.toFixed(1)} s (${Math.round(N / build)}/s), ` +
      `recall@10 ${(hit / (queries.length * 10)).toFixed(4)} (worst query ${worst.toFixed(2)}, ${stranded} stranded), ` +
      `file ${mib.toFixed(0)} MiB (${Math.round((mib * 2 ** 20) / N)} B per vector)`,
  );
}
rmSync(dir, { recursive: true, force: true });
