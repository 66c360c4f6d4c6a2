import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/adapters/db/migrate.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';

describe.each(backends)('migrations on %s', (backend) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(backend, { migrate: false });
  });
  afterAll(() => t.drop());

  it('apply once, even when several runners start at once', async () => {
    const results = await Promise.all([migrate(t.db), migrate(t.db), migrate(t.db)]);
    const applied = results.flat();
    expect(applied).toContain('001_core.sql');
    expect(applied.filter((n) => n === '001_core.sql')).toHaveLength(1);
    const rows = await t.db.query<{ id: string }>('SELECT id FROM divisions');
    expect(rows.rows.map((r) => r.id)).toEqual(['default']);
    expect(await migrate(t.db)).toEqual([]);
  });
});
