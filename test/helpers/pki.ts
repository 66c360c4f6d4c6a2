import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

/** A key and certificate written to disk (PEM), with the contents at hand too. */
export interface PemPair {
  keyFile: string;
  certFile: string;
  key: Buffer;
  cert: Buffer;
}

export interface TestPki {
  dir: string;
  ca: PemPair;
  /** A second, unrelated CA: its certificates must be refused. */
  otherCa: PemPair;
  /** For 127.0.0.1 and localhost (SAN), signed by `ca`. */
  server: PemPair;
  /** Client certificates signed by `ca`, CN = the key. */
  clients: { billing: PemPair; intruder: PemPair };
  /** CN `billing`, but signed by `otherCa`. */
  rogueBilling: PemPair;
  /** Writes a file in the temp dir and returns its path. */
  write(name: string, content: string): string;
  cleanup(): void;
}

const openssl = (dir: string, args: string[]) =>
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function loadPair(dir: string, name: string): PemPair {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  return { keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) };
}

function makeCa(dir: string, name: string, cn: string): PemPair {
  openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return loadPair(dir, name);
}

function makeLeaf(dir: string, name: string, cn: string, ca: string, extensions: string): PemPair {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, ['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    `0x${Buffer.from(name).toString('hex')}01`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
  return loadPair(dir, name);
}

const CLIENT_EXT =
  'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
const SERVER_EXT =
  'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' +
  'subjectAltName=IP:127.0.0.1,DNS:localhost\n';

/** A throw-away PKI made with the openssl CLI (P-256 keys, valid two days) in a temp dir. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ml-pki-'));
  const ca = makeCa(dir, 'ca', 'Memory Layer Test CA');
  const otherCa = makeCa(dir, 'other-ca', 'Some Other CA');
  return {
    dir,
    ca,
    otherCa,
    server: makeLeaf(dir, 'server', 'localhost', 'ca', SERVER_EXT),
    clients: {
      billing: makeLeaf(dir, 'billing', 'billing', 'ca', CLIENT_EXT),
      intruder: makeLeaf(dir, 'intruder', 'intruder', 'ca', CLIENT_EXT),
    },
    rogueBilling: makeLeaf(dir, 'rogue-billing', 'billing', 'other-ca', CLIENT_EXT),
    write(name, content) {
      const file = join(dir, name);
      writeFileSync(file, content);
      return file;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export type TokenAlg = 'EdDSA' | 'ES256';

export interface SigningKey {
  alg: TokenAlg;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** SPKI PEM of the public key. */
  publicPem: string;
}

/** A fresh signing key pair; the public half exported as PEM for JWT_PUBLIC_KEYS_FILE. */
export async function signingKey(alg: TokenAlg): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  return { alg, privateKey, publicKey, publicPem: await exportSPKI(publicKey) };
}

/** A JWKS document of the public keys, each with its kid. */
export async function jwksOf(keys: { key: SigningKey; kid: string }[]): Promise<string> {
  const jwks = await Promise.all(
    keys.map(async ({ key, kid }) => ({
      ...(await exportJWK(key.publicKey)),
      kid,
      alg: key.alg,
      use: 'sig',
    })),
  );
  return JSON.stringify({ keys: jwks });
}

export const TEST_ISSUER = 'https://kernel.test';
export const TEST_AUDIENCE = 'memory-layer';

export interface MintOptions {
  /** Extra or overriding claims; `undefined` removes a default claim. */
  claims?: Record<string, unknown>;
  issuer?: string;
  audience?: string;
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  /** Seconds from now for `iat`; null leaves it out. Default 0. */
  issuedAt?: number | null;
  /** Seconds from now for `nbf`; absent by default. */
  notBefore?: number;
  kid?: string;
}

/** A token as the platform kernel would issue it: agent `support-bot` of division `sales`. */
export async function mintToken(key: SigningKey, opts: MintOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: JWTPayload = {
    sub: 'support-bot',
    agent: 'support-bot',
    division: 'sales',
    scope: 'memory:read memory:write',
  };
  for (const [k, v] of Object.entries(opts.claims ?? {})) {
    if (v === undefined) delete claims[k];
    else claims[k] = v;
  }
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuer(opts.issuer ?? TEST_ISSUER)
    .setAudience(opts.audience ?? TEST_AUDIENCE)
    .setExpirationTime(now + (opts.expiresIn ?? 300));
  if (opts.issuedAt !== null) jwt.setIssuedAt(now + (opts.issuedAt ?? 0));
  if (opts.notBefore !== undefined) jwt.setNotBefore(now + opts.notBefore);
  return jwt.sign(key.privateKey);
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An unsigned `alg: none` token, crafted by hand (jose will not make one). */
export function unsignedToken(claims: Record<string, unknown>): string {
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
}
