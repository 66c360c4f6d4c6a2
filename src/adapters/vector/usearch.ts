import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  type Dirent,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import usearch from 'usearch';
import { modelKey } from '../embedders/port.js';
import { ExactVectors } from './exact-vectors.js';
import {
  checkDimensions,
  type VectorEntry,
  type VectorHit,
  type VectorIndex,
  type VectorSpace,
} from './port.js';

/**
 * How each vector's numbers are stored in the graph. `npm run bench:usearch-build` on 50k clustered
 * 512-dimension vectors: f32 2,196 B per vector with its links, recall@10 1.000; f16 1,172 B, built
 * 1.6× faster, recall@10 0.9985. i8 (660 B) is not offered: recall@10 fell to 0.82 (usearch scales
 * each unit vector by 127 and truncates, so 512 components of ~0.04 keep a few bits each), and
 * small partitions searched exhaustively came back short, as quantised vectors collide.
 */
export type UsearchQuantization = 'f32' | 'f16';

const SCALAR_KINDS = {
  f32: usearch.ScalarKind.F32,
  f16: usearch.ScalarKind.F16,
} as const;

export interface UsearchOptions {
  /** Root directory: `<dir>/<space>/<division>.usearch`. */
  dir: string;
  /** Scalar kind of the stored vectors (default f32). Files of one root must all be of one kind. */
  quantization?: UsearchQuantization;
  /**
   * HNSW M: links per node (default 24; usearch's own is 16). Five builds of 100k clustered
   * 512-dimension f16 vectors at 16, four at 24, 2,000 queries each: recall@10 0.9971–0.9977 with
   * 16 and 0.9988 every time with 24, and one build with 16 stranded a query (none of its ten
   * neighbours found; one f32 build of two did too). 24 costs 64 B more per vector (1,236 against
   * 1,172 with f16) and ~12 % more build time; searches take the same. An index file keeps the M
   * it was built with.
   */
  connectivity?: number;
  /**
   * ef at build time (default 128, usearch's own). `npm run bench:usearch-build` on 50k clustered
   * 512-dimension vectors: 128 builds at 1,692/s with recall@10 1.000, 64 at 3,466/s with 0.999,
   * 32 at 4,827/s with 0.976. 64 was tried as the default and left, in a 100k run on the server,
   * one query of 500 with none of its true neighbours found (worst query 0.00 against 0.90 with
   * 128): a sparser graph strands some regions. Insertion speed is not worth that. With M 24 too,
   * 100k f16 vectors and 2,000 queries: 64 built at 5,797–6,830/s and stranded 1–7 queries in each
   * of three builds (recall@10 0.9944–0.9971), 96 at 4,556/s stranded 1 (0.9982), 128 at 3,849/s
   * none (0.9988).
   */
  expansionAdd?: number;
  /** ef at query time: 100 measured recall@10 0.999 at 0.5 ms on 100k × 384. */
  expansionSearch?: number;
}

/**
 * Partitions smaller than this keep their vectors whole (ExactVectors) and answer every search
 * exactly; one that reaches it gets an HNSW graph built from them, and keeps it. A graph cannot
 * promise to reach every node: HNSW's neighbour choice can leave a node no link leads to. A vector
 * at the very centre of a tight cluster becomes each newer node's nearest, and the choice then
 * keeps little else, so that 71–104 of 1,000 such synthetic vectors were reachable even asking for
 * k = size; real sentences of the built-in model left 0–3 of 1,500 unreachable, and 300 nearly
 * alike notes 1 in 2 builds of 8. Such a node is missed silently, and two replicas that built their
 * graphs in different orders answer differently. An exact search of 1,999 × 512 costs about what
 * the walk over the whole graph did; its f32 vectors take 2 KB each against f16's 1.2 KB with links.
 * A graph that shrinks below this again is still searched with k = size (usearch's JS API cannot
 * return its vectors to rebuild them): a rebuild (`replace`) makes such partitions exact again.
 */
export const EXACT_BELOW = 2000;
/**
 * How many candidates a walk keeps (usearch walks with max(k, expansion_search) of them): dense
 * partitions need more than the configured 100 to find their true neighbours. On clustered
 * 512-dimension vectors, recall@10 with 100 was 0.999 at 100k, 0.97 at 300k and 0.85 at 1M; asking
 * for 512 at 1M gave 0.986 for 3.9 ms a query instead of 1.5 ms. One per 2,000 vectors, at most 512.
 */
export const breadthFor = (size: number) => Math.min(512, Math.ceil(size / 2000));
/** Vectors per synchronous add() call (~40 ms of insertion at 512 dimensions on this class of machine). */
const ADD_SLICE = 128;
const GRAPH = '.usearch';
const EXACT = '.vectors';

type Index = InstanceType<typeof usearch.Index>;

/** One division's vectors: exact while small, a graph once large (exactly one of the two is set). */
interface Partition {
  exact?: ExactVectors;
  graph?: Index;
  dirty: boolean;
}

const sizeOf = (p: Partition): number => p.exact?.size ?? p.graph?.size() ?? 0;

interface SpaceState {
  dir: string;
  dimensions: number;
  partitions: Map<string, Partition>;
  /** Every partition on disk is in memory (needed before touching keys of unknown division). */
  allLoaded: boolean;
  /**
   * The partitions a `replace` is building, searched by no one until they are swapped in. Writes
   * made meanwhile go to both, so that the swap loses none of them.
   */
  staging?: Map<string, Partition>;
}

/**
 * Embedded vector index: one usearch HNSW graph per (space, division), so a division's search
 * never has to post-filter (the JS API has no filter; post-filtering lost a third of the results).
 * Passive: state reaches disk only on `flush()`, which the caller schedules.
 */
export function createUsearchIndex(opts: UsearchOptions): VectorIndex {
  const spaces = new Map<string, SpaceState>();
  // Writes one at a time: an upsert lets the event loop in between slices, and two interleaved
  // writes of one key (a memory's job and its neighbour's re-blend in two worker lanes) would
  // remove it twice and add it twice, which usearch refuses (multi: false).
  let writes: Promise<unknown> = Promise.resolve();
  const serially = <T>(write: () => Promise<T>): Promise<T> => {
    const run = writes.then(write, write);
    writes = run.catch(() => undefined);
    return run;
  };

  const newIndex = (dimensions: number): Index =>
    new usearch.Index({
      dimensions,
      metric: usearch.MetricKind.Cos,
      quantization: SCALAR_KINDS[opts.quantization ?? 'f32'],
      connectivity: opts.connectivity ?? 24,
      expansion_add: opts.expansionAdd ?? 128,
      expansion_search: opts.expansionSearch ?? 100,
      multi: false,
    });

  const state = (space: VectorSpace): SpaceState => {
    const key = modelKey(space);
    let s = spaces.get(key);
    if (!s) {
      s = {
        dir: join(opts.dir, fileName(key)),
        dimensions: space.dimensions,
        partitions: new Map(),
        allLoaded: false,
      };
      spaces.set(key, s);
    }
    if (s.dimensions !== space.dimensions)
      throw new Error(`space ${key} has ${s.dimensions} dimensions, not ${space.dimensions}`);
    return s;
  };

  /** The division's partition: in memory, else loaded from disk, else new when `create`. */
  const partition = (s: SpaceState, division: string, create: boolean): Partition | undefined => {
    let p = s.partitions.get(division);
    if (p) return p;
    const base = join(s.dir, fileName(division));
    const file = newerOf(base + GRAPH, base + EXACT);
    if (file?.endsWith(GRAPH)) p = { graph: loadGraph(file, s.dimensions), dirty: false };
    else if (file) p = { exact: ExactVectors.load(file, s.dimensions), dirty: false };
    else if (create) p = fresh(s, false);
    else return undefined;
    s.partitions.set(division, p);
    return p;
  };

  const loadGraph = (file: string, dimensions: number): Index => {
    const index = newIndex(dimensions);
    index.load(file);
    // load() silently takes the file's dimensions over the constructor's.
    if (index.dimensions() !== dimensions)
      throw new Error(`${file} holds ${index.dimensions()}-dimensional vectors, expected ${dimensions}`);
    return index;
  };

  /** The divisions with a file in the space's directory (temp files of a crashed flush are removed). */
  const divisionsOnDisk = (s: SpaceState): string[] => {
    if (!existsSync(s.dir)) return [];
    const divisions = new Set<string>();
    for (const name of readdirSync(s.dir)) {
      if (name.includes('.tmp-')) rmSync(join(s.dir, name), { force: true });
      else
        for (const suffix of [GRAPH, EXACT])
          if (name.endsWith(suffix)) {
            const division = decodeName(name.slice(0, -suffix.length));
            if (division !== undefined) divisions.add(division);
          }
    }
    return [...divisions];
  };

  const loadAll = (s: SpaceState): void => {
    if (s.allLoaded) return;
    for (const division of divisionsOnDisk(s)) partition(s, division, false);
    s.allLoaded = true;
  };

  /**
   * Inserts entries into one set of partitions (the live ones or a replace's staging ones). usearch
   * refuses duplicate keys (multi: false), so replacing is remove-then-add; removing from every
   * partition of the set also moves a key whose division changed instead of duplicating it.
   */
  const addEntries = async (s: SpaceState, partitions: Map<string, Partition>, entries: VectorEntry[]) => {
    const latest = new Map<number, VectorEntry>(); // the last entry for a key wins
    for (const e of entries) latest.set(e.key, e);
    const byDivision = new Map<string, VectorEntry[]>();
    for (const e of latest.values()) {
      const list = byDivision.get(e.divisionId);
      if (list) list.push(e);
      else byDivision.set(e.divisionId, [e]);
    }
    const keys = [...latest.keys()];
    keys.forEach(checkKey);
    for (const p of partitions.values()) removeKeys(p, keys);
    for (const [division, list] of byDivision) {
      let p = partitions.get(division);
      if (!p) {
        p = partitions === s.partitions ? (partition(s, division, true) as Partition) : fresh(s, true);
        partitions.set(division, p);
      }
      if (p.exact && p.exact.size + list.length < EXACT_BELOW) {
        for (const e of list) p.exact.add(e.key, e.vector);
        p.dirty = true;
        continue;
      }
      // The partition outgrows exact search: its graph is built from the vectors it held (searches
      // answer from those until the graph is whole), then the batch goes into the graph.
      if (p.exact) {
        const graph = newIndex(s.dimensions);
        await addToGraph(
          graph,
          [...p.exact.entries()].map(([key, vector]) => ({ key, vector })),
        );
        p.graph = graph;
        p.exact = undefined;
      }
      await addToGraph(p.graph as Index, list);
      p.dirty = true;
    }
  };

  /**
   * add() is synchronous: in slices, with the event loop let in between, so that searches are not
   * held for the whole of a large batch (2,000 vectors are ~0.6 s of insertion). The binding grows
   * capacity to the next power of two when full (it has no reserve()), so reallocations stay
   * logarithmic; threads 0 = one per core.
   */
  const addToGraph = async (graph: Index, list: { key: number; vector: Float32Array }[]) => {
    const dimensions = graph.dimensions();
    for (let from = 0; from < list.length; from += ADD_SLICE) {
      if (from > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const slice = list.slice(from, from + ADD_SLICE);
      const flat = new Float32Array(slice.length * dimensions);
      for (let i = 0; i < slice.length; i++) flat.set(slice[i].vector, i * dimensions);
      graph.add(toKeys(slice.map((e) => e.key)), flat, 0);
    }
  };
  const fresh = (s: SpaceState, dirty: boolean): Partition => ({
    exact: new ExactVectors(s.dimensions),
    dirty,
  });

  return {
    name: 'usearch',

    async ensureSpace(space) {
      mkdirSync(state(space).dir, { recursive: true });
    },

    upsert: (space, entries) =>
      serially(async () => {
        const s = state(space);
        if (entries.length === 0) return;
        for (const e of entries) checkDimensions(space, e.vector);
        // Searches answer from the live partitions; a replace's staging ones must get the write too.
        loadAll(s);
        await addEntries(s, s.partitions, entries);
        if (s.staging) await addEntries(s, s.staging, entries);
      }),

    remove: (space, keys) =>
      serially(async () => {
        const s = state(space);
        if (keys.length === 0) return;
        loadAll(s);
        for (const p of s.partitions.values()) removeKeys(p, keys);
        for (const p of s.staging?.values() ?? []) removeKeys(p, keys);
      }),

    async search(space, divisionId, vector, limit) {
      const s = state(space);
      checkDimensions(space, vector);
      const p = partition(s, divisionId, false);
      const size = p ? sizeOf(p) : 0;
      if (!p || size === 0 || limit <= 0) return [];
      if (p.exact) return p.exact.search(vector, limit);
      const graph = p.graph as Index;
      const wanted = Math.min(limit, size);
      let res = graph.search(vector, size < EXACT_BELOW ? size : Math.max(wanted, breadthFor(size)), 1);
      // An approximate walk can come back short (e.g. around many removed nodes): widen it to
      // the whole graph, which cannot miss a reachable node.
      if (res.keys.length < wanted) res = graph.search(vector, Math.max(graph.capacity(), size), 1);
      const hits: VectorHit[] = [];
      for (let i = 0; i < res.keys.length; i++)
        hits.push({ key: Number(res.keys[i]), distance: res.distances[i] });
      // Equal distances in key order, as pgvector and the exact scan order them: the same index
      // contents answer the same, however the graph was built (a restore loads it in key order).
      return hits.sort((a, b) => a.distance - b.distance || a.key - b.key).slice(0, limit);
    },

    async count(space, divisionId) {
      const s = state(space);
      if (divisionId !== undefined) {
        const p = partition(s, divisionId, false);
        return p ? sizeOf(p) : 0;
      }
      loadAll(s);
      let n = 0;
      for (const p of s.partitions.values()) n += sizeOf(p);
      return n;
    },

    async replace(space, fill) {
      const s = state(space);
      if (s.staging) throw new Error(`space ${modelKey(space)} is already being replaced`);
      s.staging = new Map();
      try {
        await fill((entries) =>
          serially(async () => {
            for (const e of entries) checkDimensions(space, e.vector);
            await addEntries(s, s.staging as Map<string, Partition>, entries);
          }),
        );
        await serially(async () => {
          const staged = s.staging as Map<string, Partition>;
          // A division that had vectors and has none now: an empty partition, whose flush removes
          // its file. Files are not loaded for this: a damaged one is what a rebuild replaces.
          for (const division of [...s.partitions.keys(), ...divisionsOnDisk(s)])
            if (!staged.has(division)) staged.set(division, fresh(s, true));
          for (const p of staged.values()) p.dirty = true;
          s.partitions = staged;
          s.allLoaded = true;
        });
      } finally {
        s.staging = undefined;
      }
    },

    async flush() {
      for (const s of spaces.values()) {
        for (const [division, p] of s.partitions) {
          if (!p.dirty) continue;
          const base = join(s.dir, fileName(division));
          // The new form's file first, then the other form's removed: a crash in between leaves
          // both, and the load takes the newer.
          const [file, other] = p.exact ? [base + EXACT, base + GRAPH] : [base + GRAPH, base + EXACT];
          if (sizeOf(p) === 0) rmSync(file, { force: true });
          else if (p.exact) {
            const bytes = p.exact.serialize();
            writeAtomically(s.dir, file, (tmp) => writeFileSync(tmp, bytes));
          } else writeAtomically(s.dir, file, (tmp) => p.graph?.save(tmp));
          rmSync(other, { force: true });
          p.dirty = false;
        }
      }
    },

    async check() {
      mkdirSync(opts.dir, { recursive: true });
      accessSync(opts.dir, constants.W_OK);
      const probe = join(opts.dir, `.check-${process.pid}-${randomBytes(4).toString('hex')}`);
      closeSync(openSync(probe, 'w'));
      unlinkSync(probe);
    },

    async storageBytes() {
      return directoryBytes(opts.dir);
    },

    async close() {
      spaces.clear();
    },
  };
}

/** Bytes of the files under `dir` (0 when it does not exist yet). */
async function directoryBytes(dir: string): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await directoryBytes(path);
    else if (e.isFile()) total += (await stat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

function removeKeys(p: Partition, keys: number[]): void {
  if (sizeOf(p) === 0) return;
  if (p.exact) {
    if (p.exact.remove(keys) > 0) p.dirty = true;
    return;
  }
  const removed = (p.graph as Index).remove(toKeys(keys));
  if ((Array.isArray(removed) ? removed : [removed]).some((n) => n > 0)) p.dirty = true;
}

/** Of a division's two possible files, the one written last (both exist after a crash mid-flush). */
function newerOf(graph: string, exact: string): string | undefined {
  const mtime = (file: string) => statSync(file, { throwIfNoEntry: false })?.mtimeMs;
  const [g, e] = [mtime(graph), mtime(exact)];
  if (g === undefined) return e === undefined ? undefined : exact;
  if (e === undefined || g > e) return graph;
  return exact;
}

/** Save to a temp file, fsync, rename over the old file, fsync the directory: a crash leaves the
 * old file or the new one, never a torn one. */
function writeAtomically(dir: string, file: string, save: (tmp: string) => void): void {
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    save(tmp);
    syncPath(tmp, 'r+');
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncPath(dir, 'r');
}

function syncPath(path: string, flags: string): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A reversible, file-system-safe name: letters, digits, `_` and `-` stay, every other UTF-8 byte
 * becomes %XX (so `.`, `/` and `..` can never escape the directory). Decoded by decodeURIComponent.
 */
function fileName(id: string): string {
  let out = '';
  for (const byte of Buffer.from(id, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length === 0 || out.length > 200) throw new Error(`cannot use "${id}" as a file name`);
  return out;
}

/** The division a file name encodes; undefined for a file this adapter did not write. */
function decodeName(name: string): string | undefined {
  try {
    const id = decodeURIComponent(name);
    return fileName(id) === name ? id : undefined;
  } catch {
    return undefined;
  }
}

function toKeys(keys: number[]): BigUint64Array {
  return BigUint64Array.from(keys, (k) => BigInt(checkKey(k)));
}

function checkKey(key: number): number {
  if (!Number.isSafeInteger(key) || key < 0) throw new Error(`invalid vector key: ${key}`);
  return key;
}
