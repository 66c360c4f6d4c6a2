import type { Queryable } from '../adapters/db/port.js';
import type { ObjectStore } from '../adapters/objects/port.js';
import type { VectorIndex } from '../adapters/vector/port.js';
import {
  type ContextOptions,
  contextSql,
  indexVectorOf,
  type NeighbourVectors,
} from '../indexing/contextual-vectors.js';
import { base64ToVector, bytesToVector, vectorToBytes } from '../memories/vector-codec.js';
import { ErrorCode } from '../platform/errors.js';
import { putJsonLines, readJsonLines, verifyPart } from './jsonl-objects.js';
import { type SnapshotManifest, snapshotError, snapshotPrefix } from './manifest.js';

const PAGE = 1000;

/** One line of a vector part. `vector`: base64 of the float32 little-endian bytes. */
interface VectorLine {
  id: string;
  key: number;
  divisionId: string;
  vector: string;
}

/**
 * Writes the vector snapshot: for each model, every vector the index should hold (live, indexed
 * memories; blended with their session neighbours' as the index holds them), with node id, index
 * key and division. Read inside the backup's transaction so that it matches the rows exactly.
 */
export async function writeVectorSnapshot(
  tx: Queryable,
  store: ObjectStore,
  snapshotId: string,
  context: ContextOptions = {},
): Promise<SnapshotManifest['vectors']> {
  const models = await tx.query<{ model: string; version: string; dim: number }>(
    `SELECT DISTINCT embedding_model AS model, embedding_model_version AS version, embedding_dim AS dim
     FROM memory_nodes WHERE status = 'indexed' AND deleted_at IS NULL AND embedding IS NOT NULL
     ORDER BY 1, 2, 3`,
  );
  const parts: SnapshotManifest['vectors'] = [];
  const blend = contextSql('$2', '$3', context);
  for (const [i, m] of models.rows.entries()) {
    async function* pages() {
      let after = 0;
      for (;;) {
        const res = await tx.query<
          { id: string; vector_key: number; division_id: string; embedding: string } & NeighbourVectors
        >(
          `SELECT n.id, n.vector_key, n.division_id, encode(n.embedding, 'base64') AS embedding, ${blend.columns}
           FROM memory_nodes n ${blend.joins}
           WHERE n.vector_key > $1 AND n.status = 'indexed' AND n.deleted_at IS NULL AND n.embedding IS NOT NULL
             AND n.embedding_model = $2 AND n.embedding_model_version = $3 AND n.embedding_dim = $4
           ORDER BY n.vector_key LIMIT $5`,
          [after, m.model, m.version, m.dim, PAGE],
        );
        if (res.rows.length === 0) return;
        after = Number(res.rows[res.rows.length - 1].vector_key);
        yield res.rows.map((r) => {
          const own = base64ToVector(r.embedding);
          const indexed = indexVectorOf(own, r, context);
          return JSON.stringify({
            id: r.id,
            key: Number(r.vector_key),
            divisionId: r.division_id,
            // PostgreSQL breaks base64 into lines of 76 characters.
            vector:
              indexed === own ? r.embedding.replaceAll('\n', '') : vectorToBytes(indexed).toString('base64'),
          } satisfies VectorLine);
        });
      }
    }
    const part = await putJsonLines(store, `${snapshotPrefix(snapshotId)}/vectors/${i}.jsonl.gz`, pages());
    parts.push({
      key: part.key,
      sha256: part.sha256,
      size: part.size,
      model: m.model,
      version: m.version,
      dimensions: m.dim,
      count: part.rows,
    });
  }
  return parts;
}

/**
 * Rebuilds the vector index from a snapshot's vector parts, without PostgreSQL or the embedder:
 * each part is verified against the manifest first, then its space is cleared and loaded.
 * Returns how many vectors were loaded.
 */
export async function loadVectorSnapshot(
  index: VectorIndex,
  store: ObjectStore,
  manifest: SnapshotManifest,
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<number> {
  for (const part of manifest.vectors) await verifyPart(store, part);
  const total = manifest.vectors.reduce((n, p) => n + p.count, 0);
  let done = 0;
  for (const part of manifest.vectors) {
    const space = { name: part.model, version: part.version, dimensions: part.dimensions };
    await index.ensureSpace(space);
    let loaded = 0;
    await index.replace(space, async (write) => {
      for await (const page of readJsonLines(store, part)) {
        const entries = page.map((line) => {
          const v = JSON.parse(line) as VectorLine;
          const vector = bytesToVector(Buffer.from(v.vector, 'base64'));
          if (vector.length !== part.dimensions) {
            throw snapshotError(
              ErrorCode.snapshotCorrupt,
              `${part.key}: vector of ${v.id} has ${vector.length} dimensions, not ${part.dimensions}`,
            );
          }
          return { key: v.key, divisionId: v.divisionId, vector };
        });
        await write(entries);
        loaded += entries.length;
        done += entries.length;
        onProgress(done, total);
      }
      // Thrown inside: a part that does not hold what its manifest says replaces nothing.
      if (loaded !== part.count) {
        throw snapshotError(
          ErrorCode.snapshotCorrupt,
          `${part.key} holds ${loaded} vectors, not ${part.count}`,
        );
      }
    });
  }
  await index.flush();
  return done;
}
