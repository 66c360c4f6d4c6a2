import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemAccess } from '../../src/memories/access.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { backends } from '../helpers/db.js';
import { TOOL_NAMES } from '../helpers/mcp-tools.js';
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
 * The MCP endpoint at /mcp, driven by the SDK's own client over a real socket: bearer tokens as on
 * REST routes, the REST scopes, confinement, validation and audit for each tool call.
 */

interface ToolProblem {
  status: number;
  code: string;
  detail: string;
  errors?: { field: string; message: string }[];
}
interface CallResult {
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
  content: { type: string; text?: string }[];
}

let pki: TestPki;
let kernel: SigningKey;

beforeAll(async () => {
  pki = createTestPki();
  kernel = await signingKey('EdDSA');
});
afterAll(() => pki?.cleanup());

describe.each(backends)('MCP over Streamable HTTP on %s', (backend) => {
  let ta: TestApp;
  let url: URL;
  let foreignId: string;
  const clients: Client[] = [];

  async function connect(token?: string): Promise<Client> {
    const client = new Client({ name: 'mcp-http-test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(url, {
        requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {},
      }),
    );
    clients.push(client);
    return client;
  }
  const token = (scope: string) => mintToken(kernel, { claims: { scope }, expiresIn: 3000 });
  const call = async (client: Client, name: string, args: Record<string, unknown>) =>
    (await client.callTool({ name, arguments: args })) as CallResult;
  const ok = (r: CallResult) => {
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    return r.structuredContent as Record<string, unknown>;
  };
  const problem = (r: CallResult) => {
    expect(r.isError, JSON.stringify(r.content)).toBe(true);
    const p = (r.structuredContent as { error: ToolProblem }).error;
    // The text carries the same problem, for clients that only read content.
    expect(JSON.parse(r.content[0].text as string)).toEqual({ error: p });
    return p;
  };
  const countText = async (text: string) =>
    Number(
      (
        await ta.t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_nodes WHERE text = $1', [
          text,
        ])
      ).rows[0].n,
    );

  beforeAll(async () => {
    ta = await startTestApp(backend, {
      env: {
        JWT_PUBLIC_KEYS_FILE: pki.write('kernel.pem', kernel.publicPem),
        JWT_ISSUER: TEST_ISSUER,
        JWT_AUDIENCE: TEST_AUDIENCE,
      },
    });
    await ta.http.listen({ port: 0, host: '127.0.0.1' });
    url = new URL(`http://127.0.0.1:${(ta.http.server.address() as AddressInfo).port}/mcp`);
    const by = { actor: 'system:test' };
    for (const id of ['sales', 'other']) {
      await ta.app.divisions.createDivision(by, { id });
      await ta.app.divisions.createAgent(by, id, { id: 'support-bot' });
    }
    const foreign = await ta.app.memories.create(systemAccess('test'), 'other', {
      text: 'Other division: the launch code is kept in the blue folder',
      agentId: 'support-bot',
    } as never);
    foreignId = foreign.memory.id;
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await ta?.close();
  });

  it('refuses a request without credentials like a REST route (401 problem), and GET with 405', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await res.json()).toMatchObject({ code: 'unauthenticated' });
    await expect(connect(undefined)).rejects.toThrow();

    const get = await fetch(url, {
      headers: { authorization: `Bearer ${await token('memory:read')}`, accept: 'text/event-stream' },
    });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it('lists the seven tools with JSON Schema inputs and descriptions', async () => {
    const client = await connect(await token('memory:read'));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.description?.length ?? 0).toBeGreaterThan(60);
    }
    const remember = tools.find((t) => t.name === 'remember');
    expect(Object.keys(remember?.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(['text', 'namespace', 'tags', 'kind', 'metadata', 'sessionId', 'memories']),
    );
    expect(tools.find((t) => t.name === 'update_memory')?.inputSchema.required).toEqual(['id', 'version']);
  });

  it('remembers, then recalls by meaning and words, confined to the token and audited', async () => {
    const client = await connect(await token('memory:read memory:write'));
    const stored = ok(
      await call(client, 'remember', {
        text: 'The customer Dana prefers invoices sent by email as PDF',
        tags: ['billing'],
        kind: 'preference',
        metadata: { customer: 'dana' },
      }),
    );
    expect(stored).toMatchObject({
      divisionId: 'sales',
      agentId: 'support-bot',
      kind: 'preference',
      version: 1,
    });
    const batch = ok(
      await call(client, 'remember', {
        memories: [
          { text: 'Dana asked to move the quarterly review to Thursday', sessionId: 'call-7', sequence: 0 },
          { text: 'Dana works in the Lisbon office', sessionId: 'call-7', sequence: 1 },
        ],
      }),
    );
    expect((batch.items as unknown[]).length).toBe(2);
    for (const id of [stored.id, ...(batch.items as { id: string }[]).map((m) => m.id)]) {
      await waitFor(async () => ok(await call(client, 'get_memory', { id })).status === 'indexed', {
        what: `memory ${id} to be indexed`,
        timeoutMs: 120_000,
      });
    }

    const found = ok(
      await call(client, 'recall', { query: 'How does Dana want to receive invoices?', k: 3 }),
    );
    const hits = found.hits as { id: string; score: number; text: string }[];
    expect(hits[0]).toMatchObject({ id: stored.id, score: expect.any(Number) });
    // Nothing of the other division, even for words only it holds.
    const foreign = ok(await call(client, 'recall', { query: 'launch code blue folder', mode: 'keyword' }));
    expect((foreign.hits as { id: string }[]).map((h) => h.id)).not.toContain(foreignId);

    const listed = ok(await call(client, 'list_memories', { sessionId: 'call-7' }));
    expect((listed.items as { text: string }[]).map((m) => m.text).sort()).toEqual([
      'Dana asked to move the quarterly review to Thursday',
      'Dana works in the Lisbon office',
    ]);

    const events = await ta.t.db.query<{ actor: string; action: string }>(
      'SELECT actor, action FROM audit_events WHERE resource_id = $1 ORDER BY seq',
      [stored.id],
    );
    expect(events.rows[0]).toMatchObject({ actor: 'agent:support-bot' });
  });

  it('remembers a document: split into memories of one session that recall finds; retried once with its key', async () => {
    const client = await connect(await token('memory:read memory:write'));
    const args = {
      text: '# Onboarding\n\nNew staff collect their badge from the Lisbon front desk.\n\n## Laptops\n\nLaptops are issued on the second day.',
      title: 'Onboarding guide',
      tags: ['handbook', 'hr'],
      metadata: { edition: 2 },
      idempotencyKey: 'onboarding-v2',
    };
    const doc = ok(await call(client, 'remember_document', args));
    expect(doc).toMatchObject({
      divisionId: 'sales',
      agentId: 'support-bot',
      title: 'Onboarding guide',
      contentType: 'text/markdown',
      tags: ['handbook', 'hr'],
      metadata: { edition: 2 },
    });
    // The same call again (a retry): the same document, nothing stored twice.
    expect(ok(await call(client, 'remember_document', args)).id).toBe(doc.id);
    const rows = await ta.t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM documents WHERE title = $1',
      ['Onboarding guide'],
    );
    expect(rows.rows[0].n).toBe(1);
    await waitFor(
      async () => {
        const listed = ok(await call(client, 'list_memories', { sessionId: doc.sessionId as string }));
        return (listed.items as { status: string }[]).length >= 2;
      },
      { what: `document ${doc.id} to be split`, timeoutMs: 60_000 },
    );
    const found = ok(await call(client, 'recall', { query: 'badge front desk', mode: 'keyword', k: 1 }));
    expect((found.hits as { sessionId: string; text: string }[])[0]).toMatchObject({
      sessionId: doc.sessionId,
    });
    // Bad arguments: the field at fault, nothing stored.
    expect(problem(await call(client, 'remember_document', { text: '   ' }))).toMatchObject({
      code: 'validation_failed',
      errors: [expect.objectContaining({ field: 'text' })],
    });
    expect(problem(await call(client, 'remember_document', { text: 'x', format: 'pdf' }))).toMatchObject({
      code: 'validation_failed',
      errors: [expect.objectContaining({ field: 'format' })],
    });
  });

  it('updates with the version read, refuses a stale one, and forgets', async () => {
    const client = await connect(await token('memory:read memory:write memory:delete'));
    const m = ok(await call(client, 'remember', { text: 'Dana is on the basic plan' }));
    const stale = problem(await call(client, 'update_memory', { id: m.id, version: 7, text: 'x' }));
    expect(stale).toMatchObject({ status: 412, code: 'version_mismatch' });
    const updated = ok(
      await call(client, 'update_memory', {
        id: m.id,
        version: m.version,
        text: 'Dana is on the premium plan',
      }),
    );
    expect(updated).toMatchObject({ text: 'Dana is on the premium plan', version: 2 });
    expect(ok(await call(client, 'forget', { id: m.id, version: 2 }))).toEqual({ id: m.id, forgotten: true });
    expect(problem(await call(client, 'get_memory', { id: m.id }))).toMatchObject({
      status: 404,
      code: 'memory_not_found',
    });
    const row = await ta.t.db.query<{ deleted: boolean }>(
      'SELECT deleted_at IS NOT NULL AS deleted FROM memory_nodes WHERE id = $1',
      [m.id],
    );
    expect(row.rows[0].deleted).toBe(true);
  });

  it("answers another division's memory like an unknown one, and leaves it untouched", async () => {
    const client = await connect(await token('memory:read memory:write memory:delete'));
    const before = await ta.t.db.query('SELECT text, version, deleted_at FROM memory_nodes WHERE id = $1', [
      foreignId,
    ]);
    for (const [tool, args] of [
      ['get_memory', { id: foreignId }],
      ['update_memory', { id: foreignId, version: 1, text: 'changed' }],
      ['forget', { id: foreignId }],
    ] as const) {
      expect(problem(await call(client, tool, args)), tool).toMatchObject({
        status: 404,
        code: 'memory_not_found',
      });
    }
    expect(problem(await call(client, 'list_memories', { divisionId: 'other' }))).toMatchObject({
      status: 403,
      code: 'forbidden',
    });
    const after = await ta.t.db.query('SELECT text, version, deleted_at FROM memory_nodes WHERE id = $1', [
      foreignId,
    ]);
    expect(after.rows).toEqual(before.rows);
  });

  it('refuses a write without memory:write as a tool error, and writes nothing', async () => {
    const client = await connect(await token('memory:read'));
    const text = 'A reader must not be able to store this';
    const refused = problem(await call(client, 'remember', { text }));
    expect(refused).toMatchObject({ status: 403, code: 'forbidden' });
    expect(refused.detail).toMatch(/memory:write/);
    const batch = problem(await call(client, 'remember', { memories: [{ text }] }));
    expect(batch.code).toBe('forbidden');
    expect(await countText(text)).toBe(0);
  });

  it('answers bad arguments with the field at fault, and writes nothing', async () => {
    const client = await connect(await token('memory:read memory:write'));
    const cases: [string, Record<string, unknown>, string][] = [
      ['remember', { text: 'tagged wrongly', tags: 'billing' }, 'tags'],
      ['remember', { text: 'unknown field', colour: 'blue' }, 'colour'],
      ['remember', { text: 'nul \u0000 inside' }, 'text'],
      [
        'remember',
        { memories: [{ text: 'first of a bad batch' }, { tags: ['no text'] }] },
        'memories[1].text',
      ],
      ['remember', { namespace: 'no-text' }, 'text'],
      ['recall', { query: 'anything', k: 1000 }, 'k'],
      ['recall', { query: 'anything', mode: 'psychic' }, 'mode'],
      ['get_memory', { id: 'not-a-uuid' }, 'id'],
      ['update_memory', { id: foreignId, text: 'no version' }, 'version'],
      ['list_memories', { limit: 0 }, 'limit'],
    ];
    for (const [tool, args, field] of cases) {
      const p = problem(await call(client, tool, args));
      expect(p, `${tool} ${JSON.stringify(args)}`).toMatchObject({ status: 400, code: 'validation_failed' });
      expect(p.errors?.[0]?.field, `${tool} ${JSON.stringify(args)}`).toBe(field);
    }
    expect(await countText('first of a bad batch')).toBe(0);
    expect(await countText('tagged wrongly')).toBe(0);
    // The session still works after all those errors.
    expect((await client.listTools()).tools.length).toBe(7);
  });
});
