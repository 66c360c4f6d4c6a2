import type { FastifyInstance, FastifyReply } from 'fastify';
import type { App } from '../../app.js';
import { requireScopes, resolveDivision } from '../../auth/authorize.js';
import type { Caller } from '../../auth/caller.js';
import { type Access, accessOf } from '../../memories/access.js';
import type { MemoryPatch, NewMemory } from '../../memories/input.js';
import type { MemoryRecord } from '../../memories/records.js';
import { waitUntilIndexed } from '../../memories/wait.js';
import { AppError, ErrorCode } from '../../platform/errors.js';
import { idempotencyKeyOf } from '../idempotency.js';
import {
  batchBody,
  createMemoryBody,
  deleteQuery,
  idParam,
  legalHoldBody,
  listQuery,
  memory,
  patchMemoryBody,
  problem,
  scopeQuery,
  waitQuery,
} from '../schemas.js';

const tags = ['memories'];
const read = { scopes: ['memory:read' as const] };
const write = { scopes: ['memory:write' as const] };
const errors = { 400: problem, 404: problem, 413: problem, 422: problem };

/** `If-Match: "3"`, `W/"3"` or `3` → 3. */
function expectedVersion(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const match = typeof header === 'string' ? /^(?:W\/)?"?(\d{1,9})"?$/.exec(header.trim()) : null;
  if (!match) {
    throw new AppError(ErrorCode.preconditionInvalid, 'If-Match must be a memory version, e.g. "3"', [
      { field: 'If-Match', message: 'expected the ETag of a previous read' },
    ]);
  }
  return Number(match[1]);
}

const etag = (m: MemoryRecord) => `"${m.version}"`;

/** Access for by-id routes; `?divisionId=` narrows the lookup to one (allowed) division. */
const scoped = (caller: Caller, divisionId: string | undefined) =>
  accessOf(caller, divisionId === undefined ? undefined : resolveDivision(caller, divisionId));

export function memoryRoutes(app: App) {
  const timeout = app.config.WAIT_TIMEOUT_MS;

  async function answerCreated(
    reply: FastifyReply,
    access: Access,
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
      // A memory created already expired is not readable, but it was created: answer with it.
      return Promise.all(memories.map((m) => app.memories.get(access, m.id).catch(() => m)));
    }
    return memories;
  }

  return async (server: FastifyInstance) => {
    server.post<{ Body: NewMemory & { divisionId?: string }; Querystring: { wait?: boolean } }>(
      '/v1/memories',
      {
        config: write,
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
        const { divisionId: requested, ...input } = req.body;
        const divisionId = resolveDivision(req.caller, requested);
        const access = accessOf(req.caller, divisionId);
        const { memory: created, replayed } = await app.memories.create(access, divisionId, input, {
          idempotency: idempotencyKeyOf(req, divisionId),
        });
        if (!replayed) app.metrics.memoriesIngested.inc({ source: 'api' });
        req.log.info({ memoryId: created.id, divisionId, replayed }, 'memory stored');
        const [out] = await answerCreated(reply, access, [created], replayed, req.query.wait);
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
        config: write,
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
        const divisionId = resolveDivision(req.caller, req.body.divisionId);
        const access = accessOf(req.caller, divisionId);
        const { memories, replayed } = await app.memories.createBatch(access, divisionId, req.body.items, {
          idempotency: idempotencyKeyOf(req, divisionId),
        });
        if (!replayed) app.metrics.memoriesIngested.inc({ source: 'batch' }, memories.length);
        req.log.info({ divisionId, count: memories.length, replayed }, 'memory batch stored');
        const items = await answerCreated(reply, access, memories, replayed, req.query.wait);
        return reply.status(201).send({ items });
      },
    );

    server.get<{ Params: { id: string }; Querystring: { divisionId?: string } }>(
      '/v1/memories/:id',
      {
        config: read,
        schema: {
          tags,
          summary: 'Read a memory',
          params: idParam,
          querystring: scopeQuery,
          response: { 200: memory, ...errors },
        },
      },
      async (req, reply) => {
        const found = await app.memories.get(scoped(req.caller, req.query.divisionId), req.params.id);
        return reply.header('etag', etag(found)).send(found);
      },
    );

    server.patch<{ Params: { id: string }; Querystring: { divisionId?: string }; Body: MemoryPatch }>(
      '/v1/memories/:id',
      {
        config: write,
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
        const updated = await app.memories.update(
          scoped(req.caller, req.query.divisionId),
          req.params.id,
          req.body,
          {
            expectedVersion: expectedVersion(req.headers['if-match']),
          },
        );
        req.log.info({ memoryId: updated.id, version: updated.version }, 'memory updated');
        return reply.header('etag', etag(updated)).send(updated);
      },
    );

    server.delete<{ Params: { id: string }; Querystring: { divisionId?: string; purge?: boolean } }>(
      '/v1/memories/:id',
      {
        config: { scopes: ['memory:delete'] },
        schema: {
          tags,
          summary: 'Delete a memory (soft delete, or purge)',
          description:
            'The memory disappears from reads and search at once; the sweeper purges it after the grace period. `?purge=true` erases text, vector and index entry now (erasure requests; needs memory:delete and admin). Held memories answer 409 `legal_hold`. `If-Match` is honoured.',
          params: idParam,
          querystring: deleteQuery,
          response: { 204: { type: 'null' }, 412: problem, ...errors },
        },
      },
      async (req, reply) => {
        if (req.query.purge) requireScopes(req.caller, ['memory:delete', 'admin']);
        await app.memories.remove(scoped(req.caller, req.query.divisionId), req.params.id, {
          expectedVersion: expectedVersion(req.headers['if-match']),
          purge: req.query.purge,
        });
        req.log.info({ memoryId: req.params.id, purge: req.query.purge === true }, 'memory deleted');
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
        config: read,
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
      async (req) => {
        const divisionId = resolveDivision(req.caller, req.query.divisionId);
        return app.memories.list(accessOf(req.caller, divisionId), { ...req.query, divisionId });
      },
    );

    server.put<{
      Params: { id: string };
      Querystring: { divisionId?: string };
      Body: { hold: boolean; reason?: string };
    }>(
      '/v1/memories/:id/legal-hold',
      {
        config: { scopes: ['legal-hold:write'] },
        schema: {
          tags,
          summary: 'Place or release a legal hold on one memory',
          description:
            'A held memory is never expired, deleted or purged (those requests get 409 `legal_hold`). Holds on a whole division or agent: `/v1/legal-holds`.',
          params: idParam,
          querystring: scopeQuery,
          body: legalHoldBody,
          response: { 200: memory, ...errors },
        },
      },
      async (req) => {
        const updated = await app.holds.setMemoryHold(
          scoped(req.caller, req.query.divisionId),
          req.params.id,
          req.body.hold,
          req.body.reason,
        );
        req.log.info({ memoryId: req.params.id, hold: req.body.hold }, 'legal hold changed');
        return updated;
      },
    );
  };
}
