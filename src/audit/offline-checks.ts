import { calculateJwkThumbprint, type JWK } from 'jose';
import { type SignedHead, verifySignedHead } from './signer.js';
import type { AuditEvent } from './types.js';

/**
 * What offline verification of proof bundles and audit archives shares: both read untrusted
 * files, so every field is checked before it is used, and both report a list of checks.
 */

export interface BrokenLink {
  /** What is broken, e.g. `audit event seq 17`, `head`, `signed head`, `memory <id>`. */
  what: string;
  /** Position of the broken item in its list (events, memories, lines), when it is one of them. */
  index?: number;
  seq?: number;
  reason: string;
}

/** A one-line description of a broken link, e.g. `audit event seq 17: hash does not match its content`. */
export const describeBroken = (l: BrokenLink) => `${l.what}: ${l.reason}`;

/** The lines of a verification, in order (`ok: …`, `warn: …`, `FAIL: …`), and what failed. */
export function createCheckList() {
  const checks: string[] = [];
  const broken: BrokenLink[] = [];
  return {
    checks,
    broken,
    ok: (line: string) => checks.push(`ok: ${line}`),
    warn: (line: string) => checks.push(`warn: ${line}`),
    fail: (link: BrokenLink) => {
      checks.push(`FAIL: ${describeBroken(link)}`);
      broken.push(link);
    },
    /** The outcome: ok when nothing failed; `firstBroken` names the first failure. */
    verdict: () => ({
      ok: broken.length === 0,
      checks,
      broken,
      ...(broken[0] ? { firstBroken: broken[0] } : {}),
    }),
  };
}

export type CheckList = ReturnType<typeof createCheckList>;

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
export const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
export const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The name of the first field whose check failed, given `[name, passed]` pairs in order. */
export const firstMalformed = (fields: [string, boolean][]): string | undefined =>
  fields.find(([, good]) => !good)?.[0];

export const EVENT_FIELDS: Record<Exclude<keyof AuditEvent, 'detail'>, (v: unknown) => boolean> = {
  divisionId: (v) => typeof v === 'string',
  seq: isSeq,
  at: (v) => typeof v === 'string',
  actor: (v) => typeof v === 'string',
  action: (v) => typeof v === 'string',
  resourceType: (v) => typeof v === 'string',
  resourceId: (v) => typeof v === 'string',
  manifestSignatureId: (v) => v === null || typeof v === 'string',
  digest: isHash,
  prevHash: isHash,
  hash: isHash,
};

/** The first field of an event that is missing or of the wrong type (unknown fields count too). */
export function malformedEventField(e: unknown): string | undefined {
  if (!isObject(e)) return '(not an object)';
  for (const [key, ok] of Object.entries(EVENT_FIELDS)) if (!ok(e[key])) return key;
  // `detail` is optional (access events keep their facts); the chain check holds it to the digest.
  return Object.keys(e).find((k) => !(k in EVENT_FIELDS) && k !== 'detail');
}

/** How a failure names an event: by its seq when it has one, else by `fallback` (its position). */
export const eventLabel = (e: unknown, fallback: string) =>
  isObject(e) && isSeq(e.seq) ? `audit event seq ${e.seq}` : fallback;

/** Why an event read from a division's file cannot be checked further, if it cannot. */
export function eventProblem(e: unknown, divisionId: string): string | undefined {
  const field = malformedEventField(e);
  if (field !== undefined) return `malformed (field ${field})`;
  const owner = (e as AuditEvent).divisionId;
  return owner === divisionId ? undefined : `belongs to division ${owner}`;
}

/** The head's signature verifies with the file's public key. */
export async function checkSignature(list: CheckList, signedHead: SignedHead, publicKey: JWK) {
  const signature = await verifySignedHead(signedHead, publicKey);
  if (signature.ok) list.ok(`signed head: Ed25519 signature valid (key ${signedHead.keyId})`);
  else list.fail({ what: 'signed head', reason: signature.reason });
}

/**
 * Given `trustedKeys`, the file's public key is one of them: without pinning, whoever rewrites a
 * file can re-sign it with a key of their own.
 */
export async function checkSigningKey(list: CheckList, publicKey: JWK, trustedKeys: JWK[] | undefined) {
  let thumbprint: string | undefined;
  try {
    thumbprint = await calculateJwkThumbprint(publicKey);
  } catch {
    thumbprint = undefined;
  }
  if (!trustedKeys || trustedKeys.length === 0) {
    list.warn('signing key not pinned: pass a trusted public key to know who signed the head');
    return;
  }
  const trusted = new Set<string>();
  for (const k of trustedKeys) trusted.add(await calculateJwkThumbprint(k));
  if (thumbprint !== undefined && trusted.has(thumbprint)) list.ok(`signing key ${thumbprint} is trusted`);
  else
    list.fail({
      what: 'signing key',
      reason: `${thumbprint ?? '(invalid key)'} is not one of the trusted keys`,
    });
}
