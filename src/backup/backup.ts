import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Database } from '../adapters/db/port.js';
import type { ObjectStore } from '../adapters/objects/port.js';
import type { AuditSigner } from '../audit/signer.js';
import { type Encryption, INSTALLATION_KEY } from '../encryption/encryption.js';
import type { ContextOptions } from '../indexing/contextual-vectors.js';
import type { Logger } from '../platform/logger.js';
import { putJsonLines } from './jsonl-objects.js';
import { manifestKey, SNAPSHOT_FORMAT, type SnapshotManifest, snapshotPrefix } from './manifest.js';
import { quoteIdent, sequenceStates, snapshotTables, tableRows } from './tables.js';
import { writeVectorSnapshot } from './vector-snapshot.js';

export interface BackupDeps {
  db: Database;
  store: ObjectStore;
  signer: AuditSigner;
  logger?: Logger;
  /** How the vector index blends session neighbours: the vector snapshot holds what the index holds. */
  context?: ContextOptions;
  /**
   * On (KEY_DIR): each table's rows are split per division, each division's part encrypted with
   * its data key, rows of no division with the installation's; vectors travel in their division's
   * memory rows (the index is rebuilt from them on restore), so no clear vector part is written.
   */
  encryption?: Encryption;
}

export { INSTALLATION_KEY } from '../encryption/encryption.js';

export const newSnapshotId = (at = new Date()) =>
  `${at.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;

/**
 * Writes a consistent snapshot to the object store: every table (a logical export read in one
 * REPEATABLE READ, READ ONLY transaction, so all parts see the same instant while writes go on),
 * the vector snapshot, then the manifest with each part's SHA-256, the migrations, the sequences
 * and every division's audit head, signed. The manifest goes last: a snapshot without one is
 * incomplete and restore refuses it.
 */
export async function createSnapshot(
  deps: BackupDeps,
  opts: { onTable?: (name: string, rows: number) => void } = {},
): Promise<SnapshotManifest> {
  const { db, store, signer } = deps;
  const id = newSnapshotId();
  const manifest = await db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const migrations = await tx.query<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    const shapes = await snapshotTables(tx);
    const tables: SnapshotManifest['tables'] = [];
    const encryption = deps.encryption?.enabled ? deps.encryption : undefined;
    for (const t of shapes) {
      if (!encryption) {
        const part = await putJsonLines(
          store,
          `${snapshotPrefix(id)}/tables/${t.name}.jsonl.gz`,
          tableRows(tx, t),
        );
        tables.push({ ...part, name: t.name, columns: t.columns });
        opts.onTable?.(t.name, part.rows);
        continue;
      }
      const divisions = t.columns.includes('division_id')
        ? (
            await tx.query<{ d: string }>(
              `SELECT DISTINCT division_id AS d FROM ${quoteIdent(t.name)} ORDER BY 1`,
            )
          ).rows.map((r) => r.d)
        : [undefined];
      let rows = 0;
      for (const division of divisions) {
        // An erased division keeps only its audit trail (digests and the erasure record): its key
        // is gone, so those rows go under the installation's key.
        const erased = division !== undefined && (await encryption.erased(division));
        const keyId = division === undefined || erased ? INSTALLATION_KEY : division;
        const key = `${snapshotPrefix(id)}/tables/${t.name}/${division ?? INSTALLATION_KEY}.jsonl.gz.enc`;
        const sealing = await encryption.encryptor('snapshot-part', keyId, key);
        const part = await putJsonLines(store, key, tableRows(tx, t, 1000, division), sealing?.stream);
        tables.push({ ...part, name: t.name, columns: t.columns, keyId, keyVersion: sealing?.keyVersion });
        rows += part.rows;
      }
      opts.onTable?.(t.name, rows);
    }
    const vectors = encryption ? [] : await writeVectorSnapshot(tx, store, id, deps.context);
    const heads = await tx.query<{ division_id: string; seq: number | string; hash: string }>(
      'SELECT division_id, seq, hash FROM audit_heads ORDER BY division_id',
    );
    const artifacts = await tx.query<{ count: number; bytes: number | string }>(
      'SELECT count(*)::int AS count, coalesce(sum(size), 0)::bigint AS bytes FROM artifacts',
    );
    return {
      format: SNAPSHOT_FORMAT,
      id,
      createdAt: new Date().toISOString(),
      source: db.engine,
      migrations: migrations.rows.map((m) => ({ version: Number(m.version), name: m.name })),
      tables,
      sequences: await sequenceStates(tx, shapes),
      vectors,
      audit: {
        heads: heads.rows.map((h) => ({ divisionId: h.division_id, seq: Number(h.seq), hash: h.hash })),
        signedHeads: [] as Record<string, unknown>[],
        publicKey: signer.publicJwk as Record<string, unknown>,
      },
      artifacts: { count: artifacts.rows[0].count, totalBytes: Number(artifacts.rows[0].bytes) },
    } satisfies SnapshotManifest;
  });
  // Signed after the transaction: signing needs no database, and the heads are the snapshot's.
  for (const h of manifest.audit.heads) {
    manifest.audit.signedHeads.push({ ...(await signer.signHead(h)) });
  }
  const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
  await store.put(manifestKey(id), Readable.from([body]), { contentType: 'application/json' });
  deps.logger?.info(
    {
      snapshot: id,
      tables: manifest.tables.length,
      vectors: manifest.vectors.reduce((n, v) => n + v.count, 0),
    },
    'snapshot written',
  );
  return manifest;
}
