import { describe, expect, it } from 'vitest';
import { blendWithNeighbours, indexVectorOf } from '../../src/indexing/contextual-vectors.js';
import { vectorToBytes } from '../../src/memories/vector-codec.js';

const v = (...xs: number[]) => Float32Array.from(xs);
const norm = (x: Float32Array) => Math.sqrt(x.reduce((s, a) => s + a * a, 0));

describe('contextual vectors', () => {
  it('blends a vector with its neighbours, each weighing half, into a unit vector', () => {
    const out = blendWithNeighbours(v(1, 0, 0), [v(0, 2, 0), v(0, 0, 1)], 0.5);
    expect(norm(out)).toBeCloseTo(1, 6);
    // (1, 0.5, 0.5) normalised: neighbours count after being normalised themselves.
    expect(out[1]).toBeCloseTo(out[2], 6);
    expect(out[0] / out[1]).toBeCloseTo(2, 6);
  });

  it('keeps the own vector, untouched, without neighbours or with weight 0', () => {
    const own = v(3, 4);
    expect(blendWithNeighbours(own, [null, null], 0.5)).toBe(own);
    expect(blendWithNeighbours(own, [v(1, 0)], 0)).toBe(own);
    expect(indexVectorOf(own, undefined)).toBe(own);
    // A neighbour of another dimension (another model's vector) is ignored.
    expect(blendWithNeighbours(own, [v(1, 0, 0)], 0.5)).toBe(own);
  });

  it('reads neighbours selected as base64', () => {
    const out = indexVectorOf(v(1, 0), {
      prev_embedding: vectorToBytes(v(0, 1)).toString('base64'),
      next_embedding: null,
    });
    expect(out[0] / out[1]).toBeCloseTo(2, 6);
  });
});
