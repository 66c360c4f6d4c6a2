import { format } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createApp } from '../app.js';
import { type Caller, SCOPES } from '../auth/caller.js';
import { loadConfig } from '../config.js';
import { buildHttpServer } from '../http/server.js';
import { httpRest, injectRest, type Rest } from '../mcp/rest.js';
import { createMcpServer } from '../mcp/server.js';
import { createLogger } from '../platform/logger.js';

/**
 * Who the embedded server (no --url, no token) acts as: the operator of the data directory, who
 * could open it with any other command. Every scope, every division; audit events name it.
 */
export const LOCAL_OPERATOR: Caller = {
  kind: 'service',
  id: 'mcp-local',
  divisions: '*',
  scopes: new Set(SCOPES),
};

/** stdout is the protocol channel: anything a library prints goes to stderr instead. */
function keepStdoutForProtocol() {
  const toStderr = (...args: unknown[]) => {
    process.stderr.write(`${format(...args)}\n`);
  };
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
}

/**
 * `memory-layer mcp`: the MCP server over stdio, for desktop agents and IDEs that spawn it.
 * With --url it calls a running service's REST API (bearer token from the environment); without,
 * it opens DATA_DIR (or DATABASE_URL) itself, runs the embedded service with its indexing worker,
 * and makes every tool call an in-process REST request. Either way the tools behave exactly like
 * the /mcp endpoint's.
 */
export async function runMcp(opts: { url?: string; tokenEnv: string }) {
  keepStdoutForProtocol();
  const token = process.env[opts.tokenEnv] || undefined;
  let rest: Rest;
  let close = async () => {};
  if (opts.url) {
    rest = httpRest(opts.url, token);
  } else {
    const config = loadConfig();
    const logger = createLogger(config.LOG_LEVEL ?? 'warn', { stderr: true });
    const app = await createApp(config, { worker: true, logger });
    app.start();
    const http = await buildHttpServer(app);
    await http.ready();
    rest = token
      ? injectRest(http, { headers: { authorization: `Bearer ${token}` } })
      : injectRest(http, { caller: LOCAL_OPERATOR });
    close = async () => {
      await http.close();
      await app.close();
    };
  }
  const server = createMcpServer(rest);
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    Promise.all([server.close(), close()]).then(
      () => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`memory-layer mcp: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  server.onclose = () => stop(0);
  process.stdin.once('end', () => stop(0));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop(0));
  await server.connect(new StdioServerTransport());
}
