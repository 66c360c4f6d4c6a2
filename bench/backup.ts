/**
 * `npm run bench:backup [-- --size 10000]`: how long a backup and a restore take, in this process,
 * on PGlite (and on the PostgreSQL server too when DATABASE_URL is set). Memories carry
 * precomputed vectors (no embedding), so the figures are the snapshot's own cost. Writes the
 * "Backup and restore" section of BENCHMARKS.md (below the notes marker, which `npm run bench`
 * keeps).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openPglite } from '../src/adapters/db/pglite.js';
import type { Database } from '../src/adapters/db/port.js';
import { openPostgres } from '../src/adapters/db/postgres.js';
import { createLocalObjectStore } from '../src/adapters/objects/local.js';
import { createApp } from '../src/app.js';
import { createSnapshot } from '../src/backup/backup.js';
import { restoreSnapshot } from '../src/backup/restore.js';
import { loadConfig } from '../src/config.js';
import { systemAccess } from '../src/memories/access.js';
import { createParts } from '../src/parts.js';
import { createLogger } from '../src/platform/logger.js';
import { log } from './harness.js';
import { DIMS, MODEL, makeDataset, namespaceOf } from './ingest.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const size = Number(arg('size', '10000'));
const out = arg('out', 'BENCHMARKS.md');
const SECTION_START = '<!-- backup-bench: start -->';
const SECTION_END = '<!-- backup-bench: end -->';

interface Row {
  database: string;
  memories: number;
  backupSec: number;
  restoreSec: number;
  snapshotBytes: number;
}

async function openDb(kind: 'pglite' | 'postgres', dir: string) {
  if (kind === 'pglite') {
    const db = await openPglite(join(dir, 'pglite'));
    return { db, drop: () => db.close() };
  }
  const url = process.env.DATABASE_URL as string;
  const schema = `bench_backup_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const db: Database = await openPostgres({ url, schema });
  return {
    db,
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

async function measure(kind: 'pglite' | 'postgres'): Promise<Row> {
  const root = mkdtempSync(join(tmpdir(), 'ml-bench-backup-'));
  const store = createLocalObjectStore({ dir: join(root, 'snapshots') });
  const source = await openDb(kind, join(root, 'a'));
  const target = await openDb(kind, join(root, 'b'));
  try {
    const config = loadConfig({ DATA_DIR: join(root, 'a'), LOG_LEVEL: 'warn', VECTOR_INDEX: 'usearch' });
    const app = await createApp(config, { worker: false, database: source.db, logger: createLogger('warn') });
    app.start();
    const d = makeDataset(size, { clusters: 200, noise: 0.03, seed: 1 });
    log(`${kind}: importing ${size} memories with vectors`);
    for (let from = 0; from < size; from += 1000) {
      const items = [];
      for (let i = from; i < Math.min(size, from + 1000); i++) {
        const vector = Array.from(d.vectors.subarray(i * DIMS, (i + 1) * DIMS));
        items.push({ text: d.texts[i], namespace: namespaceOf(i), model: MODEL, vector });
      }
      await app.memories.createBatch(systemAccess('bench'), 'default', items);
    }
    await app.worker.drain();
    let t0 = performance.now();
    const manifest = await createSnapshot({ db: app.db, store, signer: app.signer });
    const backupSec = (performance.now() - t0) / 1000;
    await app.close();
    const snapshotBytes = [...manifest.tables, ...manifest.vectors].reduce((n, p) => n + p.size, 0);
    log(`${kind}: backup ${backupSec.toFixed(1)} s, ${(snapshotBytes / 2 ** 20).toFixed(1)} MiB`);

    // The parts `memory-layer restore` uses: the target database, the object store, the index.
    const restoring = createParts(
      loadConfig({ DATA_DIR: join(root, 'b'), LOG_LEVEL: 'warn', VECTOR_INDEX: 'usearch' }),
      { database: target.db, objectStore: store, logger: createLogger('warn') },
    );
    const index = await restoring.index();
    t0 = performance.now();
    await restoreSnapshot({ db: await restoring.db(), store: await restoring.objects(), index }, manifest.id);
    const restoreSec = (performance.now() - t0) / 1000;
    await restoring.close();
    log(`${kind}: restore ${restoreSec.toFixed(1)} s`);
    return { database: kind, memories: size, backupSec, restoreSec, snapshotBytes };
  } finally {
    await source.drop();
    await target.drop();
    rmSync(root, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
rows.push(await measure('pglite'));
if (process.env.DATABASE_URL) rows.push(await measure('postgres'));

const table = [
  '| database | memories | backup | backup rate | restore (verified) | restore rate | snapshot size |',
  '|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.database} | ${r.memories.toLocaleString('en-US')} | ${r.backupSec.toFixed(1)} s | ${Math.round(r.memories / r.backupSec).toLocaleString('en-US')}/s | ${r.restoreSec.toFixed(1)} s | ${Math.round(r.memories / r.restoreSec).toLocaleString('en-US')}/s | ${(r.snapshotBytes / 2 ** 20).toFixed(1)} MiB |`,
  ),
].join('\n');
const section = `${SECTION_START}
## Backup and restore

Measured by \`npm run bench:backup -- --size ${size}\` (bench/backup.ts) on ${new Date().toISOString().slice(0, 10)}: memories with
512-dimension vectors and their audit events, usearch index, snapshot to a local directory. Restore
includes verifying every checksum and audit chain and loading the vector index. No target was set
by the issue; these are the figures to plan a restore window with.

${table}
${SECTION_END}`;

let text = readFileSync(out, 'utf8');
const start = text.indexOf(SECTION_START);
const end = text.indexOf(SECTION_END);
text =
  start >= 0 && end > start
    ? `${text.slice(0, start)}${section}${text.slice(end + SECTION_END.length)}`
    : `${text.trimEnd()}\n\n${section}\n`;
writeFileSync(out, text);
log(`wrote the backup section of ${out}`);
