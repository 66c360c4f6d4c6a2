import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createObjectStore } from '../../src/adapters/objects/index.js';
import type { ObjectStore } from '../../src/adapters/objects/port.js';
import { createS3ObjectStore } from '../../src/adapters/objects/s3.js';
import { type ArchiveManifest, archiveKey, manifestKeyOf, toJsonl } from '../../src/audit/archive/format.js';
import { readManifest } from '../../src/audit/archive/stored.js';
import { verifyArchive, verifyStoredArchives } from '../../src/audit/archive/verify.js';
import { type ArchiveDeps, archiveAudit, startOfUtcDay } from '../../src/audit/archive/writer.js';
import { appendAudit, auditHead, listAudit } from '../../src/audit/audit-log.js';
import { type AuditSigner, createAuditSigner } from '../../src/audit/signer.js';
import { detectAuditFile, runArchiveVerify } from '../../src/cli/audit-archive.js';
import { backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

const DAY1 = new Date('2030-03-01T09:00:00.000Z');
const DAY2 = new Date('2030-03-02T09:00:00.000Z');
const DAY3 = new Date('2030-03-03T09:00:00.000Z');
const DAY4 = new Date('2030-03-04T09:00:00.000Z');

async function bytesOf(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of (await store.get(key)).body) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** Appends `n` events to a division, dated `at` (the clock is set for appendAudit). */
async function append(t: TestDatabase, divisionId: string, n: number, at: Date) {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(at);
  try {
    for (let i = 0; i < n; i += 1) {
      await t.db.transaction((tx) =>
        appendAudit(tx, [
          {
            divisionId,
            actor: i % 2 ? 'agent:writer' : 'service:billing',
            action: 'memory.update',
            resourceType: 'memory',
            resourceId: `r-${i}`,
            change: { i },
          },
        ]),
      );
    }
  } finally {
    vi.useRealTimers();
  }
}

/** Rewrites one line of a gzip JSONL archive. */
function tamper(archive: Buffer, line: number, edit: (e: Record<string, unknown>) => void): Buffer {
  const lines = gunzipSync(archive).toString('utf8').split('\n');
  const e = JSON.parse(lines[line]);
  edit(e);
  lines[line] = JSON.stringify(e);
  return gzipSync(Buffer.from(lines.join('\n')));
}

const kinds = ['local', 's3'] as const;

describe.each(backends.flatMap((b) => kinds.map((k) => [b, k] as const)))(
  'audit archive on %s, %s store',
  (backend, kind) => {
    let t: TestDatabase;
    let s3: TestS3 | undefined;
    let store: ObjectStore;
    let signer: AuditSigner;
    let dir: string;
    let deps: ArchiveDeps;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'ml-archive-'));
      t = await openTestDatabase(backend);
      signer = await createAuditSigner({ dataDir: dir });
      if (kind === 's3') {
        s3 = await startS3();
        store = createS3ObjectStore({
          bucket: s3.bucket,
          endpoint: s3.endpoint,
          forcePathStyle: true,
          accessKeyId: s3.accessKeyId,
          secretAccessKey: s3.secretAccessKey,
        });
      } else {
        store = createObjectStore({ OBJECT_STORE: 'local', DATA_DIR: dir });
      }
      deps = { db: t.db, store, signer, retentionDays: 30 };
      await append(t, 'default', 10, DAY1);
      await append(t, 'default', 10, DAY2);
      await append(t, 'default', 5, DAY3);
    });
    afterAll(async () => {
      await t?.drop();
      await s3?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('archives complete days, one file per day with its manifest, and is idempotent', async () => {
      const daily = { ...deps, now: () => DAY3 };
      const first = await archiveAudit(daily, { until: startOfUtcDay(DAY3) });
      expect(first.objectLock).toBe(false);
      expect(first.archives.map((a) => [a.key, a.fromSeq, a.toSeq, a.locked])).toEqual([
        [archiveKey('default', '2030-03-01', 1, 10), 1, 10, false],
        [archiveKey('default', '2030-03-02', 11, 20), 11, 20, false],
      ]);
      expect(first.archives[0].key).toBe('audit/default/2030-03-01/000000000001-000000000010.jsonl.gz');

      // Again: nothing new. Twice at once: still nothing duplicated.
      expect((await archiveAudit(daily, { until: startOfUtcDay(DAY3) })).archives).toEqual([]);
      const [a, b] = await Promise.all([
        archiveAudit(daily, { day: '2030-03-02' }),
        archiveAudit(daily, { day: '2030-03-02' }),
      ]);
      expect([...a.archives, ...b.archives]).toEqual([]);

      // On demand: the rest, up to now.
      const rest = await archiveAudit({ ...deps, now: () => DAY4 });
      expect(rest.archives.map((x) => [x.fromSeq, x.toSeq])).toEqual([[21, 25]]);
      expect((await store.list('audit/default/')).map((o) => o.key)).toHaveLength(6);

      const manifest = await readManifest(store, rest.archives[0].manifestKey);
      expect(manifest).toMatchObject({
        divisionId: 'default',
        day: '2030-03-03',
        fromSeq: 21,
        toSeq: 25,
        count: 5,
      });
      expect(manifest.retainUntil).toBeNull();
      const head = await auditHead(t.db, 'default');
      expect({ seq: manifest.signedHead.seq, hash: manifest.signedHead.hash }).toEqual(head);
      expect(manifest.lastHash).toBe(head.hash);
    });

    it('verifies the stored archives offline: checksums, continuity from seq 1, signed heads', async () => {
      const all = await verifyStoredArchives(store, 'default', { trustedKeys: [signer.publicJwk] });
      expect(all.checks.filter((c) => !c.includes('ok: '))).toEqual([]);
      expect(all).toMatchObject({ ok: true, archives: 3, head: { seq: 25 } });

      const [m1, m2] = await Promise.all(
        [archiveKey('default', '2030-03-01', 1, 10), archiveKey('default', '2030-03-02', 11, 20)].map((k) =>
          readManifest(store, manifestKeyOf(k)),
        ),
      );
      const a2 = await bytesOf(store, m2.archive.key);
      const r = await verifyArchive(a2, m2, { previous: m1, trustedKeys: [signer.publicJwk] });
      expect(r.ok).toBe(true);
      expect(r.events?.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i));
      expect(r.events).toEqual(await listAudit(t.db, 'default', { afterSeq: 10, untilSeq: 20 }));
    });

    it('names the tampered event when a line of an archive is edited', async () => {
      const m2 = await readManifest(store, manifestKeyOf(archiveKey('default', '2030-03-02', 11, 20)));
      const a2 = await bytesOf(store, m2.archive.key);
      const edited = tamper(a2, 4, (e) => {
        e.actor = 'service:mallory';
      });

      const r = await verifyArchive(edited, m2);
      expect(r.ok).toBe(false);
      expect(r.firstBroken?.what).toBe('archive'); // the file is not the one the manifest describes
      expect(r.broken).toContainEqual(
        expect.objectContaining({
          what: 'audit event seq 15',
          seq: 15,
          reason: 'hash does not match its content',
        }),
      );

      // Even with the manifest's checksum rewritten to match, the chain gives the edit away.
      const { createHash } = await import('node:crypto');
      const forged: ArchiveManifest = {
        ...m2,
        archive: {
          ...m2.archive,
          sha256: createHash('sha256').update(edited).digest('hex'),
          size: edited.length,
        },
      };
      const again = await verifyArchive(edited, forged);
      expect(again.firstBroken).toMatchObject({ what: 'audit event seq 15', seq: 15 });

      // A dropped line.
      const lines = gunzipSync(a2).toString('utf8').split('\n');
      lines.splice(3, 1);
      const dropped = await verifyArchive(gzipSync(Buffer.from(lines.join('\n'))), m2);
      expect(dropped.broken).toContainEqual(expect.objectContaining({ seq: 15, what: 'audit event seq 15' }));
    });

    it('refuses a broken continuity, a signed head of something else, and an untrusted key', async () => {
      const m2 = await readManifest(store, manifestKeyOf(archiveKey('default', '2030-03-02', 11, 20)));
      const a2 = await bytesOf(store, m2.archive.key);
      const notContinued = await verifyArchive(a2, m2, { previous: { toSeq: 10, lastHash: 'f'.repeat(64) } });
      expect(notContinued.firstBroken).toMatchObject({ what: 'audit event seq 11', seq: 11 });
      const gap = await verifyArchive(a2, m2, { previous: { toSeq: 9, lastHash: m2.firstPrevHash } });
      expect(gap.firstBroken?.what).toBe('continuity');

      const otherHead = await signer.signHead({ divisionId: 'default', seq: 19, hash: m2.lastHash });
      const resigned = await verifyArchive(a2, { ...m2, signedHead: otherHead });
      expect(resigned.firstBroken?.what).toBe('signed head');

      const { publicKey } = await generateKeyPair('EdDSA', { extractable: true });
      const untrusted = await verifyArchive(a2, m2, { trustedKeys: [await exportJWK(publicKey)] });
      expect(untrusted.firstBroken?.what).toBe('signing key');
      expect((await verifyArchive(a2, { format: 'something else' })).ok).toBe(false);
      expect((await verifyArchive(Buffer.from('not gzip'), m2)).ok).toBe(false);
    });

    it('splits a busy day and completes an archive an interrupted run left without manifest', async () => {
      await append(t, 'busy', 25, DAY1);
      const split = await archiveAudit(
        { ...deps, now: () => DAY2, maxEventsPerArchive: 10 },
        { divisionId: 'busy' },
      );
      expect(split.archives.map((a) => [a.fromSeq, a.toSeq])).toEqual([
        [1, 10],
        [11, 20],
        [21, 25],
      ]);

      // A crash between the archive and its manifest: the archive alone is in the store.
      await append(t, 'busy', 5, DAY2);
      const events = await listAudit(t.db, 'busy', { afterSeq: 25, untilSeq: 30 });
      const key = archiveKey('busy', '2030-03-02', 26, 30);
      await store.put(key, Readable.from([gzipSync(Buffer.from(toJsonl(events)))]));
      expect((await verifyStoredArchives(store, 'busy')).checks.at(-1)).toMatch(/has no manifest/);

      const resumed = await archiveAudit({ ...deps, now: () => DAY3 }, { divisionId: 'busy' });
      expect(resumed.archives).toEqual([
        expect.objectContaining({ key, fromSeq: 26, toSeq: 30, repaired: true }),
      ]);
      const verified = await verifyStoredArchives(store, 'busy', { trustedKeys: [signer.publicJwk] });
      expect(verified).toMatchObject({ ok: true, archives: 4, head: await auditHead(t.db, 'busy') });

      // An orphan that does not hold the database's events stops the run rather than being trusted.
      await append(t, 'busy', 2, DAY3);
      await store.put(
        archiveKey('busy', '2030-03-03', 31, 32),
        Readable.from([gzipSync(Buffer.from('{}\n'))]),
      );
      await expect(archiveAudit({ ...deps, now: () => DAY4 }, { divisionId: 'busy' })).rejects.toThrow(
        /has no manifest/,
      );
    });

    it('verifies archive files on disk from the CLI, detecting what each file is', async () => {
      const key = archiveKey('default', '2030-03-02', 11, 20);
      const manifestBytes = await bytesOf(store, manifestKeyOf(key));
      const archive = await bytesOf(store, key);
      const previous = await bytesOf(store, manifestKeyOf(archiveKey('default', '2030-03-01', 1, 10)));
      const files = {
        archive: join(dir, '000000000011-000000000020.jsonl.gz'),
        manifest: join(dir, '000000000011-000000000020.manifest.json'),
        previous: join(dir, 'previous.manifest.json'),
        key: join(dir, 'key.jwk.json'),
      };
      writeFileSync(files.archive, archive);
      writeFileSync(files.manifest, manifestBytes);
      writeFileSync(files.previous, previous);
      expect(detectAuditFile(archive)).toBe('archive');
      expect(detectAuditFile(manifestBytes)).toBe('archive-manifest');
      expect(detectAuditFile(Buffer.from('{"format":"memory-layer-proof/1"}'))).toBe('bundle');
      expect(detectAuditFile(Buffer.from('hello'))).toBe('unknown');

      for (const file of [files.archive, files.manifest]) {
        const out: string[] = [];
        await runArchiveVerify(file, { previous: files.previous, trustedKeys: [signer.publicJwk] }, (l) =>
          out.push(l),
        );
        expect(out.at(-1)).toBe(`${files.archive}: verified`);
        expect(out.filter((l) => !l.startsWith('ok: ')).length).toBe(1);
      }

      writeFileSync(
        files.archive,
        tamper(archive, 0, (e) => {
          e.action = 'memory.delete';
        }),
      );
      await expect(runArchiveVerify(files.archive, {}, () => undefined)).rejects.toThrow(
        /verification failed: archive/,
      );
    });
  },
);
