/** A memory as the API shows it. The vector itself is never returned; its model is. */
export interface MemoryRecord {
  id: string;
  divisionId: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  text: string;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  status: 'pending' | 'indexed' | 'failed';
  embedding: { model: string; version: string; dimensions: number } | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface MemoryRow {
  id: string;
  vector_key: number;
  division_id: string;
  agent_id: string | null;
  namespace: string;
  kind: string;
  text: string;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  status: MemoryRecord['status'];
  embedding_model: string | null;
  embedding_model_version: string | null;
  embedding_dim: number | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

/** Every column but the vector and the tsvector: what reads need. */
export const MEMORY_COLUMNS = `id, vector_key, division_id, agent_id, namespace, kind, text, checksum, tags, metadata,
  status, embedding_model, embedding_model_version, embedding_dim, version, created_at, updated_at, deleted_at`;

export function toRecord(r: MemoryRow): MemoryRecord {
  return {
    id: r.id,
    divisionId: r.division_id,
    agentId: r.agent_id,
    namespace: r.namespace,
    kind: r.kind,
    text: r.text,
    checksum: r.checksum,
    tags: r.tags,
    metadata: r.metadata,
    status: r.status,
    embedding:
      r.embedding_model && r.embedding_dim
        ? { model: r.embedding_model, version: r.embedding_model_version ?? '', dimensions: r.embedding_dim }
        : null,
    version: r.version,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}
