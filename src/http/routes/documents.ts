import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireScopes, resolveDivision } from '../../auth/authorize.js';
import type { Caller } from '../../auth/caller.js';
import type { DocumentService, NewDocument } from '../../documents/documents.js';
import { DOCUMENT_TYPES, decodeDocument, documentTypeOf, parseMetadata } from '../../documents/input.js';
import { accessOf } from '../../memories/access.js';
import { AppError, ErrorCode } from '../../platform/errors.js';
import { idempotencyKeyOf } from '../idempotency.js';
import { deleteQuery, idParam, problem, scopeQuery } from '../schemas.js';

const tags = ['documents'];
const read = { scopes: ['memory:read' as const] };
const write = { scopes: ['memory:write' as const] };

const slug = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;
const title = {
  type: 'string',
  minLength: 1,
  maxLength: 500,
  description: 'Shown with the document and the root of every chunk’s heading path',
} as const;

const uploadQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    divisionId: slug,
    agentId: { ...slug, description: 'A registered agent of the division (agent tokens: their own)' },
    namespace: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$' },
    kind: {
      type: 'string',
      pattern: '^[a-z][a-z0-9_-]{0,63}$',
      description: 'Of every chunk; default "document"',
    },
    tags: {
      type: 'array',
      maxItems: 64,
      items: { type: 'string', minLength: 1, maxLength: 128 },
      description: 'Repeat the parameter for several (`tags=a&tags=b`); given to every chunk',
    },
    metadata: {
      type: 'string',
      maxLength: 8192,
      description: 'A JSON object, given to every chunk (beside `document: {id, version, chunk, chunks}`)',
    },
    title,
    sessionId: { ...slug, description: "The chunks' session; default: the document's id" },
    occurredAt: { type: 'string', format: 'date-time', description: "Every chunk's occurredAt" },
  },
} as const;

const replaceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { divisionId: slug, title },
} as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    divisionId: slug,
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    cursor: { type: 'string', maxLength: 512 },
  },
} as const;

const documentSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    divisionId: { type: 'string' },
    agentId: { type: ['string', 'null'] },
    namespace: { type: 'string' },
    kind: { type: 'string' },
    title: { type: ['string', 'null'] },
    contentType: { type: 'string', enum: [...DOCUMENT_TYPES] },
    sessionId: { type: 'string' },
    occurredAt: { type: ['string', 'null'], format: 'date-time' },
    tags: { type: 'array', items: { type: 'string' } },
    metadata: { type: 'object', additionalProperties: true },
    artifactId: {
      type: ['string', 'null'],
      format: 'uuid',
      description: 'The original (GET /v1/artifacts/{id})',
    },
    size: { type: 'integer' },
    sha256: { type: 'string' },
    version: { type: 'integer', description: '1 at upload, +1 per replacement' },
    status: {
      type: 'string',
      enum: ['pending', 'splitting', 'indexing', 'indexed', 'failed'],
      description:
        'pending: waiting for a worker; splitting: being split; indexing: chunks written, not all searchable yet; indexed: every chunk searchable; failed: see `error`',
    },
    error: { type: ['string', 'null'] },
    chunkCount: { type: 'integer' },
    chunksIndexed: { type: 'integer' },
    chunksFailed: { type: 'integer' },
    chunks: {
      type: 'array',
      description: 'The chunks in order: each is a memory of the session (`sequence` = position)',
      items: {
        type: 'object',
        properties: {
          position: { type: 'integer' },
          memoryId: { type: 'string', format: 'uuid' },
          status: { type: 'string', enum: ['pending', 'indexed', 'failed'] },
        },
      },
    },
    createdBy: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const body = {
  description: 'The document itself: `text/plain` or `text/markdown`, UTF-8',
  content: Object.fromEntries(DOCUMENT_TYPES.map((t) => [t, { schema: { type: 'string' } }])),
};

const errors = { 400: problem, 401: problem, 403: problem, 404: problem };
const uploadErrors = { ...errors, 409: problem, 413: problem, 415: problem, 503: problem };

const scoped = (caller: Caller, divisionId: string | undefined) =>
  accessOf(caller, divisionId === undefined ? undefined : resolveDivision(caller, divisionId));

type UploadQuery = Omit<NewDocument, 'contentType' | 'text' | 'metadata'> & {
  divisionId?: string;
  metadata?: string;
};

/**
 * Documents: raw text or Markdown bodies (not JSON), labels in the query string as for artifact
 * uploads. The body is read whole (it is at most MAX_DOCUMENT_BYTES) so that it is checked — type,
 * size, UTF-8 — before anything is stored.
 */
export function documentRoutes(app: { documents: DocumentService; config: { MAX_DOCUMENT_BYTES: number } }) {
  const limit = app.config.MAX_DOCUMENT_BYTES;
  const tooLarge = () =>
    new AppError(ErrorCode.payloadTooLarge, `documents are limited to ${limit} bytes (MAX_DOCUMENT_BYTES)`, [
      { field: '(body)', message: `at most ${limit} bytes` },
    ]);

  /** The body, refused with 413 as soon as it passes the limit. */
  const readBody = async (req: FastifyRequest, payload: NodeJS.ReadableStream): Promise<Buffer> => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) throw tooLarge();
    const parts: Buffer[] = [];
    let size = 0;
    for await (const part of payload) {
      const buf = Buffer.from(part as Uint8Array);
      size += buf.length;
      if (size > limit) throw tooLarge();
      parts.push(buf);
    }
    return Buffer.concat(parts);
  };

  return async (server: FastifyInstance) => {
    // In this plugin only: bodies are raw documents, checked before they are read.
    server.removeAllContentTypeParsers();
    server.addContentTypeParser(
      '*',
      { bodyLimit: limit + 1 },
      async (req: FastifyRequest, payload: NodeJS.ReadableStream) => {
        documentTypeOf(req.headers['content-type']);
        return decodeDocument(await readBody(req, payload));
      },
    );
    // A refused body is not read to its end: close the connection after the answer.
    server.addHook('onError', async (req, reply) => {
      if (!req.raw.complete) reply.header('connection', 'close');
    });

    /** The checked document (a request without a body names no type: 415). */
    const upload = (req: FastifyRequest) => ({
      contentType: documentTypeOf(req.headers['content-type']),
      text: decodeDocument(req.body as string | undefined),
    });

    server.post<{ Querystring: UploadQuery }>(
      '/v1/documents',
      {
        config: write,
        bodyLimit: limit + 1,
        schema: {
          tags,
          summary: 'Upload a document to be split into memories',
          description:
            'The body is the document (`text/plain` or `text/markdown`, UTF-8, at most MAX_DOCUMENT_BYTES). It is stored as an artifact, and a worker splits it into chunks — by headings (Markdown) and paragraphs, each at most DOCUMENT_CHUNK_CHARS characters, overlapping by DOCUMENT_CHUNK_OVERLAP — written as memories of one session (`sessionId`, default the document id; `sequence` = chunk order) linked to the artifact. Answers 202 at once; `GET /v1/documents/{id}` shows the progress. Refused with nothing stored: another type 415, too large 413, empty or not UTF-8 400. With `Idempotency-Key`, a retry of the same upload (same body and query) gets the first answer (header `idempotent-replayed: true`) and stores nothing; the key with another upload: 422 `idempotency_key_reused`.',
          querystring: uploadQuery,
          body,
          response: { 202: documentSchema, ...uploadErrors },
        },
      },
      async (req, reply) => {
        const divisionId = resolveDivision(req.caller, req.query.divisionId);
        const { metadata, divisionId: _d, ...labels } = req.query;
        const input = { ...labels, ...upload(req), metadata: parseMetadata(metadata) };
        // The labels travel in the query string: the request's identity is query and body together.
        const idempotency = idempotencyKeyOf(req, divisionId, { query: req.query, body: req.body });
        const { document: created, replayed } = await app.documents.create(
          accessOf(req.caller, divisionId),
          divisionId,
          input,
          { idempotency },
        );
        req.log.info({ documentId: created.id, divisionId, size: created.size, replayed }, 'document stored');
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(202).header('location', `/v1/documents/${created.id}`).send(created);
      },
    );

    server.put<{ Params: { id: string }; Querystring: { divisionId?: string; title?: string } }>(
      '/v1/documents/:id',
      {
        config: write,
        bodyLimit: limit + 1,
        schema: {
          tags,
          summary: 'Replace a document with a new version',
          description:
            'The new version is stored and split like an upload; the old chunks are deleted (audited as memory deletes) and its original removed, in one transaction with `document.replace`. Refused with 409 `legal_hold` while a hold covers one of its chunks, its agent or its division; nothing changes.',
          params: idParam,
          querystring: replaceQuery,
          body,
          response: { 202: documentSchema, ...uploadErrors },
        },
      },
      async (req, reply) => {
        const replaced = await app.documents.replace(
          scoped(req.caller, req.query.divisionId),
          req.params.id,
          {
            ...upload(req),
            title: req.query.title,
          },
        );
        req.log.info({ documentId: replaced.id, version: replaced.version }, 'document replaced');
        return reply.status(202).send(replaced);
      },
    );

    server.get<{ Params: { id: string }; Querystring: { divisionId?: string } }>(
      '/v1/documents/:id',
      {
        config: read,
        schema: {
          tags,
          summary: 'A document: its progress and its chunks in order',
          params: idParam,
          querystring: scopeQuery,
          response: { 200: documentSchema, ...errors },
        },
      },
      async (req) => app.documents.get(scoped(req.caller, req.query.divisionId), req.params.id),
    );

    server.get<{ Querystring: { divisionId?: string; limit: number; cursor?: string } }>(
      '/v1/documents',
      {
        config: read,
        schema: {
          tags,
          summary: "A division's documents, newest first",
          querystring: listQuery,
          response: {
            200: {
              type: 'object',
              properties: {
                items: { type: 'array', items: documentSchema },
                nextCursor: { type: ['string', 'null'] },
              },
            },
            ...errors,
          },
        },
      },
      async (req) => {
        const divisionId = resolveDivision(req.caller, req.query.divisionId);
        return app.documents.list(accessOf(req.caller, divisionId), { ...req.query, divisionId });
      },
    );

    server.delete<{ Params: { id: string }; Querystring: { divisionId?: string; purge?: boolean } }>(
      '/v1/documents/:id',
      {
        config: { scopes: ['memory:delete'] },
        schema: {
          tags,
          summary: 'Delete a document, its chunks and its original',
          description:
            'Its chunks are deleted like memories (soft; `?purge=true` erases them now and needs memory:delete and admin) and its original is removed from the object store, in one transaction with `document.delete` (or `document.purge`). Refused with 409 `legal_hold` while a hold covers one of its chunks, its agent or its division; nothing changes.',
          params: idParam,
          querystring: deleteQuery,
          response: { 204: { type: 'null' }, 409: problem, ...errors },
        },
      },
      async (req, reply) => {
        if (req.query.purge) requireScopes(req.caller, ['memory:delete', 'admin']);
        await app.documents.remove(scoped(req.caller, req.query.divisionId), req.params.id, {
          purge: req.query.purge,
        });
        req.log.info({ documentId: req.params.id, purge: req.query.purge === true }, 'document deleted');
        return reply.status(204).send();
      },
    );
  };
}
