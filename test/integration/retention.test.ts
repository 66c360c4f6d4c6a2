import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../../src/adapters/db/port.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { EmbeddingModel } from '../../src/adapters/embedders/port.js';
import type { VectorIndex } from '../../src/adapters/vector/port.js';
import { createUsearchIndex } from '../../src/adapters/vector/usearch.js';
import { appendAudit } from '../../src/audit/audit-log.js';
import { digestOf } from '../../src/audit/chain.js';
import {
  createRetentionSweeper,
  createSweeperLoop,
  expiresAtFor,
  isHeldSql,
  purgeMemories,
} from '../../src/governance/retention.js';
import { vectorToBytes } from '../../src/memories/vector-codec.js';
import { createLeaderElection, type LeaderElection } from '../../src/platform/leader.js';
import { createLogger } from '../../src/platform/logger.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { appError } from '../helpers/errors.js';
import { sleep, waitFor } from '../helpers/wait.js';

const logger = createLogger('silent');
const model: EmbeddingModel = { name: 'test-model', version: '1', dimensions: 8 };
const DAY = 86_400_000;
const GRACE = DAY;

const vectorFor = (seed: number) =>
  Float32Array.from({ length: model.dimensions }, (_, i) => Math.sin(seed + i));

interface Seed {
  division?: string;
  agent?: string | null;
  expiresAt?: Date | null;
  deletedAt?: Date | null;
  legalHold?: boolean;
}

interface Row {
  id: string;
  vector_key: number;
  text: string;
  redacted_text: string | null;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  pii_flags: string[];
  embedding: Uint8Array | null;
  embedding_dim: number | null;
  embedding_model: string | null;
  deleted_at: Date | null;
  purged_at: Date | null;
  version: number;
}

describe.each(backends)('retention on %s', (backend) => {
  let t: TestDatabase;
  let index: VectorIndex;
  let dir: string;
  let clock: Date;
  let seeds = 0;
  const vectors = new Map<string, Float32Array>();

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    dir = mkdtempSync(join(tmpdir(), 'ml-retention-'));
    index = createUsearchIndex({ dir });
    await index.ensureSpace(model);
    await t.db.exec(`
      INSERT INTO divisions (id, name) VALUES ('d2', 'Second division');
      INSERT INTO agents (division_id, id, name) VALUES ('default', 'a1', 'Agent 1'), ('default', 'a2', 'Agent 2'), ('d2', 'b1', 'Agent B1');
    `);
  });
  afterAll(async () => {
    await index?.close();
    await t?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    clock = new Date('2030-06-01T12:00:00.000Z');
    await t.db.exec('DELETE FROM memory_nodes; DELETE FROM legal_holds;');
    await index.replace(model, async () => undefined);
  });

  /** A memory with PII, tags, metadata and a vector, in the database and in the index. */
  async function seed(s: Seed = {}): Promise<Row> {
    const n = ++seeds;
    const division = s.division ?? 'default';
    const vector = vectorFor(n);
    const res = await t.db.query<Row>(
      `INSERT INTO memory_nodes (id, division_id, agent_id, text, redacted_text, checksum, tags, metadata, pii_flags,
         status, embedding_model, embedding_model_version, embedding_dim, embedding, embedded_at,
         expires_at, deleted_at, legal_hold)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, 'indexed', $10, $11, $12, $13, now(), $14, $15, $16)
       RETURNING *`,
      [
        randomUUID(),
        division,
        s.agent === undefined ? null : s.agent,
        `memory ${n}: write to jane${n}@example.com`,
        `memory ${n}: write to [EMAIL]`,
        `checksum-${n}`,
        ['t1', 't2'],
        JSON.stringify({ source: 'test' }),
        ['email'],
        model.name,
        model.version,
        model.dimensions,
        vectorToBytes(vector),
        s.expiresAt ?? null,
        s.deletedAt ?? null,
        s.legalHold ?? false,
      ],
    );
    const row = { ...res.rows[0], vector_key: Number(res.rows[0].vector_key) };
    vectors.set(row.id, vector);
    await index.upsert(model, [{ key: row.vector_key, divisionId: division, vector }]);
    return row;
  }

  const read = async (id: string) =>
    (await t.db.query<Row>('SELECT * FROM memory_nodes WHERE id = $1', [id])).rows[0];

  const inIndex = async (row: Row, division = 'default') => {
    const hits = await index.search(model, division, vectors.get(row.id) as Float32Array, 50);
    return hits.some((h) => h.key === row.vector_key);
  };

  const auditOf = async (id: string) =>
    (
      await t.db.query<{ action: string; actor: string; resource_type: string; digest: string }>(
        'SELECT action, actor, resource_type, digest FROM audit_events WHERE resource_id = $1 ORDER BY seq',
        [id],
      )
    ).rows;

  const sweeper = (batchSize?: number) =>
    createRetentionSweeper({
      db: t.db,
      index,
      model,
      appendAudit,
      purgeGraceMs: GRACE,
      batchSize,
      logger,
      now: () => clock,
    });

  const ago = (ms: number) => new Date(clock.getTime() - ms);

  it('soft-deletes expired memories, audits each, and removes their index entries', async () => {
    const expired = await seed({ expiresAt: ago(1000), agent: 'a1' });
    const future = await seed({ expiresAt: new Date(clock.getTime() + DAY) });
    const never = await seed();

    expect(await sweeper().runOnce()).toEqual({ expired: 1, purged: 0 });

    const row = await read(expired.id);
    expect(row.deleted_at?.toISOString()).toBe(clock.toISOString());
    expect(row.purged_at).toBeNull();
    expect(row.text).toBe(expired.text); // soft delete keeps the content until the grace ends
    expect(await inIndex(expired)).toBe(false);
    const events = await auditOf(expired.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      action: 'memory.expire',
      actor: 'system:retention',
      resource_type: 'memory',
    });
    expect(events[0].digest).toBe(
      digestOf({ checksum: expired.checksum, version: 1, expiresAt: ago(1000).toISOString() }),
    );

    for (const live of [future, never]) {
      expect((await read(live.id)).deleted_at).toBeNull();
      expect(await inIndex(live)).toBe(true);
      expect(await auditOf(live.id)).toEqual([]);
    }
  });

  it('purges memories deleted longer than the grace period ago, and leaves younger ones', async () => {
    const old = await seed({ deletedAt: ago(GRACE + 1000) });
    const young = await seed({ deletedAt: ago(GRACE - 60_000) });

    expect(await sweeper().runOnce()).toEqual({ expired: 0, purged: 1 });

    const row = await read(old.id);
    expect(row).toMatchObject({
      text: '',
      redacted_text: null,
      embedding: null,
      embedding_dim: null,
      embedding_model: null,
      tags: [],
      metadata: {},
      pii_flags: [],
      checksum: old.checksum,
      vector_key: old.vector_key,
    });
    expect(row.purged_at?.toISOString()).toBe(clock.toISOString());
    expect(row.deleted_at?.toISOString()).toBe(old.deleted_at?.toISOString());
    expect(await inIndex(old)).toBe(false);
    const events = await auditOf(old.id);
    expect(events.map((e) => e.action)).toEqual(['memory.purge']);
    expect(events[0].digest).toBe(digestOf({ checksum: old.checksum, version: 1 }));
    // Keyword search has nothing left to match either.
    const fts = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM memory_nodes WHERE id = $1 AND (fts @@ plainto_tsquery('english', 'jane') OR fts_redacted @@ plainto_tsquery('english', 'memory'))",
      [old.id],
    );
    expect(fts.rows[0].n).toBe(0);

    const kept = await read(young.id);
    expect(kept.purged_at).toBeNull();
    expect(kept.text).toBe(young.text);
    expect(kept.embedding).not.toBeNull();
  });

  it('expires, then purges once the grace period has passed', async () => {
    const m = await seed({ expiresAt: ago(1000) });
    const s = sweeper();
    expect(await s.runOnce()).toEqual({ expired: 1, purged: 0 });
    clock = new Date(clock.getTime() + GRACE + 1);
    expect(await s.runOnce()).toEqual({ expired: 0, purged: 1 });
    expect((await read(m.id)).text).toBe('');
    expect((await auditOf(m.id)).map((e) => e.action)).toEqual(['memory.expire', 'memory.purge']);
  });

  it('never expires or purges held memories: own flag, division hold, agent hold', async () => {
    await t.db.query(
      `INSERT INTO legal_holds (division_id, agent_id, reason, created_by) VALUES
         ('d2', NULL, 'litigation', 'test'), ('default', 'a2', 'investigation', 'test')`,
    );
    await t.db.query(
      `INSERT INTO legal_holds (division_id, agent_id, reason, created_by, released_at, released_by)
       VALUES ('default', 'a1', 'over', 'test', now(), 'test')`,
    );
    const due = { expiresAt: ago(1000) };
    const gone = { deletedAt: ago(GRACE + 1000) };
    const held = [
      await seed({ ...due, legalHold: true }),
      await seed({ ...gone, legalHold: true }),
      await seed({ ...due, division: 'd2', agent: 'b1' }),
      await seed({ ...gone, division: 'd2' }),
      await seed({ ...due, agent: 'a2' }),
      await seed({ ...gone, agent: 'a2' }),
    ];
    // A released hold protects nothing; an agent hold covers only that agent.
    const free = [await seed({ ...due, agent: 'a1' }), await seed({ ...gone, agent: 'a1' })];

    expect(await sweeper().runOnce()).toEqual({ expired: 1, purged: 1 });

    for (const h of held) {
      const row = await read(h.id);
      expect(row.deleted_at?.toISOString() ?? null).toBe(h.deleted_at?.toISOString() ?? null);
      expect(row.purged_at).toBeNull();
      expect(row.text).toBe(h.text);
      expect(row.embedding).not.toBeNull();
      expect(await auditOf(h.id)).toEqual([]);
    }
    expect((await read(free[0].id)).deleted_at).not.toBeNull();
    expect((await read(free[1].id)).purged_at).not.toBeNull();

    const heldIds = await t.db.query<{ id: string }>(
      `SELECT n.id FROM memory_nodes n WHERE ${isHeldSql('n')} ORDER BY n.id`,
    );
    expect(heldIds.rows.map((r) => r.id)).toEqual(held.map((h) => h.id).sort());
  });

  it('is idempotent: a second sweep finds nothing and appends nothing', async () => {
    await seed({ expiresAt: ago(1000) });
    await seed({ deletedAt: ago(GRACE + 1000) });
    const s = sweeper();
    expect(await s.runOnce()).toEqual({ expired: 1, purged: 1 });
    const count = async () =>
      (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events')).rows[0].n;
    const before = await count();
    expect(await s.runOnce()).toEqual({ expired: 0, purged: 0 });
    expect(await sweeper().runOnce()).toEqual({ expired: 0, purged: 0 });
    expect(await count()).toBe(before);
  });

  it('works in batches until nothing is due', async () => {
    for (let i = 0; i < 5; i++) await seed({ expiresAt: ago(1000 + i) });
    for (let i = 0; i < 3; i++) await seed({ deletedAt: ago(GRACE + 1000 + i) });
    expect(await sweeper(2).runOnce()).toEqual({ expired: 5, purged: 3 });
    const left = await t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM memory_nodes WHERE deleted_at IS NULL OR purged_at IS NULL',
    );
    expect(left.rows[0].n).toBe(5); // the five expired today are within their grace period
  });

  it('purgeMemories erases a live memory, and skips held and already purged ones', async () => {
    const live = await seed();
    const held = await seed({ legalHold: true });
    const rows = await t.db.transaction((tx: Queryable) => purgeMemories(tx, [live.id, held.id]));
    expect(rows).toEqual([
      {
        id: live.id,
        vector_key: live.vector_key,
        division_id: 'default',
        checksum: live.checksum,
        version: 1,
      },
    ]);
    const row = await read(live.id);
    expect(row.text).toBe('');
    expect(row.deleted_at).not.toBeNull();
    expect(row.purged_at).not.toBeNull();
    expect((await read(held.id)).text).toBe(held.text);
    expect(await t.db.transaction((tx) => purgeMemories(tx, [live.id]))).toEqual([]);
    expect(await purgeMemories(t.db, [])).toEqual([]);
  });

  it('expiresAtFor: explicit wins, then the division default, then the service default; 0 is never', async () => {
    const now = new Date('2030-01-01T00:00:00.000Z');
    const days = (n: number) => new Date(now.getTime() + n * DAY);
    expect(expiresAtFor('2031-02-03T04:05:06Z', null, 365, now)).toEqual(new Date('2031-02-03T04:05:06Z'));
    expect(expiresAtFor(null, null, 365, now)).toBeNull();
    expect(expiresAtFor(undefined, null, 365, now)).toEqual(days(365));
    expect(expiresAtFor(undefined, null, 0, now)).toBeNull();
    expect(expiresAtFor(undefined, 30, 365, now)).toEqual(days(30));
    expect(expiresAtFor(undefined, 0, 365, now)).toBeNull();
    const refused = await appError(Promise.resolve().then(() => expiresAtFor('not a date', null, 365, now)));
    expect(refused.status).toBe(400);
  });

  it('the sweeper loop sweeps while this process leads, and stops with it', async () => {
    const m = await seed({ expiresAt: ago(1000) });
    let runs = 0;
    const s = sweeper();
    const leader = createLeaderElection({
      db: t.db,
      lockKey: 1_000_000 + Math.floor(Math.random() * 1_000_000),
      retryMs: 50,
      logger,
    });
    const loop = createSweeperLoop({
      sweeper: {
        runOnce: () => {
          runs++;
          return s.runOnce();
        },
      },
      leader,
      intervalMs: 50,
      logger,
    });
    loop.start();
    await waitFor(() => runs >= 2, { what: 'two sweeps', timeoutMs: 5_000, intervalMs: 20 });
    await loop.stop();
    expect(leader.isLeader()).toBe(false);
    expect((await read(m.id)).deleted_at).not.toBeNull();
    const after = runs;
    await sleep(200);
    expect(runs).toBe(after);
  });
});

// Advisory locks belong to sessions, and PGlite has exactly one session per process (reserve()
// hands out the same one), so two elections on it are one session and both "lead": there is
// nothing to elect between. Competing replicas need the PostgreSQL server.
describe.skipIf(!process.env.DATABASE_URL)('leader election on the PostgreSQL server', () => {
  const url = process.env.DATABASE_URL as string;
  let t: TestDatabase;
  const replicas: Database[] = [];
  const elections: LeaderElection[] = [];
  const RETRY = 100;

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    for (let i = 0; i < 2; i++) replicas.push(await openPostgres({ url, schema: t.schema, max: 3 }));
  });
  afterAll(async () => {
    for (const e of elections) await e.stop();
    for (const r of replicas) await r.close();
    await t?.drop();
  });

  const newKey = () => 2_000_000 + Math.floor(Math.random() * 1_000_000_000);

  function elect(db: Database, lockKey: number) {
    const state = { leads: 0, loses: 0 };
    const e = createLeaderElection({ db, lockKey, retryMs: RETRY, logger });
    e.start(
      () => state.leads++,
      () => state.loses++,
    );
    elections.push(e);
    return { e, state };
  }

  /** Over several retry periods, exactly one of them leads at every look. */
  async function exactlyOneLeads(list: LeaderElection[]) {
    await waitFor(() => list.some((e) => e.isLeader()), {
      what: 'a leader',
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    for (let i = 0; i < 10; i++) {
      expect(list.filter((e) => e.isLeader())).toHaveLength(1);
      await sleep(RETRY / 2);
    }
  }

  it('elects exactly one leader, and hands over within a few retry periods when it stops', async () => {
    const key = newKey();
    const a = elect(replicas[0], key);
    const b = elect(replicas[1], key);
    await exactlyOneLeads([a.e, b.e]);
    const [leader, other] = a.e.isLeader() ? [a, b] : [b, a];
    expect(leader.state.leads).toBe(1);
    expect(other.state.leads).toBe(0);

    const stoppedAt = Date.now();
    await leader.e.stop();
    expect(leader.e.isLeader()).toBe(false);
    expect(leader.state.loses).toBe(1);
    await waitFor(() => other.e.isLeader(), {
      what: 'the other replica to lead',
      timeoutMs: RETRY * 5,
      intervalMs: 20,
    });
    expect(Date.now() - stoppedAt).toBeLessThan(RETRY * 5);
    expect(other.state.leads).toBe(1);
    await other.e.stop();
  });

  it('hands over when the leader session dies, and the old leader steps down', async () => {
    // The elections reserve sessions on their own pg.Client with an 'error' listener: the pool
    // client of openPostgres().reserve() has none while checked out, so a terminated backend
    // raises an uncaught 'error' event (reported; see the postgres adapter).
    const withOwnSessions = (db: Database): Database => ({
      ...db,
      async reserve() {
        const client = new pg.Client({ connectionString: url, options: `-c search_path=${t.schema},public` });
        client.on('error', () => undefined);
        await client.connect();
        return {
          async query<R>(text: string, params: readonly unknown[] = []) {
            const res = await client.query(text, params as unknown[]);
            return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
          },
          async exec(script: string) {
            await client.query(script);
          },
          copyFrom: () => Promise.reject(new Error('not used by leader elections')),
          release: () => client.end().catch(() => undefined),
        };
      },
    });
    const key = newKey();
    const a = elect(withOwnSessions(replicas[0]), key);
    const b = elect(withOwnSessions(replicas[1]), key);
    await exactlyOneLeads([a.e, b.e]);
    const [leader, other] = a.e.isLeader() ? [a, b] : [b, a];

    // Simulate the leader's crash: the server ends its session, which releases the lock.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $1 AND objsubid = 1`,
        [key],
      );
      expect(killed.rows).toEqual([{ ok: true }]);
    } finally {
      await admin.end();
    }
    await waitFor(() => other.e.isLeader(), {
      what: 'the other replica to lead',
      timeoutMs: RETRY * 10,
      intervalMs: 20,
    });
    await waitFor(() => !leader.e.isLeader(), {
      what: 'the old leader to step down',
      timeoutMs: RETRY * 10,
      intervalMs: 20,
    });
    expect(leader.state.loses).toBe(1);
    await exactlyOneLeads([a.e, b.e]);
  });
});
