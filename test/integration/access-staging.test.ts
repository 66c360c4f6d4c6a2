import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/adapters/db/port.js';
import { createAccessAudit } from '../../src/audit/access-audit.js';
import type { AuditEventInput } from '../../src/audit/types.js';
import { systemAccess } from '../../src/memories/access.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';

/**
 * How reads are staged before they are chained (src/audit/access-audit.ts): reads recorded while a
 * staging INSERT runs are staged together by the next one, and every one of them reaches the
 * trail, in the order they were recorded.
 */
describe.each(backends)('staging of recorded reads (%s)', (backend) => {
  let t: TestDatabase;
  /** The database, counting the transactions that stage reads. */
  let db: Database;
  let stagings = 0;
  let failNext = false;

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    db = Object.create(t.db) as Database;
    db.transaction = (fn) =>
      t.db.transaction(async (tx) => {
        const counting = Object.create(tx) as typeof tx;
        counting.query = (text: string, params?: unknown[]) => {
          if (text.includes('INSERT INTO access_pending')) {
            stagings++;
            if (failNext) {
              failNext = false;
              throw new Error('the staging INSERT failed');
            }
          }
          return tx.query(text, params);
        };
        return fn(counting);
      });
  }, 60_000);
  afterAll(() => t?.drop());

  const open = () => {
    const chained: AuditEventInput[] = [];
    const errors: unknown[] = [];
    const audit = createAccessAudit({
      db,
      mode: 'all',
      batch: 10_000,
      flushMs: 60_000,
      appendAudit: async (_tx, events) => {
        chained.push(...events);
        return [];
      },
      logger: { error: (obj: unknown) => errors.push(obj) },
    });
    return { audit, chained, errors };
  };

  it('stages reads recorded at once in fewer transactions, and chains every one in order', async () => {
    const { audit, chained } = open();
    stagings = 0;
    const reads = Array.from(
      { length: 40 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    for (const id of reads)
      await audit.record(systemAccess('test'), { divisionId: 'default', via: 'get', memoryIds: [id] });
    await audit.settled();
    const staged = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM access_pending');
    expect(staged.rows[0].n).toBe(40);
    // The first read is staged alone; the 39 recorded while it ran go together.
    expect(stagings).toBeGreaterThanOrEqual(1);
    expect(stagings).toBeLessThan(5);
    expect(await audit.flush()).toBe(40);
    expect(chained.map((e) => e.readMemoryIds?.[0])).toEqual(reads);
  });

  it('a failed staging is logged with its reads, and the next reads are staged', async () => {
    const { audit, chained, errors } = open();
    failNext = true;
    await audit.record(systemAccess('test'), { divisionId: 'lost', via: 'get', memoryIds: ['a'] });
    await audit.settled();
    expect(errors).toEqual([expect.objectContaining({ divisionIds: ['lost'], reads: 1 })]);
    await audit.record(systemAccess('test'), { divisionId: 'kept', via: 'get', memoryIds: ['b'] });
    expect(await audit.flush()).toBe(1);
    expect(chained.map((e) => e.divisionId)).toEqual(['kept']);
  });
});
