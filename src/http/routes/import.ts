import type { FastifyInstance } from 'fastify';
import type { App } from '../../app.js';
import { resolveDivision } from '../../auth/authorize.js';
import { actorOf } from '../../auth/caller.js';
import { accessOf } from '../../memories/access.js';
import { AppError, ErrorCode } from '../../platform/errors.js';
import { idempotencyHeader } from '../idempotency.js';
import { problem, scopeQuery } from '../schemas.js';

const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/json-lines'];

const importQuery = {
  type: 'object',
  additionalProperties: false,
  required: ['divisionId'],
  properties: {
    divisionId: scopeQuery.properties.divisionId,
    atomic: {
      type: 'boolean',
      default: false,
      description: 'All or nothing: any bad line rolls the whole import back (422) and nothing is written',
    },
  },
} as const;

const importReport = {
  type: 'object',
  required: ['divisionId', 'imported', 'replayed', 'failed', 'lines', 'errors', 'errorsTruncated'],
  properties: {
    divisionId: { type: 'string' },
    imported: { type: 'integer', description: 'memories written by this request' },
    replayed: {
      type: 'integer',
      description: 'memories of chunks an earlier request with the same Idempotency-Key had written',
    },
    failed: { type: 'integer', description: 'lines refused' },
    lines: { type: 'integer', description: 'lines read' },
    errors: {
      type: 'array',
      description: 'the first 1,000 refused lines, in order',
      items: {
        type: 'object',
        required: ['line', 'code', 'field', 'message'],
        properties: {
          line: { type: 'integer', description: '1-based line number in the body' },
          code: {
            type: 'string',
            description: 'the stable error code the same item gets from POST /v1/memories',
          },
          field: {
            type: 'string',
            description: 'the field at fault within the line ("" for the whole line)',
          },
          message: { type: 'string' },
        },
      },
    },
    errorsTruncated: { type: 'boolean' },
  },
} as const;

export function importRoutes(app: App) {
  return async (server: FastifyInstance) => {
    // In this plugin only: the body is streamed line by line by the handler, never buffered.
    server.removeAllContentTypeParsers();
    server.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

    server.post<{ Querystring: { divisionId: string; atomic: boolean } }>(
      '/v1/memories/import',
      {
        config: { scopes: ['memory:write'] },
        schema: {
          tags: ['memories'],
          summary: 'Bulk import memories from NDJSON (streamed, COPY)',
          description:
            'The body is NDJSON (`application/x-ndjson`): one memory per line, with the fields of a `POST /v1/memories/batch` item (`text`, `vector` + `model`, `sessionId`, `sequence`, `occurredAt`, …). Lines are read as they arrive, checked one by one, and written with COPY every IMPORT_CHUNK_LINES lines, each chunk in one transaction. By default bad lines are reported by number and skipped (200 with the report); with `atomic=true` any bad line rolls everything back (422 `validation_failed`, fields `lines[N].field`). With `Idempotency-Key`, sending the same body again with the same key skips the chunks already written (`replayed`) and writes the rest: an interrupted import resumes. Bodies over MAX_IMPORT_BYTES stop with 413.',
          querystring: importQuery,
          response: {
            200: importReport,
            400: problem,
            413: problem,
            415: problem,
            422: problem,
            503: problem,
          },
        },
      },
      async (req, reply) => {
        const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        if (!NDJSON_TYPES.includes(type)) {
          reply.header('connection', 'close');
          throw new AppError(
            ErrorCode.unsupportedMediaType,
            `send NDJSON (${NDJSON_TYPES[0]}), not ${type || 'no type'}`,
            [{ field: 'Content-Type', message: `one of ${NDJSON_TYPES.join(', ')}` }],
          );
        }
        const raw = idempotencyHeader(req);
        const divisionId = resolveDivision(req.caller, req.query.divisionId);
        try {
          const report = await app.importer.run(accessOf(req.caller, divisionId), req.raw, {
            divisionId,
            atomic: req.query.atomic,
            chunkLines: app.config.IMPORT_CHUNK_LINES,
            // A line holds a memory's text and perhaps a vector: room for both, JSON-escaped.
            maxLineBytes: app.config.MAX_TEXT_BYTES * 6 + 256 * 1024,
            maxBytes: app.config.MAX_IMPORT_BYTES,
            // Keys belong to the caller, as for every other write.
            chunkKey:
              raw === undefined
                ? undefined
                : ({ index, digest }) => ({
                    divisionId,
                    key: `import\n${actorOf(req.caller)}\n${raw}\n${index}`,
                    requestHash: digest,
                  }),
          });
          if (report.imported > 0) app.metrics.memoriesIngested.inc({ source: 'import' }, report.imported);
          req.log.info(
            { divisionId, imported: report.imported, replayed: report.replayed, failed: report.failed },
            'memory import finished',
          );
          return reply.status(200).send(report);
        } catch (err) {
          // The rest of a refused body is not read: close the connection after the answer.
          if (!req.raw.complete) reply.header('connection', 'close');
          throw err;
        }
      },
    );
  };
}
