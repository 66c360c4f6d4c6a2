import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import cliProgress from 'cli-progress';
import { type App, createApp } from '../app.js';
import { loadConfig } from '../config.js';
import { AppError } from '../internal/errors.js';
import { createLogger } from '../internal/logger.js';
import { requestHash } from '../memory/idempotency.js';
import { rebuildIndex } from '../memory/index-maintenance.js';
import type { NewMemory } from '../memory/memories.js';
import type { SearchMode } from '../memory/search.js';

/** CLI commands run quietly: only warnings reach the terminal, as JSON on stderr. */
async function withApp<T>(fn: (app: App) => Promise<T>, opts: { worker?: boolean } = {}): Promise<T> {
  const config = loadConfig();
  const app = await createApp(config, {
    worker: opts.worker ?? false,
    logger: createLogger(process.env.LOG_LEVEL ?? 'warn'),
  });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

export async function runMigrate() {
  await withApp(async () => {
    process.stdout.write('migrations are up to date\n');
  });
}

export async function runSearch(
  query: string,
  opts: { division: string; k: number; mode: string; namespace?: string; json?: boolean },
) {
  if (!['hybrid', 'vector', 'keyword'].includes(opts.mode))
    throw new Error('--mode must be hybrid, vector or keyword');
  await withApp(async (app) => {
    const result = await app.search.search({
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

export async function runIndexRebuild() {
  await withApp(async (app) => {
    const bar = new cliProgress.SingleBar(
      { format: 'rebuild [{bar}] {value}/{total} vectors' },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, 0);
    const n = await rebuildIndex(app.db, app.index, app.embedder.model, (done, total) => {
      bar.setTotal(Math.max(total, 1));
      bar.update(done);
    });
    bar.stop();
    process.stdout.write(`rebuilt the ${app.index.name} index: ${n} vectors\n`);
  });
}

export async function runJobsDead(opts: { limit: number; json?: boolean }) {
  await withApp(async (app) => {
    const dead = await app.jobs.listDead({ limit: opts.limit });
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
  await withApp(async (app) => {
    await app.jobs.retry(id);
    process.stdout.write(`job ${id} queued again\n`);
  });
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Imports a JSONL file in batches. Resumable twice over: a `FILE.progress` file records the last
 * committed line, and every batch carries an idempotency key derived from the file's digest and
 * its first line, so replaying a batch after a crash creates nothing new.
 */
export async function runIngest(file: string, opts: { division: string; batch: number; index: boolean }) {
  if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  const digest = await fileDigest(file);
  const progressFile = `${file}.progress`;
  let resumeAfter = 0;
  if (existsSync(progressFile)) {
    const saved = JSON.parse(readFileSync(progressFile, 'utf8')) as { digest: string; line: number };
    if (saved.digest === digest) resumeAfter = saved.line;
  }
  const totalLines = await countLines(file);

  await withApp(
    async (app) => {
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
        const key = `ingest:${digest.slice(0, 32)}:${batchStart}`;
        try {
          await app.memories.createBatch(opts.division, batch, {
            idempotency: { divisionId: opts.division, key, requestHash: requestHash('INGEST', file, batch) },
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
        writeFileSync(progressFile, JSON.stringify({ digest, line: lineNo }));
        bar.update(lineNo, { rate: Math.round(written / Math.max(0.001, (Date.now() - started) / 1000)) });
        batch = [];
        batchStart = lineNo + 1;
      };
      const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
      for await (const line of lines) {
        lineNo++;
        if (lineNo <= resumeAfter || line.trim() === '') continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          bar.stop();
          throw new Error(`line ${lineNo}: not valid JSON`);
        }
        if (typeof parsed !== 'object' || parsed === null || typeof (parsed as NewMemory).text !== 'string') {
          bar.stop();
          throw new Error(`line ${lineNo}: expected an object with a "text" string`);
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
        await app.worker.drain();
        process.stdout.write('indexed\n');
      }
    },
    { worker: false },
  );
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  for await (const line of createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    if (line.length >= 0) n++;
  }
  return n;
}
