import type { FastifyInstance } from 'fastify';
import type { App } from '../../app.js';
import { resolveDivision } from '../../auth/authorize.js';
import { accessOf } from '../../memories/access.js';
import { divisionBody, problem } from '../schemas.js';

const run = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    divisionId: { type: 'string' },
    model: { type: 'string', description: 'Target model, `name@version`' },
    fromModel: { type: ['string', 'null'], description: "The division's model when the run was requested" },
    status: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled'] },
    total: { type: 'integer', description: 'Live memories of the division (counted now and then)' },
    done: { type: 'integer', description: 'Memories with a vector of the target model' },
    progress: { type: 'number', description: 'done / total; 1 once the division switched' },
    embedded: { type: 'integer', description: 'Texts sent to the embedder so far' },
    error: { type: ['string', 'null'] },
    requestedBy: { type: 'string' },
    createdAt: { type: 'string' },
    startedAt: { type: ['string', 'null'] },
    updatedAt: { type: 'string' },
    finishedAt: { type: ['string', 'null'] },
  },
} as const;

const reembedBody = {
  type: 'object',
  required: ['model'],
  additionalProperties: false,
  properties: {
    model: {
      type: 'string',
      pattern: '^[^@\\s]+@[^@\\s]+$',
      maxLength: 401,
      description:
        'The model to move to, `name@version`: the configured one, the built-in `use-lite@0.2.0`, or one of EMBEDDING_MODELS_FILE',
    },
    divisionId: {
      ...divisionBody.properties.id,
      description: 'Defaults to "default" (or the caller\'s only division)',
    },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', format: 'uuid' } },
} as const;

const admin = { scopes: ['admin' as const] };

export function reembedRoutes(app: App) {
  return async (server: FastifyInstance) => {
    const tags = ['reembed'];
    server.post<{ Body: { model: string; divisionId?: string } }>(
      '/v1/reembed',
      {
        config: admin,
        schema: {
          tags,
          summary: "Re-embed a division's memories with another model",
          description:
            'Queues a run that embeds every live memory of the division with `model` in the background (throttled, resumable). Search keeps using the current model until every memory has a vector of the new one, then the division switches in one transaction. 409 when the division already uses the model or a run is under way.',
          body: reembedBody,
          response: { 202: run, 400: problem, 403: problem, 404: problem, 409: problem, 422: problem },
        },
      },
      async (req, reply) => {
        const divisionId = resolveDivision(req.caller, req.body.divisionId);
        const result = await app.reembed.request(accessOf(req.caller, divisionId), {
          divisionId,
          model: req.body.model,
        });
        return reply.status(202).send(result);
      },
    );
    server.get<{ Querystring: { divisionId?: string; limit: number } }>(
      '/v1/reembed',
      {
        config: admin,
        schema: {
          tags,
          summary: 'List re-embedding runs, newest first',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              divisionId: divisionBody.properties.id,
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            },
          },
          response: {
            200: { type: 'object', properties: { items: { type: 'array', items: run } } },
            400: problem,
            403: problem,
          },
        },
      },
      async (req) => ({
        items: await app.reembed.list({
          // Naming a division the caller may not use is 403, decided without a lookup.
          divisionId:
            req.query.divisionId === undefined
              ? undefined
              : resolveDivision(req.caller, req.query.divisionId),
          divisions: req.caller.divisions,
          limit: req.query.limit,
        }),
      }),
    );
    server.get<{ Params: { id: string } }>(
      '/v1/reembed/:id',
      {
        config: admin,
        schema: {
          tags,
          summary: 'Read a re-embedding run (status and progress)',
          params: idParams,
          response: { 200: run, 400: problem, 404: problem },
        },
      },
      async (req) => app.reembed.get(req.params.id, req.caller.divisions),
    );
    server.post<{ Params: { id: string } }>(
      '/v1/reembed/:id/cancel',
      {
        config: admin,
        schema: {
          tags,
          summary: 'Cancel a run that has not finished',
          description:
            'The division keeps its model. Vectors computed so far are kept: asking for the same model again continues from them.',
          params: idParams,
          response: { 200: run, 400: problem, 404: problem, 409: problem },
        },
      },
      async (req) => app.reembed.cancel(accessOf(req.caller), req.params.id, req.caller.divisions),
    );
  };
}
