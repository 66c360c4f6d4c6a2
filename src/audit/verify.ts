import type { JWK } from 'jose';
import { textChecksum } from '../memories/text.js';
import { BUNDLE_FORMAT, type BundleMemory, type ProofBundle } from './bundle.js';
import { checkBundleArtifacts } from './bundle-artifacts.js';
import { GENESIS_HASH, verifyChain } from './chain.js';
import {
  type BrokenLink,
  checkSignature,
  checkSigningKey,
  createCheckList,
  eventLabel,
  eventProblem,
  firstMalformed,
  isHash,
  isObject,
  isSeq,
} from './offline-checks.js';
import type { SignedHead } from './signer.js';
import type { AuditEvent } from './types.js';

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
  const list = createCheckList();
  const { ok, fail } = list;
  const result = (): BundleVerification => {
    const { broken, ...verdict } = list.verdict();
    return verdict;
  };

  // Format: nothing else can be checked without it.
  if (!isObject(bundle) || bundle.format !== BUNDLE_FORMAT) {
    fail({ what: 'format', reason: `not a ${BUNDLE_FORMAT} bundle` });
    return result();
  }
  const missing = firstMalformed([
    ['divisionId', typeof bundle.divisionId === 'string'],
    ['memories', Array.isArray(bundle.memories)],
    ['artifacts', Array.isArray(bundle.artifacts)],
    ['auditEvents', Array.isArray(bundle.auditEvents)],
    ['head', isObject(bundle.head) && isSeq(bundle.head.seq) && isHash(bundle.head.hash)],
    ['signedHead', isObject(bundle.signedHead)],
    ['publicKey', isObject(bundle.publicKey)],
  ]);
  if (missing) {
    fail({ what: 'format', reason: `${missing} is missing or malformed` });
    return result();
  }
  const b = bundle as unknown as ProofBundle;
  ok(`format ${BUNDLE_FORMAT}, division ${b.divisionId}`);

  // The chain.
  const events = b.auditEvents as unknown[];
  let chainOk = true;
  for (const [index, e] of events.entries()) {
    const problem = eventProblem(e, b.divisionId);
    if (problem !== undefined) {
      fail({ what: eventLabel(e, `audit event #${index}`), index, reason: problem });
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
  await checkSignature(list, signedHead, b.publicKey);
  await checkSigningKey(list, b.publicKey, opts.trustedKeys);

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
    list.checks.push(...artifacts.checks);
    list.broken.push(...artifacts.broken);
  }
  return result();
}
