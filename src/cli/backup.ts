import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { openDatabase } from '../adapters/db/index.js';
import { migrate } from '../adapters/db/migrate.js';
import { createObjectStore } from '../adapters/objects/index.js';
import { createLocalObjectStore } from '../adapters/objects/local.js';
import type { ObjectStore } from '../adapters/objects/port.js';
import { createVectorIndex } from '../adapters/vector/index.js';
import { createAuditSigner } from '../audit/signer.js';
import { createSnapshot } from '../backup/backup.js';
import { listSnapshots, readManifest } from '../backup/manifest.js';
import { restoreSnapshot } from '../backup/restore.js';
import { loadVectorSnapshot } from '../backup/vector-snapshot.js';
import { type Config, loadConfig } from '../config.js';

/**
 * Backup and restore open only what they need (database, object store, vector index, signing key):
 * no embedding model, no worker, no reconciliation that would touch the index before a restore.
 */
async function withParts<T>(
  opts: { storeDir?: string },
  fn: (parts: {
    config: Config;
    store: ObjectStore;
    db: Awaited<ReturnType<typeof openDatabase>>;
  }) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  const store = opts.storeDir ? createLocalObjectStore({ dir: opts.storeDir }) : createObjectStore(config);
  const db = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    schema: config.DATABASE_SCHEMA,
  });
  try {
    return await fn({ config, store, db });
  } finally {
    await db.close();
  }
}

export async function runBackup(opts: { storeDir?: string; list?: boolean }) {
  await withParts(opts, async ({ config, store, db }) => {
    if (opts.list) {
      const ids = await listSnapshots(store);
      for (const id of ids) {
        const m = await readManifest(store, id);
        const rows = m.tables.find((t) => t.name === 'memory_nodes')?.rows ?? 0;
        process.stdout.write(
          `${id}\t${m.createdAt}\t${rows} memories\t${m.audit.heads.length} audit chains\n`,
        );
      }
      if (ids.length === 0) process.stdout.write('no snapshots\n');
      return;
    }
    await migrate(db);
    const signer = await createAuditSigner({
      keyFile: config.AUDIT_SIGNING_KEY_FILE,
      dataDir: config.DATA_DIR,
    });
    const manifest = await createSnapshot(
      { db, store, signer },
      { onTable: (name, rows) => process.stdout.write(`  ${name}: ${rows} rows\n`) },
    );
    const vectors = manifest.vectors.reduce((n, v) => n + v.count, 0);
    process.stdout.write(`  vectors: ${vectors}\n`);
    for (const h of manifest.audit.heads) {
      process.stdout.write(`  audit head ${h.divisionId}: seq ${h.seq} ${h.hash}\n`);
    }
    process.stdout.write(`snapshot ${manifest.id} written\n`);
  });
}

export async function runRestore(snapshot: string, opts: { storeDir?: string; key?: string }) {
  await withParts(opts, async ({ config, store, db }) => {
    const index = await createVectorIndex(config.VECTOR_INDEX, { db, dataDir: config.DATA_DIR });
    try {
      const trustedKey = opts.key
        ? (JSON.parse(readFileSync(opts.key, 'utf8')) as Record<string, unknown>)
        : undefined;
      const result = await restoreSnapshot({ db, store, index }, snapshot, {
        trustedKey,
        onStep: (s) => process.stdout.write(`${s}...\n`),
      });
      for (const t of result.tables) process.stdout.write(`  ${t.name}: ${t.rows} rows\n`);
      process.stdout.write(`  vectors: ${result.vectors} (${index.name})\n`);
      for (const h of result.auditHeads) {
        process.stdout.write(`  audit head ${h.divisionId}: seq ${h.seq} ${h.hash} verified\n`);
      }
      for (const key of result.missingArtifacts) {
        process.stdout.write(`warning: artifact bytes missing from the object store: ${key}\n`);
      }
      process.stdout.write(`restored snapshot ${result.snapshot}: checksums and audit chains verified\n`);
    } finally {
      await index.close();
    }
  });
}

/** `index rebuild --from-snapshot`: loads the index from a snapshot's vectors (no PostgreSQL scan). */
export async function runIndexLoad(snapshot: string, opts: { storeDir?: string }) {
  await withParts(opts, async ({ config, store, db }) => {
    const manifest = await readManifest(store, snapshot);
    const index = await createVectorIndex(config.VECTOR_INDEX, { db, dataDir: config.DATA_DIR });
    try {
      const bar = new cliProgress.SingleBar(
        { format: 'load [{bar}] {value}/{total} vectors' },
        cliProgress.Presets.shades_classic,
      );
      bar.start(
        Math.max(
          1,
          manifest.vectors.reduce((n, v) => n + v.count, 0),
        ),
        0,
      );
      const n = await loadVectorSnapshot(index, store, manifest, (done) => bar.update(done));
      bar.stop();
      process.stdout.write(`loaded the ${index.name} index from snapshot ${manifest.id}: ${n} vectors\n`);
    } finally {
      await index.close();
    }
  });
}
