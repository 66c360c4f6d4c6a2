import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authMode, loadConfig } from '../../src/config.js';
import { buildHttpServer } from '../../src/http/server.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import {
  clientCert,
  type OverTls,
  parseJson,
  type Reply,
  type Who as TlsCaller,
  tlsClient,
} from '../helpers/https-client.js';
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
import { expectProblem } from '../helpers/problem.js';
import { waitFor } from '../helpers/wait.js';

/**
 * End-to-end security: the whole service behind a real HTTPS server that requires client
 * certificates (mTLS) and accepts the kernel's delegated tokens. Every attack gets the right
 * 401/403/404 as problem+json, and the database is checked to show that nothing leaked or changed.
 */

interface Memory {
  id: string;
  divisionId: string;
  agentId: string | null;
  text: string;
  redacted: boolean;
  piiFlags: string[];
  tags: string[];
  metadata: Record<string, unknown>;
  version: number;
}

interface Hit {
  id: string;
  text: string;
}

/** Who calls: a client certificate (real TLS), a bearer token, or an in-process inject (no socket certificate). */
interface Who extends TlsCaller {
  inject?: boolean;
}

/** A problem without what differs by request (its id), with the ids it names replaced. */
function comparable(r: Reply, replace: Record<string, string> = {}) {
  const { requestId: _ignored, ...rest } = r.body as Record<string, unknown>;
  let text = JSON.stringify(rest);
  for (const [from, to] of Object.entries(replace)) text = text.split(from).join(to);
  return { status: r.status, contentType: r.headers['content-type'], body: JSON.parse(text) };
}

let pki: TestPki;
let kernel: SigningKey;
let certs: { billing: PemPair; auditor: PemPair; ops: PemPair; intruder: PemPair };
let env: Record<string, string>;

beforeAll(async () => {
  pki = createTestPki();
  kernel = await signingKey('EdDSA');
  certs = {
    billing: pki.clients.billing,
    intruder: pki.clients.intruder,
    auditor: clientCert(pki, 'auditor'),
    ops: clientCert(pki, 'ops'),
  };
  env = {
    HOST: '127.0.0.1',
    TLS_CERT: pki.server.certFile,
    TLS_KEY: pki.server.keyFile,
    TLS_CLIENT_CA: pki.ca.certFile,
    IDENTITIES_FILE: pki.write(
      'identities.json',
      JSON.stringify({
        services: {
          billing: { roles: ['writer', 'reader'], divisions: ['acme'] },
          auditor: { roles: ['auditor'], divisions: ['acme'] },
          ops: { roles: ['admin'], divisions: '*' },
        },
      }),
    ),
    JWT_PUBLIC_KEYS_FILE: pki.write('kernel.pem', kernel.publicPem),
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
  };
});

afterAll(() => {
  pki?.cleanup();
});

describe.each(backends)('enforced security over HTTPS on %s', (backend) => {
  let ta: TestApp;
  /** Agent `bot1` of division acme, relayed by the all-powerful `ops` certificate: the token must win. */
  const tokens: Record<'rw' | 'rwd' | 'pii' | 'hold' | 'audit' | 'auditPii' | 'none', string> = {
    rw: '',
    rwd: '',
    pii: '',
    hold: '',
    audit: '',
    auditPii: '',
    none: '',
  };
  let ops: Who;
  let billing: Who;
  let auditor: Who;
  const agent = (name: keyof typeof tokens): Who => ({ client: certs.ops, token: tokens[name] });

  let globexMem: Memory;
  let acmeOther: Memory;
  let piiMem: Memory;
  const PII_EMAIL = 'jane.roe@acme-mail.example';

  let overTls: OverTls;

  async function api(method: string, path: string, who: Who, body?: unknown): Promise<Reply> {
    if (!who.inject) return overTls(method, path, who, body);
    const res = await ta.http.inject({
      method: method as 'GET',
      url: path,
      headers: {
        ...(who.token !== undefined ? { authorization: `Bearer ${who.token}` } : {}),
        ...who.headers,
      },
      ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
    });
    return {
      status: res.statusCode,
      headers: res.headers as IncomingHttpHeaders,
      text: res.body,
      body: parseJson(res.body),
    };
  }

  /** Stores a memory and waits until it is searchable by meaning (also past the wait timeout). */
  async function create(who: Who, body: Record<string, unknown>): Promise<Memory> {
    const r = await api('POST', '/v1/memories?wait=true', who, body);
    expect(r.status, r.text).toBe(201);
    const id = (r.body as Memory).id;
    await waitFor(
      async () => {
        const res = await ta.t.db.query<{ status: string }>('SELECT status FROM memory_nodes WHERE id = $1', [
          id,
        ]);
        return res.rows[0]?.status !== 'pending';
      },
      { what: `memory ${id} to leave pending`, timeoutMs: 60_000, intervalMs: 50 },
    );
    return r.body as Memory;
  }

  async function search(who: Who, body: Record<string, unknown>): Promise<Hit[]> {
    const r = await api('POST', '/v1/search', who, body);
    expect(r.status, r.text).toBe(200);
    return r.body.hits as Hit[];
  }

  async function list(who: Who, query = ''): Promise<Memory[]> {
    const r = await api('GET', `/v1/memories?limit=500${query}`, who);
    expect(r.status, r.text).toBe(200);
    return r.body.items as Memory[];
  }

  /** Everything an attack could change: memories, holds and the head of every audit chain. */
  async function state(): Promise<string> {
    // Reads recorded so far join the chain first (a flush may chain them at any time); the
    // successful reads between two states are recorded (ACCESS_AUDIT=all), so the trail is
    // compared by its other events: every one of them, with its seq and hash.
    await ta.app.readAudit.flush();
    const memories = await ta.t.db.query(
      `SELECT id, division_id, agent_id, namespace, text, redacted_text, tags, metadata, pii_flags, version,
         legal_hold, expires_at, deleted_at, purged_at FROM memory_nodes ORDER BY id`,
    );
    const heads = await ta.t.db.query(
      "SELECT division_id, seq::text, hash FROM audit_events WHERE action <> 'memory.access' ORDER BY 1, seq",
    );
    const holds = await ta.t.db.query(
      'SELECT id::text, division_id, released_at FROM legal_holds ORDER BY 1',
    );
    const divisions = await ta.t.db.query('SELECT id FROM divisions ORDER BY id');
    const agents = await ta.t.db.query('SELECT division_id, id FROM agents ORDER BY 1, 2');
    return JSON.stringify([memories.rows, heads.rows, holds.rows, divisions.rows, agents.rows]);
  }

  async function row(id: string) {
    const res = await ta.t.db.query<{
      text: string;
      version: number;
      legal_hold: boolean;
      deleted_at: Date | null;
      purged_at: Date | null;
    }>('SELECT text, version, legal_hold, deleted_at, purged_at FROM memory_nodes WHERE id = $1', [id]);
    return res.rows[0];
  }

  const countWhere = async (where: string, params: unknown[] = []) =>
    (await ta.t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM memory_nodes WHERE ${where}`, params))
      .rows[0].n;

  const bot1 = (scope: string, claims: Record<string, unknown> = {}) =>
    mintToken(kernel, {
      claims: { sub: 'bot1', agent: 'bot1', division: 'acme', scope, ...claims },
      expiresIn: 1800,
    });

  beforeAll(async () => {
    ta = await startTestApp(backend, { env });
    await ta.http.listen({ port: 0, host: '127.0.0.1' });
    overTls = tlsClient({ port: (ta.http.server.address() as AddressInfo).port, ca: pki.ca.cert });

    ops = { client: certs.ops };
    billing = { client: certs.billing };
    auditor = { client: certs.auditor };
    tokens.rw = await bot1('memory:read memory:write');
    tokens.rwd = await bot1('memory:read memory:write memory:delete');
    tokens.pii = await bot1('memory:read pii:read');
    tokens.hold = await bot1('memory:read legal-hold:write');
    tokens.audit = await bot1('memory:read audit:read');
    tokens.auditPii = await bot1('memory:read audit:read pii:read');
    tokens.none = await bot1('');

    // The ops service (admin on every division) sets up two tenants and their agents.
    for (const id of ['acme', 'globex']) {
      const r = await api('POST', '/v1/divisions', ops, { id });
      expect(r.status, r.text).toBe(201);
    }
    for (const [division, id] of [
      ['acme', 'bot1'],
      ['acme', 'bot2'],
      ['globex', 'gbot'],
    ]) {
      const r = await api('POST', `/v1/divisions/${division}/agents`, ops, { id });
      expect(r.status, r.text).toBe(201);
    }
    globexMem = await create(ops, {
      divisionId: 'globex',
      agentId: 'gbot',
      text: 'Globex merger plans: acquire Initech before the autumn board meeting',
    });
    for (const text of ['Globex cafeteria menu for the week', 'Globex parking rules changed in May']) {
      await create(ops, { divisionId: 'globex', agentId: 'gbot', text });
    }
    acmeOther = await create(ops, {
      divisionId: 'acme',
      agentId: 'bot2',
      text: 'bot2 private note: the zebra roadmap ships next quarter',
    });
    await create(agent('rw'), { text: 'bot1 remembers that the customer prefers morning calls' });
    piiMem = await create(agent('rw'), {
      text: `Ask Jane Roe at ${PII_EMAIL} about the walrus invoice`,
    });
  });

  afterAll(async () => {
    await ta?.close();
  });

  it('answers 401 with WWW-Authenticate on every route when no credentials come, and runs no handler', async () => {
    const spec = (await ta.http.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, unknown>>;
    }>();
    const methods = new Set(['get', 'post', 'put', 'patch', 'delete']);
    const routes = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => methods.has(m))
        .map((m) => {
          const value = path.startsWith('/v1/divisions/')
            ? 'acme'
            : /^\/v1\/(legal-holds|jobs)\//.test(path)
              ? '1'
              : globexMem.id;
          return { method: m.toUpperCase(), url: path.replace(/\{[^}]+\}/g, value) };
        }),
    );
    expect(routes.length).toBeGreaterThanOrEqual(18);
    expect(routes).toContainEqual({ method: 'DELETE', url: `/v1/memories/${globexMem.id}` });
    const before = await state();
    for (const route of routes) {
      const r = await api(route.method, route.url, { inject: true });
      expectProblem(r, 401, 'unauthenticated');
    }
    // A token without any scope gets 403 everywhere: every route declares what it needs. `/mcp`
    // needs none of its own: each tool call is the REST request it mirrors, refused there
    // (mcp-http.test.ts: a token without the write scope gets a tool error and nothing written).
    for (const route of routes.filter((r) => r.url !== '/mcp')) {
      const r = await api(route.method, route.url, { inject: true, token: tokens.none });
      expectProblem(r, 403, 'forbidden');
    }
    expect(await state()).toBe(before);
  });

  it('refuses expired, mis-addressed, forged, unsigned and HMAC tokens with 401, even over an admin certificate', async () => {
    const claims = { sub: 'bot1', agent: 'bot1', division: 'acme', scope: 'memory:read memory:write' };
    const now = Math.floor(Date.now() / 1000);
    const valid = await mintToken(kernel, { claims });
    const [header, payload, signature] = valid.split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
        scope: 'admin',
        division: 'globex',
      }),
    ).toString('base64url');
    const bad: [string, string][] = [
      ['expired', await mintToken(kernel, { claims, expiresIn: -120, issuedAt: -600 })],
      ['wrong audience', await mintToken(kernel, { claims, audience: 'another-service' })],
      ['wrong issuer', await mintToken(kernel, { claims, issuer: 'https://evil.example' })],
      ['not yet valid', await mintToken(kernel, { claims, notBefore: 600 })],
      ['lives longer than allowed', await mintToken(kernel, { claims, expiresIn: 7200 })],
      ['signed by another Ed25519 key', await mintToken(await signingKey('EdDSA'), { claims })],
      ['signed by an unknown P-256 key', await mintToken(await signingKey('ES256'), { claims })],
      [
        'alg none',
        unsignedToken({ ...claims, iss: TEST_ISSUER, aud: TEST_AUDIENCE, iat: now, exp: now + 300 }),
      ],
      [
        'HS256 keyed with the public key',
        await new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setIssuer(TEST_ISSUER)
          .setAudience(TEST_AUDIENCE)
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(new TextEncoder().encode(kernel.publicPem)),
      ],
      ['payload changed after signing', `${header}.${forgedPayload}.${signature}`],
      ['signature stripped', `${header}.${payload}.`],
      ['unknown scope', await mintToken(kernel, { claims: { ...claims, scope: 'memory:read superuser' } })],
      ['no division', await mintToken(kernel, { claims: { ...claims, division: undefined } })],
    ];
    const before = await state();
    for (const [label, token] of bad) {
      for (const [method, path, body] of [
        ['POST', '/v1/memories', { divisionId: 'acme', text: `stored by a bad token (${label})` }],
        ['GET', `/v1/memories/${piiMem.id}`, undefined],
        ['GET', '/v1/memories?divisionId=globex', undefined],
      ] as const) {
        const r = await api(method, path, { client: certs.ops, token }, body);
        const p = expectProblem(r, 401, 'unauthenticated');
        expect(p.detail, label).toMatch(/^invalid token: /);
        // Nothing of the token is repeated back.
        expect(r.text, label).not.toContain(token.split('.')[1]);
        expect(r.text).not.toContain('walrus');
      }
    }
    expect(await state()).toBe(before);
    // The genuine token works on the same connection setup.
    const ok = await api('GET', `/v1/memories/${piiMem.id}`, { client: certs.ops, token: valid });
    expect(ok.status, ok.text).toBe(200);
  });

  it('refuses the TLS handshake without a client certificate or with one from another CA', async () => {
    const before = await state();
    for (const client of [undefined, pki.rogueBilling]) {
      let reply: Reply | undefined;
      let error: NodeJS.ErrnoException | undefined;
      try {
        reply = await overTls(
          'POST',
          '/v1/memories',
          { client },
          { divisionId: 'acme', text: 'no certificate' },
        );
      } catch (err) {
        error = err as NodeJS.ErrnoException;
      }
      expect(reply, 'no HTTP response may come back').toBeUndefined();
      expect(`${error?.code} ${error?.message}`).toMatch(/CERTIFICATE_REQUIRED|UNKNOWN_CA|ECONNRESET|EPIPE/);
    }
    // A certificate from the right CA whose CN is no known service: 401.
    const r = await api('GET', '/v1/memories', { client: certs.intruder });
    expectProblem(r, 401, 'unauthenticated');
    expect(await state()).toBe(before);
  });

  it('lets billing write acme through mTLS, and refuses globex (403) without revealing its memories (404)', async () => {
    const mine = await api(
      'POST',
      '/v1/memories',
      { ...billing, headers: { 'x-manifest-signature-id': 'mf-billing-7' } },
      { text: 'billing: invoice 8812 was paid late' },
    );
    expect(mine.status, mine.text).toBe(201);
    expect(mine.body).toMatchObject({ divisionId: 'acme', agentId: null });
    const event = await ta.t.db.query<{ actor: string; manifest_signature_id: string }>(
      `SELECT actor, manifest_signature_id FROM audit_events
       WHERE division_id = 'acme' AND action = 'memory.create' AND resource_id = $1`,
      [mine.body.id],
    );
    expect(event.rows).toEqual([{ actor: 'service:billing', manifest_signature_id: 'mf-billing-7' }]);
    expect(
      (await api('POST', '/v1/memories', billing, { divisionId: 'acme', text: 'explicit acme' })).status,
    ).toBe(201);

    const before = await state();
    expectProblem(
      await api('POST', '/v1/memories', billing, { divisionId: 'globex', text: 'billing writes globex' }),
      403,
      'forbidden',
    );
    expectProblem(
      await api('POST', '/v1/memories/batch', billing, { divisionId: 'globex', items: [{ text: 'x' }] }),
      403,
      'forbidden',
    );
    const hidden = await api('GET', `/v1/memories/${globexMem.id}`, billing);
    const random = randomUUID();
    const nowhere = await api('GET', `/v1/memories/${random}`, billing);
    expectProblem(hidden, 404, 'memory_not_found');
    expect(comparable(hidden, { [globexMem.id]: ':id' })).toEqual(comparable(nowhere, { [random]: ':id' }));
    expectProblem(
      await api('PATCH', `/v1/memories/${globexMem.id}`, billing, { text: 'rewritten by billing' }),
      404,
      'memory_not_found',
    );
    expectProblem(
      await api('GET', `/v1/memories/${globexMem.id}?divisionId=globex`, billing),
      403,
      'forbidden',
    );
    expectProblem(await api('GET', '/v1/memories?divisionId=globex', billing), 403, 'forbidden');
    expectProblem(
      await api('POST', '/v1/search', billing, { divisionId: 'globex', query: 'merger' }),
      403,
      'forbidden',
    );
    // Writers may not delete, nor read the audit trail.
    expectProblem(await api('DELETE', `/v1/memories/${mine.body.id}`, billing), 403, 'forbidden');
    expectProblem(await api('GET', '/v1/audit', billing), 403, 'forbidden');
    expect(await state()).toBe(before);
    // Billing's own searches never return globex memories.
    const hits = await search(billing, { query: 'Globex merger plans acquire Initech' });
    expect(hits.map((h) => h.id)).not.toContain(globexMem.id);
    expect(JSON.stringify(hits)).not.toMatch(/Globex|Initech/);
  });

  it('lets the auditor read the audit trail (200) but not write memories (403), and only in acme', async () => {
    const before = await state();
    expectProblem(
      await api('POST', '/v1/memories', auditor, { text: 'an auditor writes' }),
      403,
      'forbidden',
    );
    expectProblem(
      await api('PATCH', `/v1/memories/${piiMem.id}`, auditor, { text: 'changed' }),
      403,
      'forbidden',
    );
    expectProblem(await api('DELETE', `/v1/memories/${piiMem.id}`, auditor), 403, 'forbidden');
    expectProblem(await api('GET', '/v1/audit?divisionId=globex', auditor), 403, 'forbidden');
    expectProblem(await api('GET', '/v1/audit/head?divisionId=globex', auditor), 403, 'forbidden');
    expectProblem(await api('POST', '/v1/exports', auditor, { divisionId: 'globex' }), 403, 'forbidden');
    expect(await state()).toBe(before);

    const trail = await api('GET', '/v1/audit?limit=1000', auditor);
    expect(trail.status, trail.text).toBe(200);
    const events = trail.body.events as { divisionId: string; action: string; resourceId: string }[];
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((e) => e.divisionId))).toEqual(new Set(['acme']));
    expect(events.map((e) => e.resourceId)).not.toContain(globexMem.id);
    const head = await api('GET', '/v1/audit/head', auditor);
    expect(head.status, head.text).toBe(200);
    expect(head.body).toMatchObject({ divisionId: 'acme' });
  });

  it('answers an acme token asking for a globex memory exactly as for an id that does not exist (404)', async () => {
    const before = await state();
    const cases: [string, keyof typeof tokens, string, unknown][] = [
      ['GET', 'rw', '', undefined],
      ['GET', 'rw', '?divisionId=acme', undefined],
      ['PATCH', 'rw', '', { text: 'overwritten from acme', tags: ['pwned'] }],
      ['DELETE', 'rwd', '', undefined],
      ['PUT', 'hold', '/legal-hold', { hold: true, reason: 'hold another tenant' }],
    ];
    for (const [method, token, suffix, body] of cases) {
      const random = randomUUID();
      const path = (id: string) => `/v1/memories/${id}${suffix}`;
      const hidden = await api(method, path(globexMem.id), agent(token), body);
      const nowhere = await api(method, path(random), agent(token), body);
      expectProblem(hidden, 404, 'memory_not_found');
      expectProblem(nowhere, 404, 'memory_not_found');
      expect(comparable(hidden, { [globexMem.id]: ':id' }), `${method} ${suffix}`).toEqual(
        comparable(nowhere, { [random]: ':id' }),
      );
      expect(hidden.text).not.toMatch(/Globex|Initech|globex|gbot/);
    }
    expect(await state()).toBe(before);
    expect(await row(globexMem.id)).toMatchObject({ version: 1, legal_hold: false, deleted_at: null });
  });

  it('answers 403 for another division, the same whether it exists or not', async () => {
    const before = await state();
    const attempts = (division: string): [string, string, keyof typeof tokens, unknown][] => [
      ['POST', '/v1/search', 'rw', { divisionId: division, query: 'merger plans' }],
      ['POST', '/v1/search', 'rw', { divisionId: division, query: 'merger', mode: 'keyword' }],
      ['GET', `/v1/memories?divisionId=${division}`, 'rw', undefined],
      ['GET', `/v1/memories/${globexMem.id}?divisionId=${division}`, 'rw', undefined],
      ['POST', '/v1/memories', 'rw', { divisionId: division, text: 'written across tenants' }],
      ['POST', '/v1/memories/batch', 'rw', { divisionId: division, items: [{ text: 'across' }] }],
      ['GET', `/v1/divisions/${division}/agents`, 'rw', undefined],
      ['GET', `/v1/legal-holds?divisionId=${division}`, 'hold', undefined],
      ['POST', '/v1/legal-holds', 'hold', { divisionId: division, reason: 'freeze a competitor' }],
      ['GET', `/v1/audit?divisionId=${division}`, 'audit', undefined],
      ['GET', `/v1/audit/head?divisionId=${division}`, 'audit', undefined],
      ['POST', '/v1/exports', 'audit', { divisionId: division }],
    ];
    const existing = attempts('globex');
    const missing = attempts('no-such-division');
    for (const [i, [method, path, token, body]] of existing.entries()) {
      const a = await api(method, path, agent(token), body);
      const [m2, p2, t2, b2] = missing[i];
      const b = await api(m2, p2, agent(t2), b2);
      expectProblem(a, 403, 'forbidden');
      expect(comparable(a, { globex: ':division' }), `${method} ${path}`).toEqual(
        comparable(b, { 'no-such-division': ':division' }),
      );
    }
    // Services outside their list: the same.
    const s1 = await api('POST', '/v1/search', billing, { divisionId: 'globex', query: 'merger' });
    const s2 = await api('POST', '/v1/search', billing, { divisionId: 'no-such-division', query: 'merger' });
    expectProblem(s1, 403, 'forbidden');
    expect(comparable(s1)).toEqual(comparable(s2));
    expect(await state()).toBe(before);
    // Listing divisions shows only the caller's.
    const divisions = await api('GET', '/v1/divisions', agent('rw'));
    expect(divisions.status).toBe(200);
    expect(divisions.body.items.map((d: { id: string }) => d.id)).toEqual(['acme']);
    const forBilling = await api('GET', '/v1/divisions', billing);
    expect(forBilling.body.items.map((d: { id: string }) => d.id)).toEqual(['acme']);
  });

  it('refuses a list cursor issued in globex with 400 invalid_cursor', async () => {
    const page = await api('GET', '/v1/memories?divisionId=globex&limit=1', ops);
    expect(page.status, page.text).toBe(200);
    const cursor = page.body.nextCursor as string;
    expect(cursor).toEqual(expect.any(String));
    const before = await state();
    for (const who of [agent('rw'), billing, ops]) {
      const r = await api('GET', `/v1/memories?divisionId=acme&limit=1&cursor=${cursor}`, who);
      const p = expectProblem(r, 400, 'invalid_cursor');
      expect(p.errors?.[0]?.field).toBe('cursor');
      expect(r.text).not.toMatch(/Globex|globex/);
    }
    // With the token's own division left implicit, the same.
    expectProblem(await api('GET', `/v1/memories?cursor=${cursor}`, agent('rw')), 400, 'invalid_cursor');
    // Forged cursors: another division's key, a non-number, garbage.
    const forge = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const forged of [
      forge({ d: 'globex', k: 1e9 }),
      forge({ d: 'acme', k: '1 OR 1=1' }),
      'not-a-cursor!',
    ]) {
      const r = await api('GET', `/v1/memories?cursor=${encodeURIComponent(forged)}`, agent('rw'));
      expectProblem(r, 400, 'invalid_cursor');
    }
    expect(await state()).toBe(before);
    // A cursor of acme's own listing works for the token.
    await create(agent('rw'), { text: 'bot1 second page filler' });
    const first = await api('GET', '/v1/memories?limit=1', agent('rw'));
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await api('GET', `/v1/memories?limit=1&cursor=${first.body.nextCursor}`, agent('rw'));
    expect(second.status, second.text).toBe(200);
    expect(second.body.items[0].agentId).toBe('bot1');
  });

  it("confines an agent token to its own agent's memories, and forces its agentId on writes", async () => {
    // Another agent's memory in the same division: invisible.
    const before = await state();
    const random = randomUUID();
    const hidden = await api('GET', `/v1/memories/${acmeOther.id}`, agent('rw'));
    const nowhere = await api('GET', `/v1/memories/${random}`, agent('rw'));
    expectProblem(hidden, 404, 'memory_not_found');
    expect(comparable(hidden, { [acmeOther.id]: ':id' })).toEqual(comparable(nowhere, { [random]: ':id' }));
    expectProblem(
      await api('PATCH', `/v1/memories/${acmeOther.id}`, agent('rw'), { text: 'bot1 rewrites bot2' }),
      404,
      'memory_not_found',
    );
    expectProblem(await api('DELETE', `/v1/memories/${acmeOther.id}`, agent('rwd')), 404, 'memory_not_found');

    const all = await list(agent('rw'));
    expect(all.length).toBeGreaterThan(0);
    expect(new Set(all.map((m) => m.agentId))).toEqual(new Set(['bot1']));
    expect(await list(agent('rw'), '&agentId=bot2')).toEqual([]);
    for (const mode of ['hybrid', 'keyword', 'vector']) {
      const hits = await search(agent('rw'), { query: 'zebra roadmap ships next quarter', mode });
      expect(hits.map((h) => h.id)).not.toContain(acmeOther.id);
      expect(JSON.stringify(hits)).not.toContain('zebra');
    }
    expect(await search(agent('rw'), { query: 'zebra roadmap', agentId: 'bot2' })).toEqual([]);

    // Writes name another agent: 403, and nothing is written.
    const other = await api('POST', '/v1/memories', agent('rw'), {
      text: 'planted for bot2',
      agentId: 'bot2',
    });
    const p = expectProblem(other, 403, 'forbidden');
    expect(p.errors?.[0]?.field).toBe('agentId');
    const batch = await api('POST', '/v1/memories/batch', agent('rw'), {
      items: [{ text: 'fine' }, { text: 'planted in a batch', agentId: 'bot2' }],
    });
    expectProblem(batch, 403, 'forbidden');
    expect(await state()).toBe(before);

    // Without an agentId, or with its own, the token's agent is recorded.
    const implicit = await create(agent('rw'), { text: 'bot1 wrote this without naming itself' });
    const explicit = await create(agent('rw'), { text: 'bot1 wrote this naming itself', agentId: 'bot1' });
    expect(implicit).toMatchObject({ divisionId: 'acme', agentId: 'bot1' });
    expect(explicit).toMatchObject({ divisionId: 'acme', agentId: 'bot1' });
    // The relaying admin certificate itself still sees bot2's memory: the token, not the certificate, decided.
    expect((await api('GET', `/v1/memories/${acmeOther.id}`, ops)).status).toBe(200);
  });

  it('needs memory:delete to delete and admin to purge; refused deletes leave the memory alone', async () => {
    const m = await create(agent('rw'), { text: 'bot1 note that must survive refused deletes' });
    const before = await state();
    expectProblem(await api('DELETE', `/v1/memories/${m.id}`, agent('rw')), 403, 'forbidden');
    expectProblem(await api('DELETE', `/v1/memories/${m.id}?purge=true`, agent('rw')), 403, 'forbidden');
    const purge = await api('DELETE', `/v1/memories/${m.id}?purge=true`, agent('rwd'));
    expect(expectProblem(purge, 403, 'forbidden').detail).toMatch(/admin/);
    expectProblem(await api('DELETE', `/v1/memories/${m.id}?purge=true`, billing), 403, 'forbidden');
    expect(await state()).toBe(before);
    expect((await api('GET', `/v1/memories/${m.id}`, agent('rw'))).status).toBe(200);
    expect(await row(m.id)).toMatchObject({ deleted_at: null, purged_at: null, text: m.text });

    // memory:delete soft-deletes; an admin may then purge.
    expect((await api('DELETE', `/v1/memories/${m.id}`, agent('rwd'))).status).toBe(204);
    expectProblem(await api('GET', `/v1/memories/${m.id}`, agent('rw')), 404, 'memory_not_found');
    const soft = await row(m.id);
    expect(soft.deleted_at).not.toBeNull();
    expect(soft.purged_at).toBeNull();
    expect(soft.text).toBe(m.text);
    expect((await api('DELETE', `/v1/memories/${m.id}?purge=true`, ops)).status).toBe(204);
    expect(await row(m.id)).toMatchObject({ text: '', purged_at: expect.any(Date) });
  });

  it('redacts PII for callers without pii:read on every read path, and audits reads of it', async () => {
    const redactedText = 'Ask Jane Roe at [EMAIL] about the walrus invoice';
    expect(piiMem.piiFlags).toEqual(['email']);
    // Even the writer (no pii:read) got the redacted text back.
    expect(piiMem).toMatchObject({ text: redactedText, redacted: true });
    const piiReads = () =>
      ta.t.db.query<{ actor: string; resource_id: string }>(
        "SELECT actor, resource_id FROM audit_events WHERE action = 'pii.read' ORDER BY seq",
      );
    expect((await piiReads()).rows).toEqual([]);

    for (const who of [agent('rw'), auditor, billing]) {
      const got = await api('GET', `/v1/memories/${piiMem.id}`, who);
      expect(got.status, got.text).toBe(200);
      expect(got.body).toMatchObject({ text: redactedText, redacted: true, piiFlags: ['email'] });
      expect(got.text).not.toContain(PII_EMAIL);
      const items = await list(who);
      expect(items.find((m) => m.id === piiMem.id)).toMatchObject({ text: redactedText, redacted: true });
      expect(JSON.stringify(items)).not.toContain(PII_EMAIL);
      for (const mode of ['hybrid', 'vector']) {
        const hits = await search(who, { query: 'walrus invoice Jane Roe', mode });
        expect(hits.find((h) => h.id === piiMem.id)).toMatchObject({ text: redactedText });
        expect(JSON.stringify(hits)).not.toContain(PII_EMAIL);
      }
      // Redacted content cannot be matched by words.
      for (const query of [PII_EMAIL, 'jane.roe', 'acme-mail.example']) {
        expect(await search(who, { query, mode: 'keyword' }), query).toEqual([]);
      }
    }
    // Exports without pii:read carry the redacted text only (exports are for services: the auditor).
    const exported = await api('POST', '/v1/exports', auditor, {});
    expect(exported.status, exported.text).toBe(200);
    expect(exported.text).not.toContain(PII_EMAIL);
    const bundle = JSON.parse(exported.text) as { memories: Memory[]; includesPii: boolean };
    expect(bundle.includesPii).toBe(false);
    expect(bundle.memories.find((m) => m.id === piiMem.id)).toMatchObject({
      text: redactedText,
      redacted: true,
    });
    expect((await piiReads()).rows).toEqual([]);

    // pii:read shows the original, finds it by its words, and each read is audited.
    const got = await api('GET', `/v1/memories/${piiMem.id}`, agent('pii'));
    expect(got.body).toMatchObject({
      text: `Ask Jane Roe at ${PII_EMAIL} about the walrus invoice`,
      redacted: false,
    });
    const found = await search(agent('pii'), { query: PII_EMAIL, mode: 'keyword' });
    expect(found.map((h) => h.id)).toEqual([piiMem.id]);
    expect(found[0].text).toContain(PII_EMAIL);
    const withPii = await api('POST', '/v1/exports', { client: certs.ops }, { divisionId: 'acme' });
    expect(withPii.status, withPii.text).toBe(200);
    expect(withPii.text).toContain(PII_EMAIL);
    const reads = (await piiReads()).rows;
    expect(reads).toContainEqual({ actor: 'agent:bot1', resource_id: piiMem.id });
    expect(reads.length).toBeGreaterThanOrEqual(2);
    // The auditor sees those events through the API too, without the text.
    const trail = await api('GET', '/v1/audit?limit=1000', auditor);
    const events = trail.body.events as { action: string; actor: string; resourceId: string }[];
    expect(events).toContainEqual(
      expect.objectContaining({ action: 'pii.read', actor: 'agent:bot1', resourceId: piiMem.id }),
    );
    expect(trail.text).not.toContain(PII_EMAIL);
  });

  it('refuses division-wide audit, export and hold routes to agent tokens (they span other agents)', async () => {
    for (const [method, url, body] of [
      ['POST', '/v1/exports', {}],
      ['GET', '/v1/audit', undefined],
      ['GET', '/v1/audit/head', undefined],
      ['GET', '/v1/legal-holds', undefined],
      ['POST', '/v1/legal-holds', { reason: 'agent tries a division hold' }],
    ] as const) {
      const res = await api(method, url, agent('audit'), body);
      expect(res.status, `${method} ${url}: ${res.text}`).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect(res.text).not.toContain('zebra');
      expect(res.text).not.toContain(acmeOther.id);
    }
  });

  it("scopes Idempotency-Key to the caller: another agent's key is neither replayed nor revealed", async () => {
    const bot2 = await mintToken(kernel, {
      claims: { sub: 'bot2', agent: 'bot2', division: 'acme', scope: 'memory:read memory:write' },
      expiresIn: 1800,
    });
    const asBot2 = (key: string): Who => ({
      client: certs.ops,
      token: bot2,
      headers: { 'idempotency-key': key },
    });
    const asBot1 = (key: string): Who => ({ ...agent('rw'), headers: { 'idempotency-key': key } });
    const body = { text: 'standing order: water the office ferns on Fridays' };
    const first = await api('POST', '/v1/memories', asBot2('shared-key-1'), body);
    expect(first.status, first.text).toBe(201);
    expect(first.body.agentId).toBe('bot2');
    // The same key and body from bot1: a write of its own, not bot2's memory replayed.
    const second = await api('POST', '/v1/memories', asBot1('shared-key-1'), body);
    expect(second.status, second.text).toBe(201);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(second.body).toMatchObject({ agentId: 'bot1' });
    expect(second.body.id).not.toBe(first.body.id);
    // The same key with another body: not a 422 that tells bot1 someone else used the key.
    expect((await api('POST', '/v1/memories', asBot2('shared-key-2'), body)).status).toBe(201);
    const probe = await api('POST', '/v1/memories', asBot1('shared-key-2'), { text: 'bot1 probing a key' });
    expect(probe.status, probe.text).toBe(201);
  });

  it('refuses an oversized Authorization header (401) and survives huge headers', async () => {
    const before = await state();
    const big = await api('GET', '/v1/memories', { client: certs.ops, token: 'a'.repeat(9 * 1024) });
    expect(expectProblem(big, 401, 'unauthenticated').detail).toMatch(/too large/);
    const bigWrite = await api(
      'POST',
      '/v1/memories',
      { client: certs.ops, token: `${tokens.rw}${'A'.repeat(9 * 1024)}` },
      { text: 'written with a padded token' },
    );
    expectProblem(bigWrite, 401, 'unauthenticated');
    // 100 KB of cookie: Node refuses the request line (431) or drops the connection; never a 2xx.
    for (const who of [ops, agent('rw')]) {
      let status: number | undefined;
      try {
        status = (
          await overTls('GET', '/v1/memories', who, undefined, { cookie: `s=${'x'.repeat(100_000)}` })
        ).status;
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|EPIPE|HPE_|ERR_/);
      }
      if (status !== undefined) expect(status).toBe(431);
    }
    expect(await state()).toBe(before);
    // The server is still serving.
    const after = await api('GET', '/v1/memories?limit=1', agent('rw'));
    expect(after.status, after.text).toBe(200);
  });

  it('rejects SQL in filter fields by pattern (400) and stores metadata and tags verbatim', async () => {
    const attacks = ["x' OR '1'='1", "default'; DROP TABLE memory_nodes; --", 'a/**/UNION/**/SELECT', 'a b'];
    const before = await state();
    for (const evil of attacks) {
      const q = encodeURIComponent(evil);
      for (const field of ['namespace', 'agentId', 'kind', 'divisionId']) {
        const r = await api('GET', `/v1/memories?${field}=${q}`, agent('rw'));
        const p = expectProblem(r, 400, 'validation_failed');
        expect(p.errors?.[0]?.field).toBe(field);
        const s = await api('POST', '/v1/search', agent('rw'), { query: 'invoice', [field]: evil });
        expect(expectProblem(s, 400, 'validation_failed').errors?.[0]?.field).toBe(field);
      }
      const w = await api('POST', '/v1/memories', agent('rw'), { text: 'namespaced', namespace: evil });
      expectProblem(w, 400, 'validation_failed');
    }
    expect(await state()).toBe(before);

    const metadata = {
      "k' OR '1'='1": "v'; DROP TABLE memory_nodes; --",
      $1: '::jsonb) OR (true',
      nested: { '"); DELETE FROM audit_events; --': [1, "'"] },
    };
    const tags = ["'); DELETE FROM memory_nodes; --", 'a"b', '%_\\'];
    const stored = await create(agent('rw'), {
      text: 'a memory with hostile metadata about lemurs',
      metadata,
      tags,
    });
    const got = await api('GET', `/v1/memories/${stored.id}`, agent('rw'));
    expect(got.body.metadata).toEqual(metadata);
    expect(got.body.tags).toEqual(tags);
    const exact = await search(agent('rw'), {
      query: 'lemurs',
      mode: 'keyword',
      metadata: { "k' OR '1'='1": "v'; DROP TABLE memory_nodes; --" },
      tags: ["'); DELETE FROM memory_nodes; --"],
    });
    expect(exact.map((h) => h.id)).toEqual([stored.id]);
    for (const filter of [
      { metadata: { "k' OR '1'='1": "' OR 1=1 --" } },
      { metadata: { x: "' OR 1=1 --" } },
      { tags: ["' OR 1=1 --"] },
    ]) {
      expect(await search(agent('rw'), { query: 'lemurs', mode: 'keyword', ...filter })).toEqual([]);
    }
    // tsquery syntax and quotes in the query text are words, not operators or SQL.
    for (const query of ["'lemurs' | !x & (y:*", "'); DROP TABLE memory_nodes; --", "\\' OR 1=1"]) {
      const r = await api('POST', '/v1/search', agent('rw'), { query, mode: 'keyword' });
      expect(r.status, r.text).toBe(200);
    }
    const tables = await ta.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes');
    expect(tables.rows[0].n).toBeGreaterThan(5);
    expect(await countWhere('division_id = $1', ['globex'])).toBe(3);
  });

  it('never picks dev mode when keys or client certificates are configured', {
    timeout: 240_000,
  }, async () => {
    const anonymous = async (server: FastifyInstance) => {
      for (const [method, url] of [
        ['GET', '/v1/memories'],
        ['POST', '/v1/memories'],
        ['GET', '/v1/audit'],
      ] as const) {
        const res = await server.inject({
          method,
          url,
          ...(method === 'POST' ? { payload: { text: 'anonymous write' } } : {}),
        });
        expect(res.statusCode, res.body).toBe(401);
        expect(res.json()).toMatchObject({ code: 'unauthenticated' });
        expect(res.headers['www-authenticate']).toBe('Bearer');
      }
    };
    // Token keys only, on loopback, AUTH_MODE unset: a whole service of its own.
    const keysOnly = await startTestApp(backend, {
      worker: false,
      env: {
        HOST: '127.0.0.1',
        JWT_PUBLIC_KEYS_FILE: env.JWT_PUBLIC_KEYS_FILE,
        JWT_ISSUER: TEST_ISSUER,
        JWT_AUDIENCE: TEST_AUDIENCE,
      },
    });
    try {
      expect(authMode(keysOnly.app.config)).toBe('enforce');
      await anonymous(keysOnly.http);
      const rows = await keysOnly.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes');
      expect(rows.rows[0].n).toBe(0);
    } finally {
      await keysOnly.close();
    }
    // Client certificates only: the HTTP layer of this file's service, built from that config.
    const tlsOnly = loadConfig({
      DATA_DIR: ta.dataDir,
      HOST: '127.0.0.1',
      TLS_CERT: env.TLS_CERT,
      TLS_KEY: env.TLS_KEY,
      TLS_CLIENT_CA: env.TLS_CLIENT_CA,
      IDENTITIES_FILE: env.IDENTITIES_FILE,
    });
    expect(authMode(tlsOnly)).toBe('enforce');
    const before = await state();
    const server = await buildHttpServer({ ...ta.app, config: tlsOnly });
    try {
      await server.ready();
      await anonymous(server);
    } finally {
      await server.close();
    }
    expect(await state()).toBe(before);
  });
});
