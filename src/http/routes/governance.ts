import type { FastifyInstance } from 'fastify';
import type { App } from '../../app.js';
import { resolveDivision } from '../../auth/authorize.js';
import { actorOf, type Caller, hasScope } from '../../auth/caller.js';
import { accessOf } from '../../memories/access.js';
import { AppError, ErrorCode, invalid } from '../../platform/errors.js';
import { problem, rowId, rowPosition } from '../schemas.js';

const divisionId = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;
const divisionQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { divisionId },
} as const;
const hold = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    divisionId: { type: 'string' },
    agentId: { type: ['string', 'null'] },
    reason: { type: 'string' },
    createdBy: { type: 'string' },
    createdAt: { type: 'string' },
    releasedAt: { type: ['string', 'null'] },
    releasedBy: { type: ['string', 'null'] },
  },
} as const;
const errors = { 400: problem, 401: problem, 403: problem, 404: problem };

/**
 * Division-wide operations are for services (and dev): an agent token is confined to its own
 * agent's memories, and the division's audit trail, exports and holds span every agent.
 */
export function refuseAgents(caller: Caller) {
  if (caller.kind === 'agent') {
    throw new AppError(
      ErrorCode.forbidden,
      'agent tokens cannot use division-wide audit, export or hold routes',
    );
  }
}

/** Legal holds on divisions and agents, the audit trail, and proof exports. */
export function governanceRoutes(app: App) {
  return async (server: FastifyInstance) => {
    server.addHook('onRequest', async (req) => {
      if (req.caller) refuseAgents(req.caller);
    });
    const holdScope = { scopes: ['legal-hold:write' as const] };
    server.post<{ Body: { divisionId?: string; agentId?: string; reason: string } }>(
      '/v1/legal-holds',
      {
        config: holdScope,
        schema: {
          tags: ['legal holds'],
          summary: "Hold a whole division, or one agent's memories",
          description: 'While active, no covered memory is expired, deleted or purged.',
          body: {
            type: 'object',
            required: ['reason'],
            additionalProperties: false,
            properties: {
              divisionId,
              agentId: divisionId,
              reason: { type: 'string', minLength: 1, maxLength: 1000 },
            },
          },
          response: { 201: hold, ...errors },
        },
      },
      async (req, reply) => {
        const division = resolveDivision(req.caller, req.body.divisionId);
        const created = await app.holds.createHold(accessOf(req.caller, division), division, req.body);
        return reply.status(201).send(created);
      },
    );
    server.get<{ Querystring: { divisionId?: string } }>(
      '/v1/legal-holds',
      {
        config: holdScope,
        schema: {
          tags: ['legal holds'],
          summary: "A division's holds (active and released)",
          querystring: divisionQuery,
          response: {
            200: { type: 'object', properties: { items: { type: 'array', items: hold } } },
            ...errors,
          },
        },
      },
      async (req) => ({
        items: await app.holds.listHolds(resolveDivision(req.caller, req.query.divisionId)),
      }),
    );
    server.delete<{ Params: { id: number }; Querystring: { divisionId?: string } }>(
      '/v1/legal-holds/:id',
      {
        config: holdScope,
        schema: {
          tags: ['legal holds'],
          summary: 'Release a division or agent hold',
          params: {
            type: 'object',
            required: ['id'],
            additionalProperties: false,
            properties: { id: rowId },
          },
          querystring: divisionQuery,
          response: { 200: hold, ...errors },
        },
      },
      async (req) => {
        const division = resolveDivision(req.caller, req.query.divisionId);
        return app.holds.releaseHold(accessOf(req.caller, division), division, req.params.id);
      },
    );

    const auditScope = { scopes: ['audit:read' as const] };
    server.get<{
      Querystring: {
        divisionId?: string;
        afterSeq?: number;
        limit?: number;
        resourceType?: string;
        resourceId?: string;
        memoryId?: string;
        type?: 'access' | 'change';
      };
    }>(
      '/v1/audit',
      {
        config: auditScope,
        schema: {
          tags: ['audit'],
          summary: "A division's audit events, oldest first",
          description:
            "Page with `afterSeq` (the `nextAfterSeq` of the previous page). `resourceType` and `resourceId` together narrow the page to one resource's events, e.g. `resourceType=memory&resourceId=<id>` for a memory's trail.",
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              divisionId,
              afterSeq: rowPosition,
              limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
              resourceType: { type: 'string', minLength: 1, maxLength: 64 },
              resourceId: { type: 'string', minLength: 1, maxLength: 200 },
              memoryId: {
                type: 'string',
                format: 'uuid',
                description:
                  'Only events about this memory: its changes and every read that showed it (with `type=access`: who saw it)',
              },
              type: {
                type: 'string',
                enum: ['access', 'change'],
                description: '`access`: reads (`memory.access`, `pii.read`); `change`: everything else',
              },
            },
          },
        },
      },
      async (req) => {
        const { resourceType, resourceId } = req.query;
        if ((resourceType === undefined) !== (resourceId === undefined)) {
          const missing = resourceType === undefined ? 'resourceType' : 'resourceId';
          throw invalid(missing, 'resourceType and resourceId narrow the trail together: give both');
        }
        return app.audit.list(resolveDivision(req.caller, req.query.divisionId), {
          afterSeq: req.query.afterSeq,
          limit: req.query.limit,
          resource:
            resourceType !== undefined && resourceId !== undefined
              ? { type: resourceType, id: resourceId }
              : undefined,
          memoryId: req.query.memoryId,
          type: req.query.type,
        });
      },
    );
    server.get<{ Querystring: { divisionId?: string } }>(
      '/v1/audit/head',
      {
        config: auditScope,
        schema: {
          tags: ['audit'],
          summary: "The division's latest event hash, signed with the server's Ed25519 key",
          querystring: divisionQuery,
        },
      },
      async (req) => app.audit.head(resolveDivision(req.caller, req.query.divisionId)),
    );
    server.post<{ Body: { divisionId?: string } }>(
      '/v1/exports',
      {
        config: auditScope,
        schema: {
          tags: ['audit'],
          summary: 'Export a proof bundle of a division',
          description:
            'Canonical JSON (RFC 8785): memory records (redacted unless the caller has pii:read), vector metadata, audit events and the signed head. Check it offline with `memory-layer audit verify BUNDLE`.',
          body: { type: 'object', additionalProperties: false, properties: { divisionId } },
        },
      },
      async (req, reply) => {
        const division = resolveDivision(req.caller, req.body?.divisionId);
        const { json } = await app.audit.exportBundle(division, {
          includePii: hasScope(req.caller, 'pii:read'),
          actor: actorOf(req.caller),
          manifestSignatureId: req.caller.manifestSignatureId,
          access: accessOf(req.caller, division),
        });
        req.log.info({ divisionId: division }, 'proof bundle exported');
        return reply
          .type('application/json')
          .header('content-disposition', `attachment; filename="memory-layer-proof-${division}.json"`)
          .send(json);
      },
    );
  };
}
