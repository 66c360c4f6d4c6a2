import type { FastifyInstance, FastifyReply } from 'fastify';
import type { App } from '../../app.js';
import { AppError, ErrorCode } from '../../internal/errors.js';
import type { MemoryPatch, NewMemory } from '../../memory/memories.js';
import type { MemoryRecord } from '../../memory/records.js';
import { waitUntilIndexed } from '../../memory/wait.js';
import { idempotencyKeyOf } from '../idempotency.js';
import {
  batchBody,
  createMemoryBody,
  idParam,
  listQuery,
  memory,
  patchMemoryBody,
  problem,
  scopeQuery,
  waitQuery,
} from '../schemas.js';

const tags = ['memories'];
const errors = { 400: problem, 404: problem, 413: problem, 422: problem };

/** `If-Match: "3"`, `W/"3"` or `3` → 3. */
function expectedVersion(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const match = typeof header === 'string' ? /^(?:W\/)?"?(\d{1,9})"?$/.exec(header.trim()) : null;
  if (!match) {
    throw new AppError(400, ErrorCode.preconditionInvalid, 'If-Match must be a memory version, e.g. "3"', [
      { field: 'If-Match', message: 'expected the ETag of a previous read' },
    ]);
  }
  return Number(match[1]);
}

const etag = (m: MemoryRecord) => `"${m.version}"`;

export function memoryRoutes(app: App) {
  const timeout = app.config.WAIT_TIMEOUT_MS;

  async function answerCreated(
    reply: FastifyReply,
    memories: MemoryRecord[],
    replayed: boolean,
    wait?: boolean,
  ) {
    if (replayed) reply.header('idempotent-replayed', 'true');
    if (wait && !replayed) {
      await waitUntilIndexed(
        app.db,
        app.worker,
        memories.map((m) => m.id),
        timeout,
      );
      return Promise.all(memories.map((m) => app.memories.get(m.id)));
    }
    return memories;
  }

  return async (server: FastifyInstance) => {
    server.post<{ Body: NewMemory & { divisionId?: string }; Querystring: { wait?: boolean } }>(
      '/v1/memories',
      {
        schema: {
          tags,
          summary: 'Store a memory',
          description:
            'Writes the memory (status `pending`) and its indexing job in one transaction. With `?wait=true` the answer comes once it is indexed, or after the wait timeout with status still `pending`. Honours `Idempotency-Key`.',
          body: createMemoryBody,
          querystring: waitQuery,
          response: { 201: memory, ...errors },
        },
      },
      async (req, reply) => {
        const { divisionId = 'default', ...input } = req.body;
        const { memory: created, replayed } = await app.memories.create(divisionId, input, {
          idempotency: idempotencyKeyOf(req, divisionId),
        });
        if (!replayed) app.metrics.memoriesIngested.inc({ source: 'api' });
        req.log.info({ memoryId: created.id, divisionId, replayed }, 'memory stored');
        const [out] = await answerCreated(reply, [created], replayed, req.query.wait);
        return reply
          .status(201)
          .header('location', `/v1/memories/${out.id}`)
          .header('etag', etag(out))
          .send(out);
      },
    );

    server.post<{ Body: { divisionId?: string; items: NewMemory[] }; Querystring: { wait?: boolean } }>(
      '/v1/memories/batch',
      {
        schema: {
          tags,
          summary: 'Store up to 1,000 memories at once (all or nothing)',
          description:
            'All or nothing: when any item is invalid the whole batch is refused, the error names the item (e.g. `items[3].text`), and nothing is written.',
          body: batchBody,
          querystring: waitQuery,
          response: {
            201: { type: 'object', properties: { items: { type: 'array', items: memory } } },
            ...errors,
          },
        },
      },
      async (req, reply) => {
        const divisionId = req.body.divisionId ?? 'default';
        const { memories, replayed } = await app.memories.createBatch(divisionId, req.body.items, {
          idempotency: idempotencyKeyOf(req, divisionId),
        });
        if (!replayed) app.metrics.memoriesIngested.inc({ source: 'batch' }, memories.length);
        req.log.info({ divisionId, count: memories.length, replayed }, 'memory batch stored');
        const items = await answerCreated(reply, memories, replayed, req.query.wait);
        return reply.status(201).send({ items });
      },
    );

    server.get<{ Params: { id: string }; Querystring: { divisionId?: string } }>(
      '/v1/memories/:id',
      {
        schema: {
          tags,
          summary: 'Read a memory',
          params: idParam,
          querystring: scopeQuery,
          response: { 200: memory, ...errors },
        },
      },
      async (req, reply) => {
        const found = await app.memories.get(req.params.id, { divisionId: req.query.divisionId });
        return reply.header('etag', etag(found)).send(found);
      },
    );

    server.patch<{ Params: { id: string }; Querystring: { divisionId?: string }; Body: MemoryPatch }>(
      '/v1/memories/:id',
      {
        schema: {
          tags,
          summary: 'Change a memory',
          description:
            'Replaces the given fields. A text change re-embeds the memory. Send `If-Match` with the ETag (version) you read: a stale version gets 412.',
          params: idParam,
          querystring: scopeQuery,
          body: patchMemoryBody,
          response: { 200: memory, 412: problem, ...errors },
        },
      },
      async (req, reply) => {
        const updated = await app.memories.update(req.params.id, req.body, {
          expectedVersion: expectedVersion(req.headers['if-match']),
          scope: { divisionId: req.query.divisionId },
        });
        req.log.info({ memoryId: updated.id, version: updated.version }, 'memory updated');
        return reply.header('etag', etag(updated)).send(updated);
      },
    );

    server.delete<{ Params: { id: string }; Querystring: { divisionId?: string } }>(
      '/v1/memories/:id',
      {
        schema: {
          tags,
          summary: 'Delete a memory (soft delete)',
          description: 'The memory disappears from reads and search at once. `If-Match` is honoured.',
          params: idParam,
          querystring: scopeQuery,
          response: { 204: { type: 'null' }, 412: problem, ...errors },
        },
      },
      async (req, reply) => {
        await app.memories.remove(req.params.id, {
          expectedVersion: expectedVersion(req.headers['if-match']),
          scope: { divisionId: req.query.divisionId },
        });
        req.log.info({ memoryId: req.params.id }, 'memory deleted');
        return reply.status(204).send();
      },
    );

    server.get<{
      Querystring: {
        divisionId?: string;
        namespace?: string;
        agentId?: string;
        kind?: string;
        status?: MemoryRecord['status'];
        limit: number;
        cursor?: string;
      };
    }>(
      '/v1/memories',
      {
        schema: {
          tags,
          summary: 'List memories, newest first',
          description:
            'Cursor pagination: pass `nextCursor` as `cursor` for the next page; null on the last page.',
          querystring: listQuery,
          response: {
            200: {
              type: 'object',
              properties: {
                items: { type: 'array', items: memory },
                nextCursor: { type: ['string', 'null'] },
              },
            },
            ...errors,
          },
        },
      },
      async (req) => app.memories.list({ ...req.query, divisionId: req.query.divisionId ?? 'default' }),
    );
  };
}
