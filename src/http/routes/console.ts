import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** The console's static files: plain HTML, JavaScript modules and CSS, no build step. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

/**
 * Only the console's own files run or load; no inline script or style, no plugins, no framing,
 * no requests to other origins; and Trusted Types make the browser refuse any HTML string
 * assigned to `innerHTML` and its kin, so memory text can only ever become a text node.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every servable file under `dir`, keyed by its path with `/` separators; read once. */
function loadFiles(dir: string, prefix = ''): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      for (const [k, v] of loadFiles(path, `${prefix}${entry.name}/`)) files.set(k, v);
      continue;
    }
    const type = TYPES[extname(entry.name)];
    if (!entry.isFile() || !type) continue;
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    files.set(`${prefix}${entry.name}`, { body, type, etag });
  }
  return files;
}

/**
 * The web console at `/console/`: a single-page app that only calls the public REST API with
 * the caller's own credentials. The files carry no data, so they are served without
 * authentication; what the console shows is whatever the API lets the caller see.
 */
export function consoleRoutes() {
  const files = loadFiles(CONSOLE_DIR);
  const send = (req: FastifyRequest, reply: FastifyReply, name: string) => {
    const file = files.get(name);
    if (!file) return reply.callNotFound();
    reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cache-control', 'no-cache')
      .header('etag', file.etag);
    if (req.headers['if-none-match'] === file.etag) return reply.status(304).send();
    return reply.type(file.type).send(file.body);
  };
  const options = { schema: { hide: true }, config: { public: true } };
  return async (server: FastifyInstance) => {
    // Relative URLs in the page resolve under /console/ only with the trailing slash.
    server.get('/console', options, async (_req, reply) => reply.redirect('/console/', 302));
    server.get('/console/', options, async (req, reply) => send(req, reply, 'index.html'));
    server.get<{ Params: { '*': string } }>('/console/*', options, async (req, reply) =>
      send(req, reply, req.params['*']),
    );
  };
}
