import { copyFileSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import usearch from 'usearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUsearchThread } from '../../src/adapters/vector/in-thread.js';
import { createVectorIndex } from '../../src/adapters/vector/index.js';
import { createPgvectorIndex } from '../../src/adapters/vector/pgvector.js';
import type { VectorIndex, VectorSpace } from '../../src/adapters/vector/port.js';
import { createUsearchIndex, EXACT_BELOW } from '../../src/adapters/vector/usearch.js';
import { cosineDistance } from '../../src/memories/vector-codec.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';

const DIM = 32;

/** Deterministic vectors (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function vectors(n: number, seed: number): Float32Array[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: DIM }, () => r() * 2 - 1));
}

/** Each test gets its own space; the name carries a quote and a backslash to test SQL escaping. */
let spaces = 0;
const newSpace = (): VectorSpace => ({ name: `it's\\model-${++spaces}`, version: '1.0', dimensions: DIM });

function exactTop(stored: Map<number, Float32Array>, q: Float32Array, k: number): number[] {
  return [...stored]
    .map(([key, v]) => ({ key, d: cosineDistance(q, v) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, k)
    .map((h) => h.key);
}

interface Subject {
  index: VectorIndex;
  close(): Promise<void>;
}

/**
 * `digits`: how many decimals of a cosine distance the index keeps (toBeCloseTo's precision): exact
 * up to float rounding, except usearch's f16 vectors, which store approximations.
 */
function contract(name: string, open: () => Promise<Subject>, digits = 4) {
  describe(`vector index contract: ${name}`, () => {
    let s: Subject;
    beforeAll(async () => {
      s = await open();
    });
    afterAll(() => s?.close());

    it('returns nearest first with cosine distances, and a stored vector finds itself', async () => {
      const space = newSpace();
      await s.index.ensureSpace(space);
      const a = vectors(300, 1);
      const b = vectors(100, 2);
      const stored = new Map(a.map((v, i) => [i + 1, v]));
      await s.index.upsert(space, [
        ...a.map((vector, i) => ({ key: i + 1, divisionId: 'a', vector })),
        ...b.map((vector, i) => ({ key: 1001 + i, divisionId: 'b', vector })),
      ]);

      let found = 0;
      const queries = vectors(20, 3);
      for (const q of queries) {
        const hits = await s.index.search(space, 'a', q, 10);
        expect(hits).toHaveLength(10);
        for (let i = 0; i < hits.length; i++) {
          expect(hits[i].distance).toBeCloseTo(cosineDistance(q, stored.get(hits[i].key)!), digits);
          if (i > 0) expect(hits[i].distance).toBeGreaterThanOrEqual(hits[i - 1].distance);
        }
        const exact = new Set(exactTop(stored, q, 10));
        found += hits.filter((h) => exact.has(h.key)).length;
      }
      expect(found / (queries.length * 10)).toBeGreaterThanOrEqual(0.9);

      const self = await s.index.search(space, 'a', a[41], 5);
      expect(self[0].key).toBe(42);
      expect(self[0].distance).toBeCloseTo(0, digits);
    });

    it('keeps divisions apart', async () => {
      const space = newSpace();
      await s.index.ensureSpace(space);
      const v = vectors(60, 4);
      await s.index.upsert(
        space,
        v.map((vector, i) => ({ key: i + 1, divisionId: i % 2 ? 'b' : 'a', vector })),
      );
      for (const q of vectors(5, 5)) {
        const a = await s.index.search(space, 'a', q, 50);
        expect(a).toHaveLength(30);
        expect(a.every((h) => h.key % 2 === 1)).toBe(true);
        const b = await s.index.search(space, 'b', q, 10);
        expect(b).toHaveLength(10);
        expect(b.every((h) => h.key % 2 === 0)).toBe(true);
      }
      // A division's own vector, searched from the other division, is not found there.
      const cross = await s.index.search(space, 'a', v[1], 1);
      expect(cross[0].key).not.toBe(2);
      expect(await s.index.search(space, 'nobody', v[0], 10)).toEqual([]);
    });

    it('upsert replaces, remove removes, count counts, replace with nothing empties', async () => {
      const space = newSpace();
      await s.index.ensureSpace(space);
      const v = vectors(40, 6);
      await s.index.upsert(
        space,
        v.slice(0, 30).map((vector, i) => ({ key: i + 1, divisionId: i < 20 ? 'a' : 'b', vector })),
      );
      expect(await s.index.count(space, 'a')).toBe(20);
      expect(await s.index.count(space, 'b')).toBe(10);
      expect(await s.index.count(space)).toBe(30);

      // Key 5 gets a new vector: found at distance 0 under the new one, the count stays.
      await s.index.upsert(space, [{ key: 5, divisionId: 'a', vector: v[35] }]);
      const moved = await s.index.search(space, 'a', v[35], 1);
      expect(moved[0]).toMatchObject({ key: 5 });
      expect(moved[0].distance).toBeCloseTo(0, digits);
      expect((await s.index.search(space, 'a', v[4], 1))[0].key).not.toBe(5);
      expect(await s.index.count(space, 'a')).toBe(20);

      await s.index.remove(space, [1, 2, 3, 25, 999]);
      expect(await s.index.count(space, 'a')).toBe(17);
      expect(await s.index.count(space, 'b')).toBe(9);
      const all = await s.index.search(space, 'a', v[0], 100);
      expect(all).toHaveLength(17);
      expect(all.map((h) => h.key)).not.toContain(1);

      // Another space is untouched by replace().
      const other = newSpace();
      await s.index.ensureSpace(other);
      await s.index.upsert(other, [{ key: 1, divisionId: 'a', vector: v[0] }]);
      await s.index.replace(space, async () => undefined);
      expect(await s.index.count(space)).toBe(0);
      expect(await s.index.search(space, 'a', v[0], 10)).toEqual([]);
      expect(await s.index.count(other)).toBe(1);
      await s.index.upsert(space, [{ key: 7, divisionId: 'a', vector: v[7] }]);
      expect(await s.index.count(space)).toBe(1);
    });

    it('replace keeps answering from the old entries until its fill ends, and loses no write made meanwhile', async () => {
      const space = newSpace();
      await s.index.ensureSpace(space);
      const v = vectors(60, 11);
      const entry = (i: number, divisionId = 'a') => ({ key: i + 1, divisionId, vector: v[i] });
      // Old: keys 1-20 in 'a', 21-30 in 'gone' (a division the new contents do not have).
      await s.index.upsert(space, [
        ...Array.from({ length: 20 }, (_, i) => entry(i)),
        ...Array.from({ length: 10 }, (_, i) => entry(20 + i, 'gone')),
      ]);
      let midFill: { a: number; gone: number; found: number[] } | undefined;
      await s.index.replace(space, async (write) => {
        // New: keys 11-40 in 'a', written in two pages.
        await write(Array.from({ length: 15 }, (_, i) => entry(10 + i)));
        midFill = {
          a: await s.index.count(space, 'a'),
          gone: await s.index.count(space, 'gone'),
          found: (await s.index.search(space, 'a', v[0], 1)).map((h) => h.key),
        };
        // Written meanwhile by someone else: key 50 added, key 12 removed.
        await s.index.upsert(space, [entry(49)]);
        await s.index.remove(space, [12]);
        await write(Array.from({ length: 15 }, (_, i) => entry(25 + i)));
      });
      // Mid-fill, searches saw the old contents (key 1 still there, 'gone' whole).
      expect(midFill).toEqual({ a: 20, gone: 10, found: [1] });
      // After: the new contents with the writes made meanwhile; 'gone' is empty.
      expect(await s.index.count(space, 'gone')).toBe(0);
      expect(await s.index.count(space, 'a')).toBe(30); // 11-40 without 12, with 50
      expect((await s.index.search(space, 'a', v[0], 1))[0].key).not.toBe(1);
      expect((await s.index.search(space, 'a', v[49], 1))[0]).toMatchObject({ key: 50 });
      expect((await s.index.search(space, 'a', v[11], 1))[0].key).not.toBe(12);
      await s.index.flush();
    });

    it('a replace whose fill throws changes nothing', async () => {
      const space = newSpace();
      await s.index.ensureSpace(space);
      const v = vectors(10, 12);
      await s.index.upsert(space, [{ key: 1, divisionId: 'a', vector: v[0] }]);
      await expect(
        s.index.replace(space, async (write) => {
          await write([{ key: 2, divisionId: 'a', vector: v[1] }]);
          throw new Error('source went away');
        }),
      ).rejects.toThrow(/source went away/);
      expect(await s.index.count(space)).toBe(1);
      expect((await s.index.search(space, 'a', v[0], 5)).map((h) => h.key)).toEqual([1]);
      // And a later replace works.
      await s.index.replace(space, (write) => write([{ key: 3, divisionId: 'a', vector: v[2] }]));
      expect((await s.index.search(space, 'a', v[0], 5)).map((h) => h.key)).toEqual([3]);
    });

    it('returns exactly k from a big division and from a small one beside it', async () => {
      const space = newSpace();
      await s.index.ensureSpace(space);
      const big = vectors(3000, 7);
      const small = vectors(20, 8);
      await s.index.upsert(space, [
        ...big.map((vector, i) => ({ key: i + 1, divisionId: 'big', vector })),
        ...small.map((vector, i) => ({ key: 100_001 + i, divisionId: 'small', vector })),
      ]);
      const stored = new Map(big.map((v, i) => [i + 1, v]));
      let found = 0;
      for (const q of vectors(10, 9)) {
        const b = await s.index.search(space, 'small', q, 10);
        expect(b).toHaveLength(10);
        expect(b.every((h) => h.key > 100_000)).toBe(true);
        const a = await s.index.search(space, 'big', q, 10);
        expect(a).toHaveLength(10);
        expect(a.every((h) => h.key <= 3000)).toBe(true);
        const exact = new Set(exactTop(stored, q, 10));
        found += a.filter((h) => exact.has(h.key)).length;
      }
      expect(found / 100).toBeGreaterThanOrEqual(0.9);
    });

    it('passes check()', async () => {
      await expect(s.index.check()).resolves.toBeUndefined();
    });
  });
}

describe('pgvector on PGlite', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase('pglite');
  });
  afterAll(() => t.drop());

  contract('pgvector (PGlite)', async () => ({ index: createPgvectorIndex(t.db), close: async () => {} }));

  // The trap measured in DESIGN.md: once the planner walks the HNSW graph, a plain scan keeps
  // only the ef_search nearest rows and then filters on the division, so a small division comes
  // back short. Session settings (PGlite has one session) force that plan on search() itself.
  it('returns k from a small division even when the planner walks the HNSW index', async () => {
    const space: VectorSpace = { name: "o'hnsw", version: '1', dimensions: DIM };
    const index = createPgvectorIndex(t.db);
    await index.ensureSpace(space);
    const big = vectors(2000, 10);
    const small = vectors(10, 11);
    await index.upsert(space, [
      ...big.map((vector, i) => ({ key: i + 1, divisionId: 'big', vector })),
      ...small.map((vector, i) => ({ key: 10_001 + i, divisionId: 'small', vector })),
    ]);
    const q = vectors(1, 12)[0];
    const inner = `SELECT key FROM vector_entries WHERE space = E'o''hnsw@1' AND division_id = $2
      ORDER BY embedding::vector(${DIM}) <=> $1::vector(${DIM}) LIMIT 10`;
    const params = [`[${Array.from(q).join(',')}]`, 'small'];
    await t.db.exec('SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off');
    try {
      const plan = await t.db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${inner}`, params);
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/vector_entries_hnsw_/);
      const plain = await t.db.query(inner, params);
      expect(plain.rows.length).toBeLessThan(10); // the trap is real at this size
      const hits = await index.search(space, 'small', q, 10);
      expect(hits).toHaveLength(10);
      expect(hits.every((h) => h.key > 10_000)).toBe(true);
      for (let i = 1; i < hits.length; i++)
        expect(hits[i].distance).toBeGreaterThanOrEqual(hits[i - 1].distance);
    } finally {
      await t.db.exec('RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort');
    }
  });
});

describe('usearch', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'ml-usearch-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  contract('usearch', async () => {
    const index = createUsearchIndex({ dir: tempDir() });
    return { index, close: () => index.close() };
  });
  contract(
    'usearch f16',
    async () => {
      const index = createUsearchIndex({ dir: tempDir(), quantization: 'f16' });
      return { index, close: () => index.close() };
    },
    2,
  );

  contract(
    'usearch in a thread of its own',
    async () => {
      const index = await startUsearchThread({ dir: tempDir(), quantization: 'f16' });
      return { index, close: () => index.close() };
    },
    2,
  );

  it('persists on flush(), and a new instance on the same directory finds the same', async () => {
    const dir = tempDir();
    const space = newSpace();
    const first = createUsearchIndex({ dir });
    await first.ensureSpace(space);
    // One division past EXACT_BELOW (kept as a graph), one under it (kept as exact vectors).
    const big = EXACT_BELOW + 100;
    const v = vectors(big + 100, 11);
    await first.upsert(
      space,
      v.map((vector, i) => ({ key: i + 1, divisionId: i < big ? 'div/../a' : 'b', vector })),
    );
    await first.remove(space, [10]);
    const queries = vectors(10, 12);
    const before = await Promise.all(queries.map((q) => first.search(space, 'div/../a', q, 10)));
    const beforeSmall = await Promise.all(queries.map((q) => first.search(space, 'b', q, 10)));

    // Nothing reaches disk before flush().
    const fresh = createUsearchIndex({ dir });
    expect(await fresh.count(space)).toBe(0);
    await first.flush();
    const files = readdirSync(dir, { recursive: true }).map(String);
    expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.usearch'))).toHaveLength(1);
    expect(files.filter((f) => f.endsWith('.vectors'))).toHaveLength(1);

    const second = createUsearchIndex({ dir });
    expect(await second.count(space, 'div/../a')).toBe(big - 1);
    expect(await second.count(space)).toBe(big + 99);
    const after = await Promise.all(queries.map((q) => second.search(space, 'div/../a', q, 10)));
    expect(after.map((h) => h.map((x) => x.key))).toEqual(before.map((h) => h.map((x) => x.key)));
    const afterSmall = await Promise.all(queries.map((q) => second.search(space, 'b', q, 10)));
    expect(afterSmall).toEqual(beforeSmall);

    // A removal made by the reloaded instance (which never saw the key's division) persists too.
    await second.remove(space, [big + 1]);
    await second.flush();
    const third = createUsearchIndex({ dir });
    expect(await third.count(space, 'b')).toBe(99);
    await third.replace(space, async () => undefined);
    await third.flush();
    expect(await createUsearchIndex({ dir }).count(space)).toBe(0);
    expect(
      readdirSync(dir, { recursive: true })
        .map(String)
        .filter((f) => f.includes('.')),
    ).toEqual([]);
  });

  it('answers a small division exactly, even where an HNSW graph leaves nodes unreachable', async () => {
    // A tight cluster with one vector at its exact centre: each newer node's nearest is that one,
    // and HNSW's neighbour choice keeps little else, so most nodes get no link leading to them.
    const n = 1000;
    const r = rng(31);
    const centre = Float32Array.from({ length: DIM }, () => r() * 2 - 1);
    const cluster = Array.from({ length: n }, (_, i) =>
      Float32Array.from(centre, (c) => (i === 0 ? c : c + (r() - 0.5) * 0.02)),
    );
    const graph = new usearch.Index({
      dimensions: DIM,
      metric: usearch.MetricKind.Cos,
      quantization: usearch.ScalarKind.F32,
      connectivity: 24,
      expansion_add: 128,
      expansion_search: 100,
      multi: false,
    });
    graph.add(
      BigUint64Array.from(cluster, (_, i) => BigInt(i + 1)),
      Float32Array.from(cluster.flatMap((v) => [...v])),
      0,
    );
    expect(graph.search(cluster[5], n, 1).keys.length).toBeLessThan(n); // the trap is real here

    // Two instances fed in opposite orders, as two replicas might be: the same answers, exact ones.
    const space = newSpace();
    const entries = cluster.map((vector, i) => ({ key: i + 1, divisionId: 'a', vector }));
    const forward = createUsearchIndex({ dir: tempDir() });
    const backward = createUsearchIndex({ dir: tempDir() });
    await forward.upsert(space, entries);
    for (const e of [...entries].reverse()) await backward.upsert(space, [e]);
    const stored = new Map(cluster.map((v, i) => [i + 1, v]));
    for (const q of [cluster[5], cluster[0], ...vectors(3, 32)]) {
      const hits = await forward.search(space, 'a', q, n);
      expect(hits).toHaveLength(n);
      expect(hits.slice(0, 20).map((h) => h.key)).toEqual(exactTop(stored, q, 20));
      for (const h of hits.slice(0, 20))
        expect(h.distance).toBeCloseTo(cosineDistance(q, stored.get(h.key) as Float32Array), 5);
      expect(await backward.search(space, 'a', q, 50)).toEqual(hits.slice(0, 50));
    }
  });

  it('builds a graph from a division that outgrows exact search, and keeps every vector', async () => {
    const dir = tempDir();
    const space = newSpace();
    const index = createUsearchIndex({ dir });
    const v = vectors(EXACT_BELOW + 1, 41);
    const half = EXACT_BELOW / 2;
    await index.upsert(
      space,
      v.slice(0, half).map((vector, i) => ({ key: i + 1, divisionId: 'a', vector })),
    );
    await index.flush();
    expect(readdirSync(join(dir, readdirSync(dir)[0]))).toEqual(['a.vectors']);
    // One batch that takes it past the threshold: the vectors it held go into the graph too.
    await index.upsert(
      space,
      v.slice(half).map((vector, i) => ({ key: half + i + 1, divisionId: 'a', vector })),
    );
    expect(await index.count(space, 'a')).toBe(EXACT_BELOW + 1);
    await index.flush();
    expect(readdirSync(join(dir, readdirSync(dir)[0]))).toEqual(['a.usearch']);
    const reloaded = createUsearchIndex({ dir });
    expect(await reloaded.count(space, 'a')).toBe(EXACT_BELOW + 1);
    for (const key of [1, half, EXACT_BELOW + 1])
      expect((await reloaded.search(space, 'a', v[key - 1], 1))[0]).toMatchObject({ key });
  });

  it('after a crash between writing one form and removing the other, loads the newer file', async () => {
    const space = newSpace();
    const [graphDir, exactDir] = [tempDir(), tempDir()];
    const v = vectors(EXACT_BELOW + 10, 51);
    const asGraph = createUsearchIndex({ dir: graphDir });
    await asGraph.upsert(
      space,
      v.map((vector, i) => ({ key: i + 1, divisionId: 'a', vector })),
    );
    await asGraph.flush();
    const asExact = createUsearchIndex({ dir: exactDir });
    await asExact.upsert(
      space,
      v.slice(0, 5).map((vector, i) => ({ key: i + 1, divisionId: 'a', vector })),
    );
    await asExact.flush();
    const spaceDir = readdirSync(graphDir)[0];
    const [graphFile, exactFile] = [
      join(graphDir, spaceDir, 'a.usearch'),
      join(graphDir, spaceDir, 'a.vectors'),
    ];
    copyFileSync(join(exactDir, spaceDir, 'a.vectors'), exactFile);
    const at = (file: string, seconds: number) => utimesSync(file, seconds, seconds);
    at(graphFile, 1_000);
    at(exactFile, 2_000);
    expect(await createUsearchIndex({ dir: graphDir }).count(space, 'a')).toBe(5);
    at(graphFile, 3_000);
    expect(await createUsearchIndex({ dir: graphDir }).count(space, 'a')).toBe(EXACT_BELOW + 10);
  });

  it('refuses a damaged vector file with its name, instead of answering from part of it', async () => {
    const dir = tempDir();
    const space = newSpace();
    const index = createUsearchIndex({ dir });
    await index.upsert(
      space,
      vectors(3, 61).map((vector, i) => ({ key: i + 1, divisionId: 'a', vector })),
    );
    await index.flush();
    const file = join(dir, readdirSync(dir)[0], 'a.vectors');
    truncateSync(file, statSync(file).size - 4);
    await expect(createUsearchIndex({ dir }).count(space, 'a')).rejects.toThrow(
      /a\.vectors .*bytes for 3 vectors/,
    );
  });

  it("in its thread: the index's errors come back as errors, a second replace is refused, a closed index refuses", async () => {
    const index = await startUsearchThread({ dir: tempDir() });
    const space = newSpace();
    const [v] = vectors(1, 71);
    await expect(index.upsert(space, [{ key: -1, divisionId: 'a', vector: v }])).rejects.toThrow(
      /invalid vector key: -1/,
    );
    await expect(index.search(space, 'a', new Float32Array(DIM + 1), 1)).rejects.toThrow(/dimensions/);
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = index.replace(space, async (write) => {
      await write([{ key: 1, divisionId: 'a', vector: v }]);
      await held;
    });
    await expect(index.replace(space, async () => undefined)).rejects.toThrow(/already being replaced/);
    release();
    await first;
    expect(await index.search(space, 'a', v, 1)).toEqual([{ key: 1, distance: expect.any(Number) }]);
    await index.close();
    await expect(index.count(space)).rejects.toThrow(/closed/);
  });

  it('rejects vectors of the wrong dimension', async () => {
    const index = createUsearchIndex({ dir: tempDir() });
    const space = newSpace();
    await expect(
      index.upsert(space, [{ key: 1, divisionId: 'a', vector: new Float32Array(DIM + 1) }]),
    ).rejects.toThrow(/dimensions/);
  });
});

describe('createVectorIndex', () => {
  it("'auto' picks pgvector on PGlite", async () => {
    const t = await openTestDatabase('pglite', { migrate: false });
    try {
      const index = await createVectorIndex('auto', { db: t.db, dataDir: tmpdir() });
      expect(index.name).toBe('pgvector');
    } finally {
      await t.drop();
    }
  });

  // The PostgreSQL server here has no pgvector package.
  describe.runIf(backends.includes('postgres'))('on a PostgreSQL server without pgvector', () => {
    let t: TestDatabase;
    let dataDir: string;
    beforeAll(async () => {
      t = await openTestDatabase('postgres', { migrate: false });
      dataDir = mkdtempSync(join(tmpdir(), 'ml-vector-'));
    });
    afterAll(async () => {
      await t.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("'auto' falls back to usearch under the data directory", async () => {
      expect(await t.db.hasPgvector()).toBe(false);
      const index = await createVectorIndex('auto', { db: t.db, dataDir });
      expect(index.name).toBe('usearch');
      await index.check();
      expect(readdirSync(dataDir)).toEqual(['usearch']);
    });

    it('keeps each usearch scalar kind in its own directory, so a change starts empty and rebuilds', async () => {
      const space: VectorSpace = { name: 'kinds', version: '1', dimensions: DIM };
      const [v] = vectors(1, 21);
      const f32 = await createVectorIndex('usearch', { db: t.db, dataDir });
      await f32.upsert(space, [{ key: 1, divisionId: 'a', vector: v }]);
      await f32.flush();
      const f16 = await createVectorIndex('usearch', { db: t.db, dataDir, usearchQuantization: 'f16' });
      expect(await f16.count(space)).toBe(0);
      await f16.upsert(space, [{ key: 1, divisionId: 'a', vector: v }]);
      await f16.flush();
      expect(readdirSync(dataDir).sort()).toEqual(['usearch', 'usearch-f16']);
      // Files of one kind are never read as another: each reopens with its own vector.
      const again = await createVectorIndex('usearch', { db: t.db, dataDir, usearchQuantization: 'f16' });
      expect((await again.search(space, 'a', v, 1))[0]).toMatchObject({ key: 1 });
      expect(await (await createVectorIndex('usearch', { db: t.db, dataDir })).count(space)).toBe(1);
    });

    it("'pgvector' throws a clear error", async () => {
      await expect(createVectorIndex('pgvector', { db: t.db, dataDir })).rejects.toThrow(/pgvector/);
    });
  });
});
