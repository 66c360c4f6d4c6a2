import { describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { SCOPES } from '../../src/auth/caller.js';
import { parseIdentities } from '../../src/auth/identities.js';
import { httpStatusOf } from '../../src/http/problem.js';
import { AppError } from '../../src/platform/errors.js';

const identities = parseIdentities({
  services: {
    billing: { roles: ['writer'], divisions: ['default', 'sales'], manifestSignatureId: 'm-default' },
  },
});
const tokens = {
  async verify(token: string) {
    if (token !== 'good.token.sig') throw new AppError('unauthenticated', 'invalid token: bad signature');
    return {
      kind: 'agent' as const,
      id: 'support-bot',
      agentId: 'support-bot',
      divisions: ['sales'],
      scopes: new Set(['memory:read' as const]),
    };
  },
};
/** What a verified TLS socket looks like to the authenticator. */
const tlsSocket = (cn: string, authorized = true) => ({
  authorized,
  getPeerCertificate: () => ({ subject: { CN: cn } }),
});
const plain = {};

const enforce = createAuthenticator({ mode: 'enforce', identities, tokens });
const dev = createAuthenticator({ mode: 'dev', identities, tokens });

async function status(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
    return [200, ''];
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return [httpStatusOf(err as AppError), (err as AppError).message];
  }
}

describe('authenticator', () => {
  it('maps a known client certificate to its service identity', async () => {
    const caller = await enforce({ headers: {}, socket: tlsSocket('billing') });
    expect(caller).toMatchObject({
      kind: 'service',
      id: 'billing',
      divisions: ['default', 'sales'],
      manifestSignatureId: 'm-default',
    });
    expect([...caller.scopes].sort()).toEqual(['memory:read', 'memory:write']);
    const withHeader = await enforce({
      headers: { 'x-manifest-signature-id': 'sig-42' },
      socket: tlsSocket('billing'),
    });
    expect(withHeader.manifestSignatureId).toBe('sig-42');
  });

  it('refuses unknown and unverified certificates, and no credentials at all', async () => {
    expect(await status(enforce({ headers: {}, socket: tlsSocket('intruder') }))).toEqual([
      401,
      'the client certificate is not a known service identity',
    ]);
    expect((await status(enforce({ headers: {}, socket: tlsSocket('billing', false) })))[0]).toBe(401);
    expect((await status(enforce({ headers: {}, socket: plain })))[0]).toBe(401);
    const noIdentities = createAuthenticator({ mode: 'enforce' });
    expect((await status(noIdentities({ headers: {}, socket: tlsSocket('billing') })))[0]).toBe(401);
  });

  it('lets the token decide even over a client certificate', async () => {
    const caller = await enforce({
      headers: { authorization: 'Bearer good.token.sig', 'x-manifest-signature-id': 'from-header' },
      socket: tlsSocket('billing'),
    });
    expect(caller).toMatchObject({ kind: 'agent', id: 'support-bot', manifestSignatureId: 'from-header' });
    expect(
      await status(
        enforce({ headers: { authorization: 'Bearer bad.token.sig' }, socket: tlsSocket('billing') }),
      ),
    ).toEqual([401, 'invalid token: bad signature']);
  });

  it('refuses other schemes, malformed and oversized Authorization headers', async () => {
    for (const authorization of [
      'Basic YWxhZGRpbjpvcGVuc2VzYW1l',
      'Bearer',
      'Bearer a b',
      `Bearer ${'a'.repeat(9000)}`,
      'good.token.sig',
    ]) {
      const [code, message] = await status(enforce({ headers: { authorization }, socket: plain }));
      expect(code).toBe(401);
      expect(message).not.toContain('YWxhZGRpbjpvcGVuc2VzYW1l');
    }
    expect(
      (await status(enforce({ headers: { authorization: `Bearer ${'a'.repeat(9000)}` }, socket: plain })))[1],
    ).toMatch(/too large/);
    expect(
      (await status(enforce({ headers: { authorization: 'bearer good.token.sig' }, socket: plain })))[0],
    ).toBe(200);
    const noTokens = createAuthenticator({ mode: 'enforce', identities });
    expect(
      (await status(noTokens({ headers: { authorization: 'Bearer good.token.sig' }, socket: plain })))[0],
    ).toBe(401);
  });

  it('refuses a bad x-manifest-signature-id header', async () => {
    for (const value of ['x'.repeat(201), 'has space', 'tab\there', 'é', ['a', 'b']]) {
      const [code] = await status(
        enforce({ headers: { 'x-manifest-signature-id': value }, socket: tlsSocket('billing') }),
      );
      expect(code).toBe(400);
    }
    // A stranger learns nothing about headers: 401 first.
    expect(
      (await status(enforce({ headers: { 'x-manifest-signature-id': 'bad value' }, socket: plain })))[0],
    ).toBe(401);
  });

  it("keeps a token's signed msid claim over the header", async () => {
    const signed = createAuthenticator({
      mode: 'enforce',
      tokens: { verify: async (t) => ({ ...(await tokens.verify(t)), manifestSignatureId: 'from-claim' }) },
    });
    const caller = await signed({
      headers: { authorization: 'Bearer good.token.sig', 'x-manifest-signature-id': 'from-header' },
      socket: plain,
    });
    expect(caller.manifestSignatureId).toBe('from-claim');
  });

  it('in dev mode, lets anonymous calls in as dev but still checks presented credentials', async () => {
    const caller = await dev({ headers: {}, socket: plain });
    expect(caller).toMatchObject({ kind: 'dev', id: 'dev', divisions: '*' });
    expect([...caller.scopes].sort()).toEqual([...SCOPES].sort());
    expect(
      (await status(dev({ headers: { authorization: 'Bearer bad.token.sig' }, socket: plain })))[0],
    ).toBe(401);
    expect((await status(dev({ headers: {}, socket: tlsSocket('intruder') })))[0]).toBe(401);
    expect((await dev({ headers: {}, socket: tlsSocket('billing') })).kind).toBe('service');
  });
});
