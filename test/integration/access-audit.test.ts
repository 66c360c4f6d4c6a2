import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { createApp } from '../../src/app.js';
import type { ProofBundle } from '../../src/audit/bundle.js';
import { verifyChain } from '../../src/audit/chain.js';
import type { AuditEvent } from '../../src/audit/types.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { loadConfig } from '../../src/config.js';
import { systemAccess } from '../../src/memories/access.js';
import { createLogger } from '../../src/platform/logger.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends, openTestDatabase } from '../helpers/db.js';
import { clientCert, type OverTls, tlsClient } from '../helpers/https-client.js';
import {
  createTestPki,
  mintToken,
  type PemPair,
  type SigningKey,
  signingKey,
  TEST_AUDIENCE,
  TEST_ISSUER,
  type TestPki,
} from '../helpers/pki.js';
import { expectProblem } from '../helpers/problem.js';

/**
 * Every read of memory content in the audit trail (ACCESS_AUDIT=all), over real TLS with the
 * callers of production: agents with tokens (relayed over a certificate), services with
 * certificates. "Who saw this memory" is asked as an auditor of the division and as an auditor of
 * another one; search hits and expand neighbours, list pages, artifact downloads and exports are
 * recorded; the chain and the proof bundle still verify. ACCESS_AUDIT=pii and off run on apps of
 * their own in dev mode.
 */

/** Letters counted: a deterministic embedder, fast enough to index a few memories at once. */
const letterEmbedder: Embedder = {
  model: { name: 'access-letters', version: '1', dimensions: 26 },
  async embed(texts) {
    return texts.map((text) => {
      const v = new Float32Array(26).fill(0.01);
      for (const ch of text.toLowerCase()) {
        const i = ch.charCodeAt(0) - 97;
        if (i >= 0 && i < 26) v[i] += 1;
      }
      return v;
    });
  },
  async close() {},
};

interface AccessDetail {
  via: string;
  route?: string;
  requestId?: string;
  agentId?: string;
  tokenId?: string;
  readAt: string;
  memoryIds: string[];
  neighbourIds?: string[];
  artifactId?: string;
  wholeDivision?: boolean;
}
type AccessEvent = AuditEvent & { detail: AccessDetail };

let pki: TestPki;
let kernel: SigningKey;
let certs: Record<'writer' | 'alphaAuditor' | 'betaAuditor' | 'relay', PemPair>;
let env: Record<string, string>;

beforeAll(async () => {
  pki = createTestPki();
  kernel = await signingKey('EdDSA');
  certs = {
    writer: clientCert(pki, 'alpha-writer'),
    alphaAuditor: clientCert(pki, 'alpha-auditor'),
    betaAuditor: clientCert(pki, 'beta-auditor'),
    relay: clientCert(pki, 'relay'),
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
          'alpha-writer': { roles: ['reader', 'writer'], divisions: ['alpha'] },
          'alpha-auditor': { roles: ['auditor'], divisions: ['alpha'] },
          'beta-auditor': { roles: ['auditor'], divisions: ['beta'] },
        },
      }),
    ),
    JWT_PUBLIC_KEYS_FILE: pki.write('kernel.pem', kernel.publicPem),
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
    // Long enough that nothing but the tests' own reads of the trail chains the staged reads.
    ACCESS_AUDIT_FLUSH_MS: '600000',
  };
});

afterAll(() => {
  pki?.cleanup();
});

describe.each(backends)('access audit on %s', (backend) => {
  let ta: TestApp;
  let call: OverTls;
  let readerToken: string;
  const ids: Record<string, string> = {};

  const reader = () => ({ client: certs.relay, token: readerToken });
  const whoSaw = async (memoryId: string, auditor: PemPair, division = '') => {
    const res = await call(
      'GET',
      `/v1/audit?memoryId=${memoryId}&type=access&limit=1000${division ? `&divisionId=${division}` : ''}`,
      { client: auditor },
    );
    expect(res.status, res.text).toBe(200);
    return res.body.events as AccessEvent[];
  };

  beforeAll(async () => {
    ta = await startTestApp(backend, { env, embedder: letterEmbedder });
    await ta.http.listen({ port: 0, host: '127.0.0.1' });
    call = tlsClient({ port: (ta.http.server.address() as AddressInfo).port, ca: pki.ca.cert });
    const platform = systemAccess('test-setup');
    for (const division of ['alpha', 'beta'])
      await ta.app.divisions.createDivision(platform, { id: division });
    await ta.app.divisions.createAgent(platform, 'alpha', { id: 'reader-bot' });
    readerToken = await mintToken(kernel, {
      claims: {
        sub: 'reader-bot',
        agent: 'reader-bot',
        division: 'alpha',
        scope: 'memory:read',
        jti: 'tok-7',
      },
      expiresIn: 3000,
    });
    const texts = {
      solo: 'the quarterly budget review moved to friday',
      first: 'kickoff of the harbour project with the port authority',
      middle: 'zebra crossing near the harbour gate needs repainting',
      last: 'follow up on the harbour permits next week',
    };
    for (const [name, text] of Object.entries(texts)) {
      const session = name === 'solo' ? {} : { sessionId: 'harbour-1' };
      const res = await call(
        'POST',
        '/v1/memories?wait=true',
        { client: certs.writer },
        {
          divisionId: 'alpha',
          agentId: 'reader-bot',
          text,
          ...session,
        },
      );
      expect(res.status, res.text).toBe(201);
      ids[name] = res.body.id;
    }
  });
  afterAll(async () => {
    await ta?.close();
  });

  it('shows a read by one caller in "who saw this memory" to its auditor, and to no other division', async () => {
    const got = await call('GET', `/v1/memories/${ids.solo}`, reader());
    expect(got.status, got.text).toBe(200);

    const seen = await whoSaw(ids.solo, certs.alphaAuditor);
    // (The writer's `?wait=true` answer was read back too: a get on the POST route.)
    const reads = seen.filter(
      (e) => e.action === 'memory.access' && e.detail.route === 'GET /v1/memories/:id',
    );
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({
      divisionId: 'alpha',
      actor: 'agent:reader-bot',
      resourceType: 'access',
      detail: {
        route: 'GET /v1/memories/:id',
        agentId: 'reader-bot',
        tokenId: 'tok-7',
        memoryIds: [ids.solo],
      },
    });
    expect(Date.parse(reads[0].detail.readAt)).toBeLessThanOrEqual(Date.parse(reads[0].at));
    // Nothing about another memory's reads.
    expect(seen.every((e) => e.detail.memoryIds.includes(ids.solo) || e.detail.wholeDivision)).toBe(true);

    // An auditor of beta: its own division knows nothing of the memory, alpha's trail is closed.
    expect(await whoSaw(ids.solo, certs.betaAuditor)).toEqual([]);
    const foreign = await call('GET', `/v1/audit?memoryId=${ids.solo}&type=access&divisionId=alpha`, {
      client: certs.betaAuditor,
    });
    expectProblem(foreign, 403, 'forbidden');
    // The reader itself (an agent) may not read the trail.
    expectProblem(
      await call('GET', `/v1/audit?memoryId=${ids.solo}&type=access`, reader()),
      403,
      'forbidden',
    );
  });

  it('records search hits and the neighbours returned with them', async () => {
    const res = await call('POST', '/v1/search', reader(), {
      query: 'zebra crossing',
      mode: 'keyword',
      k: 1,
      expand: { before: 1, after: 1 },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.hits.map((h: { id: string }) => h.id)).toEqual([ids.middle]);

    for (const [id, role] of [
      [ids.middle, 'hit'],
      [ids.first, 'neighbour'],
      [ids.last, 'neighbour'],
    ] as const) {
      const searches = (await whoSaw(id, certs.alphaAuditor)).filter((e) => e.detail.via === 'search');
      expect(searches, `${role} ${id}`).toHaveLength(1);
      expect(searches[0].detail).toMatchObject({
        route: 'POST /v1/search',
        memoryIds: [ids.middle],
        neighbourIds: expect.arrayContaining([ids.first, ids.last]),
        tokenId: 'tok-7',
      });
    }
    // The memory no answer showed has no search read.
    const solo = await whoSaw(ids.solo, certs.alphaAuditor);
    expect(solo.filter((e) => e.detail.via === 'search')).toEqual([]);
  });

  it('records list pages as one event listing the page', async () => {
    const res = await call('GET', '/v1/memories?limit=2', reader());
    expect(res.status, res.text).toBe(200);
    const shown: string[] = res.body.items.map((m: { id: string }) => m.id);
    expect(shown).toHaveLength(2);
    const lists = (await whoSaw(shown[0], certs.alphaAuditor)).filter((e) => e.detail.via === 'list');
    expect(lists).toHaveLength(1);
    expect(lists[0].detail).toMatchObject({ route: 'GET /v1/memories', memoryIds: shown });
  });

  it('records artifact downloads against the memories the file is linked to', async () => {
    const bytes = Buffer.from('harbour permit scan');
    const up = await call('POST', '/v1/artifacts?divisionId=alpha', { client: certs.writer }, bytes, {
      'content-type': 'application/pdf',
    });
    expect(up.status, up.text).toBe(201);
    const link = await call('PUT', `/v1/memories/${ids.last}/artifacts/${up.body.id}?divisionId=alpha`, {
      client: certs.writer,
    });
    expect(link.status, link.text).toBe(204);
    const down = await call('GET', `/v1/artifacts/${up.body.id}?divisionId=alpha`, { client: certs.writer });
    expect(down.status, down.text).toBe(200);
    const reads = (await whoSaw(ids.last, certs.alphaAuditor)).filter((e) => e.detail.via === 'artifact');
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({
      actor: 'service:alpha-writer',
      detail: { artifactId: up.body.id, memoryIds: [ids.last], route: 'GET /v1/artifacts/:id' },
    });
  });

  it('puts the reads in the proof bundle, chained and verifiable; a changed detail breaks it', async () => {
    const res = await call('POST', '/v1/exports', { client: certs.alphaAuditor }, { divisionId: 'alpha' });
    expect(res.status, res.text).toBe(200);
    const bundle = JSON.parse(res.text) as ProofBundle;
    const reads = bundle.auditEvents.filter((e) => e.action === 'memory.access') as AccessEvent[];
    expect(reads.map((e) => e.detail.via)).toEqual(
      expect.arrayContaining(['get', 'search', 'list', 'artifact', 'export']),
    );
    // The export itself: a read of the whole division, found when asking about any memory.
    const exportRead = reads.find((e) => e.detail.via === 'export') as AccessEvent;
    expect(exportRead.detail).toMatchObject({ wholeDivision: true, memoryIds: [] });
    const seen = await whoSaw(ids.solo, certs.alphaAuditor);
    expect(seen.map((e) => e.seq)).toContain(exportRead.seq);

    expect(verifyChain(bundle.auditEvents)).toEqual({ ok: true });
    expect(await verifyBundle(bundle)).toMatchObject({ ok: true });
    const tampered = JSON.parse(res.text) as ProofBundle;
    const victim = tampered.auditEvents.find((e) => e.seq === reads[0].seq) as AccessEvent;
    victim.detail.memoryIds = [];
    const verdict = await verifyBundle(tampered);
    expect(verdict.ok).toBe(false);
    expect(verdict.checks.join('\n')).toContain('detail does not match its digest');

    // Every staged read was chained; the head the API signs covers them.
    expect((await ta.app.db.query('SELECT 1 FROM access_pending')).rows).toEqual([]);
    const head = await call('GET', '/v1/audit/head?divisionId=alpha', { client: certs.alphaAuditor });
    expect(head.body.seq).toBeGreaterThanOrEqual(bundle.head.seq);
  });

  it('refuses bad query parameters with problem+json naming the field', async () => {
    const auditor = { client: certs.alphaAuditor };
    expectProblem(
      await call('GET', '/v1/audit?memoryId=not-a-uuid', auditor),
      400,
      'validation_failed',
      'memoryId',
    );
    expectProblem(
      await call('GET', `/v1/audit?memoryId=${ids.solo}&type=reads`, auditor),
      400,
      'validation_failed',
      'type',
    );
  });
});

describe.each(backends)('ACCESS_AUDIT=pii and off on %s', (backend) => {
  let pii: TestApp;
  let off: TestApp;

  beforeAll(async () => {
    pii = await startTestApp(backend, {
      embedder: letterEmbedder,
      worker: false,
      env: { ACCESS_AUDIT: 'pii' },
    });
    off = await startTestApp(backend, {
      embedder: letterEmbedder,
      worker: false,
      env: { ACCESS_AUDIT: 'off' },
    });
  });
  afterAll(async () => {
    await pii?.close();
    await off?.close();
  });

  async function readBoth(ta: TestApp) {
    const ids: string[] = [];
    for (const text of ['plain note about the roadmap', 'call ada at ada@example.com tomorrow']) {
      const res = await ta.http.inject({ method: 'POST', url: '/v1/memories', payload: { text } });
      expect(res.statusCode, res.body).toBe(201);
      ids.push(res.json<{ id: string }>().id);
    }
    for (const id of ids) {
      expect((await ta.http.inject({ method: 'GET', url: `/v1/memories/${id}` })).statusCode).toBe(200);
    }
    expect((await ta.http.inject({ method: 'GET', url: '/v1/memories?limit=10' })).statusCode).toBe(200);
    const seen = async (id: string) =>
      (await ta.http.inject({ method: 'GET', url: `/v1/audit?memoryId=${id}&type=access` })).json<{
        events: AuditEvent[];
      }>().events;
    return { plain: await seen(ids[0]), personal: await seen(ids[1]) };
  }

  it('pii: only reads of personal data, as pii.read events, as before', async () => {
    const { plain, personal } = await readBoth(pii);
    expect(plain).toEqual([]);
    expect(personal.map((e) => e.action)).toEqual(['pii.read', 'pii.read']);
    expect((await pii.app.db.query('SELECT 1 FROM access_pending')).rows).toEqual([]);
    expect(
      (await pii.app.db.query("SELECT 1 FROM audit_events WHERE action = 'memory.access'")).rows,
    ).toEqual([]);
  });

  it('off: no read is recorded, and the changes still are', async () => {
    const { plain, personal } = await readBoth(off);
    expect(plain).toEqual([]);
    expect(personal).toEqual([]);
    const actions = (await off.app.audit.list('default', { limit: 1000 })).events.map((e) => e.action);
    expect(actions).toContain('memory.create');
    expect(actions.filter((a) => a === 'memory.access' || a === 'pii.read')).toEqual([]);
  });
});

describe.each(backends)('staged reads survive the process that staged them on %s', (backend) => {
  it('chains reads at shutdown, and reads a stopped process left staged are chained by another', async () => {
    const t = await openTestDatabase(backend);
    const dataDir = mkdtempSync(join(tmpdir(), 'ml-access-'));
    const open = () =>
      createApp(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', ACCESS_AUDIT_FLUSH_MS: '600000' }), {
        worker: false,
        database: t.db,
        embedder: letterEmbedder,
        logger: createLogger('silent'),
      });
    const accessEvents = async () =>
      (
        await t.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM audit_events WHERE action = 'memory.access'",
        )
      ).rows[0].n;
    const staged = async () =>
      (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM access_pending')).rows[0].n;
    try {
      const me = systemAccess('test');
      const first = await open();
      const { memory } = await first.memories.create(me, 'default', { text: 'read before a shutdown' });
      await first.memories.get(me, memory.id);
      // The answer does not wait for the staging INSERT; it is done soon after.
      await first.readAudit.settled();
      expect(await staged()).toBe(1);
      expect(await accessEvents()).toBe(0);
      // Closing the app (its lifecycle) chains what it staged.
      await first.close();
      expect(await staged()).toBe(0);
      expect(await accessEvents()).toBe(1);

      // A process that staged a read and never flushed (killed) leaves it in the table: any other
      // process's flush chains it.
      const killed = await open();
      const other = await open();
      await killed.memories.get(me, memory.id);
      await killed.readAudit.settled();
      expect(await staged()).toBe(1);
      const seen = await other.audit.list('default', { memoryId: memory.id, type: 'access' });
      expect(seen.events.map((e) => e.detail)).toEqual([
        expect.objectContaining({ via: 'get', memoryIds: [memory.id] }),
        expect.objectContaining({ via: 'get', memoryIds: [memory.id] }),
      ]);
      expect(await staged()).toBe(0);
      await other.close();
      await killed.close();
      expect(await accessEvents()).toBe(2);
    } finally {
      await t.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
