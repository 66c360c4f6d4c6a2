import type { FastifyInstance } from 'fastify';
import { objectStoreReadiness } from '../../adapters/objects/index.js';
import type { App } from '../../app.js';
import { queueDepth } from '../../indexing/queue.js';
import { withoutAddresses } from '../../platform/addresses.js';
import { storageUsage } from '../../platform/storage-usage.js';

/** An embedder failure this recent, with no success since, reports the embedder degraded. */
const EMBEDDER_WINDOW_MS = 60_000;

/**
 * The parts that degrade without making the service unready: writes are still accepted (or
 * refused with Retry-After) and queued. Reported only when degraded.
 */
async function degradedParts(app: App): Promise<Record<string, string>> {
  const parts: Record<string, string> = {};
  const limit = app.backpressure.limit;
  if (limit > 0) {
    // Counted afresh (one count per probe). When the database is down its own check says so.
    const backlog = await app.backpressure.backlog(0).catch(() => undefined);
    if (backlog !== undefined && backlog >= limit) {
      parts.queue = `backlog ${backlog} ${backlog > limit ? 'over' : 'at'} limit ${limit}`;
    }
  }
  const { lastError, lastSuccessAt } = app.worker.status().embedder;
  if (
    lastError &&
    Date.now() - lastError.at.getTime() < EMBEDDER_WINDOW_MS &&
    (!lastSuccessAt || lastSuccessAt < lastError.at)
  ) {
    parts.embedder = `degraded: ${lastError.message} (at ${lastError.at.toISOString()})`;
  }
  return parts;
}

export function healthRoutes(app: App) {
  return async (server: FastifyInstance) => {
    server.get('/healthz', { schema: { hide: true }, config: { public: true } }, async () => ({
      status: 'ok',
    }));

    /**
     * Ready (200) when the database, the job queue in it and the vector index answer; 503 naming
     * the one that does not. A full queue or a failing embedder keeps 200 (writes are still taken, or refused
     * with Retry-After) with status `degraded` and the part named.
     */
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
        // The job queue lives in PostgreSQL: a worker that cannot read it has nothing to do.
        app.db.query('SELECT 1 FROM jobs LIMIT 1').then(
          () => {
            checks.queue = 'ok';
          },
          (err: Error) => {
            checks.queue = err.message;
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
      // A replica following the change feed is ready while its index is recent enough.
      const lag = app.follower?.lagSeconds();
      if (app.follower) {
        const max = app.config.VECTOR_FOLLOW_MAX_LAG_MS / 1000;
        checks.replica =
          lag === undefined
            ? 'not caught up yet'
            : lag <= max
              ? 'ok'
              : `behind by ${lag.toFixed(1)} s (limit ${max} s)`;
      }
      const ready = Object.values(checks).every((v) => v === 'ok');
      const degraded = await degradedParts(app);
      const objects = await objectStoreReadiness(app.objects);
      if (objects.store !== 'ok') degraded.objectStore = `degraded: ${objects.store}`;
      Object.assign(checks, degraded);
      // Public: say which part fails and why, never where it lives.
      for (const [part, state] of Object.entries(checks)) checks[part] = withoutAddresses(state);
      const status = !ready ? 'unavailable' : Object.keys(degraded).length > 0 ? 'degraded' : 'ready';
      return reply.status(ready ? 200 : 503).send({
        status,
        checks,
        objectLock: objects.objectLock,
        ...(app.follower
          ? {
              replica: {
                lagSeconds: lag === undefined ? null : Math.round(lag * 1000) / 1000,
                ...app.follower.status(),
              },
            }
          : {}),
        ...(objects.objectLock === 'unsupported'
          ? { warnings: ['the object store has no object lock: audit archives are not retention-locked'] }
          : {}),
      });
    });

    server.get('/metrics', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => {
      // Queue depth is read at scrape time so that every replica reports the shared queue.
      app.metrics.queueDepth.reset();
      for (const row of await queueDepth(app.db)) {
        app.metrics.queueDepth.set({ queue: row.queue, status: row.status }, row.count);
      }
      app.metrics.vectorIndexUp.set(
        await app.index.check().then(
          () => 1,
          () => 0,
        ),
      );
      const usage = await storageUsage(app.db, app.index);
      app.metrics.storageBytes.set({ part: 'database' }, usage.database);
      app.metrics.storageBytes.set({ part: 'vector_index' }, usage.vectorIndex);
      app.metrics.storageBytes.set({ part: 'artifacts' }, usage.artifacts);
      return reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics());
    });
  };
}
