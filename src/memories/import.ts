import { createHash } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Database, Queryable } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';
import { assertDivisionExists } from '../divisions/divisions.js';
import { newMemoryItem } from '../http/schemas.js';
import { type ModelResolver, readDivisionModel } from '../models/active-model.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import { type Access, accessSql, visibleSql } from './access.js';
import type { IdempotencyKey } from './idempotency.js';
import { checkVector, type NewMemory, type PreparedMemory, prepareMemory } from './input.js';
import type { DirectIndexing, MemoryService } from './memories.js';
import { findJsonFault, MAX_JSON_DEPTH } from './text.js';

/**
 * Bulk import of memories from NDJSON (one memory per line, the fields of a batch item): the path
 * of `POST /v1/memories/import` and of `memory-layer ingest`. Lines are read as they arrive and
 * checked one by one (JSON, schema, size, personal data in labels, agent, vector, superseded ids);
 * every `chunkLines` input lines, the good ones are written with COPY in one transaction.
 *
 * - Partial (default): bad lines are reported by number and skipped; good lines are written.
 * - Atomic: one transaction for the whole body; any bad line rolls everything back (422).
 *
 * With an idempotency key, each chunk is written under a key derived from it, its place and its
 * content: a retried import skips the chunks that committed before and writes the rest, so an
 * interrupted import is resumed by sending the same body again with the same key.
 */

export interface ImportOptions {
  divisionId: string;
  atomic: boolean;
  /** Input lines per transaction (partial mode) and per COPY. */
  chunkLines: number;
  /** A longer line is reported (`line_too_long`) and skipped. */
  maxLineBytes: number;
  /** More bytes than this stop the import (`payload_too_large`). */
  maxBytes: number;
  /**
   * Resumable imports: each chunk's idempotency key, from its place and the digest of its input
   * lines (absent: chunks are not idempotent).
   */
  chunkKey?: (chunk: { index: number; digest: string }) => IdempotencyKey;
  /** Stop at the first bad line, writing nothing of its chunk (the CLI's default); else skip bad lines. */
  stopAtFirstError?: boolean;
  /** Lines of the input already consumed before `source` starts (a resumed file): numbering goes on from them. */
  firstLine?: number;
  /** After each chunk is committed (or found committed): the last line it covered. */
  onChunk?: (progress: { line: number; imported: number; failed: number }) => void;
}

export interface LineError {
  line: number;
  code: string;
  field: string;
  message: string;
}

export interface ImportReport {
  divisionId: string;
  /** Memories written by this request. */
  imported: number;
  /** Memories of chunks an earlier request with the same key had written already. */
  replayed: number;
  failed: number;
  lines: number;
  /** The first `MAX_REPORTED` line errors, in line order. */
  errors: LineError[];
  errorsTruncated: boolean;
  /** With `stopAtFirstError`: the bad line the import stopped at (its chunk was not written). */
  stoppedAtLine?: number;
}

export interface ImportDeps {
  db: Database;
  memories: Pick<MemoryService, 'importInto' | 'importChunk' | 'indexDirectly'>;
  resolveModel: ModelResolver;
  maxTextBytes: number;
  /** The indexing queue's bound: a refused chunk waits for the backlog to shrink. */
  admit?: (jobs: number) => Promise<AppError | null>;
  /** How long a chunk waits for the backlog before the import gives up (503). */
  backlogWaitMs?: number;
  /** After an atomic import committed: wakes an in-process worker. */
  onQueued?: () => void;
  /**
   * Put memories with precomputed vectors outside sessions in the vector index here, after each
   * commit, instead of queueing a job each (DirectIndexing). Only for a process whose vector index
   * is the one searches use (the API server), never a separate CLI process whose in-process index
   * no server would see.
   */
  indexDirectly?: boolean;
}

export const MAX_REPORTED = 1000;

let validateItem: ValidateFunction<NewMemory> | undefined;
/** The schema the HTTP API applies to a batch item, compiled once. */
function itemValidator(): ValidateFunction<NewMemory> {
  if (!validateItem) {
    const ajv = new Ajv({ allErrors: false, strict: false });
    addFormats.default(ajv);
    validateItem = ajv.compile<NewMemory>(newMemoryItem);
  }
  return validateItem;
}

/** A line's first schema error, in the words of a field error (`/tags/0 must be string`). */
function schemaError(validate: ValidateFunction<NewMemory>): { field: string; message: string } {
  const e = validate.errors?.[0];
  const extra =
    e?.keyword === 'additionalProperties'
      ? `/${(e.params as { additionalProperty: string }).additionalProperty}`
      : '';
  const path = `${e?.instancePath ?? ''}${extra}`
    .replace(/^\//, '')
    .replace(/\/(\d+)/g, '[$1]')
    .replace(/\//g, '.');
  return {
    field: path,
    message: extra ? 'is not a known field' : (e?.message ?? 'is invalid'),
  };
}

/** Splits a byte stream into lines, refusing lines over `max` bytes without buffering them. */
async function* linesOf(
  source: AsyncIterable<Buffer | string>,
  max: number,
  maxBytes: number,
): AsyncGenerator<{ text: string } | { tooLong: number }> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping = false;
  let total = 0;
  for await (const piece of source) {
    let chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
    total += chunk.length;
    if (total > maxBytes) {
      throw new AppError(ErrorCode.payloadTooLarge, `the import is larger than ${maxBytes} bytes`, [
        { field: 'body', message: `at most ${maxBytes} bytes (MAX_IMPORT_BYTES)` },
      ]);
    }
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10)) {
      const head = chunk.subarray(0, nl);
      chunk = chunk.subarray(nl + 1);
      if (skipping) {
        skipping = false;
        yield { tooLong: pendingBytes + head.length };
      } else if (pendingBytes + head.length > max) {
        yield { tooLong: pendingBytes + head.length };
      } else {
        yield { text: Buffer.concat([...pending, head]).toString('utf8') };
      }
      pending = [];
      pendingBytes = 0;
    }
    if (chunk.length === 0) continue;
    if (skipping || pendingBytes + chunk.length > max) {
      skipping = true;
      pendingBytes += chunk.length;
      pending = [];
    } else {
      pending.push(Buffer.from(chunk));
      pendingBytes += chunk.length;
    }
  }
  if (skipping) yield { tooLong: pendingBytes };
  else if (pendingBytes > 0) yield { text: Buffer.concat(pending).toString('utf8') };
}

export function createImporter(deps: ImportDeps) {
  const { db } = deps;

  /** The checks that need the database, for a chunk's items at once; failures leave the chunk. */
  async function checkAgainstDatabase(
    q: Queryable,
    access: Access,
    divisionId: string,
    model: EmbeddingModel | undefined,
    items: { line: number; item: PreparedMemory }[],
    fail: (line: number, err: unknown) => void,
  ) {
    const agents = [...new Set(items.map((i) => i.item.agentId).filter((a): a is string => a !== null))];
    const knownAgents = new Set<string>();
    if (agents.length > 0) {
      const res = await q.query<{ id: string }>(
        'SELECT id FROM agents WHERE division_id = $1 AND id = ANY($2::text[])',
        [divisionId, agents],
      );
      for (const r of res.rows) knownAgents.add(r.id);
    }
    const named = [...new Set(items.flatMap((i) => i.item.supersedes))];
    const live = new Set<string>();
    if (named.length > 0) {
      const params: unknown[] = [named, divisionId];
      const res = await q.query<{ id: string }>(
        `SELECT n.id FROM memory_nodes n
         WHERE n.id = ANY($1::uuid[]) AND n.division_id = $2 AND ${visibleSql('n')} AND ${accessSql(access, params)}`,
        params,
      );
      for (const r of res.rows) live.add(r.id);
    }
    return items.filter(({ line, item }) => {
      try {
        if (item.agentId !== null && !knownAgents.has(item.agentId)) {
          throw new AppError(ErrorCode.agentNotFound, `no agent ${item.agentId} in division ${divisionId}`, [
            { field: 'agentId', message: 'no such agent in this division' },
          ]);
        }
        const missing = item.supersedes.findIndex((id) => !live.has(id));
        if (missing >= 0) {
          throw new AppError(ErrorCode.memoryNotFound, `no memory ${item.supersedes[missing]}`, [
            { field: `supersedes[${missing}]`, message: 'no such memory' },
          ]);
        }
        if (item.supplied) {
          if (!model) throw new AppError(ErrorCode.unknownModel, 'this division has no embedding model');
          checkVector(item.supplied, model);
        }
        return true;
      } catch (err) {
        fail(line, err);
        return false;
      }
    });
  }

  async function run(
    access: Access,
    source: AsyncIterable<Buffer | string>,
    opts: ImportOptions,
  ): Promise<ImportReport> {
    const { divisionId } = opts;
    await assertDivisionExists(db, divisionId);
    const division = await readDivisionModel(db, divisionId);
    const model = deps.resolveModel(division.ref) ?? undefined;
    const report: ImportReport = {
      divisionId,
      imported: 0,
      replayed: 0,
      failed: 0,
      lines: opts.firstLine ?? 0,
      errors: [],
      errorsTruncated: false,
    };
    const fail = (line: number, err: unknown) => {
      report.failed++;
      if (report.errors.length >= MAX_REPORTED) {
        report.errorsTruncated = true;
        return;
      }
      if (err instanceof AppError) {
        const first = err.errors[0];
        report.errors.push({
          line,
          code: err.code,
          field: first?.field ?? '',
          message: first?.message ?? err.message,
        });
      } else {
        report.errors.push({
          line,
          code: ErrorCode.validation,
          field: '',
          message: String((err as Error).message ?? err),
        });
      }
    };
    const validate = itemValidator();
    const stopped = () => opts.stopAtFirstError === true && report.failed > 0;

    /** Checks one line; the prepared item, or undefined after reporting it. */
    const parseLine = (line: number, text: string): PreparedMemory | undefined => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        fail(
          line,
          new AppError(ErrorCode.malformedJson, 'not valid JSON', [{ field: '', message: 'not valid JSON' }]),
        );
        return undefined;
      }
      const fault = findJsonFault(parsed);
      if (fault) {
        const message =
          fault.problem === 'nul'
            ? 'holds a NUL character, which cannot be stored'
            : `nests deeper than ${MAX_JSON_DEPTH} levels`;
        fail(line, new AppError(ErrorCode.validation, message, [{ field: fault.field, message }]));
        return undefined;
      }
      if (!validate(parsed)) {
        fail(line, new AppError(ErrorCode.validation, 'invalid memory', [schemaError(validate)]));
        return undefined;
      }
      try {
        return prepareMemory(access, parsed, '', deps.maxTextBytes);
      } catch (err) {
        fail(line, err);
        return undefined;
      }
    };

    // A chunk: its input lines (for its idempotency key) and the items that passed.
    let chunk: { line: number; item: PreparedMemory }[] = [];
    let chunkHash = createHash('sha256');
    let chunkIndex = 0;

    const waitForBacklog = async (jobs: number) => {
      const deadline = Date.now() + (deps.backlogWaitMs ?? 60_000);
      for (;;) {
        const refusal = await deps.admit?.(jobs);
        if (!refusal) return;
        if (Date.now() > deadline) throw refusal;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };

    /** An atomic import's memories to index directly once its one transaction committed. */
    let atomicDirect: DirectIndexing[] | undefined;

    interface Chunk {
      index: number;
      digest: string;
      /** The last input line the chunk covers (the progress after it commits). */
      lastLine: number;
      entries: { line: number; item: PreparedMemory }[];
    }

    const write = async (tx: Queryable | undefined, c: Chunk) => {
      // In the atomic import's transaction when there is one: on PGlite's one connection a query
      // beside it would wait for it forever.
      const ready = await checkAgainstDatabase(tx ?? db, access, divisionId, model, c.entries, fail);
      // Stop mode: a bad line in this chunk stops the import before the chunk is written.
      if (opts.stopAtFirstError && ready.length < c.entries.length) return;
      const items = ready.map((r) => r.item);
      if (tx) {
        if (report.failed === 0 && items.length > 0)
          await deps.memories.importInto(tx, access, divisionId, items, atomicDirect);
        report.imported += items.length;
      } else if (items.length > 0) {
        await waitForBacklog(items.length);
        const idempotency = opts.chunkKey?.({ index: c.index, digest: c.digest });
        try {
          const { replayed, direct } = await deps.memories.importChunk(access, divisionId, items, {
            idempotency,
            indexDirectly: deps.indexDirectly,
          });
          // The previous chunk's vectors went into the index while this chunk was written (COPY
          // in PostgreSQL, HNSW insertion here); at most one chunk's index writes are behind.
          await indexing;
          indexing = deps.memories.indexDirectly(direct);
          indexing.catch(() => undefined);
          if (replayed) report.replayed += items.length;
          else report.imported += items.length;
        } catch (err) {
          // Something changed between the checks and the write (an agent or a superseded memory
          // deleted, the division's model switched): the chunk is refused as a whole.
          if (!(err instanceof AppError)) throw err;
          for (const r of ready) fail(r.line, err);
        }
      }
      opts.onChunk?.({
        line: c.lastLine,
        imported: report.imported + report.replayed,
        failed: report.failed,
      });
    };

    // One chunk is written while the next one is parsed: the database works while this process
    // parses and checks JSON. Never more than one in flight, so chunks commit in input order.
    let inFlight: Promise<void> = Promise.resolve();
    /** The last committed chunk's index writes (DirectIndexing); the import answers after them. */
    let indexing: Promise<void> = Promise.resolve();
    const flush = async (tx: Queryable | undefined) => {
      const c: Chunk = {
        index: chunkIndex++,
        digest: chunkHash.digest('hex'),
        lastLine: report.lines,
        entries: chunk,
      };
      chunkHash = createHash('sha256');
      chunk = [];
      await inFlight;
      inFlight = write(tx, c);
      // Handled here so that a failure waits for the next await instead of crashing the process.
      inFlight.catch(() => undefined);
    };

    const readAll = async (tx: Queryable | undefined) => {
      try {
        await readLines(tx);
      } catch (err) {
        // Nothing is left running behind the error (a chunk's transaction still open).
        await inFlight.catch(() => undefined);
        await indexing.catch(() => undefined);
        throw err;
      }
      await inFlight;
      await indexing;
      // Chunks are checked against the database after the next one was parsed: back in order.
      report.errors.sort((a, b) => a.line - b.line);
      if (stopped()) report.stoppedAtLine = report.errors[0]?.line;
    };

    const readLines = async (tx: Queryable | undefined) => {
      let inChunk = 0;
      for await (const piece of linesOf(source, opts.maxLineBytes, opts.maxBytes)) {
        if (stopped()) break;
        const line = ++report.lines;
        inChunk++;
        if ('tooLong' in piece) {
          chunkHash.update(`!${piece.tooLong}\n`);
          fail(
            line,
            new AppError(ErrorCode.textTooLarge, 'line too long', [
              { field: '', message: `${piece.tooLong} bytes; a line may hold at most ${opts.maxLineBytes}` },
            ]),
          );
        } else {
          chunkHash.update(`${piece.text}\n`);
          if (piece.text.trim() !== '') {
            const item = parseLine(line, piece.text);
            if (item) chunk.push({ line, item });
          }
        }
        if (inChunk >= opts.chunkLines) {
          await flush(tx);
          inChunk = 0;
        }
      }
      if (inChunk > 0 && !stopped()) await flush(tx);
    };

    if (!opts.atomic) {
      await readAll(undefined);
      return report;
    }
    await waitForBacklog(0);
    await db.transaction(async (tx) => {
      atomicDirect = deps.indexDirectly ? [] : undefined; // a retried transaction starts again
      await readAll(tx);
      if (report.failed > 0) {
        throw new AppError(
          ErrorCode.validation,
          `${report.failed} of ${report.lines} lines are invalid; nothing was imported`,
          report.errors.map((e) => ({
            field: e.field ? `lines[${e.line}].${e.field}` : `lines[${e.line}]`,
            message: `${e.code}: ${e.message}`,
          })),
          { kind: 'unprocessable' },
        );
      }
    });
    await deps.memories.indexDirectly(atomicDirect ?? []);
    deps.onQueued?.();
    return report;
  }

  return { run };
}

export type Importer = ReturnType<typeof createImporter>;
