import { describe, expect, it } from 'vitest';
import { expansionTerms, withFeedback } from '../../src/search/feedback.js';
import { DEFAULT_FUSION, fuse, NORMALISED_DEPTH, type Ranked } from '../../src/search/fusion.js';

/** A ranking of `keys`, best first, with scores falling from `top` by `step`. */
const ranking = (keys: number[], top: number, step: number): Ranked[] =>
  keys.map((key, i) => ({ key, score: top - i * step }));

const order = (r: { key: number }[]) => r.map((x) => x.key);

describe('score fusion', () => {
  it('ranks first what both retrievers rank first, and reports both scores', () => {
    const fused = fuse(ranking([1, 2, 3], 9, 1), ranking([1, 4, 5], 0.8, 0.1), DEFAULT_FUSION);
    expect(fused[0]).toMatchObject({ key: 1, keywordScore: 9, vectorScore: 0.8 });
    expect(order(fused).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('never ranks below its best half on a fixture where one retriever is right and the other guesses', () => {
    // The keyword retriever finds the answer (7) by a wide margin; the vector retriever's
    // similarities are flat and do not include it.
    const keyword = [
      { key: 7, score: 12 },
      { key: 8, score: 3 },
      { key: 9, score: 2.9 },
    ];
    const vector = ranking([1, 2, 3, 4, 5, 6], 0.42, 0.005);
    const fused = order(fuse(keyword, vector, DEFAULT_FUSION));
    expect(fused[0]).toBe(7);
    // And the other way round: the model is sure, the words are not.
    const flatKeyword = ranking([1, 2, 3, 4], 2.1, 0.05);
    const sureVector = [{ key: 9, score: 0.9 }, ...ranking([1, 2, 3], 0.3, 0.01)];
    expect(order(fuse(flatKeyword, sureVector, { ...DEFAULT_FUSION, keywordWeight: 0.4 }))[0]).toBe(9);
  });

  it('normalises over the best NORMALISED_DEPTH candidates, so a deeper list does not reorder the top', () => {
    const keys = Array.from({ length: 4 * NORMALISED_DEPTH }, (_, i) => i + 1);
    const keyword = ranking(keys, 20, 0.09);
    const vector = ranking([...keys].reverse(), 0.9, 0.002);
    const shallow = order(
      fuse(keyword.slice(0, NORMALISED_DEPTH), vector.slice(0, NORMALISED_DEPTH), DEFAULT_FUSION),
    );
    const deep = order(fuse(keyword, vector, DEFAULT_FUSION));
    expect(deep.slice(0, 10)).toEqual(shallow.slice(0, 10));
  });

  it('copes with empty lists and equal scores', () => {
    expect(fuse([], [], DEFAULT_FUSION)).toEqual([]);
    expect(order(fuse([{ key: 3, score: 1 }], [], DEFAULT_FUSION))).toEqual([3]);
    // Ties: the newer memory (higher key) first.
    expect(order(fuse(ranking([1, 2], 1, 0), [], DEFAULT_FUSION))).toEqual([2, 1]);
  });

  it('keeps weighted reciprocal rank fusion for comparison', () => {
    const fused = fuse(ranking([1, 2], 5, 1), ranking([2, 3], 0.9, 0.1), {
      method: 'rrf',
      keywordWeight: 0.6,
    });
    expect(fused[0]).toMatchObject({ key: 2 });
    expect(fused[0].score).toBeCloseTo(1 / 62 + 0.7 / 61, 10);
  });
});

describe('pseudo-relevance feedback', () => {
  it('picks the words weighing most in the best hits, and adds their search to the question counted twice', async () => {
    const terms = new Map([
      [
        1,
        new Map([
          ['pottery', 2],
          ['class', 1],
          ['clay', 1],
        ]),
      ],
      [
        2,
        new Map([
          ['clay', 3],
          ['apron', 1],
        ]),
      ],
    ]);
    const top = [
      { key: 1, score: 3 },
      { key: 2, score: 1 },
    ];
    expect(expansionTerms(top, terms).slice(0, 2)).toEqual(['clay', 'pottery']);

    const asked: string[] = [];
    const retrieve = async (text: string) => {
      asked.push(text);
      return text === 'question'
        ? top
        : [
            { key: 5, score: 4 },
            { key: 2, score: 1 },
          ];
    };
    const hits = await withFeedback(retrieve as never, async () => terms)(
      'question',
      {} as never,
      {} as never,
      10,
    );
    expect(asked[1].split(' ')).toContain('clay');
    // 1: 2 × 3; 5: 4; 2: 2 × 1 + 1.
    expect(hits).toEqual([
      { key: 1, score: 6 },
      { key: 5, score: 4 },
      { key: 2, score: 3 },
    ]);
  });
});
