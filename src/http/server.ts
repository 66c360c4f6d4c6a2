import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { App } from '../app.js';
import { createAuthenticator } from '../auth/authenticate.js';
import { loadIdentities } from '../auth/identities.js';
import { httpsOptions } from '../auth/tls.js';
import { createTokenVerifier } from '../auth/tokens.js';
import { authMode, type Config } from '../config.js';
import { findJsonFault, MAX_JSON_DEPTH } from '../memories/text.js';
import { AppError, ErrorCode } from '../platform/errors.js';
import { installAuth } from './auth.js';
import { sendProblem, toProblem } from './problem.js';
import { artifactRoutes } from './routes/artifacts.js';
import { consoleRoutes } from './routes/console.js';
import { divisionRoutes } from './routes/divisions.js';
import { documentRoutes } from './routes/documents.js';
import { governanceRoutes } from './routes/governance.js';
import { healthRoutes } from './routes/health.js';
import { importRoutes } from './routes/import.js';
import { jobRoutes } from './routes/jobs.js';
import { mcpRoutes } from './routes/mcp.js';
import { memoryRoutes } from './routes/memories.js';
import { reembedRoutes } from './routes/reembed.js';
import { searchRoutes } from './routes/search.js';
import { traceRequests } from './tracing.js';

/**
 * Two validators: bodies are checked strictly (a string is never coerced into a number, unknown
 * fields are refused, not stripped); query strings are text by nature, so those are coerced.
 */
function validators() {
  const common = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const;
  const body = new Ajv({ ...common, coerceTypes: false });
  const query = new Ajv({ ...common, coerceTypes: 'array' });
  addFormats.default(body);
  addFormats.default(query);
  return { body, query };
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The authenticator the config asks for: dev mode, client certificates, delegated tokens. */
async function authenticatorFor(config: Config) {
  const mode = authMode(config);
  const tokens =
    config.JWT_PUBLIC_KEYS_FILE || config.JWKS_FILE
      ? await createTokenVerifier({
          publicKeysFile: config.JWT_PUBLIC_KEYS_FILE,
          jwksFile: config.JWKS_FILE,
          issuer: config.JWT_ISSUER as string,
          audience: config.JWT_AUDIENCE as string,
          maxTtlSeconds: config.JWT_MAX_TTL_SECONDS,
        })
      : undefined;
  const identities = config.IDENTITIES_FILE ? loadIdentities(config.IDENTITIES_FILE) : undefined;
  if (mode === 'enforce' && !tokens && !identities) {
    throw new Error(
      'AUTH_MODE=enforce needs TLS_CLIENT_CA with IDENTITIES_FILE, or JWT_PUBLIC_KEYS_FILE/JWKS_FILE',
    );
  }
  return { mode, authenticate: createAuthenticator({ mode, identities, tokens }) };
}

export async function buildHttpServer(app: App): Promise<FastifyInstance> {
  const { mode, authenticate } = await authenticatorFor(app.config);
  if (mode === 'dev') {
    app.logger.warn(
      'AUTH_MODE=dev: requests without credentials act as an all-powerful dev caller. Never use this in production.',
    );
  }
  const server = Fastify({
    https: httpsOptions(app.config) ?? null,
    loggerInstance: app.logger.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: app.config.BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: 200 },
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  // First, so that the span covers every later hook (auth refusals included).
  traceRequests(server, app.tracing);
  const ajv = validators();
  server.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'querystring' || httpPart === 'params' || httpPart === 'headers'
      ? ajv.query
      : ajv.body
    ).compile(schema),
  );

  server.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    // Lines logged for a request about one memory name it (its text is never logged).
    const memoryId = (req.params as { id?: unknown } | undefined)?.id;
    if (typeof memoryId === 'string' && req.routeOptions.url?.startsWith('/v1/memories/:id'))
      req.log = req.log.child({ memoryId });
  });
  installAuth(server, authenticate);
  // Only JSON bodies: text/plain would otherwise reach the schema as a string.
  server.removeContentTypeParser('text/plain');
  server.addHook('preValidation', async (req) => {
    // MCP messages carry tool arguments: the REST route each tool calls checks those, so the
    // fault comes back as a tool error naming the argument rather than as an HTTP 400.
    if (req.routeOptions.url === '/mcp') return;
    const fault = findJsonFault(req.body);
    if (fault?.problem === 'nul') {
      throw new AppError(
        ErrorCode.validation,
        `${fault.field} holds a NUL character (U+0000), which cannot be stored`,
        [{ field: fault.field, message: 'NUL characters are not allowed' }],
      );
    }
    if (fault?.problem === 'depth') {
      throw new AppError(
        ErrorCode.validation,
        `${fault.field} nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays`,
        [{ field: fault.field, message: `at most ${MAX_JSON_DEPTH} levels of nesting` }],
      );
    }
  });
  server.addHook('onResponse', async (req, reply) => {
    app.metrics.httpSeconds.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  server.setErrorHandler((err, req, reply) => {
    const problem = toProblem(err as Error, req);
    if (problem.status === 401) reply.header('www-authenticate', 'Bearer');
    if (err instanceof AppError) reply.headers(err.headers);
    if (problem.status >= 500) req.log.error({ err }, 'request failed');
    return sendProblem(reply, problem);
  });
  server.setNotFoundHandler((req, reply) =>
    sendProblem(reply, {
      ...toProblem(new Error('not found'), req),
      type: `urn:memory-layer:problem:${ErrorCode.notFound}`,
      title: 'Not Found',
      status: 404,
      code: ErrorCode.notFound,
      detail: `no route ${req.method} ${req.url.split('?')[0]}`,
    }),
  );

  await server.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Memory Layer API',
        version: '0.1.0',
        description:
          'Long-term memory for AI agents. Errors are RFC 9457 problem+json with a stable `code` and the fields at fault.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (EdDSA or ES256)' },
          mutualTLS: {
            type: 'mutualTLS' as 'openIdConnect', // OpenAPI 3.1 type the plugin's 3.0 typings lack
            description: 'Client certificate; its CN maps to a service identity',
          } as never,
        },
      },
      security: [{ bearerAuth: [] }, { mutualTLS: [] }],
    },
  });
  await server.register(swaggerUi, { routePrefix: '/docs' });
  server.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, async () =>
    server.swagger(),
  );

  await server.register(healthRoutes(app));
  await server.register(memoryRoutes(app));
  await server.register(importRoutes(app));
  await server.register(searchRoutes(app));
  await server.register(divisionRoutes(app));
  await server.register(jobRoutes(app));
  await server.register(governanceRoutes(app));
  await server.register(artifactRoutes(app));
  await server.register(documentRoutes(app));
  await server.register(reembedRoutes(app));
  await server.register(mcpRoutes(app));
  await server.register(consoleRoutes());
  return server;
}
