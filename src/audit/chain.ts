import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AuditEvent } from './types.js';

/** The `prevHash` of a division's first event, and the hash of an empty chain's head. */
export const GENESIS_HASH = '0'.repeat(64);

/** Bumped if the hashed form of an event ever changes; part of what is hashed. */
export const EVENT_HASH_VERSION = 1;

export interface ChainHead {
  seq: number;
  hash: string;
}

/** RFC 8785 canonical JSON. `undefined` (which has no JSON form) is written as `null`. */
export function canonicalJson(value: unknown): string {
  return canonicalize(value === undefined ? null : value) ?? 'null';
}

export const sha256Hex = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** SHA-256 (hex) of the canonical JSON of a change: what an audit event keeps instead of the change. */
export function digestOf(change: unknown): string {
  return sha256Hex(canonicalJson(change));
}

/** SHA-256 (hex) of the canonical JSON of every field of an event but `hash`, with the hash version. */
export function eventHash(e: Omit<AuditEvent, 'hash'>): string {
  return sha256Hex(
    canonicalJson({
      v: EVENT_HASH_VERSION,
      divisionId: e.divisionId,
      seq: e.seq,
      at: e.at,
      actor: e.actor,
      action: e.action,
      resourceType: e.resourceType,
      resourceId: e.resourceId,
      manifestSignatureId: e.manifestSignatureId,
      digest: e.digest,
      prevHash: e.prevHash,
    }),
  );
}

export type ChainResult = { ok: true } | { ok: false; index: number; seq: number; reason: string };

/**
 * Checks one division's events, in order: seqs run 1, 2, 3… without gaps, each `prevHash` is the
 * previous event's hash (GENESIS_HASH for the first), each hash matches the event's content, and
 * (when given) the last event is the expected head. The first broken link is reported.
 */
export function verifyChain(
  events: readonly AuditEvent[],
  opts: {
    expectedHead?: ChainHead;
    /** The head the events continue from (a long chain checked page by page, an archive). */
    start?: ChainHead;
    /** What the first `prevHash` must be, as a failure names it (default: by its seq). */
    startName?: string;
  } = {},
): ChainResult {
  const startSeq = opts.start?.seq ?? 0;
  let prev = opts.start?.hash ?? GENESIS_HASH;
  for (const [index, e] of events.entries()) {
    const reason = linkProblem(e, startSeq + index + 1, prev, index === 0 ? opts.startName : undefined);
    if (reason !== undefined) return { ok: false, index, seq: e.seq, reason };
    prev = e.hash;
  }
  const head = opts.expectedHead;
  if (head) {
    const last: ChainHead = { seq: startSeq + events.length, hash: prev };
    if (head.seq !== last.seq || head.hash !== last.hash) {
      return {
        ok: false,
        index: events.length,
        seq: head.seq,
        reason:
          head.seq !== last.seq
            ? `head is seq ${head.seq} but the chain ends at seq ${last.seq}`
            : `head hash does not match the hash of seq ${last.seq}`,
      };
    }
  }
  return { ok: true };
}

/** Why `e` is not the event expected at `expectedSeq` after one hashed `prev`, if it is not. */
function linkProblem(
  e: AuditEvent,
  expectedSeq: number,
  prev: string,
  prevName?: string,
): string | undefined {
  if (e.seq !== expectedSeq) {
    return `found where seq ${expectedSeq} was expected: an event is missing, duplicated or out of order`;
  }
  if (e.prevHash !== prev) {
    if (prevName !== undefined) return `prevHash is not ${prevName}`;
    return expectedSeq === 1
      ? 'prevHash is not the genesis hash'
      : `prevHash does not match the hash of seq ${expectedSeq - 1}`;
  }
  if (eventHash(e) !== e.hash) return 'hash does not match its content';
  // Kept facts (access events) are covered by the digest the hash covers.
  if (e.detail !== undefined && digestOf(e.detail) !== e.digest) return 'detail does not match its digest';
  return undefined;
}
