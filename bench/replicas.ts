/**
 * Replicas following the change feed (`npm run bench:replicas -- --database-url URL [--memories N]`):
 * a writer (API + worker, its own usearch index) and a replica (`serve --no-worker` with
 * VECTOR_INDEX_FOLLOW=on, its own usearch index) on one PostgreSQL schema, each in a process of
 * its own. Measures what docs/architecture.md promises: the replica's start (a rebuild from
 * PostgreSQL), how soon a memory the writer indexed is found on the replica, its lag while an
 * import runs, a restart that resumes from the saved position against a rebuild, and whether both
 * answer alike. Prints a Markdown section for BENCHMARKS.md.
 */
import { log, type Server, startServer } from './harness.js';
import { DIMS, importVectors, MODEL, makeDataset } from './ingest.js';
import { summarise } from './stats.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const databaseUrl = arg('database-url') ?? process.env.DATABASE_URL;
if (!databaseUrl) throw new Error('--database-url is required: replicas share a PostgreSQL server');
const N = Number(arg('memories') ?? 100_000);
const BURST = Math.round(N / 10);
const PROBES = Number(arg('probes') ?? 50);

/** Row i of the data set as a JSON vector: probes come from the same clusters as the data. */
const rowVector = (d: ReturnType<typeof makeDataset>, i: number): number[] =>
  Array.from(d.vectors.subarray(i * DIMS, (i + 1) * DIMS), (c) => Math.round(c * 1e6) / 1e6);

async function nearest(s: Server, vector: number[], k = 10): Promise<string[]> {
  const res = await s.post<{ hits: { id: string }[] }>('/v1/search', {
    vector,
    mode: 'vector',
    k,
  });
  if (res.status !== 200) throw new Error(`search answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.hits.map((h) => h.id);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now();
}

const lagOf = async (s: Server) =>
  (await s.get<{ replica?: { lagSeconds: number | null } }>('/readyz')).body.replica?.lagSeconds ??
  Number.NaN;

async function agreement(a: Server, b: Server, d: ReturnType<typeof makeDataset>, queries = 100) {
  let same = 0;
  for (let q = 0; q < queries; q++) {
    const v = Array.from(
      d.vectors.subarray(((q * 97) % N) * DIMS, (((q * 97) % N) + 1) * DIMS),
      (c) => Math.round(c * 1e6) / 1e6,
    );
    const [x, y] = [await nearest(a, v, 10), await nearest(b, v, 10)];
    if (x.join() === y.join()) same++;
  }
  return same / queries;
}

const d = makeDataset(N + 2 * BURST + PROBES + 1, { clusters: 200, noise: 0.03, seed: 1 });
const common = { vectorIndex: 'usearch' as const, databaseUrl, logLevel: 'warn' };
const writer = await startServer({ ...common, label: 'writer' });
let replica: Server | undefined;
try {
  await importVectors(writer, d, N, { concurrency: 2, label: `writer-${N}` });

  replica = await startServer({
    ...common,
    label: 'replica',
    schema: writer.schema,
    worker: false,
    env: { VECTOR_INDEX_FOLLOW: 'on' },
  });
  const rebuildStartMs = replica.startMs;
  const rss = replica.rss();

  // Time to searchable: one memory at a time, written through the writer.
  const onWriter: number[] = [];
  const onReplica: number[] = [];
  for (let i = 0; i < PROBES; i++) {
    const vector = rowVector(d, N + 2 * BURST + i);
    const t0 = performance.now();
    const res = await writer.post<{ id: string }>('/v1/memories', {
      text: `replica probe ${i}`,
      vector,
      model: MODEL,
    });
    if (res.status !== 201) throw new Error(`write answered ${res.status}`);
    const id = res.body.id;
    const [w, r] = await Promise.all([
      until('the writer to find its memory', async () => (await nearest(writer, vector)).includes(id)),
      until('the replica to find the memory', async () =>
        (await nearest(replica as Server, vector)).includes(id),
      ),
    ]);
    onWriter.push(w - t0);
    onReplica.push(r - t0);
  }

  // Lag while an import of BURST memories runs through the writer.
  const lags: number[] = [];
  let importing = true;
  const sampling = (async () => {
    while (importing) {
      lags.push(await lagOf(replica as Server));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const burst = await importVectors(
    writer,
    { ...d, texts: d.texts.slice(N), vectors: d.vectors.subarray(N * DIMS) },
    BURST,
    { concurrency: 2, label: `burst-${BURST}` },
  );
  importing = false;
  await sampling;
  const last = rowVector(d, N + 2 * BURST + PROBES);
  const lastWrite = await writer.post<{ id: string }>('/v1/memories', {
    text: 'after the burst',
    vector: last,
    model: MODEL,
  });
  const t1 = performance.now();
  await until('the replica to catch up after the burst', async () =>
    (await nearest(replica as Server, last)).includes(lastWrite.body.id),
  );
  const afterBurstMs = performance.now() - t1;

  // Stopped while BURST more memories arrive, then started again on its files: it resumes from
  // the position saved beside them and catches up, where a new replica rebuilds.
  const resumeStartMs = await replica.restart(async () => {
    log('replica stopped; importing while it is down');
    await importVectors(
      writer,
      { ...d, texts: d.texts.slice(N + BURST), vectors: d.vectors.subarray((N + BURST) * DIMS) },
      BURST,
      { concurrency: 2, label: `while-down-${BURST}` },
    );
  });
  const opened = (await replica.get<{ replica?: { opened?: string } }>('/readyz')).body.replica?.opened;
  const agree = await agreement(writer, replica, d);
  const w = summarise(onWriter);
  const r = summarise(onReplica);
  const lag = summarise(lags.filter(Number.isFinite).map((s) => s * 1000));
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const report = [
    `### Replicas following the change feed (PostgreSQL server, usearch, ${N.toLocaleString('en')} memories)`,
    '',
    `\`npm run bench:replicas -- --database-url URL --memories ${N}\`: a writer (API + worker) and a replica (\`serve --no-worker\`, VECTOR_INDEX_FOLLOW=on, polling every 200 ms), each a process of its own on one schema.`,
    '',
    '| measure | value |',
    '|---|---|',
    `| replica start with a rebuild from PostgreSQL (${N.toLocaleString('en')} vectors) | ${(rebuildStartMs / 1000).toFixed(1)} s |`,
    `| replica RSS after the start | ${(rss / 2 ** 20).toFixed(0)} MiB |`,
    `| write → found by the writer's own search, p50 / p95 (${PROBES} writes) | ${ms(w.p50)} / ${ms(w.p95)} |`,
    `| write → found through the replica, p50 / p95 | ${ms(r.p50)} / ${ms(r.p95)} |`,
    `| replica lag during an import of ${BURST.toLocaleString('en')} memories (${Math.round(burst.indexedPerSec)}/s indexed), p50 / p95 / max | ${ms(lag.p50)} / ${ms(lag.p95)} / ${ms(lag.max)} |`,
    `| after that import, a new write → found through the replica | ${ms(afterBurstMs)} |`,
    `| replica restart after ${BURST.toLocaleString('en')} memories arrived while it was down (${opened}) | ${(resumeStartMs / 1000).toFixed(1)} s |`,
    `| identical top-10 answers, writer vs replica (100 queries) | ${(agree * 100).toFixed(0)} % |`,
  ].join('\n');
  console.log(report);
} finally {
  await replica?.stop();
  await writer.stop();
}
