/**
 * `npm run bench [-- --sizes 10000,100000 ...]`: measures search, ingest and memory of the real
 * service over HTTP and writes BENCHMARKS.md. Options: bench/options.ts. Progress goes to stderr.
 */
import { writeFileSync } from 'node:fs';
import { sentences } from './data.js';
import { diskBytes, log, startServer } from './harness.js';
import {
  apiEmbedThroughput,
  importVectors,
  makeDataset,
  type RawEmbedResult,
  rawEmbedThroughput,
} from './ingest.js';
import { watchLoad } from './load.js';
import { parseOptions } from './options.js';
import {
  codeState,
  type EmbedRun,
  machineInfo,
  previousNotes,
  type Results,
  renderReport,
  type SizeRun,
} from './report.js';
import { keywordIndexAtStart, prepareQueries, searchScenarios } from './search.js';

const { options: o, given } = parseOptions();
const started = performance.now();
const codeAtStart = codeState();
const results: Results = {
  machine: machineInfo(),
  command: ['npm run bench', ...(given.length ? ['--', ...given] : [])].join(' '),
  options: o,
  runs: [],
  durationSec: 0,
};
log(`options: ${JSON.stringify(o)}`);
const serverBase = {
  logLevel: o.logLevel,
  databaseUrl: o.databaseUrl,
  env: { USEARCH_QUANTIZATION: o.usearchQuantization },
};
/** The index a run used, with usearch's scalar kind when it is not the default (f16). */
const engineLabel = (engine: string) =>
  engine === 'usearch' && o.usearchQuantization !== 'f16' ? `usearch ${o.usearchQuantization}` : engine;
/** The server process running now, counted as the benchmark's own CPU use. */
let serverPid: number | undefined;
const ours = () => (serverPid === undefined ? [] : [serverPid]);
/** The default index on PGlite is pgvector (VECTOR_INDEX=auto); a server without pgvector gets usearch. */
const engines = (n: number, database: string): ('pgvector' | 'usearch')[] =>
  database === 'postgres' ? ['usearch'] : n <= o.pgvectorMax ? ['pgvector', 'usearch'] : ['usearch'];
const databases = o.databases.split(',');

// 1. The built-in model: raw throughput in this process, then through the API (accepted → indexed).
// Each API run is bracketed by raw runs (with the server up and idle), compared with their mean:
// on a shared machine the raw figure drifts with other work.
if (!o.skipEmbed) {
  const load = watchLoad(ours);
  const texts = sentences(o.embedTexts);
  const raws: RawEmbedResult[] = [];
  const measureRaw = async () => {
    log(`embedding: raw throughput of the built-in model, ${texts.length} sentences in batches of 32`);
    const r = await rawEmbedThroughput(texts, 32);
    log(`embedding: raw ${r.perSec.toFixed(1)} texts/s`);
    raws.push(r);
    return r;
  };
  const api: EmbedRun[] = [];
  const kinds = o.databaseUrl ? (['usearch'] as const) : (['pgvector', 'usearch'] as const);
  for (const [i, engine] of kinds.entries()) {
    const s = await startServer({ ...serverBase, label: `embed/${engine}`, vectorIndex: engine });
    serverPid = s.pid;
    try {
      const before = i === 0 ? await measureRaw() : raws[raws.length - 1];
      const r = await apiEmbedThroughput(s, texts, o.batch);
      log(`embedding: through the API with ${engine}: ${r.perSec.toFixed(1)} texts/s`);
      const after = await measureRaw();
      api.push({
        engine: engineLabel(s.vectorIndex),
        database: s.database,
        result: r,
        peakRss: s.peakRss(),
        rawPerSec: (before.perSec + after.perSec) / 2,
      });
    } catch (err) {
      log(`embed/${engine} failed; server log:\n${s.errors()}`);
      throw err;
    } finally {
      load.note();
      await s.stop();
      serverPid = undefined;
    }
  }
  results.embed = { raws, api, load: load.stop() };
}

// 2. Bulk import of precomputed vectors, then search, per size and vector index.
const maxSize = Math.max(...o.sizes);
log(`generating ${maxSize} clustered ${512}-dim vectors and texts`);
const data = makeDataset(maxSize, o);
for (const n of [...o.sizes].sort((a, b) => a - b)) {
  const searchOptions = {
    queries: o.queries,
    warmup: o.warmup,
    filteredQueries: o.filteredQueries,
    hybridTexts: o.hybridTexts,
    keywordQueries: o.keywordQueries,
    k: o.k,
    seed: o.seed + 1000,
  };
  const queries = o.skipSearch ? undefined : prepareQueries(data, n, searchOptions);
  for (const [database, engine] of databases.flatMap((db) => engines(n, db).map((e) => [db, e] as const))) {
    const label = `${n}/${engine}/${database}`;
    const load = watchLoad(ours);
    const s = await startServer({
      ...serverBase,
      databaseUrl: database === 'postgres' ? o.databaseUrl : undefined,
      label,
      vectorIndex: engine,
    });
    serverPid = s.pid;
    try {
      const imported = await importVectors(s, data, n, { concurrency: o.concurrency, label });
      const rssAfterImport = s.rss();
      // At the largest size: searches while the built-in model embeds a batch of texts (issue 13).
      const ingestDuring =
        n === maxSize && !o.skipEmbed
          ? () => apiEmbedThroughput(s, sentences(o.embedTexts), o.batch)
          : undefined;
      const search = queries
        ? await searchScenarios(s, data, queries, { ...searchOptions, label, ingestDuring })
        : [];
      const peakBeforeRestart = s.peakRss();
      const rssBeforeRestart = s.rss();
      // A start on the data just measured: the keyword index is then built from the rows.
      const keywordIndex = await keywordIndexAtStart(s);
      serverPid = s.pid;
      const run: SizeRun = {
        size: n,
        engine: engineLabel(s.vectorIndex),
        database: s.database,
        startMs: s.startMs,
        import: imported,
        search,
        rssAfterImport,
        rssEnd: rssBeforeRestart,
        peakRss: peakBeforeRestart,
        keywordIndex,
        diskBytes: diskBytes(s.dataDir),
        load: load.stop(),
      };
      log(
        `${label}: peak RSS ${(run.peakRss / 2 ** 20).toFixed(0)} MiB, data dir ${(run.diskBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      results.runs.push(run);
    } catch (err) {
      log(`${label} failed; server log:\n${s.errors()}`);
      throw err;
    } finally {
      await s.stop();
      serverPid = undefined;
    }
  }
}

results.durationSec = (performance.now() - started) / 1000;
results.codeChangedDuringRun = codeState() !== codeAtStart;
writeFileSync(o.out, renderReport(results, previousNotes(o.out)));
log(`wrote ${o.out} (${(results.durationSec / 60).toFixed(1)} min)`);
