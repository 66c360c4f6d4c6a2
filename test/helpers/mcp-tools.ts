/** The MCP tools every transport must list, sorted by name (pinned here, not read from src). */
export const TOOL_NAMES = [
  'forget',
  'get_memory',
  'list_memories',
  'recall',
  'remember',
  'remember_document',
  'update_memory',
];
