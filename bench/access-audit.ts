/**
 * `npm run bench:access-audit [-- --size 3000 --queries 400 --out BENCHMARKS.md]`: what recording
 * every read costs search. Two server processes over HTTP, one with ACCESS_AUDIT=off and one with
 * ACCESS_AUDIT=all, each with the same memories (precomputed vectors); every query is sent to
 * both, one after the other (the order alternating), so that the machine's load, however it
 * drifts, weighs on both alike. Queries are sent once to each to warm the query-vector caches,
 * then measured. Reports client-side p50/p95 per setting, the ratio all/off, and the median of
 * the per-query ratios; checks that with `all` every search left one access event in the trail.
 * On PGlite, and on the PostgreSQL server too when DATABASE_URL is set. Writes its section of
 * BENCHMARKS.md (below the notes marker).
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
const size = Number(arg('size', '3000'));
const queries = Number(arg('queries', '400'));
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
  /** Median over queries of (latency with all / latency with off). */
  pairedMedian: number;
  accessEvents: number;
  searches: number;
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

async function timed(s: Server, body: string): Promise<number> {
  const t = performance.now();
  const res = await s.post<{ hits: unknown[] }>('/v1/search', body);
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`search answered ${res.status}: ${JSON.stringify(res.body)}`);
  return ms;
}

async function run(database: 'pglite' | 'server'): Promise<Result> {
  const servers = {} as Record<Mode, Server>;
  try {
    const d = makeDataset(size, { clusters: 50, noise: 0.35, seed: 42 });
    for (const mode of ['off', 'all'] as const) {
      const label = `access-audit/${database}/${mode}`;
      servers[mode] = await startServer({
        label,
        vectorIndex: 'usearch',
        databaseUrl: database === 'server' ? process.env.DATABASE_URL : undefined,
        logLevel: 'warn',
        env: { ACCESS_AUDIT: mode },
      });
      await importVectors(servers[mode], d, size, { concurrency: 2, label });
    }
    const rand = rng(99);
    const bodies = Array.from({ length: queries }, () =>
      JSON.stringify({
        query: queryText(d.vocabulary, Math.floor(rand() * d.clusters), rand),
        mode: 'hybrid',
        k,
      }),
    );
    const accessBefore = await countAccessEvents(servers.all);
    for (const body of bodies) {
      await timed(servers.off, body);
      await timed(servers.all, body);
    }
    const lat: Record<Mode, number[]> = { off: [], all: [] };
    const ratios: number[] = [];
    for (const [i, body] of bodies.entries()) {
      const order: Mode[] = i % 2 === 0 ? ['off', 'all'] : ['all', 'off'];
      const ms = {} as Record<Mode, number>;
      for (const mode of order) ms[mode] = await timed(servers[mode], body);
      lat.off.push(ms.off);
      lat.all.push(ms.all);
      ratios.push(ms.all / ms.off);
    }
    const searches = 2 * bodies.length;
    const accessEvents = (await countAccessEvents(servers.all)) - accessBefore;
    if (accessEvents !== searches) throw new Error(`${accessEvents} access events for ${searches} searches`);
    if ((await countAccessEvents(servers.off)) !== 0) throw new Error('ACCESS_AUDIT=off recorded reads');
    const off = summarise(lat.off);
    const all = summarise(lat.all);
    log(`${database}: p95 off ${off.p95.toFixed(1)} ms, all ${all.p95.toFixed(1)} ms`);
    return {
      database,
      memories: size,
      measured: { off, all },
      ratioP95: all.p95 / off.p95,
      ratioP50: all.p50 / off.p50,
      pairedMedian: summarise(ratios).p50,
      accessEvents,
      searches,
      load: loadavg()
        .map((l) => l.toFixed(1))
        .join(' / '),
    };
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }
}

// `--databases server` measures only the PostgreSQL server (DATABASE_URL), e.g. to repeat it.
const wanted = arg('databases', 'pglite,server').split(',');
const results: Result[] = [];
if (wanted.includes('pglite')) results.push(await run('pglite'));
if (process.env.DATABASE_URL && wanted.includes('server')) results.push(await run('server'));

const f = (n: number) => n.toFixed(1);
const rows = results.map(
  (r) =>
    `| ${r.database === 'pglite' ? 'PGlite' : 'PostgreSQL server'} | ${r.memories} | ${r.measured.off.n} | ${f(r.measured.off.p50)} / ${f(r.measured.off.p95)} | ${f(r.measured.all.p50)} / ${f(r.measured.all.p95)} | **${r.ratioP95.toFixed(3)}** | ${r.ratioP50.toFixed(3)} | ${r.pairedMedian.toFixed(3)} | ${r.load} |`,
);
const section = `${SECTION_START}
## Access audit: what recording every read costs search

\`npm run bench:access-audit\` (bench/access-audit.ts) on ${new Date().toISOString().slice(0, 10)}: two servers over HTTP with the same ${size} memories (precomputed vectors, usearch), one with \`ACCESS_AUDIT=off\` and one with \`ACCESS_AUDIT=all\`; ${queries} hybrid text queries (k ${k}) sent once to each to warm the query-vector caches, then each query sent to both, one after the other in alternating order, so that the machine's load weighs on both alike. With \`all\` each search staged one access event (one INSERT, started as it answers and not awaited) and the flushes chained them in batches; the run checked that each of the ${results[0]?.searches ?? 0} searches with \`all\` left exactly one event in the chain, and \`off\` none.

| database | memories | searches measured per setting | off p50 / p95 (ms) | all p50 / p95 (ms) | p95 all / off | p50 all / off | median per-query ratio | load (1/5/15 min) |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

The target is a p95 ratio of at most 1.10. Latencies are client-side (request sent → JSON parsed) on a shared 2-core machine: compare the ratios, not the absolute figures, with other sections.
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
