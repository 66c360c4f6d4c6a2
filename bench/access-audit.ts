/**
 * `npm run bench:access-audit [-- --size 5000 --queries 300 --rounds 2 --out BENCHMARKS.md]`:
 * what recording every read costs search. One server process over HTTP on one data set (memories
 * with precomputed vectors), restarted alternately with ACCESS_AUDIT=off and ACCESS_AUDIT=all
 * (off, all, then all, off, …, so that a drift of the machine's load hits both alike); in each
 * round the same hybrid text queries are sent once to warm the query-vector cache, then measured.
 * Reports client-side p50/p95 per setting and the ratio all/off, and checks that with `all` every
 * measured search left an access event in the trail. On PGlite, and on the PostgreSQL server too
 * when DATABASE_URL is set. Writes its section of BENCHMARKS.md (below the notes marker).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { queryText, rng } from './data.js';
import { log, type Server, startServer } from './harness.js';
import { importVectors, makeDataset } from './ingest.js';
import { type Summary, summarise } from './stats.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const size = Number(arg('size', '5000'));
const queries = Number(arg('queries', '300'));
const rounds = Number(arg('rounds', '2'));
const k = Number(arg('k', '10'));
const out = arg('out', 'BENCHMARKS.md');
const SECTION_START = '<!-- access-audit-bench: start -->';
const SECTION_END = '<!-- access-audit-bench: end -->';

type Mode = 'off' | 'all';

interface Result {
  database: string;
  memories: number;
  measured: Record<Mode, Summary>;
  ratioP95: number;
  ratioP50: number;
  /** Access events chained for the measured searches with `all` (should equal their number). */
  accessEvents: number;
  searchesWithAll: number;
  load: string;
}

async function countAccessEvents(s: Server): Promise<number> {
  let n = 0;
  let afterSeq = 0;
  for (;;) {
    const res = await s.get<{ events: { seq: number }[]; nextAfterSeq: number | null }>(
      `/v1/audit?type=access&limit=1000&afterSeq=${afterSeq}`,
    );
    if (res.status !== 200) throw new Error(`audit answered ${res.status}`);
    n += res.body.events.length;
    if (res.body.nextAfterSeq === null) return n;
    afterSeq = res.body.nextAfterSeq;
  }
}

async function measure(s: Server, bodies: string[]): Promise<number[]> {
  for (const body of bodies) {
    const res = await s.post('/v1/search', body);
    if (res.status !== 200) throw new Error(`search answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  const lat: number[] = [];
  for (const body of bodies) {
    const t = performance.now();
    const res = await s.post<{ hits: unknown[] }>('/v1/search', body);
    lat.push(performance.now() - t);
    if (res.status !== 200) throw new Error(`search answered ${res.status}`);
  }
  return lat;
}

async function run(database: 'pglite' | 'server'): Promise<Result> {
  const label = `access-audit/${database}`;
  const s = await startServer({
    label,
    vectorIndex: 'auto',
    databaseUrl: database === 'server' ? process.env.DATABASE_URL : undefined,
    logLevel: 'warn',
    env: { ACCESS_AUDIT: 'off' },
  });
  try {
    const d = makeDataset(size, { clusters: 50, noise: 0.35, seed: 42 });
    await importVectors(s, d, size, { batch: 500, concurrency: 2, label });
    const rand = rng(99);
    const bodies = Array.from({ length: queries }, () =>
      JSON.stringify({
        query: queryText(d.vocabulary, Math.floor(rand() * d.clusters), rand),
        mode: 'hybrid',
        k,
      }),
    );
    const lat: Record<Mode, number[]> = { off: [], all: [] };
    let accessBefore = 0;
    let searchesWithAll = 0;
    for (let r = 0; r < rounds; r++) {
      const order: Mode[] = r % 2 === 0 ? ['off', 'all'] : ['all', 'off'];
      for (const mode of order) {
        await s.restart({ ACCESS_AUDIT: mode });
        if (mode === 'all') accessBefore = await countAccessEvents(s);
        const measured = await measure(s, bodies);
        lat[mode].push(...measured);
        if (mode === 'all') {
          searchesWithAll += 2 * bodies.length;
          const added = (await countAccessEvents(s)) - accessBefore;
          if (added !== 2 * bodies.length)
            throw new Error(`${added} access events for ${2 * bodies.length} searches`);
        }
        log(`${label}: round ${r + 1} ${mode}: p95 ${summarise(measured).p95.toFixed(1)} ms`);
      }
    }
    const off = summarise(lat.off);
    const all = summarise(lat.all);
    return {
      database,
      memories: size,
      measured: { off, all },
      ratioP95: all.p95 / off.p95,
      ratioP50: all.p50 / off.p50,
      accessEvents: await countAccessEvents(s),
      searchesWithAll,
      load: loadavg()
        .map((l) => l.toFixed(1))
        .join(' / '),
    };
  } finally {
    await s.stop();
  }
}

const results: Result[] = [await run('pglite')];
if (process.env.DATABASE_URL) results.push(await run('server'));

const f = (n: number) => n.toFixed(1);
const rows = results.map(
  (r) =>
    `| ${r.database === 'pglite' ? 'PGlite' : 'PostgreSQL server'} | ${r.memories} | ${r.measured.off.n} | ${f(r.measured.off.p50)} / ${f(r.measured.off.p95)} | ${f(r.measured.all.p50)} / ${f(r.measured.all.p95)} | **${r.ratioP95.toFixed(3)}** (p50 ${r.ratioP50.toFixed(3)}) | ${r.load} |`,
);
const section = `${SECTION_START}
## Access audit: what recording every read costs search

\`npm run bench:access-audit\` (bench/access-audit.ts) on ${new Date().toISOString().slice(0, 10)}: one server over HTTP, ${size} memories with precomputed vectors, ${queries} hybrid text queries (k ${k}), sequential, warmed once per start (query vectors cached) and then measured; the server restarted alternately with \`ACCESS_AUDIT=off\` and \`ACCESS_AUDIT=all\` over ${rounds} rounds (off then all, all then off) so that the machine's load drifts over both. With \`all\` each search staged one access event (one INSERT before the answer) and the flushes chained them in batches; the run checked that every measured search with \`all\` left exactly one event in the chain.

| database | memories | searches per setting | off p50 / p95 (ms) | all p50 / p95 (ms) | p95 all / off | load (1/5/15 min) |
|---|---|---|---|---|---|---|
${rows.join('\n')}

The target is a p95 ratio of at most 1.10. Latencies are client-side (request sent → JSON parsed) on a shared 2-core machine: compare the ratio, not the absolute figures, with other sections.
${SECTION_END}`;

const text = readFileSync(out, 'utf8');
const start = text.indexOf(SECTION_START);
const end = text.indexOf(SECTION_END);
writeFileSync(
  out,
  start >= 0 && end > start
    ? `${text.slice(0, start)}${section}${text.slice(end + SECTION_END.length)}`
    : `${text.trimEnd()}\n\n${section}\n`,
);
for (const r of results) {
  log(
    `${r.database}: p95 off ${f(r.measured.off.p95)} ms, all ${f(r.measured.all.p95)} ms, ratio ${r.ratioP95.toFixed(3)}`,
  );
}
log(`wrote ${out}`);
