import type { FastifyInstance } from 'fastify';
import type { App } from '../../app.js';
import { mayAccessDivision, requireUnconfined, resolveDivision } from '../../auth/authorize.js';
import { accessOf } from '../../memories/access.js';
import { invalid } from '../../platform/errors.js';
import { idempotencyKeyOf } from '../idempotency.js';
import { divisionBody, problem } from '../schemas.js';
import { refuseAgents } from './governance.js';

const division = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    metadata: { type: 'object', additionalProperties: true },
    defaultTtlDays: { type: ['integer', 'null'] },
    createdAt: { type: 'string' },
  },
} as const;
const agent = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    divisionId: { type: 'string' },
    name: { type: 'string' },
    metadata: { type: 'object', additionalProperties: true },
    createdAt: { type: 'string' },
  },
} as const;
const divisionParam = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: divisionBody.properties.id },
} as const;

type Body = { id: string; name?: string; metadata?: Record<string, unknown>; defaultTtlDays?: number | null };
const agentBody = {
  ...divisionBody,
  properties: {
    id: divisionBody.properties.id,
    name: divisionBody.properties.name,
    metadata: divisionBody.properties.metadata,
  },
} as const;
const admin = { scopes: ['admin' as const] };
const read = { scopes: ['memory:read' as const] };

export function divisionRoutes(app: App) {
  return async (server: FastifyInstance) => {
    const tags = ['divisions'];
    server.post<{ Body: Body }>(
      '/v1/divisions',
      {
        config: admin,
        schema: {
          tags,
          summary: 'Create a division (tenant)',
          body: divisionBody,
          response: { 201: division, 400: problem, 403: problem, 409: problem },
        },
      },
      async (req, reply) => {
        // A new division is a platform-level act: a caller confined to some divisions could not
        // even use the one it created.
        requireUnconfined(req.caller, 'only an admin of every division may create divisions');
        const { result, replayed } = await app.divisions.createDivision(accessOf(req.caller), req.body, {
          idempotency: idempotencyKeyOf(req, req.body.id),
        });
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(201).send(result);
      },
    );
    server.get(
      '/v1/divisions',
      {
        config: read,
        schema: {
          tags,
          summary: 'List the divisions the caller may use',
          response: { 200: { type: 'object', properties: { items: { type: 'array', items: division } } } },
        },
      },
      async (req) => ({
        items: (await app.divisions.listDivisions()).filter((d) => mayAccessDivision(req.caller, d.id)),
      }),
    );
    server.get<{ Params: { id: string } }>(
      '/v1/divisions/:id',
      {
        config: read,
        schema: {
          tags,
          summary: 'Read a division',
          params: divisionParam,
          response: { 200: division, 403: problem, 404: problem },
        },
      },
      async (req) => app.divisions.getDivision(resolveDivision(req.caller, req.params.id)),
    );
    server.post<{ Params: { id: string }; Body: Body }>(
      '/v1/divisions/:id/agents',
      {
        config: admin,
        schema: {
          tags,
          summary: 'Register an agent in a division',
          params: divisionParam,
          body: agentBody,
          response: { 201: agent, 400: problem, 403: problem, 404: problem, 409: problem },
        },
      },
      async (req, reply) => {
        const division = resolveDivision(req.caller, req.params.id);
        const { result, replayed } = await app.divisions.createAgent(
          accessOf(req.caller),
          division,
          req.body,
          {
            idempotency: idempotencyKeyOf(req, division),
          },
        );
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(201).send(result);
      },
    );
    server.get<{ Params: { id: string } }>(
      '/v1/divisions/:id/agents',
      {
        config: read,
        schema: {
          tags,
          summary: "List a division's agents",
          params: divisionParam,
          response: {
            200: { type: 'object', properties: { items: { type: 'array', items: agent } } },
            404: problem,
          },
        },
      },
      async (req) => ({ items: await app.divisions.listAgents(resolveDivision(req.caller, req.params.id)) }),
    );

    const erasure = {
      type: 'object',
      properties: {
        divisionId: { type: 'string' },
        erasedAt: { type: 'string' },
        erasedBy: { type: 'string' },
        destroyed: { type: 'object', additionalProperties: true },
        auditHead: {
          type: 'object',
          properties: { seq: { type: 'integer' }, hash: { type: 'string' } },
        },
        signedHead: { type: ['object', 'null'], additionalProperties: true },
      },
    } as const;
    server.delete<{ Params: { id: string }; Querystring: { erase?: boolean } }>(
      '/v1/divisions/:id',
      {
        config: admin,
        schema: {
          tags,
          summary: 'Erase a division: purge its content everywhere and destroy its data key',
          description:
            "Only with `erase=true`, by an admin of every division; 409 `legal_hold` while any legal hold in the division is active. Purges every memory's content (ids and checksums stay for the trail), vectors, index entries, artifacts and sessions, then destroys the division's data key (KEY_DIR): snapshots, archives and artifact copies taken before can no longer be read. The audit trail keeps a signed erasure record.",
          params: divisionParam,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { erase: { type: 'boolean' } },
          },
          response: { 200: erasure, 400: problem, 403: problem, 404: problem, 409: problem },
        },
      },
      async (req) => {
        requireUnconfined(req.caller, 'only an admin of every division may erase a division');
        if (req.query.erase !== true) {
          throw invalid('erase', 'a division is only ever erased: say erase=true');
        }
        return app.erasure.erase(accessOf(req.caller), req.params.id);
      },
    );
    server.get<{ Params: { id: string } }>(
      '/v1/divisions/:id/erasure',
      {
        config: { scopes: ['audit:read' as const] },
        schema: {
          tags,
          summary: "A division's erasure record: when, by whom, what was destroyed, the signed head",
          params: divisionParam,
          response: { 200: erasure, 403: problem, 404: problem },
        },
      },
      async (req) => {
        // The record spans every agent of the division, like its audit trail.
        refuseAgents(req.caller);
        return app.erasure.get(resolveDivision(req.caller, req.params.id));
      },
    );
  };
}
