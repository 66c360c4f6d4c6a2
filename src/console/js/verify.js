// Checks a division's audit chain in the browser, from the events and signed head the API
// returns, the same way `memory-layer audit verify` checks a bundle: seqs run 1, 2, 3… without
// gaps, each prevHash is the previous event's hash, each hash matches the event's content (SHA-256
// of its RFC 8785 canonical JSON), the last event is the head, and the head's Ed25519 signature
// verifies. The server is not asked whether its own chain is intact.

export const GENESIS_HASH = '0'.repeat(64);
const EVENT_HASH_VERSION = 1;

/** RFC 8785 canonical JSON for the values audit records hold (strings, numbers, null, objects, arrays). */
export function canonicalJson(value) {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('non-finite number');
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}

const encoder = new TextEncoder();
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** SHA-256 of UTF-8 text, as hex. WebCrypto where the page is a secure context, else plain JS. */
export async function sha256Hex(text) {
  const data = encoder.encode(text);
  if (globalThis.crypto?.subtle) return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
  return hex(sha256(data));
}

/** The hash an event must carry: every field but `hash`, with the hash version. */
export function eventHash(e) {
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

/** `{ok: true}` or the first broken link: `{ok: false, seq, reason}`. */
export async function verifyChain(events, head) {
  let prev = GENESIS_HASH;
  for (const [index, e] of events.entries()) {
    const expected = index + 1;
    if (e.seq !== expected) {
      return {
        ok: false,
        seq: e.seq,
        reason: `found where seq ${expected} was expected: an event is missing, duplicated or out of order`,
      };
    }
    if (e.prevHash !== prev) {
      return {
        ok: false,
        seq: e.seq,
        reason:
          expected === 1
            ? 'prevHash is not the genesis hash'
            : `prevHash does not match the hash of seq ${expected - 1}`,
      };
    }
    if ((await eventHash(e)) !== e.hash)
      return { ok: false, seq: e.seq, reason: 'hash does not match its content' };
    prev = e.hash;
  }
  if (head.seq !== events.length) {
    return {
      ok: false,
      seq: head.seq,
      reason: `head is seq ${head.seq} but the chain ends at seq ${events.length}`,
    };
  }
  if (head.hash !== prev)
    return { ok: false, seq: head.seq, reason: `head hash does not match the hash of seq ${events.length}` };
  return { ok: true };
}

const b64urlBytes = (s) => {
  const b64 = s
    .replace(/-/g, '+')
    .replace(/_/g, '/')
    .padEnd(Math.ceil(s.length / 4) * 4, '=');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
};
const b64url = (bytes) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');

/** RFC 7638 thumbprint of an Ed25519 public JWK: the key id the server signs with. */
export async function jwkThumbprint(jwk) {
  const digest = await crypto.subtle.digest(
    'SHA-256',
    encoder.encode(canonicalJson({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })),
  );
  return b64url(new Uint8Array(digest));
}

/**
 * Checks the head's compact JWS (EdDSA over the canonical JSON of divisionId, seq, hash and
 * signedAt) against `publicKey`, and that it signs exactly `head`. `{ok, keyId, reason?}`.
 */
export async function verifySignedHead(head, publicKey, trustedKeyId) {
  const signed = head.signedHead;
  if (!globalThis.crypto?.subtle)
    return {
      ok: false,
      reason: 'this page is not a secure context (use HTTPS or localhost): WebCrypto is unavailable',
    };
  const keyId = await jwkThumbprint(publicKey);
  if (trustedKeyId && keyId !== trustedKeyId)
    return { ok: false, keyId, reason: `signed by key ${keyId}, not the trusted key ${trustedKeyId}` };
  const parts = typeof signed?.jws === 'string' ? signed.jws.split('.') : [];
  if (parts.length !== 3) return { ok: false, keyId, reason: 'the signed head is not a compact JWS' };
  const header = JSON.parse(new TextDecoder().decode(b64urlBytes(parts[0])));
  if (header.alg !== 'EdDSA' || header.kid !== keyId)
    return { ok: false, keyId, reason: 'the JWS header names another algorithm or key' };
  const payload = new TextDecoder().decode(b64urlBytes(parts[1]));
  const expected = canonicalJson({
    divisionId: head.divisionId,
    seq: head.seq,
    hash: head.hash,
    signedAt: signed.signedAt,
  });
  if (payload !== expected) return { ok: false, keyId, reason: 'the signature covers another head' };
  let key;
  try {
    key = await crypto.subtle.importKey(
      'jwk',
      { kty: 'OKP', crv: 'Ed25519', x: publicKey.x },
      { name: 'Ed25519' },
      false,
      ['verify'],
    );
  } catch {
    return { ok: false, keyId, reason: 'this browser cannot verify Ed25519 signatures' };
  }
  const ok = await crypto.subtle.verify(
    { name: 'Ed25519' },
    key,
    b64urlBytes(parts[2]),
    encoder.encode(`${parts[0]}.${parts[1]}`),
  );
  return ok ? { ok: true, keyId } : { ok: false, keyId, reason: 'bad signature' };
}

// SHA-256 (FIPS 180-4) for pages served over plain HTTP from a non-loopback address, where
// browsers withhold WebCrypto.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

export function sha256(data) {
  const bitLen = data.length * 8;
  const padded = new Uint8Array(Math.ceil((data.length + 9) / 64) * 64);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 2 ** 32));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const hs = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = hs;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    const add = [a, b, c, d, e, f, g, hh];
    for (let i = 0; i < 8; i++) hs[i] = (hs[i] + add[i]) >>> 0;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, hs[i]);
  return out;
}
