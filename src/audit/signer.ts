import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CompactSign,
  type CryptoKey,
  calculateJwkThumbprint,
  compactVerify,
  decodeProtectedHeader,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type JWK,
} from 'jose';
import { type ChainHead, canonicalJson } from './chain.js';

/** A division's chain head, signed: the JWS payload is the canonical JSON of the first four fields. */
export interface SignedHead {
  divisionId: string;
  seq: number;
  hash: string;
  /** ISO 8601 with milliseconds. */
  signedAt: string;
  /** RFC 7638 thumbprint of the signing key's public JWK (also the JWS `kid`). */
  keyId: string;
  /** Compact JWS, alg EdDSA (Ed25519). */
  jws: string;
}

export interface AuditSigner {
  keyId: string;
  /** The public key (OKP, Ed25519) that verifies this signer's heads. */
  publicJwk: JWK;
  signHead(head: ChainHead & { divisionId: string }): Promise<SignedHead>;
}

const ALG = 'EdDSA';
export const GENERATED_KEY_FILE = join('keys', 'audit-signing-key.pem');

/** The exact bytes a head's signature covers. */
export function signedHeadPayload(h: Pick<SignedHead, 'divisionId' | 'seq' | 'hash' | 'signedAt'>): string {
  return canonicalJson({ divisionId: h.divisionId, seq: h.seq, hash: h.hash, signedAt: h.signedAt });
}

/**
 * Loads the Ed25519 signing key from `keyFile` (PKCS#8 PEM), or, without one, from
 * `<dataDir>/keys/audit-signing-key.pem`, generating that file (mode 0600) on the first start.
 * Replicas that share a database should share one key file (AUDIT_SIGNING_KEY_FILE).
 */
export async function createAuditSigner(opts: { keyFile?: string; dataDir: string }): Promise<AuditSigner> {
  const pem = opts.keyFile ? await readFile(opts.keyFile, 'utf8') : await loadOrGenerate(opts.dataDir);
  const where = opts.keyFile ?? join(opts.dataDir, GENERATED_KEY_FILE);
  let privateKey: CryptoKey;
  try {
    privateKey = await importPKCS8(pem, ALG, { extractable: true });
  } catch (err) {
    throw new Error(`${where}: not an Ed25519 private key in PKCS#8 PEM (${(err as Error).message})`);
  }
  const { kty, crv, x } = await exportJWK(privateKey);
  if (kty !== 'OKP' || crv !== 'Ed25519' || !x) throw new Error(`${where}: not an Ed25519 private key`);
  const publicJwk: JWK = { kty, crv, x };
  const keyId = await calculateJwkThumbprint(publicJwk);
  return {
    keyId,
    publicJwk,
    async signHead(head) {
      const fields = {
        divisionId: head.divisionId,
        seq: head.seq,
        hash: head.hash,
        signedAt: new Date().toISOString(),
      };
      const jws = await new CompactSign(new TextEncoder().encode(signedHeadPayload(fields)))
        .setProtectedHeader({ alg: ALG, kid: keyId })
        .sign(privateKey);
      return { ...fields, keyId, jws };
    },
  };
}

async function loadOrGenerate(dataDir: string): Promise<string> {
  const file = join(dataDir, GENERATED_KEY_FILE);
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const pem = await exportPKCS8(privateKey);
  // Written whole to a temporary file, then linked into place: a crash never leaves half a key,
  // and when two processes start at once the first link wins and both use its key.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp);
  }
  return readFile(file, 'utf8');
}

export type SignedHeadCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks a signed head offline against a public JWK: the key is Ed25519, the JWS verifies with it,
 * its `kid` and `keyId` are the key's thumbprint, and the signed payload is exactly the head's fields.
 */
export async function verifySignedHead(signed: SignedHead, publicJwk: JWK): Promise<SignedHeadCheck> {
  if (publicJwk?.kty !== 'OKP' || publicJwk.crv !== 'Ed25519' || typeof publicJwk.x !== 'string') {
    return { ok: false, reason: 'the public key is not an Ed25519 JWK' };
  }
  if (typeof signed?.jws !== 'string') return { ok: false, reason: 'no JWS' };
  const thumbprint = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: publicJwk.x });
  let payload: Uint8Array;
  try {
    const header = decodeProtectedHeader(signed.jws);
    if (header.kid !== thumbprint || signed.keyId !== thumbprint) {
      return { ok: false, reason: `signed by key ${String(header.kid)}, not by key ${thumbprint}` };
    }
    const key = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: publicJwk.x }, ALG);
    ({ payload } = await compactVerify(signed.jws, key, { algorithms: [ALG] }));
  } catch (err) {
    return { ok: false, reason: `signature does not verify (${(err as Error).message})` };
  }
  if (new TextDecoder().decode(payload) !== signedHeadPayload(signed)) {
    return { ok: false, reason: 'the signed payload does not match divisionId, seq, hash and signedAt' };
  }
  return { ok: true };
}

/** The fields a JWS over a head payload carries (no verification: for reading stored signatures). */
export function parseHeadJws(jws: string, keyId: string): SignedHead {
  const payload = JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as Omit<
    SignedHead,
    'keyId' | 'jws'
  >;
  return {
    divisionId: payload.divisionId,
    seq: payload.seq,
    hash: payload.hash,
    signedAt: payload.signedAt,
    keyId,
    jws,
  };
}
