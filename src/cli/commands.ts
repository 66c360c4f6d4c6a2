import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import cliProgress from 'cli-progress';
import { modelKey } from '../adapters/embedders/port.js';
import { modelsInUse, rebuildIndex } from '../indexing/index-maintenance.js';
import { systemAccess } from '../memories/access.js';
import type { ImportReport, LineError } from '../memories/import.js';
import { rebuildKeywordIndexes } from '../search/keyword-index/rebuild.js';
import type { SearchMode } from '../search/search.js';
import { withParts } from './with-parts.js';

/** Only the database (no embedding model, vector index, key or object store): starts in seconds. */
export async function runMigrate() {
  await withParts(async (parts) => {
    const applied = await parts.migrated();
    for (const name of applied) process.stdout.write(`applied ${name}\n`);
    process.stdout.write(
      applied.length > 0 ? `${applied.length} migrations applied\n` : 'migrations are up to date\n',
    );
  });
}

export async function runSearch(
  query: string,
  opts: { division: string; k: number; mode: string; namespace?: string; json?: boolean },
) {
  if (!['hybrid', 'vector', 'keyword'].includes(opts.mode))
    throw new Error('--mode must be hybrid, vector or keyword');
  await withParts(async (parts) => {
    await parts.ready();
    const result = await (await parts.search()).search(systemAccess('cli'), {
      query,
      divisionId: opts.division,
      k: opts.k,
      mode: opts.mode as SearchMode,
      namespace: opts.namespace,
    });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    for (const [i, h] of result.hits.entries()) {
      const text = h.text.length > 100 ? `${h.text.slice(0, 97)}...` : h.text;
      process.stdout.write(`${String(i + 1).padStart(3)}. ${h.score.toFixed(4)}  ${h.id}  ${text}\n`);
    }
    process.stdout.write(
      `${result.hits.length} hits, ${result.pending} pending, ${result.timings.totalMs} ms\n`,
    );
  });
}

/** Every space in use (the default model's, the ones divisions use, re-embeddings under way). */
export async function runIndexRebuild() {
  await withParts(async (parts) => {
    await parts.migrated();
    const db = await parts.db();
    const index = await parts.index();
    const bar = new cliProgress.SingleBar(
      { format: 'rebuild {model} [{bar}] {value}/{total} vectors' },
      cliProgress.Presets.shades_classic,
    );
    let n = 0;
    for (const model of await modelsInUse(db, await parts.resolveModel())) {
      bar.start(1, 0, { model: modelKey(model) });
      n += await rebuildIndex(
        db,
        index,
        model,
        (done, total) => {
          bar.setTotal(Math.max(total, 1));
          bar.update(done);
        },
        parts.context,
      );
      bar.stop();
    }
    process.stdout.write(`rebuilt the ${index.name} index: ${n} vectors\n`);
    const keyword = await rebuildKeywordIndexes(db);
    process.stdout.write(
      `rebuilt the keyword index: ${keyword.memories} memories in ${keyword.buildSeconds.toFixed(1)} s (running servers rebuild theirs)\n`,
    );
  });
}

/** Only the database: no worker runs here, a retried job is picked up by the running workers. */
export async function runJobsDead(opts: { limit: number; json?: boolean }) {
  await withParts(async (parts) => {
    const dead = await (await parts.jobs()).listDead(systemAccess('cli'), { limit: opts.limit });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(dead, null, 2)}\n`);
      return;
    }
    if (dead.length === 0) process.stdout.write('no dead jobs\n');
    for (const j of dead) {
      process.stdout.write(
        `${j.id}\t${j.queue}\tmemory=${j.memoryId}\tattempts=${j.attempts}\t${j.lastError ?? ''}\n`,
      );
    }
  });
}

export async function runJobsRetry(id: number) {
  await withParts(async (parts) => {
    await (await parts.jobs()).retry(systemAccess('cli'), id);
    process.stdout.write(`job ${id} queued again\n`);
  });
}

/**
 * Imports a JSONL file through the bulk import path (src/memories/import.ts: COPY, one
 * transaction per chunk of `--batch` lines). Resumable twice over: `FILE.progress` records the
 * last committed line with a digest of the lines before it (so a run resumes only over an
 * unchanged prefix — fixing a bad line later in the file keeps the progress), and every chunk
 * carries an idempotency key derived from its content, so a chunk written before a crash is never
 * written twice. By default the import stops at the first bad line; `--skip-bad` reports bad
 * lines and goes on; `--atomic` writes everything or nothing.
 */
export async function runIngest(
  file: string,
  opts: { division: string; batch?: number; index: boolean; skipBad?: boolean; atomic?: boolean },
) {
  if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  const progressFile = `${file}.progress`;
  const saved = existsSync(progressFile)
    ? (JSON.parse(readFileSync(progressFile, 'utf8')) as { line: number; prefix: string })
    : { line: 0, prefix: '' };
  const { lines: totalLines, prefix } = await scanFile(file, saved.line);
  const resumeAfter = saved.line > 0 && prefix === saved.prefix && !opts.atomic ? saved.line : 0;

  await withParts(async (parts) => {
    await parts.ready();
    const importer = await parts.importer();
    const bar = new cliProgress.SingleBar(
      { format: 'ingest [{bar}] {value}/{total} lines | {rate}/s | eta {eta}s' },
      cliProgress.Presets.shades_classic,
    );
    bar.start(totalLines, resumeAfter, { rate: 0 });
    const started = Date.now();
    // The digest of the lines before each committed chunk's end, for the progress file.
    const prefixHash = createHash('sha256');
    const lines = readLinesAfter(file, resumeAfter, prefixHash);
    let report: ImportReport;
    try {
      report = await importer.run(systemAccess('cli'), lines.source, {
        divisionId: opts.division,
        atomic: opts.atomic === true,
        chunkLines: opts.batch ?? parts.config.IMPORT_CHUNK_LINES,
        maxLineBytes: parts.config.MAX_TEXT_BYTES * 6 + 256 * 1024,
        maxBytes: Number.MAX_SAFE_INTEGER,
        stopAtFirstError: !opts.skipBad && !opts.atomic,
        firstLine: resumeAfter,
        chunkKey: ({ digest }) => ({
          divisionId: opts.division,
          key: `ingest:${digest}`,
          requestHash: digest,
        }),
        onChunk: ({ line, imported }) => {
          if (!opts.atomic) {
            writeFileSync(progressFile, JSON.stringify({ line, prefix: lines.digestUpTo(line) }));
          }
          const seconds = Math.max(0.001, (Date.now() - started) / 1000);
          bar.update(line, { rate: Math.round(imported / seconds) });
        },
      });
    } finally {
      bar.stop();
    }
    const lineError = (e: LineError) =>
      `line ${e.line}: ${e.field ? `${e.field} ` : ''}${e.message} (${e.code})`;
    // Stopped at a bad line: the progress file holds the last committed line; a run after the
    // fix resumes there.
    if (report.stoppedAtLine !== undefined) throw new Error(lineError(report.errors[0]));
    for (const e of report.errors) process.stderr.write(`${lineError(e)}\n`);
    if (report.errorsTruncated)
      process.stderr.write(`… and ${report.failed - report.errors.length} more bad lines\n`);
    process.stdout.write(
      `imported ${report.imported} memories into ${opts.division}${report.replayed > 0 ? ` (${report.replayed} imported before)` : ''}${report.failed > 0 ? `; ${report.failed} bad lines skipped` : ''}\n`,
    );
    if (opts.index) {
      process.stdout.write('indexing...\n');
      await (await parts.worker()).drain();
      process.stdout.write('indexed\n');
    }
  });
}

/**
 * The file's lines after the first `skip`, as a byte stream for the importer, remembering the
 * digest of every line read so far (the progress file's prefix) at each line number asked for.
 */
function readLinesAfter(file: string, skip: number, hash: ReturnType<typeof createHash>) {
  const digests = new Map<number, string>();
  let lineNo = 0;
  async function* source() {
    for await (const line of createInterface({
      input: createReadStream(file),
      crlfDelay: Number.POSITIVE_INFINITY,
    })) {
      lineNo++;
      hash.update(`${line}\n`);
      digests.set(lineNo, hash.copy().digest('hex'));
      if (lineNo > skip) yield `${line}\n`;
    }
  }
  return {
    source: source(),
    digestUpTo(line: number) {
      const d = digests.get(line) ?? '';
      // Only the digests after the last one asked for are still needed.
      for (const k of digests.keys()) if (k <= line) digests.delete(k);
      return d;
    },
  };
}

/** Counts the lines, and hashes the first `prefixLines` of them as ingest hashes its progress. */
async function scanFile(file: string, prefixLines: number): Promise<{ lines: number; prefix: string }> {
  const hash = createHash('sha256');
  let n = 0;
  for await (const line of createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    n++;
    if (n <= prefixLines) hash.update(`${line}\n`);
  }
  return { lines: n, prefix: hash.digest('hex') };
}

export async function runAuditArchive(opts: { division?: string; day?: string }) {
  await withParts(async (parts) => {
    await parts.migrated();
    const archive = await parts.archive();
    const { archives, objectLock } = await archive({ divisionId: opts.division, day: opts.day });
    for (const a of archives) {
      process.stdout.write(`${a.key}: seq ${a.fromSeq}-${a.toSeq} (${a.count} events) sha256 ${a.sha256}\n`);
    }
    if (archives.length === 0) process.stdout.write('nothing new to archive\n');
    if (!objectLock) {
      process.stdout.write(
        'warning: the object store has no object lock; archives are not retention-locked\n',
      );
    }
  });
}
