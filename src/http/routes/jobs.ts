import type { FastifyInstance } from 'fastify';
import type { App } from '../../app.js';
import { accessOf } from '../../memories/access.js';
import { problem, rowId, rowPosition } from '../schemas.js';

const deadJob = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    queue: { type: 'string' },
    memoryId: { type: ['string', 'null'] },
    attempts: { type: 'integer' },
    lastError: { type: ['string', 'null'] },
    failedAt: { type: 'string' },
    createdAt: { type: 'string' },
  },
} as const;

export function jobRoutes(app: App) {
  return async (server: FastifyInstance) => {
    const tags = ['jobs'];
    server.get<{ Querystring: { limit: number; after?: number } }>(
      '/v1/jobs/dead',
      {
        config: { scopes: ['admin'] },
        schema: {
          tags,
          summary: 'List dead-lettered jobs',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
              after: { ...rowPosition, description: 'Job id to continue after' },
            },
          },
          response: {
            200: { type: 'object', properties: { items: { type: 'array', items: deadJob } } },
            400: problem,
          },
        },
      },
      async (req) => ({
        items: await app.jobs.listDead(accessOf(req.caller), {
          limit: req.query.limit,
          afterId: req.query.after,
        }),
      }),
    );
    server.post<{ Params: { id: number } }>(
      '/v1/jobs/dead/:id/retry',
      {
        config: { scopes: ['admin'] },
        schema: {
          tags,
          summary: 'Put a dead job back in the queue with fresh attempts',
          params: {
            type: 'object',
            required: ['id'],
            additionalProperties: false,
            properties: { id: rowId },
          },
          response: {
            202: { type: 'object', properties: { id: { type: 'integer' }, status: { type: 'string' } } },
            404: problem,
          },
        },
      },
      async (req, reply) => {
        await app.jobs.retry(accessOf(req.caller), req.params.id);
        return reply.status(202).send({ id: req.params.id, status: 'queued' });
      },
    );
  };
}
