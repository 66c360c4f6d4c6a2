import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../adapters/db/port.js';
import { canonicalJson } from '../audit/chain.js';
import { AppError, ErrorCode } from '../platform/errors.js';

export interface IdempotencyKey {
  divisionId: string;
  key: string;
  /** Hash of method, route and body: the same key with a different request is refused. */
  requestHash: string;
}

/**
 * The request's identity: method, route and the body as canonical JSON (RFC 8785, as the audit
 * trail hashes), so a retry whose keys come in another order is the same request.
 */
export function requestHash(method: string, route: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${route}\n${canonicalJson(body ?? null)}`)
    .digest('hex');
}

/**
 * Claims the key inside the caller's write transaction. Returns the first answer when the key
 * was already used for the same request, so the retry creates nothing. On a server, a concurrent
 * request with the same key waits on the primary key until the first one commits.
 */
export async function claimIdempotencyKey<T>(
  tx: Queryable,
  k: IdempotencyKey,
): Promise<{ response: T } | null> {
  const inserted = await tx.query(
    `INSERT INTO idempotency_keys (division_id, key, request_hash) VALUES ($1, $2, $3)
     ON CONFLICT (division_id, key) DO NOTHING`,
    [k.divisionId, k.key, k.requestHash],
  );
  if (inserted.rowCount > 0) return null;
  const prior = await storedAnswer<T>(tx, k);
  if (!prior) throw keyReused();
  return prior;
}

/**
 * The stored first answer for this key, read without claiming it: for writes with a costly step
 * before their transaction (a document's upload), so that a retry skips it. The claim inside the
 * transaction still decides races. A key used for another request is refused here already.
 */
export async function priorAnswer<T>(q: Queryable, k: IdempotencyKey): Promise<T | undefined> {
  return (await storedAnswer<T>(q, k))?.response ?? undefined;
}

/** The key's stored row, refused when it was used for another request; undefined when unused. */
async function storedAnswer<T>(q: Queryable, k: IdempotencyKey): Promise<{ response: T } | undefined> {
  const res = await q.query<{ request_hash: string; response: T }>(
    'SELECT request_hash, response FROM idempotency_keys WHERE division_id = $1 AND key = $2',
    [k.divisionId, k.key],
  );
  const row = res.rows[0];
  if (!row) return undefined;
  if (row.request_hash !== k.requestHash) throw keyReused();
  return { response: row.response };
}

const keyReused = () =>
  new AppError(
    ErrorCode.idempotencyKeyReused,
    'this Idempotency-Key was already used for a different request',
    [{ field: 'Idempotency-Key', message: 'reused with a different request' }],
  );

export async function storeIdempotentResponse(
  tx: Queryable,
  k: IdempotencyKey,
  response: unknown,
): Promise<void> {
  await tx.query('UPDATE idempotency_keys SET response = $3 WHERE division_id = $1 AND key = $2', [
    k.divisionId,
    k.key,
    JSON.stringify(response),
  ]);
}

/**
 * Runs a write in one transaction, honouring an Idempotency-Key when given: the stored first
 * answer is returned (`replayed`) instead of running the write again.
 */
export async function runIdempotent<T>(
  db: Database,
  key: IdempotencyKey | undefined,
  work: (tx: Queryable) => Promise<T>,
): Promise<{ result: T; replayed: boolean }> {
  return db.transaction(async (tx) => {
    if (key) {
      const prior = await claimIdempotencyKey<T>(tx, key);
      if (prior) return { result: prior.response, replayed: true };
    }
    const result = await work(tx);
    if (key) await storeIdempotentResponse(tx, key, result);
    return { result, replayed: false };
  });
}
