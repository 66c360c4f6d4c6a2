import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaTypes } from '../../packages/client/scripts/schema-types.js';
import {
  createClient,
  type FetchLike,
  type Memory,
  MemoryLayerError,
  type RetryInfo,
  WaitTimeoutError,
} from '../../packages/client/src/index.js';
import { localEmbedder, startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import {
  createTestPki,
  mintToken,
  type SigningKey,
  signingKey,
  TEST_AUDIENCE,
  TEST_ISSUER,
  type TestPki,
} from '../helpers/pki.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The TypeScript client (packages/client) against a real service listening on a loopback port, in
 * enforced mode with bearer tokens: typed calls, problem+json as MemoryLayerError, Idempotency-Key
 * reused by its own retries, retries on 503 honouring Retry-After, waitUntilIndexed, the audit
 * chain checked on the client's side, and the committed types against the served /openapi.json.
 */

const SCHEMA_FILE = new URL('../../packages/client/src/schema.ts', import.meta.url);

let pki: TestPki;
let kernel: SigningKey;

beforeAll(async () => {
  pki = createTestPki();
  kernel = await signingKey('EdDSA');
});
afterAll(() => pki?.cleanup());

const baseUrlOf = async (ta: TestApp) => {
  await ta.http.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(ta.http.server.address() as AddressInfo).port}`;
};

/** A fetch that records each request's method, path, Idempotency-Key and answer status. */
function recordingFetch(
  seen: { method: string; path: string; key: string | null; status?: number }[],
  around?: (res: Response, n: number) => Promise<Response>,
): FetchLike {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    const entry: (typeof seen)[number] = {
      method: init?.method ?? 'GET',
      path: new URL(String(input)).pathname,
      key: headers.get('idempotency-key'),
    };
    seen.push(entry);
    const res = await fetch(input, init);
    entry.status = res.status;
    return around ? around(res, seen.length) : res;
  };
}

describe.each(backends)('TypeScript client on %s', (backend) => {
  let ta: TestApp;
  let baseUrl: string;
  const token = (scope: string) => mintToken(kernel, { claims: { scope }, expiresIn: 3000 });
  const countText = async (text: string) =>
    (
      await ta.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes WHERE text = $1', [
        text,
      ])
    ).rows[0].n;
  const countMemories = async () =>
    (await ta.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes')).rows[0].n;
  let writer: ReturnType<typeof createClient>;

  beforeAll(async () => {
    ta = await startTestApp(backend, {
      env: {
        JWT_PUBLIC_KEYS_FILE: pki.write('kernel.pem', kernel.publicPem),
        JWT_ISSUER: TEST_ISSUER,
        JWT_AUDIENCE: TEST_AUDIENCE,
      },
    });
    baseUrl = await baseUrlOf(ta);
    const by = { actor: 'system:test' };
    await ta.app.divisions.createDivision(by, { id: 'sales' });
    await ta.app.divisions.createAgent(by, 'sales', { id: 'support-bot' });
    writer = createClient({ baseUrl, token: () => token('memory:read memory:write memory:delete') });
  });
  afterAll(() => ta?.close());

  it('the committed types are those of the served /openapi.json (else: npm run client:types)', async () => {
    const res = await fetch(`${baseUrl}/openapi.json`);
    expect(res.status).toBe(200);
    const generated = await schemaTypes((await res.json()) as object);
    expect(generated).toContain('"/v1/memories/{id}"');
    expect(generated, 'packages/client/src/schema.ts is stale: run `npm run client:types`').toBe(
      readFileSync(SCHEMA_FILE, 'utf8'),
    );
  });

  it('writes a memory, waits until it is indexed and finds it by meaning and by words', async () => {
    const created = await writer.memories.create({
      text: 'The customer in Lyon prefers invoices by post, never by email',
      namespace: 'client-test',
      tags: ['billing'],
    });
    expect(created).toMatchObject({
      status: 'pending',
      divisionId: 'sales',
      agentId: 'support-bot',
      version: 1,
    });
    const batch = await writer.memories.createBatch([
      { text: 'Deliveries to the Lyon warehouse arrive on Tuesdays', namespace: 'client-test' },
      { text: 'The support hotline closes at six in the evening', namespace: 'client-test' },
    ]);
    expect(batch).toHaveLength(2);

    const ids = [created.id, ...batch.map((m) => m.id)];
    const indexed = await writer.waitUntilIndexed(ids, { timeoutMs: 30_000 });
    expect(indexed.map((m) => m.id)).toEqual(ids);
    expect(indexed.map((m) => m.status)).toEqual(['indexed', 'indexed', 'indexed']);

    const byMeaning = await writer.search({
      query: 'how does this customer want to be billed?',
      mode: 'vector',
      k: 3,
    });
    expect(byMeaning.mode).toBe('vector');
    expect(byMeaning.hits[0].id).toBe(created.id);
    expect(byMeaning.hits[0].vectorScore).toEqual(expect.any(Number));

    const byWords = await writer.search({
      query: 'Lyon warehouse Tuesdays',
      mode: 'keyword',
      namespace: 'client-test',
    });
    expect(byWords.hits[0]).toMatchObject({ id: batch[0].id, text: batch[0].text });
    expect(byWords.hits[0].keywordScore).toEqual(expect.any(Number));
  });

  it('imports NDJSON: bad items reported by line, items with a vector searchable by meaning at once', async () => {
    const [parcels] = await (await localEmbedder()).embed(['Parcels for Lyon leave the depot at noon']);
    const report = await writer.memories.import(
      [
        {
          text: 'Parcels for Lyon leave the depot at noon',
          vector: Array.from(parcels),
          model: 'use-lite',
          namespace: 'client-import',
        },
        { text: '' },
        { text: 'Returns are accepted for thirty days', namespace: 'client-import' },
      ],
      { divisionId: 'sales' },
    );
    expect(report).toMatchObject({ imported: 2, replayed: 0, failed: 1, lines: 3 });
    expect(report.errors?.map((e) => [e.line, e.code, e.field])).toEqual([[2, 'validation_failed', 'text']]);
    const found = await writer.search({
      query: 'when do parcels leave for Lyon?',
      mode: 'vector',
      k: 1,
      namespace: 'client-import',
    });
    expect(found.hits[0]?.text).toBe('Parcels for Lyon leave the depot at noon');

    const before = await countMemories();
    const atomic = await writer.memories
      .import([{ text: 'never written' }, { text: '' }], { divisionId: 'sales', atomic: true })
      .catch((e: unknown) => e);
    expect(atomic).toBeInstanceOf(MemoryLayerError);
    expect(atomic).toMatchObject({ status: 422, code: 'validation_failed' });
    expect(await countMemories()).toBe(before);
  });

  it('uploads a document, follows it until its chunks are searchable, replaces it and deletes it', async () => {
    const doc = await writer.documents.create(
      '# Shipping\n\nParcels for Grenoble leave the depot at noon.\n\n## Returns\n\nReturns are accepted for thirty days.\n',
      { title: 'Handbook', tags: ['handbook'], metadata: { edition: 3 } },
    );
    expect(doc).toMatchObject({
      title: 'Handbook',
      contentType: 'text/markdown',
      version: 1,
      tags: ['handbook'],
    });
    await waitFor(async () => (await writer.documents.get(doc.id)).status === 'indexed', {
      what: `document ${doc.id} to be indexed`,
      timeoutMs: 60_000,
    });
    const indexed = await writer.documents.get(doc.id);
    expect(indexed.chunks?.length).toBeGreaterThanOrEqual(1);
    expect((await writer.documents.list({ limit: 100 })).items.map((d) => d.id)).toContain(doc.id);
    const hit = await writer.search({ query: 'Grenoble parcels depot', mode: 'keyword', k: 1 });
    expect(hit.hits[0]?.sessionId).toBe(indexed.sessionId);

    const replaced = await writer.documents.replace(doc.id, 'Plain text now: the depot moved to Annecy.', {
      type: 'text/plain',
    });
    expect(replaced).toMatchObject({ version: 2, contentType: 'text/plain' });
    await writer.documents.delete(doc.id);
    const gone = await writer.documents.get(doc.id).catch((e: unknown) => e);
    expect(gone).toMatchObject({ status: 404 });
  });

  it('reads, updates with the version it read, refuses a stale version, deletes', async () => {
    const m = await writer.memories.create({
      text: 'Order 1182 ships from Rotterdam',
      namespace: 'client-crud',
    });
    const read = await writer.memories.get(m.id);
    // The worker may have indexed it in between: only its status and embedding may differ.
    expect(read).toEqual({ ...m, status: read.status, embedding: read.embedding });
    expect(['pending', 'indexed']).toContain(read.status);

    const updated = await writer.memories.update(m.id, { tags: ['shipping'] }, { version: read.version });
    expect(updated).toMatchObject({ version: 2, tags: ['shipping'] });

    const stale = await writer.memories
      .update(m.id, { tags: ['lost update'] }, { version: read.version })
      .catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(MemoryLayerError);
    expect(stale).toMatchObject({ status: 412, code: 'version_mismatch' });
    expect((await writer.memories.get(m.id)).tags).toEqual(['shipping']);

    // The generic request, typed by path and method, reaches the same record.
    const generic = await writer.request('get', '/v1/memories/{id}', { path: { id: m.id } });
    expect(generic?.version).toBe(2);

    await writer.memories.delete(m.id, { version: 2 });
    const gone = await writer.memories.get(m.id).catch((e: unknown) => e);
    expect(gone).toMatchObject({ name: 'MemoryLayerError', status: 404 });
    expect((gone as MemoryLayerError).code).toMatch(/not_found$/);
  });

  it('lists page by page and iterates over every page with the cursor', async () => {
    const texts = ['page one', 'page two', 'page three', 'page four', 'page five'].map(
      (t) => `Cursor test: ${t}`,
    );
    await writer.memories.createBatch(texts.map((text) => ({ text, namespace: 'client-pages' })));
    const first = await writer.memories.list({ namespace: 'client-pages', limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));

    const pages: string[] = [];
    const all: Memory[] = [];
    const spy = createClient({
      baseUrl,
      token: () => token('memory:read'),
      fetch: async (input, init) => {
        pages.push(new URL(String(input)).searchParams.get('cursor') ?? '(first)');
        return fetch(input, init);
      },
    });
    for await (const m of spy.memories.iterate({ namespace: 'client-pages', limit: 2 })) all.push(m);
    expect(all.map((m) => m.text).sort()).toEqual([...texts].sort());
    expect(pages).toHaveLength(3);
  });

  it('turns a problem into a MemoryLayerError with its code, field and request id; nothing written', async () => {
    const before = await countMemories();
    const empty = await writer.memories.create({ text: '   ' }).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(MemoryLayerError);
    const err = empty as MemoryLayerError;
    expect(err).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(err.errors[0].field).toBe('text');
    expect(err.fieldError('text')?.message).toEqual(expect.any(String));
    expect(err.requestId).toEqual(expect.any(String));
    expect(err.message).toContain('POST /v1/memories');

    const batch = await writer.memories
      .createBatch([{ text: 'a fine item' }, { text: 'another', kind: 42 as unknown as string }])
      .catch((e: unknown) => e);
    expect(batch).toMatchObject({ status: 400, code: 'validation_failed' });
    expect((batch as MemoryLayerError).errors[0].field).toBe('items[1].kind');
    expect(await countText('a fine item')).toBe(0);
    expect(await countMemories()).toBe(before);

    const unknownDivision = await writer.memories
      .create({ text: 'somewhere else', divisionId: 'nowhere' })
      .catch((e: unknown) => e);
    expect(unknownDivision).toMatchObject({ name: 'MemoryLayerError', status: 403, code: 'forbidden' });
  });

  it('sends the bearer token the function returns; without one or with too few scopes it is refused', async () => {
    const anonymous = createClient({ baseUrl });
    const refused = await anonymous.memories.list().catch((e: unknown) => e);
    expect(refused).toMatchObject({ name: 'MemoryLayerError', status: 401, code: 'unauthenticated' });

    const reader = createClient({ baseUrl, token: await token('memory:read') });
    const text = 'A reader may not write this';
    const forbidden = await reader.memories.create({ text }).catch((e: unknown) => e);
    expect(forbidden).toMatchObject({ status: 403, code: 'forbidden' });
    expect(await countText(text)).toBe(0);
    expect((await reader.memories.list({ limit: 1 })).items).toHaveLength(1);
  });

  it('retries a write whose answer was lost with the same Idempotency-Key: one memory, the stored answer', async () => {
    const seen: { method: string; path: string; key: string | null; status?: number }[] = [];
    const retries: RetryInfo[] = [];
    let replayed: string | null = null;
    const flaky = createClient({
      baseUrl,
      token: () => token('memory:write memory:read'),
      retryDelayMs: 10,
      onRetry: (info) => retries.push(info),
      // The request reaches the service and is written; its answer is lost on the way back once.
      fetch: recordingFetch(seen, async (res, n) => {
        if (n === 1)
          throw new TypeError('fetch failed', {
            cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
          });
        replayed = res.headers.get('idempotent-replayed');
        return res;
      }),
    });
    const text = 'Written once although its answer was lost';
    const created = await flaky.memories.create({ text });
    expect(seen.map((s) => [s.method, s.path, s.status])).toEqual([
      ['POST', '/v1/memories', 201],
      ['POST', '/v1/memories', 201],
    ]);
    expect(seen[0].key).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1].key).toBe(seen[0].key);
    expect(replayed).toBe('true');
    expect(retries).toMatchObject([{ method: 'POST', path: '/v1/memories', attempt: 1 }]);
    expect(await countText(text)).toBe(1);
    expect((await writer.memories.get(created.id)).text).toBe(text);

    // Each call has a key of its own.
    await flaky.memories.create({ text: 'A second call' });
    expect(seen[2].key).not.toBe(seen[0].key);
  });

  it('lists dead letters and names a missing one (admin)', async () => {
    const admin = createClient({ baseUrl, token: () => token('admin') });
    expect(await admin.deadLetters.list()).toEqual([]);
    const missing = await admin.deadLetters.retry(987654).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'MemoryLayerError', status: 404 });
    expect(await admin.divisions.list()).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: 'sales' })]),
    );
    const agents = await admin.divisions.agents.list('sales');
    expect(agents.map((a) => a.id)).toContain('support-bot');
  });
});

describe.each(backends)('TypeScript client in dev mode with a small queue, on %s', (backend) => {
  let ta: TestApp;
  let baseUrl: string;

  beforeAll(async () => {
    // No worker: memories stay pending until the test drains the queue.
    ta = await startTestApp(backend, { worker: false, env: { MAX_QUEUE_BACKLOG: '2' } });
    baseUrl = await baseUrlOf(ta);
  });
  afterAll(() => ta?.close());
  const countText = async (text: string) =>
    (
      await ta.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes WHERE text = $1', [
        text,
      ])
    ).rows[0].n;

  it('waitUntilIndexed gives up naming the pending memories, and resolves once they are indexed', async () => {
    const client = createClient({ baseUrl });
    const m = await client.memories.create({ text: 'Waiting for the worker' });
    const timedOut = await client.waitUntilIndexed([m.id], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(WaitTimeoutError);
    expect((timedOut as WaitTimeoutError).pending).toEqual([m.id]);

    const waiting = client.waitUntilIndexed([m.id], { timeoutMs: 60_000 });
    await ta.app.worker.drain();
    const [indexed] = await waiting;
    expect(indexed).toMatchObject({ id: m.id, status: 'indexed' });
  });

  it('retries a write refused with 503 after the Retry-After the service sent, and it is written once', async () => {
    await ta.app.worker.drain();
    const client = createClient({ baseUrl });
    await client.memories.createBatch([{ text: 'backlog one' }, { text: 'backlog two' }]);

    const seen: { method: string; path: string; key: string | null; status?: number }[] = [];
    const retries: RetryInfo[] = [];
    const patient = createClient({
      baseUrl,
      onRetry: (info) => retries.push(info),
      // When the service says it is full, the workers catch up while the client waits.
      fetch: recordingFetch(seen, async (res) => {
        if (res.status === 503) await ta.app.worker.drain();
        return res;
      }),
    });
    const text = 'Written after the backlog drained';
    const created = await patient.memories.create({ text });
    expect(seen.map((s) => s.status)).toEqual([503, 201]);
    expect(seen[1].key).toBe(seen[0].key);
    expect(retries).toMatchObject([{ attempt: 1, status: 503, delayMs: 5000 }]);
    expect((retries[0].error as MemoryLayerError).code).toBe('service_unavailable');
    expect(created.text).toBe(text);
    expect(
      (
        await ta.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes WHERE text = $1', [
          text,
        ])
      ).rows[0].n,
    ).toBe(1);
  });

  it('gives up at once when Retry-After is longer than it may wait, with the problem and the wait asked for', async () => {
    await ta.app.worker.drain();
    const client = createClient({ baseUrl });
    await client.memories.createBatch([{ text: 'full one' }, { text: 'full two' }]);
    const seen: { method: string; path: string; key: string | null; status?: number }[] = [];
    const hasty = createClient({ baseUrl, maxRetryDelayMs: 1000, fetch: recordingFetch(seen) });
    const refused = await hasty.memories.create({ text: 'not now' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      name: 'MemoryLayerError',
      status: 503,
      code: 'service_unavailable',
      retryAfter: 5,
    });
    expect(seen).toHaveLength(1);
    await ta.app.worker.drain();
  });

  it('does not retry a write the service would not recognise again (legal hold), and a caller key is used as given', async () => {
    const seen: { method: string; path: string; key: string | null; status?: number }[] = [];
    const dropping = createClient({
      baseUrl,
      retryDelayMs: 10,
      fetch: recordingFetch(seen, async () => {
        throw new TypeError('fetch failed');
      }),
    });
    await expect(dropping.legalHolds.create({ reason: 'litigation 42' })).rejects.toThrow('fetch failed');
    expect(seen).toHaveLength(1);

    const holds = createClient({ baseUrl });
    const listed = await holds.legalHolds.list();
    const hold = listed.find((h) => h.reason === 'litigation 42');
    expect(hold).toBeDefined();
    const released = await holds.legalHolds.release(hold?.id as number);
    expect(released.id).toBe(hold?.id);

    await ta.app.worker.drain();
    const keyed: typeof seen = [];
    const own = createClient({ baseUrl, fetch: recordingFetch(keyed) });
    const a = await own.memories.create({ text: 'keyed by the caller' }, { idempotencyKey: 'order-77' });
    const b = await own.memories.create({ text: 'keyed by the caller' }, { idempotencyKey: 'order-77' });
    expect(b.id).toBe(a.id);
    expect(keyed.map((k) => k.key)).toEqual(['order-77', 'order-77']);
    expect(await countText('keyed by the caller')).toBe(1);
  });

  it('reads the signed audit head and checks the whole chain on the client side', async () => {
    const auditor = createClient({ baseUrl });
    const head = await auditor.audit.head();
    expect(head).toMatchObject({ divisionId: 'default', seq: expect.any(Number) });
    expect(head.seq).toBeGreaterThan(5);
    const check = await auditor.audit.verify();
    expect(check).toMatchObject({ ok: true, keyId: head.signedHead?.keyId });
    expect(check.events).toBeGreaterThanOrEqual(head.seq);

    const distrusted = await auditor.audit.verify({ trustedKeyId: 'some-other-key' });
    expect(distrusted).toMatchObject({ ok: false });
    expect(distrusted.ok === false && distrusted.reason).toContain('not the trusted key');

    const page = await auditor.audit.list({ limit: 2 });
    expect(page.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(page.nextAfterSeq).toBe(2);
  });
});

describe.each(backends)(
  'TypeScript client with a client certificate (mTLS) through an undici Agent, on %s',
  (backend) => {
    let ta: TestApp;
    let baseUrl: string;
    const agents: Agent[] = [];

    /** The README's recipe: a fetch that sends every request through a dispatcher holding the certificate. */
    const certificateFetch = (client?: { cert: Buffer; key: Buffer }): FetchLike => {
      const dispatcher = new Agent({ connect: { ca: pki.ca.cert, ...client } });
      agents.push(dispatcher);
      return (input, init) =>
        undiciFetch(String(input), { ...init, dispatcher } as Parameters<
          typeof undiciFetch
        >[1]) as unknown as Promise<Response>;
    };

    beforeAll(async () => {
      ta = await startTestApp(backend, {
        env: {
          HOST: '127.0.0.1',
          TLS_CERT: pki.server.certFile,
          TLS_KEY: pki.server.keyFile,
          TLS_CLIENT_CA: pki.ca.certFile,
          IDENTITIES_FILE: pki.write(
            'client-identities.json',
            JSON.stringify({
              services: { billing: { roles: ['writer', 'auditor'], divisions: ['default'] } },
            }),
          ),
        },
      });
      await ta.http.listen({ port: 0, host: '127.0.0.1' });
      baseUrl = `https://127.0.0.1:${(ta.http.server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      for (const a of agents) await a.close();
      await ta?.close();
    });

    it('writes, reads and verifies the audit chain as the service its certificate names', async () => {
      const billing = createClient({ baseUrl, fetch: certificateFetch(pki.clients.billing) });
      const m = await billing.memories.create({ text: 'Invoices over 10k need a second signature' });
      expect(m).toMatchObject({ divisionId: 'default', agentId: null });
      expect((await billing.memories.get(m.id)).text).toBe(m.text);
      const check = await billing.audit.verify();
      expect(check).toMatchObject({ ok: true });
      expect(check.events).toBeGreaterThan(0);
      const events = [];
      for await (const e of billing.audit.events({ resourceType: 'memory', resourceId: m.id }))
        events.push(e);
      expect(events.map((e) => e.actor)).toContain('service:billing');
    });

    it('without a certificate the handshake is refused: a network error, no answer to parse', async () => {
      const seen: RetryInfo[] = [];
      const anonymous = createClient({
        baseUrl,
        fetch: certificateFetch(),
        retries: 1,
        retryDelayMs: 10,
        onRetry: (info) => seen.push(info),
      });
      const err = await anonymous.memories.list().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(MemoryLayerError);
      // A GET is safe to try again: once, as configured, then the error surfaces.
      expect(seen).toHaveLength(1);
      expect(seen[0].status).toBeUndefined();
    });
  },
);
