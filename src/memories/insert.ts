import type { Queryable } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';
import { MEMORY_COLUMNS, type MemoryRow } from './records.js';

/** A row of `memory_nodes` as a write creates it (status `pending`). */
export interface NewMemoryRow {
  id: string;
  divisionId: string;
  agentId: string | null;
  namespace: string;
  kind: string;
  text: string;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  /** A precomputed vector and the model it came from, or null (the worker embeds the text). */
  vector: { model: EmbeddingModel; bytes: Buffer } | null;
  piiFlags: string[];
  redactedText: string | null;
  expiresAt: Date | null;
}

/** Each column with the value it takes from a row and the cast its placeholder needs. */
const COLUMNS: readonly [column: string, value: (r: NewMemoryRow) => unknown, cast?: string][] = [
  ['id', (r) => r.id],
  ['division_id', (r) => r.divisionId],
  ['agent_id', (r) => r.agentId],
  ['namespace', (r) => r.namespace],
  ['kind', (r) => r.kind],
  ['text', (r) => r.text],
  ['checksum', (r) => r.checksum],
  ['tags', (r) => r.tags],
  ['metadata', (r) => JSON.stringify(r.metadata), 'jsonb'],
  ['embedding_model', (r) => r.vector?.model.name ?? null],
  ['embedding_model_version', (r) => r.vector?.model.version ?? null],
  ['embedding_dim', (r) => r.vector?.model.dimensions ?? null],
  ['embedding', (r) => r.vector?.bytes ?? null],
  ['status', () => 'pending'],
  ['pii_flags', (r) => r.piiFlags],
  ['redacted_text', (r) => r.redactedText],
  ['expires_at', (r) => r.expiresAt?.toISOString() ?? null, 'timestamptz'],
];

/** Inserts the rows in one statement; returns them as stored, in input order. */
export async function insertMemoryRows(tx: Queryable, rows: readonly NewMemoryRow[]): Promise<MemoryRow[]> {
  const params: unknown[] = [];
  const values = rows.map((row) => {
    const placeholders = COLUMNS.map(([, value, cast]) => {
      params.push(value(row));
      return cast ? `$${params.length}::${cast}` : `$${params.length}`;
    });
    return `(${placeholders.join(', ')})`;
  });
  const res = await tx.query<MemoryRow>(
    `INSERT INTO memory_nodes (${COLUMNS.map(([column]) => column).join(', ')})
     VALUES ${values.join(', ')}
     RETURNING ${MEMORY_COLUMNS}`,
    params,
  );
  const byId = new Map(res.rows.map((r) => [r.id, r]));
  return rows.map((r) => byId.get(r.id) as MemoryRow);
}
