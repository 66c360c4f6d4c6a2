import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { kekFingerprint } from '../adapters/keys/directory.js';
import type { KeyStore } from '../adapters/keys/port.js';
import type { ReencryptionRun } from '../encryption/key-rotation.js';
import type { Parts } from '../parts.js';
import { AppError } from '../platform/errors.js';
import { withParts } from './with-parts.js';

/**
 * `memory-layer keys …` verbs for the encryption keys (the audit signing key's are in keys.ts):
 * new-kek, rewrap (KEK rotation), list, rotate-data, reencrypt, retire-data.
 */

const out = (line: string) => process.stdout.write(`${line}\n`);
const ACTOR = 'system:cli';
const POLL_MS = 200;

/** Domain errors as `code: message`, the stable code first (scripts match on it). */
async function coded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AppError) throw new Error(`${err.code}: ${err.message}`);
    throw err;
  }
}

async function keyStore(parts: Parts): Promise<KeyStore> {
  const keys = await parts.keys();
  if (!keys) throw new Error('key_unavailable: encryption is off: set KEY_DIR and KEK_FILE');
  return keys;
}

/**
 * `keys new-kek --out FILE`: a new random key-encryption key (64 hex characters, mode 0600),
 * never overwriting a file, and its fingerprint. Needs no settings and no database.
 */
export async function runKeysNewKek(opts: { out: string }) {
  const kek = randomBytes(32);
  await writeFile(opts.out, `${kek.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  out(`new key-encryption key: ${opts.out}`);
  out(`fingerprint: ${kekFingerprint(kek)}`);
}

/**
 * `keys rewrap`: the KEK rotation. KEK_FILE names the new KEK and KEK_PREVIOUS_FILE the old one;
 * every data key wrapped by the old KEK is re-wrapped by the new one (one file at a time,
 * atomically; run it again after an interruption), then every file is checked with the new KEK
 * alone. Objects are not touched.
 */
export async function runKeysRewrap() {
  await withParts(async (parts) => {
    if (!parts.config.KEK_PREVIOUS_FILE) {
      out('note: KEK_PREVIOUS_FILE is not set: only files already wrapped by KEK_FILE can be opened');
    }
    await parts.migrated();
    const result = await coded(async () => (await parts.keyRotation()).rewrapKek(ACTOR));
    out(
      `re-wrapped ${result.rewrapped.length} key file(s) with ${result.kekId}; ${result.alreadyCurrent.length} already wrapped by it; ${result.tombstones.length} tombstone(s) of erased divisions left as they are`,
    );
    out(`every key file opens with ${result.kekId} alone: remove KEK_PREVIOUS_FILE and restart`);
  });
}

/** `keys list [--json]`: each key's versions, the current one, and the artifacts under each. */
export async function runKeysList(opts: { json?: boolean }) {
  await withParts(async (parts) => {
    const keys = await keyStore(parts);
    const db = await parts.db();
    const usage = await db.query<{ division_id: string; key_version: number | null; n: number }>(
      'SELECT division_id, key_version, count(*)::int AS n FROM artifacts GROUP BY 1, 2 ORDER BY 1, 2',
    );
    const rows = (await keys.list()).map((k) => ({
      ...k,
      current: k.destroyedAt ? null : Math.max(0, ...k.versions),
      artifactsByVersion: Object.fromEntries(
        usage.rows
          .filter((u) => u.division_id === k.divisionId)
          .map((u) => [u.key_version === null ? 'clear' : String(u.key_version), u.n]),
      ),
    }));
    if (opts.json) {
      out(JSON.stringify({ kekId: keys.kekId, keys: rows }));
      return;
    }
    out(`key-encryption key: ${keys.kekId}`);
    for (const k of rows) {
      const artifacts = Object.entries(k.artifactsByVersion)
        .map(([v, n]) => `${n} under ${v === 'clear' ? 'no key' : `v${v}`}`)
        .join(', ');
      out(
        k.destroyedAt
          ? `${k.divisionId}\tdestroyed ${k.destroyedAt} (versions ${k.versions.join(', ') || 'none'})`
          : `${k.divisionId}\tversions ${k.versions.join(', ')}\tcurrent v${k.current}${artifacts ? `\tartifacts: ${artifacts}` : ''}`,
      );
    }
  });
}

/**
 * `keys rotate-data --division D`: a new data key version becomes current for new writes and a
 * re-encryption run is queued (a worker takes it; `keys reencrypt` runs it here and waits).
 */
export async function runKeysRotateData(opts: { division: string }) {
  await withParts(async (parts) => {
    await parts.migrated();
    const r = await coded(async () => (await parts.keyRotation()).rotateDataKey(ACTOR, opts.division));
    out(
      `${r.divisionId}: data key version ${r.previousVersion} -> ${r.version} (new writes use v${r.version})`,
    );
    out(`re-encryption run ${r.run.id} queued: \`memory-layer keys reencrypt --division ${r.divisionId}\``);
  });
}

const describe = (r: ReencryptionRun) =>
  `${r.divisionId}: run ${r.id} to v${r.targetVersion} ${r.status} ${r.done}/${r.total}${r.error ? ` (${r.error})` : ''}`;

/**
 * `keys reencrypt [--division D] [--status [--json]]`: runs the re-encryption of each division
 * (or one) whose objects are not all under its current key version, here, until done; the
 * runs are leased, so an interrupted command (or worker) is continued by the next. `--status`
 * shows the latest run of each division and changes nothing.
 */
export async function runKeysReencrypt(opts: { division?: string; status?: boolean; json?: boolean }) {
  await withParts(async (parts) => {
    await parts.migrated();
    const service = await parts.keyRotation();
    if (opts.status) {
      const runs = await coded(() => service.runs(opts.division));
      if (opts.json) out(JSON.stringify({ runs }));
      else if (runs.length === 0) out('no re-encryption runs');
      else for (const r of runs) out(describe(r));
      return;
    }
    await keyStore(parts);
    const db = await parts.db();
    const divisions = opts.division
      ? [opts.division]
      : (
          await db.query<{ id: string }>('SELECT id FROM divisions WHERE erased_at IS NULL ORDER BY id')
        ).rows.map((r) => r.id);
    const runs: ReencryptionRun[] = [];
    for (const divisionId of divisions) {
      const run = await coded(() => service.ensureRun(ACTOR, divisionId));
      if (run) runs.push(run);
      else if (opts.division) out(`${divisionId}: every artifact is under the current key version`);
    }
    if (runs.length === 0) {
      if (!opts.division) out("every artifact is under its division's current key version");
      return;
    }
    const runner = await parts.reencryptRunner();
    runner.start();
    try {
      for (const started of runs) {
        let run = started;
        while (run.status === 'queued' || run.status === 'running') {
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          run = (await service.run(run.id)) ?? run;
        }
        out(describe(run));
        if (run.status === 'failed') process.exitCode = 1;
      }
    } finally {
      await runner.stop();
    }
  });
}

/**
 * `keys retire-data --division D --version N`: removes an old data key version once no artifact
 * uses it. Snapshots and audit archives written under it become unreadable for the division.
 */
export async function runKeysRetireData(opts: { division: string; version: number }) {
  await withParts(async (parts) => {
    await parts.migrated();
    await coded(async () => (await parts.keyRotation()).retire(ACTOR, opts.division, opts.version));
    out(`${opts.division}: data key version ${opts.version} retired`);
  });
}
