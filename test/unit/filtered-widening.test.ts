import { describe, expect, it } from 'vitest';
import { WIDEST, widerFetch } from '../../src/search/search.js';

describe('widerFetch: the next round of a filtered vector search', () => {
  it('widens the first time by the selectivity the round suggests, with a margin', () => {
    // 1 of 40 kept reads as 2.5 %: 10 matches need 400 candidates, asked with half again.
    expect(widerFetch(0, 40, 1, 10)).toBe(600);
    // Plenty kept already: at least four times the round.
    expect(widerFetch(0, 40, 8, 10)).toBe(160);
    expect(widerFetch(0, 1000, 1, 100)).toBe(WIDEST);
  });

  it('asks for the widest list when a round kept none', () => {
    expect(widerFetch(0, 40, 0, 10)).toBe(WIDEST);
  });

  it('asks for the widest list when the first widening still fell short', () => {
    // The estimate came from a handful of matches: a second guess would end in the exact scan.
    expect(widerFetch(1, 600, 1, 10)).toBe(WIDEST);
    expect(widerFetch(1, 160, 9, 10)).toBe(WIDEST);
  });
});
