/**
 * JSON schemas of the API: Fastify validates requests with them and @fastify/swagger publishes
 * them as OpenAPI 3.1. Unknown fields are refused everywhere (`additionalProperties: false`).
 */
const id = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;
const namespace = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$' } as const;
const kind = { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,63}$' } as const;
const tags = {
  type: 'array',
  maxItems: 64,
  items: { type: 'string', minLength: 1, maxLength: 128 },
} as const;
const metadata = { type: 'object', maxProperties: 64, additionalProperties: true } as const;
const piiFlags = {
  type: 'array',
  maxItems: 32,
  items: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$' },
  description: 'PII categories the caller adds to those detected (email, phone, card, iban are detected)',
} as const;
const expiresAt = {
  type: ['string', 'null'],
  format: 'date-time',
  description: "null: never expires; absent: the division's default TTL",
} as const;
const vector = { type: 'array', minItems: 1, maxItems: 8192, items: { type: 'number' } } as const;
const sessionId = {
  ...id,
  description: 'The conversation, thread or document the memory belongs to (same rules as other ids)',
} as const;
const occurredAt = {
  type: 'string',
  format: 'date-time',
  description: 'When the remembered thing happened (ISO 8601), distinct from createdAt',
} as const;
const conversationFilters = {
  sessionId,
  occurredAfter: { type: 'string', format: 'date-time', description: 'occurredAt at or after' },
  occurredBefore: { type: 'string', format: 'date-time', description: 'occurredAt before' },
} as const;

export const idParam = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', format: 'uuid' } },
} as const;

export const newMemoryItem = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    text: { type: 'string', description: 'The memory. Empty or whitespace-only text is refused.' },
    agentId: { ...id, description: 'A registered agent of the division.' },
    namespace: { ...namespace, description: 'Defaults to "default".' },
    kind: { ...kind, description: 'Defaults to "note".' },
    tags,
    metadata,
    piiFlags,
    expiresAt,
    vector: {
      ...vector,
      description:
        'A precomputed embedding; needs `model`. Nothing is embedded: the queued job only puts it in the vector index.',
    },
    model: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description: '`name` or `name@version` of the vector',
    },
    sessionId,
    sequence: {
      type: 'integer',
      minimum: 0,
      maximum: 2147483647,
      description: "Place in the session (needs sessionId); default: after the session's last memory",
    },
    occurredAt,
    supersedes: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', format: 'uuid' },
      description:
        'Older memories of the division this one replaces: search skips them unless includeSuperseded; they stay readable by id',
    },
  },
} as const;

export const createMemoryBody = {
  ...newMemoryItem,
  properties: { ...newMemoryItem.properties, divisionId: { ...id, description: 'Defaults to "default".' } },
} as const;

export const batchBody = {
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    divisionId: id,
    items: { type: 'array', minItems: 1, maxItems: 1000, items: newMemoryItem },
  },
} as const;

export const waitQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    wait: { type: 'boolean', description: 'Answer once indexed (or after WAIT_TIMEOUT_MS).' },
  },
} as const;

export const scopeQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { divisionId: id },
} as const;

export const deleteQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    divisionId: id,
    purge: {
      type: 'boolean',
      description: 'Erase text, vector and index entry now (needs memory:delete and admin)',
    },
  },
} as const;

export const legalHoldBody = {
  type: 'object',
  required: ['hold'],
  additionalProperties: false,
  properties: {
    hold: { type: 'boolean' },
    reason: { type: 'string', minLength: 1, maxLength: 1000 },
  },
} as const;

export const patchMemoryBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { text: { type: 'string' }, namespace, kind, tags, metadata, piiFlags, expiresAt },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    divisionId: id,
    namespace,
    agentId: id,
    kind,
    status: { type: 'string', enum: ['pending', 'indexed', 'failed'] },
    ...conversationFilters,
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    cursor: { type: 'string', maxLength: 512 },
  },
} as const;

export const memory = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    divisionId: { type: 'string' },
    agentId: { type: ['string', 'null'] },
    namespace: { type: 'string' },
    kind: { type: 'string' },
    text: { type: 'string', description: 'Redacted for callers without pii:read' },
    redacted: { type: 'boolean' },
    checksum: {
      type: 'string',
      description: 'SHA-256 of the normalised text the caller sees (the redacted text when `redacted`)',
    },
    tags: { type: 'array', items: { type: 'string' } },
    metadata: { type: 'object', additionalProperties: true },
    piiFlags: { type: 'array', items: { type: 'string' } },
    expiresAt: { type: ['string', 'null'] },
    legalHold: { type: 'boolean' },
    sessionId: { type: ['string', 'null'] },
    sequence: { type: ['integer', 'null'] },
    occurredAt: { type: ['string', 'null'], format: 'date-time' },
    supersededBy: { type: ['string', 'null'], description: 'The newer memory that replaced this one' },
    status: { type: 'string', enum: ['pending', 'indexed', 'failed'] },
    embedding: {
      type: ['object', 'null'],
      properties: { model: { type: 'string' }, version: { type: 'string' }, dimensions: { type: 'integer' } },
    },
    version: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const searchBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    query: { type: 'string', minLength: 1, maxLength: 4096 },
    vector,
    k: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
    mode: { type: 'string', enum: ['hybrid', 'vector', 'keyword'], default: 'hybrid' },
    divisionId: id,
    namespace,
    agentId: id,
    kind,
    tags,
    metadata: { ...metadata, description: 'Top-level equality on metadata keys' },
    createdAfter: { type: 'string', format: 'date-time' },
    createdBefore: { type: 'string', format: 'date-time' },
    ...conversationFilters,
    includeSuperseded: {
      type: 'boolean',
      default: false,
      description: 'Also find memories a newer one superseded',
    },
    feedback: {
      type: 'boolean',
      description:
        'Pseudo-relevance feedback: also search for the words that weigh most in the best keyword hits (default: the service setting, off unless SEARCH_FEEDBACK=on)',
    },
    expand: {
      type: 'object',
      additionalProperties: false,
      properties: {
        before: { type: 'integer', minimum: 0, maximum: 10, default: 0 },
        after: { type: 'integer', minimum: 0, maximum: 10, default: 0 },
      },
      description:
        'Return with each hit up to `before`/`after` neighbouring memories of its session (redacted like the hit)',
    },
  },
} as const;

/** A memory shown beside a search hit: its place in the session and its (redacted) text. */
const neighbour = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    text: { type: 'string' },
    redacted: { type: 'boolean' },
    piiFlags: { type: 'array', items: { type: 'string' } },
    agentId: { type: ['string', 'null'] },
    sequence: { type: ['integer', 'null'] },
    occurredAt: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
  },
} as const;

export const searchResponse = {
  type: 'object',
  properties: {
    mode: { type: 'string' },
    pending: { type: 'integer', description: 'Matching memories not yet searchable by meaning' },
    timings: { type: 'object', properties: { embedMs: { type: 'number' }, totalMs: { type: 'number' } } },
    hits: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          score: { type: 'number' },
          vectorScore: { type: 'number' },
          keywordScore: { type: 'number' },
          text: { type: 'string' },
          piiFlags: { type: 'array', items: { type: 'string' } },
          agentId: { type: ['string', 'null'] },
          namespace: { type: 'string' },
          kind: { type: 'string' },
          tags: { type: 'array', items: { type: 'string' } },
          metadata: { type: 'object', additionalProperties: true },
          createdAt: { type: 'string' },
          sessionId: { type: ['string', 'null'] },
          sequence: { type: ['integer', 'null'] },
          occurredAt: { type: ['string', 'null'] },
          supersededBy: { type: ['string', 'null'] },
          context: {
            type: 'object',
            description: 'With `expand`: the neighbouring memories of the same session, in session order',
            properties: {
              before: { type: 'array', items: neighbour },
              after: { type: 'array', items: neighbour },
            },
          },
        },
      },
    },
  },
} as const;

export const divisionBody = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: {
    id,
    name: { type: 'string', minLength: 1, maxLength: 200 },
    metadata,
    defaultTtlDays: {
      type: ['integer', 'null'],
      minimum: 0,
      maximum: 36500,
      description: 'Days until new memories expire; 0 never; null: the service default',
    },
  },
} as const;

/**
 * Ids and positions of rows (jobs, holds, audit sequence numbers). Bounded by the largest integer
 * a JSON number holds exactly, so that a 20-digit value is a 400 naming the field, not a database
 * overflow.
 */
export const rowId = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;
export const rowPosition = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

export const problem = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    instance: { type: 'string' },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { field: { type: 'string' }, in: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;
