import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Database } from '../adapters/db/port.js';
import { type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import type { VectorEntry, VectorIndex } from '../adapters/vector/port.js';
import { base64ToVector } from '../memories/vector-codec.js';
import { type ModelResolver, refOf } from '../models/active-model.js';
import type { Logger } from '../platform/logger.js';
import { createPollLoop } from '../platform/poll-loop.js';
import { type ChangeFeed, createChangeFeed, type FeedRow, feedSnapshot } from './change-feed.js';
import {
  type ContextOptions,
  contextSql,
  indexVectorOf,
  type NeighbourVectors,
  neighbourIdsOf,
} from './contextual-vectors.js';
import { countIndexable, countUnderConstruction, modelsInUse, rebuildIndex } from './index-maintenance.js';
import { createSavePacer } from './save-pacing.js';

/** Changed rows per read of the feed. */
const PAGE = 2000;
/** Catch-ups after which index and database counts must agree for a resumed index to be kept. */
const MATCH_ATTEMPTS = 5;
/**
 * The position is saved (after a flush of the index) at most this often while changes arrive,
 * and less often when flushing is slow (save-pacing.ts).
 */
const SAVE_EVERY_MS = 5_000;

export interface VectorFollowerDeps {
  db: Database;
  /** The process's own, in-process index (usearch). */
  index: VectorIndex;
  resolveModel: ModelResolver;
  context: ContextOptions;
  /** Keeps the feed position the flushed index holds, beside the index's files. */
  positionFile: string;
  pollMs: number;
  logger: Logger;
  /** Row versions each catch-up applied, and how long it took. */
  onCatchUp?: (rows: number, seconds: number) => void;
}

interface SavedPosition {
  fromXid: number;
  generation: number;
}

interface Row extends NeighbourVectors {
  vector_key: number;
  division_id: string;
  deleted: boolean;
  live: boolean;
  model: string;
  model_version: string;
  embedding: string | null;
}

/**
 * A replica's vector index kept equal to PostgreSQL by following the change feed of memory_nodes
 * (change-feed.ts), so that API replicas with an in-process index (usearch) answer alike whichever
 * worker indexed a memory. For each memory that changed, the follower recomputes what the worker
 * would have put in the index — the memory's own vector blended with its session neighbours' — for
 * the memory and its neighbours (their blends depend on it): an indexed live memory is upserted in
 * its division's active space (and leaves the others), a deleted one leaves every space, a pending
 * one keeps what it had (as on the worker's path, until its new vector replaces it). Everything is
 * recomputed from the rows as they are when read, so applying a change twice, or late, is harmless.
 *
 * Its position (the feed's transaction bound and the rebuild generation) is saved beside the
 * index's files after each flush, so a replica that restarts catches up from where its files stand
 * instead of rebuilding; it rebuilds from PostgreSQL when there is no position, when the rebuild
 * generation moved (`memory-layer index rebuild`, a restore), or when the counts disagree after the
 * catch-up. Vectors a re-embedding is computing are not followed: they reach replicas with the
 * switch, which rewrites the division's rows.
 */
export function createVectorFollower(deps: VectorFollowerDeps) {
  const { db, index, logger } = deps;
  const spaces = new Map<string, EmbeddingModel>();
  let feed: ChangeFeed | undefined;
  let generation = 0;
  /** When the read that last found the index up to date began (ms since the epoch). */
  let upToDateAt: number | undefined;
  let applied = 0;
  let unsaved = false;
  /** How the index was last opened: from its saved position, or rebuilt from PostgreSQL. */
  let opened: 'resumed' | 'rebuilt' | undefined;
  const saves = createSavePacer(SAVE_EVERY_MS);
  /** Callers of caughtUp(): the time they called, and how to answer them. */
  const waiters = new Set<{ since: number; done: () => void }>();
  const blend = contextSql('m.model', 'm.version', deps.context);

  async function ensureSpace(model: EmbeddingModel) {
    if (spaces.has(modelKey(model))) return;
    await index.ensureSpace(model);
    spaces.set(modelKey(model), model);
  }

  function readPosition(): SavedPosition | undefined {
    if (!existsSync(deps.positionFile)) return undefined;
    try {
      const value = JSON.parse(readFileSync(deps.positionFile, 'utf8')) as SavedPosition;
      return Number.isSafeInteger(value.fromXid) && Number.isSafeInteger(value.generation)
        ? value
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** Flushes the index, then records the position it holds (never ahead of the files). */
  async function savePosition() {
    if (!feed) return;
    const position: SavedPosition = { fromXid: feed.fromXid, generation };
    await index.flush();
    mkdirSync(dirname(deps.positionFile), { recursive: true });
    const tmp = `${deps.positionFile}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(position));
    renameSync(tmp, deps.positionFile);
    unsaved = false;
  }

  /** Rebuilds every space in use from PostgreSQL and follows the feed from before the rebuild. */
  async function rebuild(reason: string) {
    const started = performance.now();
    rmSync(deps.positionFile, { force: true });
    const snapshot = await feedSnapshot(db);
    let vectors = 0;
    for (const model of await modelsInUse(db, deps.resolveModel)) {
      vectors += await rebuildIndex(db, index, model, undefined, deps.context);
      spaces.set(modelKey(model), model);
    }
    feed = createChangeFeed(db, { columns: ['n.id'], pageSize: PAGE, fromXid: snapshot.xmin });
    generation = snapshot.generation;
    await savePosition();
    logger.info(
      { reason, vectors, seconds: Math.round((performance.now() - started) / 10) / 100 },
      'vector index rebuilt from PostgreSQL; following the change feed',
    );
  }

  /** Applies one page of changed rows: the memories and their session neighbours, as they are now. */
  async function apply(rows: FeedRow[]) {
    const ids = rows.map((r) => r.values[0] as string);
    const all = [...new Set([...ids, ...(await neighbourIdsOf(db, ids))])];
    const fallback = deps.resolveModel(null);
    if (!fallback) throw new Error('no default embedding model is configured');
    const res = await db.query<Row>(
      `SELECT n.vector_key, n.division_id, n.deleted_at IS NOT NULL AS deleted, m.model, m.version AS model_version,
         (n.status = 'indexed' AND n.deleted_at IS NULL AND n.embedding_model = m.model
           AND n.embedding_model_version = m.version) AS live,
         CASE WHEN n.status = 'indexed' AND n.deleted_at IS NULL AND n.embedding_model = m.model
           AND n.embedding_model_version = m.version THEN encode(n.embedding, 'base64') END AS embedding,
         ${blend.columns}
       FROM memory_nodes n JOIN divisions d ON d.id = n.division_id
       CROSS JOIN LATERAL (SELECT coalesce(d.embedding_model, $2) AS model,
         coalesce(d.embedding_model_version, $3) AS version) m
       ${blend.joins}
       WHERE n.id = ANY($1::uuid[])`,
      [all, fallback.name, fallback.version],
    );
    const upserts = new Map<string, { model: EmbeddingModel; entries: VectorEntry[] }>();
    const gone: number[] = [];
    for (const r of res.rows) {
      if (r.deleted) gone.push(Number(r.vector_key));
      if (!r.live || r.embedding === null) continue;
      const model = deps.resolveModel(refOf(r.model, r.model_version));
      if (!model) continue; // a model this process is not configured with: nothing to search it by
      const key = modelKey(model);
      const batch = upserts.get(key) ?? { model, entries: [] };
      batch.entries.push({
        key: Number(r.vector_key),
        divisionId: r.division_id,
        vector: indexVectorOf(base64ToVector(r.embedding), r, deps.context),
      });
      upserts.set(key, batch);
    }
    for (const { model, entries } of upserts.values()) {
      await ensureSpace(model);
      await index.upsert(model, entries);
      // A division that switched models: its memories leave the space it used before.
      const keys = entries.map((e) => e.key);
      for (const [other, space] of spaces) if (other !== modelKey(model)) await index.remove(space, keys);
    }
    if (gone.length > 0) for (const space of spaces.values()) await index.remove(space, gone);
    applied += rows.length;
    if (rows.length > 0) unsaved = true;
  }

  /** One catch-up: applies everything committed since the last; rebuilds when asked to. */
  async function catchUp(): Promise<number> {
    if (!feed) throw new Error('the vector follower is not open');
    const started = Date.now();
    const t0 = performance.now();
    const read = await feed.read(apply, { probe: true });
    if (read.generation > generation) {
      await rebuild(`rebuild generation ${generation} -> ${read.generation}`);
      return 1;
    }
    upToDateAt = started;
    for (const w of waiters) {
      // Strictly after: a read started in the caller's millisecond may have begun before its commit.
      if (started > w.since) {
        waiters.delete(w);
        w.done();
      }
    }
    deps.onCatchUp?.(read.rows, (performance.now() - t0) / 1000);
    if (unsaved && saves.due()) await saves.run(savePosition);
    return read.rows;
  }

  /** Why the index's files cannot be read, if they cannot (counting a space reads all of its files). */
  async function unreadableIndex(): Promise<string | undefined> {
    for (const model of await modelsInUse(db, deps.resolveModel)) {
      await ensureSpace(model);
      try {
        await index.count(model);
      } catch (err) {
        return `the index could not be read (${err instanceof Error ? err.message : String(err)})`;
      }
    }
    return undefined;
  }

  /** Counts every space in use against PostgreSQL (after a resumed catch-up). */
  async function mismatch(): Promise<string | undefined> {
    for (const model of await modelsInUse(db, deps.resolveModel)) {
      await ensureSpace(model);
      const [held, indexed] = [await index.count(model), await countIndexable(db, model)];
      // A rebuild during a re-embedding also took the vectors computed so far for its target.
      if (held !== indexed && held !== indexed + (await countUnderConstruction(db, model)))
        return `${modelKey(model)}: ${held} vectors in the index, ${indexed} indexed memories`;
    }
    return undefined;
  }

  const loop = createPollLoop({
    pollMs: deps.pollMs,
    once: catchUp,
    onError(err) {
      logger.error({ err }, 'following the change feed failed; retrying');
    },
  });

  return {
    /**
     * Resumes from the saved position and catches up, or rebuilds from PostgreSQL. Returns how it
     * opened (the server awaits it before it listens).
     */
    async open(): Promise<'resumed' | 'rebuilt'> {
      const saved = readPosition();
      const now = await feedSnapshot(db);
      // A position ahead of the database's transactions was saved against another database (a
      // restore into a new cluster starts its transaction ids low again): rows written from now
      // on would fall behind it and never be read.
      const foreign = saved !== undefined && saved.fromXid > now.xmin;
      // Files that cannot be read (a torn or foreign file) are rebuilt: a rebuild never reads them.
      const unreadable = saved && !foreign ? await unreadableIndex() : undefined;
      if (!saved || foreign || saved.generation !== now.generation || unreadable) {
        await rebuild(
          !saved
            ? 'no saved position'
            : foreign
              ? 'the saved position is ahead of this database: saved against another one'
              : (unreadable ?? 'rebuild generation moved while stopped'),
        );
        upToDateAt = Date.now();
        opened = 'rebuilt';
        return opened;
      }
      const started = performance.now();
      feed = createChangeFeed(db, { columns: ['n.id'], pageSize: PAGE, fromXid: saved.fromXid });
      generation = saved.generation;
      // Counted after catching up; workers indexing meanwhile make the counts differ for a moment,
      // so a difference must last a few catch-ups before the files are judged wrong.
      let rows = 0;
      let differs: string | undefined;
      for (let attempt = 0; attempt < MATCH_ATTEMPTS; attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, deps.pollMs));
        rows += await catchUp();
        differs = await mismatch();
        if (!differs) break;
      }
      if (differs) {
        logger.warn({ differs }, 'vector index files do not match PostgreSQL after catching up; rebuilding');
        await rebuild('index files did not match PostgreSQL after catching up');
        upToDateAt = Date.now();
        opened = 'rebuilt';
        return opened;
      }
      await savePosition();
      logger.info(
        { rows, seconds: Math.round((performance.now() - started) / 10) / 100 },
        'vector index resumed from its saved position',
      );
      opened = 'resumed';
      return opened;
    },
    catchUp,
    /** Follows the feed every `pollMs` (sooner on `notify()`). */
    start: loop.start,
    notify: loop.notify,
    async stop() {
      await loop.stop();
      if (unsaved) await savePosition();
    },
    /**
     * Resolves true once a catch-up that started after this call has finished, so that everything
     * committed before the call is in the index (a replica's own imports: read-your-writes without
     * inserting each vector twice); false after `timeoutMs` without one.
     */
    caughtUp(timeoutMs: number): Promise<boolean> {
      return new Promise((resolve) => {
        const w = {
          since: Date.now(),
          done: () => {
            clearTimeout(timer);
            resolve(true);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          resolve(false);
        }, timeoutMs);
        waiters.add(w);
        loop.notify();
      });
    },
    /** Seconds since the start of the last read that brought the index up to date (undefined: never). */
    lagSeconds(): number | undefined {
      return upToDateAt === undefined ? undefined : (Date.now() - upToDateAt) / 1000;
    },
    status() {
      return { opened, appliedChanges: applied, fromXid: feed?.fromXid ?? 0, generation };
    },
  };
}

export type VectorFollower = ReturnType<typeof createVectorFollower>;
