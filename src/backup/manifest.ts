import { z } from 'zod';
import type { ObjectStore } from '../adapters/objects/port.js';
import { AppError, ErrorCode, type ErrorKind } from '../platform/errors.js';

/** The snapshot format; a restore refuses any other. */
export const SNAPSHOT_FORMAT = 'memory-layer-snapshot/1';

/** Snapshot ids sort by time: `20261124T213000123Z-1a2b3c`. */
export const SNAPSHOT_ID = /^\d{8}T\d{9}Z-[0-9a-f]{6}$/;

export const snapshotPrefix = (id: string) => `snapshots/${id}`;
export const manifestKey = (id: string) => `${snapshotPrefix(id)}/manifest.json`;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const part = z.object({
  key: z.string().min(1),
  sha256,
  size: z.number().int().min(0),
  /**
   * Encrypted parts: whose data key (a division, or `_installation` for rows of no division) and
   * which version of it. Absent: the part is stored in the clear.
   */
  keyId: z.string().optional(),
  keyVersion: z.number().int().positive().optional(),
});

const manifestSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  id: z.string().regex(SNAPSHOT_ID),
  createdAt: z.string(),
  /** Where it was taken from: `pglite` or `postgres`. A snapshot restores into either. */
  source: z.enum(['pglite', 'postgres']),
  /** The schema the rows fit: restore migrates to exactly this, loads, then migrates onwards. */
  migrations: z.array(z.object({ version: z.number().int(), name: z.string() })),
  /** In load order: a table comes after every table its foreign keys reference. */
  tables: z.array(part.extend({ name: z.string(), columns: z.array(z.string()), rows: z.number().int() })),
  sequences: z.array(
    z.object({ table: z.string(), column: z.string(), lastValue: z.number().int(), isCalled: z.boolean() }),
  ),
  /** The vector snapshot: every stored vector with its node, key, division and model. */
  vectors: z.array(
    part.extend({
      model: z.string(),
      version: z.string(),
      dimensions: z.number().int().positive(),
      count: z.number().int(),
    }),
  ),
  audit: z.object({
    heads: z.array(z.object({ divisionId: z.string(), seq: z.number().int(), hash: sha256 })),
    /** The heads signed when the snapshot was taken, and the key that verifies them. */
    signedHeads: z.array(z.record(z.string(), z.unknown())),
    publicKey: z.record(z.string(), z.unknown()),
  }),
  /** Artifact bytes stay in the object store (never overwritten); restore checks they are there. */
  artifacts: z.object({ count: z.number().int(), totalBytes: z.number().int() }),
});

export type SnapshotManifest = z.infer<typeof manifestSchema>;
export type SnapshotPart = z.infer<typeof part>;

/** A problem with the snapshot named by the caller (the `snapshot` argument is at fault). */
export const snapshotError = (code: ErrorCode, message: string, kind?: ErrorKind) =>
  new AppError(code, message, [{ field: 'snapshot', message }], { kind });

/** Reads and validates a snapshot's manifest; a snapshot without one is incomplete. */
export async function readManifest(store: ObjectStore, id: string): Promise<SnapshotManifest> {
  if (!SNAPSHOT_ID.test(id)) {
    throw snapshotError(
      ErrorCode.invalidSnapshot,
      `"${id}" is not a snapshot id (e.g. 20261124T213000123Z-1a2b3c)`,
    );
  }
  if (!(await store.head(manifestKey(id)))) {
    throw snapshotError(
      ErrorCode.invalidSnapshot,
      `snapshot ${id} has no manifest (it does not exist, or its backup did not finish)`,
      'not_found',
    );
  }
  const { body } = await store.get(manifestKey(id));
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw snapshotError(ErrorCode.snapshotCorrupt, `the manifest of snapshot ${id} is not JSON`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw snapshotError(
      ErrorCode.snapshotCorrupt,
      `snapshot ${id} has an invalid manifest: ${issue.path.join('.')}: ${issue.message}`,
    );
  }
  if (parsed.data.id !== id) {
    throw snapshotError(ErrorCode.snapshotCorrupt, `the manifest of ${id} names snapshot ${parsed.data.id}`);
  }
  return parsed.data;
}

/** Snapshot ids in the store, oldest first (complete ones: those with a manifest). */
export async function listSnapshots(store: ObjectStore): Promise<string[]> {
  const objects = await store.list('snapshots/');
  return objects
    .map((o) => /^snapshots\/([^/]+)\/manifest\.json$/.exec(o.key)?.[1])
    .filter((id): id is string => id !== undefined && SNAPSHOT_ID.test(id))
    .sort();
}
