import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../../app.js';
import { authMode } from '../../config.js';
import { injectRest } from '../../mcp/rest.js';
import { createMcpServer } from '../../mcp/server.js';
import { AppError, ErrorCode } from '../../platform/errors.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** The host name of a Host header or an Origin URL, lower-cased, without the port. */
function hostnameOf(value: string): string | undefined {
  try {
    return new URL(value.includes('://') ? value : `http://${value}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * In dev mode (no credentials, loopback only) a web page could reach /mcp by DNS rebinding: a
 * name of its own that resolves to 127.0.0.1. The page's requests then carry its name as Host
 * and Origin, so both must be loopback names.
 */
function refuseRebinding(req: FastifyRequest) {
  const host = req.headers.host;
  const origin = req.headers.origin;
  const foreign = (v: string | undefined) => v !== undefined && !LOOPBACK_HOSTS.has(hostnameOf(v) ?? '');
  if (foreign(host) || foreign(origin)) {
    throw new AppError(
      ErrorCode.forbidden,
      'in dev mode /mcp answers only requests addressed to a loopback name (localhost, 127.0.0.1, [::1])',
    );
  }
}

/** A JSON-RPC error answer for methods the stateless endpoint does not offer. */
const methodNotAllowed = (reply: FastifyReply) =>
  reply
    .status(405)
    .header('allow', 'POST')
    .send({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Method not allowed: this endpoint is stateless, use POST' },
      id: null,
    });

/**
 * MCP over Streamable HTTP at /mcp, stateless: every POST carries its JSON-RPC messages and gets
 * its answer as JSON, so any replica can answer any request and nothing is kept between them.
 * The request is authenticated by the same hook as every REST route (bearer token, client
 * certificate, dev mode); it needs no scope of its own. Each tool call is then an in-process
 * REST request (src/mcp/rest.ts) made as that caller, which checks the scopes, confines and
 * audits exactly like the route it mirrors.
 */
export function mcpRoutes(app: App) {
  const dev = authMode(app.config) === 'dev';
  return async (server: FastifyInstance) => {
    server.post(
      '/mcp',
      {
        config: { scopes: [] },
        schema: {
          tags: ['mcp'],
          summary: 'Model Context Protocol (Streamable HTTP, stateless)',
          description:
            'JSON-RPC messages of the Model Context Protocol. Tools: remember, remember_document, recall, get_memory, update_memory, forget, list_memories; each runs as the REST route it mirrors, with the caller of this request.',
        },
      },
      async (req, reply) => {
        if (dev) refuseRebinding(req);
        const transport = new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          enableJsonResponse: true,
        });
        const mcp = createMcpServer(injectRest(server, { caller: req.caller, requestId: req.id }));
        try {
          await mcp.connect(transport);
          const headers = new Headers();
          for (const [name, value] of Object.entries(req.headers)) {
            if (typeof value === 'string') headers.set(name, value);
          }
          const answer = await transport.handleRequest(
            new Request(`http://localhost${req.url}`, { method: 'POST', headers }),
            { parsedBody: req.body },
          );
          reply.status(answer.status);
          answer.headers.forEach((value, name) => {
            reply.header(name, value);
          });
          const text = await answer.text();
          return reply.send(text === '' ? undefined : text);
        } finally {
          await mcp.close();
        }
      },
    );
    for (const method of ['GET', 'DELETE'] as const) {
      server.route({
        method,
        url: '/mcp',
        config: { scopes: [] },
        schema: { hide: true },
        handler: async (req, reply) => {
          if (dev) refuseRebinding(req);
          return methodNotAllowed(reply);
        },
      });
    }
  };
}
