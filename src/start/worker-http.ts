import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { App } from '../app.js';
import { healthRoutes } from '../http/routes/health.js';

/**
 * The HTTP endpoint of a `worker` process, for Kubernetes and Prometheus: /healthz, /readyz and
 * /metrics, the very routes the API serves (same readiness rules, same registry), and nothing
 * else. Plain HTTP and no authentication: it carries no memory data, only health and metrics
 * (the API's versions of these routes are public too), and the chart's NetworkPolicy lets only
 * the metrics scrapers reach it.
 */
export async function startWorkerHttp(app: App, opts: { port: number; host: string }) {
  const server: FastifyInstance = Fastify({
    loggerInstance: app.logger.child({ component: 'worker-http' }) as FastifyBaseLogger,
    // Probes and scrapes arrive every few seconds: one log line each would drown the worker's.
    logController: new LogController({ disableRequestLogging: true }),
  });
  await server.register(healthRoutes(app));
  await server.listen({ port: opts.port, host: opts.host });
  return server;
}
