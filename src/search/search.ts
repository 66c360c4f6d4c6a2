import type { Database } from '../adapters/db/port.js';
import { type Embedder, type EmbeddingModel, modelKey } from '../adapters/embedders/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import type { AccessRead } from '../audit/access-audit.js';
import {
  type ContextOptions,
  contextSql,
  indexVectorOf,
  type NeighbourVectors,
} from '../indexing/contextual-vectors.js';
import type { Access } from '../memories/access.js';
import { MEMORY_COLUMNS, type MemoryRow, visibleText } from '../memories/records.js';
import { normaliseText } from '../memories/text.js';
import { base64ToVector, cosineDistance } from '../memories/vector-codec.js';
import {
  type ModelRef,
  type ModelResolver,
  readDivisionModel,
  refOf,
  requireModel,
} from '../models/active-model.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import type { Metrics } from '../platform/metrics.js';
import { sqlFeedbackTerms, withFeedback } from './feedback.js';
import { filterSql, type MemoryFilter } from './filter.js';
import { DEFAULT_FUSION, type Fused, type FusionOptions, fuse } from './fusion.js';
import type { KeywordIndex } from './keyword-index/index.js';
import { createKeywordSearch, type KeyCheck } from './keyword-search.js';
import { type Neighbour, neighboursOf } from './neighbours.js';

export type SearchMode = 'hybrid' | 'vector' | 'keyword';

export interface SearchQuery extends MemoryFilter {
  query?: string;
  vector?: number[];
  k: number;
  mode: SearchMode;
  /** Neighbours of each hit's session to return with it. */
  expand?: { before?: number; after?: number };
  /** Pseudo-relevance feedback on the keyword side (default: the service's setting). */
  feedback?: boolean;
}

export interface SearchHit {
  id: string;
  score: number;
  /** Cosine similarity, when the vector retriever found this memory. */
  vectorScore?: number;
  /** BM25 score, when the keyword retriever found it. */
  keywordScore?: number;
  /** Redacted for callers without pii:read. */
  text: string;
  piiFlags: string[];
  agentId: string | null;
  namespace: string;
  kind: string;
  tags: string[];
  metadata: Record<string, unknown>;
  createdAt: string;
  sessionId: string | null;
  sequence: number | null;
  occurredAt: string | null;
  supersededBy: string | null;
  /** With `expand`: neighbours in the hit's session. */
  context?: { before: Neighbour[]; after: Neighbour[] };
}

export interface SearchResult {
  hits: SearchHit[];
  mode: SearchMode;
  /** Memories matching the filters that are not searchable by meaning yet. */
  pending: number;
  timings: { embedMs: number; totalMs: number };
}

const QUERY_CACHE_SIZE = 1000;
/** Divisions whose active model is remembered (a hint, checked by every search that uses it). */
const DIVISION_CACHE_SIZE = 1000;

type Side = 'vector' | 'keyword';

/** What the first check of a search answers: each side's passing keys, the pending count, the model. */
interface FirstChecks {
  vector: Set<number>;
  keyword: Set<number>;
  pending: number;
  /** The division's model columns as of the same statement; undefined when not asked or no division. */
  division?: { ref: ModelRef | null };
}

/**
 * The first filter checks of one search, made in one statement: each retriever hands its first
 * candidates to `check(side)` (or is done without asking, `leave(side)`), and once every side has,
 * `run` checks them all, with the pending count. PGlite runs statements one at a time, so every
 * statement saved is a round trip off the search; on a server it is one wait instead of several.
 */
function gatherChecks(sides: Side[], run: (asked: Partial<Record<Side, number[]>>) => Promise<FirstChecks>) {
  const waiting = new Set(sides);
  const asked: Partial<Record<Side, number[]>> = {};
  let fire: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    fire = resolve;
  });
  const result = started.then(() => run(asked));
  const settle = (side: Side) => {
    if (waiting.delete(side) && waiting.size === 0) fire();
  };
  if (waiting.size === 0) fire();
  return {
    result,
    /** The side's first check, answered by the gathered statement (asked once per side). */
    check(side: Side): KeyCheck {
      return async (keys) => {
        if (!waiting.has(side)) throw new Error(`the ${side} side's first check was asked twice`);
        asked[side] = keys;
        settle(side);
        return (await result)[side];
      };
    },
    /** The side is done, or will not ask (idempotent). */
    leave: settle,
  };
}

/**
 * SQL condition: the memory is searchable by meaning with `model` (indexed with a vector of it);
 * the model's name and version are appended to `params`, in that order, as its last two.
 */
function indexedWith(params: unknown[], model: EmbeddingModel): string {
  params.push(model.name, model.version);
  const p = params.length;
  return `n.status = 'indexed' AND n.embedding_model = $${p - 1} AND n.embedding_model_version = $${p}`;
}

/** SQL condition: the memory is one of `keys` and searchable by meaning with `model`. */
function searchableBy(params: unknown[], keys: number[], model: EmbeddingModel): string {
  params.push(keys);
  return `n.vector_key = ANY($${params.length}::bigint[]) AND ${indexedWith(params, model)}`;
}

/**
 * The same first checks where statements run side by side (a pool of connections): the pending
 * count and the division's model go out at once, each side's check as soon as its candidates are
 * known. Gathering them into one statement would make a server wait for the slower retriever and
 * then run the checks one after the other.
 */
function parallelChecks(
  run: (asked: Partial<Record<Side, number[]>>, whole: boolean) => Promise<FirstChecks>,
) {
  const result = run({}, true);
  return {
    result,
    check(side: Side): KeyCheck {
      return async (keys) => (await run({ [side]: keys }, false))[side];
    },
    leave(_side: Side) {},
  };
}

export interface SearchDeps {
  db: Database;
  /** The embedder of each model (the registry); a division is searched with its active model. */
  embedders: { get(model: EmbeddingModel): Promise<Embedder> };
  resolveModel: ModelResolver;
  index: Pick<VectorIndex, 'search' | 'count'>;
  metrics: Metrics;
  /** Audits the read: the hits and neighbours shown (access events, and `pii.read` for personal data). */
  auditReads: (access: Access, rows: MemoryRow[], read: AccessRead) => Promise<void>;
  /** How the index blends session neighbours into vectors (the exact scan blends the same way). */
  context?: ContextOptions;
  /** How hybrid search fuses its two rankings (default DEFAULT_FUSION, see fusion.ts). */
  fusion?: FusionOptions;
  /** Pseudo-relevance feedback on the keyword side unless a search says otherwise (default off). */
  feedback?: boolean;
  /** The in-process keyword index; without it keyword search is BM25 in SQL. */
  keywordIndex?: KeywordIndex;
}

export type SearchService = ReturnType<typeof createSearchService>;

export function createSearchService(deps: SearchDeps) {
  const { db, index, metrics } = deps;
  const keywordSearch = createKeywordSearch(db, deps.keywordIndex);
  const keywordWithFeedback = withFeedback(keywordSearch, sqlFeedbackTerms(db));
  const fusion = deps.fusion ?? DEFAULT_FUSION;
  const queryVectors = new Map<string, Float32Array>();
  /**
   * Each division's active model as last read. Only a hint: a search using it checks it against
   * the divisions row in the same statement as its candidates, and starts again from a fresh
   * read when a re-embedding switched the model (or the division is gone).
   */
  const divisionModels = new Map<string, ModelRef | null>();
  const keyOfRef = (ref: ModelRef | null) => (ref === null ? null : modelKey(ref));

  async function freshDivisionModel(divisionId: string): Promise<ModelRef | null> {
    const { ref } = await readDivisionModel(db, divisionId);
    divisionModels.delete(divisionId);
    divisionModels.set(divisionId, ref);
    if (divisionModels.size > DIVISION_CACHE_SIZE)
      divisionModels.delete(divisionModels.keys().next().value as string);
    return ref;
  }

  /**
   * The query's vector, from an LRU cache kept per division: a cache shared across divisions
   * would tell one tenant, by the time a search takes, that another asked exactly this.
   */
  async function embedQuery(divisionId: string, model: EmbeddingModel, text: string): Promise<Float32Array> {
    const normalised = normaliseText(text);
    const key = `${divisionId}\n${modelKey(model)}\n${normalised}`;
    const hit = queryVectors.get(key);
    if (hit) {
      queryVectors.delete(key);
      queryVectors.set(key, hit);
      return hit;
    }
    let vector: Float32Array;
    try {
      const embedder = await deps.embedders.get(model);
      [vector] = await embedder.embed([normalised]);
    } catch (err) {
      throw new AppError(ErrorCode.embedderFailed, `could not embed the query: ${(err as Error).message}`);
    }
    queryVectors.set(key, vector);
    if (queryVectors.size > QUERY_CACHE_SIZE) queryVectors.delete(queryVectors.keys().next().value as string);
    return vector;
  }

  /** Keeps the keys that pass the filters and have an active vector, in the given order. */
  async function filterKeys(
    keys: number[],
    filter: MemoryFilter,
    access: Access,
    model: EmbeddingModel,
  ): Promise<Set<number>> {
    if (keys.length === 0) return new Set();
    const params: unknown[] = [];
    const where = filterSql(filter, access, params);
    const res = await db.query<{ vector_key: number }>(
      `SELECT n.vector_key FROM memory_nodes n WHERE ${where} AND ${searchableBy(params, keys, model)}`,
      params,
    );
    return new Set(res.rows.map((r) => Number(r.vector_key)));
  }

  /** Exact cosine over every filtered vector: the answer when the index cannot give k filtered matches. */
  async function exactScan(
    vector: Float32Array,
    filter: MemoryFilter,
    access: Access,
    limit: number,
    model: EmbeddingModel,
  ) {
    metrics.searchExactFallbacks.inc();
    const params: unknown[] = [];
    const where = filterSql(filter, access, params);
    const indexed = indexedWith(params, model);
    const p = params.length;
    // The vectors the index holds: blended with the session neighbours' as the worker blends them.
    const context = contextSql(`$${p - 1}`, `$${p}`, deps.context);
    const res = await db.query<{ vector_key: number; embedding: string } & NeighbourVectors>(
      `SELECT n.vector_key, encode(n.embedding, 'base64') AS embedding, ${context.columns}
       FROM memory_nodes n ${context.joins}
       WHERE ${where} AND ${indexed}`,
      params,
    );
    return res.rows
      .map((r) => ({
        key: Number(r.vector_key),
        distance: cosineDistance(vector, indexVectorOf(base64ToVector(r.embedding), r, deps.context)),
      }))
      .sort((a, b) => a.distance - b.distance || a.key - b.key)
      .slice(0, limit);
  }

  /** A filter matching at most this many memories is answered by the exact scan directly. */
  const EXACT_SCAN_MAX = 2000;

  /** Whether the filter matches at most `max` memories searchable with this model (counts no further). */
  async function matchesAtMost(filter: MemoryFilter, access: Access, model: EmbeddingModel, max: number) {
    const params: unknown[] = [];
    const where = filterSql(filter, access, params);
    const indexed = indexedWith(params, model);
    params.push(max + 1);
    const res = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (
         SELECT 1 FROM memory_nodes n WHERE ${where} AND ${indexed} LIMIT $${params.length}) m`,
      params,
    );
    return res.rows[0].n <= max;
  }

  /**
   * Nearest filtered neighbours: ask the index for more than needed, keep those passing the
   * filters, widen once, then scan exactly. When `limit` matches exist, `limit` come back.
   */
  async function vectorSearch(
    vector: Float32Array,
    filter: MemoryFilter,
    access: Access,
    limit: number,
    model: EmbeddingModel,
    /** Answers the first round's check instead of filterKeys (the same question). */
    firstCheck?: KeyCheck,
  ) {
    let fetch = Math.min(Math.max(limit * 4, 40), 1000);
    for (let round = 0; ; round++) {
      const hits = await index.search(model, filter.divisionId, vector, fetch);
      const keys = hits.map((h) => h.key);
      const passing =
        round === 0 && firstCheck ? await firstCheck(keys) : await filterKeys(keys, filter, access, model);
      const kept = hits.filter((h) => passing.has(h.key));
      // Fewer hits than asked: the index gave every vector it holds for this division, unless its
      // graph left some unreachable (an approximate index built concurrently can). Only then is
      // the count worth asking, and a division this small costs little to scan exactly.
      const whole = hits.length < fetch;
      if (kept.length >= limit && (!whole || hits.length >= (await index.count(model, filter.divisionId))))
        return kept.slice(0, limit);
      // The exact scan also covers entries the index lost (it is derived data).
      if (whole || fetch >= WIDEST) break;
      // With none kept, the filter is narrow: an exact scan answers when it matches few memories,
      // else the index's widest list (a 1 % filter at 1M memories keeps ~0.4 of 40 and ~80 of
      // 8,000, and the exact scan of its 10,000 vectors read from PostgreSQL takes half a second).
      if (kept.length === 0 && (await matchesAtMost(filter, access, model, EXACT_SCAN_MAX))) break;
      fetch = widerFetch(round, fetch, kept.length, limit);
    }
    return exactScan(vector, filter, access, limit, model);
  }

  async function hydrate(keys: number[]): Promise<Map<number, MemoryRow>> {
    if (keys.length === 0) return new Map();
    const res = await db.query<MemoryRow>(
      `SELECT ${MEMORY_COLUMNS} FROM memory_nodes WHERE vector_key = ANY($1::bigint[]) AND deleted_at IS NULL`,
      [keys],
    );
    return new Map(res.rows.map((r) => [Number(r.vector_key), r]));
  }

  /**
   * One statement for a search's first checks: the pending count, the vector candidates that pass
   * the filters with an active vector of `model` (as filterKeys), the keyword candidates that pass
   * them (as the keyword retriever's check), and, with `division`, the division's model columns.
   * Keys come back as one text value each: PGlite decodes one long field far faster than many rows.
   */
  async function firstChecks(
    filter: MemoryFilter,
    access: Access,
    model: EmbeddingModel | undefined,
    asked: Partial<Record<Side, number[]>>,
    division: boolean,
    withPending = true,
  ): Promise<FirstChecks> {
    const params: unknown[] = [];
    const where = filterSql(filter, access, params);
    const add = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const columns: string[] = [];
    if (withPending) {
      columns.push(
        `(SELECT count(*)::int FROM memory_nodes n WHERE ${where} AND n.status = 'pending') AS pending`,
      );
    }
    if (asked.vector && asked.vector.length > 0 && model) {
      columns.push(`(SELECT string_agg(n.vector_key::text, ',') FROM memory_nodes n
        WHERE ${where} AND ${searchableBy(params, asked.vector, model)}) AS vector_keys`);
    }
    if (asked.keyword && asked.keyword.length > 0) {
      columns.push(`(SELECT string_agg(n.vector_key::text, ',') FROM memory_nodes n
        WHERE ${where} AND n.vector_key = ANY(${add(asked.keyword)}::bigint[])) AS keyword_keys`);
    }
    if (division) {
      columns.push(`(SELECT json_build_array(embedding_model, embedding_model_version)::text
        FROM divisions WHERE id = ${add(filter.divisionId)}) AS division`);
    }
    if (columns.length === 0) return { pending: 0, vector: new Set(), keyword: new Set() };
    const res = await db.query<{
      pending: number;
      vector_keys?: string | null;
      keyword_keys?: string | null;
      division?: string | null;
    }>(`SELECT ${columns.join(', ')}`, params);
    const row = res.rows[0];
    const keys = (text: string | null | undefined) => new Set(text ? text.split(',').map(Number) : []);
    let current: FirstChecks['division'];
    if (row.division) {
      const [name, version] = JSON.parse(row.division) as [string | null, string | null];
      current = { ref: refOf(name, version) };
    }
    return {
      pending: row.pending,
      vector: keys(row.vector_keys),
      keyword: keys(row.keyword_keys),
      division: current,
    };
  }

  /** Searches of this service between their start and their answer. */
  let running = 0;

  return {
    async search(access: Access, q: SearchQuery): Promise<SearchResult> {
      running++;
      try {
        return await searchOnce(access, q);
      } finally {
        running--;
      }
    },
  };

  async function searchOnce(access: Access, q: SearchQuery): Promise<SearchResult> {
    const started = performance.now();
    const timer = metrics.searchSeconds.startTimer({ mode: q.mode });
    if (q.query === undefined && q.vector === undefined) {
      throw new AppError(ErrorCode.queryRequired, 'give a query text or a vector', [
        { field: 'query', message: 'required unless vector is given' },
      ]);
    }
    if (q.mode === 'keyword' && q.query === undefined) {
      throw new AppError(ErrorCode.queryRequired, 'keyword search needs a query text', [
        { field: 'query', message: 'required in keyword mode' },
      ]);
    }
    const useVector = q.mode !== 'keyword';
    const useKeyword = q.mode !== 'vector' && q.query !== undefined;
    const needsModel = useVector || q.vector !== undefined;
    const feedback = q.feedback ?? deps.feedback;
    const depth = useVector && useKeyword ? Math.max(q.k * 2, 50) : q.k;
    let embedMs = 0;

    /**
     * The retrievers and the pending count, with the division's active model (its vectors, its
     * space, its embedder for the query): the remembered one when `remembered` (checked in the
     * first checks' statement; undefined when the division's model changed since), else read now.
     */
    const retrieve = async (remembered: boolean) => {
      let ref: ModelRef | null | undefined;
      let model: EmbeddingModel | undefined;
      if (remembered && divisionModels.has(q.divisionId)) {
        ref = divisionModels.get(q.divisionId) ?? null;
        model = needsModel ? deps.resolveModel(ref) : undefined;
        // Whatever the remembered model would refuse is decided on a fresh read.
        if (needsModel && (!model || (q.vector !== undefined && q.vector.length !== model.dimensions)))
          ref = undefined;
      }
      const fromMemory = ref !== undefined;
      if (!fromMemory) {
        ref = await freshDivisionModel(q.divisionId);
        model = needsModel ? requireModel(deps.resolveModel, ref, q.divisionId) : undefined;
        if (model && q.vector !== undefined && q.vector.length !== model.dimensions) {
          throw new AppError(
            ErrorCode.vectorDimensionMismatch,
            `${model.name} vectors have ${model.dimensions} dimensions, got ${q.vector.length}`,
            [{ field: 'vector', message: `expected ${model.dimensions} numbers` }],
          );
        }
      }

      // The in-process keyword index's first check joins the statement; SQL BM25 and feedback
      // searches run on their own.
      const stagedKeyword = useKeyword && deps.keywordIndex !== undefined && !feedback;
      const sides: Side[] = [];
      if (useVector && model) sides.push('vector');
      if (stagedKeyword) sides.push('keyword');
      // One session runs statements in turn: one statement for all. A pool runs them side by
      // side, which shortens a search alone; with others in flight they would only queue for
      // its connections, so one statement serves more searches a second (at 100k on the server,
      // 16 clients: see BENCHMARKS.md).
      const checks =
        db.singleProcess || running > 1
          ? gatherChecks(sides, (asked) => firstChecks(q, access, model, asked, fromMemory))
          : parallelChecks((asked, whole) =>
              firstChecks(q, access, model, asked, whole && fromMemory, whole),
            );

      const vectorPart = async () => {
        if (!useVector || !model) return [];
        let current = model;
        for (let attempt = 0; ; attempt++) {
          let vector: Float32Array;
          if (q.vector !== undefined) vector = Float32Array.from(q.vector);
          else {
            const t = performance.now();
            vector = await embedQuery(q.divisionId, current, q.query as string);
            embedMs += performance.now() - t;
          }
          const first = attempt === 0 ? checks.check('vector') : undefined;
          const hits = await vectorSearch(vector, q, access, depth, current, first);
          if (hits.length >= depth || q.vector !== undefined || attempt > 0) return hits;
          // Short of hits: the division may have switched models while this query ran (its
          // memories then hold the new model's vectors). Once more with the new model, if so.
          const now = deps.resolveModel((await readDivisionModel(db, q.divisionId)).ref);
          if (!now || modelKey(now) === modelKey(current)) return hits;
          current = now;
        }
      };
      const keywordPart = async () => {
        if (!useKeyword) return [];
        if (!stagedKeyword) {
          return (feedback ? keywordWithFeedback : keywordSearch)(q.query as string, q, access, depth);
        }
        return keywordSearch(q.query as string, q, access, depth, checks.check('keyword'));
      };
      const [vectorHits, keywordHits, first] = await Promise.all([
        vectorPart().finally(() => checks.leave('vector')),
        keywordPart().finally(() => checks.leave('keyword')),
        checks.result,
      ]);
      // The remembered model was not the division's any more (or the division is gone).
      const stale = fromMemory && (!first.division || keyOfRef(first.division.ref) !== keyOfRef(ref ?? null));
      return { stale, vectorHits, keywordHits, pending: first.pending };
    };

    let retrieved: Awaited<ReturnType<typeof retrieve>>;
    const remembered = divisionModels.get(q.divisionId);
    try {
      retrieved = await retrieve(true);
    } catch (err) {
      // A failure with a remembered model counts only if the division still has that model.
      if (
        remembered === undefined ||
        keyOfRef(await freshDivisionModel(q.divisionId)) === keyOfRef(remembered)
      )
        throw err;
      retrieved = { stale: true, vectorHits: [], keywordHits: [], pending: 0 };
    }
    if (retrieved.stale) {
      divisionModels.delete(q.divisionId);
      retrieved = await retrieve(false);
    }
    const { vectorHits, keywordHits, pending } = retrieved;

    const similar = vectorHits.map((h) => ({ key: h.key, score: 1 - h.distance }));
    // One retriever: its own scores; both: fused (fusion.ts).
    const ranked: Fused[] =
      useVector && useKeyword
        ? fuse(keywordHits, similar, fusion)
        : [
            ...similar.map((h) => ({ ...h, vectorScore: h.score })),
            ...keywordHits.map((h) => ({ ...h, keywordScore: h.score })),
          ].sort((a, b) => b.score - a.score || b.key - a.key);
    const top = ranked.slice(0, q.k);
    const rows = await hydrate(top.map((s) => s.key));
    const hits: SearchHit[] = [];
    const shown: MemoryRow[] = [];
    for (const s of top) {
      const r = rows.get(s.key);
      if (!r) continue;
      shown.push(r);
      hits.push({
        id: r.id,
        score: s.score,
        vectorScore: s.vectorScore,
        keywordScore: s.keywordScore,
        text: visibleText(r, access.piiRead),
        piiFlags: r.pii_flags,
        agentId: r.agent_id,
        namespace: r.namespace,
        kind: r.kind,
        tags: r.tags,
        metadata: r.metadata,
        createdAt: new Date(r.created_at).toISOString(),
        sessionId: r.session_id,
        sequence: r.sequence,
        occurredAt: r.occurred_at ? new Date(r.occurred_at).toISOString() : null,
        supersededBy: r.superseded_by,
      });
    }
    // Neighbours returned with the hits (expand) that are not hits themselves.
    const neighbours: MemoryRow[] = [];
    const before = q.expand?.before ?? 0;
    const after = q.expand?.after ?? 0;
    if (before > 0 || after > 0) {
      const around = await neighboursOf(db, access, shown, {
        before,
        after,
        includeSuperseded: q.includeSuperseded,
      });
      const seen = new Set(shown.map((r) => r.id));
      for (const [i, hit] of hits.entries()) {
        const context = around.get(shown[i].id);
        hit.context = { before: context?.before ?? [], after: context?.after ?? [] };
        for (const r of context?.rows ?? []) {
          if (!seen.has(r.id)) neighbours.push(r);
          seen.add(r.id);
        }
      }
    }
    await deps.auditReads(access, [...shown, ...neighbours], {
      divisionId: q.divisionId,
      via: 'search',
      memoryIds: shown.map((r) => r.id),
      ...(before > 0 || after > 0 ? { neighbourIds: neighbours.map((r) => r.id) } : {}),
    });
    timer();
    return {
      hits,
      mode: q.mode,
      pending,
      timings: { embedMs: round(embedMs), totalMs: round(performance.now() - started) },
    };
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** The most candidates a filtered vector search asks the index for before scanning exactly. */
export const WIDEST = 8000;

/**
 * How many candidates a filtered vector search asks for next, after a round of `fetch` kept
 * `kept` that pass the filters (fewer than `limit`). The first widening goes by the selectivity
 * that round suggests, with a margin; the estimate comes from a handful of matches (1 of 40 reads
 * as 2.5 % for a 1 % filter), so when it still falls short the next round asks for the widest list
 * instead of ending in the exact scan: at 1M memories, 70 of 200 searches with a 1 % filter had
 * ended there, at half a second each. A round that kept none asks for the widest list at once.
 */
export function widerFetch(round: number, fetch: number, kept: number, limit: number): number {
  if (kept === 0 || round > 0) return WIDEST;
  return Math.min(WIDEST, Math.max(fetch * 4, Math.ceil(((limit * fetch) / kept) * 1.5)));
}
