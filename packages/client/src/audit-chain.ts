/**
 * Checks a division's audit chain on the client's side, from the events and signed head the API
 * returns, the way `memory-layer audit verify` checks a bundle: seqs run 1, 2, 3… without gaps,
 * each prevHash is the previous event's hash, each hash matches the event's content (SHA-256 of its
 * RFC 8785 canonical JSON), the last event is the head, and the head's Ed25519 signature verifies.
 * The service is not asked whether its own chain is intact. Uses WebCrypto (Node 20, browsers in a
 * secure context).
 */

/** One link of a division's hash chain, as GET /v1/audit returns it. */
export interface AuditEvent {
  divisionId: string;
  seq: number;
  at: string;
  actor: string;
  action: string;
  resourceType: string;
  resourceId: string;
  manifestSignatureId: string | null;
  digest: string;
  prevHash: string;
  hash: string;
  /** The change itself, for events that keep it (reads). */
  detail?: unknown;
}

/** A division's latest event, signed by the service (GET /v1/audit/head). */
export interface AuditHead {
  divisionId: string;
  seq: number;
  hash: string;
  signedHead: {
    divisionId: string;
    seq: number;
    hash: string;
    signedAt: string;
    keyId: string;
    /** Compact JWS, alg EdDSA. */
    jws: string;
  } | null;
  /** The service's Ed25519 public key (JWK). */
  publicKey: { kty: string; crv: string; x: string; [k: string]: unknown };
}

export type ChainCheck =
  | { ok: true; events: number; keyId: string | undefined }
  | { ok: false; events: number; seq?: number; keyId?: string; reason: string };

export const GENESIS_HASH = '0'.repeat(64);
const EVENT_HASH_VERSION = 1;
const encoder = new TextEncoder();

/** RFC 8785 canonical JSON for the values audit records hold (strings, numbers, null, objects, arrays). */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('non-finite number');
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

async function sha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text))));
}

/** The hash an event must carry: every field but `hash` and `detail`, with the hash version. */
export function eventHash(e: AuditEvent): Promise<string> {
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

/** The chain's links and its end against the head; the first broken link otherwise. */
export async function verifyChain(
  events: AuditEvent[],
  head: Pick<AuditHead, 'seq' | 'hash'>,
): Promise<ChainCheck> {
  let prev = GENESIS_HASH;
  const n = events.length;
  for (const [index, e] of events.entries()) {
    const expected = index + 1;
    if (e.seq !== expected) {
      return {
        ok: false,
        events: n,
        seq: e.seq,
        reason: `found where seq ${expected} was expected: an event is missing, duplicated or out of order`,
      };
    }
    if (e.prevHash !== prev) {
      const reason =
        expected === 1
          ? 'prevHash is not the genesis hash'
          : `prevHash does not match the hash of seq ${expected - 1}`;
      return { ok: false, events: n, seq: e.seq, reason };
    }
    if ((await eventHash(e)) !== e.hash) {
      return { ok: false, events: n, seq: e.seq, reason: 'hash does not match its content' };
    }
    prev = e.hash;
  }
  if (head.seq !== n) {
    return {
      ok: false,
      events: n,
      seq: head.seq,
      reason: `head is seq ${head.seq} but the chain ends at seq ${n}`,
    };
  }
  if (head.hash !== prev) {
    return { ok: false, events: n, seq: head.seq, reason: `head hash does not match the hash of seq ${n}` };
  }
  return { ok: true, events: n, keyId: undefined };
}

const b64urlBytes = (s: string) => {
  const b64 = s
    .replace(/-/g, '+')
    .replace(/_/g, '/')
    .padEnd(Math.ceil(s.length / 4) * 4, '=');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
};
const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');

/** RFC 7638 thumbprint of an Ed25519 public JWK: the key id the service signs with. */
export async function jwkThumbprint(jwk: AuditHead['publicKey']): Promise<string> {
  const digest = await crypto.subtle.digest(
    'SHA-256',
    encoder.encode(canonicalJson({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })),
  );
  return b64url(new Uint8Array(digest));
}

/**
 * Checks the head's compact JWS (EdDSA over the canonical JSON of divisionId, seq, hash and
 * signedAt) against `publicKey` — or against `trustedKeyId`, the key id you hold from elsewhere —
 * and that it signs exactly this head.
 */
export async function verifySignedHead(
  head: AuditHead,
  trustedKeyId?: string,
): Promise<{ ok: true; keyId: string } | { ok: false; keyId?: string; reason: string }> {
  const signed = head.signedHead;
  const publicKey = head.publicKey;
  if (publicKey?.kty !== 'OKP' || publicKey.crv !== 'Ed25519' || typeof publicKey.x !== 'string') {
    return { ok: false, reason: 'the public key is not an Ed25519 JWK' };
  }
  const keyId = await jwkThumbprint(publicKey);
  if (trustedKeyId && keyId !== trustedKeyId) {
    return { ok: false, keyId, reason: `signed by key ${keyId}, not the trusted key ${trustedKeyId}` };
  }
  const parts = typeof signed?.jws === 'string' ? signed.jws.split('.') : [];
  if (!signed || parts.length !== 3)
    return { ok: false, keyId, reason: 'the signed head is not a compact JWS' };
  const header = JSON.parse(new TextDecoder().decode(b64urlBytes(parts[0]))) as {
    alg?: string;
    kid?: string;
  };
  if (header.alg !== 'EdDSA' || header.kid !== keyId) {
    return { ok: false, keyId, reason: 'the JWS header names another algorithm or key' };
  }
  const payload = new TextDecoder().decode(b64urlBytes(parts[1]));
  const expected = canonicalJson({
    divisionId: head.divisionId,
    seq: head.seq,
    hash: head.hash,
    signedAt: signed.signedAt,
  });
  if (payload !== expected) return { ok: false, keyId, reason: 'the signature covers another head' };
  const key = await crypto.subtle.importKey(
    'jwk',
    { kty: 'OKP', crv: 'Ed25519', x: publicKey.x },
    { name: 'Ed25519' },
    false,
    ['verify'],
  );
  const ok = await crypto.subtle.verify(
    { name: 'Ed25519' },
    key,
    b64urlBytes(parts[2]),
    encoder.encode(`${parts[0]}.${parts[1]}`),
  );
  return ok ? { ok: true, keyId } : { ok: false, keyId, reason: 'bad signature' };
}
