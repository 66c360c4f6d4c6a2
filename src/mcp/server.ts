import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Rest } from './rest.js';
import { callTool, TOOLS } from './tools.js';

export const MCP_SERVER_INFO = { name: 'memory-layer', version: '0.1.0' } as const;

const INSTRUCTIONS =
  'Long-term memory. Call recall before answering questions that may depend on earlier conversations or facts; call remember for facts, preferences and decisions worth keeping. Errors carry a stable `code` (e.g. validation_failed, forbidden, memory_not_found, version_mismatch) and the fields at fault.';

/**
 * An MCP server whose tools are REST calls through `rest`. The SDK's low-level `Server` is used
 * (not `McpServer`) because the tools' input schemas are plain JSON Schema, built from the same
 * schemas the REST routes validate with, rather than zod shapes that would validate differently.
 */
export function createMcpServer(rest: Rest): Server {
  const server = new Server(MCP_SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request) =>
    callTool(rest, request.params.name, request.params.arguments),
  );
  return server;
}
