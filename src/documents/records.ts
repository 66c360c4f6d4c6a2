/** A document as the API shows it. */
export interface DocumentRecord {
  id: string;
  divisionId: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  title: string | null;
  contentType: string;
  sessionId: string;
  occurredAt: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  /** The original of the current version (null once deleted). */
  artifactId: string | null;
  size: number;
  sha256: string;
  version: number;
  /**
   * pending: waiting for a worker; splitting: being split; indexing: chunks written, not all
   * searchable yet; indexed: every chunk searchable; failed: the split failed (`error`), or a
   * chunk's indexing job was dead-lettered.
   */
  status: 'pending' | 'splitting' | 'indexing' | 'indexed' | 'failed';
  error: string | null;
  chunkCount: number;
  chunksIndexed: number;
  chunksFailed: number;
  /** The chunks' memory ids in order (GET of one document only). */
  chunks?: { position: number; memoryId: string; status: string }[];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface DocumentRow {
  id: string;
  seq: number | string;
  division_id: string;
  agent_id: string | null;
  namespace: string;
  kind: string;
  title: string | null;
  content_type: string;
  session_id: string;
  occurred_at: Date | string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  artifact_id: string | null;
  size: number | string;
  sha256: string;
  version: number;
  status: 'pending' | 'splitting' | 'split' | 'failed';
  error: string | null;
  created_by: string;
  updated_by: string;
  created_at: Date | string;
  updated_at: Date | string;
  deleted_at: Date | string | null;
  chunk_count: number | string;
  chunks_indexed: number | string;
  chunks_failed: number | string;
}

/** The row with its chunk counts (`d` is the documents alias). */
export const DOCUMENT_COLUMNS = `d.*,
  (SELECT count(*) FROM document_chunks c WHERE c.document_id = d.id) AS chunk_count,
  (SELECT count(*) FROM document_chunks c JOIN memory_nodes m ON m.id = c.memory_id
    WHERE c.document_id = d.id AND m.status = 'indexed') AS chunks_indexed,
  (SELECT count(*) FROM document_chunks c JOIN memory_nodes m ON m.id = c.memory_id
    WHERE c.document_id = d.id AND m.status = 'failed') AS chunks_failed`;

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

function statusOf(r: DocumentRow, count: number, indexed: number, failed: number): DocumentRecord['status'] {
  if (r.status !== 'split') return r.status;
  if (failed > 0) return 'failed';
  return indexed === count ? 'indexed' : 'indexing';
}

export function toDocument(r: DocumentRow): DocumentRecord {
  const count = Number(r.chunk_count);
  const indexed = Number(r.chunks_indexed);
  const failed = Number(r.chunks_failed);
  return {
    id: r.id,
    divisionId: r.division_id,
    agentId: r.agent_id,
    namespace: r.namespace,
    kind: r.kind,
    title: r.title,
    contentType: r.content_type,
    sessionId: r.session_id,
    occurredAt: iso(r.occurred_at),
    tags: r.tags,
    metadata: r.metadata,
    artifactId: r.artifact_id,
    size: Number(r.size),
    sha256: r.sha256,
    version: r.version,
    status: statusOf(r, count, indexed, failed),
    error: r.error ?? (failed > 0 ? `${failed} chunk(s) could not be indexed (see GET /v1/jobs/dead)` : null),
    chunkCount: count,
    chunksIndexed: indexed,
    chunksFailed: failed,
    createdBy: r.created_by,
    createdAt: iso(r.created_at) as string,
    updatedAt: iso(r.updated_at) as string,
  };
}
