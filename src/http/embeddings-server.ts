import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Embedder } from '../adapters/embedders/port.js';

export interface EmbeddingsServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest request body accepted; default 16 MiB. */
  bodyLimitBytes?: number;
}

export interface EmbeddingsServer {
  /** Base URL ending in `/v1`, ready for EMBEDDER_URL. */
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A minimal OpenAI-compatible embeddings server for any Embedder. It lets operators run the built-in
 * model as a separate service (shared by several instances, or on its own machine) and lets tests
 * drive the HTTP adapter against a real server. Plain node:http: two routes need no framework.
 */
export async function startEmbeddingsServer(
  embedder: Embedder,
  opts: EmbeddingsServerOptions,
): Promise<EmbeddingsServer> {
  const limit = opts.bodyLimitBytes ?? 16 * 1024 * 1024;
  const server = createServer((req, res) => {
    handle(embedder, limit, req, res).catch((err: unknown) => {
      const e =
        err instanceof HttpError
          ? err
          : new HttpError(500, 'server_error', `embedding failed: ${(err as Error).message}`);
      if (!res.headersSent && !res.destroyed)
        send(res, e.status, { error: { message: e.message, type: e.type } });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;

  return {
    url: `http://${host}:${port}/v1`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections would otherwise hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}

async function handle(embedder: Embedder, limit: number, req: IncomingMessage, res: ServerResponse) {
  const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '');

  if (path === '/v1/models') {
    if (req.method !== 'GET') throw new HttpError(405, 'invalid_request_error', 'use GET');
    const { name, version, dimensions } = embedder.model;
    return send(res, 200, {
      object: 'list',
      data: [{ id: name, object: 'model', created: 0, owned_by: 'memory-layer', version, dimensions }],
    });
  }
  if (path !== '/v1/embeddings')
    throw new HttpError(404, 'invalid_request_error', `no route ${req.method} ${path}`);
  if (req.method !== 'POST') throw new HttpError(405, 'invalid_request_error', 'use POST');

  const body = await readJson(req, limit);
  const input = body.input;
  const texts = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string')) {
    throw new HttpError(
      400,
      'invalid_request_error',
      '"input" must be a string or a non-empty array of strings',
    );
  }
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    throw new HttpError(400, 'invalid_request_error', '"encoding_format" must be "float" or "base64"');
  }
  if (body.dimensions !== undefined && body.dimensions !== embedder.model.dimensions) {
    throw new HttpError(
      400,
      'invalid_request_error',
      `this model has ${embedder.model.dimensions} dimensions`,
    );
  }

  // Stop embedding when the client gives up (its own timeout), instead of finishing unseen work.
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const vectors = await embedder.embed(texts, abort.signal);

  send(res, 200, {
    object: 'list',
    data: vectors.map((v, index) => ({
      object: 'embedding',
      index,
      // The official SDKs ask for base64 by default: little-endian float32, as OpenAI sends it.
      embedding:
        format === 'base64'
          ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
          : Array.from(v),
    })),
    model: embedder.model.name,
    usage: { prompt_tokens: 0, total_tokens: 0 },
  });
}

async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit)
      throw new HttpError(413, 'invalid_request_error', `request body exceeds ${limit} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_request_error', 'request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'invalid_request_error', 'request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown) {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}
