import type { Queryable } from '../adapters/db/port.js';
import { type Access, accessSql, visibleSql } from '../memories/access.js';
import { type MemoryRow, visibleText } from '../memories/records.js';

/** A memory shown beside a search hit. */
export interface Neighbour {
  id: string;
  text: string;
  redacted: boolean;
  piiFlags: string[];
  agentId: string | null;
  sequence: number | null;
  occurredAt: string | null;
  createdAt: string;
}

type NeighbourRow = Pick<
  MemoryRow,
  | 'id'
  | 'division_id'
  | 'agent_id'
  | 'text'
  | 'redacted_text'
  | 'pii_flags'
  | 'sequence'
  | 'occurred_at'
  | 'created_at'
  | 'version'
  | 'vector_key'
> & { hit_id: string; side: 'before' | 'after' };

const toNeighbour = (r: NeighbourRow, piiRead: boolean): Neighbour => ({
  id: r.id,
  text: visibleText(r, piiRead),
  redacted: !piiRead && r.redacted_text !== null,
  piiFlags: r.pii_flags,
  agentId: r.agent_id,
  sequence: r.sequence,
  occurredAt: r.occurred_at ? new Date(r.occurred_at).toISOString() : null,
  createdAt: new Date(r.created_at).toISOString(),
});

/**
 * The memories around each hit in its session, in session order (sequence, then arrival), up to
 * `before` and `after` of them: only what the caller may see (its divisions, its agent's memories
 * for agent tokens), live, and not superseded unless asked. Hits without a session get none.
 * Returns, per hit id, the neighbours and their rows (for the audit of personal-data reads).
 */
export async function neighboursOf(
  db: Queryable,
  access: Access,
  hits: readonly MemoryRow[],
  opts: { before: number; after: number; includeSuperseded?: boolean },
): Promise<Map<string, { before: Neighbour[]; after: Neighbour[]; rows: MemoryRow[] }>> {
  const out = new Map<string, { before: Neighbour[]; after: Neighbour[]; rows: MemoryRow[] }>();
  const inSession = hits.filter((h) => h.session_id !== null && h.sequence !== null);
  if (inSession.length === 0) return out;
  const params: unknown[] = [
    inSession.map((h) => h.id),
    inSession.map((h) => h.division_id),
    inSession.map((h) => h.session_id),
    inSession.map((h) => h.sequence),
    inSession.map((h) => h.vector_key),
    opts.before,
    opts.after,
  ];
  const confine = `${visibleSql('n')} AND ${accessSql(access, params, 'n')}${opts.includeSuperseded ? '' : ' AND n.superseded_by IS NULL'}`;
  const columns = `n.id, n.division_id, n.agent_id, n.text, n.redacted_text, n.pii_flags, n.sequence,
    n.occurred_at, n.created_at, n.version, n.vector_key`;
  const side = (name: 'before' | 'after', cmp: '<' | '>', order: 'DESC' | 'ASC', limit: string) => `
    SELECT h.hit_id, '${name}' AS side, x.* FROM h, LATERAL (
      SELECT ${columns} FROM memory_nodes n
      WHERE n.division_id = h.division_id AND n.session_id = h.session_id
        AND (n.sequence, n.vector_key) ${cmp} (h.seq, h.vkey) AND ${confine}
      ORDER BY n.sequence ${order}, n.vector_key ${order}
      LIMIT ${limit}) x`;
  const res = await db.query<NeighbourRow>(
    `WITH h AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[])
         AS h(hit_id, division_id, session_id, seq, vkey))
     ${side('before', '<', 'DESC', '$6')}
     UNION ALL
     ${side('after', '>', 'ASC', '$7')}`,
    params,
  );
  for (const r of res.rows) {
    const entry = out.get(r.hit_id) ?? { before: [], after: [], rows: [] };
    entry[r.side].push(toNeighbour(r, access.piiRead));
    entry.rows.push(r as unknown as MemoryRow);
    out.set(r.hit_id, entry);
  }
  // "before" came nearest first: show every side in session order.
  for (const entry of out.values()) {
    const order = (a: Neighbour, b: Neighbour) => (a.sequence ?? 0) - (b.sequence ?? 0);
    entry.before.sort(order);
    entry.after.sort(order);
  }
  return out;
}
