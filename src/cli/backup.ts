import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { createLocalObjectStore } from '../adapters/objects/local.js';
import { createSnapshot } from '../backup/backup.js';
import { listSnapshots, readManifest } from '../backup/manifest.js';
import { restoreSnapshot } from '../backup/restore.js';
import { loadVectorSnapshot } from '../backup/vector-snapshot.js';
import { withParts } from './with-parts.js';

/**
 * Backup and restore use only what they need (database, object store, vector index, signing key):
 * no embedding model, no worker, no reconciliation that would touch the index before a restore.
 * `--store-dir` replaces the configured object store with a local directory.
 */
const storeOf = (opts: { storeDir?: string }) =>
  opts.storeDir ? { objectStore: createLocalObjectStore({ dir: opts.storeDir }) } : {};

export async function runBackup(opts: { storeDir?: string; list?: boolean }) {
  await withParts(async (parts) => {
    const store = await parts.objects();
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
    await parts.migrated();
    const manifest = await createSnapshot(
      {
        db: await parts.db(),
        store,
        signer: await parts.signer(),
        context: parts.context,
        encryption: await parts.encryption(),
      },
      { onTable: (name, rows) => process.stdout.write(`  ${name}: ${rows} rows\n`) },
    );
    const vectors = manifest.vectors.reduce((n, v) => n + v.count, 0);
    process.stdout.write(`  vectors: ${vectors}\n`);
    for (const h of manifest.audit.heads) {
      process.stdout.write(`  audit head ${h.divisionId}: seq ${h.seq} ${h.hash}\n`);
    }
    process.stdout.write(`snapshot ${manifest.id} written\n`);
  }, storeOf(opts));
}

export async function runRestore(snapshot: string, opts: { storeDir?: string; key?: string }) {
  await withParts(async (parts) => {
    const [db, store, index] = [await parts.db(), await parts.objects(), await parts.index()];
    const trustedKey = opts.key
      ? (JSON.parse(readFileSync(opts.key, 'utf8')) as Record<string, unknown>)
      : undefined;
    const encryption = await parts.encryption();
    const result = await restoreSnapshot({ db, store, index, encryption }, snapshot, {
      trustedKey,
      onStep: (s) => process.stdout.write(`${s}...\n`),
    });
    for (const t of result.tables) process.stdout.write(`  ${t.name}: ${t.rows} rows\n`);
    process.stdout.write(`  vectors: ${result.vectors} (${index.name})\n`);
    for (const h of result.auditHeads) {
      if (result.erasedDivisions.includes(h.divisionId)) continue;
      process.stdout.write(`  audit head ${h.divisionId}: seq ${h.seq} ${h.hash} verified\n`);
    }
    for (const d of result.erasedDivisions) {
      process.stdout.write(`  division ${d}: erased (its data key was destroyed); nothing of it restored\n`);
    }
    for (const key of result.missingArtifacts) {
      process.stdout.write(`warning: artifact bytes missing from the object store: ${key}\n`);
    }
    process.stdout.write(`restored snapshot ${result.snapshot}: checksums and audit chains verified\n`);
  }, storeOf(opts));
}

/** `index rebuild --from-snapshot`: loads the index from a snapshot's vectors (no PostgreSQL scan). */
export async function runIndexLoad(snapshot: string, opts: { storeDir?: string }) {
  await withParts(async (parts) => {
    const store = await parts.objects();
    const manifest = await readManifest(store, snapshot);
    const index = await parts.index();
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
  }, storeOf(opts));
}
