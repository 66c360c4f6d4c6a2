import { describe, expect, it } from 'vitest';
import { B, K1, topDocuments } from '../../src/search/keyword-index/scoring.js';
import { Segment } from '../../src/search/keyword-index/segment.js';
import { parseTsvector } from '../../src/search/keyword-index/tsvector.js';

const parse = (text: string) => {
  const out: [string, number][] = [];
  parseTsvector(text, (lexeme, count) => out.push([lexeme, count]));
  return out;
};

describe('tsvector text', () => {
  it('reads lexemes with their number of positions', () => {
    expect(parse("'2023':13 'carolin':4 'group':8,9,12 'support-group':6")).toEqual([
      ['2023', 1],
      ['carolin', 1],
      ['group', 3],
      ['support-group', 1],
    ]);
  });

  it('unquotes quotes and backslashes; a lexeme without positions counts once', () => {
    expect(parse("'it''s':1A,2B 'back\\\\slash':3 'bare'")).toEqual([
      ["it's", 2],
      ['back\\slash', 1],
      ['bare', 1],
    ]);
    expect(parse('')).toEqual([]);
  });
});

/** A random segment: documents of random terms (Zipf-like: low ids common), some killed. */
function randomSegment(seed: number, docs: number, vocabulary: number) {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const seg = new Segment();
  const contents: Map<number, number>[] = [];
  for (let d = 0; d < docs; d++) {
    const terms = new Map<number, number>();
    const n = 3 + Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) {
      const term = Math.floor(vocabulary * rand() ** 3);
      terms.set(term, (terms.get(term) ?? 0) + 1 + Math.floor(rand() * 2));
    }
    const ids = Int32Array.from(terms.keys());
    const weights = Uint16Array.from(terms.values());
    const length = 2 * terms.size + Math.floor(rand() * 6);
    seg.add(d, -1, -1, { ids, weights, count: ids.length, length });
    contents.push(terms);
  }
  for (let d = 0; d < docs; d += 7) {
    const terms = contents[d];
    seg.kill(d, {
      ids: Int32Array.from(terms.keys()),
      weights: Uint16Array.from(terms.values()),
      count: terms.size,
      length: seg.lengthOf[d],
    });
  }
  return { seg, contents, rand };
}

/** Every live document scored over every query term: what MaxScore must reproduce. */
function bruteForce(seg: Segment, contents: Map<number, number>[], query: number[], k: number) {
  const df = new Map<number, number>();
  for (let d = 0; d < contents.length; d++) {
    if (!seg.alive[d]) continue;
    for (const t of contents[d].keys()) df.set(t, (df.get(t) ?? 0) + 1);
  }
  const avg = seg.totalLength / seg.live;
  const scored: { doc: number; score: number }[] = [];
  for (let d = 0; d < contents.length; d++) {
    if (!seg.alive[d]) continue;
    let score = 0;
    let matched = false;
    for (const t of query) {
      const w = contents[d].get(t);
      if (w === undefined) continue;
      matched = true;
      const n = df.get(t) as number;
      const idf = Math.log(1 + (seg.live - n + 0.5) / (n + 0.5));
      const tf = w / 2;
      score += (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * seg.lengthOf[d]) / avg));
    }
    if (matched) scored.push({ doc: d, score });
  }
  return scored.sort((a, b) => b.score - a.score || b.doc - a.doc).slice(0, k);
}

describe('BM25 top-k with MaxScore pruning', () => {
  it('returns exactly the documents and scores of scoring every match', () => {
    const { seg, contents, rand } = randomSegment(7, 3000, 400);
    for (let q = 0; q < 200; q++) {
      const query = [
        ...new Set(Array.from({ length: 1 + Math.floor(rand() * 5) }, () => Math.floor(rand() * 400))),
      ];
      for (const k of [1, 10, 50]) {
        const got = topDocuments(seg, query, k, (doc) => doc);
        const want = bruteForce(seg, contents, query, k);
        expect(got.map((h) => h.doc)).toEqual(want.map((h) => h.doc));
        for (const [i, h] of got.entries()) expect(h.score).toBeCloseTo(want[i].score, 9);
      }
    }
  });

  it('only returns allowed documents when given a set', () => {
    const { seg, contents } = randomSegment(11, 2000, 300);
    const allowed = new Uint8Array(seg.docs);
    for (let d = 0; d < seg.docs; d += 13) allowed[d] = 1;
    const query = [0, 1, 5, 40];
    const got = topDocuments(seg, query, 10, (doc) => doc, allowed);
    const want = bruteForce(seg, contents, query, 10_000)
      .filter((h) => allowed[h.doc])
      .slice(0, 10);
    expect(got.map((h) => h.doc)).toEqual(want.map((h) => h.doc));
  });
});
