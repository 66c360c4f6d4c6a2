import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Backend, openTestDatabase, type TestDatabase } from './db.js';

const run = promisify(execFile);
export const CLI_BIN = join(import.meta.dirname, '../../bin/memory-layer.js');

export interface CliResult {
  code: number;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** The real CLI in a child process, as an operator runs it; `env` is laid over this process's. */
export async function runCli(
  env: Record<string, string>,
  args: string[],
  timeoutMs = 120_000,
): Promise<CliResult> {
  try {
    const out = await run(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, ...env },
      timeout: timeoutMs,
    });
    return { code: 0, stdout: out.stdout, stderr: out.stderr };
  } catch (err) {
    const e = err as { code: number; signal?: string; stdout: string; stderr: string };
    return { code: e.code, signal: e.signal ?? undefined, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * The settings that give CLI child processes a database of their own: a new schema on the
 * PostgreSQL server (dropped with `t`), or PGlite under their DATA_DIR.
 */
export async function cliDatabase(
  backend: Backend,
): Promise<{ env: Record<string, string>; t?: TestDatabase }> {
  if (backend === 'pglite') return { env: { DATABASE_URL: '' } };
  const t = await openTestDatabase('postgres');
  return {
    env: { DATABASE_URL: process.env.DATABASE_URL as string, DATABASE_SCHEMA: t.schema as string },
    t,
  };
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
