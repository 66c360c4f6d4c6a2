import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore } from '../../src/adapters/objects/index.js';
import { createLocalObjectStore } from '../../src/adapters/objects/local.js';
import type { ObjectStore } from '../../src/adapters/objects/port.js';
import { createVectorIndex } from '../../src/adapters/vector/index.js';
import { createSnapshot } from '../../src/backup/backup.js';
import { readJsonLines } from '../../src/backup/jsonl-objects.js';
import {
  listSnapshots,
  manifestKey,
  readManifest,
  type SnapshotManifest,
} from '../../src/backup/manifest.js';
import { restoreSnapshot } from '../../src/backup/restore.js';
import { loadConfig } from '../../src/config.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { runCli } from '../helpers/cli.js';
import { type Backend, backends, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { appError } from '../helpers/errors.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { waitFor } from '../helpers/wait.js';

const TOPICS = [
  'coffee black without sugar every morning',
  'the staging database ran out of disk space',
  'quarterly tax filings are due in April',
  'the flight to Tokyo leaves from gate 42',
  'water the tomato plants in the garden',
  'the API rate limit is one hundred requests per minute',
  'piano recital on Saturday afternoon',
  'the cat sleeps on the sofa after lunch',
];
const QUERIES = [
  'when is the tax deadline',
  'disk space incident',
  'plants in the garden',
  'flight gate',
  'music',
];
const MODES = ['hybrid', 'vector', 'keyword'] as const;

/** Every query in every mode and division: the ids in rank order. */
async function searchAll(t: TestApp, divisions: string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const divisionId of divisions) {
    for (const mode of MODES) {
      for (const query of QUERIES) {
        const res = await t.http.inject({
          method: 'POST',
          url: '/v1/search',
          payload: { divisionId, query, mode, k: 10 },
        });
        expect(res.statusCode, res.body).toBe(200);
        out[`${divisionId}/${mode}/${query}`] = res.json().hits.map((h: { id: string }) => h.id);
      }
    }
  }
  return out;
}

async function head(t: TestApp, divisionId: string): Promise<{ seq: number; hash: string }> {
  const res = await t.http.inject({ method: 'GET', url: `/v1/audit/head?divisionId=${divisionId}` });
  expect(res.statusCode, res.body).toBe(200);
  const { seq, hash } = res.json();
  return { seq, hash };
}

/** An empty installation: a database nobody has migrated, a new data directory. */
async function emptyInstallation(backend: Backend) {
  return {
    t: await openTestDatabase(backend, { migrate: false }),
    dataDir: mkdtempSync(join(tmpdir(), 'ml-restore-')),
  };
}

async function restoreInto(
  target: { t: TestDatabase; dataDir: string },
  store: ObjectStore,
  id: string,
  opts: { trustedKey?: Record<string, unknown> } = {},
) {
  const config = loadConfig({ DATA_DIR: target.dataDir, LOG_LEVEL: 'silent' });
  const index = await createVectorIndex(config.VECTOR_INDEX, { db: target.t.db, dataDir: target.dataDir });
  try {
    return await restoreSnapshot({ db: target.t.db, store, index }, id, opts);
  } finally {
    await index.close();
  }
}

/** Copies a snapshot under a new id, letting `edit` change any table's rows (keeps checksums honest). */
async function copySnapshot(
  from: ObjectStore,
  manifest: SnapshotManifest,
  to: ObjectStore,
  newId: string,
  edit: (table: string, rows: Record<string, unknown>[]) => Record<string, unknown>[],
): Promise<void> {
  const { Readable } = await import('node:stream');
  const tables = [];
  for (const part of manifest.tables) {
    let rows: Record<string, unknown>[] = [];
    for await (const page of readJsonLines(from, part)) rows.push(...page.map((l) => JSON.parse(l)));
    rows = edit(part.name, rows);
    const key = part.key.replace(manifest.id, newId);
    const body = gzipSync(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const stored = await to.put(key, Readable.from([body]));
    tables.push({ ...part, key, sha256: stored.sha256, size: stored.size, rows: rows.length });
  }
  const vectors = [];
  for (const part of manifest.vectors) {
    const { body } = await from.get(part.key);
    const key = part.key.replace(manifest.id, newId);
    await to.put(key, body);
    vectors.push({ ...part, key });
  }
  const copy = { ...manifest, id: newId, tables, vectors };
  await to.put(manifestKey(newId), Readable.from([Buffer.from(JSON.stringify(copy))]));
}

describe.each(backends)('backup, destroy, restore drill (%s)', (backend) => {
  let s3: TestS3;
  let env: Record<string, string>;
  let before: Record<string, string[]>;
  let heads: Record<string, { seq: number; hash: string }>;
  let manifest: SnapshotManifest;
  let artifactId: string;
  let restored: TestApp | undefined;
  const divisions = ['default', 'acme'];

  beforeAll(async () => {
    s3 = await startS3();
    // Snapshots and artifacts live in the S3 bucket: what survives when the database and the
    // machine's data directory are lost.
    env = {
      OBJECT_STORE: 's3',
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    };
    const source = await startTestApp(backend, { env });
    const { http } = source;
    expect(
      (await http.inject({ method: 'POST', url: '/v1/divisions', payload: { id: 'acme', name: 'Acme' } }))
        .statusCode,
    ).toBe(201);
    for (const divisionId of divisions) {
      const items = Array.from({ length: 40 }, (_, i) => ({
        text: `${TOPICS[i % TOPICS.length]} (${divisionId} note ${i})`,
        namespace: i % 2 ? 'work' : 'home',
        tags: [`t${i % 3}`],
        metadata: { n: i, nested: { ok: true } },
      }));
      items.push({
        text: 'Call Ada at ada@example.com about the invoice',
        namespace: 'home',
        tags: [],
        metadata: { n: 99, nested: { ok: false } },
      });
      const res = await http.inject({
        method: 'POST',
        url: '/v1/memories/batch?wait=true',
        payload: { divisionId, items },
      });
      expect(res.statusCode, res.body).toBe(201);
      const ids = res.json().items.map((m: { id: string }) => m.id);
      // History the snapshot must keep: an update, a soft delete, a hold.
      const upd = await http.inject({
        method: 'PATCH',
        url: `/v1/memories/${ids[1]}`,
        payload: { text: 'the staging database was given more disk space' },
      });
      expect(upd.statusCode, upd.body).toBe(200);
      expect((await http.inject({ method: 'DELETE', url: `/v1/memories/${ids[2]}` })).statusCode).toBe(204);
    }
    const hold = await http.inject({
      method: 'POST',
      url: '/v1/legal-holds',
      payload: { divisionId: 'acme', reason: 'litigation' },
    });
    expect(hold.statusCode, hold.body).toBe(201);
    const art = await http.inject({
      method: 'POST',
      url: '/v1/artifacts',
      headers: { 'content-type': 'application/pdf' },
      payload: Buffer.from('%PDF-1.4 drill'),
    });
    expect(art.statusCode, art.body).toBe(201);
    artifactId = art.json().id;

    await source.app.worker.drain();
    before = await searchAll(source, divisions);
    heads = {};
    for (const d of divisions) heads[d] = await head(source, d);
    manifest = await createSnapshot({
      db: source.app.db,
      store: source.app.objects,
      signer: source.app.signer,
    });

    // Lose everything but the bucket: the database (schema) and the data directory.
    await source.close();
  }, 600_000);

  afterAll(async () => {
    await restored?.close();
    await s3?.close();
  });

  it('writes a manifest with checksums of every part and the audit heads', async () => {
    expect(manifest.tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['divisions', 'memory_nodes', 'audit_events', 'jobs', 'artifacts']),
    );
    // Load order: referenced tables first.
    const order = manifest.tables.map((t) => t.name);
    expect(order.indexOf('divisions')).toBeLessThan(order.indexOf('memory_nodes'));
    expect(order.indexOf('memory_nodes')).toBeLessThan(order.indexOf('memory_artifacts'));
    expect(manifest.tables.find((t) => t.name === 'memory_nodes')?.rows).toBe(82);
    expect(manifest.vectors).toHaveLength(1);
    expect(manifest.vectors[0].count).toBe(80); // 82 memories, 2 deleted
    expect(manifest.audit.heads).toEqual(
      expect.arrayContaining(divisions.map((d) => ({ divisionId: d, ...heads[d] }))),
    );
    expect(manifest.audit.signedHeads).toHaveLength(manifest.audit.heads.length);
  });

  it('restores into an empty installation: same search results, same audit head, artifacts readable', async () => {
    const target = await emptyInstallation(backend);
    const store = createObjectStore(loadConfig({ ...env, DATA_DIR: target.dataDir }));
    expect(await listSnapshots(store)).toContain(manifest.id);
    const result = await restoreInto(target, store, manifest.id);
    expect(result.vectors).toBe(80);
    expect(result.missingArtifacts).toEqual([]);

    restored = await startTestApp(backend, { env, existing: target });
    // Heads first: searches that show personal data append `pii.read` events.
    for (const d of divisions) expect(await head(restored, d)).toEqual(heads[d]);
    expect(await searchAll(restored, divisions)).toEqual(before);

    const art = await restored.http.inject({ method: 'GET', url: `/v1/artifacts/${artifactId}` });
    expect(art.statusCode).toBe(200);
    expect(art.body).toBe('%PDF-1.4 drill');
    // The hold came back: acme's memories still cannot be deleted.
    const list = await restored.http.inject({ method: 'GET', url: '/v1/memories?divisionId=acme&limit=1' });
    const held = list.json().items[0].id;
    expect((await restored.http.inject({ method: 'DELETE', url: `/v1/memories/${held}` })).statusCode).toBe(
      409,
    );
  });

  it('goes on after a restore: new writes get new keys and extend the same audit chain', async () => {
    if (!restored) throw new Error('restore test did not run');
    const previous = await head(restored, 'default');
    const res = await restored.http.inject({
      method: 'POST',
      url: '/v1/memories?wait=true',
      payload: { text: 'written after the restore drill' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const after = await head(restored, 'default');
    // The write's event, then (ACCESS_AUDIT=all) the read-back of its `?wait=true` answer.
    const added = await restored.app.audit.list('default', { afterSeq: previous.seq });
    expect(added.events.map((e) => e.action)).toEqual(['memory.create', 'memory.access']);
    expect(added.events[0].prevHash).toBe(previous.hash);
    expect(after.seq).toBe(previous.seq + 2);
    const bundle = await restored.http.inject({
      method: 'POST',
      url: '/v1/exports',
      payload: { divisionId: 'default' },
    });
    expect(bundle.statusCode).toBe(200);
    const { verifyBundle } = await import('../../src/audit/verify.js');
    const verdict = await verifyBundle(bundle.json());
    expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
    const search = await restored.http.inject({
      method: 'POST',
      url: '/v1/search',
      payload: { query: 'written after the restore drill', mode: 'keyword', k: 1 },
    });
    expect(search.json().hits[0].id).toBe(res.json().id);
  });

  it('refuses to restore over an installation that has data, changing nothing', async () => {
    if (!restored) throw new Error('restore test did not run');
    const err = await appError(
      restoreInto({ t: restored.t, dataDir: restored.dataDir }, restored.app.objects, manifest.id),
    );
    expect(err.status).toBe(409);
    expect(err.code).toBe('restore_target_not_empty');
    const n = await restored.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes');
    expect(n.rows[0].n).toBe(83);
  });

  it('refuses unknown and malformed snapshot ids', async () => {
    const target = await emptyInstallation(backend);
    const store = createObjectStore(loadConfig({ ...env, DATA_DIR: target.dataDir }));
    try {
      const missing = await appError(restoreInto(target, store, '20200101T000000000Z-abcdef'));
      expect([missing.status, missing.code, missing.errors[0].field]).toEqual([
        404,
        'invalid_snapshot',
        'snapshot',
      ]);
      const malformed = await appError(restoreInto(target, store, '../etc/passwd'));
      expect([malformed.status, malformed.code]).toEqual([422, 'invalid_snapshot']);
    } finally {
      await target.t.drop();
      rmSync(target.dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a snapshot whose bytes or audit chain were tampered with, leaving the target empty', async () => {
    const source = createObjectStore(loadConfig({ ...env, DATA_DIR: tmpdir() }));
    const dir = mkdtempSync(join(tmpdir(), 'ml-snapshots-'));
    const local = createLocalObjectStore({ dir });
    const target = await emptyInstallation(backend);
    try {
      // 1. A part's bytes changed after the backup: its checksum no longer matches.
      const flipped = '20990101T000000000Z-000001';
      await copySnapshot(source, manifest, local, flipped, (_t, rows) => rows);
      const part = (await readManifest(local, flipped)).tables.find((t) => t.name === 'memory_nodes');
      const file = join(dir, 'data', ...(part?.key ?? '').split('/'));
      chmodSync(file, 0o644);
      writeFileSync(file, gzipSync('{"id":"forged"}\n'));
      const bytes = await appError(restoreInto(target, local, flipped));
      expect([bytes.status, bytes.code]).toEqual([422, 'snapshot_corrupt']);
      expect(bytes.message).toContain('memory_nodes');

      // 2. An audit event rewritten with consistent checksums: the chain check catches it.
      const forged = '20990101T000000000Z-000002';
      await copySnapshot(source, manifest, local, forged, (table, rows) =>
        table === 'audit_events'
          ? rows.map((r) =>
              r.seq === 3 && r.division_id === 'default' ? { ...r, actor: 'someone-else' } : r,
            )
          : rows,
      );
      const chain = await appError(restoreInto(target, local, forged));
      expect([chain.status, chain.code]).toEqual([422, 'snapshot_corrupt']);
      expect(chain.message).toMatch(/audit chain of division default at seq 3/);

      // 3. Signed by a key other than the one the operator trusts.
      const otherKey = { kty: 'OKP', crv: 'Ed25519', x: Buffer.alloc(32, 7).toString('base64url') };
      const untrusted = await appError(restoreInto(target, source, manifest.id, { trustedKey: otherKey }));
      expect([untrusted.status, untrusted.code]).toEqual([422, 'snapshot_corrupt']);

      // Nothing was loaded: the target is still empty and a good snapshot restores into it.
      const rows = await target.t.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'memory_nodes' AND table_schema = current_schema()",
      );
      if (rows.rows[0].n > 0) {
        const n = await target.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes');
        expect(n.rows[0].n).toBe(0);
      }
      const ok = await restoreInto(target, source, manifest.id);
      expect(ok.vectors).toBe(80);
    } finally {
      await target.t.drop();
      rmSync(target.dataDir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(backends)('backup while writes go on (%s)', (backend) => {
  it('takes one consistent instant: the restored chain and rows agree, nothing half-included', async () => {
    const source = await startTestApp(backend, { worker: false });
    const target = await emptyInstallation(backend);
    try {
      let writing = true;
      let written = 0;
      const writer = (async () => {
        while (writing) {
          const res = await source.http.inject({
            method: 'POST',
            url: '/v1/memories',
            payload: { text: `concurrent note ${written}` },
          });
          expect(res.statusCode).toBe(201);
          written++;
        }
      })();
      await waitFor(() => written >= 5, {
        what: 'five writes before the snapshot',
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      const snap = await createSnapshot({
        db: source.app.db,
        store: source.app.objects,
        signer: source.app.signer,
      });
      writing = false;
      await writer;
      const rows = snap.tables.find((t) => t.name === 'memory_nodes')?.rows ?? 0;
      const events = snap.tables.find((t) => t.name === 'audit_events')?.rows ?? 0;
      // Every memory in the snapshot has its create event and its queued job, and no more.
      expect(events).toBe(rows);
      expect(snap.tables.find((t) => t.name === 'jobs')?.rows).toBe(rows);
      expect(snap.audit.heads.find((h) => h.divisionId === 'default')?.seq).toBe(rows);

      const result = await restoreInto(target, source.app.objects, snap.id);
      expect(result.tables.find((t) => t.name === 'memory_nodes')?.rows).toBe(rows);
      expect(written).toBeGreaterThanOrEqual(rows);
    } finally {
      await target.t.drop();
      rmSync(target.dataDir, { recursive: true, force: true });
      await source.close();
    }
  }, 300_000);
});

describe('backup, restore and index load through the CLI (pglite)', () => {
  const cli = async (env: Record<string, string>, ...args: string[]) => {
    const res = await runCli({ DATABASE_URL: '', LOG_LEVEL: 'error', ...env }, args, 180_000);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout;
  };

  it('backs up a data directory, restores it into another, and both answer alike', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ml-cli-backup-'));
    const a = { DATA_DIR: join(root, 'a') };
    const b = { DATA_DIR: join(root, 'b') };
    const store = join(root, 'snapshots');
    try {
      const file = join(root, 'memories.jsonl');
      writeFileSync(file, `${TOPICS.map((text) => JSON.stringify({ text })).join('\n')}\n`);
      await cli(a, 'ingest', file);
      const backup = await cli(a, 'backup', '--store-dir', store);
      const id = /snapshot (\S+) written/.exec(backup)?.[1] ?? '';
      expect(id).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{6}$/);
      expect(backup).toContain('memory_nodes: 8 rows');
      expect(await cli(a, 'backup', '--list', '--store-dir', store)).toContain(`${id}\t`);

      const restore = await cli(b, 'restore', id, '--store-dir', store);
      expect(restore).toContain(`restored snapshot ${id}: checksums and audit chains verified`);
      expect(restore).toContain('vectors: 8');
      const query = ['search', 'vegetables need water', '--json', '--mode', 'vector'];
      const ids = (out: string) => (JSON.parse(out) as { hits: { id: string }[] }).hits.map((h) => h.id);
      expect(ids(await cli(b, ...query))).toEqual(ids(await cli(a, ...query)));

      const load = await cli(b, 'index', 'rebuild', '--from-snapshot', id, '--store-dir', store);
      expect(load).toMatch(/from snapshot \S+: 8 vectors/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 600_000);
});
