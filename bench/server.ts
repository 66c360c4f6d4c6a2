/**
 * The service under test, in a process of its own (started by bench/harness.ts with `fork`): the
 * real app and HTTP server, configured from the environment like `memory-layer serve`, listening
 * on 127.0.0.1 at a free port. Its memory is then the service's alone (read from
 * /proc/<pid>/status), and the benchmark's own vectors and JSON work stay out of its event loop.
 */
import type { AddressInfo } from 'node:net';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { buildHttpServer } from '../src/http/server.js';

const config = loadConfig({ ...process.env, PORT: '0', HOST: '127.0.0.1' });
const started = performance.now();
const app = await createApp(config, { worker: process.env.BENCH_WORKER !== 'off' });
app.start();
const http = await buildHttpServer(app);
await http.listen({ port: 0, host: '127.0.0.1' });
const { port } = http.server.address() as AddressInfo;
process.send?.({ type: 'ready', port, startMs: performance.now() - started, vectorIndex: app.index.name });

process.on('message', (msg: { type?: string }) => {
  if (msg?.type !== 'stop') return;
  (async () => {
    await http.close();
    await app.close();
  })().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
// The parent went away: do not linger.
process.on('disconnect', () => process.exit(0));
