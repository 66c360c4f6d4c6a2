import type { FastifyInstance } from 'fastify';
import type { App } from '../../app.js';
import { queueDepth } from '../../internal/queue/jobs.js';

export function healthRoutes(app: App) {
  return async (server: FastifyInstance) => {
    server.get('/healthz', { schema: { hide: true }, config: { public: true } }, async () => ({
      status: 'ok',
    }));

    /** Ready when the database and the vector index both answer. */
    server.get('/readyz', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => {
      const checks: Record<string, string> = {};
      await Promise.all([
        app.db.query('SELECT 1').then(
          () => {
            checks.database = 'ok';
          },
          (err: Error) => {
            checks.database = err.message;
          },
        ),
        app.index.check().then(
          () => {
            checks.vectorIndex = 'ok';
          },
          (err: Error) => {
            checks.vectorIndex = err.message;
          },
        ),
      ]);
      const ready = Object.values(checks).every((v) => v === 'ok');
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
    });

    server.get('/metrics', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => {
      // Queue depth is read at scrape time so that every replica reports the shared queue.
      app.metrics.queueDepth.reset();
      for (const row of await queueDepth(app.db)) {
        app.metrics.queueDepth.set({ queue: row.queue, status: row.status }, row.count);
      }
      return reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics());
    });
  };
}
