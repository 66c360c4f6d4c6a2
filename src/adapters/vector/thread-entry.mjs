// The vector index's thread (see in-thread.ts). Plain JavaScript, so that Node runs it without a
// loader; it then registers tsx's, as bin/memory-layer.js does, to load the adapter's TypeScript.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

try {
  register();
  const { hostUsearchIndex } = await import('./thread-host.ts');
  hostUsearchIndex(parentPort, workerData.options);
  parentPort.postMessage({ ready: true });
} catch (err) {
  parentPort.postMessage({ loadError: String(err?.stack ?? err) });
}
