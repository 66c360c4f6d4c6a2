import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import cliProgress from 'cli-progress';
import { modelKey } from '../adapters/embedders/port.js';
import { newMemoryItem } from '../http/schemas.js';
import { modelsInUse, rebuildIndex } from '../indexing/index-maintenance.js';
import { systemAccess } from '../memories/access.js';
import { requestHash } from '../memories/idempotency.js';
import type { NewMemory } from '../memories/input.js';
import { findJsonFault, MAX_JSON_DEPTH } from '../memories/text.js';
import { AppError } from '../platform/errors.js';
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
 * Imports a JSONL file in batches. Resumable twice over: `FILE.progress` records the last
 * committed line with a digest of the lines before it (so a run resumes only over an unchanged
 * prefix — fixing a bad line later in the file keeps the progress), and every batch carries an
 * idempotency key derived from its content, so a batch written before a crash is never written twice.
 */
export async function runIngest(file: string, opts: { division: string; batch: number; index: boolean }) {
  if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  const progressFile = `${file}.progress`;
  const saved = existsSync(progressFile)
    ? (JSON.parse(readFileSync(progressFile, 'utf8')) as { line: number; prefix: string })
    : { line: 0, prefix: '' };
  const { lines: totalLines, prefix } = await scanFile(file, saved.line);
  const resumeAfter = saved.line > 0 && prefix === saved.prefix ? saved.line : 0;
  const prefixHash = createHash('sha256');
  // The same schema the HTTP API applies to each batch item.
  const ajv = new Ajv({ allErrors: false, strict: false });
  addFormats.default(ajv);
  const validateItem = ajv.compile<NewMemory>(newMemoryItem);

  await withParts(async (parts) => {
    await parts.ready();
    const memories = await parts.memories();
    const bar = new cliProgress.SingleBar(
      { format: 'ingest [{bar}] {value}/{total} lines | {rate}/s | eta {eta}s' },
      cliProgress.Presets.shades_classic,
    );
    bar.start(totalLines, resumeAfter, { rate: 0 });
    const started = Date.now();
    let batch: NewMemory[] = [];
    let batchStart = resumeAfter + 1;
    let lineNo = 0;
    let written = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const hash = requestHash('INGEST', opts.division, batch);
      try {
        await memories.createBatch(systemAccess('cli'), opts.division, batch, {
          idempotency: { divisionId: opts.division, key: `ingest:${hash}`, requestHash: hash },
        });
      } catch (err) {
        bar.stop();
        if (err instanceof AppError) {
          const where = err.errors.map((e) =>
            e.field.replace(/^items\[(\d+)\]/, (_, i) => `line ${batchStart + Number(i)}`),
          );
          throw new Error(`${err.message} (${where.join(', ') || `lines ${batchStart}-${lineNo}`})`);
        }
        throw err;
      }
      written += batch.length;
      writeFileSync(progressFile, JSON.stringify({ line: lineNo, prefix: prefixHash.copy().digest('hex') }));
      bar.update(lineNo, { rate: Math.round(written / Math.max(0.001, (Date.now() - started) / 1000)) });
      batch = [];
      batchStart = lineNo + 1;
    };
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) {
      lineNo++;
      prefixHash.update(`${line}\n`);
      if (lineNo <= resumeAfter || line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        bar.stop();
        throw new Error(`line ${lineNo}: not valid JSON`);
      }
      const fault = findJsonFault(parsed);
      if (fault) {
        bar.stop();
        throw new Error(
          fault.problem === 'nul'
            ? `line ${lineNo}: /${fault.field} holds a NUL character, which cannot be stored`
            : `line ${lineNo}: /${fault.field} nests deeper than ${MAX_JSON_DEPTH} levels`,
        );
      }
      if (!validateItem(parsed)) {
        bar.stop();
        const e = validateItem.errors?.[0];
        const field = `${e?.instancePath ?? ''}${e?.keyword === 'additionalProperties' ? `/${e.params.additionalProperty}` : ''}`;
        throw new Error(
          `line ${lineNo}: ${field || '(line)'} ${e?.keyword === 'additionalProperties' ? 'is not a known field' : (e?.message ?? 'is invalid')}`,
        );
      }
      batch.push(parsed as NewMemory);
      if (batch.length >= opts.batch) await flush();
    }
    await flush();
    bar.update(totalLines);
    bar.stop();
    process.stdout.write(`imported ${written} memories into ${opts.division}\n`);
    if (opts.index) {
      process.stdout.write('indexing...\n');
      await (await parts.worker()).drain();
      process.stdout.write('indexed\n');
    }
  });
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
