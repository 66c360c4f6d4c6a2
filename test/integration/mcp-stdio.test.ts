import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemAccess } from '../../src/memories/access.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { CLI_BIN, cliDatabase } from '../helpers/cli.js';
import { backends, type TestDatabase } from '../helpers/db.js';
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
 * `memory-layer mcp` over stdio, spawned as an MCP client spawns it (the real CLI through its bin
 * script) and driven by the SDK's own client: embedded on a data directory of its own, and in
 * front of a running service with --url and a token from the environment.
 */

interface ToolProblem {
  status: number;
  code: string;
  errors?: { field: string }[];
}
interface CallResult {
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
}

const STARTUP_MS = 180_000;

let pki: TestPki;
let kernel: SigningKey;
let jwtEnv: Record<string, string>;

beforeAll(async () => {
  pki = createTestPki();
  kernel = await signingKey('EdDSA');
  jwtEnv = {
    JWT_PUBLIC_KEYS_FILE: pki.write('kernel.pem', kernel.publicPem),
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
  };
});
afterAll(() => pki?.cleanup());

const token = (claims: Record<string, string>) => mintToken(kernel, { claims, expiresIn: 3000 });

/** The CLI as an MCP client spawns it, with `env` laid over this process's environment. */
async function spawnMcp(args: string[], env: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'mcp-stdio-test', version: '1.0.0' });
  const merged = Object.fromEntries(
    Object.entries({ ...process.env, LOG_LEVEL: 'warn', ...env }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [CLI_BIN, 'mcp', ...args], env: merged }),
  );
  return client;
}

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 })) as CallResult;
const ok = (r: CallResult) => {
  expect(r.isError, JSON.stringify(r.structuredContent)).toBeFalsy();
  return r.structuredContent as Record<string, unknown>;
};
const problem = (r: CallResult) => {
  expect(r.isError, JSON.stringify(r.structuredContent)).toBe(true);
  return (r.structuredContent as { error: ToolProblem }).error;
};

describe.each(backends)('memory-layer mcp over stdio on %s', (backend) => {
  describe('embedded on its own data directory', () => {
    let dataDir: string;
    let env: Record<string, string>;
    let t: TestDatabase | undefined;
    let storedId: string;
    const text = 'The build server restarts every Sunday at 03:00 UTC';

    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'ml-mcp-'));
      const db = await cliDatabase(backend);
      t = db.t;
      env = { DATA_DIR: dataDir, WORKER_POLL_MS: '50', ...db.env, ...jwtEnv };
    });
    afterAll(async () => {
      await t?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it(
      'lists the tools, remembers, recalls, and answers bad arguments and unknown ids as tool errors',
      async () => {
        const client = await spawnMcp([], env);
        try {
          const { tools } = await client.listTools();
          expect(tools.map((tool) => tool.name).sort()).toEqual(TOOL_NAMES);
          const stored = ok(await call(client, 'remember', { text, tags: ['ops'] }));
          storedId = stored.id as string;
          expect(stored).toMatchObject({ divisionId: 'default', text, tags: ['ops'], version: 1 });
          // Found by its words at once, by meaning once indexed by the embedded worker.
          const byWords = ok(await call(client, 'recall', { query: 'build server Sunday', mode: 'keyword' }));
          expect((byWords.hits as { id: string }[])[0]?.id).toBe(storedId);
          await waitFor(
            async () => ok(await call(client, 'get_memory', { id: storedId })).status === 'indexed',
            { what: 'the memory to be indexed', timeoutMs: 120_000, intervalMs: 200 },
          );
          const hybrid = ok(await call(client, 'recall', { query: 'when does the build machine reboot?' }));
          expect((hybrid.hits as { id: string; score: number }[])[0]).toMatchObject({
            id: storedId,
            score: expect.any(Number),
          });

          const bad = problem(await call(client, 'remember', { text: 'bad tags', tags: 'ops' }));
          expect(bad).toMatchObject({ status: 400, code: 'validation_failed' });
          expect(bad.errors?.[0]?.field).toBe('tags');
          expect(
            problem(await call(client, 'get_memory', { id: '00000000-0000-4000-8000-000000000000' })),
          ).toMatchObject({ status: 404, code: 'memory_not_found' });
        } finally {
          await client.close();
        }
      },
      STARTUP_MS,
    );

    it(
      "with a token: confined to the token's agent, and a missing scope writes nothing",
      async () => {
        const reader = await token({ division: 'default', agent: 'support-bot', scope: 'memory:read' });
        const client = await spawnMcp([], { ...env, MEMORY_LAYER_TOKEN: reader });
        try {
          // The operator's memory is not the agent's: like an unknown id.
          expect(problem(await call(client, 'get_memory', { id: storedId }))).toMatchObject({
            status: 404,
            code: 'memory_not_found',
          });
          const refused = problem(await call(client, 'remember', { text: 'a reader wrote this' }));
          expect(refused).toMatchObject({ status: 403, code: 'forbidden' });
        } finally {
          await client.close();
        }
      },
      STARTUP_MS,
    );

    it(
      'writes only protocol messages to stdout and exits when its input ends; nothing was written by the reader',
      async () => {
        const child = spawn(process.execPath, [CLI_BIN, 'mcp'], {
          env: { ...process.env, LOG_LEVEL: 'info', ...env },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        const lines: string[] = [];
        let stderr = '';
        child.stderr.on('data', (chunk) => {
          stderr += chunk;
        });
        const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
        const answers = new Map<number, Record<string, unknown>>();
        createInterface({ input: child.stdout }).on('line', (line) => {
          lines.push(line);
          try {
            const message = JSON.parse(line) as { id?: number };
            if (typeof message.id === 'number') answers.set(message.id, message);
          } catch {
            // Kept in `lines`; the assertion below names it.
          }
        });
        const send = (message: Record<string, unknown>) =>
          child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
        send({
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'raw', version: '1.0.0' },
          },
        });
        await waitFor(() => answers.get(1), {
          what: () => `initialize answer; stderr: ${stderr}`,
          timeoutMs: 120_000,
        });
        send({ method: 'notifications/initialized' });
        send({ id: 2, method: 'tools/call', params: { name: 'list_memories', arguments: {} } });
        const listed = await waitFor(() => answers.get(2), {
          what: 'list_memories answer',
          timeoutMs: 60_000,
        });
        const items = (listed.result as { structuredContent: { items: { text: string }[] } })
          .structuredContent.items;
        expect(items.map((m) => m.text)).toEqual([text]);
        child.stdin.end();
        expect(await exited).toBe(0);
        // Info-level logs were written, and went to stderr.
        expect(stderr).toMatch(/"level":30/);
        for (const line of lines) expect(JSON.parse(line), line).toMatchObject({ jsonrpc: '2.0' });
      },
      STARTUP_MS,
    );
  });

  describe('in front of a running service (--url)', () => {
    let ta: TestApp;
    let url: string;
    let foreignId: string;

    beforeAll(async () => {
      ta = await startTestApp(backend, { env: jwtEnv });
      await ta.http.listen({ port: 0, host: '127.0.0.1' });
      url = `http://127.0.0.1:${(ta.http.server.address() as AddressInfo).port}`;
      const by = { actor: 'system:test' };
      for (const id of ['sales', 'other']) {
        await ta.app.divisions.createDivision(by, { id });
        await ta.app.divisions.createAgent(by, id, { id: 'support-bot' });
      }
      const foreign = await ta.app.memories.create(systemAccess('test'), 'other', {
        text: 'Other division: the vault combination',
      } as never);
      foreignId = foreign.memory.id;
    });
    afterAll(async () => {
      await ta?.close();
    });

    it(
      "acts as the token's agent: remembers and recalls in its division, never another's",
      async () => {
        const writer = await token({ scope: 'memory:read memory:write' });
        const client = await spawnMcp(['--url', url], { MEMORY_LAYER_TOKEN: writer });
        try {
          const stored = ok(
            await call(client, 'remember', { text: 'Sales prefers the quarterly report as a spreadsheet' }),
          );
          expect(stored).toMatchObject({ divisionId: 'sales', agentId: 'support-bot' });
          const row = await ta.t.db.query('SELECT division_id, agent_id FROM memory_nodes WHERE id = $1', [
            stored.id,
          ]);
          expect(row.rows).toEqual([{ division_id: 'sales', agent_id: 'support-bot' }]);
          const found = ok(
            await call(client, 'recall', { query: 'quarterly report spreadsheet', mode: 'keyword' }),
          );
          expect((found.hits as { id: string }[])[0]?.id).toBe(stored.id);
          expect(problem(await call(client, 'get_memory', { id: foreignId }))).toMatchObject({
            status: 404,
            code: 'memory_not_found',
          });
          const bad = problem(await call(client, 'recall', { query: 'x', k: 0 }));
          expect(bad.errors?.[0]?.field).toBe('k');
        } finally {
          await client.close();
        }
      },
      STARTUP_MS,
    );

    it(
      'a token without memory:write gets a tool error and nothing is written',
      async () => {
        const reader = await token({ scope: 'memory:read' });
        const client = await spawnMcp(['--url', url], { MEMORY_LAYER_TOKEN: reader });
        try {
          const text = 'Written by a reader over stdio';
          expect(problem(await call(client, 'remember', { text }))).toMatchObject({
            status: 403,
            code: 'forbidden',
          });
          const rows = await ta.t.db.query('SELECT id FROM memory_nodes WHERE text = $1', [text]);
          expect(rows.rows).toEqual([]);
        } finally {
          await client.close();
        }
        // Without a token the service refuses every tool call (enforce mode), as a tool error.
        const anonymous = await spawnMcp(['--url', url], { MEMORY_LAYER_TOKEN: '' });
        try {
          expect(problem(await call(anonymous, 'list_memories', {}))).toMatchObject({
            status: 401,
            code: 'unauthenticated',
          });
        } finally {
          await anonymous.close();
        }
      },
      STARTUP_MS,
    );
  });
});
