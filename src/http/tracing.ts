import { type Context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Tracing } from '../platform/tracing.js';

/**
 * A server span per request, continuing the caller's trace (W3C `traceparent`). Installed before
 * every other hook so that refusals (401, 403, 413) are traced too. The span is made active for
 * the `onRequest` hooks and again for the handler (`preHandler`): body parsing runs on the
 * socket's own async context, so one activation at the start would not reach the handler.
 */
export function traceRequests(server: FastifyInstance, tracing: Tracing) {
  if (!tracing.enabled) return;
  const contexts = new WeakMap<FastifyRequest, Context>();

  server.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url;
    const parent = tracing.extract(req.headers);
    const span = tracing.startSpan(
      route ? `${req.method} ${route}` : req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method,
          'url.path': req.url.split('?')[0],
          'url.scheme': req.protocol,
          ...(route ? { 'http.route': route } : {}),
        },
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    contexts.set(req, ctx);
    tracing.with(ctx, done);
  });
  server.addHook('preHandler', (req, _reply, done) => {
    const ctx = contexts.get(req);
    if (ctx) tracing.with(ctx, done);
    else done();
  });

  const spanOf = (req: FastifyRequest): Span | undefined => {
    const ctx = contexts.get(req);
    contexts.delete(req);
    return ctx && trace.getSpan(ctx);
  };
  server.addHook('onResponse', (req, reply, done) => {
    const span = spanOf(req);
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) {
        span.setAttribute('error.type', String(reply.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    }
    done();
  });
  server.addHook('onRequestAbort', (req, done) => {
    const span = spanOf(req);
    if (span) {
      span.setAttribute('error.type', 'aborted');
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'client closed the connection' });
      span.end();
    }
    done();
  });
}
