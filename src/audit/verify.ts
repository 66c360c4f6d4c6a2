import { calculateJwkThumbprint, type JWK } from 'jose';
import { textChecksum } from '../memories/text.js';
import { BUNDLE_FORMAT, type BundleMemory, type ProofBundle } from './bundle.js';
import { checkBundleArtifacts } from './bundle-artifacts.js';
import { GENESIS_HASH, verifyChain } from './chain.js';
import { isHash, isObject, isSeq, malformedEventField } from './event-shape.js';
import { type SignedHead, verifySignedHead } from './signer.js';
import type { AuditEvent } from './types.js';

export interface BrokenLink {
  /** What is broken, e.g. `audit event seq 17`, `head`, `signed head`, `memory <id>`. */
  what: string;
  /** Position in `auditEvents` (or `memories`) when the link is one of them. */
  index?: number;
  seq?: number;
  reason: string;
}

export interface BundleVerification {
  ok: boolean;
  /** One line per check, in order: `ok: …`, `warn: …` or `FAIL: …`. */
  checks: string[];
  /** The first check that failed. */
  firstBroken?: BrokenLink;
}

/** The first field of a memory the checks rely on that is missing or of the wrong type. */
function malformedMemoryField(m: unknown): string | undefined {
  if (!isObject(m)) return '(not an object)';
  if (typeof m.id !== 'string') return 'id';
  if (typeof m.text !== 'string') return 'text';
  if (typeof m.redacted !== 'boolean') return 'redacted';
  if (typeof m.checksum !== 'string') return 'checksum';
  return undefined;
}

/**
 * Verifies a proof bundle offline (no database): its format; the audit chain (seqs 1…n without
 * gaps, each event linked to the previous one and hashed over its content); the head is the last
 * event; the head's signature verifies with the bundle's key — and, given `trustedKeys`, that key is
 * one of them (without pinning, whoever rewrites a bundle can re-sign it with a key of their own);
 * the signed head is this head; every unredacted memory text matches its checksum; and every
 * memory was created through an audited `memory.create`. Every check runs; `firstBroken` names the
 * first that failed.
 */
export async function verifyBundle(
  bundle: unknown,
  opts: { trustedKeys?: JWK[] } = {},
): Promise<BundleVerification> {
  const checks: string[] = [];
  let firstBroken: BrokenLink | undefined;
  const ok = (line: string) => checks.push(`ok: ${line}`);
  const warn = (line: string) => checks.push(`warn: ${line}`);
  const fail = (link: BrokenLink) => {
    checks.push(`FAIL: ${link.what}: ${link.reason}`);
    firstBroken ??= link;
  };
  const result = () => ({ ok: firstBroken === undefined, checks, ...(firstBroken ? { firstBroken } : {}) });

  // Format: nothing else can be checked without it.
  if (!isObject(bundle) || bundle.format !== BUNDLE_FORMAT) {
    fail({ what: 'format', reason: `not a ${BUNDLE_FORMAT} bundle` });
    return result();
  }
  const shape: [string, boolean][] = [
    ['divisionId', typeof bundle.divisionId === 'string'],
    ['memories', Array.isArray(bundle.memories)],
    ['artifacts', Array.isArray(bundle.artifacts)],
    ['auditEvents', Array.isArray(bundle.auditEvents)],
    ['head', isObject(bundle.head) && isSeq(bundle.head.seq) && isHash(bundle.head.hash)],
    ['signedHead', isObject(bundle.signedHead)],
    ['publicKey', isObject(bundle.publicKey)],
  ];
  const missing = shape.find(([, good]) => !good);
  if (missing) {
    fail({ what: 'format', reason: `${missing[0]} is missing or malformed` });
    return result();
  }
  const b = bundle as unknown as ProofBundle;
  ok(`format ${BUNDLE_FORMAT}, division ${b.divisionId}`);

  // The chain.
  const events = b.auditEvents as unknown[];
  let chainOk = true;
  for (const [index, e] of events.entries()) {
    const field = malformedEventField(e);
    const label = isObject(e) && isSeq(e.seq) ? `audit event seq ${e.seq}` : `audit event #${index}`;
    if (field !== undefined) {
      fail({ what: label, index, reason: `malformed (field ${field})` });
      chainOk = false;
      break;
    }
    if ((e as AuditEvent).divisionId !== b.divisionId) {
      fail({ what: label, index, reason: `belongs to division ${(e as AuditEvent).divisionId}` });
      chainOk = false;
      break;
    }
  }
  if (chainOk) {
    const chain = verifyChain(events as AuditEvent[]);
    if (chain.ok) ok(`audit chain: ${events.length} events, seq 1 to ${events.length}, every link intact`);
    else
      fail({
        what: `audit event seq ${chain.seq}`,
        index: chain.index,
        seq: chain.seq,
        reason: chain.reason,
      });
  }

  // The head is the chain's last link.
  const last = events[events.length - 1] as AuditEvent | undefined;
  const lastSeq = last?.seq ?? 0;
  const lastHash = last?.hash ?? GENESIS_HASH;
  if (b.head.seq !== lastSeq) {
    fail({
      what: 'head',
      seq: b.head.seq,
      reason: `is seq ${b.head.seq} but the last audit event is seq ${lastSeq}`,
    });
  } else if (b.head.hash !== lastHash) {
    fail({
      what: 'head',
      seq: b.head.seq,
      reason: `hash does not match the hash of audit event seq ${lastSeq}`,
    });
  } else {
    ok(`head seq ${b.head.seq} is the last audit event`);
  }

  // The head's signature, and who signed it.
  const signedHead = b.signedHead as SignedHead;
  const signature = await verifySignedHead(signedHead, b.publicKey);
  if (signature.ok) ok(`signed head: Ed25519 signature valid (key ${signedHead.keyId})`);
  else fail({ what: 'signed head', reason: signature.reason });

  let thumbprint: string | undefined;
  try {
    thumbprint = await calculateJwkThumbprint(b.publicKey);
  } catch {
    thumbprint = undefined;
  }
  if (opts.trustedKeys && opts.trustedKeys.length > 0) {
    const trusted = new Set<string>();
    for (const k of opts.trustedKeys) trusted.add(await calculateJwkThumbprint(k));
    if (thumbprint !== undefined && trusted.has(thumbprint)) ok(`signing key ${thumbprint} is trusted`);
    else
      fail({
        what: 'signing key',
        reason: `${thumbprint ?? '(invalid key)'} is not one of the trusted keys`,
      });
  } else {
    warn('signing key not pinned: pass a trusted public key to know who signed the head');
  }

  if (!isObject(signedHead) || signedHead.divisionId !== b.divisionId) {
    fail({
      what: 'signed head',
      reason: `is for division ${String(signedHead?.divisionId)}, not ${b.divisionId}`,
    });
  } else if (signedHead.seq !== b.head.seq || signedHead.hash !== b.head.hash) {
    fail({
      what: 'signed head',
      seq: signedHead.seq,
      reason: `signs seq ${signedHead.seq} (hash ${String(signedHead.hash).slice(0, 12)}…), not the bundle's head`,
    });
  } else {
    ok(`signed head is the bundle's head (seq ${b.head.seq})`);
  }

  // Memories: texts against checksums, and each one's audited creation.
  const created = new Set<string>();
  for (const e of events) {
    if (isObject(e) && e.action === 'memory.create' && e.resourceType === 'memory') {
      created.add(e.resourceId as string);
    }
  }
  let checked = 0;
  let notCheckable = 0;
  let memoriesOk = true;
  let createdOk = true;
  for (const [index, m] of (b.memories as unknown[]).entries()) {
    const field = malformedMemoryField(m);
    if (field !== undefined) {
      const id = isObject(m) && typeof m.id === 'string' ? m.id : `#${index}`;
      fail({ what: `memory ${id}`, index, reason: `malformed (field ${field})` });
      memoriesOk = false;
      continue;
    }
    const mem = m as BundleMemory;
    if (mem.text === '') notCheckable += 1;
    else if (textChecksum(mem.text) === mem.checksum) checked += 1;
    else if (mem.redacted) notCheckable += 1;
    else {
      fail({ what: `memory ${mem.id}`, index, reason: 'text does not match its checksum' });
      memoriesOk = false;
    }
    if (!created.has(mem.id)) {
      fail({ what: `memory ${mem.id}`, index, reason: 'has no memory.create audit event' });
      createdOk = false;
    }
  }
  if (memoriesOk) {
    ok(`memory texts: ${checked} match their checksums (${notCheckable} redacted or purged, not checkable)`);
  }
  if (createdOk) ok(`memories: all ${b.memories.length} have a memory.create audit event`);

  // Artifacts: each one's checksum is the one its artifact.create event recorded.
  if (b.artifacts.length > 0) {
    const artifacts = checkBundleArtifacts(b.artifacts, events as AuditEvent[]);
    checks.push(...artifacts.checks);
    firstBroken ??= artifacts.broken[0];
  }
  return result();
}

/** A one-line description of a broken link, e.g. `audit event seq 17: hash does not match its content`. */
export const describeBroken = (l: BrokenLink) => `${l.what}: ${l.reason}`;
