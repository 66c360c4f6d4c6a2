import type { Queryable } from '../adapters/db/port.js';
import type { BundleArtifact } from './bundle.js';
import { digestOf } from './chain.js';
import type { BrokenLink } from './offline-checks.js';
import type { AuditEvent } from './types.js';

/** The audit action recording an upload; its resource is `artifact` / the artifact's id. */
export const ARTIFACT_CREATE = 'artifact.create';
/**
 * The audit action recording an artifact's bytes moved to a new object under its division's
 * current data key (a re-encryption after a key rotation): the same facts, the new object key.
 */
export const ARTIFACT_REENCRYPT = 'artifact.reencrypt';

/**
 * What an `artifact.create` event records (as its digest): the facts that identify the stored
 * bytes. A proof bundle's artifact entry must hash to the same digest.
 */
export function artifactCreateChange(a: {
  sha256: string;
  size: number;
  contentType: string;
  objectKey: string;
  versionId: string | null;
}) {
  return {
    sha256: a.sha256,
    size: a.size,
    contentType: a.contentType,
    objectKey: a.objectKey,
    versionId: a.versionId,
  };
}

/** An artifact in a proof bundle: `checksum` is the SHA-256 (hex) of its bytes. */
export interface ExportedArtifact extends BundleArtifact {
  checksum: string;
  size: number;
  contentType: string;
  objectKey: string;
  versionId: string | null;
  agentId: string | null;
  createdBy: string;
  createdAt: string;
  /** Memories linked to it (sorted). */
  memoryIds: string[];
}

interface Row {
  id: string;
  agent_id: string | null;
  sha256: string;
  size: number | string;
  content_type: string;
  object_key: string;
  object_version: string | null;
  created_by: string;
  created_at: Date | string;
  memory_ids: string[] | null;
}

/**
 * A division's artifacts for its proof bundle (`ProofBundle.artifacts`). Run it in the export's
 * snapshot transaction, with the events and memories.
 */
export async function bundleArtifacts(q: Queryable, divisionId: string): Promise<ExportedArtifact[]> {
  const res = await q.query<Row>(
    `SELECT a.id, a.agent_id, a.sha256, a.size, a.content_type, a.object_key, a.object_version,
       a.created_by, a.created_at,
       (SELECT array_agg(l.memory_id::text ORDER BY l.memory_id::text) FROM memory_artifacts l
        WHERE l.artifact_id = a.id) AS memory_ids
     FROM artifacts a WHERE a.division_id = $1 ORDER BY a.created_at, a.id`,
    [divisionId],
  );
  return res.rows.map((r) => ({
    id: r.id,
    checksum: r.sha256,
    size: Number(r.size),
    contentType: r.content_type,
    objectKey: r.object_key,
    versionId: r.object_version,
    agentId: r.agent_id,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    memoryIds: r.memory_ids ?? [],
  }));
}

/**
 * Offline check of a bundle's artifacts against its (already verified) audit chain: each artifact
 * has an `artifact.create` event whose digest is that of its checksum, size, content type, object
 * key and version, so an artifact's checksum cannot be changed without breaking the chain. After
 * a re-encryption the latest `artifact.reencrypt` event (same facts, the new object key) is the
 * one compared. To
 * check the bytes themselves, download the artifact and compare its SHA-256 with `checksum`.
 */
export function checkBundleArtifacts(
  artifacts: readonly unknown[],
  events: readonly AuditEvent[],
): { checks: string[]; broken: BrokenLink[] } {
  const created = new Map<string, AuditEvent>();
  for (const e of events) {
    // Events are in chain order: the latest of creation and re-encryptions wins.
    if ((e.action === ARTIFACT_CREATE || e.action === ARTIFACT_REENCRYPT) && e.resourceType === 'artifact')
      created.set(e.resourceId, e);
  }
  const broken: BrokenLink[] = [];
  for (const [index, raw] of artifacts.entries()) {
    const a = raw as Partial<ExportedArtifact> | null;
    const id = typeof a?.id === 'string' ? a.id : `#${index}`;
    if (
      !a ||
      typeof a.checksum !== 'string' ||
      !Number.isSafeInteger(a.size) ||
      typeof a.contentType !== 'string' ||
      typeof a.objectKey !== 'string'
    ) {
      broken.push({ what: `artifact ${id}`, index, reason: 'malformed' });
      continue;
    }
    const event = created.get(id);
    if (!event) {
      broken.push({ what: `artifact ${id}`, index, reason: `has no ${ARTIFACT_CREATE} audit event` });
      continue;
    }
    const digest = digestOf(
      artifactCreateChange({
        sha256: a.checksum,
        size: a.size as number,
        contentType: a.contentType,
        objectKey: a.objectKey,
        versionId: a.versionId ?? null,
      }),
    );
    if (digest !== event.digest) {
      broken.push({
        what: `artifact ${id}`,
        index,
        seq: event.seq,
        reason: `checksum, size, type or key differ from what audit event seq ${event.seq} recorded`,
      });
    }
  }
  const checks =
    broken.length === 0
      ? [`ok: artifacts: all ${artifacts.length} match their ${ARTIFACT_CREATE} audit events`]
      : broken.map((b) => `FAIL: ${b.what}: ${b.reason}`);
  return { checks, broken };
}
