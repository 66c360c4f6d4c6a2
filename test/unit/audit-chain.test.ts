import { describe, expect, it } from 'vitest';
import { digestOf, EVENT_HASH_VERSION, eventHash, GENESIS_HASH, verifyChain } from '../../src/audit/chain.js';
import type { AuditEvent } from '../../src/audit/types.js';

function chain(n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = {
      divisionId: 'd',
      seq,
      at: new Date(Date.UTC(2025, 0, 1, 0, 0, seq)).toISOString(),
      actor: 'agent:a',
      action: 'memory.create',
      resourceType: 'memory',
      resourceId: `m${seq}`,
      manifestSignatureId: seq % 2 ? null : 'manifest-1',
      digest: digestOf({ seq }),
      prevHash,
    };
    const hash = eventHash(e);
    out.push({ ...e, hash });
    prevHash = hash;
  }
  return out;
}

describe('audit chain', () => {
  it('digests canonical JSON: key order and whitespace do not matter', () => {
    expect(digestOf({ b: 1, a: [1, 'x'] })).toBe(digestOf(JSON.parse('{ "a": [1, "x"], "b": 1 }')));
    expect(digestOf({ a: 1 })).not.toBe(digestOf({ a: 2 }));
    expect(digestOf(undefined)).toBe(digestOf(null));
    expect(GENESIS_HASH).toMatch(/^0{64}$/);
    expect(EVENT_HASH_VERSION).toBe(1);
  });

  it('hashes every field but the hash itself', () => {
    const [e] = chain(1);
    const { hash, ...rest } = e;
    expect(eventHash(rest)).toBe(hash);
    for (const [key, value] of Object.entries({
      actor: 'x',
      seq: 2,
      at: '2025-01-01T00:00:00.001Z',
      prevHash: hash,
    })) {
      expect(eventHash({ ...rest, [key]: value })).not.toBe(hash);
    }
    expect(eventHash({ ...rest, manifestSignatureId: 'm' })).not.toBe(hash);
  });

  it('accepts an intact chain and an empty one', () => {
    const events = chain(5);
    expect(verifyChain(events)).toEqual({ ok: true });
    expect(verifyChain(events, { expectedHead: { seq: 5, hash: events[4].hash } })).toEqual({ ok: true });
    expect(verifyChain([], { expectedHead: { seq: 0, hash: GENESIS_HASH } })).toEqual({ ok: true });
  });

  it('names the first broken link', () => {
    const events = chain(5);
    const edited = events.map((e) => (e.seq === 3 ? { ...e, actor: 'x' } : e));
    expect(verifyChain(edited)).toMatchObject({
      ok: false,
      index: 2,
      seq: 3,
      reason: 'hash does not match its content',
    });

    const rehashed = events.map((e) =>
      e.seq === 3 ? { ...e, actor: 'x', hash: eventHash({ ...e, actor: 'x' }) } : e,
    );
    expect(verifyChain(rehashed)).toMatchObject({
      ok: false,
      seq: 4,
      reason: expect.stringMatching(/prevHash/),
    });

    const deleted = events.filter((e) => e.seq !== 2);
    expect(verifyChain(deleted)).toMatchObject({ ok: false, index: 1, seq: 3 });

    const swapped = [events[0], events[2], events[1], events[3], events[4]];
    expect(verifyChain(swapped)).toMatchObject({ ok: false, index: 1, seq: 3 });

    expect(verifyChain(events.slice(0, 4), { expectedHead: { seq: 5, hash: events[4].hash } })).toMatchObject(
      {
        ok: false,
        index: 4,
        seq: 5,
      },
    );
    expect(verifyChain(events, { expectedHead: { seq: 5, hash: GENESIS_HASH } })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/head hash/),
    });
  });
});
