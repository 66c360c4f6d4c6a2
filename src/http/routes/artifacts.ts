import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type ArtifactRecord, type ArtifactService, publicArtifact } from '../../artifacts/artifacts.js';
import { resolveDivision } from '../../auth/authorize.js';
import type { Caller } from '../../auth/caller.js';
import { accessOf } from '../../memories/access.js';
import { ErrorCode, notFound } from '../../platform/errors.js';
import { idParam, problem, scopeQuery } from '../schemas.js';

const tags = ['artifacts'];
const read = { scopes: ['memory:read' as const] };
const write = { scopes: ['memory:write' as const] };

const artifact = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    divisionId: { type: 'string' },
    agentId: { type: ['string', 'null'] },
    sha256: { type: 'string', description: 'SHA-256 (hex) of the bytes; also the ETag' },
    size: { type: 'integer' },
    contentType: { type: 'string' },
    createdBy: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const uuid = { type: 'string', format: 'uuid' } as const;
const linkParams = {
  type: 'object',
  required: ['id', 'artifactId'],
  additionalProperties: false,
  properties: { id: uuid, artifactId: uuid },
} as const;
const uploadHeaders = {
  type: 'object',
  properties: {
    'x-checksum-sha256': {
      type: 'string',
      description: 'The SHA-256 the body must have (hex, or base64): a mismatch is refused with 400',
    },
  },
} as const;
const errors = { 400: problem, 401: problem, 403: problem, 404: problem };

/** Access for by-id routes; `?divisionId=` narrows the lookup to one (allowed) division. */
const scoped = (caller: Caller, divisionId: string | undefined) =>
  accessOf(caller, divisionId === undefined ? undefined : resolveDivision(caller, divisionId));

/**
 * The request body as a stream of its own: when the upload is refused half-way (too large, wrong
 * checksum) only this stream is destroyed, not the connection, so the client still gets the error.
 */
function requestBody(raw: IncomingMessage): Readable {
  const body = new PassThrough();
  let ended = false;
  raw.once('end', () => {
    ended = true;
  });
  raw.once('error', (err) => body.destroy(err));
  raw.once('close', () => {
    if (!ended) body.destroy(new Error('the client closed the connection before the body ended'));
  });
  raw.pipe(body);
  return body;
}

function describe(reply: FastifyReply, a: ArtifactRecord) {
  const b64 = Buffer.from(a.sha256, 'hex').toString('base64');
  return reply
    .header('etag', `"${a.sha256}"`)
    .header('x-checksum-sha256', a.sha256)
    .header('digest', `sha-256=${b64}`)
    .header('repr-digest', `sha-256=:${b64}:`)
    .header('content-type', a.contentType)
    .header('content-length', String(a.size))
    .header('content-disposition', `attachment; filename="${a.id}"`)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'private, no-cache');
}

const matches = (ifNoneMatch: string | undefined, a: ArtifactRecord) =>
  (ifNoneMatch ?? '').split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === `"${a.sha256}"`;
  });

/**
 * Files: streamed uploads (never buffered whole), checksum-verified downloads, links from
 * memories. Request bodies of these routes are not parsed: the handlers stream `request.raw`.
 */
export function artifactRoutes(app: { artifacts: ArtifactService }) {
  return async (server: FastifyInstance) => {
    // In this plugin only: every body, whatever its type, is left unread for the handler.
    server.removeAllContentTypeParsers();
    server.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

    server.post<{ Querystring: { divisionId?: string }; Headers: { 'x-checksum-sha256'?: string } }>(
      '/v1/artifacts',
      {
        config: write,
        schema: {
          tags,
          summary: 'Upload a file (streamed)',
          description:
            "Send the file's bytes as the body, with its `Content-Type` (stored and returned on download; default application/octet-stream). The SHA-256 is computed while the body streams to the object store; with `X-Checksum-SHA256` a different body is refused (400) and nothing is stored. Bodies over ARTIFACT_MAX_BYTES get 413 `payload_too_large`, nothing stored. Every upload is a new artifact: nothing is ever overwritten.",
          querystring: scopeQuery,
          headers: uploadHeaders,
          response: { 201: artifact, 413: problem, ...errors },
        },
      },
      async (req, reply) => {
        const divisionId = resolveDivision(req.caller, req.query.divisionId);
        const length = req.headers['content-length'];
        try {
          const created = await app.artifacts.upload(
            accessOf(req.caller, divisionId),
            divisionId,
            requestBody(req.raw),
            {
              contentType: req.headers['content-type'],
              sha256: req.headers['x-checksum-sha256'],
              contentLength: length === undefined ? undefined : Number(length),
            },
          );
          req.log.info({ artifactId: created.id, divisionId, size: created.size }, 'artifact stored');
          return reply
            .status(201)
            .header('location', `/v1/artifacts/${created.id}`)
            .header('etag', `"${created.sha256}"`)
            .send(publicArtifact(created));
        } catch (err) {
          // The rest of a refused body is not read: close the connection after the answer.
          if (!req.raw.complete) reply.header('connection', 'close');
          throw err;
        }
      },
    );

    const download = {
      tags,
      params: idParam,
      querystring: scopeQuery,
    };

    server.get<{ Params: { id: string }; Querystring: { divisionId?: string } }>(
      '/v1/artifacts/:id',
      {
        config: read,
        exposeHeadRoute: false,
        schema: {
          ...download,
          summary: 'Download a file (streamed, checksum verified)',
          description:
            'The bytes with their content type, `ETag` (the SHA-256), `Digest` and `Repr-Digest`. The SHA-256 is checked while streaming: if the stored bytes no longer match, the response is cut short before its end (never a complete wrong body). `If-None-Match` with the ETag gets 304.',
          response: { 200: { type: 'string', format: 'binary' }, 304: { type: 'null' }, ...errors },
        },
      },
      async (req, reply) => {
        const access = scoped(req.caller, req.query.divisionId);
        const found = await app.artifacts.get(access, req.params.id);
        if (matches(req.headers['if-none-match'], found)) {
          return reply.status(304).header('etag', `"${found.sha256}"`).send();
        }
        const { artifact: a, body } = await app.artifacts.open(access, req.params.id);
        return describe(reply, a).send(body);
      },
    );

    server.head<{ Params: { id: string }; Querystring: { divisionId?: string } }>(
      '/v1/artifacts/:id',
      {
        config: read,
        schema: { ...download, summary: "A file's headers (size, type, checksum) without its bytes" },
      },
      async (req, reply) => {
        const a = await app.artifacts.get(scoped(req.caller, req.query.divisionId), req.params.id);
        return describe(reply, a).send();
      },
    );

    server.put<{ Params: { id: string; artifactId: string }; Querystring: { divisionId?: string } }>(
      '/v1/memories/:id/artifacts/:artifactId',
      {
        config: write,
        schema: {
          tags,
          summary: 'Link a file to a memory (same division; idempotent)',
          params: linkParams,
          querystring: scopeQuery,
          response: { 204: { type: 'null' }, ...errors },
        },
      },
      async (req, reply) => {
        await app.artifacts.link(
          scoped(req.caller, req.query.divisionId),
          req.params.id,
          req.params.artifactId,
        );
        return reply.status(204).send();
      },
    );

    server.delete<{ Params: { id: string; artifactId: string }; Querystring: { divisionId?: string } }>(
      '/v1/memories/:id/artifacts/:artifactId',
      {
        config: write,
        schema: {
          tags,
          summary: 'Unlink a file from a memory (the file stays)',
          description: 'Refused with 409 `legal_hold` while a legal hold covers the memory.',
          params: linkParams,
          querystring: scopeQuery,
          response: { 204: { type: 'null' }, 409: problem, ...errors },
        },
      },
      async (req, reply) => {
        const { unlinked } = await app.artifacts.unlink(
          scoped(req.caller, req.query.divisionId),
          req.params.id,
          req.params.artifactId,
        );
        if (!unlinked) {
          throw notFound(
            ErrorCode.notFound,
            `memory ${req.params.id} has no link to artifact ${req.params.artifactId}`,
          );
        }
        return reply.status(204).send();
      },
    );

    server.get<{ Params: { id: string }; Querystring: { divisionId?: string } }>(
      '/v1/memories/:id/artifacts',
      {
        config: read,
        schema: {
          tags,
          summary: "A memory's files",
          params: idParam,
          querystring: scopeQuery,
          response: {
            200: { type: 'object', properties: { items: { type: 'array', items: artifact } } },
            ...errors,
          },
        },
      },
      async (req) => {
        const items = await app.artifacts.listForMemory(
          scoped(req.caller, req.query.divisionId),
          req.params.id,
        );
        return { items: items.map(publicArtifact) };
      },
    );
  };
}
