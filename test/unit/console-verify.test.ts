import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, eventHash } from '../../src/audit/chain.js';
import type { AuditEvent } from '../../src/audit/types.js';

// The console's chain check runs in the browser; its module has no Node imports, so Node runs it too.
const modulePath: string = '../../src/console/js/verify.js';
const verify = await import(modulePath);

const event = (seq: number, prevHash: string, over: Partial<AuditEvent> = {}): AuditEvent => {
  const e = {
    divisionId: 'default',
    seq,
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    actor: 'service:ünïcødé-☃',
    action: 'memory.create',
    resourceType: 'memory',
    resourceId: `id-${seq} "quoted" \\ \u2028`,
    manifestSignatureId: seq % 2 ? null : 'manifest-7',
    digest: createHash('sha256').update(String(seq)).digest('hex'),
    prevHash,
    ...over,
  };
  return { ...e, hash: eventHash(e) };
};

function chain(n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (let seq = 1; seq <= n; seq++) out.push(event(seq, out.at(-1)?.hash ?? '0'.repeat(64)));
  return out;
}

describe('console chain check', () => {
  it('hashes events exactly as the service does', async () => {
    for (const e of chain(5)) expect(await verify.eventHash(e)).toBe(e.hash);
    const value = { b: [1, 2.5, -0, 1e21, 'x'], a: { z: null, é: true, A: 'ü\n' } };
    expect(verify.canonicalJson(value)).toBe(canonicalJson(value));
  });

  it('computes SHA-256 without WebCrypto like node:crypto', () => {
    for (const size of [0, 1, 55, 56, 63, 64, 65, 1000]) {
      const data = randomBytes(size);
      const hex = Buffer.from(verify.sha256(new Uint8Array(data))).toString('hex');
      expect(hex, `${size} bytes`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('accepts an intact chain and names the first broken link', async () => {
    const events = chain(4);
    const head = { seq: 4, hash: events[3].hash };
    expect(await verify.verifyChain(events, head)).toEqual({ ok: true });

    const edited = events.map((e) => (e.seq === 2 ? { ...e, actor: 'mallory' } : e));
    expect(await verify.verifyChain(edited, head)).toEqual({
      ok: false,
      seq: 2,
      reason: 'hash does not match its content',
    });
    const gap = [events[0], events[2], events[3]];
    expect((await verify.verifyChain(gap, head)).reason).toMatch(/seq 2 was expected/);
    expect((await verify.verifyChain(events.slice(0, 3), head)).reason).toBe(
      'head is seq 4 but the chain ends at seq 3',
    );
    const forged = { ...events[3], prevHash: events[1].hash };
    expect(
      (await verify.verifyChain([...events.slice(0, 3), { ...forged, hash: eventHash(forged) }], head))
        .reason,
    ).toBe('prevHash does not match the hash of seq 3');
  });
});
