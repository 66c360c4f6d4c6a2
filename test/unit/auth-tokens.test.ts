import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/tokens.js';
import { httpStatusOf } from '../../src/http/problem.js';
import { AppError } from '../../src/platform/errors.js';
import {
  jwksOf,
  mintToken,
  type SigningKey,
  signingKey,
  TEST_AUDIENCE,
  TEST_ISSUER,
  unsignedToken,
} from '../helpers/pki.js';

let dir: string;
let ed: SigningKey;
let es: SigningKey;
let stranger: SigningKey;
let verifier: TokenVerifier;

const options = (extra: { publicKeysFile?: string; jwksFile?: string }) => ({
  issuer: TEST_ISSUER,
  audience: TEST_AUDIENCE,
  maxTtlSeconds: 3600,
  ...extra,
});

/** The 401 reason a token gets, or 'accepted'. */
async function rejection(token: string, v: TokenVerifier = verifier): Promise<string> {
  try {
    await v.verify(token);
    return 'accepted';
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    const e = err as AppError;
    expect(httpStatusOf(e)).toBe(401);
    expect(e.code).toBe('unauthenticated');
    expect(e.message).not.toContain(token);
    return e.message;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ml-tokens-'));
  [ed, es, stranger] = await Promise.all([signingKey('EdDSA'), signingKey('ES256'), signingKey('EdDSA')]);
  const file = join(dir, 'keys.pem');
  writeFileSync(file, `# kernel keys\n${ed.publicPem}\n${es.publicPem}`);
  verifier = await createTokenVerifier(options({ publicKeysFile: file }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('token verifier', () => {
  it('accepts EdDSA and ES256 tokens and maps the claims to an agent caller', async () => {
    const caller = await verifier.verify(
      await mintToken(ed, { claims: { scope: 'memory:read pii:read', msid: 'manifest-7' } }),
    );
    expect(caller).toMatchObject({
      kind: 'agent',
      id: 'support-bot',
      agentId: 'support-bot',
      divisions: ['sales'],
      manifestSignatureId: 'manifest-7',
    });
    expect([...caller.scopes].sort()).toEqual(['memory:read', 'pii:read']);

    const es256 = await verifier.verify(
      await mintToken(es, {
        claims: { agent: undefined, sub: 'triage', scope: undefined, scopes: ['memory:write'] },
      }),
    );
    expect(es256).toMatchObject({ kind: 'agent', id: 'triage', agentId: 'triage', divisions: ['sales'] });
    expect([...es256.scopes]).toEqual(['memory:write']);
    expect(es256.manifestSignatureId).toBeUndefined();
  });

  it('takes manifest_signature_id as well as msid', async () => {
    const caller = await verifier.verify(await mintToken(ed, { claims: { manifest_signature_id: 'm-1' } }));
    expect(caller.manifestSignatureId).toBe('m-1');
  });

  it('refuses each kind of bad token with its own reason', async () => {
    const reasons = {
      expired: await rejection(await mintToken(ed, { issuedAt: -600, expiresIn: -120 })),
      notYet: await rejection(await mintToken(ed, { notBefore: 300, expiresIn: 600 })),
      audience: await rejection(await mintToken(ed, { audience: 'another-service' })),
      issuer: await rejection(await mintToken(ed, { issuer: 'https://evil.test' })),
      signature: await rejection(await mintToken(stranger)),
      none: await rejection(unsignedToken({ sub: 'x', division: 'sales', exp: 9_999_999_999 })),
      // Key confusion: HMAC with the public key as the secret.
      hs256: await rejection(
        await new SignJWT({ sub: 'support-bot', division: 'sales' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer(TEST_ISSUER)
          .setAudience(TEST_AUDIENCE)
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(ed.publicPem)),
      ),
      malformed: await rejection('not.a.jwt'),
    };
    expect(reasons).toEqual({
      expired: 'invalid token: expired',
      notYet: 'invalid token: not yet valid',
      audience: 'invalid token: wrong audience',
      issuer: 'invalid token: wrong issuer',
      signature: 'invalid token: bad signature',
      none: 'invalid token: unsigned (alg none)',
      hs256: 'invalid token: unsupported alg',
      malformed: 'invalid token: malformed',
    });
  });

  it('refuses a token without exp, or living longer than the maximum', async () => {
    const noExp = await new SignJWT({ division: 'sales', sub: 'a' })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .sign(ed.privateKey);
    expect(await rejection(noExp)).toBe('invalid token: missing exp claim');
    expect(await rejection(await mintToken(ed, { expiresIn: 2 * 3600 }))).toMatch(/lifetime exceeds/);
    // Without iat the lifetime counts from nbf, else from now.
    expect(await rejection(await mintToken(ed, { issuedAt: null, expiresIn: 7200 }))).toMatch(/lifetime/);
    expect(
      await rejection(await mintToken(ed, { issuedAt: null, notBefore: -7000, expiresIn: 600 })),
    ).toMatch(/lifetime/);
    expect(await rejection(await mintToken(ed, { issuedAt: 600, expiresIn: 900 }))).toBe(
      'invalid token: issued in the future',
    );
  });

  it('refuses unknown scopes and tokens without a division or agent', async () => {
    expect(await rejection(await mintToken(ed, { claims: { scope: 'memory:read root' } }))).toBe(
      'invalid token: unknown scope "root"',
    );
    expect(await rejection(await mintToken(ed, { claims: { scope: undefined, scopes: 'admin' } }))).toMatch(
      /scopes claim/,
    );
    expect(await rejection(await mintToken(ed, { claims: { division: undefined } }))).toBe(
      'invalid token: missing division claim',
    );
    expect(await rejection(await mintToken(ed, { claims: { division: ['a', 'b'] } }))).toMatch(
      /division claim/,
    );
    expect(await rejection(await mintToken(ed, { claims: { division: "x' OR 1=1" } }))).toMatch(/division/);
    expect(await rejection(await mintToken(ed, { claims: { agent: undefined, sub: undefined } }))).toMatch(
      /missing agent/,
    );
  });

  it('reads a JWKS file and picks keys by kid', async () => {
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(
      jwksFile,
      await jwksOf([
        { key: ed, kid: 'ed-1' },
        { key: es, kid: 'es-1' },
      ]),
    );
    const v = await createTokenVerifier(options({ jwksFile }));
    expect((await v.verify(await mintToken(ed, { kid: 'ed-1' }))).id).toBe('support-bot');
    expect((await v.verify(await mintToken(es))).id).toBe('support-bot');
    expect(await rejection(await mintToken(ed, { kid: 'es-1' }), v)).toBe(
      'invalid token: unknown signing key',
    );
    expect(await rejection(await mintToken(stranger, { kid: 'ed-1' }), v)).toBe(
      'invalid token: bad signature',
    );
  });

  it('tries every key of the same algorithm (key rotation)', async () => {
    const file = join(dir, 'rotation.pem');
    writeFileSync(file, `${stranger.publicPem}${ed.publicPem}`);
    const v = await createTokenVerifier(options({ publicKeysFile: file }));
    expect((await v.verify(await mintToken(ed))).id).toBe('support-bot');
    expect((await v.verify(await mintToken(stranger))).id).toBe('support-bot');
    // Only Ed25519 keys: an ES256 token has no key to check against.
    expect(await rejection(await mintToken(es), v)).toBe('invalid token: unknown signing key');
  });

  it('fails at start on missing files, unsupported keys and private keys', async () => {
    await expect(createTokenVerifier(options({ publicKeysFile: join(dir, 'nope.pem') }))).rejects.toThrow(
      /JWT_PUBLIC_KEYS_FILE: cannot read .*nope\.pem \(ENOENT\)/,
    );
    const empty = join(dir, 'empty.pem');
    writeFileSync(empty, 'nothing here');
    await expect(createTokenVerifier(options({ publicKeysFile: empty }))).rejects.toThrow(
      /no PEM public key/,
    );
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    });
    const rsaFile = join(dir, 'rsa.pem');
    writeFileSync(rsaFile, String(rsa));
    await expect(createTokenVerifier(options({ publicKeysFile: rsaFile }))).rejects.toThrow(
      /key #1: unsupported key type rsa/,
    );
    const privateJwks = join(dir, 'private.json');
    writeFileSync(privateJwks, JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AA', d: 'AA' }] }));
    await expect(createTokenVerifier(options({ jwksFile: privateJwks }))).rejects.toThrow(
      /keys\[0\].*private/,
    );
    await expect(createTokenVerifier(options({}))).rejects.toThrow(/JWT_PUBLIC_KEYS_FILE or JWKS_FILE/);
  });
});
