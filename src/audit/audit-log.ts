import type { Queryable } from '../adapters/db/port.js';
import { type ChainHead, canonicalJson, digestOf, eventHash, GENESIS_HASH } from './chain.js';
import type { AppendAudit, AuditEvent, AuditEventInput } from './types.js';

/** Columns per inserted event; statements are split so that no one has more than 65535 parameters. */
const EVENT_COLUMNS = 12;
const EVENTS_PER_STATEMENT = 1000;

export interface AuditEventRow {
  division_id: string;
  seq: number | string;
  at: Date | string;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string;
  manifest_signature_id: string | null;
  digest: string;
  prev_hash: string;
  hash: string;
  detail?: unknown;
}

export const AUDIT_EVENT_COLUMNS =
  'division_id, seq, at, actor, action, resource_type, resource_id, manifest_signature_id, digest, prev_hash, hash, detail';

export function toAuditEvent(r: AuditEventRow): AuditEvent {
  return {
    divisionId: r.division_id,
    seq: Number(r.seq),
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    manifestSignatureId: r.manifest_signature_id,
    digest: r.digest,
    prevHash: r.prev_hash,
    hash: r.hash,
    ...(r.detail !== null && r.detail !== undefined ? { detail: r.detail } : {}),
  };
}

function checkInput(e: AuditEventInput) {
  for (const key of ['divisionId', 'actor', 'action', 'resourceType', 'resourceId'] as const) {
    if (typeof e[key] !== 'string' || e[key].length === 0) {
      throw new Error(`audit event: ${key} must be a non-empty string`);
    }
  }
}

/**
 * Appends events inside the caller's transaction, so that a change and its audit events commit or
 * roll back together. Per division, the `audit_heads` row is created if needed and locked
 * (`FOR UPDATE`): concurrent appends to one chain wait for each other, and seqs stay gap-free
 * because a rolled-back transaction also rolls back its head update. Divisions are locked in
 * sorted order so that two multi-division appends cannot deadlock. Returns events in input order.
 */
export const appendAudit: AppendAudit = async (tx, inputs) => {
  if (inputs.length === 0) return [];
  for (const e of inputs) checkInput(e);
  // Millisecond precision, which timestamptz (microseconds) keeps exactly.
  const at = new Date().toISOString();
  const out = new Array<AuditEvent>(inputs.length);
  const byDivision = new Map<string, number[]>();
  for (const [i, e] of inputs.entries()) {
    const list = byDivision.get(e.divisionId);
    if (list) list.push(i);
    else byDivision.set(e.divisionId, [i]);
  }
  for (const divisionId of [...byDivision.keys()].sort()) {
    await tx.query(
      'INSERT INTO audit_heads (division_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (division_id) DO NOTHING',
      [divisionId, GENESIS_HASH],
    );
    const locked = await tx.query<{ seq: number | string; hash: string }>(
      'SELECT seq, hash FROM audit_heads WHERE division_id = $1 FOR UPDATE',
      [divisionId],
    );
    let seq = Number(locked.rows[0].seq);
    let prevHash = locked.rows[0].hash;
    const events: AuditEvent[] = [];
    for (const i of byDivision.get(divisionId) ?? []) {
      const input = inputs[i];
      seq += 1;
      const unhashed: Omit<AuditEvent, 'hash'> = {
        divisionId,
        seq,
        at,
        actor: input.actor,
        action: input.action,
        resourceType: input.resourceType,
        resourceId: input.resourceId,
        manifestSignatureId: input.manifestSignatureId ?? null,
        digest: digestOf(input.change),
        prevHash,
      };
      const event: AuditEvent = {
        ...unhashed,
        hash: eventHash(unhashed),
        ...(input.keepChange ? { detail: JSON.parse(canonicalJson(input.change)) } : {}),
      };
      prevHash = event.hash;
      events.push(event);
      out[i] = event;
    }
    for (let start = 0; start < events.length; start += EVENTS_PER_STATEMENT) {
      await insertEvents(tx, events.slice(start, start + EVENTS_PER_STATEMENT));
    }
    await indexReads(
      tx,
      (byDivision.get(divisionId) ?? []).flatMap((i) =>
        (inputs[i].readMemoryIds ?? []).map((memoryId) => ({ memoryId, seq: out[i].seq })),
      ),
      divisionId,
    );
    await tx.query('UPDATE audit_heads SET seq = $2, hash = $3 WHERE division_id = $1', [
      divisionId,
      seq,
      prevHash,
    ]);
  }
  return out;
};

async function insertEvents(tx: Queryable, events: AuditEvent[]) {
  const params: unknown[] = [];
  const values = events.map((e, n) => {
    params.push(
      e.divisionId,
      e.seq,
      e.at,
      e.actor,
      e.action,
      e.resourceType,
      e.resourceId,
      e.manifestSignatureId,
      e.digest,
      e.prevHash,
      e.hash,
      e.detail === undefined ? null : JSON.stringify(e.detail),
    );
    const p = (k: number) => `$${n * EVENT_COLUMNS + k}`;
    return `(${p(1)}, ${p(2)}::bigint, ${p(3)}::timestamptz, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}, ${p(12)}::jsonb)`;
  });
  await tx.query(`INSERT INTO audit_events (${AUDIT_EVENT_COLUMNS}) VALUES ${values.join(', ')}`, params);
  const outboxParams: unknown[] = [];
  const outboxValues = events.map((e, n) => {
    outboxParams.push(e.divisionId, e.seq);
    return `($${2 * n + 1}, $${2 * n + 2}::bigint)`;
  });
  await tx.query(
    `INSERT INTO audit_outbox (division_id, seq) VALUES ${outboxValues.join(', ')}`,
    outboxParams,
  );
}

/** Rows of the "who saw this memory" index, one per memory an event read. */
async function indexReads(tx: Queryable, reads: { memoryId: string; seq: number }[], divisionId: string) {
  if (reads.length === 0) return;
  // Two arrays, one statement however many rows: no parameter limit to split for.
  await tx.query(
    `INSERT INTO audit_access (division_id, memory_id, seq)
     SELECT $1, m, s FROM unnest($2::text[], $3::bigint[]) AS r(m, s) ON CONFLICT DO NOTHING`,
    [divisionId, reads.map((r) => r.memoryId), reads.map((r) => r.seq)],
  );
}

export interface ListAuditOptions {
  /** Events with a seq greater than this (0: from the start). */
  afterSeq?: number;
  /** At most this many events (default 100). */
  limit?: number;
  /** Only events up to this seq (e.g. a head read earlier). */
  untilSeq?: number;
  /** Only the events of one resource (e.g. one memory's trail): both fields, or neither. */
  resource?: { type: string; id: string };
  /**
   * Only events about this memory: its changes (resource), and the reads that showed it (access
   * events listing it or the whole division, `pii.read`).
   */
  memoryId?: string;
  /** Only reads (`access`: access events and `pii.read`), or only the rest (`change`). */
  type?: 'access' | 'change';
}

/** Actions that record reads (access events and `pii.read`). */
const READ_ACTIONS = ['memory.access', 'pii.read'];

/** A division's events in seq order, one page at a time. */
export async function listAudit(
  q: Queryable,
  divisionId: string,
  opts: ListAuditOptions = {},
): Promise<AuditEvent[]> {
  const params: unknown[] = [divisionId, opts.afterSeq ?? 0, opts.untilSeq ?? null, opts.limit ?? 100];
  // A resource filter is spelled out (not `$5 IS NULL OR …`) so the resource index is used.
  let resource = '';
  if (opts.resource) {
    params.push(opts.resource.type, opts.resource.id);
    resource = 'AND resource_type = $5 AND resource_id = $6';
  }
  if (opts.memoryId !== undefined) {
    params.push(opts.memoryId);
    const m = `$${params.length}`;
    resource += ` AND ((resource_type = 'memory' AND resource_id = ${m}) OR seq IN (
      SELECT a.seq FROM audit_access a WHERE a.division_id = $1 AND a.memory_id IN (${m}, '*')))`;
  }
  if (opts.type !== undefined) {
    params.push(READ_ACTIONS);
    resource += ` AND ${opts.type === 'access' ? '' : 'NOT '}action = ANY($${params.length}::text[])`;
  }
  const res = await q.query<AuditEventRow>(
    `SELECT ${AUDIT_EVENT_COLUMNS} FROM audit_events
     WHERE division_id = $1 AND seq > $2 AND ($3::bigint IS NULL OR seq <= $3::bigint) ${resource}
     ORDER BY seq LIMIT $4`,
    params,
  );
  return res.rows.map(toAuditEvent);
}

/** The last event's seq and hash; seq 0 and GENESIS_HASH for a division without events. */
export async function auditHead(q: Queryable, divisionId: string): Promise<ChainHead> {
  const res = await q.query<{ seq: number | string; hash: string }>(
    'SELECT seq, hash FROM audit_heads WHERE division_id = $1',
    [divisionId],
  );
  const row = res.rows[0];
  return row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: GENESIS_HASH };
}
