import type { Queryable } from '../../adapters/db/port.js';
import { type ChangeFeed, createChangeFeed } from '../../indexing/change-feed.js';
import type { Logger } from '../../platform/logger.js';
import type { View } from './contextual.js';
import { FEED_COLUMNS, IndexState } from './state.js';

export type { View } from './contextual.js';

/** Rows per read of the change feed (building reads every row; a catch-up usually reads none). */
const PAGE = 5000;
/** Between two rebuild attempts after a failed one. */
const RETRY_MS = 30_000;

export interface KeywordIndexStats {
  memories: number;
  terms: number;
  divisions: number;
  postings: number;
  /** Estimated bytes of the index's arrays. */
  bytes: number;
  /** Seconds the last build took (0 before the first). */
  buildSeconds: number;
}

export interface KeywordIndexDeps {
  db: Queryable;
  logger?: Logger;
  /** Called with the number of row versions each catch-up applied, and how long it took. */
  onCatchUp?: (applied: number, seconds: number) => void;
}

interface Built {
  state: IndexState;
  feed: ChangeFeed;
  generation: number;
}

/**
 * The in-process keyword index: BM25 over contextual documents (state.ts), derived from PostgreSQL
 * like the vector index and rebuildable from it at any time. Built from the rows on first use
 * (`ready()`, which the service awaits at start); before answering, a search calls `catchUp()`,
 * one cheap read of the change feed that applies whatever any process changed since. Concurrent
 * catch-ups are merged: a caller waits for the read in flight and, if it started before the caller
 * asked, for one more. When `memory-layer index rebuild` advances the rebuild generation, a fresh
 * index is built in the background and replaces this one once complete.
 */
export function createKeywordIndex(deps: KeywordIndexDeps) {
  const { db, logger } = deps;
  let current: Built | undefined;
  let building: Promise<Built> | undefined;
  let rebuilding = false;
  let lastAttempt = 0;
  let buildSeconds = 0;

  async function build(): Promise<Built> {
    const started = performance.now();
    const state = new IndexState();
    const feed = createChangeFeed(db, { columns: FEED_COLUMNS, pageSize: PAGE });
    // Documents are made once, after every row is in: neighbours arrive in any order.
    const { generation } = await feed.read((rows) => state.apply(rows));
    state.settle();
    buildSeconds = (performance.now() - started) / 1000;
    logger?.info({ ...state.stats(), seconds: Math.round(buildSeconds * 100) / 100 }, 'keyword index built');
    return { state, feed, generation };
  }

  async function ready(): Promise<Built> {
    if (current) return current;
    building ??= build().then(
      (built) => {
        current = built;
        return built;
      },
      (err: unknown) => {
        building = undefined;
        throw err;
      },
    );
    return building;
  }

  async function readChanges(): Promise<void> {
    const built = await ready();
    const started = performance.now();
    const { generation, rows } = await built.feed.read(
      (page) => {
        // Applied and settled together: a search scoring between two pages sees a consistent index.
        built.state.apply(page);
        built.state.settle();
      },
      { probe: true },
    );
    deps.onCatchUp?.(rows, (performance.now() - started) / 1000);
    if (generation > built.generation) startRebuild(generation);
  }

  function startRebuild(generation: number) {
    if (rebuilding || Date.now() - lastAttempt < RETRY_MS) return;
    rebuilding = true;
    lastAttempt = Date.now();
    logger?.info({ generation }, 'keyword index rebuild requested; rebuilding from PostgreSQL');
    build()
      .then((fresh) => {
        current = fresh;
      })
      .catch((err: unknown) =>
        logger?.error({ err }, 'keyword index rebuild failed; keeping the current one'),
      )
      .finally(() => {
        rebuilding = false;
      });
  }

  let inFlight: Promise<void> | undefined;
  let following: Promise<void> | undefined;
  function catchUp(): Promise<void> {
    if (!inFlight) {
      inFlight = readChanges().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    }
    // The read in flight may have started before this caller's change committed: one more after it.
    following ??= inFlight
      .catch(() => undefined)
      .then(() => {
        following = undefined;
        return catchUp();
      });
    return following;
  }

  return {
    /** Builds the index from PostgreSQL unless built (awaited at start). */
    async ready(): Promise<void> {
      await ready();
    },
    /** Applies every change PostgreSQL has since the last catch-up (call before `search`). */
    catchUp,
    /**
     * The best `k` memories of a division for the lexemes, by BM25 over contextual documents, in
     * the full or redacted view; `allowedKeys` limits them to those keys. Fewer than `k` come back
     * only when fewer match. As of the last catch-up (empty before the first build).
     */
    search(
      divisionId: string,
      view: View,
      lexemes: readonly string[],
      k: number,
      allowedKeys?: readonly number[],
    ): { key: number; score: number }[] {
      return current ? current.state.search(divisionId, view, lexemes, k, allowedKeys) : [];
    },
    /** Builds a fresh index from PostgreSQL now and swaps it in; its statistics. */
    async rebuild(): Promise<KeywordIndexStats> {
      const fresh = await build();
      current = fresh;
      return this.stats();
    },
    stats(): KeywordIndexStats {
      const s = current?.state.stats() ?? { memories: 0, terms: 0, divisions: 0, postings: 0, bytes: 0 };
      return { ...s, buildSeconds };
    },
  };
}

export type KeywordIndex = ReturnType<typeof createKeywordIndex>;
