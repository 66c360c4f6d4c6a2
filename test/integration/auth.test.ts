import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { actorOf, type Caller } from '../../src/auth/caller.js';
import { loadIdentities } from '../../src/auth/identities.js';
import { httpsOptions } from '../../src/auth/tls.js';
import { createTokenVerifier } from '../../src/auth/tokens.js';
import { loadConfig } from '../../src/config.js';
import { httpStatusOf } from '../../src/http/problem.js';
import { AppError } from '../../src/platform/errors.js';
import { tlsClient } from '../helpers/https-client.js';
import {
  createTestPki,
  mintToken,
  type PemPair,
  type SigningKey,
  signingKey,
  TEST_AUDIENCE,
  TEST_ISSUER,
  type TestPki,
  unsignedToken,
} from '../helpers/pki.js';

let pki: TestPki;
let server: FastifyInstance<https.Server>;
let port: number;
let kernel: SigningKey;
/** Requests that reached the onRequest hook: a refused handshake must never count. */
let hookCalls = 0;
/** TLS connections handed over to HTTP: a refused client certificate must never count. */
let secureConnections = 0;

/** GET /whoami over a real TLS connection of its own. */
const request = (who: { client?: PemPair; headers?: Record<string, string> } = {}) =>
  tlsClient({ port, ca: pki.ca.cert, timeoutMs: 10_000 })('GET', '/whoami', who);

/** The error a request fails with, asserting that no HTTP response ever came. */
async function refused(opts: Parameters<typeof request>[0]): Promise<NodeJS.ErrnoException> {
  try {
    const reply = await request(opts);
    throw new Error(`expected the handshake to fail, got HTTP ${reply.status}`);
  } catch (err) {
    if ((err as Error).message.startsWith('expected the handshake')) throw err;
    return err as NodeJS.ErrnoException;
  }
}

beforeAll(async () => {
  pki = createTestPki();
  kernel = await signingKey('EdDSA');
  const config = loadConfig({
    HOST: '127.0.0.1',
    TLS_CERT: pki.server.certFile,
    TLS_KEY: pki.server.keyFile,
    TLS_CLIENT_CA: pki.ca.certFile,
    IDENTITIES_FILE: pki.write(
      'identities.json',
      JSON.stringify({ services: { billing: { roles: ['writer'], divisions: ['default', 'sales'] } } }),
    ),
    JWT_PUBLIC_KEYS_FILE: pki.write('kernel.pem', kernel.publicPem),
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
  });
  const authenticate = createAuthenticator({
    mode: 'enforce',
    identities: loadIdentities(config.IDENTITIES_FILE!),
    tokens: await createTokenVerifier({
      publicKeysFile: config.JWT_PUBLIC_KEYS_FILE,
      issuer: config.JWT_ISSUER!,
      audience: config.JWT_AUDIENCE!,
      maxTtlSeconds: config.JWT_MAX_TTL_SECONDS,
    }),
  });

  const tlsOptions = httpsOptions(config);
  expect(tlsOptions).toMatchObject({ requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' });
  // `?? null`: Fastify's https-typed overload; null would mean plain HTTP.
  server = Fastify({ https: tlsOptions ?? null });
  server.decorateRequest('caller', undefined as unknown as Caller);
  server.addHook('onRequest', async (req) => {
    hookCalls += 1;
    (req as unknown as { caller: Caller }).caller = await authenticate({
      headers: req.headers,
      socket: req.raw.socket,
    });
  });
  server.setErrorHandler((err, _req, reply) => {
    const status = err instanceof AppError ? httpStatusOf(err) : 500;
    const code = err instanceof AppError ? err.code : 'internal_error';
    return reply
      .code(status)
      .type('application/problem+json')
      .send({ status, code, detail: (err as Error).message });
  });
  server.get('/whoami', async (req) => {
    const caller = (req as unknown as { caller: Caller }).caller;
    return { ...caller, actor: actorOf(caller), scopes: [...caller.scopes].sort() };
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  server.server.on('secureConnection', () => {
    secureConnections += 1;
  });
  port = (server.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await server?.close();
  pki?.cleanup();
});

describe('mTLS and tokens over a real HTTPS server', () => {
  it('maps the billing certificate to the billing service', async () => {
    const connections = secureConnections;
    const reply = await request({ client: pki.clients.billing });
    expect(reply.status).toBe(200);
    expect(secureConnections).toBe(connections + 1);
    expect(reply.body).toMatchObject({
      kind: 'service',
      id: 'billing',
      actor: 'service:billing',
      divisions: ['default', 'sales'],
      scopes: ['memory:read', 'memory:write'],
    });
  });

  it('fails the handshake without a client certificate: no HTTP response, no hook', async () => {
    const before = hookCalls;
    const connections = secureConnections;
    const err = await refused({});
    // TLS 1.3: the server's "certificate required" alert arrives after the client's Finished.
    expect(err.code).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    expect(hookCalls).toBe(before);
    expect(secureConnections).toBe(connections);
  });

  it('fails the handshake for a certificate from another CA, even with a known CN', async () => {
    const before = hookCalls;
    const connections = secureConnections;
    const err = await refused({ client: pki.rogueBilling });
    // Node finishes the handshake, finds the chain unverified and destroys the socket before
    // handing it to HTTP: the TLS 1.3 client sees the connection reset.
    expect(`${err.code} ${err.message}`).toMatch(/UNKNOWN_CA|ECONNRESET/);
    expect(hookCalls).toBe(before);
    expect(secureConnections).toBe(connections);
  });

  it('answers 401 for a valid certificate that is not a known identity', async () => {
    const reply = await request({ client: pki.clients.intruder });
    expect(reply.status).toBe(401);
    expect(reply.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(reply.body).toMatchObject({ code: 'unauthenticated' });
  });

  it('lets a bearer token name the agent over the connection certificate', async () => {
    const token = await mintToken(kernel, {
      claims: { division: 'sales', agent: 'support-bot', msid: 'mf-1' },
    });
    const reply = await request({
      client: pki.clients.billing,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      kind: 'agent',
      id: 'support-bot',
      actor: 'agent:support-bot',
      agentId: 'support-bot',
      divisions: ['sales'],
      manifestSignatureId: 'mf-1',
      scopes: ['memory:read', 'memory:write'],
    });
  });

  it('answers 401 for bad tokens even on a known certificate, without echoing them', async () => {
    for (const token of [
      await mintToken(kernel, { expiresIn: -120, issuedAt: -600 }),
      await mintToken(kernel, { audience: 'elsewhere' }),
      await mintToken(await signingKey('EdDSA')),
      unsignedToken({ sub: 'support-bot', division: 'sales', exp: 9_999_999_999 }),
    ]) {
      const reply = await request({
        client: pki.clients.billing,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(reply.status).toBe(401);
      expect(reply.body.code).toBe('unauthenticated');
      expect(JSON.stringify(reply.body)).not.toContain(token.split('.')[1]);
    }
    const basic = await request({
      client: pki.clients.billing,
      headers: { authorization: 'Basic Zm9vOmJhcg==' },
    });
    expect(basic.status).toBe(401);
  });
});

describe('httpsOptions', () => {
  const env = () => ({ TLS_CERT: pki.server.certFile, TLS_KEY: pki.server.keyFile });

  it('is undefined without TLS, and does not ask for client certificates without a CA', () => {
    expect(httpsOptions(loadConfig({}))).toBeUndefined();
    expect(httpsOptions(loadConfig(env()))).toMatchObject({ requestCert: false, minVersion: 'TLSv1.2' });
  });

  it('names the variable whose file is missing or wrong', () => {
    expect(() => httpsOptions(loadConfig({ ...env(), TLS_CERT: `${pki.dir}/nope.crt` }))).toThrow(
      /^TLS_CERT: cannot read .*nope\.crt \(ENOENT\)/,
    );
    expect(() => httpsOptions(loadConfig({ ...env(), TLS_KEY: pki.clients.billing.keyFile }))).toThrow(
      /^TLS_KEY: .* does not match/,
    );
    expect(() => httpsOptions(loadConfig({ ...env(), TLS_KEY: pki.server.certFile }))).toThrow(
      /^TLS_KEY: .* not a PEM private key/,
    );
    expect(() =>
      httpsOptions(
        loadConfig({ ...env(), TLS_CLIENT_CA: `${pki.dir}/missing-ca.crt`, IDENTITIES_FILE: '/dev/null' }),
      ),
    ).toThrow(/^TLS_CLIENT_CA: cannot read/);
  });
});
