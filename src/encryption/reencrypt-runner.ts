import { PassThrough, pipeline } from 'node:stream';
import type { Database } from '../adapters/db/port.js';
import type { ObjectStore } from '../adapters/objects/port.js';
import { VerifyingStream } from '../artifacts/verifying-stream.js';
import { ARTIFACT_REENCRYPT, artifactCreateChange } from '../audit/bundle-artifacts.js';
import type { AppendAudit } from '../audit/types.js';
import { lease } from '../platform/lease.js';
import { createLeasedRunner, type RunContext } from '../platform/leased-runs.js';
import type { Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import type { Encryption } from './encryption.js';
import { KEY_ACTIONS, type ReencryptionRow } from './key-rotation.js';

export interface ReencryptRunnerDeps {
  db: Database;
  store: ObjectStore;
  encryption: Encryption;
  appendAudit: AppendAudit;
  metrics: Metrics;
  logger: Logger;
  /** Artifacts per batch (one lease renewal and progress update each), and the pause between. */
  batchSize: number;
  pauseMs: number;
  pollMs: number;
  leaseMs: number;
  backoffMs: number;
  maxAttempts: number;
}

export const REENCRYPT_ACTOR = 'system:reencrypt';

interface ArtifactRow {
  id: string;
  object_key: string;
  object_version: string | null;
  sha256: string;
  size: number | string;
  content_type: string;
  key_version: number | null;
}

/** Where an artifact's bytes go when re-encrypted to `version`: a new key, the store never overwrites. */
export const reencryptedKey = (divisionId: string, artifactId: string, version: number) =>
  `artifacts/${divisionId}/${artifactId}.v${version}`;

/**
 * Re-encrypts divisions after their data key was rotated, one run at a time per process. A run
 * takes the division's artifacts whose object is under another key version (or in the clear),
 * and for each: streams the object through decryption (every segment authenticated) and the
 * recorded SHA-256 check into encryption with the current key, under a new object key; then
 * points the artifact row at it in one statement, and deletes the old object. Progress lives in
 * the rows (each names its key version), so a runner that dies mid-run leaves at most one
 * orphan object, removed when the next runner redoes that artifact. A lapsed lease lets another
 * runner (or the same command again) claim the run.
 */
export function createReencryptRunner(deps: ReencryptRunnerDeps) {
  const { db, store, encryption, metrics, logger } = deps;
  /** The context of the run this runner works on (one at a time; set by open()). */
  let ctx: RunContext;

  async function recount(run: ReencryptionRow) {
    const res = await db.query<{ total: number; done: number }>(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE key_version = $2)::int AS done
       FROM artifacts WHERE division_id = $1`,
      [run.division_id, run.target_version],
    );
    await ctx.whileOurs(db, 'total = $4, done = $5', [res.rows[0].total, res.rows[0].done]);
    return res.rows[0];
  }

  async function behindPage(run: ReencryptionRow): Promise<ArtifactRow[]> {
    const res = await db.query<ArtifactRow>(
      `SELECT id, object_key, object_version, sha256, size, content_type, key_version FROM artifacts
       WHERE division_id = $1 AND (key_version IS NULL OR key_version <> $2)
       ORDER BY id LIMIT $3`,
      [run.division_id, run.target_version, deps.batchSize],
    );
    return res.rows;
  }

  /** Re-encrypts one artifact's object; false when the artifact went away meanwhile. */
  async function move(run: ReencryptionRow, a: ArtifactRow): Promise<boolean> {
    const divisionId = run.division_id;
    const target = Number(run.target_version);
    const newKey = reencryptedKey(divisionId, a.id, target);
    // An earlier runner's orphan (stopped between its upload and the row's update).
    await store.delete(newKey);
    const sealing = await encryption.encryptor('artifact', divisionId, a.id);
    if (!sealing) throw new Error('encryption is off (no KEY_DIR): nothing can be re-encrypted');
    if (sealing.keyVersion !== target) {
      throw new Error(
        `the current data key of ${divisionId} is version ${sealing.keyVersion}, the run's target ${target}`,
      );
    }
    const object = await store.get(a.object_key);
    const plain =
      a.key_version === null ? new PassThrough() : encryption.decryptor('artifact', divisionId, a.id);
    const verifying = new VerifyingStream(a.id, { sha256: a.sha256, size: Number(a.size) });
    let failed: Error | null | undefined;
    pipeline(object.body, plain, verifying, sealing.stream, (err) => {
      failed = err;
    });
    const stored = await store.put(newKey, sealing.stream, { contentType: 'application/octet-stream' });
    if (failed) {
      await store.delete(newKey, stored.versionId);
      throw failed;
    }
    const updated = await db.transaction(async (tx) => {
      await ctx.whileOurs(tx, 'moved = moved + 1, done = done + 1');
      const res = await tx.query(
        `UPDATE artifacts SET object_key = $3, object_version = $4, key_version = $5
         WHERE id = $1 AND object_key = $2`,
        [a.id, a.object_key, newKey, stored.versionId ?? null, target],
      );
      if ((res.rowCount ?? 0) === 0) return false;
      // The artifact's facts with its new object, so that proof bundles still check it.
      await deps.appendAudit(tx, [
        {
          divisionId,
          actor: REENCRYPT_ACTOR,
          action: ARTIFACT_REENCRYPT,
          resourceType: 'artifact',
          resourceId: a.id,
          change: artifactCreateChange({
            sha256: a.sha256,
            size: Number(a.size),
            contentType: a.content_type,
            objectKey: newKey,
            versionId: stored.versionId ?? null,
          }),
        },
      ]);
      return true;
    });
    if (!updated) {
      await store.delete(newKey, stored.versionId);
      return false;
    }
    metrics.keyReencryptObjects.inc({ division: divisionId });
    // The old ciphertext (under the version being replaced) leaves the bucket.
    await store.delete(a.object_key, a.object_version ?? undefined).catch((err: unknown) => {
      logger.warn({ err, objectKey: a.object_key }, 're-encryption: could not delete the old object');
    });
    return true;
  }

  async function complete(run: ReencryptionRow, total: number) {
    await db.transaction(async (tx) => {
      await ctx.whileOurs(tx, `status = 'completed', total = $4, done = $4, finished_at = now()`, [total]);
      await tx.query(`UPDATE key_reencryptions SET ${lease.release} WHERE id = $1`, [run.id]);
      const moved = await tx.query<{ moved: number }>('SELECT moved FROM key_reencryptions WHERE id = $1', [
        run.id,
      ]);
      await deps.appendAudit(tx, [
        {
          divisionId: run.division_id,
          actor: REENCRYPT_ACTOR,
          action: KEY_ACTIONS.reencrypted,
          resourceType: 'key',
          resourceId: run.division_id,
          change: {
            runId: run.id,
            version: Number(run.target_version),
            artifacts: total,
            moved: moved.rows[0].moved,
          },
          keepChange: true,
        },
      ]);
    });
  }

  return createLeasedRunner<ReencryptionRow>({
    ...deps, // the throttle, lease and retry settings, logger and metrics
    table: 'key_reencryptions',
    what: 're-encryption',
    stage: 'reencrypt',
    // A process without KEY_DIR cannot re-encrypt: it leaves the runs to those that can.
    enabled: () => encryption.enabled,
    async open(run, context) {
      ctx = context;
      context.log = context.log.child({ version: run.target_version });
      let counted = false;
      return async () => {
        if (!counted) {
          await recount(run); // progress from where an earlier runner stopped
          counted = true;
        }
        const page = await behindPage(run);
        if (page.length > 0) {
          for (const a of page) {
            if (!context.running()) break;
            await move(run, a);
          }
          return 'progress';
        }
        const { total } = await recount(run);
        await complete(run, total);
        context.log.info({ artifacts: total }, 're-encryption complete');
        return 'done';
      };
    },
  });
}

export type ReencryptRunner = ReturnType<typeof createReencryptRunner>;
