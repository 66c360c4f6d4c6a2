import { loadMigrations, migrate } from '../adapters/db/migrate.js';
import type { Database, Queryable } from '../adapters/db/port.js';
import type { ObjectStore } from '../adapters/objects/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import { listAudit } from '../audit/audit-log.js';
import { type ChainHead, GENESIS_HASH, verifyChain } from '../audit/chain.js';
import { type SignedHead, verifySignedHead } from '../audit/signer.js';
import type { Encryption } from '../encryption/encryption.js';
import { countIndexable } from '../indexing/index-maintenance.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import { lease } from '../platform/lease.js';
import { INSTALLATION_KEY } from './backup.js';
import { readJsonLines, verifyPart } from './jsonl-objects.js';
import { readManifest, type SnapshotManifest, snapshotError } from './manifest.js';
import { insertRows, quoteIdent, restoreSequence, snapshotTables, type TableShape } from './tables.js';
import { loadVectorSnapshot } from './vector-snapshot.js';

export interface RestoreDeps {
  db: Database;
  store: ObjectStore;
  index: VectorIndex;
  /** Needed for snapshots with encrypted parts (the current keys of KEY_DIR). */
  encryption?: Encryption;
}

export interface RestoreOptions {
  /** A public JWK the snapshot's signed heads must verify with (else: the manifest's own key). */
  trustedKey?: Record<string, unknown>;
  onStep?: (step: string) => void;
}

export interface RestoreResult {
  snapshot: string;
  tables: { name: string; rows: number }[];
  vectors: number;
  auditHeads: (ChainHead & { divisionId: string })[];
  /** Artifacts whose bytes are not in the object store (restore the bucket too, or re-upload). */
  missingArtifacts: string[];
  /**
   * Divisions erased since the snapshot was taken (their data key destroyed): none of their
   * encrypted rows was restored, only their division record, marked erased. Never half-restored.
   */
  erasedDivisions: string[];
}

const AUDIT_PAGE = 1000;

/**
 * Rebuilds an empty installation from a snapshot. Nothing is written until every part matches the
 * manifest's checksums; the rows are then loaded in one transaction that also checks every
 * division's audit chain against the signed heads, so a failed restore leaves the database as
 * empty as it was. Only then is the vector index loaded from the vector snapshot.
 */
export async function restoreSnapshot(
  deps: RestoreDeps,
  snapshotId: string,
  opts: RestoreOptions = {},
): Promise<RestoreResult> {
  const { db, store, index } = deps;
  const step = opts.onStep ?? (() => undefined);
  const manifest = await readManifest(store, snapshotId);

  step('verifying checksums');
  for (const part of [...manifest.tables, ...manifest.vectors]) await verifyPart(store, part);
  // Parts under a destroyed key are skipped whole: the division was erased after the snapshot.
  const erased = new Set<string>();
  for (const part of manifest.tables) {
    if (part.keyId === undefined) continue;
    if (!deps.encryption?.enabled) {
      throw new AppError(
        ErrorCode.keyUnavailable,
        `snapshot ${manifest.id} is encrypted: restore with the installation's KEY_DIR and KEK configured (nothing was changed)`,
        [{ field: 'KEY_DIR', message: 'required for an encrypted snapshot' }],
      );
    }
    if (part.keyId !== INSTALLATION_KEY && (await deps.encryption.erased(part.keyId))) erased.add(part.keyId);
  }
  step('verifying signed audit heads');
  await verifySignedHeads(manifest, opts.trustedKey);

  step('preparing the schema');
  const known = loadMigrations();
  await migrateToSnapshot(db, manifest, known);
  await assertEmpty(db);

  step('loading rows');
  const tables = await db.transaction(async (tx) => {
    // The only row a fresh installation has is the seeded default division; the snapshot has its own.
    await tx.query('DELETE FROM divisions');
    const shapes = new Map((await snapshotTables(tx)).map((t) => [t.name, t]));
    const loaded: { name: string; rows: number }[] = [];
    for (const part of manifest.tables) {
      const shape = shapes.get(part.name);
      if (!shape) throw corrupt(`the snapshot has table ${part.name}, which this schema does not`);
      if (part.keyId !== undefined && erased.has(part.keyId)) continue;
      const table: TableShape = { ...shape, columns: part.columns };
      let rows = 0;
      const decrypt =
        part.keyId === undefined
          ? undefined
          : deps.encryption?.decryptor('snapshot-part', part.keyId, part.key);
      for await (const page of readJsonLines(store, part, 500, decrypt)) {
        await insertRows(tx, table, page);
        rows += page.length;
      }
      if (rows !== part.rows) throw corrupt(`${part.key} holds ${rows} rows, not ${part.rows}`);
      loaded.push({ name: part.name, rows });
    }
    for (const s of manifest.sequences) await restoreSequence(tx, s);
    // Workers of the old installation are gone: their claimed jobs go back to the queue at once
    // rather than after the lease runs out.
    await tx.query(
      `UPDATE jobs SET status = 'queued', locked_at = NULL, ${lease.release}, run_at = now() WHERE status = 'running'`,
    );
    await verifyRestoredAudit(tx, manifest, erased);
    return loaded;
  });

  step('applying newer migrations');
  await migrate(db, known);
  for (const divisionId of erased) {
    await db.query('UPDATE divisions SET erased_at = coalesce(erased_at, now()) WHERE id = $1', [divisionId]);
  }

  step('loading the vector index');
  const vectors = await loadVectorSnapshot(index, store, manifest);
  for (const part of manifest.vectors) {
    const model = { name: part.model, version: part.version, dimensions: part.dimensions };
    const expected = await countIndexable(db, model);
    if (expected !== part.count) {
      throw corrupt(
        `${part.model}@${part.version}: ${part.count} vectors in the snapshot, ${expected} in the rows`,
      );
    }
  }

  return {
    snapshot: manifest.id,
    tables,
    vectors,
    auditHeads: manifest.audit.heads,
    missingArtifacts: await missingArtifacts(db, store),
    erasedDivisions: [...erased].sort(),
  };
}

const corrupt = (message: string) => snapshotError(ErrorCode.snapshotCorrupt, message);

async function verifySignedHeads(manifest: SnapshotManifest, trustedKey?: Record<string, unknown>) {
  const key = trustedKey ?? manifest.audit.publicKey;
  for (const head of manifest.audit.heads) {
    const signed = manifest.audit.signedHeads.find((s) => s.divisionId === head.divisionId) as
      | SignedHead
      | undefined;
    if (!signed || signed.seq !== head.seq || signed.hash !== head.hash) {
      throw corrupt(`no signed head for division ${head.divisionId} at seq ${head.seq}`);
    }
    const check = await verifySignedHead(signed, key);
    if (!check.ok) throw corrupt(`signed head of division ${head.divisionId}: ${check.reason}`);
  }
}

/**
 * Brings the schema to exactly the snapshot's migrations, so that its rows fit. A database that is
 * already past them (or a snapshot from a newer release) cannot take the rows.
 */
async function migrateToSnapshot(
  db: Database,
  manifest: SnapshotManifest,
  known: ReturnType<typeof loadMigrations>,
) {
  for (const m of manifest.migrations) {
    const k = known.find((x) => x.version === m.version);
    if (!k || k.name !== m.name) {
      throw snapshotError(
        ErrorCode.invalidSnapshot,
        `the snapshot needs migration ${m.name}, which this release does not have: restore with the release that took it or a newer one`,
      );
    }
  }
  const upTo = Math.max(0, ...manifest.migrations.map((m) => m.version));
  const exists = await db.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (exists.rows[0].t) {
    const applied = await db.query<{ version: number }>('SELECT version FROM schema_migrations');
    if (applied.rows.some((r) => Number(r.version) > upTo)) {
      throw new AppError(
        ErrorCode.restoreTargetNotEmpty,
        'the database has migrations newer than the snapshot: restore into a database that has not been started yet',
        [{ field: 'database', message: 'migrated past the snapshot' }],
      );
    }
  }
  await migrate(
    db,
    known.filter((m) => m.version <= upTo),
  );
}

/** Restore only fills an installation that holds nothing but the seeded default division. */
async function assertEmpty(db: Database) {
  for (const t of await snapshotTables(db)) {
    const where = t.name === 'divisions' ? "WHERE id <> 'default'" : '';
    const res = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${quoteIdent(t.name)} ${where} LIMIT 1) x`,
    );
    if (res.rows[0].n > 0) {
      throw new AppError(
        ErrorCode.restoreTargetNotEmpty,
        `table ${t.name} is not empty: restore only into an empty installation (nothing is changed)`,
        [{ field: 'database', message: `${t.name} has rows` }],
      );
    }
  }
}

/** Every division's restored chain links up and ends at the snapshot's head; no event is extra. */
async function verifyRestoredAudit(tx: Queryable, manifest: SnapshotManifest, erased: Set<string>) {
  const heads = manifest.audit.heads.filter((h) => !erased.has(h.divisionId));
  for (const head of heads) {
    let at: ChainHead = { seq: 0, hash: GENESIS_HASH };
    for (;;) {
      const events = await listAudit(tx, head.divisionId, { afterSeq: at.seq, limit: AUDIT_PAGE });
      if (events.length === 0) break;
      const check = verifyChain(events, { start: at });
      if (!check.ok)
        throw corrupt(`audit chain of division ${head.divisionId} at seq ${check.seq}: ${check.reason}`);
      at = { seq: events[events.length - 1].seq, hash: events[events.length - 1].hash };
    }
    if (at.seq !== head.seq || at.hash !== head.hash) {
      throw corrupt(
        `audit chain of division ${head.divisionId} ends at seq ${at.seq}, not at the head ${head.seq}`,
      );
    }
  }
  const restored = await tx.query<{ division_id: string; seq: number | string; hash: string }>(
    'SELECT division_id, seq, hash FROM audit_heads',
  );
  const events = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events');
  const expected = heads.reduce((n, h) => n + h.seq, 0);
  const sameHeads =
    restored.rows.length === heads.length &&
    restored.rows.every((r) =>
      heads.some((h) => h.divisionId === r.division_id && h.seq === Number(r.seq) && h.hash === r.hash),
    );
  if (!sameHeads || events.rows[0].n !== expected) {
    throw corrupt('the restored audit heads or event count differ from the manifest');
  }
}

async function missingArtifacts(db: Database, store: ObjectStore): Promise<string[]> {
  const rows = await db.query<{ object_key: string }>('SELECT object_key FROM artifacts ORDER BY object_key');
  if (rows.rows.length === 0) return [];
  const present = new Set((await store.list('artifacts/')).map((o) => o.key));
  return rows.rows.map((r) => r.object_key).filter((k) => !present.has(k));
}
