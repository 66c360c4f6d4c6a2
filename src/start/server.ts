import type { FastifyInstance } from 'fastify';
import { type App, createApp } from '../app.js';
import type { Config } from '../config.js';
import { buildHttpServer } from '../http/server.js';
import { startWorkerHttp } from './worker-http.js';

/**
 * API and worker in one process (the embedded default). The background work starts once the API
 * listens. Returns a stop function.
 */
export async function startServer(config: Config, opts: { worker: boolean }) {
  const app: App = await createApp(config, { worker: opts.worker });
  const http = await buildHttpServer(app);
  await http.listen({ port: config.PORT, host: config.HOST });
  app.start();
  return {
    app,
    http,
    async stop() {
      await http.close();
      await app.close();
    },
  };
}

/**
 * A worker-only process: claims index jobs from the shared queue, and serves /healthz, /readyz
 * and /metrics on WORKER_HTTP_PORT (0: none) so that Kubernetes can probe it and Prometheus can
 * scrape the counters only workers move (indexing, embedding, worker errors).
 */
export async function startWorker(config: Config) {
  const app = await createApp(config, { worker: true, workerOnly: true });
  let http: FastifyInstance | undefined;
  try {
    if (config.WORKER_HTTP_PORT > 0)
      http = await startWorkerHttp(app, { port: config.WORKER_HTTP_PORT, host: config.HOST });
  } catch (err) {
    // A port already taken must stop the process, not leave a worker nobody can probe.
    await app.close();
    throw err;
  }
  app.start();
  return {
    app,
    http,
    async stop() {
      // Unready first (the port closes), then finish the batch in hand.
      await http?.close();
      await app.close();
    },
  };
}

/** Stops cleanly on SIGINT/SIGTERM (Kubernetes sends SIGTERM before killing a pod). */
export function stopOnSignals(stop: () => Promise<void>, log: (msg: string) => void) {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      log(`${signal} received, stopping`);
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
