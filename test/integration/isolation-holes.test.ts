import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/adapters/embedders/port.js';
import { systemAccess } from '../../src/memories/access.js';
import { normaliseText, textChecksum } from '../../src/memories/text.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { mintToken, type SigningKey, signingKey, TEST_AUDIENCE, TEST_ISSUER } from '../helpers/pki.js';
import { expectProblem } from '../helpers/problem.js';

/**
 * The holes a black-box attack found in enforced mode, each sent exactly as the attacker sent it:
 * a division-confined admin reaching another division, a writer unmasking personal data,
 * digests and caches that confirm other tenants' texts, deleted memories read back, and input that
 * crashed the server. Callers are agents with EdDSA tokens (the mTLS service callers are covered
 * by the authorization matrix, authz-matrix.test.ts).
 */

interface Memory {
  id: string;
  divisionId: string;
  text: string;
  redacted: boolean;
  checksum: string;
  tags: string[];
  metadata: Record<string, unknown>;
  piiFlags: string[];
  legalHold: boolean;
  version: number;
  status: string;
}

/** The built-in model, counting the texts it is asked to embed. */
function countingEmbedder(inner: Embedder) {
  const calls: string[] = [];
  const embedder: Embedder = {
    model: inner.model,
    embed: (texts, signal) => {
      calls.push(...texts);
      return inner.embed(texts, signal);
    },
    // Shared by the file's apps: closed with the process.
    close: async () => undefined,
  };
  return { embedder, calls };
}

let kernel: SigningKey;
let keysDir: string;

beforeAll(async () => {
  kernel = await signingKey('EdDSA');
  keysDir = mkdtempSync(join(tmpdir(), 'ml-holes-'));
  writeFileSync(join(keysDir, 'kernel.pem'), kernel.publicPem);
});
afterAll(() => rmSync(keysDir, { recursive: true, force: true }));

const token = (division: string, agent: string, scope: string) =>
  mintToken(kernel, { claims: { sub: agent, agent, division, scope } });

describe.each(backends)('isolation and personal data in enforced mode on %s', (backend) => {
  let ta: TestApp;
  let embedCalls: string[];
  const tokens = { admin: '', writer: '', piiWriter: '', holder: '', betaWriter: '' };

  const call = async (who: keyof typeof tokens, opts: InjectOptions): Promise<LightMyRequestResponse> =>
    ta.http.inject({ ...opts, headers: { ...opts.headers, authorization: `Bearer ${tokens[who]}` } });
  const count = async (sql: string, params: unknown[] = []) =>
    (await ta.app.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0].n;
  const events = async (division: string) => (await ta.app.audit.list(division, { limit: 1000 })).events;
  const reusedMetric = async () => {
    const text = (await ta.http.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(/^memory_layer_embeddings_reused_total (\d+)/m.exec(text)?.[1] ?? 0);
  };
  async function write(who: keyof typeof tokens, body: Record<string, unknown>): Promise<Memory> {
    const res = await call(who, { method: 'POST', url: '/v1/memories?wait=true', payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Memory>();
  }

  beforeAll(async () => {
    const counted = countingEmbedder(await localEmbedder());
    embedCalls = counted.calls;
    ta = await startTestApp(backend, {
      embedder: counted.embedder,
      env: {
        AUTH_MODE: 'enforce',
        JWT_PUBLIC_KEYS_FILE: join(keysDir, 'kernel.pem'),
        JWT_ISSUER: TEST_ISSUER,
        JWT_AUDIENCE: TEST_AUDIENCE,
      },
    });
    const platform = systemAccess('test-setup');
    for (const division of ['alpha', 'beta']) {
      await ta.app.divisions.createDivision(platform, { id: division });
    }
    for (const agent of ['ops-bot', 'writer-bot', 'pii-bot', 'hold-bot']) {
      await ta.app.divisions.createAgent(platform, 'alpha', { id: agent });
    }
    await ta.app.divisions.createAgent(platform, 'beta', { id: 'beta-bot' });
    tokens.admin = await token('alpha', 'ops-bot', 'admin');
    tokens.writer = await token('alpha', 'writer-bot', 'memory:read memory:write memory:delete');
    tokens.piiWriter = await token('alpha', 'pii-bot', 'memory:read memory:write pii:read');
    tokens.holder = await token(
      'alpha',
      'hold-bot',
      'memory:read memory:write memory:delete legal-hold:write pii:read',
    );
    tokens.betaWriter = await token('beta', 'beta-bot', 'memory:read memory:write');
  });
  afterAll(async () => {
    await ta?.close();
  });

  describe('a division-confined admin stays in its division', () => {
    it('cannot register an agent in another division (403), and nothing appears there', async () => {
      const betaEvents = (await events('beta')).length;
      const res = await call('admin', {
        method: 'POST',
        url: '/v1/divisions/beta/agents',
        payload: { id: 'planted' },
      });
      expectProblem(res, 403, 'forbidden');
      expect(await count('agents WHERE division_id = $1 AND id = $2', ['beta', 'planted'])).toBe(0);
      expect((await events('beta')).length).toBe(betaEvents);
    });

    it('registers agents in its own division, and the registration is audited', async () => {
      const res = await call('admin', {
        method: 'POST',
        url: '/v1/divisions/alpha/agents',
        payload: { id: 'new-bot' },
      });
      expect(res.statusCode, res.body).toBe(201);
      const created = (await events('alpha')).filter((e) => e.action === 'agent.create');
      expect(created.map((e) => [e.resourceId, e.actor])).toContainEqual(['new-bot', 'agent:ops-bot']);
    });

    it("cannot read another division's record (403), only its own", async () => {
      expectProblem(await call('admin', { method: 'GET', url: '/v1/divisions/beta' }), 403, 'forbidden');
      expectProblem(await call('admin', { method: 'GET', url: '/v1/divisions/nowhere' }), 403, 'forbidden');
      const own = await call('admin', { method: 'GET', url: '/v1/divisions/alpha' });
      expect(own.statusCode, own.body).toBe(200);
      expect(own.json()).toMatchObject({ id: 'alpha' });
    });

    it('cannot create divisions: that needs an admin of every division', async () => {
      const res = await call('admin', { method: 'POST', url: '/v1/divisions', payload: { id: 'gamma' } });
      expectProblem(res, 403, 'forbidden');
      expect(await count('divisions WHERE id = $1', ['gamma'])).toBe(0);
    });

    it("sees and retries only its own division's dead letters, without internal addresses", async () => {
      const alphaMem = await write('writer', { text: 'alpha job memory' });
      const betaMem = await write('betaWriter', { text: 'beta job memory' });
      const dead = async (nodeId: string) =>
        (
          await ta.app.db.query<{ id: string }>(
            `INSERT INTO jobs (queue, payload, status, max_attempts, attempts, last_error)
             VALUES ('index', $1::jsonb, 'dead', 3, 3, 'embedder http://10.0.0.7:8080/v1/embeddings answered 500')
             RETURNING id`,
            [JSON.stringify({ nodeId })],
          )
        ).rows[0].id;
      const alphaJob = Number(await dead(alphaMem.id));
      const betaJob = Number(await dead(betaMem.id));

      const listed = await call('admin', { method: 'GET', url: '/v1/jobs/dead' });
      expect(listed.statusCode, listed.body).toBe(200);
      const items = listed.json<{ items: { id: number; memoryId: string; lastError: string }[] }>().items;
      expect(items.map((j) => j.id)).toEqual([alphaJob]);
      expect(items[0].lastError).not.toContain('10.0.0.7');
      expect(items[0].lastError).toContain('answered 500');

      const alphaEvents = (await events('alpha')).length;
      const betaEvents = (await events('beta')).length;
      const foreign = await call('admin', { method: 'POST', url: `/v1/jobs/dead/${betaJob}/retry` });
      expectProblem(foreign, 404, 'job_not_found');
      expect(await count(`jobs WHERE id = $1 AND status = 'dead'`, [betaJob])).toBe(1);
      expect((await events('beta')).length).toBe(betaEvents);

      const own = await call('admin', { method: 'POST', url: `/v1/jobs/dead/${alphaJob}/retry` });
      expect(own.statusCode, own.body).toBe(202);
      const after = await events('alpha');
      expect(after.length).toBe(alphaEvents + 1);
      expect(after.at(-1)).toMatchObject({
        action: 'job.retry',
        actor: 'agent:ops-bot',
        resourceId: alphaMem.id,
      });
    });
  });

  describe('personal data stays masked for callers without pii:read', () => {
    it('a writer without pii:read cannot drop a PII flag (403), and the text stays hidden', async () => {
      const secret = 'Diagnosed with asthma in May, inhaler twice a day';
      const m = await write('writer', { text: secret, piiFlags: ['health'] });
      expect(m.text).toBe('[redacted: health]');
      const res = await call('writer', {
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        headers: { 'if-match': `"${m.version}"` },
        payload: { piiFlags: [] },
      });
      const p = expectProblem(res, 403, 'forbidden', 'piiFlags');
      expect(res.body).not.toContain('asthma');
      expect(p.detail).toContain('pii:read');
      const again = await call('writer', { method: 'GET', url: `/v1/memories/${m.id}` });
      expect(again.json<Memory>()).toMatchObject({ text: '[redacted: health]', version: m.version });
    });

    it('a writer may add flags and change labels; the answer never shows more than a GET', async () => {
      const m = await write('writer', { text: 'Write to jane at example dot org', piiFlags: ['email'] });
      expect(m.redacted).toBe(true);
      const tagged = await call('writer', {
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['contact'], piiFlags: ['email', 'name'] },
      });
      expect(tagged.statusCode, tagged.body).toBe(200);
      expect(tagged.json<Memory>()).toMatchObject({ redacted: true, piiFlags: ['email', 'name'] });
      expect(tagged.body).not.toContain('jane');
      // A patch that does not mention the flags keeps them all, caller-set pattern flags included.
      const relabelled = await call('writer', {
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['contact', 'later'] },
      });
      expect(relabelled.json<Memory>()).toMatchObject({ redacted: true, piiFlags: ['email', 'name'] });
      expect(relabelled.body).not.toContain('jane');
    });

    it('a pii:read caller may drop flags, and a PATCH answer with personal data is an audited read', async () => {
      const m = await write('piiWriter', { text: 'Ana takes insulin before lunch', piiFlags: ['health'] });
      const before = (await events('alpha')).length;
      const res = await call('piiWriter', {
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { tags: ['care'] },
      });
      expect(res.json<Memory>()).toMatchObject({ text: 'Ana takes insulin before lunch', redacted: false });
      const added = (await events('alpha')).slice(before).map((e) => [e.action, e.resourceId]);
      expect(added).toEqual([
        ['memory.update', m.id],
        ['pii.read', m.id],
      ]);
      const dropped = await call('piiWriter', {
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        payload: { piiFlags: [] },
      });
      expect(dropped.statusCode, dropped.body).toBe(200);
      expect(dropped.json<Memory>().piiFlags).toEqual([]);
    });

    it('callers who see redacted text get the digest of that text, not of the original', async () => {
      const original = 'Reach Jane at jane.roe@example.com after six';
      const m = await write('writer', { text: original });
      expect(m.text).toBe('Reach Jane at [EMAIL] after six');
      const guess = textChecksum(normaliseText(original));
      const shown = [
        m.checksum,
        (await call('writer', { method: 'GET', url: `/v1/memories/${m.id}` })).json<Memory>().checksum,
        (await call('writer', { method: 'GET', url: '/v1/memories?divisionId=alpha&limit=100' }))
          .json<{ items: Memory[] }>()
          .items.find((i) => i.id === m.id)?.checksum,
      ];
      for (const c of shown) expect(c).toBe(textChecksum(normaliseText('Reach Jane at [EMAIL] after six')));
      expect(shown).not.toContain(guess);
      const exported = await ta.app.audit.exportBundle('alpha', { includePii: false, actor: 'test' });
      const inBundle = JSON.parse(exported.json).memories.find((x: Memory) => x.id === m.id);
      expect(inBundle.checksum).not.toBe(guess);
      const withPii = await call('piiWriter', { method: 'GET', url: `/v1/memories/${m.id}` });
      expect(withPii.statusCode).toBe(404); // another agent's memory: agents see only their own
      const row = await ta.app.memories.get(systemAccess('test'), m.id);
      expect(row.checksum).toBe(guess);
    });

    it('refuses personal data in tags and metadata, naming the field, and stores nothing', async () => {
      const before = await count('memory_nodes');
      const email = await call('writer', {
        method: 'POST',
        url: '/v1/memories',
        payload: { text: 'a note', metadata: { owner: { contact: 'jane.roe@example.com' } } },
      });
      expectProblem(email, 400, 'pii_in_labels', 'metadata.owner.contact');
      const card = await call('writer', {
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: [{ text: 'ok' }, { text: 'b', tags: ['vip', '4111 1111 1111 1111'] }] },
      });
      expectProblem(card, 400, 'pii_in_labels', 'items[1].tags[1]');
      expect(await count('memory_nodes')).toBe(before);
    });
  });

  describe('no oracle across divisions', () => {
    it("reuses a stored vector only within the writer's own division", async () => {
      const text = 'The blue heron nests by the old mill pond every spring';
      await write('writer', { text });
      const reusedBefore = await reusedMetric();
      const inBeta = await write('betaWriter', { text });
      expect(inBeta.status).toBe('indexed');
      expect(await reusedMetric()).toBe(reusedBefore);
      // Within a division, an identical text is still embedded once.
      await write('betaWriter', { text: `${text}  ` });
      expect(await reusedMetric()).toBe(reusedBefore + 1);
    });

    it('caches query vectors per division', async () => {
      const query = { query: 'which bird nests by the pond', mode: 'vector', k: 3 };
      const asked = () => embedCalls.filter((t) => t === 'which bird nests by the pond').length;
      const search = (who: 'writer' | 'betaWriter') =>
        call(who, { method: 'POST', url: '/v1/search', payload: query });
      expect((await search('writer')).statusCode).toBe(200);
      expect(asked()).toBe(1);
      expect((await search('writer')).statusCode).toBe(200);
      expect(asked()).toBe(1);
      expect((await search('betaWriter')).statusCode).toBe(200);
      expect(asked()).toBe(2);
    });
  });

  describe('legal holds', () => {
    it('holding a soft-deleted memory stops its purge but shows none of its content', async () => {
      const m = await write('holder', { text: 'Deleted but under litigation', tags: ['case-7'] });
      const del = await call('holder', { method: 'DELETE', url: `/v1/memories/${m.id}` });
      expect(del.statusCode, del.body).toBe(204);
      expectProblem(
        await call('holder', { method: 'GET', url: `/v1/memories/${m.id}` }),
        404,
        'memory_not_found',
      );
      const held = await call('holder', {
        method: 'PUT',
        url: `/v1/memories/${m.id}/legal-hold`,
        payload: { hold: true, reason: 'case 7' },
      });
      expect(held.statusCode, held.body).toBe(200);
      expect(held.json<Memory>()).toMatchObject({
        id: m.id,
        legalHold: true,
        text: '',
        tags: [],
        metadata: {},
      });
      expect(held.body).not.toContain('litigation');
      expect(await count('memory_nodes WHERE id = $1 AND legal_hold', [m.id])).toBe(1);
    });

    it('an agent places holds but cannot release one', async () => {
      const m = await write('holder', { text: 'Keep this one', piiFlags: ['name'] });
      const before = (await events('alpha')).length;
      const held = await call('holder', {
        method: 'PUT',
        url: `/v1/memories/${m.id}/legal-hold`,
        payload: { hold: true, reason: 'audit' },
      });
      expect(held.json<Memory>()).toMatchObject({ legalHold: true, text: 'Keep this one' });
      // The answer carried personal data to a pii:read caller: audited like a GET.
      expect((await events('alpha')).slice(before).map((e) => e.action)).toEqual([
        'legal-hold.set',
        'pii.read',
      ]);
      const release = await call('holder', {
        method: 'PUT',
        url: `/v1/memories/${m.id}/legal-hold`,
        payload: { hold: false },
      });
      expectProblem(release, 403, 'forbidden', 'hold');
      expect(await count('memory_nodes WHERE id = $1 AND legal_hold', [m.id])).toBe(1);
    });
  });
});

describe.each(backends)('hostile shapes get 400, never 500, on %s', (backend) => {
  let ta: TestApp;
  beforeAll(async () => {
    ta = await startTestApp(backend, { worker: false });
  });
  afterAll(async () => {
    await ta?.close();
  });

  const nested = (depth: number, leaf: string) => {
    let json = leaf;
    for (let i = 0; i < depth; i++) json = `{"a":${json}}`;
    return json;
  };
  const send = (method: 'POST' | 'GET' | 'DELETE', url: string, payload?: string) =>
    ta.http.inject({
      method,
      url,
      ...(payload !== undefined ? { payload, headers: { 'content-type': 'application/json' } } : {}),
    });

  it('refuses metadata nested 5,000 deep, and arrays too, naming the field', async () => {
    const before = (await ta.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes'))
      .rows[0].n;
    const objects = await send('POST', '/v1/memories', `{"text":"deep","metadata":${nested(5000, '1')}}`);
    const p = expectProblem(objects, 400, 'validation_failed');
    expect(p.errors?.[0]?.field).toMatch(/^metadata(\.a)+$/);
    expect(p.detail).toContain('32 levels');
    const arrays = await send(
      'POST',
      '/v1/memories',
      `{"text":"deep","metadata":{"x":${'['.repeat(5000)}${']'.repeat(5000)}}}`,
    );
    expect(expectProblem(arrays, 400, 'validation_failed').errors?.[0]?.field).toMatch(
      /^metadata\.x(\[0\])+$/,
    );
    const after = (await ta.app.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes'))
      .rows[0].n;
    expect(after).toBe(before);
  });

  it('refuses a search filter nested 10,000 deep', async () => {
    const res = await send('POST', '/v1/search', `{"query":"x","filter":{"metadata":${nested(10000, '1')}}}`);
    expect(expectProblem(res, 400, 'validation_failed').errors?.[0]?.field).toMatch(/^filter\.metadata/);
  });

  it('accepts nesting up to the documented limit', async () => {
    // The body is one level, metadata another: 30 more fit within 32.
    const res = await send('POST', '/v1/memories', `{"text":"fine","metadata":${nested(30, '1')}}`);
    expect(res.statusCode, res.body).toBe(201);
  });

  it.each([
    ['GET', '/v1/audit?afterSeq=99999999999999999999', 'afterSeq'],
    ['GET', '/v1/jobs/dead?after=99999999999999999999', 'after'],
    ['POST', '/v1/jobs/dead/99999999999999999999/retry', 'id'],
    ['DELETE', '/v1/legal-holds/99999999999999999999', 'id'],
  ] as const)('refuses integers beyond 64 bits: %s %s', async (method, url, field) => {
    expectProblem(await send(method, url), 400, 'validation_failed', field);
  });

  it('refuses a cursor holding an integer beyond 64 bits', async () => {
    const cursor = Buffer.from('{"d":"default","k":99999999999999999999}').toString('base64url');
    expectProblem(await send('GET', `/v1/memories?cursor=${cursor}`), 400, 'invalid_cursor', 'cursor');
  });
});
