import { describe, expect, it } from 'vitest';
import { MAX_IDS_PER_EVENT, stagedReads, WHOLE_DIVISION } from '../../src/audit/access-audit.js';
import type { Access } from '../../src/memories/access.js';

const access: Access = {
  divisions: ['alpha'],
  agentId: 'bot',
  actor: 'agent:bot',
  piiRead: false,
  tokenId: 'jti-1',
  request: { id: 'req-9', route: 'POST /v1/search' },
};
const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('access events of one read', () => {
  it('lists the ids of a read in one event, with who, which credential and which route', () => {
    const [row, ...rest] = stagedReads(access, {
      divisionId: 'alpha',
      via: 'search',
      memoryIds: ['a', 'b'],
      neighbourIds: ['c'],
    });
    expect(rest).toEqual([]);
    expect(row).toMatchObject({
      divisionId: 'alpha',
      actor: 'agent:bot',
      manifestSignatureId: null,
      memoryIds: ['a', 'b', 'c'],
      detail: {
        via: 'search',
        route: 'POST /v1/search',
        requestId: 'req-9',
        agentId: 'bot',
        tokenId: 'jti-1',
        memoryIds: ['a', 'b'],
        neighbourIds: ['c'],
      },
    });
    expect(row.detail).not.toHaveProperty('part');
  });

  it(`splits a read of more than ${MAX_IDS_PER_EVENT} ids into bounded parts of one read`, () => {
    const hits = ids(700, 'h');
    const neighbours = ids(600, 'n');
    const rows = stagedReads(access, {
      divisionId: 'alpha',
      via: 'search',
      memoryIds: hits,
      neighbourIds: neighbours,
    });
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => [r.detail.part, r.detail.parts])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    expect(new Set(rows.map((r) => r.detail.readId)).size).toBe(1);
    for (const r of rows) expect(r.memoryIds.length).toBeLessThanOrEqual(MAX_IDS_PER_EVENT);
    expect(rows.flatMap((r) => r.detail.memoryIds)).toEqual(hits);
    expect(rows.flatMap((r) => r.detail.neighbourIds ?? [])).toEqual(neighbours);
  });

  it('marks an export as a read of the whole division', () => {
    const [row] = stagedReads(access, {
      divisionId: 'alpha',
      via: 'export',
      memoryIds: [],
      wholeDivision: true,
    });
    expect(row.memoryIds).toEqual([WHOLE_DIVISION]);
    expect(row.detail).toMatchObject({ wholeDivision: true, memoryIds: [] });
  });
});
