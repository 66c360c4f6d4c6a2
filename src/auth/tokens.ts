import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type CryptoKey,
  decodeProtectedHeader,
  errors,
  importJWK,
  importSPKI,
  type JWK,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import { AppError, ErrorCode } from '../platform/errors.js';
import { type Caller, SCOPES, type Scope } from './caller.js';

/** Only asymmetric signatures: `none`, HMAC (key confusion) and everything else are refused. */
export const TOKEN_ALGORITHMS = ['EdDSA', 'ES256'] as const;
type Alg = (typeof TOKEN_ALGORITHMS)[number];

export interface TokenVerifierOptions {
  /** One or more PEM `PUBLIC KEY` (SPKI) blocks, Ed25519 or P-256. */
  publicKeysFile?: string;
  /** A JWKS document (`{ "keys": [...] }`) of Ed25519 (OKP) or P-256 (EC) public keys. */
  jwksFile?: string;
  issuer: string;
  audience: string;
  /** Longest accepted lifetime, `exp - (iat ?? nbf ?? now)`. */
  maxTtlSeconds: number;
  /** Allowed clock skew for exp/nbf/iat; 30 s by default. */
  clockToleranceSeconds?: number;
}

export interface TokenVerifier {
  /** The caller a valid token names; anything else is a 401 `unauthenticated`. */
  verify(token: string): Promise<Caller>;
}

interface VerificationKey {
  alg: Alg;
  kid?: string;
  key: CryptoKey;
  /** Where the key came from, for start-up errors. */
  source: string;
}

const ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MANIFEST_ID = /^[\x21-\x7e]{1,200}$/;
const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/** A token rejection: 401 with a short reason that never echoes the token. */
export const unauthenticated = (reason: string) =>
  new AppError(ErrorCode.unauthenticated, `invalid token: ${reason}`);

function readKeyFile(file: string, variable: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

async function pemKeys(file: string): Promise<VerificationKey[]> {
  const text = readKeyFile(file, 'JWT_PUBLIC_KEYS_FILE');
  const keys: VerificationKey[] = [];
  let index = 0;
  for (const [pem, label] of text.matchAll(PEM_BLOCK)) {
    index += 1;
    const source = `JWT_PUBLIC_KEYS_FILE ${file}, key #${index}`;
    if (label !== 'PUBLIC KEY') throw new Error(`${source}: expected a PUBLIC KEY block, found ${label}`);
    let alg: Alg;
    try {
      const info = createPublicKey(pem);
      if (info.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
      else if (info.asymmetricKeyType === 'ec' && info.asymmetricKeyDetails?.namedCurve === 'prime256v1')
        alg = 'ES256';
      else
        throw new Error(
          `unsupported key type ${info.asymmetricKeyType}${info.asymmetricKeyDetails?.namedCurve ? ` (${info.asymmetricKeyDetails.namedCurve})` : ''}; use Ed25519 or P-256`,
        );
    } catch (err) {
      throw new Error(`${source}: ${(err as Error).message}`);
    }
    keys.push({ alg, key: await importSPKI(pem, alg), source });
  }
  if (keys.length === 0) throw new Error(`JWT_PUBLIC_KEYS_FILE ${file}: no PEM public key found`);
  return keys;
}

function jwkAlg(jwk: JWK): Alg | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && (jwk.alg === undefined || jwk.alg === 'EdDSA'))
    return 'EdDSA';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && (jwk.alg === undefined || jwk.alg === 'ES256'))
    return 'ES256';
  return undefined;
}

async function jwksKeys(file: string): Promise<VerificationKey[]> {
  const text = readKeyFile(file, 'JWKS_FILE');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`JWKS_FILE ${file}: not valid JSON (${(err as Error).message})`);
  }
  const list = (doc as { keys?: unknown })?.keys;
  if (!Array.isArray(list) || list.length === 0)
    throw new Error(`JWKS_FILE ${file}: expected { "keys": [ ... ] }`);
  const keys: VerificationKey[] = [];
  for (const [i, raw] of list.entries()) {
    const jwk = raw as JWK;
    const source = `JWKS_FILE ${file}, keys[${i}]${typeof jwk?.kid === 'string' ? ` (kid ${jwk.kid})` : ''}`;
    if (typeof jwk !== 'object' || jwk === null) throw new Error(`${source}: not a JWK object`);
    if ('d' in jwk) throw new Error(`${source}: contains a private key; publish only public keys`);
    if (jwk.use !== undefined && jwk.use !== 'sig') throw new Error(`${source}: "use" must be "sig"`);
    const alg = jwkAlg(jwk);
    if (!alg) throw new Error(`${source}: unsupported key; use Ed25519 (OKP, EdDSA) or P-256 (EC, ES256)`);
    let key: CryptoKey;
    try {
      key = (await importJWK({ ...jwk, alg }, alg)) as CryptoKey;
    } catch (err) {
      throw new Error(`${source}: ${(err as Error).message}`);
    }
    keys.push({ alg, key, source, ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}) });
  }
  return keys;
}

/** Maps jose's failures to short, stable reasons; nothing of the token is repeated back. */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `missing ${err.claim} claim`;
    switch (err.claim) {
      case 'nbf':
        return 'not yet valid';
      case 'iat':
        return 'issued in the future';
      case 'aud':
        return 'wrong audience';
      case 'iss':
        return 'wrong issuer';
      default:
        return `bad ${err.claim} claim`;
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'unsupported alg';
  return 'malformed';
}

const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);

function scopesOf(payload: JWTPayload): Set<Scope> {
  let names: string[];
  if (payload.scope !== undefined) {
    if (typeof payload.scope !== 'string')
      throw unauthenticated('scope claim must be a space-separated string');
    names = payload.scope.split(' ').filter((s) => s !== '');
  } else if (payload.scopes !== undefined) {
    if (!Array.isArray(payload.scopes) || !payload.scopes.every((s) => typeof s === 'string'))
      throw unauthenticated('scopes claim must be an array of strings');
    names = payload.scopes as string[];
  } else {
    names = [];
  }
  const scopes = new Set<Scope>();
  for (const name of names) {
    if (!isScope(name)) throw unauthenticated(`unknown scope ${JSON.stringify(name.slice(0, 64))}`);
    scopes.add(name);
  }
  return scopes;
}

function callerOf(payload: JWTPayload): Caller {
  const agent = payload.agent ?? payload.sub;
  if (typeof agent !== 'string' || agent === '') throw unauthenticated('missing agent (or sub) claim');
  if (!ID.test(agent)) throw unauthenticated('agent claim is not a valid agent id');
  const division = payload.division;
  if (division === undefined) throw unauthenticated('missing division claim');
  if (typeof division !== 'string' || !ID.test(division))
    throw unauthenticated('division claim is not a valid division id');
  const msid = payload.msid ?? payload.manifest_signature_id;
  if (msid !== undefined && (typeof msid !== 'string' || !MANIFEST_ID.test(msid)))
    throw unauthenticated('manifest signature id claim must be 1-200 visible ASCII characters');
  return {
    kind: 'agent',
    id: agent,
    divisions: Object.freeze([division]),
    agentId: agent,
    scopes: scopesOf(payload),
    ...(msid !== undefined ? { manifestSignatureId: msid } : {}),
    // Recorded with the reads it makes; bounded like a manifest id, ignored when it is not a string.
    ...(typeof payload.jti === 'string' && MANIFEST_ID.test(payload.jti) ? { tokenId: payload.jti } : {}),
  };
}

/**
 * Verifies the short-lived JWTs the platform kernel issues to agents. Keys are read once, at
 * start; a file that is missing, unreadable or holds an unsupported key stops the start.
 */
export async function createTokenVerifier(opts: TokenVerifierOptions): Promise<TokenVerifier> {
  const keys = [
    ...(opts.publicKeysFile ? await pemKeys(opts.publicKeysFile) : []),
    ...(opts.jwksFile ? await jwksKeys(opts.jwksFile) : []),
  ];
  if (keys.length === 0) throw new Error('token verification needs JWT_PUBLIC_KEYS_FILE or JWKS_FILE');
  const tolerance = opts.clockToleranceSeconds ?? 30;

  async function verify(token: string): Promise<Caller> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw unauthenticated('malformed');
    }
    if (typeof header.alg === 'string' && header.alg.toLowerCase() === 'none')
      throw unauthenticated('unsigned (alg none)');
    if (!(TOKEN_ALGORITHMS as readonly unknown[]).includes(header.alg))
      throw unauthenticated('unsupported alg');
    // Keys without a kid (PEM files) are candidates for any kid; a JWKS key with a kid only for its own.
    const candidates = keys.filter(
      (k) =>
        k.alg === header.alg && (header.kid === undefined || k.kid === undefined || k.kid === header.kid),
    );
    if (candidates.length === 0) throw unauthenticated('unknown signing key');

    let payload: JWTPayload | undefined;
    for (const candidate of candidates) {
      try {
        ({ payload } = await jwtVerify(token, candidate.key, {
          algorithms: [candidate.alg],
          issuer: opts.issuer,
          audience: opts.audience,
          requiredClaims: ['exp'],
          clockTolerance: tolerance,
        }));
        break;
      } catch (err) {
        if (err instanceof errors.JWSSignatureVerificationFailed) continue;
        throw unauthenticated(reasonOf(err));
      }
    }
    if (!payload) throw unauthenticated('bad signature');

    const now = Math.floor(Date.now() / 1000);
    const exp = payload.exp as number;
    if (payload.iat !== undefined && payload.iat > now + tolerance)
      throw unauthenticated('issued in the future');
    const start = payload.iat ?? payload.nbf ?? now;
    if (exp - start > opts.maxTtlSeconds)
      throw unauthenticated(`lifetime exceeds the maximum of ${opts.maxTtlSeconds} s`);
    return callerOf(payload);
  }

  return { verify };
}
