import { textChecksum } from './text.js';

/** A memory as the API shows it. The vector itself is never returned; its model is. */
export interface MemoryRecord {
  id: string;
  divisionId: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  /** Redacted for callers without pii:read when the memory carries PII flags. */
  text: string;
  redacted: boolean;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  piiFlags: string[];
  status: 'pending' | 'indexed' | 'failed';
  embedding: { model: string; version: string; dimensions: number } | null;
  expiresAt: string | null;
  legalHold: boolean;
  /** The conversation, thread or document the memory belongs to. */
  sessionId: string | null;
  /** Its place in the session. */
  sequence: number | null;
  /** When the remembered thing happened (distinct from createdAt). */
  occurredAt: string | null;
  /** The newer memory that replaced this one (search skips it unless asked). */
  supersededBy: string | null;
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
  redacted_text: string | null;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  pii_flags: string[];
  status: MemoryRecord['status'];
  embedding_model: string | null;
  embedding_model_version: string | null;
  embedding_dim: number | null;
  expires_at: Date | null;
  legal_hold: boolean;
  session_id: string | null;
  sequence: number | null;
  occurred_at: Date | null;
  superseded_by: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

/** Every column but the vector and the tsvectors: what reads need. */
export const MEMORY_COLUMNS = `id, vector_key, division_id, agent_id, namespace, kind, text, redacted_text, checksum,
  tags, metadata, pii_flags, status, embedding_model, embedding_model_version, embedding_dim, expires_at, legal_hold,
  session_id, sequence, occurred_at, superseded_by, version, created_at, updated_at, deleted_at`;

/** The text a caller may see. */
export const visibleText = (r: Pick<MemoryRow, 'text' | 'redacted_text'>, piiRead: boolean) =>
  piiRead || r.redacted_text === null ? r.text : r.redacted_text;

/**
 * The checksum a caller may see: the original text's, or, when the caller sees the redacted text,
 * that text's. A digest of the original would let anyone holding the redacted text confirm a
 * guessed email or card number offline.
 */
export const visibleChecksum = (
  r: Pick<MemoryRow, 'checksum' | 'redacted_text'>,
  redacted: boolean,
): string => (redacted ? textChecksum(r.redacted_text as string) : r.checksum);

export function toRecord(r: MemoryRow, piiRead: boolean): MemoryRecord {
  const redacted = !piiRead && r.redacted_text !== null;
  return {
    id: r.id,
    divisionId: r.division_id,
    agentId: r.agent_id,
    namespace: r.namespace,
    kind: r.kind,
    text: visibleText(r, piiRead),
    redacted,
    checksum: visibleChecksum(r, redacted),
    tags: r.tags,
    metadata: r.metadata,
    piiFlags: r.pii_flags,
    status: r.status,
    embedding:
      r.embedding_model && r.embedding_dim
        ? { model: r.embedding_model, version: r.embedding_model_version ?? '', dimensions: r.embedding_dim }
        : null,
    expiresAt: r.expires_at ? new Date(r.expires_at).toISOString() : null,
    legalHold: r.legal_hold,
    sessionId: r.session_id,
    sequence: r.sequence,
    occurredAt: r.occurred_at ? new Date(r.occurred_at).toISOString() : null,
    supersededBy: r.superseded_by,
    version: r.version,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}
