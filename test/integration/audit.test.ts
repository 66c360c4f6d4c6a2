import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign, exportPKCS8, generateKeyPair } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queryable } from '../../src/adapters/db/port.js';
import { appendAudit, auditHead, listAudit } from '../../src/audit/audit-log.js';
import { type AuditService, createAuditService } from '../../src/audit/audit-service.js';
import type { ProofBundle } from '../../src/audit/bundle.js';
import { digestOf, GENESIS_HASH, verifyChain } from '../../src/audit/chain.js';
import { createAuditPublisher, createNoopSink } from '../../src/audit/publisher.js';
import {
  type AuditSigner,
  createAuditSigner,
  GENERATED_KEY_FILE,
  signedHeadPayload,
  verifySignedHead,
} from '../../src/audit/signer.js';
import type { AuditEvent, AuditEventInput } from '../../src/audit/types.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { runAuditVerify } from '../../src/cli/audit.js';
import { textChecksum } from '../../src/memories/text.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';

const logger = pino({ level: 'silent' });

const event = (divisionId: string, n: number, action = 'memory.update'): AuditEventInput => ({
  divisionId,
  actor: n % 3 ? 'agent:writer' : 'service:billing',
  action,
  resourceType: 'memory',
  resourceId: `r-${n}`,
  manifestSignatureId: n % 2 ? `manifest-${n}` : undefined,
  change: { n, checksum: textChecksum(`text ${n}`) },
});

async function allEvents(q: Queryable, divisionId: string): Promise<AuditEvent[]> {
  return listAudit(q, divisionId, { limit: 100_000 });
}

interface MemoryInput {
  id?: string;
  text: string;
  redactedText?: string;
  piiFlags?: string[];
  embedding?: Float32Array;
  deleted?: boolean;
  purged?: boolean;
}

/** Inserts a memory row and its memory.create event in one transaction, as the memory code does. */
async function createMemory(t: TestDatabase, divisionId: string, m: MemoryInput): Promise<string> {
  const id = m.id ?? randomUUID();
  const checksum = textChecksum(m.text);
  const bytes = m.embedding
    ? Buffer.from(m.embedding.buffer, m.embedding.byteOffset, m.embedding.byteLength)
    : null;
  await t.db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO memory_nodes (id, division_id, namespace, kind, text, redacted_text, checksum, tags, metadata,
         pii_flags, status, embedding_model, embedding_model_version, embedding_dim, embedding, deleted_at,
         purged_at, expires_at)
       VALUES ($1, $2, 'notes', 'note', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
         CASE WHEN $14::boolean THEN now() END, CASE WHEN $15::boolean THEN now() END, now() + interval '365 days')`,
      [
        id,
        divisionId,
        m.purged ? '' : m.text,
        m.purged ? null : (m.redactedText ?? null),
        checksum,
        ['a', 'b'],
        { source: 'test' },
        m.piiFlags ?? [],
        bytes ? 'indexed' : 'pending',
        bytes ? 'test-model' : null,
        bytes ? '1' : null,
        m.embedding?.length ?? null,
        bytes,
        Boolean(m.deleted || m.purged),
        Boolean(m.purged),
      ],
    );
    await appendAudit(tx, [
      {
        divisionId,
        actor: 'agent:writer',
        action: 'memory.create',
        resourceType: 'memory',
        resourceId: id,
        change: { checksum, version: 1, piiFlags: m.piiFlags ?? [] },
      },
    ]);
  });
  return id;
}

const clone = (b: ProofBundle): ProofBundle => JSON.parse(JSON.stringify(b));

describe.each(backends)('audit trail on %s', (backend) => {
  let t: TestDatabase;
  let dataDir: string;
  let signer: AuditSigner;
  let audit: AuditService;

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    await t.db.query(
      "INSERT INTO divisions (id, name) VALUES ('d2', 'Second'), ('proof', 'Proof'), ('rows', 'Rows'), ('pub', 'Pub')",
    );
    dataDir = await mkdtemp(join(tmpdir(), 'ml-audit-'));
    signer = await createAuditSigner({ dataDir });
    audit = createAuditService({ db: t.db, signer });
  });
  afterAll(async () => {
    await t?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('appends gap-free, verifiable chains per division over a concurrent workload', async () => {
    const returned: AuditEvent[] = [];
    let n = 0;
    // Sequential transactions, one or two events each, over two divisions.
    for (let i = 0; i < 10; i++) {
      const batch = i % 3 === 0 ? [event('default', n++), event('d2', n++)] : [event('default', n++)];
      returned.push(...(await t.db.transaction((tx) => appendAudit(tx, batch))));
    }
    // Concurrent transactions on the same division (and some on both): they must queue on the head.
    const concurrent = await Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        t.db.transaction(async (tx) => {
          const first = await appendAudit(tx, [event('default', 100 + i)]);
          // Work between two appends of one transaction must not let another transaction interleave.
          await tx.query('SELECT pg_sleep(0.005)');
          const second = await appendAudit(tx, [
            event('default', 200 + i),
            ...(i % 4 === 0 ? [event('d2', 300 + i)] : []),
          ]);
          return [...first, ...second];
        }),
      ),
    );
    for (const evs of concurrent) returned.push(...evs);
    // A multi-division batch whose input order is not sorted by division.
    returned.push(
      ...(await t.db.transaction((tx) =>
        appendAudit(tx, [event('d2', 400), event('default', 401), event('d2', 402), event('default', 403)]),
      )),
    );
    expect(returned.length).toBeGreaterThanOrEqual(50);

    for (const divisionId of ['default', 'd2']) {
      const stored = await allEvents(t.db, divisionId);
      const head = await auditHead(t.db, divisionId);
      expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
      expect(head.seq).toBe(stored.length);
      expect(verifyChain(stored, { expectedHead: head })).toEqual({ ok: true });
      // What appendAudit returned is exactly what is stored (including `at`, to the millisecond).
      const mine = returned.filter((e) => e.divisionId === divisionId).sort((a, b) => a.seq - b.seq);
      expect(mine).toEqual(stored);
      for (const e of stored) expect(e.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    // Concurrent first appends to a division without a head row yet: one creates it, the others wait.
    const fresh = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        t.db.transaction((tx) => appendAudit(tx, [event('fresh', 700 + i)])),
      ),
    );
    expect(fresh.map(([e]) => e.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(
      verifyChain(await allEvents(t.db, 'fresh'), { expectedHead: await auditHead(t.db, 'fresh') }),
    ).toEqual({
      ok: true,
    });
    // Each transaction's events of one division are consecutive.
    for (const evs of concurrent) {
      const seqs = evs.filter((e) => e.divisionId === 'default').map((e) => e.seq);
      expect(seqs).toEqual([seqs[0], seqs[0] + 1]);
    }
    // Events come back in input order, with digests of the changes and null manifest ids when absent.
    const last = returned.slice(-4);
    expect(last.map((e) => e.resourceId)).toEqual(['r-400', 'r-401', 'r-402', 'r-403']);
    expect(last[0].digest).toBe(digestOf(event('d2', 400).change));
    expect(last[0].manifestSignatureId).toBeNull();
    expect(last[1].manifestSignatureId).toBe('manifest-401');
    const outbox = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_outbox');
    expect(outbox.rows[0].n).toBe(returned.length + fresh.length);
  });

  it('a rolled-back transaction leaves no event and no seq gap', async () => {
    const before = await auditHead(t.db, 'd2');
    await expect(
      t.db.transaction(async (tx) => {
        const evs = await appendAudit(tx, [event('d2', 500), event('d2', 501)]);
        expect(evs.map((e) => e.seq)).toEqual([before.seq + 1, before.seq + 2]);
        throw new Error('change failed');
      }),
    ).rejects.toThrow('change failed');
    expect(await auditHead(t.db, 'd2')).toEqual(before);
    const next = await t.db.transaction((tx) => appendAudit(tx, [event('d2', 502)]));
    expect(next[0].seq).toBe(before.seq + 1);
    expect(next[0].prevHash).toBe(before.hash);
    const stored = await allEvents(t.db, 'd2');
    expect(stored.some((e) => e.resourceId === 'r-500')).toBe(false);
    expect(verifyChain(stored, { expectedHead: await auditHead(t.db, 'd2') })).toEqual({ ok: true });
    const outbox = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_outbox WHERE division_id = 'd2' AND seq > $1",
      [before.seq],
    );
    expect(outbox.rows[0].n).toBe(1);
  });

  it('rejects incomplete events and appends nothing for an empty list', async () => {
    await expect(
      t.db.transaction((tx) => appendAudit(tx, [{ ...event('d2', 1), actor: '' }])),
    ).rejects.toThrow(/actor/);
    expect(await t.db.transaction((tx) => appendAudit(tx, []))).toEqual([]);
    expect(await auditHead(t.db, 'nowhere')).toEqual({ seq: 0, hash: GENESIS_HASH });
  });

  it('keeps the signing key across restarts, private to the owner', async () => {
    const again = await createAuditSigner({ dataDir });
    expect(again.keyId).toBe(signer.keyId);
    expect(again.publicJwk).toEqual(signer.publicJwk);
    expect(signer.publicJwk).toEqual({ kty: 'OKP', crv: 'Ed25519', x: expect.any(String) });
    const file = join(dataDir, GENERATED_KEY_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // The same key given as AUDIT_SIGNING_KEY_FILE.
    const fromFile = await createAuditSigner({ keyFile: file, dataDir: '/nonexistent' });
    expect(fromFile.keyId).toBe(signer.keyId);
    // Another data directory: another key.
    const otherDir = await mkdtemp(join(tmpdir(), 'ml-audit-'));
    try {
      expect((await createAuditSigner({ dataDir: otherDir })).keyId).not.toBe(signer.keyId);
      await writeFile(join(otherDir, 'bad.pem'), 'not a key');
      await expect(createAuditSigner({ keyFile: join(otherDir, 'bad.pem'), dataDir })).rejects.toThrow(
        /Ed25519/,
      );
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('signed heads verify with the signing key only', async () => {
    const head = await auditHead(t.db, 'default');
    const s = await signer.signHead({ divisionId: 'default', ...head });
    expect(s).toMatchObject({ divisionId: 'default', seq: head.seq, hash: head.hash, keyId: signer.keyId });
    expect(await verifySignedHead(s, signer.publicJwk)).toEqual({ ok: true });

    const otherDir = await mkdtemp(join(tmpdir(), 'ml-audit-'));
    try {
      const other = await createAuditSigner({ dataDir: otherDir });
      expect((await verifySignedHead(s, other.publicJwk)).ok).toBe(false);
      // Fields that say something else than what was signed.
      expect((await verifySignedHead({ ...s, seq: s.seq + 1 }, signer.publicJwk)).ok).toBe(false);
      expect((await verifySignedHead({ ...s, hash: GENESIS_HASH }, signer.publicJwk)).ok).toBe(false);
      // `alg: none` and a JWS whose signature is someone else's.
      const payload = Buffer.from(signedHeadPayload(s)).toString('base64url');
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: s.keyId })).toString('base64url')}.${payload}.`;
      expect((await verifySignedHead({ ...s, jws: none }, signer.publicJwk)).ok).toBe(false);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('signs heads on demand and when they advance', async () => {
    const h = await audit.head('default');
    expect(h.seq).toBe((await auditHead(t.db, 'default')).seq);
    expect(h.publicKey).toEqual(signer.publicJwk);
    expect(await verifySignedHead(h.signedHead, signer.publicJwk)).toEqual({ ok: true });
    // Asked again: the stored signature, not a new one.
    expect((await audit.head('default')).signedHead).toEqual(h.signedHead);

    const signed = await audit.signChangedHeads();
    expect(signed.map((s) => s.divisionId)).toContain('d2');
    expect(signed.map((s) => s.divisionId)).not.toContain('default');
    expect(await audit.signChangedHeads()).toEqual([]);
    await t.db.transaction((tx) => appendAudit(tx, [event('default', 600)]));
    const again = await audit.signChangedHeads();
    expect(again.map((s) => [s.divisionId, s.seq])).toEqual([['default', h.seq + 1]]);
    const stored = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_signatures WHERE division_id = 'default'",
    );
    expect(stored.rows[0].n).toBe(2);

    // A division without events has the genesis head, signed.
    const empty = await audit.head('pub');
    expect(empty).toMatchObject({ seq: 0, hash: GENESIS_HASH });
    expect(await verifySignedHead(empty.signedHead, signer.publicJwk)).toEqual({ ok: true });

    const page1 = await audit.list('default', { limit: 5 });
    expect(page1.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(page1.nextAfterSeq).toBe(5);
    const rest = await audit.list('default', { afterSeq: 5, limit: 1000 });
    expect(rest.events[0].seq).toBe(6);
    expect(rest.nextAfterSeq).toBeNull();
  });

  describe('proof export', () => {
    const ids: Record<string, string> = {};
    let bundle: ProofBundle;
    let json: string;

    beforeAll(async () => {
      ids.plain = await createMemory(t, 'proof', { text: 'The deploy window is Tuesday  at 10:00.' });
      ids.pii = await createMemory(t, 'proof', {
        text: 'Write to ada@example.com about the invoice.',
        redactedText: 'Write to [email] about the invoice.',
        piiFlags: ['email'],
      });
      ids.vector = await createMemory(t, 'proof', {
        text: 'Vectors are float32.',
        embedding: new Float32Array([0.5, -0.25, 1]),
      });
      ids.deleted = await createMemory(t, 'proof', { text: 'Soon gone.', deleted: true });
      ids.purged = await createMemory(t, 'proof', { text: 'Erased on request.', purged: true });
      await t.db.transaction((tx) =>
        appendAudit(tx, [
          {
            divisionId: 'proof',
            actor: 'service:ops',
            action: 'legal-hold.set',
            resourceType: 'memory',
            resourceId: ids.plain,
            change: { legalHold: true },
          },
        ]),
      );
      ({ bundle, json } = await audit.exportBundle('proof', { includePii: false, actor: 'service:ops' }));
    });

    it('exports a canonical bundle that verifies', async () => {
      expect(JSON.parse(json)).toEqual(bundle);
      expect(json.startsWith('{"artifacts":[],"auditEvents":[')).toBe(true);
      expect(bundle.format).toBe('memory-layer-proof/1');
      expect(bundle.auditEvents.map((e) => e.action)).toEqual([
        'memory.create',
        'memory.create',
        'memory.create',
        'memory.create',
        'memory.create',
        'legal-hold.set',
        'export.create',
      ]);
      expect(bundle.head).toEqual({ seq: 7, hash: bundle.auditEvents[6].hash });
      expect(bundle.signedHead).toMatchObject({ divisionId: 'proof', seq: 7, keyId: signer.keyId });
      expect(bundle.memories).toHaveLength(5);

      const byId = new Map(bundle.memories.map((m) => [m.id, m]));
      expect(byId.get(ids.pii)).toMatchObject({
        text: 'Write to [email] about the invoice.',
        redacted: true,
        piiFlags: ['email'],
      });
      expect(json).not.toContain('ada@example.com');
      expect(byId.get(ids.plain)).toMatchObject({
        text: 'The deploy window is Tuesday  at 10:00.',
        redacted: false,
        checksum: textChecksum('The deploy window is Tuesday at 10:00.'),
        namespace: 'notes',
        kind: 'note',
        tags: ['a', 'b'],
        metadata: { source: 'test' },
        version: 1,
        legalHold: false,
        deletedAt: null,
        purgedAt: null,
        vector: null,
      });
      expect(byId.get(ids.plain)?.expiresAt).toMatch(/Z$/);
      const f32 = new Float32Array([0.5, -0.25, 1]);
      const { createHash } = await import('node:crypto');
      expect(byId.get(ids.vector)?.vector).toEqual({
        model: 'test-model',
        version: '1',
        dimensions: 3,
        checksum: createHash('sha256').update(Buffer.from(f32.buffer)).digest('hex'),
      });
      expect(byId.get(ids.deleted)?.deletedAt).toMatch(/Z$/);
      expect(byId.get(ids.purged)).toMatchObject({ text: '', redacted: false });
      expect(byId.get(ids.purged)?.purgedAt).toMatch(/Z$/);

      const result = await verifyBundle(JSON.parse(json), { trustedKeys: [signer.publicJwk] });
      expect(result.firstBroken).toBeUndefined();
      expect(result.ok).toBe(true);
      expect(result.checks.every((c) => c.startsWith('ok: '))).toBe(true);
      const unpinned = await verifyBundle(JSON.parse(json));
      expect(unpinned.ok).toBe(true);
      expect(unpinned.checks.some((c) => c.startsWith('warn: signing key not pinned'))).toBe(true);

      const withPii = await audit.exportBundle('proof', { includePii: true });
      expect(withPii.bundle.memories.find((m) => m.id === ids.pii)).toMatchObject({
        text: 'Write to ada@example.com about the invoice.',
        redacted: false,
      });
      expect((await verifyBundle(JSON.parse(withPii.json))).ok).toBe(true);
    });

    const broken = async (b: unknown, opts: Parameters<typeof verifyBundle>[1] = {}) => {
      const result = await verifyBundle(b, opts);
      expect(result.ok).toBe(false);
      expect(result.checks.some((c) => c.startsWith('FAIL: '))).toBe(true);
      return result.firstBroken;
    };

    it('names the edited event', async () => {
      const b = clone(bundle);
      b.auditEvents[2].actor = 'agent:someone-else';
      expect(await broken(b)).toEqual({
        what: 'audit event seq 3',
        index: 2,
        seq: 3,
        reason: 'hash does not match its content',
      });
    });

    it('names the gap left by a deleted event', async () => {
      const b = clone(bundle);
      b.auditEvents.splice(3, 1);
      expect(await broken(b)).toMatchObject({ what: 'audit event seq 5', index: 3, seq: 5 });
      expect((await broken(b))?.reason).toMatch(/seq 4 was expected/);
    });

    it('names swapped events', async () => {
      const b = clone(bundle);
      [b.auditEvents[1], b.auditEvents[2]] = [b.auditEvents[2], b.auditEvents[1]];
      expect(await broken(b)).toMatchObject({ what: 'audit event seq 3', index: 1, seq: 3 });
    });

    it('names a memory whose text was changed', async () => {
      const b = clone(bundle);
      const m = b.memories.find((x) => x.id === ids.plain);
      if (m) m.text = 'The deploy window is Friday at 17:00.';
      expect(await broken(b)).toEqual({
        what: `memory ${ids.plain}`,
        index: b.memories.findIndex((x) => x.id === ids.plain),
        reason: 'text does not match its checksum',
      });
    });

    it('names a memory added without its audited creation', async () => {
      const b = clone(bundle);
      const extra = { ...b.memories[0], id: randomUUID() };
      b.memories.push(extra);
      expect(await broken(b)).toMatchObject({
        what: `memory ${extra.id}`,
        reason: 'has no memory.create audit event',
      });
    });

    it('names a changed head', async () => {
      const b = clone(bundle);
      b.head.hash = b.auditEvents[5].hash;
      expect(await broken(b)).toMatchObject({
        what: 'head',
        reason: 'hash does not match the hash of audit event seq 7',
      });
      // A truncated chain with a matching head still fails: the head was signed at seq 7.
      const t2 = clone(bundle);
      t2.auditEvents.pop();
      t2.head = { seq: 6, hash: t2.auditEvents[5].hash };
      expect(await broken(t2)).toMatchObject({
        what: 'signed head',
        reason: expect.stringMatching(/signs seq 7/),
      });
    });

    it('catches a head re-signed with another key, and an unpinned key only with trusted keys', async () => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
      const { exportJWK, calculateJwkThumbprint } = await import('jose');
      const attackerJwk = await exportJWK(publicKey);
      const attackerKid = await calculateJwkThumbprint(attackerJwk);
      const forge = async (b: ProofBundle) => {
        b.signedHead.jws = await new CompactSign(new TextEncoder().encode(signedHeadPayload(b.signedHead)))
          .setProtectedHeader({ alg: 'EdDSA', kid: attackerKid })
          .sign(privateKey);
        b.signedHead.keyId = attackerKid;
      };
      // Re-signed, the bundle's key left as it was: the signature does not verify.
      const b1 = clone(bundle);
      await forge(b1);
      expect(await broken(b1)).toMatchObject({ what: 'signed head' });

      // Re-signed and the key replaced too: self-consistent, so only a pinned key catches it.
      const b2 = clone(bundle);
      b2.auditEvents.pop();
      b2.head = { seq: 6, hash: b2.auditEvents[5].hash };
      b2.signedHead.seq = 6;
      b2.signedHead.hash = b2.head.hash;
      await forge(b2);
      b2.publicKey = attackerJwk;
      const unpinned = await verifyBundle(b2);
      expect(unpinned.ok).toBe(true);
      expect(unpinned.checks.some((c) => c.startsWith('warn: signing key not pinned'))).toBe(true);
      expect(await broken(b2, { trustedKeys: [signer.publicJwk] })).toEqual({
        what: 'signing key',
        reason: `${attackerKid} is not one of the trusted keys`,
      });
      // The genuine bundle with the same trusted key passes.
      expect((await verifyBundle(clone(bundle), { trustedKeys: [signer.publicJwk] })).ok).toBe(true);
    });

    it('rejects what is not a bundle', async () => {
      expect(await broken({ format: 'something/1' })).toMatchObject({ what: 'format' });
      expect(await broken(null)).toMatchObject({ what: 'format' });
      const b = clone(bundle) as unknown as Record<string, unknown>;
      delete b.auditEvents;
      expect(await broken(b)).toEqual({ what: 'format', reason: 'auditEvents is missing or malformed' });
      const c = clone(bundle);
      (c.auditEvents[4] as unknown as Record<string, unknown>).seq = '5';
      expect(await broken(c)).toMatchObject({ what: 'audit event #4', reason: 'malformed (field seq)' });
    });

    it('catches edited database rows in the next export', async () => {
      const memId = await createMemory(t, 'rows', { text: 'first' });
      await createMemory(t, 'rows', { text: 'second' });
      await createMemory(t, 'rows', { text: 'third' });
      await createMemory(t, 'rows', { text: 'fourth' });
      const good = await audit.exportBundle('rows', { includePii: true });
      expect((await verifyBundle(JSON.parse(good.json))).ok).toBe(true);

      await t.db.query("UPDATE audit_events SET actor = 'x' WHERE division_id = 'rows' AND seq = 3");
      const tampered = await audit.exportBundle('rows', { includePii: true });
      expect(await broken(JSON.parse(tampered.json), { trustedKeys: [signer.publicJwk] })).toEqual({
        what: 'audit event seq 3',
        index: 2,
        seq: 3,
        reason: 'hash does not match its content',
      });

      await t.db.query(
        "UPDATE audit_events SET actor = 'agent:writer' WHERE division_id = 'rows' AND seq = 3",
      );
      await t.db.query("UPDATE memory_nodes SET text = 'first, edited' WHERE id = $1", [memId]);
      const edited = await audit.exportBundle('rows', { includePii: true });
      expect(await broken(JSON.parse(edited.json))).toMatchObject({
        what: `memory ${memId}`,
        reason: 'text does not match its checksum',
      });

      await t.db.query("UPDATE memory_nodes SET text = 'first' WHERE id = $1", [memId]);
      await t.db.query("DELETE FROM audit_events WHERE division_id = 'rows' AND seq = 2");
      const deleted = await audit.exportBundle('rows', { includePii: true });
      expect(await broken(JSON.parse(deleted.json))).toMatchObject({ what: 'audit event seq 3', index: 1 });
    });

    it('`audit verify` prints the checks and names the first broken link', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ml-audit-cli-'));
      try {
        const good = join(dir, 'bundle.json');
        const keyFile = join(dir, 'key.jwk.json');
        await writeFile(good, json);
        await writeFile(keyFile, JSON.stringify(signer.publicJwk));
        const lines: string[] = [];
        await runAuditVerify(good, { key: keyFile }, (l) => lines.push(l));
        expect(lines.filter((l) => l.startsWith('ok: ')).length).toBeGreaterThanOrEqual(6);
        expect(lines.at(-1)).toBe(`${good}: verified`);

        const bad = join(dir, 'tampered.json');
        const b = JSON.parse(await readFile(good, 'utf8'));
        b.auditEvents[4].action = 'memory.delete';
        await writeFile(bad, JSON.stringify(b));
        const out: string[] = [];
        await expect(runAuditVerify(bad, {}, (l) => out.push(l))).rejects.toThrow(
          'verification failed: audit event seq 5: hash does not match its content',
        );
        expect(out).toContain('FAIL: audit event seq 5: hash does not match its content');

        await writeFile(keyFile, JSON.stringify({ keys: [{ ...signer.publicJwk, x: 'A'.repeat(43) }] }));
        await expect(runAuditVerify(good, { key: keyFile }, () => undefined)).rejects.toThrow(/signing key/);
        await writeFile(
          keyFile,
          await exportPKCS8((await generateKeyPair('EdDSA', { extractable: true })).privateKey),
        );
        await expect(runAuditVerify(good, { key: keyFile }, () => undefined)).rejects.toThrow(
          /not a JSON file/,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  it('publishes outbox events once, in order, keeping them while the sink fails', async () => {
    const noop = createAuditPublisher({ db: t.db, sink: createNoopSink(), logger, batch: 50 });
    // Includes the outbox row of the event deleted by the row-tampering test: reported, then dropped.
    expect((await noop.drain()).missing).toBe(1);
    const left = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_outbox');
    expect(left.rows[0].n).toBe(0);

    const appended = await t.db.transaction((tx) =>
      appendAudit(tx, [event('pub', 1), event('pub', 2), event('d2', 3), event('pub', 4), event('pub', 5)]),
    );
    const published: AuditEvent[] = [];
    let calls = 0;
    const publisher = createAuditPublisher({
      db: t.db,
      logger,
      batch: 3,
      sink: {
        async publish(events) {
          calls += 1;
          if (calls === 1) throw new Error('queue unavailable');
          published.push(...events);
        },
        close: async () => undefined,
      },
    });
    expect(await publisher.runOnce()).toEqual({ published: 0, failed: 3 });
    const kept = await t.db.query<{ attempts: number; last_error: string | null }>(
      'SELECT attempts, last_error FROM audit_outbox ORDER BY id',
    );
    expect(kept.rows).toHaveLength(5);
    expect(kept.rows.slice(0, 3).every((r) => r.attempts === 1 && r.last_error === 'queue unavailable')).toBe(
      true,
    );
    expect(kept.rows[3].attempts).toBe(0);

    expect(await publisher.drain()).toEqual({ published: 5, failed: 0 });
    expect(published).toEqual(
      [...appended].sort((a, b) =>
        a.divisionId === b.divisionId ? a.seq - b.seq : a.divisionId < b.divisionId ? -1 : 1,
      ),
    );
    expect(new Set(published.map((e) => `${e.divisionId}/${e.seq}`)).size).toBe(5);
    const empty = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_outbox');
    expect(empty.rows[0].n).toBe(0);
    expect(await publisher.runOnce()).toEqual({ published: 0, failed: 0 });
    await publisher.stop();
  });
});
