import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { exportJWK, generateKeyPair } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import type { ProofBundle } from '../../src/audit/bundle.js';
import { digestOf, verifyChain } from '../../src/audit/chain.js';
import { type SignedHead, verifySignedHead } from '../../src/audit/signer.js';
import type { AuditEvent } from '../../src/audit/types.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { runAuditVerify } from '../../src/cli/audit.js';
import { loadConfig } from '../../src/config.js';
import { isHeldSql, RETENTION_ACTOR } from '../../src/governance/retention.js';
import { buildHttpServer } from '../../src/http/server.js';
import { systemAccess } from '../../src/memories/access.js';
import { bytesToVector } from '../../src/memories/vector-codec.js';
import { createLogger } from '../../src/platform/logger.js';
import { localEmbedder } from '../helpers/app.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { expectProblem } from '../helpers/problem.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Governance end to end, in dev mode (loopback, no credentials): a real workload of writes,
 * deletes, purges, legal holds and expiries; PII detection and redaction; the audit chain over
 * it, exported and verified offline, then tampered with in the bundle and in the database; and
 * the logs of all of it, captured at trace level, never holding memory text.
 */

interface Memory {
  id: string;
  divisionId: string;
  agentId: string | null;
  text: string;
  redacted: boolean;
  checksum: string;
  piiFlags: string[];
  expiresAt: string | null;
  legalHold: boolean;
  status: string;
  version: number;
}

interface Hold {
  id: number;
  divisionId: string;
  agentId: string | null;
  releasedAt: string | null;
}

interface Row {
  text: string;
  redacted_text: string | null;
  version: number;
  vector_key: number | string;
  embedding: Uint8Array | null;
  embedding_model: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  pii_flags: string[];
  legal_hold: boolean;
  deleted_at: Date | null;
  purged_at: Date | null;
}

const DAY = 86_400_000;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

describe.each(backends)('governance on %s', (backend) => {
  let t: TestDatabase;
  let app: App;
  let http: FastifyInstance;
  let dataDir: string;
  /** Every log line the service wrote, at trace level. */
  const logs: string[] = [];
  /** Every memory text the tests sent: none may reach a log line. */
  const texts: string[] = [];
  const noPii = { ...systemAccess('governance-test'), piiRead: false };

  const inject = (opts: InjectOptions) => http.inject(opts);

  async function create(body: Record<string, unknown>, wait = true): Promise<Memory> {
    texts.push(body.text as string);
    const res = await inject({
      method: 'POST',
      url: `/v1/memories${wait ? '?wait=true' : ''}`,
      payload: body,
    });
    expect(res.statusCode, res.body).toBe(201);
    const created = res.json<Memory>();
    if (!wait || created.status !== 'pending') return created;
    // Past the wait timeout on a busy machine: wait for the worker here.
    const status = await waitFor(
      async () => {
        const r = await t.db.query<{ status: string }>('SELECT status FROM memory_nodes WHERE id = $1', [
          created.id,
        ]);
        return r.rows[0]?.status !== 'pending' && (r.rows[0]?.status ?? created.status);
      },
      { what: `memory ${created.id} to leave pending`, timeoutMs: 60_000, intervalMs: 50 },
    );
    return { ...created, status };
  }

  const get = (id: string) => inject({ method: 'GET', url: `/v1/memories/${id}` });
  const del = (id: string, query = '') => inject({ method: 'DELETE', url: `/v1/memories/${id}${query}` });
  const patch = (id: string, payload: Record<string, unknown>) =>
    inject({ method: 'PATCH', url: `/v1/memories/${id}`, payload });
  const hold = (id: string, payload: Record<string, unknown>) =>
    inject({ method: 'PUT', url: `/v1/memories/${id}/legal-hold`, payload });

  async function listIds(divisionId = 'default'): Promise<string[]> {
    const res = await inject({ method: 'GET', url: `/v1/memories?divisionId=${divisionId}&limit=500` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ items: Memory[] }>().items.map((m) => m.id);
  }

  async function searchIds(query: string, mode = 'keyword', divisionId = 'default'): Promise<string[]> {
    const res = await inject({
      method: 'POST',
      url: '/v1/search',
      payload: { query, mode, divisionId, k: 50 },
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ hits: { id: string }[] }>().hits.map((h) => h.id);
  }

  async function row(id: string): Promise<Row> {
    const res = await t.db.query<Row>('SELECT * FROM memory_nodes WHERE id = $1', [id]);
    return res.rows[0];
  }

  /** Whether the memory's vector (read from PostgreSQL) is in the vector index. */
  async function inIndex(key: number, vector: Float32Array, divisionId = 'default'): Promise<boolean> {
    const hits = await app.index.search(app.embedder.model, divisionId, vector, 100);
    return hits.some((h) => h.key === key);
  }

  async function auditOf(resourceId: string) {
    const res = await t.db.query<{ action: string; actor: string; digest: string }>(
      'SELECT action, actor, digest FROM audit_events WHERE resource_id = $1 ORDER BY division_id, seq',
      [resourceId],
    );
    return res.rows;
  }

  async function exportBundle(): Promise<ProofBundle> {
    const res = await inject({ method: 'POST', url: '/v1/exports', payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    return JSON.parse(res.body) as ProofBundle;
  }

  function writeBundle(name: string, bundle: unknown): string {
    const file = join(dataDir, name);
    writeFileSync(file, JSON.stringify(bundle));
    return file;
  }

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    dataDir = mkdtempSync(join(tmpdir(), 'ml-governance-'));
    const config = loadConfig({
      DATA_DIR: dataDir,
      LOG_LEVEL: 'trace',
      WORKER_POLL_MS: '50',
      PURGE_GRACE_DAYS: '0',
    });
    // The service's own logger (with its redaction rules), writing to memory instead of stdout.
    const logger = createLogger('trace');
    (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = {
      write(line: string) {
        logs.push(line);
      },
    };
    app = await createApp(config, {
      worker: true,
      sweeper: false,
      database: t.db,
      embedder: await localEmbedder(),
      logger,
    });
    app.start();
    http = await buildHttpServer(app);
    await http.ready();
  });

  afterAll(async () => {
    await http?.close();
    await app?.close();
    await t?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('soft-deletes by default and refuses to change, delete or purge held memories (409 legal_hold)', async () => {
    // Create, update, soft delete.
    const plan = await create({ text: 'Quarterly plan: move the billing cluster to region two' });
    const updated = await patch(plan.id, {
      text: 'Quarterly plan: move the billing cluster to region three',
    });
    expect(updated.statusCode, updated.body).toBe(200);
    texts.push('Quarterly plan: move the billing cluster to region three');
    expect(updated.json<Memory>().version).toBe(2);
    expect((await del(plan.id)).statusCode).toBe(204);
    expectProblem(await get(plan.id), 404, 'memory_not_found');
    expect(await listIds()).not.toContain(plan.id);
    const soft = await row(plan.id);
    expect(soft.deleted_at).not.toBeNull();
    expect(soft.purged_at).toBeNull();
    expect(soft.text).toBe('Quarterly plan: move the billing cluster to region three');

    // A hold on one memory.
    const held = await create({ text: 'Signed settlement with Contoso, kept for the court' });
    expectProblem(await hold(held.id, { hold: true }), 400, 'validation_failed');
    const placed = await hold(held.id, { hold: true, reason: 'case 42' });
    expect(placed.statusCode, placed.body).toBe(200);
    expect(placed.json<Memory>().legalHold).toBe(true);
    for (const res of [
      await del(held.id),
      await del(held.id, '?purge=true'),
      await patch(held.id, { text: 'rewritten settlement' }),
      await patch(held.id, { expiresAt: new Date(Date.now() - DAY).toISOString() }),
    ]) {
      expect(expectProblem(res, 409, 'legal_hold').detail).toMatch(/legal hold/);
    }
    expect(await row(held.id)).toMatchObject({
      version: 1,
      deleted_at: null,
      purged_at: null,
      text: 'Signed settlement with Contoso, kept for the court',
    });
    expect((await get(held.id)).statusCode).toBe(200);

    // Released, a memory can be deleted again.
    const brief = await create({ text: 'A note held only briefly about the ferry schedule' });
    expect((await hold(brief.id, { hold: true, reason: 'short review' })).statusCode).toBe(200);
    expectProblem(await del(brief.id), 409, 'legal_hold');
    const released = await hold(brief.id, { hold: false });
    expect(released.json<Memory>().legalHold).toBe(false);
    expect((await del(brief.id)).statusCode).toBe(204);

    // A hold on an agent covers its memories, also those written afterwards.
    const agentRes = await inject({
      method: 'POST',
      url: '/v1/divisions/default/agents',
      payload: { id: 'custodian' },
    });
    expect(agentRes.statusCode, agentRes.body).toBe(201);
    const c1 = await create({ agentId: 'custodian', text: 'Custodian memo one about the archive boxes' });
    const agentHold = await inject({
      method: 'POST',
      url: '/v1/legal-holds',
      payload: { agentId: 'custodian', reason: 'subpoena 7' },
    });
    expect(agentHold.statusCode, agentHold.body).toBe(201);
    expect(agentHold.json<Hold>()).toMatchObject({
      divisionId: 'default',
      agentId: 'custodian',
      releasedAt: null,
    });
    const c2 = await create({ agentId: 'custodian', text: 'Custodian memo two written under hold' });
    for (const id of [c1.id, c2.id]) {
      expectProblem(await del(id), 409, 'legal_hold');
      expectProblem(await del(id, '?purge=true'), 409, 'legal_hold');
      expectProblem(await patch(id, { tags: ['changed'] }), 409, 'legal_hold');
    }
    expectProblem(
      await inject({ method: 'POST', url: '/v1/legal-holds', payload: { agentId: 'nobody', reason: 'x' } }),
      404,
      'agent_not_found',
    );

    // A hold on a whole division, then released.
    const division = await inject({ method: 'POST', url: '/v1/divisions', payload: { id: 'vault' } });
    expect(division.statusCode, division.body).toBe(201);
    const v = await create({ divisionId: 'vault', text: 'Vault ledger entry for the harbour deal' });
    const divisionHold = await inject({
      method: 'POST',
      url: '/v1/legal-holds',
      payload: { divisionId: 'vault', reason: 'regulator inquiry' },
    });
    expect(divisionHold.statusCode, divisionHold.body).toBe(201);
    const vaultHold = divisionHold.json<Hold>();
    expect(vaultHold).toMatchObject({ divisionId: 'vault', agentId: null });
    expectProblem(await del(v.id), 409, 'legal_hold');
    expectProblem(await del(v.id, '?purge=true'), 409, 'legal_hold');
    expectProblem(await patch(v.id, { text: 'changed ledger' }), 409, 'legal_hold');
    const holds = await inject({ method: 'GET', url: '/v1/legal-holds?divisionId=vault' });
    expect(holds.json<{ items: Hold[] }>().items.map((h) => h.id)).toEqual([vaultHold.id]);
    const release = await inject({
      method: 'DELETE',
      url: `/v1/legal-holds/${vaultHold.id}?divisionId=vault`,
    });
    expect(release.statusCode, release.body).toBe(200);
    expect(release.json<Hold>().releasedAt).toEqual(expect.any(String));
    expectProblem(
      await inject({ method: 'DELETE', url: `/v1/legal-holds/${vaultHold.id}?divisionId=vault` }),
      404,
      'not_found',
    );
    expect((await del(v.id)).statusCode).toBe(204);
  });

  it('purges at once with DELETE ?purge=true, and after the grace period with the sweeper; held ones stay', async () => {
    const secret = 'Purge me: the vault combination is 31-41-59 and the heron flies at dawn';
    const p = await create({ text: secret, tags: ['secret'], metadata: { about: 'heron' } });
    expect(p.status).toBe('indexed');
    const before = await row(p.id);
    const key = Number(before.vector_key);
    const vector = bytesToVector(before.embedding as Uint8Array);
    expect(await inIndex(key, vector)).toBe(true);

    expect((await del(p.id, '?purge=true')).statusCode).toBe(204);
    expect(await row(p.id)).toMatchObject({
      text: '',
      redacted_text: null,
      embedding: null,
      embedding_model: null,
      tags: [],
      metadata: {},
      deleted_at: expect.any(Date),
      purged_at: expect.any(Date),
    });
    expect(await inIndex(key, vector)).toBe(false);
    expectProblem(await get(p.id), 404, 'memory_not_found');
    expectProblem(await del(p.id, '?purge=true'), 404, 'memory_not_found');
    // The audit trail keeps the purge, with digests only: the text is nowhere in it.
    const events = await auditOf(p.id);
    expect(events.map((e) => e.action)).toEqual(['memory.create', 'memory.purge']);
    expect(events[1]).toMatchObject({ actor: 'dev', digest: digestOf({ checksum: p.checksum, version: 1 }) });
    const rows = JSON.stringify((await t.db.query('SELECT * FROM audit_events')).rows);
    for (const fragment of [secret, 'heron', '31-41-59', 'combination']) expect(rows).not.toContain(fragment);

    // Soft-deleted memories are purged by the sweeper (grace period 0 here); a held one is not.
    const s = await create({ text: 'The sweeper will erase this pelican memo' });
    const sRow = await row(s.id);
    const sVector = bytesToVector(sRow.embedding as Uint8Array);
    expect((await del(s.id)).statusCode).toBe(204);
    expect((await row(s.id)).text).toBe('The sweeper will erase this pelican memo');
    const d = await create({ text: 'Deleted, then put under hold before the sweep: a puffin memo' });
    expect((await del(d.id)).statusCode).toBe(204);
    expect((await hold(d.id, { hold: true, reason: 'late hold' })).statusCode).toBe(200);

    const due = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM memory_nodes n
       WHERE n.deleted_at IS NOT NULL AND n.purged_at IS NULL AND NOT ${isHeldSql('n')}`,
    );
    expect(due.rows[0].n).toBeGreaterThanOrEqual(3);
    const swept = await app.sweeper.runOnce();
    expect(swept).toEqual({ expired: 0, purged: due.rows[0].n });
    expect(await row(s.id)).toMatchObject({ text: '', embedding: null, purged_at: expect.any(Date) });
    expect(await inIndex(Number(sRow.vector_key), sVector)).toBe(false);
    expect(await row(d.id)).toMatchObject({
      text: 'Deleted, then put under hold before the sweep: a puffin memo',
      purged_at: null,
    });
    expect(await auditOf(s.id)).toContainEqual(
      expect.objectContaining({ action: 'memory.purge', actor: RETENTION_ACTOR }),
    );
    // Idempotent: a second sweep finds nothing.
    expect(await app.sweeper.runOnce()).toEqual({ expired: 0, purged: 0 });
  });

  it('hides expired memories from reads and search at once; the sweeper then soft-deletes them, skipping held ones', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const gone = await create({ text: 'An ephemeral okapi sighting near the river', expiresAt: past }, false);
    expect(gone.expiresAt).toBe(past);
    expectProblem(await get(gone.id), 404, 'memory_not_found');
    expect(await listIds()).not.toContain(gone.id);
    expect(await searchIds('okapi sighting')).toEqual([]);
    // Under the custodian agent's hold, an expired memory stays.
    const kept = await create({
      agentId: 'custodian',
      text: 'Custodian note already past its expiry',
      expiresAt: past,
    });
    expect((await get(kept.id)).statusCode).toBe(200);

    const soon = new Date(Date.now() + 5_000).toISOString();
    const shortLived = await create({ text: 'A short-lived narwhal memo', expiresAt: soon }, false);
    const heldToo = await create({ text: 'A narwhal memo kept under a legal hold', expiresAt: soon }, false);
    expect((await hold(heldToo.id, { hold: true, reason: 'keep the narwhal' })).statusCode).toBe(200);
    expect((await get(shortLived.id)).statusCode).toBe(200);
    // Rather than wait 5 s: reads compare expires_at with the database clock, so the rows move past it.
    await t.db.query(
      `UPDATE memory_nodes SET expires_at = now() - interval '1 second' WHERE id = ANY($1::uuid[])`,
      [[shortLived.id, heldToo.id]],
    );

    expectProblem(await get(shortLived.id), 404, 'memory_not_found');
    expectProblem(await patch(shortLived.id, { tags: ['late'] }), 404, 'memory_not_found');
    expect((await get(heldToo.id)).statusCode).toBe(200);
    const ids = await listIds();
    expect(ids).not.toContain(shortLived.id);
    expect(ids).toContain(heldToo.id);
    expect(await searchIds('narwhal')).toEqual([heldToo.id]);
    // Not swept yet: hidden by the read path itself.
    expect((await row(shortLived.id)).deleted_at).toBeNull();

    // The worker may still be indexing the memories created without waiting; the sweep skips rows
    // another transaction holds (SKIP LOCKED, left for the next sweep), so let it finish first.
    await app.worker.drain();
    const swept = await app.sweeper.runOnce();
    expect(swept.expired).toBe(2);
    for (const id of [gone.id, shortLived.id]) {
      const r = await row(id);
      expect(r.deleted_at).not.toBeNull();
      // The grace period is 0: the same sweep purged them.
      expect(r.text).toBe('');
      expect((await auditOf(id)).map((e) => [e.action, e.actor])).toEqual([
        ['memory.create', 'dev'],
        ['memory.expire', RETENTION_ACTOR],
        ['memory.purge', RETENTION_ACTOR],
      ]);
    }
    for (const id of [heldToo.id, kept.id])
      expect(await row(id)).toMatchObject({ deleted_at: null, purged_at: null });
    expect(await app.sweeper.runOnce()).toEqual({ expired: 0, purged: 0 });
  });

  it('answers a create of an already expired memory with ?wait=true consistently with what it stored', async () => {
    const count = async () =>
      (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes')).rows[0].n;
    const before = await count();
    texts.push('Born expired: a dodo memo');
    const res = await inject({
      method: 'POST',
      url: '/v1/memories?wait=true',
      payload: { text: 'Born expired: a dodo memo', expiresAt: new Date(Date.now() - 60_000).toISOString() },
    });
    // Either it is stored and the answer says so (201), or it is refused (400) and nothing is stored;
    // never a 404 for a memory that was in fact written.
    if (res.statusCode === 400) expect(await count()).toBe(before);
    else {
      expect(res.statusCode, res.body).toBe(201);
      expect(await count()).toBe(before + 1);
    }
  });

  it("applies the division's default TTL, else the service's, unless the memory names its own", async () => {
    const near = (iso: string | null, ms: number) => {
      expect(iso).not.toBeNull();
      expect(Math.abs(Date.parse(iso as string) - (Date.now() + ms))).toBeLessThan(120_000);
    };
    for (const [id, days] of [
      ['shortlived', 7],
      ['forever', 0],
    ] as const) {
      const res = await inject({
        method: 'POST',
        url: '/v1/divisions',
        payload: { id, defaultTtlDays: days },
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    near(
      (await create({ divisionId: 'shortlived', text: 'Expires with the division TTL' }, false)).expiresAt,
      7 * DAY,
    );
    expect(
      (await create({ divisionId: 'forever', text: 'A division TTL of 0 never expires' }, false)).expiresAt,
    ).toBeNull();
    near((await create({ text: 'The default division uses the service TTL' }, false)).expiresAt, 365 * DAY);
    expect(
      (await create({ divisionId: 'shortlived', text: 'Explicitly never expires', expiresAt: null }, false))
        .expiresAt,
    ).toBeNull();
    const at = new Date(Date.now() + 3 * DAY).toISOString();
    expect(
      (await create({ divisionId: 'shortlived', text: 'Explicit expiry wins', expiresAt: at }, false))
        .expiresAt,
    ).toBe(at);
  });

  it("shows a division's defaultTtlDays in its representation", async () => {
    const created = await inject({
      method: 'POST',
      url: '/v1/divisions',
      payload: { id: 'ttl-shown', defaultTtlDays: 30 },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ id: 'ttl-shown', defaultTtlDays: 30 });
    const read = await inject({ method: 'GET', url: '/v1/divisions/ttl-shown' });
    expect(read.json()).toMatchObject({ id: 'ttl-shown', defaultTtlDays: 30 });
  });

  it('detects emails, phone numbers, Luhn-valid cards and IBANs on write and redacts them without pii:read', async () => {
    const text =
      'Reach Max at max.mustermann@example.org or +49 30 12345678; card 4111 1111 1111 1111; IBAN DE89 3704 0044 0532 0130 00.';
    const m = await create({ text });
    expect(m.piiFlags).toEqual(['card', 'email', 'iban', 'phone']);
    // The dev caller holds every scope, pii:read included.
    expect(m).toMatchObject({ text, redacted: false });
    const hidden = await app.memories.get(noPii, m.id);
    expect(hidden).toMatchObject({
      text: 'Reach Max at [EMAIL] or [PHONE]; card [CARD]; IBAN [IBAN].',
      redacted: true,
      piiFlags: ['card', 'email', 'iban', 'phone'],
    });
    const listed = await app.memories.list(noPii, { divisionId: 'default', limit: 500 });
    expect(listed.items.find((x) => x.id === m.id)?.text).toBe(hidden.text);
    const found = await app.search.search(noPii, {
      divisionId: 'default',
      query: 'reach Max card IBAN',
      k: 10,
      mode: 'hybrid',
    });
    expect(found.hits.find((h) => h.id === m.id)?.text).toBe(hidden.text);
    for (const query of ['max.mustermann@example.org', 'DE89 3704 0044 0532 0130 00', '12345678']) {
      const r = await app.search.search(noPii, { divisionId: 'default', query, k: 10, mode: 'keyword' });
      expect(
        r.hits.map((h) => h.id),
        query,
      ).not.toContain(m.id);
    }
    const withPii = await app.search.search(systemAccess('governance-test'), {
      divisionId: 'default',
      query: 'max.mustermann@example.org',
      k: 10,
      mode: 'keyword',
    });
    expect(withPii.hits.map((h) => h.id)).toEqual([m.id]);
    const { json } = await app.audit.exportBundle('default', { includePii: false });
    for (const fragment of ['max.mustermann', '4111 1111', 'DE89', '12345678'])
      expect(json).not.toContain(fragment);

    // Flags callers add; a number that fails Luhn is no card.
    const health = await create({ text: 'Max mentioned his asthma at the offsite', piiFlags: ['health'] });
    expect(health.piiFlags).toEqual(['health']);
    expect((await app.memories.get(noPii, health.id)).text).toBe('[redacted: health]');
    const order = await create({ text: 'Order 4111 1111 1111 1112 shipped on Monday' });
    expect(order.piiFlags).not.toContain('card');
    // Re-detected on update: the caller's flag stays, detected ones follow the text.
    const changed = await patch(health.id, { text: 'Max mentioned his asthma; mail max@example.org' });
    texts.push('Max mentioned his asthma; mail max@example.org');
    expect(changed.json<Memory>().piiFlags).toEqual(['email', 'health']);
    const cleaned = await patch(m.id, { text: 'Reach Max through the front desk' });
    texts.push('Reach Max through the front desk');
    expect(cleaned.json<Memory>().piiFlags).toEqual([]);
    expect((await app.memories.get(noPii, m.id)).redacted).toBe(false);
    const audit = JSON.stringify((await t.db.query('SELECT * FROM audit_events')).rows);
    expect(audit).not.toContain('max.mustermann');
    expect(audit).not.toContain('asthma');
  });

  it('keeps a verifiable audit chain over the workload: paged API, signed head, proof export', async () => {
    const events: AuditEvent[] = [];
    let afterSeq = 0;
    for (let pages = 0; pages < 1000; pages++) {
      const res = await inject({ method: 'GET', url: `/v1/audit?limit=7&afterSeq=${afterSeq}` });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<{ events: AuditEvent[]; nextAfterSeq: number | null }>();
      events.push(...page.events);
      if (page.nextAfterSeq === null) break;
      afterSeq = page.nextAfterSeq;
    }
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.divisionId))).toEqual(new Set(['default']));
    const actions = new Set(events.map((e) => e.action));
    for (const action of [
      'memory.create',
      'memory.update',
      'memory.delete',
      'legal-hold.set',
      'legal-hold.release',
      'memory.purge',
      'memory.expire',
      'pii.read',
    ]) {
      expect(actions, action).toContain(action);
    }
    expect(verifyChain(events)).toEqual({ ok: true });
    // Reads are recorded too (ACCESS_AUDIT=all): `type=change` leaves them out.
    const vaultEvents = await inject({
      method: 'GET',
      url: '/v1/audit?divisionId=vault&limit=1000&type=change',
    });
    expect(vaultEvents.json<{ events: AuditEvent[] }>().events.map((e) => e.action)).toEqual([
      'division.create',
      'memory.create',
      'legal-hold.set',
      'legal-hold.release',
      'memory.delete',
      'memory.purge',
    ]);
    const vaultAll = await inject({ method: 'GET', url: '/v1/audit?divisionId=vault&limit=1000' });
    const vaultActions = vaultAll.json<{ events: AuditEvent[] }>().events.map((e) => e.action);
    expect(vaultActions.filter((a) => a !== 'memory.access')).toEqual([
      'division.create',
      'memory.create',
      'legal-hold.set',
      'legal-hold.release',
      'memory.delete',
      'memory.purge',
    ]);
    expect(vaultActions).toContain('memory.access');

    const headRes = await inject({ method: 'GET', url: '/v1/audit/head' });
    expect(headRes.statusCode, headRes.body).toBe(200);
    const head = headRes.json<{
      divisionId: string;
      seq: number;
      hash: string;
      signedHead: SignedHead;
      publicKey: Record<string, string>;
    }>();
    expect(head).toMatchObject({
      divisionId: 'default',
      seq: events.length,
      hash: events[events.length - 1].hash,
    });
    expect(head.signedHead).toMatchObject({ divisionId: 'default', seq: head.seq, hash: head.hash });
    expect(await verifySignedHead(head.signedHead, head.publicKey)).toMatchObject({ ok: true });

    const res = await inject({ method: 'POST', url: '/v1/exports', payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/memory-layer-proof-default\.json/);
    const bundle = JSON.parse(res.body) as ProofBundle;
    expect(bundle.auditEvents.slice(0, events.length)).toEqual(events);
    // The export is recorded, then (ACCESS_AUDIT=all) read: a whole-division access event.
    const [exported, exportRead] = bundle.auditEvents.slice(-2);
    expect(exported.action).toBe('export.create');
    expect(exportRead).toMatchObject({
      action: 'memory.access',
      detail: { via: 'export', wholeDivision: true },
    });
    expect(bundle.memories.some((m) => m.purgedAt !== null && m.text === '')).toBe(true);
    expect(await verifyBundle(bundle)).toMatchObject({ ok: true });
    const file = writeBundle('bundle.json', bundle);
    const out: string[] = [];
    await runAuditVerify(file, {}, (line) => out.push(line));
    expect(out[out.length - 1]).toBe(`${file}: verified`);
    expect(out.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    // Pinned to the server's key; refused with another.
    const keyFile = join(dataDir, 'trusted.jwk.json');
    writeFileSync(keyFile, JSON.stringify(bundle.publicKey));
    await runAuditVerify(file, { key: keyFile }, () => undefined);
    const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const strangerFile = join(dataDir, 'stranger.jwk.json');
    writeFileSync(strangerFile, JSON.stringify(await exportJWK(stranger.publicKey)));
    await expect(runAuditVerify(file, { key: strangerFile }, () => undefined)).rejects.toThrow(/signing key/);
  });

  it('catches a tampered bundle and names the broken link', async () => {
    const bundle = await exportBundle();
    const fails = async (tampered: ProofBundle, name: string, what: RegExp) => {
      const result = await verifyBundle(tampered);
      expect(result.ok, name).toBe(false);
      const file = writeBundle(`${name}.json`, tampered);
      await expect(
        runAuditVerify(file, {}, () => undefined),
        name,
      ).rejects.toThrow(what);
      return result.firstBroken;
    };

    const edited = clone(bundle);
    edited.auditEvents[2].action = 'memory.read';
    expect(await fails(edited, 'edited', /audit event seq 3: hash does not match its content/)).toMatchObject(
      {
        seq: 3,
      },
    );

    const otherActor = clone(bundle);
    otherActor.auditEvents[4].actor = 'service:someone-else';
    expect(await fails(otherActor, 'actor', /audit event seq 5/)).toMatchObject({ seq: 5 });

    const dropped = clone(bundle);
    dropped.auditEvents.splice(3, 1);
    expect(
      await fails(dropped, 'dropped', /audit event seq 5: found where seq 4 was expected/),
    ).toMatchObject({
      seq: 5,
    });

    const reordered = clone(bundle);
    [reordered.auditEvents[5], reordered.auditEvents[6]] = [
      reordered.auditEvents[6],
      reordered.auditEvents[5],
    ];
    expect(await fails(reordered, 'reordered', /audit event seq 7/)).toMatchObject({ seq: 7 });

    const truncated = clone(bundle);
    truncated.auditEvents.pop();
    expect(await fails(truncated, 'truncated', /head/)).toMatchObject({ what: 'head' });

    const plain = bundle.memories.findIndex((m) => !m.redacted && m.text !== '');
    expect(plain).toBeGreaterThanOrEqual(0);
    const rewritten = clone(bundle);
    rewritten.memories[plain].text = `${rewritten.memories[plain].text} (amended)`;
    expect(await fails(rewritten, 'rewritten', /text does not match its checksum/)).toMatchObject({
      what: `memory ${bundle.memories[plain].id}`,
    });

    const planted = clone(bundle);
    planted.memories.push({ ...clone(bundle.memories[plain]), id: randomUUID() });
    await fails(planted, 'planted', /has no memory.create audit event/);
  });

  it('catches a tampered database row in the next export', async () => {
    const original = await t.db.query<{ action: string }>(
      "SELECT action FROM audit_events WHERE division_id = 'default' AND seq = 2",
    );
    await t.db.query("UPDATE audit_events SET action = 'x' WHERE division_id = 'default' AND seq = 2");
    try {
      const bundle = await exportBundle();
      const result = await verifyBundle(bundle);
      expect(result.ok).toBe(false);
      expect(result.firstBroken).toMatchObject({ what: 'audit event seq 2', seq: 2 });
      const file = writeBundle('db-edited.json', bundle);
      await expect(runAuditVerify(file, {}, () => undefined)).rejects.toThrow(
        /verification failed: audit event seq 2: hash does not match its content/,
      );
    } finally {
      await t.db.query("UPDATE audit_events SET action = $1 WHERE division_id = 'default' AND seq = 2", [
        original.rows[0].action,
      ]);
    }
    expect((await verifyBundle(await exportBundle())).ok).toBe(true);

    // A deleted row is a gap.
    const saved = (
      await t.db.query<Record<string, unknown>>(
        "SELECT * FROM audit_events WHERE division_id = 'default' AND seq = 3",
      )
    ).rows[0];
    await t.db.query("DELETE FROM audit_events WHERE division_id = 'default' AND seq = 3");
    try {
      const bundle = await exportBundle();
      const result = await verifyBundle(bundle);
      expect(result.firstBroken).toMatchObject({ what: 'audit event seq 4', seq: 4 });
      expect(result.firstBroken?.reason).toMatch(/seq 3 was expected/);
    } finally {
      await t.db.query(
        `INSERT INTO audit_events (division_id, seq, at, actor, action, resource_type, resource_id,
           manifest_signature_id, digest, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          saved.division_id,
          saved.seq,
          saved.at,
          saved.actor,
          saved.action,
          saved.resource_type,
          saved.resource_id,
          saved.manifest_signature_id,
          saved.digest,
          saved.prev_hash,
          saved.hash,
        ],
      );
    }
    expect((await verifyBundle(await exportBundle())).ok).toBe(true);
  });

  it('never writes memory text, search queries or credentials to the logs', async () => {
    const secret = 'Zanzibar-7781 is the launch code; tell ophelia.quill@example.net nothing';
    const m = await create({ text: secret, metadata: { note: 'metadata is not text' } });
    // Reads, searches (every mode), a refused body, a replay and a bad credential, all at trace level.
    expect((await get(m.id)).statusCode).toBe(200);
    for (const mode of ['hybrid', 'keyword', 'vector'])
      await searchIds('Zanzibar-7781 launch code ophelia', mode);
    const bad = await inject({
      method: 'POST',
      url: '/v1/memories',
      payload: { text: `${secret} (again)`, unknownField: 'Zanzibar-7781' },
    });
    expectProblem(bad, 400, 'validation_failed');
    const headers = { 'idempotency-key': 'log-test-1' };
    for (let i = 0; i < 2; i++) {
      const r = await inject({
        method: 'POST',
        url: '/v1/memories',
        headers,
        payload: { text: `${secret} (idempotent)` },
      });
      expect(r.statusCode, r.body).toBe(201);
    }
    const denied = await inject({
      method: 'GET',
      url: '/v1/memories',
      headers: { authorization: 'Bearer eyJhbGciOiJFZERTQSJ9.c2VjcmV0LXRva2VuLXBheWxvYWQ.c2ln' },
    });
    expectProblem(denied, 401, 'unauthenticated');
    expect((await patch(m.id, { text: `${secret} (edited)` })).statusCode).toBe(200);
    expect((await del(m.id, '?purge=true')).statusCode).toBe(204);
    await app.sweeper.runOnce();

    const output = logs.join('');
    // The logs are there, and name memories by id.
    expect(logs.length).toBeGreaterThan(20);
    expect(output).toContain('memory stored');
    expect(output).toContain(m.id);
    for (const fragment of ['Zanzibar', 'ophelia', 'launch code', 'c2VjcmV0LXRva2VuLXBheWxvYWQ']) {
      expect(output, fragment).not.toContain(fragment);
    }
    // The number alone, not as digits inside an id, a timestamp or a duration.
    expect(output).not.toMatch(/(?<![0-9a-fA-F.])7781(?![0-9a-fA-F])/);
    // Nothing any test in this file wrote as memory text.
    for (const text of texts) expect(output, text).not.toContain(text);
    for (const pii of ['max.mustermann@example.org', '4111 1111 1111 1111', 'DE89 3704', '+49 30 12345678']) {
      expect(output).not.toContain(pii);
    }
  });
});
