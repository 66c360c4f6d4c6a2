import { type CopyType, copyText } from '../adapters/db/copy.js';
import type { Queryable } from '../adapters/db/port.js';
import type { EmbeddingModel } from '../adapters/embedders/port.js';
import { MEMORY_COLUMNS, type MemoryRow } from './records.js';

/** A row of `memory_nodes` as a write creates it. */
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
  /**
   * `pending` until the worker indexed it; `indexed` when the writer puts the vector in the index
   * itself right after the commit (imports of precomputed vectors outside sessions).
   */
  status: 'pending' | 'indexed';
  piiFlags: string[];
  redactedText: string | null;
  expiresAt: Date | null;
  sessionId: string | null;
  sequence: number | null;
  occurredAt: Date | null;
}

/**
 * Each column with the value it takes from a row, the cast its INSERT placeholder needs and how
 * COPY encodes it.
 */
const COLUMNS: readonly [
  column: string,
  value: (r: NewMemoryRow) => unknown,
  cast: string,
  copy: CopyType,
][] = [
  ['id', (r) => r.id, '', 'text'],
  ['division_id', (r) => r.divisionId, '', 'text'],
  ['agent_id', (r) => r.agentId, '', 'text'],
  ['namespace', (r) => r.namespace, '', 'text'],
  ['kind', (r) => r.kind, '', 'text'],
  ['text', (r) => r.text, '', 'text'],
  ['checksum', (r) => r.checksum, '', 'text'],
  ['tags', (r) => r.tags, '', 'text[]'],
  ['metadata', (r) => JSON.stringify(r.metadata), 'jsonb', 'jsonb'],
  ['embedding_model', (r) => r.vector?.model.name ?? null, '', 'text'],
  ['embedding_model_version', (r) => r.vector?.model.version ?? null, '', 'text'],
  ['embedding_dim', (r) => r.vector?.model.dimensions ?? null, '', 'int'],
  ['embedding', (r) => r.vector?.bytes ?? null, '', 'bytea'],
  ['status', (r) => r.status, '', 'text'],
  ['pii_flags', (r) => r.piiFlags, '', 'text[]'],
  ['redacted_text', (r) => r.redactedText, '', 'text'],
  ['expires_at', (r) => r.expiresAt?.toISOString() ?? null, 'timestamptz', 'timestamptz'],
  ['session_id', (r) => r.sessionId, '', 'text'],
  ['sequence', (r) => r.sequence, '', 'int'],
  ['occurred_at', (r) => r.occurredAt?.toISOString() ?? null, 'timestamptz', 'timestamptz'],
];

/**
 * Gives each row of a session without a sequence the next place in its session: after the
 * highest stored one, in the order the rows came. Concurrent writers to one session may pick the
 * same number; reads order ties by arrival.
 */
export async function assignSequences(
  tx: Queryable,
  divisionId: string,
  rows: { sessionId: string | null; sequence: number | null }[],
): Promise<void> {
  const sessions = [
    ...new Set(
      rows.filter((r) => r.sessionId !== null && r.sequence === null).map((r) => r.sessionId as string),
    ),
  ];
  if (sessions.length === 0) return;
  const res = await tx.query<{ session_id: string; next: number }>(
    `SELECT s AS session_id,
       coalesce((SELECT max(sequence) + 1 FROM memory_nodes
                 WHERE division_id = $1 AND session_id = s), 0)::int AS next
     FROM unnest($2::text[]) AS s`,
    [divisionId, sessions],
  );
  const next = new Map(res.rows.map((r) => [r.session_id, Number(r.next)]));
  // Explicit sequences in this batch count too: an item after them continues from them.
  for (const r of rows) {
    if (r.sessionId !== null && r.sequence !== null)
      next.set(r.sessionId, Math.max(next.get(r.sessionId) ?? 0, r.sequence + 1));
  }
  for (const r of rows) {
    if (r.sessionId === null || r.sequence !== null) continue;
    const n = next.get(r.sessionId) ?? 0;
    r.sequence = n;
    next.set(r.sessionId, n + 1);
  }
}

/** Inserts the rows in one statement; returns them as stored, in input order. */
export async function insertMemoryRows(tx: Queryable, rows: readonly NewMemoryRow[]): Promise<MemoryRow[]> {
  const params: unknown[] = [];
  const values = rows.map((row) => {
    const placeholders = COLUMNS.map(([, value, cast]) => {
      params.push(value(row));
      return cast !== '' ? `$${params.length}::${cast}` : `$${params.length}`;
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

/**
 * Loads the rows with COPY (bulk imports: thousands of rows, where one multi-row INSERT would
 * need tens of thousands of parameters), then reads them back; returns them in input order.
 */
export async function copyMemoryRows(tx: Queryable, rows: readonly NewMemoryRow[]): Promise<MemoryRow[]> {
  if (rows.length === 0) return [];
  await tx.copyFrom(
    'memory_nodes',
    COLUMNS.map(([column]) => column),
    copyText(
      COLUMNS.map(([, , , copy]) => copy),
      rows.map((row) => COLUMNS.map(([, value]) => value(row))),
    ),
  );
  const res = await tx.query<MemoryRow>(
    `SELECT ${MEMORY_COLUMNS} FROM memory_nodes WHERE id = ANY($1::uuid[])`,
    [rows.map((r) => r.id)],
  );
  const byId = new Map(res.rows.map((r) => [r.id, r]));
  return rows.map((r) => byId.get(r.id) as MemoryRow);
}
