import { listQuery, newMemoryItem, patchMemoryBody, scopeQuery, searchBody } from '../http/schemas.js';
import type { Rest, RestAnswer, RestCall } from './rest.js';

/**
 * The MCP tools: each one is a REST call (src/mcp/rest.ts), so it inherits that route's
 * validation, scopes, division and agent confinement, idempotency and audit unchanged. Input
 * schemas are built from the same JSON schemas the routes validate with; what a tool adds of its
 * own (`memories`, `version`, `wait`, `idempotencyKey`) is checked here with the same problem shape.
 */

type JsonSchema = Record<string, unknown>;

export interface ToolDefinition {
  name: string;
  title: string;
  description: string;
  inputSchema: JsonSchema & { type: 'object' };
  annotations: {
    readOnlyHint?: boolean;
    destructiveHint?: boolean;
    idempotentHint?: boolean;
    openWorldHint?: boolean;
  };
}

export interface ToolResult {
  [key: string]: unknown;
  content: { type: 'text'; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/** A problem+json as a tool error carries it: the REST status, stable code, detail and fields. */
export interface ToolProblem {
  status: number;
  code: string;
  detail: string;
  errors?: { field: string; in?: string; message: string }[];
  requestId?: string;
}

const { vector: _vector, model: _model, ...memoryFields } = newMemoryItem.properties;
const { vector: _searchVector, ...searchFields } = searchBody.properties;
const divisionId = {
  ...scopeQuery.properties.divisionId,
  description:
    'Division to work in. Agent tokens are bound to their own division and may leave this out; services with several divisions name one.',
};
const memoryId = {
  type: 'string',
  format: 'uuid',
  description: 'The memory id (as returned by remember, recall or list_memories)',
};

export const TOOLS: ToolDefinition[] = [
  {
    name: 'remember',
    title: 'Remember',
    description:
      'Store something worth remembering later: a fact, a preference, a decision, a conversation turn. Give `text` for one memory, or `memories` (a list of the same fields) to store several at once, all or nothing. Use namespace, kind and tags to organise; sessionId, sequence and occurredAt for conversation turns; supersedes to replace outdated memories (search then skips them). Returns the stored memories with their ids. A memory is findable by its words at once, by meaning once indexed (status `indexed`; pass `wait: true` to return only then).',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...memoryFields,
        memories: {
          type: 'array',
          minItems: 1,
          maxItems: 1000,
          items: { ...newMemoryItem, properties: memoryFields },
          description: 'Several memories at once (instead of text and its fields); all are stored or none.',
        },
        divisionId,
        wait: {
          type: 'boolean',
          description:
            'Return once the memories are searchable by meaning (or after the service wait timeout).',
        },
        idempotencyKey: {
          type: 'string',
          description:
            'Send the same key when retrying the same call: it is stored once and the first answer is returned.',
        },
      },
    },
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  },
  {
    name: 'recall',
    title: 'Recall',
    description:
      "Search memories by meaning and by words and return the best matches, best first, each with its id, text, score (and the keyword and vector scores behind it), tags, metadata and session fields. Use it before answering anything that may depend on what was said or learned earlier. `mode`: hybrid (default, best), keyword, or vector. Narrow with namespace, kind, tags (all must match), metadata (equality), agentId, sessionId or a date range; `expand` adds the neighbouring turns of each hit's conversation.",
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['query'],
      properties: {
        ...searchFields,
        query: {
          ...searchBody.properties.query,
          description: 'What to look for, in natural language or keywords',
        },
        k: { ...searchBody.properties.k, description: 'How many hits (1-100, default 10)' },
        divisionId,
      },
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  {
    name: 'get_memory',
    title: 'Get a memory',
    description:
      'Read one memory by id: its text, fields, status and `version` (pass that version to update_memory or forget).',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      properties: { id: memoryId, divisionId },
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  {
    name: 'update_memory',
    title: 'Update a memory',
    description:
      'Change fields of a memory (text, namespace, kind, tags, metadata, piiFlags, expiresAt); only the given fields change, and new text is re-embedded. `version` is required: the version you last read (get_memory, remember or list_memories). If the memory changed since, the call fails with `version_mismatch` and nothing is written: read it again and retry. To replace a fact with a new memory instead, use remember with `supersedes`.',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'version'],
      properties: {
        id: memoryId,
        version: {
          type: 'integer',
          minimum: 0,
          maximum: 999999999,
          description: 'The version you read; the update applies only if the memory is still at it',
        },
        divisionId,
        ...patchMemoryBody.properties,
      },
    },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  },
  {
    name: 'forget',
    title: 'Forget a memory',
    description:
      'Delete a memory that is wrong or no longer wanted: it disappears from reads and search at once (soft delete; it is purged for good after the retention grace period). Memories under legal hold cannot be forgotten (`legal_hold`). Give `version` to delete only if it has not changed since you read it.',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      properties: {
        id: memoryId,
        divisionId,
        version: {
          type: 'integer',
          minimum: 0,
          maximum: 999999999,
          description: 'Only delete if still at this version',
        },
      },
    },
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  },
  {
    name: 'remember_document',
    title: 'Remember a document',
    description:
      'Store a longer text — notes, a report, a page, a transcript — as a document: the service keeps the original and splits it by headings and paragraphs into memories of one session (in order), which recall then finds like any memory, with `expand` giving the surrounding chunks. Give `text` (Markdown by default; `format: "plain"` for plain text), and optionally a title, namespace, kind, tags, metadata, sessionId (default: the document id) and occurredAt. Returns the document with its id and status (`pending` until split, `indexed` once every chunk is searchable).',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['text'],
      properties: {
        text: { type: 'string', minLength: 1, description: 'The document itself' },
        format: {
          type: 'string',
          enum: ['markdown', 'plain'],
          description: 'markdown (default): split by headings, then paragraphs; plain: by paragraphs',
        },
        title: { type: 'string', minLength: 1, maxLength: 500 },
        namespace: memoryFields.namespace,
        kind: memoryFields.kind,
        tags: memoryFields.tags,
        metadata: memoryFields.metadata,
        sessionId: memoryFields.sessionId,
        occurredAt: memoryFields.occurredAt,
        divisionId,
        idempotencyKey: {
          type: 'string',
          description: 'Send the same key when retrying the same call: the document is stored once.',
        },
      },
    },
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  },
  {
    name: 'list_memories',
    title: 'List memories',
    description:
      "List memories newest first, without a search query: to browse what is stored, or all turns of a session. Filter by namespace, kind, agentId, status, sessionId or occurredAt range. Pages: pass the answer's `nextCursor` as `cursor` (null on the last page).",
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...listQuery.properties,
        divisionId,
        limit: { ...listQuery.properties.limit, description: '1-500, default 50' },
      },
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
];

const TOOL_NAMES = new Set(TOOLS.map((t) => t.name));

class ArgumentError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const validationProblem = (field: string, message: string): ToolProblem => ({
  status: 400,
  code: 'validation_failed',
  detail: `arguments ${field}: ${message}`,
  errors: [{ field, in: 'arguments', message }],
});

type Args = Record<string, unknown>;

/** Takes a tool-only argument out of `args`, checking its type. */
function take(args: Args, field: string, type: 'string' | 'integer' | 'boolean'): unknown {
  const value = args[field];
  delete args[field];
  if (value === undefined) return undefined;
  const ok = type === 'integer' ? Number.isInteger(value) : typeof value === type;
  if (!ok) throw new ArgumentError(field, `must be ${type === 'integer' ? 'an integer' : `a ${type}`}`);
  return value;
}

/** A query string of scalar arguments; objects and arrays cannot travel in one. */
function paramsOf(args: Args): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(args)) {
    if (value === undefined) continue;
    if (value === null || typeof value === 'object')
      throw new ArgumentError(key, 'must be a string, number or boolean');
    params.set(key, String(value));
  }
  return params;
}

/** `?a=1&b=2`, or nothing when there is no parameter. */
const searchOf = (params: URLSearchParams) => {
  const qs = params.toString();
  return qs === '' ? '' : `?${qs}`;
};

const queryOf = (args: Args): string => searchOf(paramsOf(args));

const idempotencyHeaders = (key: unknown) =>
  key !== undefined ? { 'idempotency-key': key as string } : undefined;

const idPath = (id: unknown) => `/v1/memories/${encodeURIComponent(String(id))}`;

/** REST field names as the tool's arguments name them. */
function toolField(field: string, tool: string): string {
  if (field === 'If-Match') return 'version';
  if (field === 'Idempotency-Key') return 'idempotencyKey';
  if (tool === 'remember') return field.replace(/^items(?=\[|$)/, 'memories');
  if (tool === 'remember_document' && field === '(body)') return 'text';
  return field;
}

function problemOf(answer: RestAnswer, tool: string): ToolProblem {
  const body = (answer.body ?? {}) as Partial<ToolProblem>;
  return {
    status: answer.status,
    code: typeof body.code === 'string' ? body.code : 'internal_error',
    detail: typeof body.detail === 'string' ? body.detail : `the service answered HTTP ${answer.status}`,
    ...(Array.isArray(body.errors)
      ? { errors: body.errors.map((e) => ({ ...e, field: toolField(e.field, tool) })) }
      : {}),
    ...(typeof body.requestId === 'string' ? { requestId: body.requestId } : {}),
  };
}

export function toolError(problem: ToolProblem): ToolResult {
  return {
    isError: true,
    content: [{ type: 'text', text: JSON.stringify({ error: problem }) }],
    structuredContent: { error: problem },
  };
}

function toolSuccess(value: Record<string, unknown>): ToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
}

/** The REST call a tool call stands for, or an ArgumentError for a tool-only argument. */
function restCallOf(tool: string, input: Args): RestCall {
  const args = { ...input };
  switch (tool) {
    case 'remember': {
      const wait = take(args, 'wait', 'boolean');
      const key = take(args, 'idempotencyKey', 'string');
      const headers = idempotencyHeaders(key);
      const qs = wait ? '?wait=true' : '';
      if ('memories' in args) {
        const { memories, divisionId: division, ...rest } = args;
        const extra = Object.keys(rest)[0];
        if (extra !== undefined)
          throw new ArgumentError(
            extra,
            'give the fields inside each item of memories, or text without memories',
          );
        return {
          method: 'POST',
          url: `/v1/memories/batch${qs}`,
          body: { ...(division !== undefined ? { divisionId: division } : {}), items: memories },
          headers,
        };
      }
      if (!('text' in args))
        throw new ArgumentError('text', 'required: give text (one memory) or memories (several)');
      return { method: 'POST', url: `/v1/memories${qs}`, body: args, headers };
    }
    case 'recall':
      if (!('query' in args)) throw new ArgumentError('query', 'required');
      return { method: 'POST', url: '/v1/search', body: args };
    case 'get_memory': {
      const id = take(args, 'id', 'string');
      if (id === undefined) throw new ArgumentError('id', 'required');
      return { method: 'GET', url: `${idPath(id)}${queryOf(args)}` };
    }
    case 'update_memory': {
      const id = take(args, 'id', 'string');
      const version = take(args, 'version', 'integer');
      const division = take(args, 'divisionId', 'string');
      if (id === undefined) throw new ArgumentError('id', 'required');
      if (version === undefined)
        throw new ArgumentError('version', 'required: the version you last read (get_memory)');
      return {
        method: 'PATCH',
        url: `${idPath(id)}${queryOf({ divisionId: division })}`,
        body: args,
        headers: { 'if-match': `"${version}"` },
      };
    }
    case 'forget': {
      const id = take(args, 'id', 'string');
      const version = take(args, 'version', 'integer');
      if (id === undefined) throw new ArgumentError('id', 'required');
      return {
        method: 'DELETE',
        url: `${idPath(id)}${queryOf(args)}`,
        ...(version !== undefined ? { headers: { 'if-match': `"${version}"` } } : {}),
      };
    }
    case 'remember_document': {
      const text = take(args, 'text', 'string');
      const format = take(args, 'format', 'string');
      const key = take(args, 'idempotencyKey', 'string');
      if (text === undefined) throw new ArgumentError('text', 'required');
      if (format !== undefined && format !== 'markdown' && format !== 'plain')
        throw new ArgumentError('format', 'must be markdown or plain');
      // The labels travel in the query string, as for any document upload.
      const { tags, metadata, ...scalars } = args;
      if (tags !== undefined && !Array.isArray(tags)) throw new ArgumentError('tags', 'must be an array');
      if (
        metadata !== undefined &&
        (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))
      )
        throw new ArgumentError('metadata', 'must be an object');
      const query = paramsOf(scalars);
      for (const tag of (tags as unknown[] | undefined) ?? []) query.append('tags', String(tag));
      if (metadata !== undefined) query.set('metadata', JSON.stringify(metadata));
      return {
        method: 'POST',
        url: `/v1/documents${searchOf(query)}`,
        body: text,
        contentType: `${format === 'plain' ? 'text/plain' : 'text/markdown'}; charset=utf-8`,
        headers: idempotencyHeaders(key),
      };
    }
    case 'list_memories':
      return { method: 'GET', url: `/v1/memories${queryOf(args)}` };
    default:
      throw new Error(`unknown tool ${tool}`);
  }
}

/**
 * Runs one tool call through `rest`. Never throws: bad arguments, refusals and failures all come
 * back as tool errors (`isError`) carrying the problem's status, code and fields.
 */
export async function callTool(rest: Rest, name: string, rawArgs: unknown): Promise<ToolResult> {
  if (!TOOL_NAMES.has(name)) {
    return toolError({ status: 404, code: 'not_found', detail: `no tool named ${name}` });
  }
  if (rawArgs !== undefined && (typeof rawArgs !== 'object' || rawArgs === null || Array.isArray(rawArgs))) {
    return toolError(validationProblem('(arguments)', 'must be an object'));
  }
  let call: RestCall;
  try {
    call = restCallOf(name, { ...(rawArgs as Args | undefined) });
  } catch (err) {
    if (err instanceof ArgumentError) return toolError(validationProblem(err.field, err.message));
    throw err;
  }
  let answer: RestAnswer;
  try {
    answer = await rest(call);
  } catch (err) {
    return toolError({
      status: 503,
      code: 'service_unavailable',
      detail: `the memory service could not be reached: ${(err as Error).message}`,
    });
  }
  if (answer.status >= 400) return toolError(problemOf(answer, name));
  if (name === 'forget') return toolSuccess({ id: (rawArgs as Args).id, forgotten: true });
  const body = answer.body;
  return toolSuccess(
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : { result: body },
  );
}
