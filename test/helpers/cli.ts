import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

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
